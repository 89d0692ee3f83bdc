//! The pod's supervisor: one single-threaded process per pod that starts the
//! containers, keeps their logs, restarts them per policy with the kubelet's back-off,
//! writes the pod's status, and stops the pod gracefully.
//!
//! Events come from one poll(2): a signalfd (SIGCHLD, SIGTERM, SIGINT, SIGHUP), the
//! containers' stdout/stderr pipes and the sockets of probes and hooks in flight; timers
//! (back-off, probe periods and timeouts, grace periods) are poll timeouts. SIGCHLDs
//! coalesce, so every SIGCHLD reaps with waitpid(-1, WNOHANG) until nothing is left;
//! exec probes and hooks are children too, matched by pid.
//!
//! Probes (kubelet): each runs `initialDelaySeconds` after the container started, then
//! every `periodSeconds`; a startup probe holds off the other two until it succeeds;
//! `failureThreshold` consecutive failures of a startup or liveness probe stop the
//! container, which then restarts unless restartPolicy is Never; readiness drives
//! `ready`. postStart runs right after the start and the container is Running only
//! once it succeeded; a failed postStart stops the container.
//!
//! Back-off (kubelet): the first restart comes at once; each later one waits 10 s, 20 s,
//! 40 s, ... capped at 300 s, counted from the exit; the back-off resets once a container
//! has run 10 minutes. All three figures scale with `--backoff-scale` for tests.
//!
//! Stopping a container: preStop (its time counts against the grace period), SIGTERM,
//! then SIGKILL through the leaf's cgroup.kill when the grace period is over; a preStop
//! that used it all up leaves the container a last 2 s. A pod stops by stopping every
//! container that way at once; then pause goes and the cgroups are removed.

use crate::cgroup::{memory, PodCgroup};
use crate::cli::RestartPolicy;
use crate::logs::{LineSplitter, LogFile, Stream};
use crate::namespaces::Pause;
use crate::probe::{Run, Verdict};
use crate::process::{self, Request};
use crate::spec::{Action, ContainerSpec, PodSpec, Probe, ProbeKind};
use crate::state::{self, PodRecord};
use crate::status::{self, now_rfc3339, ContainerState, ContainerStatus, PodStatus, Terminated};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const BACKOFF_BASE: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
const BACKOFF_RESET: Duration = Duration::from_secs(600);
/// What a container still gets after a preStop hook used up its grace period.
const MIN_GRACE_AFTER_PRESTOP: Duration = Duration::from_secs(2);

/// The kubelet's restart back-off for one container.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    scale: f64,
    next: Option<Duration>,
}

impl Backoff {
    pub fn new(scale: f64) -> Backoff {
        Backoff { scale, next: None }
    }

    /// Delay before restarting a container that ran for `ran`; advances the back-off.
    pub fn on_exit(&mut self, ran: Duration) -> Duration {
        if ran >= BACKOFF_RESET.mul_f64(self.scale) {
            self.next = None;
        }
        match self.next {
            None => {
                self.next = Some(BACKOFF_BASE.mul_f64(self.scale));
                Duration::ZERO
            }
            Some(d) => {
                self.next = Some((d * 2).min(BACKOFF_MAX.mul_f64(self.scale)));
                d
            }
        }
    }
}

struct Pipe {
    fd: OwnedFd,
    stream: Stream,
    split: LineSplitter,
}

struct Container {
    spec: ContainerSpec,
    /// An init container: runs to success before any app container starts.
    init: bool,
    leaf: PathBuf,
    leaf_dir: File,
    pid: Option<i32>,
    pidfd: Option<OwnedFd>,
    started: Option<(Instant, String)>,
    oom_before: u64,
    exec_error: Option<String>,
    status: ContainerStatus,
    backoff: Backoff,
    next_start: Option<Instant>,
    log: LogFile,
    pipes: Vec<Pipe>,
    /// The probes of the running container, from when postStart is done.
    probes: Vec<ProbeState>,
    /// A postStart or preStop hook in flight.
    hook: Option<(Hook, Run)>,
    /// Set while the container is being stopped.
    stop: Option<Stop>,
    /// Why the supervisor stopped it (a probe, a hook), for its terminated state.
    stop_message: Option<String>,
    /// Restart whatever the exit status (failed liveness or startup probe), unless Never.
    force_restart: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Hook {
    PostStart,
    PreStop,
}

struct Stop {
    began: Instant,
    grace: Duration,
    /// SIGTERM was sent (after preStop, if any).
    termed: bool,
    /// When SIGKILL comes, once SIGTERM was sent.
    kill_at: Instant,
    killed: bool,
}

struct ProbeState {
    kind: ProbeKind,
    probe: Probe,
    next: Instant,
    successes: u32,
    failures: u32,
    run: Option<Run>,
}

/// What poll watches besides the signalfd.
#[derive(Clone, Copy)]
enum Source {
    Pipe(usize, usize),
    Hook(usize),
    Probe(usize, usize),
}

pub struct Supervisor {
    spec: PodSpec,
    pod_dir: PathBuf,
    cgroup: PodCgroup,
    pause: Option<Pause>,
    containers: Vec<Container>,
    status: PodStatus,
    foreground: bool,
    signals: SignalFd,
    /// The whole pod is stopping (down, ^C, active deadline).
    stopping: bool,
    pause_died: Option<String>,
    /// An init container failed and will not be retried (restartPolicy Never).
    init_failed: bool,
    /// When activeDeadlineSeconds runs out.
    deadline: Option<Instant>,
    deadline_exceeded: bool,
    /// A stop was asked for (down, ^C): the pod's state goes with it.
    stop_asked: bool,
}

/// How the supervisor ended, for `up`'s exit status.
pub struct Outcome {
    pub phase: String,
    pub exit_code: i32,
}

/// The signals the supervisor takes through its signalfd; block them before any
/// child exists so none is lost.
pub fn block_signals() -> nix::Result<SigSet> {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
    ] {
        set.add(s);
    }
    set.thread_block()?;
    Ok(set)
}

