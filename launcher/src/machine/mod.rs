//! The pod as a pure state machine: `handle(event, now) -> effects`.
//!
//! Everything the kubelet decides about a pod lives here, with no I/O and no clock
//! of its own: when a container starts, how its probes are timed and counted, how it
//! is stopped (preStop, SIGTERM, the grace period, SIGKILL), whether it restarts and
//! after which back-off, and what phase, conditions and container states follow. The
//! driver (`driver.rs`) turns kernel events into [`Event`]s and carries out the
//! [`Effect`]s; the unit tests in `tests.rs` drive it with a fake clock.
//!
//! Time is a [`Time`]: the monotonic time since the pod's supervisor started. Wall
//! clock strings for the status are `wall_base + Time`, so the machine is
//! deterministic. Every addition on a time saturates: no input can make it panic.
//!
//! The kubelet's rules, as this machine applies them:
//! - Containers start in order; a container whose postStart hook is still running
//!   holds the later ones back, and is not Running until the hook succeeded. A failed
//!   postStart stops the container.
//! - Init containers run one at a time, in order, each to success; app containers
//!   start once all have succeeded. An init container that fails restarts per policy
//!   (Always and OnFailure both retry it); under Never the pod fails.
//! - Probes: the first run `initialDelaySeconds` after the start, then every
//!   `periodSeconds`, never two at once; a run past `timeoutSeconds` fails. A startup
//!   probe holds the others off until it succeeds once. `failureThreshold`
//!   consecutive failures of a startup or liveness probe stop the container, which
//!   restarts whatever its exit status unless restartPolicy is Never; readiness
//!   drives `ready` after `successThreshold` successes or `failureThreshold` failures.
//! - Stopping a container: preStop (its time counts against the grace period),
//!   SIGTERM, SIGKILL at the end of the grace period; a preStop hook that used the
//!   grace period up leaves the container a last 2 s.
//! - Restarts: the first comes at once, each later one after 10 s, 20 s, 40 s, ...
//!   up to 300 s; the back-off resets once a container has run 10 minutes.
//! - Sidecars (init containers with `restartPolicy: Always`) start in the init
//!   sequence; the next container starts once the sidecar has started (postStart
//!   done, startup probe passed). They restart whenever they exit, whatever the pod's
//!   policy, until the app containers are done; then, or when the pod is stopped,
//!   they are stopped after every other container, one at a time, last first. Their
//!   exit statuses do not decide the pod's phase.
//! - `activeDeadlineSeconds`: the pod is stopped like `down` and ends Failed with
//!   reason DeadlineExceeded. pause dying ends the pod: nothing starts again, and it
//!   is Failed with reason PauseDied. Either is shown once the last process is gone.

mod backoff;
#[cfg(test)]
mod tests;

pub use backoff::Backoff;

use crate::spec::{Action, ContainerSpec, PodSpec, Probe, ProbeKind, RestartPolicy, VolumeSource};
use crate::status::{
    Condition, ContainerState, ContainerStatus, Deletion, Phase, PodStatus, Terminated,
};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// Monotonic time since the supervisor started.
pub type Time = Duration;

/// What a container still gets after a preStop hook used up its grace period.
const MIN_GRACE_AFTER_PRESTOP: Duration = Duration::from_secs(2);

/// Something a container runs besides its main process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Task {
    Probe(ProbeKind),
    PostStart,
    PreStop,
}

/// The result of one run of a probe or hook action.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Success,
    Failure(String),
}

/// How a process ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exit {
    /// The exit status, or 128+N when killed by signal N.
    pub code: i32,
    pub signal: Option<i32>,
    /// The container's cgroup counted an OOM kill during this run.
    pub oom: bool,
    /// What it left as its termination message (terminationMessagePath, or its log).
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Time passed (a timer is due, or the driver woke for another reason).
    Tick,
    /// The main process of container `c`, asked for by [`Effect::Spawn`], runs.
    Started { c: usize, pid: i32 },
    /// Container `c` could not be started (clone or exec failed): `message` says why.
    CannotRun {
        c: usize,
        code: i32,
        message: String,
    },
    /// The main process of container `c` exited.
    Exited { c: usize, exit: Exit },
    /// A probe or hook action of container `c` finished.
    Done {
        c: usize,
        task: Task,
        verdict: Verdict,
    },
    /// Stop the pod (down, ^C, SIGTERM): every container with `grace`, or its own.
    Stop { grace: Option<Duration> },
    /// What the pod's local storage holds. Over a limit (an emptyDir's sizeLimit, the
    /// sum of its containers' ephemeral-storage limits, or one container's), the pod
    /// is evicted as the kubelet evicts it: every container killed at once, the pod
    /// Failed with reason Evicted.
    StorageUsage(StorageUsage),
    /// pause, PID 1 of the pod, died: the kernel kills everything in the pod.
    PauseDied { how: String },
}

/// Bytes in use: each disk emptyDir's (by name), each container's writable layer
/// (by index).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StorageUsage {
    pub volumes: Vec<(String, u64)>,
    pub layers: Vec<(usize, u64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Start the main process of container `c`; answer with Started or CannotRun.
    Spawn(usize),
    /// Start a probe's or hook's action in container `c`; answer with Done.
    Run {
        c: usize,
        task: Task,
        action: Action,
    },
    /// Stop an action in flight; its result is no longer wanted.
    Cancel { c: usize, task: Task },
    /// SIGTERM to the main process of container `c`.
    Terminate(usize),
    /// SIGKILL to everything in the cgroup leaf of container `c`.
    Kill(usize),
    /// SIGKILL to everything in the pod.
    KillPod,
    /// An event, as the kubelet would record it.
    Record(Record),
    /// The pod's status changed.
    Publish(PodStatus),
}

/// A kubelet event about one container, or (`container` empty) about the pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub container: String,
    /// It is an init container (`spec.initContainers{NAME}` for the event).
    pub init: bool,
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