impl Supervisor {
    pub fn new(
        spec: PodSpec,
        pod_dir: PathBuf,
        cgroup: PodCgroup,
        pause: Pause,
        signals: SigSet,
        foreground: bool,
    ) -> anyhow::Result<Supervisor> {
        use anyhow::Context;
        let signals = SignalFd::with_flags(
            &signals,
            nix::sys::signalfd::SfdFlags::SFD_CLOEXEC | nix::sys::signalfd::SfdFlags::SFD_NONBLOCK,
        )
        .context("signalfd")?;
        let mut containers = Vec::new();
        let has_init = !spec.init_containers.is_empty();
        let spec_deadline = spec.active_deadline.map(|d| Instant::now() + d);
        for (i, c) in spec.all_containers().enumerate() {
            let init = i < spec.init_containers.len();
            // With init containers, only the first is due; app containers wait for all.
            let (due, reason) = match (has_init, init, i) {
                (false, _, _) | (true, true, 0) => (true, "ContainerCreating"),
                (true, true, _) => (false, "ContainerCreating"),
                (true, false, _) => (false, "PodInitializing"),
            };
            let leaf = cgroup.leaf(&c.name);
            let leaf_dir = File::open(&leaf)
                .with_context(|| format!("failed to open cgroup {}", leaf.display()))?;
            let log_path = pod_dir.join("logs").join(format!("{}.log", c.name));
            let log = LogFile::open(&log_path)
                .with_context(|| format!("failed to open {}", log_path.display()))?;
            containers.push(Container {
                spec: c.clone(),
                init,
                leaf,
                leaf_dir,
                pid: None,
                pidfd: None,
                started: None,
                oom_before: 0,
                exec_error: None,
                status: ContainerStatus {
                    name: c.name.clone(),
                    ready: false,
                    started: false,
                    restart_count: 0,
                    state: ContainerState::waiting(reason, None),
                    last_state: ContainerState::default(),
                    image: "host".into(),
                    image_id: String::new(),
                    pid: None,
                },
                backoff: Backoff::new(spec.backoff_scale),
                next_start: due.then(Instant::now),
                log,
                pipes: Vec::new(),
                probes: Vec::new(),
                hook: None,
                stop: None,
                stop_message: None,
                force_restart: false,
            });
        }
        let mut conditions = Vec::new();
        for (kind, value) in [
            ("PodScheduled", true),
            ("Initialized", !has_init),
            ("ContainersReady", false),
            ("Ready", false),
        ] {
            status::set_condition(&mut conditions, kind, value);
        }
        let status = PodStatus {
            phase: "Pending".into(),
            reason: None,
            message: None,
            conditions,
            start_time: now_rfc3339(),
            init_container_statuses: Vec::new(),
            container_statuses: Vec::new(),
        };
        Ok(Supervisor {
            spec,
            pod_dir,
            cgroup,
            pause: Some(pause),
            containers,
            status,
            foreground,
            signals,
            stopping: false,
            pause_died: None,
            init_failed: false,
            deadline: spec_deadline,
            deadline_exceeded: false,
            stop_asked: false,
        })
    }

    /// Starts every container once, then reports through `ready` (for `up -d`).
    pub fn run(mut self, mut ready: Option<File>) -> Outcome {
        self.start_due();
        self.publish();
        if let Some(mut r) = ready.take() {
            let _ = r.write_all(b"ok\n");
        }
        loop {
            if !self.stopping && self.pause_died.is_none() {
                self.start_due();
            }
            self.publish();
            if self.finished() {
                return self.finish();
            }
            self.wait_for_events();
            self.on_timers();
        }
    }

    /// Everything whose time has come: the pod's deadline, hooks and probes that ran
    /// out of time, probes that are due, SIGKILLs at the end of grace periods.
    fn on_timers(&mut self) {
        let now = Instant::now();
        if !self.stopping && self.deadline.is_some_and(|d| now >= d) {
            // Kubernetes stops the pod the way `down` does and marks it Failed.
            self.deadline_exceeded = true;
            self.begin_stop();
        }
        for i in 0..self.containers.len() {
            let c = &mut self.containers[i];
            if c.hook.as_ref().is_some_and(|(_, r)| expired(r, now)) {
                if let Some((hook, run)) = c.hook.take() {
                    let limit = match hook {
                        Hook::PreStop => "the grace period",
                        Hook::PostStart => "its time",
                    };
                    self.hook_done(i, hook, run.expired(limit));
                }
            }
            let mut pi = 0;
            while pi < self.containers[i].probes.len() {
                let p = &mut self.containers[i].probes[pi];
                if p.run.as_ref().is_some_and(|r| expired(r, now)) {
                    if let Some(run) = p.run.take() {
                        let limit = crate::quantity::format_duration(p.probe.timeout);
                        self.probe_done(i, pi, run.expired(&limit));
                    }
                } else if p.run.is_none() && p.next <= now {
                    self.start_probe(i, pi);
                }
                pi += 1;
            }
            let c = &mut self.containers[i];
            if let Some(stop) = c.stop.as_mut().filter(|s| s.termed && !s.killed) {
                if now >= stop.kill_at {
                    stop.killed = true;
                    kill_container(&self.cgroup, c);
                }
            }
        }
    }

    fn finished(&self) -> bool {
        let none_running = self.containers.iter().all(|c| c.pid.is_none());
        if self.stopping || self.pause_died.is_some() {
            return none_running;
        }
        none_running && matches!(self.status.phase.as_str(), "Succeeded" | "Failed")
    }

    fn start_due(&mut self) {
        let now = Instant::now();
        if !self
            .containers
            .iter()
            .any(|c| c.next_start.is_some_and(|t| t <= now))
        {
            return;
        }
        // A container killed together with pause must not be restarted into a dead
        // namespace: take every pending exit first.
        self.reap();
        if self.pause_died.is_some() {
            return;
        }
        let pause_fd = match &self.pause {
            Some(p) => p.pidfd.as_raw_fd(),
            None => return,
        };
        for i in 0..self.containers.len() {
            // As the kubelet: containers start in order, and a postStart hook in
            // flight holds back the ones after it.
            let post_start = |c: &Container| matches!(c.hook, Some((Hook::PostStart, _)));
            if self.containers.iter().any(post_start) {
                return;
            }
            let due = self.containers[i].next_start.is_some_and(|t| t <= now);
            if due {
                self.start(i, pause_fd);
            }
        }
    }