/// An action in flight; `deadline` None waits as long as it takes (postStart).
#[derive(Debug, Clone, Copy, PartialEq)]
struct InFlight {
    deadline: Option<Time>,
    /// A lifecycle `sleep`: done, successfully, at its deadline. The machine runs it.
    sleep: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct ProbeState {
    probe: Probe,
    next: Time,
    successes: u32,
    failures: u32,
    run: Option<InFlight>,
}

#[derive(Debug, Clone, PartialEq)]
enum WaitReason {
    ContainerCreating,
    PodInitializing,
    CrashLoopBackOff(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Stopping {
    pid: i32,
    /// When the container started, and when its stop began.
    since: Time,
    began: Time,
    grace: Duration,
    pre_stop: Option<InFlight>,
    /// SIGTERM was sent (after preStop, if any); SIGKILL comes at `kill_at`.
    termed: bool,
    kill_at: Time,
    killed: bool,
    /// Why the supervisor stopped it (a probe, a hook): its terminated message.
    why: Option<String>,
    /// Restart whatever the exit status (failed liveness or startup probe).
    restart: bool,
}

/// A container's state: each variant holds only what is true in it.
#[derive(Debug, Clone, PartialEq)]
enum State {
    /// Not running: due to start at `due`, or not yet (None).
    Waiting {
        reason: WaitReason,
        due: Option<Time>,
    },
    /// The driver was asked to start it.
    Creating,
    /// The process runs; its postStart hook has not finished.
    Starting {
        pid: i32,
        since: Time,
        post_start: InFlight,
    },
    Running {
        pid: i32,
        since: Time,
        started: bool,
        ready: bool,
        probes: BTreeMap<ProbeKind, ProbeState>,
    },
    Stopping(Stopping),
    /// Done for good.
    Terminated(Terminated),
}

impl State {
    fn has_process(&self) -> bool {
        matches!(
            self,
            State::Creating | State::Starting { .. } | State::Running { .. } | State::Stopping(_)
        )
    }
}

#[derive(Debug, Clone)]
struct Container {
    spec: ContainerSpec,
    init: bool,
    state: State,
    restarts: u32,
    last: Option<Terminated>,
    backoff: Backoff,
    /// Has been started once (postStart done, startup probe passed).
    ever_started: bool,
}

impl Container {
    /// Its restarts as the kubelet counts them, a new instance's at its creation
    /// (`restartCount` is the latest instance's): one waiting for its back-off to end
    /// is decided here (`restarts`) but not yet counted.
    fn restart_count(&self) -> u32 {
        match self.state {
            State::Waiting { .. } => self.restarts.saturating_sub(1),
            _ => self.restarts,
        }
    }

    fn succeeded(&self) -> bool {
        matches!(&self.state, State::Terminated(t) if t.exit_code == 0)
    }

    fn sidecar(&self) -> bool {
        self.init && self.spec.sidecar
    }

    /// An init container the sequence may pass: succeeded, or a sidecar started.
    fn init_done(&self) -> bool {
        if self.sidecar() {
            self.ever_started
        } else {
            self.succeeded()
        }
    }

    fn ready(&self) -> bool {
        matches!(self.state, State::Running { ready: true, .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopCause {
    Asked,
    Deadline,
    /// The kubelet's eviction: a disk emptyDir over its sizeLimit.
    Evicted,
}

#[derive(Debug, Clone, PartialEq)]
enum Life {
    Active,
    Stopping(StopCause),
    PauseDied(String),
}

pub struct Pod {
    spec: PodSpec,
    wall_base: SystemTime,
    containers: Vec<Container>,
    life: Life,
    /// When the pod's stop began and its grace period (sidecars get what is left).
    stop_began: Option<(Time, Duration)>,
    /// The exit status `up` reports for a pod stopped on request: a failure from
    /// before the stop, not the exits the stop itself caused.
    failed_before_stop: i32,
    /// Why the pod was evicted, for its status message.
    evicted: Option<String>,
    conditions: Vec<Condition>,
    published: Option<PodStatus>,
}

impl Pod {
    /// Back-off delays scaled by `scale` (tests run the kubelet's minutes in seconds).
    pub fn with_backoff_scale(mut self, scale: f64) -> Pod {
        for c in &mut self.containers {
            c.backoff = Backoff::new(scale);
        }
        self
    }

    /// A pod about to start at time 0, which is `wall_base` on the wall clock.
    pub fn new(spec: PodSpec, wall_base: SystemTime) -> Pod {
        let has_init = !spec.init_containers.is_empty();
        let containers = spec
            .all_containers()
            .enumerate()
            .map(|(i, c)| {
                let init = i < spec.init_containers.len();
                // With init containers only the first is due; the apps wait for all.
                let (reason, due) = match (has_init, init, i) {
                    (false, _, _) | (true, true, 0) => (WaitReason::ContainerCreating, Some(ZERO)),
                    (true, true, _) => (WaitReason::ContainerCreating, None),
                    (true, false, _) => (WaitReason::PodInitializing, None),
                };
                Container {
                    spec: c.clone(),
                    init,
                    state: State::Waiting { reason, due },
                    restarts: 0,
                    last: None,
                    backoff: Backoff::new(1.0),
                    ever_started: false,
                }
            })
            .collect();
        Pod {
            spec,
            wall_base,
            containers,
            life: Life::Active,
            stop_began: None,
            failed_before_stop: 0,
            evicted: None,
            conditions: Vec::new(),
            published: None,
        }
    }

    pub fn spec(&self) -> &PodSpec {
        &self.spec
    }

    /// How often container `c` has been restarted: the instance its next start is.
    pub fn restarts(&self, c: usize) -> u32 {
        self.containers[c].restarts
    }

    /// The kubelet's local storage eviction message for `usage`, checked in its order:
    /// each emptyDir's sizeLimit, the pod's total against the sum of its containers'
    /// limits, each container's layer against its own.
    fn over_storage(&self, usage: &StorageUsage) -> Option<String> {
        use crate::quantity::Memory;
        for (volume, bytes) in &usage.volumes {
            let limit = self.spec.volumes.iter().find_map(|v| match &v.source {
                VolumeSource::EmptyDir {
                    memory: false,
                    size_limit: Some(limit),
                    ..
                } if v.name == *volume => Some(*limit),
                _ => None,
            });
            if let Some(limit) = limit.filter(|l| bytes > l) {
                let limit = Memory(limit).to_string();
                return Some(format!(
                    "Usage of EmptyDir volume {volume:?} exceeds the limit {limit:?}. "
                ));
            }
        }
        let limits: Vec<u64> = self
            .spec
            .containers
            .iter()
            .filter_map(|c| c.limits.ephemeral_storage)
            .collect();
        let total: u64 = usage.volumes.iter().map(|(_, b)| b).sum::<u64>()
            + usage.layers.iter().map(|(_, b)| b).sum::<u64>();
        if !limits.is_empty() && total > limits.iter().sum() {
            let limit = Memory(limits.iter().sum()).to_string();
            return Some(format!(
                "Pod ephemeral local storage usage exceeds the total limit of containers {limit}. "
            ));
        }
        usage.layers.iter().find_map(|&(c, bytes)| {
            let c = self.containers.get(c).map(|c| &c.spec)?;
            let limit = c.limits.ephemeral_storage.filter(|l| bytes > *l)?;
            Some(format!(
                "Container {} exceeded its local ephemeral storage limit {:?}. ",
                c.name,
                Memory(limit).to_string()
            ))
        })
    }

    /// The container with index `c` (init containers first).
    pub fn container(&self, c: usize) -> &ContainerSpec {
        &self.containers[c].spec
    }

    pub fn handle(&mut self, event: Event, now: Time) -> Vec<Effect> {
        let mut fx = Vec::new();
        match event {
            Event::Tick => {}
            Event::Started { c, pid } => self.started(c, pid, now, &mut fx),
            Event::CannotRun { c, code, message } => {
                if self.containers[c].state == State::Creating {
                    fx.push(self.record(c, true, "Failed", format!("Error: {message}")));
                    self.containers[c].state = State::Stopping(Stopping {
                        pid: 0,
                        since: now,
                        began: now,
                        grace: ZERO,
                        pre_stop: None,
                        termed: true,
                        kill_at: now,
                        killed: true,
                        why: None,
                        restart: false,
                    });
                    let exit = Exit {
                        code,
                        signal: None,
                        oom: false,
                        message: None,
                    };
                    self.exited(c, exit, Some(message), now, &mut fx);
                }
            }
            Event::Exited { c, exit } => self.exited(c, exit, None, now, &mut fx),
            Event::Done { c, task, verdict } => self.done(c, task, verdict, now, &mut fx),
            Event::Stop { grace } => {
                let grace = grace.unwrap_or(self.spec.grace);
                self.stop_pod(StopCause::Asked, grace, now, &mut fx);
            }
            Event::StorageUsage(usage) => {
                if let (Some(message), Life::Active) = (self.over_storage(&usage), &self.life) {
                    fx.push(Effect::Record(Record {
                        container: String::new(),
                        init: false,
                        warning: true,
                        reason: "Evicted",
                        message: message.clone(),
                    }));
                    self.evicted = Some(message);
                    self.stop_pod(StopCause::Evicted, Duration::ZERO, now, &mut fx);
                }
            }
            Event::PauseDied { how } => {
                if !matches!(self.life, Life::PauseDied(_)) {
                    self.life = Life::PauseDied(format!(
                        "pause (PID 1 of the pod) {how}: the kernel killed every process in the pod"
                    ));
                    for c in &mut self.containers {
                        match &mut c.state {
                            State::Waiting { due, .. } => *due = None,
                            // Asked for, never started: it stays as it was before.
                            State::Creating => {
                                c.state = State::Waiting {
                                    reason: WaitReason::ContainerCreating,
                                    due: None,
                                }
                            }
                            _ => {}
                        }
                    }
                    fx.push(Effect::KillPod);
                }
            }
        }
        self.on_timers(now, &mut fx);
        self.wind_down(now, &mut fx);
        self.start_due(now, &mut fx);
        let status = self.status(now);
        if self.published.as_ref() != Some(&status) {
            self.published = Some(status.clone());
            fx.push(Effect::Publish(status));
        }
        fx
    }

    /// When the machine next needs a Tick, if ever.
    pub fn next_timer(&self) -> Option<Time> {
        let mut at: Option<Time> = None;
        let mut add = |t: Option<Time>| {
            if let Some(t) = t {
                at = Some(at.map_or(t, |a| a.min(t)));
            }
        };
        if self.life == Life::Active {
            add(self.spec.active_deadline);
        }
        // A container waits behind one being created or in its postStart (they start
        // one at a time): its due time is no timer until that one is through.
        let mut blocked = false;
        for c in &self.containers {
            match &c.state {
                State::Waiting { due, .. } if !blocked => add(*due),
                State::Waiting { .. } => {}
                State::Starting { post_start, .. } => {
                    blocked = true;
                    add(post_start.deadline)
                }
                State::Running { probes, .. } => {
                    for p in probes.values() {
                        add(match p.run {
                            Some(run) => run.deadline,
                            None => Some(p.next),
                        });
                    }
                }
                State::Stopping(s) => {
                    add(s.pre_stop.and_then(|p| p.deadline));
                    if s.termed && !s.killed {
                        add(Some(s.kill_at));
                    }
                }
                State::Creating => blocked = true,
                State::Terminated(_) => {}
            }
        }
        at
    }

    /// Nothing runs and nothing will: the supervisor may tear the pod down.
    pub fn finished(&self) -> bool {
        if self.containers.iter().any(|c| c.state.has_process()) {
            return false;
        }
        self.life != Life::Active || matches!(self.phase(), Phase::Succeeded | Phase::Failed)
    }

    /// The pod's phase and `up`'s exit status: the first failing container's code;
    /// for a pod stopped on request (`down`, ^C), only a failure from before the stop
    /// counts: the stop's own SIGTERMs end the pod cleanly.
    pub fn outcome(&self) -> (Phase, i32) {
        if self.life == Life::Stopping(StopCause::Asked) {
            return (self.phase(), self.failed_before_stop);
        }
        (self.phase(), self.failure_code())
    }

    /// The app containers after `c` that have never run, while the pod is starting
    /// and `c` is an app container's first start: the ones the machine asks to spawn
    /// next, in order, unless the pod stops first. The driver prepares them (their
    /// setups overlap `c`'s start); it never starts one before the machine asks.
    pub fn to_start_after(&self, c: usize) -> Vec<usize> {
        let first = self
            .containers
            .get(c)
            .is_some_and(|x| !x.init && x.restarts == 0);
        if self.life != Life::Active || !first {
            return Vec::new();
        }
        (c + 1..self.containers.len())
            .filter(|&d| {
                let x = &self.containers[d];
                !x.init
                    && x.restarts == 0
                    && !x.ever_started
                    && x.last.is_none()
                    && matches!(x.state, State::Waiting { .. })
            })
            .collect()
    }

    /// Is the pod still starting or running (no stop begun)?
    pub fn active(&self) -> bool {
        self.life == Life::Active
    }

    /// Was the pod stopped on request?
    pub fn stop_asked(&self) -> bool {
        self.life == Life::Stopping(StopCause::Asked)
    }

    fn failure_code(&self) -> i32 {
        self.containers
            .iter()
            .filter(|c| !c.sidecar())
            .find_map(|c| match &c.state {
                State::Terminated(t) if t.exit_code != 0 => Some(t.exit_code),
                _ => None,
            })
            .unwrap_or(match self.life {
                Life::PauseDied(_) => 1,
                _ => 0,
            })
    }

    fn wall(&self, t: Time) -> String {
        let at = self.wall_base.checked_add(t).unwrap_or(self.wall_base);
        humantime::format_rfc3339_seconds(at).to_string()
    }

    fn record(&self, c: usize, warning: bool, reason: &'static str, message: String) -> Effect {
        Effect::Record(Record {
            container: self.containers[c].spec.name.clone(),
            init: self.containers[c].init,
            warning,
            reason,
            message,
        })
    }

    /// Starts the first container that is due, unless one is still being created or
    /// its postStart runs: containers start in order, one at a time.
    fn start_due(&mut self, now: Time, fx: &mut Vec<Effect>) {
        if self.life != Life::Active {
            return;
        }
        for (i, c) in self.containers.iter_mut().enumerate() {
            match c.state {
                State::Creating | State::Starting { .. } => return,
                State::Waiting { due: Some(t), .. } if t <= now => {
                    c.state = State::Creating;
                    fx.push(Effect::Spawn(i));
                    return;
                }
                _ => {}
            }
        }
    }

    fn started(&mut self, c: usize, pid: i32, now: Time, fx: &mut Vec<Effect>) {
        if self.containers[c].state != State::Creating {
            return;
        }
        let name = &self.containers[c].spec.name;
        let (created, started) = (
            format!("Created container: {name}"),
            format!("Started container {name}"),
        );
        fx.push(self.record(c, false, "Created", created));
        fx.push(self.record(c, false, "Started", started));
        match self.containers[c].spec.post_start.clone() {
            // Not Running until postStart is done: still ContainerCreating.
            Some(action) => {
                let post_start = self.launch(c, Task::PostStart, action, None, now, fx);
                self.containers[c].state = State::Starting {
                    pid,
                    since: now,
                    post_start,
                };
            }
            None => self.running(c, pid, now, now),
        }
    }

    /// Starts an action; a sleep is a timer of the machine's own.
    fn launch(
        &self,
        c: usize,
        task: Task,
        action: Action,
        deadline: Option<Time>,
        now: Time,
        fx: &mut Vec<Effect>,
    ) -> InFlight {
        if let Action::Sleep(d) = action {
            let until = now.saturating_add(d);
            return InFlight {
                deadline: Some(deadline.map_or(until, |dl| dl.min(until))),
                sleep: true,
            };
        }
        fx.push(Effect::Run { c, task, action });
        InFlight {
            deadline,
            sleep: false,
        }
    }

    /// postStart is done (or there is none): Running, and its probes begin.
    fn running(&mut self, c: usize, pid: i32, since: Time, now: Time) {
        let ct = &mut self.containers[c];
        let probes: BTreeMap<ProbeKind, ProbeState> = ct
            .spec
            .probes
            .iter()
            .map(|(kind, probe)| {
                let state = ProbeState {
                    probe: probe.clone(),
                    // initialDelaySeconds counts from the container's start.
                    next: since.saturating_add(probe.initial_delay).max(now),
                    successes: 0,
                    failures: 0,
                    run: None,
                };
                (kind, state)
            })
            .collect();
        let started = !probes.contains_key(&ProbeKind::Startup);
        let ready = started && !probes.contains_key(&ProbeKind::Readiness);
        ct.state = State::Running {
            pid,
            since,
            started,
            ready,
            probes,
        };
        if started {
            self.has_started(c, now);
        }
    }

    /// Container `c` has started (again): a sidecar starting for the first time lets
    /// the init sequence go on.
    fn has_started(&mut self, c: usize, now: Time) {
        let ct = &mut self.containers[c];
        if !ct.ever_started {
            ct.ever_started = true;
            if ct.sidecar() {
                self.next_stage(now);
            }
        }
    }

    /// The app containers are done for good (or an init container failed for good):
    /// all that is left is to stop the sidecars.
    fn workload_over(&self) -> bool {
        self.workload_phase().is_terminal()
    }

    /// Once the pod is stopping or its app containers are done, the sidecars go: none
    /// restarts any more, and when no other container has a process left, the last
    /// one still running is stopped, then the one before it, and so on.
    fn wind_down(&mut self, now: Time, fx: &mut Vec<Effect>) {
        let grace = match self.life {
            Life::Active if self.workload_over() => self.spec.grace,
            Life::Active | Life::PauseDied(_) => return,
            Life::Stopping(_) => match self.stop_began {
                Some((began, grace)) => grace.saturating_sub(now.saturating_sub(began)),
                None => ZERO,
            },
        };
        for c in self.containers.iter_mut().filter(|c| c.sidecar()) {
            if let State::Waiting { due, .. } = &mut c.state {
                *due = None;
            }
        }
        let busy = |c: &Container| {
            if c.sidecar() {
                matches!(c.state, State::Creating | State::Stopping(_))
            } else {
                c.state.has_process()
            }
        };
        if self.containers.iter().any(busy) {
            return;
        }
        let last = (0..self.containers.len())
            .rev()
            .find(|&i| self.containers[i].sidecar() && self.containers[i].state.has_process());
        if let Some(c) = last {
            self.stop(c, grace, None, false, now, fx);
        }
    }

    fn exited(
        &mut self,
        c: usize,
        exit: Exit,
        cannot_run: Option<String>,
        now: Time,
        fx: &mut Vec<Effect>,
    ) {
        let state = std::mem::replace(&mut self.containers[c].state, State::Creating);
        let (since, why, forced) = match state {
            State::Starting {
                since, post_start, ..
            } => {
                cancel(c, Task::PostStart, Some(post_start), fx);
                (since, None, false)
            }
            State::Running { since, probes, .. } => {
                for (kind, p) in probes {
                    cancel(c, Task::Probe(kind), p.run, fx);
                }
                (since, None, false)
            }
            State::Stopping(s) => {
                cancel(c, Task::PreStop, s.pre_stop, fx);
                (s.since, s.why, s.restart)
            }
            other => {
                // Not a process of ours any more: nothing to record.
                self.containers[c].state = other;
                return;
            }
        };
        // What the main process leaves behind goes with it, as when a runtime deletes
        // a container: a restart starts from an empty leaf.
        fx.push(Effect::Kill(c));
        if exit.oom {
            let msg = format!(
                "Container {} was killed by the kernel: out of memory in its cgroup (OOMKilled)",
                self.containers[c].spec.name
            );
            fx.push(self.record(c, true, "OOMKilled", msg));
        }
        let deadline = self.life == Life::Stopping(StopCause::Deadline);
        let reason = match (&cannot_run, exit.oom, exit.code) {
            (Some(_), _, _) => "ContainerCannotRun",
            _ if deadline => "DeadlineExceeded",
            (None, true, _) => "OOMKilled",
            (None, false, 0) => "Completed",
            _ => "Error",
        };
        let t = Terminated {
            exit_code: exit.code,
            signal: exit.signal,
            reason: reason.into(),
            message: self.termination_message(cannot_run.or(why), exit.message),
            started_at: self.wall(since),
            finished_at: self.wall(now),
        };
        let policy = self.spec.restart;
        let pod = self.spec.name.clone();
        let ct = &mut self.containers[c];
        if self.life != Life::Active {
            ct.state = State::Terminated(t);
            return;
        }
        if ct.init && !ct.sidecar() && exit.code == 0 {
            // Done for good: init containers are never restarted after success.
            ct.state = State::Terminated(t);
            self.next_stage(now);
            return;
        }
        let restart = if ct.sidecar() {
            // Whatever its status and the pod's policy, until the apps are done.
            !self.workload_over()
        } else {
            (forced && policy != RestartPolicy::Never) || policy.restarts(exit.code)
        };
        let ct = &mut self.containers[c];
        if !restart {
            ct.state = State::Terminated(t);
            return;
        }
        let delay = ct.backoff.on_exit(now.saturating_sub(since));
        ct.last = Some(t);
        ct.restarts = ct.restarts.saturating_add(1);
        let reason = if delay.is_zero() {
            WaitReason::ContainerCreating
        } else {
            let msg = format!(
                "back-off {} restarting failed container={} pod={pod}",
                crate::quantity::format_duration(delay),
                ct.spec.name
            );
            WaitReason::CrashLoopBackOff(msg)
        };
        ct.state = State::Waiting {
            reason,
            due: Some(now.saturating_add(delay)),
        };
        if !delay.is_zero() {
            let msg = format!(
                "Back-off restarting failed container {} in pod {pod}",
                self.containers[c].spec.name
            );
            fx.push(self.record(c, true, "BackOff", msg));
        }
    }

    /// After an init container succeeded or a sidecar started: the next init
    /// container, or else every app container, unless already on its way.
    fn next_stage(&mut self, now: Time) {
        if self.life != Life::Active {
            return;
        }
        let due = |c: &mut Container| {
            if matches!(c.state, State::Waiting { due: None, .. }) {
                c.state = State::Waiting {
                    reason: WaitReason::ContainerCreating,
                    due: Some(now),
                };
            }
        };
        if let Some(next) = self
            .containers
            .iter_mut()
            .find(|c| c.init && !c.init_done())
        {
            return due(next);
        }
        self.containers.iter_mut().filter(|c| !c.init).for_each(due);
    }

    fn done(&mut self, c: usize, task: Task, verdict: Verdict, now: Time, fx: &mut Vec<Effect>) {
        match (task, &mut self.containers[c].state) {
            (Task::PostStart, State::Starting { pid, since, .. }) => {
                let (pid, since) = (*pid, *since);
                match verdict {
                    Verdict::Success => self.running(c, pid, since, now),
                    Verdict::Failure(why) => {
                        let msg = format!("PostStartHook failed: {why}");
                        fx.push(self.record(c, true, "FailedPostStartHook", msg.clone()));
                        self.stop(c, self.spec.grace, Some(msg), false, now, fx);
                    }
                }
            }
            (Task::PreStop, State::Stopping(s)) if s.pre_stop.is_some() => {
                s.pre_stop = None;
                if let Verdict::Failure(why) = verdict {
                    let msg = format!("PreStopHook failed: {why}");
                    fx.push(self.record(c, true, "FailedPreStopHook", msg));
                }
                self.terminate(c, now, fx);
            }
            (Task::Probe(kind), State::Running { probes, .. })
                if probes.get(&kind).is_some_and(|p| p.run.is_some()) =>
            {
                if let Some(p) = probes.get_mut(&kind) {
                    p.run = None;
                }
                self.probe_result(c, kind, verdict, now, fx);
            }
            // A result nobody waits for any more (the container moved on).
            _ => {}
        }
    }

    /// One probe result, counted against the probe's thresholds.
    fn probe_result(
        &mut self,
        c: usize,
        kind: ProbeKind,
        verdict: Verdict,
        now: Time,
        fx: &mut Vec<Effect>,
    ) {
        let pod_grace = self.spec.grace;
        let name = self.containers[c].spec.name.clone();
        let State::Running {
            started,
            ready,
            probes,
            ..
        } = &mut self.containers[c].state
        else {
            return;
        };
        let Some(p) = probes.get_mut(&kind) else {
            return;
        };
        let why = match verdict {
            Verdict::Success => {
                p.successes = p.successes.saturating_add(1);
                p.failures = 0;
                if p.successes < p.probe.success_threshold {
                    return;
                }
                match kind {
                    ProbeKind::Startup => {
                        // Done for this run: liveness and readiness take over at once.
                        probes.remove(&kind);
                        *started = true;
                        *ready = !probes.contains_key(&ProbeKind::Readiness);
                        for p in probes.values_mut() {
                            p.next = p.next.min(now);
                        }
                        self.has_started(c, now);
                    }
                    ProbeKind::Readiness => *ready = true,
                    ProbeKind::Liveness => {}
                }
                return;
            }
            Verdict::Failure(why) => why,
        };
        p.successes = 0;
        p.failures = p.failures.saturating_add(1);
        let over = p.failures >= p.probe.failure_threshold;
        let grace = p.probe.grace.unwrap_or(pod_grace);
        if over && kind == ProbeKind::Readiness {
            *ready = false;
        }
        let msg = format!("{} probe failed: {why}", kind.name());
        fx.push(self.record(c, true, "Unhealthy", msg));
        if over && kind != ProbeKind::Readiness {
            let what = kind.name().to_lowercase();
            let msg = format!("Container {name} failed {what} probe, will be restarted");
            fx.push(self.record(c, false, "Killing", msg.clone()));
            self.stop(c, grace, Some(format!("{msg}: {why}")), true, now, fx);
        }
    }

    /// Stops container `c`: preStop, SIGTERM, SIGKILL once `grace` is over.
    fn stop(
        &mut self,
        c: usize,
        grace: Duration,
        why: Option<String>,
        restart: bool,
        now: Time,
        fx: &mut Vec<Effect>,
    ) {
        let state = std::mem::replace(&mut self.containers[c].state, State::Creating);
        let (pid, since) = match state {
            State::Starting {
                pid,
                since,
                post_start,
            } => {
                cancel(c, Task::PostStart, Some(post_start), fx);
                (pid, since)
            }
            State::Running {
                pid, since, probes, ..
            } => {
                for (kind, p) in probes {
                    cancel(c, Task::Probe(kind), p.run, fx);
                }
                (pid, since)
            }
            other => {
                self.containers[c].state = other;
                return;
            }
        };
        if why.is_none() {
            let msg = format!("Stopping container {}", self.containers[c].spec.name);
            fx.push(self.record(c, false, "Killing", msg));
        }
        let deadline = now.saturating_add(grace);
        let pre_stop = match self.containers[c].spec.pre_stop.clone() {
            Some(action) if !grace.is_zero() => {
                Some(self.launch(c, Task::PreStop, action, Some(deadline), now, fx))
            }
            _ => None,
        };
        let no_hook = pre_stop.is_none();
        self.containers[c].state = State::Stopping(Stopping {
            pid,
            since,
            began: now,
            grace,
            pre_stop,
            termed: false,
            kill_at: deadline,
            killed: false,
            why,
            restart,
        });
        if no_hook {
            self.terminate(c, now, fx);
        }
    }

    /// SIGTERM to a stopping container (after its preStop); SIGKILL is scheduled.
    fn terminate(&mut self, c: usize, now: Time, fx: &mut Vec<Effect>) {
        let had_pre_stop = self.containers[c].spec.pre_stop.is_some();
        let State::Stopping(s) = &mut self.containers[c].state else {
            return;
        };
        if s.termed {
            return;
        }
        s.termed = true;
        fx.push(Effect::Terminate(c));
        if s.grace.is_zero() {
            s.killed = true;
            fx.push(Effect::Kill(c));
        } else if had_pre_stop {
            let left = s.grace.saturating_sub(now.saturating_sub(s.began));
            s.kill_at = now.saturating_add(left.max(MIN_GRACE_AFTER_PRESTOP));
        }
    }

    /// Stops every container at once, each with its preStop, SIGTERM and SIGKILL.
    fn stop_pod(&mut self, cause: StopCause, grace: Duration, now: Time, fx: &mut Vec<Effect>) {
        match self.life {
            Life::Active => {}
            Life::Stopping(_) => return self.hasten(grace, now, fx),
            Life::PauseDied(_) => return,
        }
        self.failed_before_stop = self.failure_code();
        self.life = Life::Stopping(cause);
        self.stop_began = Some((now, grace));
        for c in 0..self.containers.len() {
            if let State::Waiting { due, .. } = &mut self.containers[c].state {
                *due = None;
            }
            // Sidecars go after every other container (`wind_down`).
            if !self.containers[c].sidecar() {
                self.stop(c, grace, None, false, now, fx);
            }
        }
    }

    /// A stop asked for again with a shorter grace period (^C again, `down
    /// --grace-period 0` during a long one), as a second delete shortens the first: what
    /// is left ends by then; with none left, preStop hooks end and SIGKILL comes now.
    fn hasten(&mut self, grace: Duration, now: Time, fx: &mut Vec<Effect>) {
        let Some((began, old)) = self.stop_began else {
            return;
        };
        let until = now.saturating_add(grace);
        if until >= began.saturating_add(old) {
            return;
        }
        self.stop_began = Some((now, grace));
        for c in 0..self.containers.len() {
            if !matches!(self.containers[c].state, State::Stopping(_)) {
                // A sidecar still waiting for the apps to go goes with them now.
                self.stop(c, grace, None, false, now, fx);
                continue;
            }
            let State::Stopping(s) = &mut self.containers[c].state else {
                continue;
            };
            s.grace = grace;
            s.kill_at = s.kill_at.min(until);
            if !s.termed {
                // Its preStop is cut short: SIGTERM now.
                if let Some(hook) = s.pre_stop.take() {
                    cancel(c, Task::PreStop, Some(hook), fx);
                }
                self.terminate(c, now, fx);
            } else if grace.is_zero() && !s.killed {
                s.killed = true;
                fx.push(Effect::Kill(c));
            }
        }
    }

    /// Everything whose time has come: the pod's deadline, hooks and probes that ran
    /// out of time, probes that are due, SIGKILLs at the end of grace periods.
    fn on_timers(&mut self, now: Time, fx: &mut Vec<Effect>) {
        if self.life == Life::Active && self.spec.active_deadline.is_some_and(|d| now >= d) {
            self.stop_pod(StopCause::Deadline, self.spec.grace, now, fx);
        }
        for c in 0..self.containers.len() {
            self.container_timers(c, now, fx);
        }
    }

    fn container_timers(&mut self, c: usize, now: Time, fx: &mut Vec<Effect>) {
        let due = |f: &InFlight| f.deadline.is_some_and(|d| now >= d);
        match &self.containers[c].state {
            // Only a sleep has a postStart deadline.
            State::Starting { post_start, .. } if due(post_start) => {
                self.done(c, Task::PostStart, Verdict::Success, now, fx);
            }
            State::Stopping(s) => {
                if let Some(hook) = s.pre_stop.filter(|h| due(h)) {
                    let verdict = if hook.sleep {
                        Verdict::Success
                    } else {
                        cancel(c, Task::PreStop, Some(hook), fx);
                        Verdict::Failure("did not finish within the grace period".into())
                    };
                    self.done(c, Task::PreStop, verdict, now, fx);
                }
                if let State::Stopping(s) = &mut self.containers[c].state {
                    if s.termed && !s.killed && now >= s.kill_at {
                        s.killed = true;
                        fx.push(Effect::Kill(c));
                        let msg =
                            "Container runtime did not kill the pod within specified grace period.";
                        fx.push(self.record(c, true, "ExceededGracePeriod", msg.into()));
                    }
                }
            }
            State::Running { .. } => {
                for kind in [
                    ProbeKind::Startup,
                    ProbeKind::Liveness,
                    ProbeKind::Readiness,
                ] {
                    self.probe_timer(c, kind, now, fx);
                }
            }
            _ => {}
        }
    }

    fn probe_timer(&mut self, c: usize, kind: ProbeKind, now: Time, fx: &mut Vec<Effect>) {
        let State::Running {
            started, probes, ..
        } = &mut self.containers[c].state
        else {
            return;
        };
        let started = *started;
        let Some(p) = probes.get_mut(&kind) else {
            return;
        };
        match p.run {
            Some(run) if run.deadline.is_some_and(|d| now >= d) => {
                p.run = None;
                let why = timeout_message(&p.probe.action, p.probe.timeout);
                fx.push(Effect::Cancel {
                    c,
                    task: Task::Probe(kind),
                });
                self.probe_result(c, kind, Verdict::Failure(why), now, fx);
            }
            None if p.next <= now => {
                p.next = now.saturating_add(p.probe.period);
                // Until the startup probe succeeded, liveness and readiness wait.
                if kind != ProbeKind::Startup && !started {
                    return;
                }
                let deadline = Some(now.saturating_add(p.probe.timeout));
                let action = p.probe.action.clone();
                let run = self.launch(c, Task::Probe(kind), action, deadline, now, fx);
                if let State::Running { probes, .. } = &mut self.containers[c].state {
                    if let Some(p) = probes.get_mut(&kind) {
                        p.run = Some(run);
                    }
                }
            }
            _ => {}
        }
    }

    /// The pod's end, once its last process is gone: why it failed, if it did.
    fn failure(&self) -> Option<(&'static str, String)> {
        if self.containers.iter().any(|c| c.state.has_process()) {
            return None;
        }
        match &self.life {
            Life::PauseDied(msg) => Some(("PauseDied", msg.clone())),
            Life::Stopping(StopCause::Deadline) => Some((
                "DeadlineExceeded",
                "Pod was active on the node longer than the specified deadline".into(),
            )),
            Life::Stopping(StopCause::Evicted) => {
                Some(("Evicted", self.evicted.clone().unwrap_or_default()))
            }
            _ => None,
        }
    }

    /// The pod's phase: its workload's, but still Running while sidecars stop.
    fn phase(&self) -> Phase {
        match self.workload_phase() {
            p if p.is_terminal()
                && self
                    .containers
                    .iter()
                    .any(|c| c.sidecar() && c.state.has_process()) =>
            {
                Phase::Running
            }
            p => p,
        }
    }

    /// The phase that the init and app containers make; sidecars do not count.
    fn workload_phase(&self) -> Phase {
        if self.failure().is_some() {
            return Phase::Failed;
        }
        let inits = self.containers.iter().filter(|c| c.init);
        if inits
            .clone()
            .any(|c| !c.sidecar() && matches!(&c.state, State::Terminated(t) if t.exit_code != 0))
        {
            return Phase::Failed;
        }
        if !inits.clone().all(Container::init_done) {
            return Phase::Pending;
        }
        let apps: Vec<&Container> = self.containers.iter().filter(|c| !c.init).collect();
        let never_started = |c: &&Container| {
            c.restarts == 0
                && matches!(
                    c.state,
                    State::Waiting { .. } | State::Creating | State::Starting { .. }
                )
        };
        if apps.iter().any(never_started) {
            return Phase::Pending;
        }
        let done: Vec<&Terminated> = apps
            .iter()
            .filter_map(|c| match &c.state {
                State::Terminated(t) => Some(t),
                _ => None,
            })
            .collect();
        if done.len() < apps.len() {
            Phase::Running
        } else if done.iter().all(|t| t.exit_code == 0) {
            Phase::Succeeded
        } else {
            Phase::Failed
        }
    }

    fn container_status(&self, c: &Container) -> ContainerStatus {
        let waiting = |reason: &str, msg: Option<String>| ContainerState::waiting(reason, msg);
        let (state, started, ready, pid) = match &c.state {
            State::Waiting { reason, .. } => {
                let state = match reason {
                    WaitReason::ContainerCreating => waiting("ContainerCreating", None),
                    WaitReason::PodInitializing => waiting("PodInitializing", None),
                    WaitReason::CrashLoopBackOff(m) => waiting("CrashLoopBackOff", Some(m.clone())),
                };
                (state, false, false, None)
            }
            State::Creating => (waiting("ContainerCreating", None), false, false, None),
            State::Starting { pid, .. } => {
                (waiting("ContainerCreating", None), false, false, Some(*pid))
            }
            State::Running {
                pid,
                since,
                started,
                ready,
                ..
            } => (
                ContainerState::running(self.wall(*since)),
                *started,
                *ready,
                Some(*pid),
            ),
            State::Stopping(s) => (
                ContainerState::running(self.wall(s.since)),
                false,
                false,
                (s.pid > 0).then_some(s.pid),
            ),
            State::Terminated(t) => (
                ContainerState::terminated(t.clone()),
                false,
                c.init && !c.sidecar() && t.exit_code == 0,
                None,
            ),
        };
        ContainerStatus {
            name: c.spec.name.clone(),
            ready,
            started,
            restart_count: c.restart_count(),
            state,
            last_state: c
                .last
                .clone()
                .map(ContainerState::terminated)
                .unwrap_or_default(),
            image: "host".into(),
            image_id: String::new(),
            pid,
        }
    }

    /// The pod's status now; conditions keep their transition times.
    fn status(&mut self, now: Time) -> PodStatus {
        let at = self.wall(now);
        let incomplete: Vec<&str> = self
            .containers
            .iter()
            .filter(|c| c.init && !c.init_done())
            .map(|c| c.spec.name.as_str())
            .collect();
        // Sidecars count for readiness as app containers do.
        let unready: Vec<&str> = self
            .containers
            .iter()
            .filter(|c| (!c.init || c.sidecar()) && !c.ready())
            .map(|c| c.spec.name.as_str())
            .collect();
        let mut conditions = std::mem::take(&mut self.conditions);
        set_condition(&mut conditions, "PodScheduled", None, &at);
        let not_init = ("ContainersNotInitialized", "incomplete", &incomplete[..]);
        set_condition(&mut conditions, "Initialized", Some(not_init), &at);
        for kind in ["ContainersReady", "Ready"] {
            let not_ready = ("ContainersNotReady", "unready", &unready[..]);
            set_condition(&mut conditions, kind, Some(not_ready), &at);
        }
        self.conditions = conditions;
        let (reason, message) = match self.failure() {
            Some((reason, message)) => (Some(reason.to_string()), Some(message)),
            None => (None, None),
        };
        let (inits, apps): (Vec<&Container>, Vec<&Container>) =
            self.containers.iter().partition(|c| c.init);
        PodStatus {
            phase: self.phase(),
            reason,
            message,
            conditions: self.conditions.clone(),
            start_time: self.wall(ZERO),
            init_container_statuses: inits.iter().map(|c| self.container_status(c)).collect(),
            container_statuses: apps.iter().map(|c| self.container_status(c)).collect(),
            deletion: match (&self.life, self.stop_began) {
                (Life::Stopping(StopCause::Asked), Some((began, grace))) => Some(Deletion {
                    timestamp: self.wall(began.saturating_add(grace)),
                    grace_period_seconds: grace.as_secs(),
                }),
                _ => None,
            },
        }
    }
}

const ZERO: Duration = Duration::ZERO;

fn cancel(c: usize, task: Task, run: Option<InFlight>, fx: &mut Vec<Effect>) {
    if run.is_some_and(|r| !r.sleep) {
        fx.push(Effect::Cancel { c, task });
    }
}

/// Sets condition `kind`: True, or, when `blocking` names containers in the way, False
/// with the kubelet's reason and message (`containers with unready status: [a b]`).
/// lastTransitionTime moves only when the status does.
fn set_condition(
    conditions: &mut Vec<Condition>,
    kind: &str,
    blocking: Option<(&str, &str, &[&str])>,
    now: &str,
) {
    let (status, reason, message) = match blocking {
        Some((reason, what, names)) if !names.is_empty() => (
            "False",
            Some(reason.to_string()),
            Some(format!(
                "containers with {what} status: [{}]",
                names.join(" ")
            )),
        ),
        _ => ("True", None, None),
    };
    let i = match conditions.iter().position(|c| c.kind == kind) {
        Some(i) => i,
        None => {
            conditions.push(Condition {
                kind: kind.into(),
                status: String::new(),
                last_transition_time: now.into(),
                reason: None,
                message: None,
            });
            conditions.len() - 1
        }
    };
    let c = &mut conditions[i];
    if c.status != status {
        c.status = status.into();
        c.last_transition_time = now.into();
    }
    (c.reason, c.message) = (reason, message);
}

/// Why a probe that ran past its timeout failed, as the kubelet words it.
/// The most a pod's termination messages hold together (the kubelet's 12 KiB, shared
/// evenly by its containers).
const MAX_POD_TERMINATION_MESSAGES: usize = 12 * 1024;

impl Pod {
    /// A terminated state's message as the kubelet makes it: the runtime's own (why it
    /// could not run, why it was stopped), then ": " and what the container left, cut
    /// to the container's share of the pod's bytes.
    fn termination_message(&self, ours: Option<String>, left: Option<String>) -> Option<String> {
        let mut message = match (ours, left) {
            (Some(ours), Some(left)) => format!("{ours}: {left}"),
            (ours, left) => ours.or(left)?,
        };
        let share = MAX_POD_TERMINATION_MESSAGES / self.containers.len().max(1);
        if message.len() > share {
            let mut end = share;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        Some(message)
    }
}

fn timeout_message(action: &Action, timeout: Duration) -> String {
    let secs = crate::quantity::format_duration(timeout);
    match action {
        Action::Exec(_) => format!("command timed out after {secs}"),
        Action::TcpSocket { host, port } => {
            format!("dial tcp {}: i/o timeout", std::net::SocketAddr::new(*host, *port))
        }
        Action::HttpGet {
            host, port, path, ..
        } => format!(
            "Get \"http://{}{path}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
            std::net::SocketAddr::new(*host, *port)
        ),
        Action::Grpc { .. } => format!("timeout: health rpc did not complete within {secs}"),
        Action::Sleep(_) => "sleep was interrupted".into(),
    }
}