    fn start(&mut self, i: usize, pause_fd: i32) {
        let c = &mut self.containers[i];
        c.next_start = None;
        let (out_r, out_w) = match crate::sys::pipe() {
            Ok(p) => p,
            Err(e) => return self.cannot_run(i, format!("pipe: {e}")),
        };
        let (err_r, err_w) = match crate::sys::pipe() {
            Ok(p) => p,
            Err(e) => return self.cannot_run(i, format!("pipe: {e}")),
        };
        let devnull = match File::open("/dev/null") {
            Ok(f) => f,
            Err(e) => return self.cannot_run(i, format!("/dev/null: {e}")),
        };
        for fd in [&out_r, &err_r] {
            let _ = nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            );
        }
        let c = &mut self.containers[i];
        c.oom_before = memory::oom_kills(&c.leaf);
        let stdio = [devnull.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()];
        let spawned = self.spawn_in(i, &self.containers[i].spec.command, stdio, pause_fd);
        let c = &mut self.containers[i];
        match spawned {
            Ok(started) => {
                let at = now_rfc3339();
                c.pid = Some(started.pid);
                c.pidfd = Some(started.pidfd);
                c.started = Some((Instant::now(), at.clone()));
                c.exec_error = started
                    .exec_error
                    .map(|e| process::exec_error_message(&c.spec.command[0], &e));
                c.pipes = vec![
                    Pipe {
                        fd: out_r,
                        stream: Stream::Stdout,
                        split: LineSplitter::default(),
                    },
                    Pipe {
                        fd: err_r,
                        stream: Stream::Stderr,
                        split: LineSplitter::default(),
                    },
                ];
                if c.exec_error.is_none() {
                    c.status.pid = Some(started.pid);
                    match c.spec.post_start.clone() {
                        // Not Running until postStart is done: still ContainerCreating.
                        Some(action) => self.run_hook(i, Hook::PostStart, &action, None),
                        None => self.running(i),
                    }
                }
            }
            Err(e) => {
                let msg = format!("{:#}", anyhow::Error::from(e));
                self.cannot_run(i, msg);
            }
        }
    }

    /// Starts `argv` as a process of container `i`: its cgroup, user, capabilities,
    /// environment and working directory.
    fn spawn_in(
        &self,
        i: usize,
        argv: &[String],
        stdio: [i32; 3],
        pause_fd: i32,
    ) -> Result<process::Started, process::SpawnError> {
        let c = &self.containers[i];
        let leaf_name = c.leaf.display().to_string();
        let env = self.spec.env_of(&c.spec);
        process::spawn(&Request {
            argv,
            env: &env,
            hostname: &self.spec.hostname,
            cgroup: &c.leaf_dir,
            cgroup_name: &leaf_name,
            pause: pause_fd,
            stdio,
            capabilities: self.spec.capabilities_of(&c.spec),
            user: c.spec.user,
            group: c.spec.group,
            cwd: c.spec.working_dir.as_deref(),
        })
    }

    /// Starts a probe's or hook's action for container `i`. An exec runs in the
    /// container (its namespaces, cgroup, user) with no stdio.
    fn launch(&self, i: usize, action: &Action, deadline: Option<Instant>) -> Result<Run, Verdict> {
        match action {
            Action::Exec(argv) => {
                let pause_fd = match &self.pause {
                    Some(p) => p.pidfd.as_raw_fd(),
                    None => return Err(Verdict::Failure("the pod is gone".into())),
                };
                let devnull = File::options()
                    .read(true)
                    .write(true)
                    .open("/dev/null")
                    .map_err(|e| Verdict::Failure(format!("/dev/null: {e}")))?;
                let fd = devnull.as_raw_fd();
                let started = self
                    .spawn_in(i, argv, [fd, fd, fd], pause_fd)
                    .map_err(|e| Verdict::Failure(format!("{:#}", anyhow::Error::from(e))))?;
                if let Some(e) = started.exec_error {
                    return Err(Verdict::Failure(process::exec_error_message(&argv[0], &e)));
                }
                Ok(Run::exec(started.pid, started.pidfd, deadline))
            }
            Action::HttpGet {
                host,
                port,
                path,
                headers,
            } => Run::connect(*host, *port, Some((path, headers)), deadline),
            Action::TcpSocket { host, port } => Run::connect(*host, *port, None, deadline),
            Action::Sleep(d) => {
                let until = Instant::now() + *d;
                Ok(Run::sleep(deadline.map_or(until, |dl| dl.min(until))))
            }
        }
    }

    fn run_hook(&mut self, i: usize, hook: Hook, action: &Action, deadline: Option<Instant>) {
        match self.launch(i, action, deadline) {
            Ok(run) => self.containers[i].hook = Some((hook, run)),
            Err(outcome) => self.hook_done(i, hook, outcome),
        }
    }

    fn hook_done(&mut self, i: usize, hook: Hook, outcome: Verdict) {
        let c = &mut self.containers[i];
        match (hook, outcome) {
            _ if c.pid.is_none() => {}
            (Hook::PostStart, _) if c.stop.is_some() => {}
            (Hook::PostStart, Verdict::Success) => self.running(i),
            (Hook::PostStart, Verdict::Failure(why)) => {
                let msg = format!("PostStartHook failed: {why}");
                self.event(i, &msg);
                self.containers[i].stop_message = Some(msg);
                self.stop_container(i, self.spec.grace);
            }
            (Hook::PreStop, outcome) => {
                if let Verdict::Failure(why) = outcome {
                    self.event(i, &format!("PreStopHook failed: {why}"));
                }
                self.terminate(i);
            }
        }
    }

    /// postStart is done (or there is none): the container is Running; its probes begin.
    fn running(&mut self, i: usize) {
        let c = &mut self.containers[i];
        let Some((since, at)) = c.started.clone() else {
            return;
        };
        c.status.state = ContainerState::running(at);
        c.status.started = c.spec.probes.startup.is_none();
        c.status.ready = c.status.started && c.spec.probes.readiness.is_none();
        let now = Instant::now();
        c.probes = c
            .spec
            .probes
            .iter()
            .map(|(kind, probe)| ProbeState {
                kind,
                probe: probe.clone(),
                // initialDelaySeconds counts from the container's start.
                next: (since + probe.initial_delay).max(now),
                successes: 0,
                failures: 0,
                run: None,
            })
            .collect();
    }

    fn start_probe(&mut self, i: usize, pi: usize) {
        let c = &mut self.containers[i];
        let p = &mut c.probes[pi];
        let now = Instant::now();
        p.next = now + p.probe.period;
        // Until the startup probe succeeded, liveness and readiness wait their turn.
        if p.kind != ProbeKind::Startup && !c.status.started {
            return;
        }
        let action = p.probe.action.clone();
        let deadline = Some(now + p.probe.timeout);
        match self.launch(i, &action, deadline) {
            Ok(run) => self.containers[i].probes[pi].run = Some(run),
            Err(outcome) => self.probe_done(i, pi, outcome),
        }
    }

    /// One probe result, counted against the probe's thresholds.
    fn probe_done(&mut self, i: usize, pi: usize, outcome: Verdict) {
        let c = &mut self.containers[i];
        let p = &mut c.probes[pi];
        let kind = p.kind;
        let why = match outcome {
            Verdict::Success => {
                p.successes += 1;
                p.failures = 0;
                if p.successes < p.probe.success_threshold {
                    return;
                }
                match kind {
                    ProbeKind::Startup => {
                        // Done for this container: liveness and readiness take over.
                        c.probes.remove(pi);
                        c.status.started = true;
                        c.status.ready = c.spec.probes.readiness.is_none();
                        let now = Instant::now();
                        for p in &mut c.probes {
                            p.next = p.next.min(now);
                        }
                    }
                    ProbeKind::Readiness => c.status.ready = true,
                    ProbeKind::Liveness => {}
                }
                return;
            }
            Verdict::Failure(why) => why,
        };
        p.successes = 0;
        p.failures += 1;
        let failures = p.failures;
        let threshold = p.probe.failure_threshold;
        let grace = p.probe.grace.unwrap_or(self.spec.grace);
        self.event(i, &format!("{} probe failed: {why}", kind.name()));
        if failures < threshold {
            return;
        }
        let c = &mut self.containers[i];
        match kind {
            ProbeKind::Readiness => c.status.ready = false,
            ProbeKind::Startup | ProbeKind::Liveness => {
                let what = kind.name().to_lowercase();
                c.stop_message = Some(format!(
                    "Container {} failed {what} probe, will be restarted: {why}",
                    c.spec.name
                ));
                c.force_restart = true;
                self.stop_container(i, grace);
            }
        }
    }

    /// What the kubelet would record as an event, on the terminal in the foreground.
    fn event(&self, i: usize, message: &str) {
        if self.foreground {
            eprintln!("launcher: {}: {message}", self.containers[i].spec.name);
        }
    }

    /// Stops one container: preStop, SIGTERM, SIGKILL once `grace` is over.
    fn stop_container(&mut self, i: usize, grace: Duration) {
        let c = &mut self.containers[i];
        if c.pid.is_none() || c.stop.is_some() {
            return;
        }
        for p in c.probes.drain(..) {
            if let Some(run) = p.run {
                run.cancel();
            }
        }
        if let Some((_, run)) = c.hook.take() {
            run.cancel();
        }
        c.status.ready = false;
        let now = Instant::now();
        c.stop = Some(Stop {
            began: now,
            grace,
            termed: false,
            kill_at: now + grace,
            killed: false,
        });
        match c.spec.pre_stop.clone() {
            Some(action) if !grace.is_zero() => {
                self.run_hook(i, Hook::PreStop, &action, Some(now + grace))
            }
            _ => self.terminate(i),
        }
    }

    /// SIGTERM to a stopping container (after its preStop); SIGKILL is scheduled.
    fn terminate(&mut self, i: usize) {
        let c = &mut self.containers[i];
        let had_pre_stop = c.spec.pre_stop.is_some();
        let Some(stop) = c.stop.as_mut().filter(|s| !s.termed) else {
            return;
        };
        stop.termed = true;
        if let Some(fd) = &c.pidfd {
            let _ = crate::sys::pidfd_send_signal(fd, libc::SIGTERM);
        }
        if stop.grace.is_zero() {
            stop.killed = true;
            kill_container(&self.cgroup, c);
        } else if had_pre_stop {
            let left = stop.grace.saturating_sub(stop.began.elapsed());
            stop.kill_at = Instant::now() + left.max(MIN_GRACE_AFTER_PRESTOP);
        }
    }

    /// A container that could not even be cloned: terminated as ContainerCannotRun.
    fn cannot_run(&mut self, i: usize, message: String) {
        let now = now_rfc3339();
        let t = Terminated {
            exit_code: 128,
            signal: None,
            reason: "ContainerCannotRun".into(),
            message: Some(message),
            started_at: now.clone(),
            finished_at: now,
        };
        self.exited(i, t, Duration::ZERO);
    }

    /// The earliest timer: a start, the pod's deadline, a hook's or probe's deadline,
    /// a probe's next run, a SIGKILL.
    fn next_wake(&self) -> Option<Instant> {
        let mut times: Vec<Instant> = Vec::new();
        if !self.stopping {
            times.extend(self.deadline);
        }
        for c in &self.containers {
            times.extend(c.next_start);
            times.extend(c.hook.as_ref().and_then(|(_, r)| r.deadline));
            for p in &c.probes {
                times.push(match &p.run {
                    Some(r) => r.deadline.unwrap_or(p.next),
                    None => p.next,
                });
            }
            if let Some(s) = c.stop.as_ref().filter(|s| s.termed && !s.killed) {
                times.push(s.kill_at);
            }
        }
        times.into_iter().min()
    }

    fn wait_for_events(&mut self) {
        let timeout = match self.next_wake() {
            None => PollTimeout::NONE,
            Some(t) => {
                let left = t.saturating_duration_since(Instant::now());
                // Rounded up, so a timer is never polled for again just before it is due.
                let ms = left.as_micros().div_ceil(1000).min(60_000) as u16;
                PollTimeout::from(ms)
            }
        };
        let mut sources: Vec<Source> = Vec::new();
        let mut fds = vec![PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
        for (ci, c) in self.containers.iter().enumerate() {
            for (pi, p) in c.pipes.iter().enumerate() {
                fds.push(PollFd::new(p.fd.as_fd(), PollFlags::POLLIN));
                sources.push(Source::Pipe(ci, pi));
            }
            if let Some((fd, flags)) = c.hook.as_ref().and_then(|(_, r)| r.interest()) {
                fds.push(PollFd::new(fd, flags));
                sources.push(Source::Hook(ci));
            }
            for (pi, p) in c.probes.iter().enumerate() {
                if let Some((fd, flags)) = p.run.as_ref().and_then(Run::interest) {
                    fds.push(PollFd::new(fd, flags));
                    sources.push(Source::Probe(ci, pi));
                }
            }
        }
        match nix::poll::poll(&mut fds, timeout) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        // Drain output before reaping, so a container's last words are logged first.
        // Backwards, so removing a finished pipe leaves the other indices valid.
        for (k, source) in sources.iter().enumerate().rev() {
            if let (true, Source::Pipe(ci, pi)) = (ready[k + 1], *source) {
                self.drain(ci, pi);
            }
        }
        for (k, source) in sources.iter().enumerate() {
            if !ready[k + 1] {
                continue;
            }
            match *source {
                Source::Pipe(..) => {}
                Source::Hook(ci) => {
                    let c = &mut self.containers[ci];
                    if let Some(outcome) = c.hook.as_mut().and_then(|(_, r)| r.ready()) {
                        if let Some((hook, _)) = c.hook.take() {
                            self.hook_done(ci, hook, outcome);
                        }
                    }
                }
                Source::Probe(ci, pi) => {
                    // A probe that stopped the container took the other probes with it.
                    let Some(p) = self.containers[ci].probes.get_mut(pi) else {
                        continue;
                    };
                    if let Some(outcome) = p.run.as_mut().and_then(Run::ready) {
                        p.run = None;
                        self.probe_done(ci, pi, outcome);
                    }
                }
            }
        }
        if ready[0] {
            self.handle_signals();
        }
    }

    /// Reads what one pipe has now. Returns false once the pipe is at EOF (and
    /// removed) or has nothing more to give: read ends are non-blocking, because a
    /// container's children may hold the write end long after it exited.
    fn drain(&mut self, ci: usize, pi: usize) -> bool {
        let mut buf = [0u8; 8192];
        let fg = self.foreground;
        let c = &mut self.containers[ci];
        let n = match crate::sys::read(c.pipes[pi].fd.as_raw_fd(), &mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => 0,
        };
        let (name, stream, log) = (&c.spec.name, c.pipes[pi].stream, &mut c.log);
        let mut emit = |line: &[u8], full: bool| output(log, name, stream, fg, line, full);
        if n == 0 {
            c.pipes[pi].split.finish(&mut emit);
            c.pipes.remove(pi);
            return false;
        }
        c.pipes[pi].split.feed(&buf[..n], &mut emit);
        true
    }

    fn handle_signals(&mut self) {
        while let Ok(Some(info)) = self.signals.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => self.reap(),
                Ok(_) => {
                    self.stop_asked = true;
                    self.begin_stop();
                }
                Err(_) => {}
            }
        }
    }

    fn reap(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => self.on_exit(pid.as_raw(), code, None),
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    self.on_exit(pid.as_raw(), 128 + sig as i32, Some(sig as i32))
                }
                Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => return,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    }

    fn on_exit(&mut self, pid: i32, code: i32, signal: Option<i32>) {
        if self.pause.as_ref().is_some_and(|p| p.pid == pid) {
            // pause only ends before `finish` if something else ended it.
            self.pause = None;
            let how = signal.map_or(format!("exited {code}"), |s| {
                format!("was killed by signal {s}")
            });
            self.pause_died = Some(format!(
                "pause (PID 1 of the pod) {how}: the kernel killed every process in the pod"
            ));
            if self.cgroup.kill().is_err() {
                for c in &self.containers {
                    if let Some(fd) = &c.pidfd {
                        let _ = crate::sys::pidfd_send_signal(fd, libc::SIGKILL);
                    }
                }
            }
            return;
        }
        if self.exec_exited(pid, code) {
            return;
        }
        let Some(i) = self.containers.iter().position(|c| c.pid == Some(pid)) else {
            return;
        };
        // Log what is already in the pipes before the exit is recorded.
        for pi in (0..self.containers[i].pipes.len()).rev() {
            while self.drain(i, pi) {}
        }
        let c = &mut self.containers[i];
        let (ran, started_at) = c
            .started
            .take()
            .map_or((Duration::ZERO, now_rfc3339()), |(t, at)| (t.elapsed(), at));
        let oom = memory::oom_kills(&c.leaf) > c.oom_before;
        // What the main process leaves behind goes with it, as when a container's
        // runtime deletes it: a restart starts from an empty leaf.
        self.cgroup.kill_leaf(&c.spec.name);
        let (reason, message) = match (&c.exec_error, oom, code) {
            (Some(msg), _, _) => ("ContainerCannotRun", Some(msg.clone())),
            (None, true, _) => ("OOMKilled", None),
            (None, false, 0) => ("Completed", None),
            _ => ("Error", None),
        };
        let t = Terminated {
            exit_code: code,
            signal,
            reason: reason.into(),
            message,
            started_at,
            finished_at: now_rfc3339(),
        };
        self.exited(i, t, ran);
    }

    /// An exec hook or probe exited: its result. False if `pid` is none of them.
    fn exec_exited(&mut self, pid: i32, code: i32) -> bool {
        for i in 0..self.containers.len() {
            let c = &mut self.containers[i];
            if c.hook.as_ref().is_some_and(|(_, r)| r.pid() == Some(pid)) {
                if let Some((hook, _)) = c.hook.take() {
                    self.hook_done(i, hook, Run::exited(code));
                }
                return true;
            }
            if let Some(pi) = c
                .probes
                .iter()
                .position(|p| p.run.as_ref().is_some_and(|r| r.pid() == Some(pid)))
            {
                c.probes[pi].run = None;
                self.probe_done(i, pi, Run::exited(code));
                return true;
            }
        }
        false
    }

    fn exited(&mut self, i: usize, mut t: Terminated, ran: Duration) {
        let stopping = self.stopping || self.pause_died.is_some();
        let policy = self.spec.restart;
        let pod = self.spec.name.clone();
        let c = &mut self.containers[i];
        c.pid = None;
        c.pidfd = None;
        c.exec_error = None;
        c.status.pid = None;
        c.status.ready = false;
        c.status.started = false;
        c.stop = None;
        if let Some((_, run)) = c.hook.take() {
            run.cancel();
        }
        for p in c.probes.drain(..) {
            if let Some(run) = p.run {
                run.cancel();
            }
        }
        if let Some(msg) = c.stop_message.take() {
            t.message = Some(msg);
        }
        let forced = std::mem::take(&mut c.force_restart) && policy != RestartPolicy::Never;
        let code = t.exit_code;
        if c.init && code == 0 && !stopping {
            // Done for good: init containers are never restarted after success.
            c.status.state = ContainerState::terminated(t);
            c.status.ready = true;
            self.start_next_stage();
            return;
        }
        if stopping || !(forced || status::restarts(policy, code)) {
            self.init_failed |= c.init && !stopping;
            if self.deadline_exceeded {
                t.reason = "DeadlineExceeded".into();
            }
            c.status.state = ContainerState::terminated(t);
            return;
        }
        let delay = c.backoff.on_exit(ran);
        c.status.last_state = ContainerState::terminated(t);
        c.status.restart_count += 1;
        c.next_start = Some(Instant::now() + delay);
        if delay.is_zero() {
            c.status.state = ContainerState::waiting("ContainerCreating", None);
        } else {
            let msg = format!(
                "back-off {} restarting failed container={} pod={pod}",
                crate::quantity::format_duration(delay),
                c.spec.name
            );
            c.status.state = ContainerState::waiting("CrashLoopBackOff", Some(msg));
        }
    }

    /// After an init container succeeded: the next one, or else every app container.
    fn start_next_stage(&mut self) {
        let now = Some(Instant::now());
        if let Some(next) = self.containers.iter_mut().find(|c| c.init && !succeeded(c)) {
            next.next_start = now;
            return;
        }
        for c in self.containers.iter_mut().filter(|c| !c.init) {
            c.next_start = now;
            c.status.state = ContainerState::waiting("ContainerCreating", None);
        }
    }

    /// Stops every container at once, each with its preStop, SIGTERM and SIGKILL.
    pub fn begin_stop(&mut self) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        let grace = std::fs::read_to_string(self.pod_dir.join("stop"))
            .ok()
            .and_then(|s| crate::quantity::parse_duration(s.trim()).ok())
            .unwrap_or(self.spec.grace);
        for i in 0..self.containers.len() {
            self.containers[i].next_start = None;
            self.stop_container(i, grace);
        }
    }

    fn publish(&mut self) {
        let (inits, apps): (Vec<&Container>, Vec<&Container>) =
            self.containers.iter().partition(|c| c.init);
        let initialized = inits.iter().all(|c| succeeded(c));
        self.status.init_container_statuses = inits.iter().map(|c| c.status.clone()).collect();
        self.status.container_statuses = apps.iter().map(|c| c.status.clone()).collect();
        let mut phase = if self.init_failed {
            "Failed".to_string()
        } else if !initialized {
            "Pending".to_string()
        } else {
            status::phase(self.spec.restart, &self.status.container_statuses).to_string()
        };
        if let Some(msg) = &self.pause_died {
            phase = "Failed".into();
            self.status.reason = Some("PauseDied".into());
            self.status.message = Some(msg.clone());
        } else if self.deadline_exceeded {
            phase = "Failed".into();
            self.status.reason = Some("DeadlineExceeded".into());
            self.status.message =
                Some("Pod was active on the node longer than the specified deadline".into());
        }
        self.status.phase = phase;
        let incomplete: Vec<&str> = self
            .containers
            .iter()
            .filter(|c| c.init && !succeeded(c))
            .map(|c| c.spec.name.as_str())
            .collect();
        let unready: Vec<&str> = self
            .containers
            .iter()
            .filter(|c| !c.init && !c.status.ready)
            .map(|c| c.spec.name.as_str())
            .collect();
        let conditions = &mut self.status.conditions;
        let not_init = "ContainersNotInitialized";
        status::set_condition_for(
            conditions,
            "Initialized",
            not_init,
            "incomplete",
            &incomplete,
        );
        for kind in ["ContainersReady", "Ready"] {
            status::set_condition_for(conditions, kind, "ContainersNotReady", "unready", &unready);
        }
        let _ = state::write_json(&self.pod_dir.join("status.json"), &self.status);
    }

    /// Stops pause, removes the cgroups; the state stays for `status` unless a stop
    /// was asked for (down, ^C) or the pod ran in the foreground.
    fn finish(mut self) -> Outcome {
        // Last words: whatever is still in the pipes, and unfinished lines as records.
        let fg = self.foreground;
        for ci in 0..self.containers.len() {
            for pi in (0..self.containers[ci].pipes.len()).rev() {
                while self.drain(ci, pi) {}
            }
            let c = &mut self.containers[ci];
            for pipe in &mut c.pipes {
                let (log, name, stream) = (&mut c.log, &c.spec.name, pipe.stream);
                pipe.split
                    .finish(|line, full| output(log, name, stream, fg, line, full));
            }
        }
        if let Some(p) = self.pause.take() {
            let _ = crate::sys::pidfd_send_signal(&p.pidfd, libc::SIGTERM);
            let _ = waitpid(Pid::from_raw(p.pid), None);
        }
        let _ = self.cgroup.kill();
        let _ = self.cgroup.remove(Duration::from_secs(5));
        self.publish();
        let exit_code = self
            .containers
            .iter()
            .filter_map(|c| c.status.state.terminated.as_ref().map(|t| t.exit_code))
            .find(|&code| code != 0)
            .unwrap_or(if self.pause_died.is_some() { 1 } else { 0 });
        if self.foreground || self.stop_asked {
            let _ = std::fs::remove_dir_all(&self.pod_dir);
        }
        Outcome {
            phase: self.status.phase.clone(),
            exit_code,
        }
    }
}

fn expired(run: &Run, now: Instant) -> bool {
    run.deadline.is_some_and(|d| now >= d)
}

/// SIGKILL to everything in a container's leaf, its exec probes too.
fn kill_container(cgroup: &PodCgroup, c: &Container) {
    if let Some(fd) = &c.pidfd {
        let _ = crate::sys::pidfd_send_signal(fd, libc::SIGKILL);
    }
    cgroup.kill_leaf(&c.spec.name);
}

/// One record of a container's output: to its log and, in the foreground, to the
/// terminal prefixed with the container's name.
fn output(
    log: &mut LogFile,
    name: &str,
    stream: Stream,
    foreground: bool,
    line: &[u8],
    full: bool,
) {
    log.record(stream, line, full);
    if foreground {
        print_line(name, stream, line);
    }
}

/// An init container that has run to completion.
fn succeeded(c: &Container) -> bool {
    c.status
        .state
        .terminated
        .as_ref()
        .is_some_and(|t| t.exit_code == 0)
}

fn print_line(name: &str, stream: Stream, line: &[u8]) {
    let text = String::from_utf8_lossy(line);
    if stream == Stream::Stderr {
        eprintln!("[{name}] {text}");
    } else {
        println!("[{name}] {text}");
    }
}

/// The record `up` writes before the supervisor takes over.
pub fn record_for(spec: &PodSpec, cgroup: &std::path::Path) -> PodRecord {
    PodRecord {
        spec: spec.clone(),
        uid: uid(),
        created: now_rfc3339(),
        cgroup: cgroup.to_path_buf(),
        pause_binary: PathBuf::new(),
        pause: None,
        supervisor: None,
    }
}

fn uid() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_immediate_then_doubles_to_the_cap() {
        let mut b = Backoff::new(1.0);
        let secs: Vec<u64> = (0..8)
            .map(|_| b.on_exit(Duration::from_secs(1)).as_secs())
            .collect();
        assert_eq!(secs, [0, 10, 20, 40, 80, 160, 300, 300]);
    }

    #[test]
    fn backoff_resets_after_ten_minutes_of_running() {
        let mut b = Backoff::new(1.0);
        b.on_exit(Duration::ZERO);
        b.on_exit(Duration::ZERO);
        assert_eq!(b.on_exit(Duration::from_secs(600)), Duration::ZERO);
        assert_eq!(b.on_exit(Duration::ZERO), Duration::from_secs(10));
    }

    #[test]
    fn backoff_scales() {
        let mut b = Backoff::new(0.01);
        assert_eq!(b.on_exit(Duration::ZERO), Duration::ZERO);
        assert_eq!(b.on_exit(Duration::ZERO), Duration::from_millis(100));
        assert_eq!(b.on_exit(Duration::from_secs(6)), Duration::ZERO);
    }
}
