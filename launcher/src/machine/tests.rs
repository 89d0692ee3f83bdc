//! The kubelet's rules, driven with a fake clock: no root, no processes, no sleeping.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::spec::{Probes, Volume};

const S: fn(u64) -> Duration = Duration::from_secs;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn ctr(name: &str) -> ContainerSpec {
    ContainerSpec {
        name: name.into(),
        command: vec!["x".into()],
        ..Default::default()
    }
}

fn pod_of(containers: Vec<ContainerSpec>) -> PodSpec {
    PodSpec {
        containers,
        ..crate::spec::tests::pod()
    }
}

fn pod(names: &[&str]) -> PodSpec {
    pod_of(names.iter().map(|n| ctr(n)).collect())
}

fn exec() -> Action {
    Action::Exec(vec!["check".into()])
}

fn probe(period: u64, failure: u32) -> Probe {
    Probe {
        action: exec(),
        initial_delay: Duration::ZERO,
        period: S(period),
        timeout: S(1),
        success_threshold: 1,
        failure_threshold: failure,
        grace: None,
    }
}

fn exit(code: i32) -> Exit {
    Exit {
        code,
        signal: None,
        oom: false,
        message: None,
    }
}

/// The machine and a fake driver: spawns succeed at once unless told otherwise,
/// and every effect is kept for the test to look at.
struct Sim {
    pod: Pod,
    now: Time,
    fx: Vec<Effect>,
    next_pid: i32,
    status: Option<PodStatus>,
}

impl Sim {
    fn new(spec: PodSpec) -> Sim {
        Sim::scaled(spec, 1.0)
    }

    /// With back-off delays scaled by `scale`.
    fn scaled(spec: PodSpec, scale: f64) -> Sim {
        let mut sim = Sim {
            pod: Pod::new(spec, SystemTime::UNIX_EPOCH).with_backoff_scale(scale),
            now: Duration::ZERO,
            fx: Vec::new(),
            next_pid: 100,
            status: None,
        };
        sim.feed(Event::Tick);
        sim
    }

    /// Handles `event` now, and the Started answers to any spawn it asks for.
    fn feed(&mut self, event: Event) -> Vec<Effect> {
        let mut queue = vec![event];
        let mut all = Vec::new();
        while let Some(e) = queue.pop() {
            for effect in self.pod.handle(e, self.now) {
                match &effect {
                    Effect::Spawn(c) => {
                        self.next_pid += 1;
                        queue.push(Event::Started {
                            c: *c,
                            pid: self.next_pid,
                        });
                    }
                    Effect::Publish(s) => self.status = Some(s.clone()),
                    _ => {}
                }
                all.push(effect);
            }
        }
        self.fx.extend(all.clone());
        all
    }

    /// Moves the clock to `t` and ticks.
    fn at(&mut self, t: Duration) -> Vec<Effect> {
        assert!(t >= self.now, "the clock only moves forward");
        self.now = t;
        self.feed(Event::Tick)
    }

    /// Ticks at every timer up to `t`, as the driver would.
    fn run_until(&mut self, t: Duration) -> Vec<Effect> {
        let mut all = Vec::new();
        while let Some(next) = self.pod.next_timer().filter(|&n| n <= t && n >= self.now) {
            if next == self.now && !all.is_empty() {
                break;
            }
            all.extend(self.at(next));
            if self.pod.next_timer() == Some(next) {
                break;
            }
        }
        all.extend(self.at(t));
        all
    }

    fn exited(&mut self, c: usize, code: i32) -> Vec<Effect> {
        self.feed(Event::Exited {
            c,
            exit: exit(code),
        })
    }

    fn done(&mut self, c: usize, task: Task, ok: bool) -> Vec<Effect> {
        let verdict = if ok {
            Verdict::Success
        } else {
            Verdict::Failure("it said no".into())
        };
        self.feed(Event::Done { c, task, verdict })
    }

    fn status(&self) -> &PodStatus {
        self.status.as_ref().unwrap()
    }

    fn app(&self, name: &str) -> &ContainerStatus {
        self.status()
            .container_statuses
            .iter()
            .find(|c| c.name == name)
            .unwrap()
    }

    fn init(&self, name: &str) -> &ContainerStatus {
        self.status()
            .init_container_statuses
            .iter()
            .find(|c| c.name == name)
            .unwrap()
    }

    fn condition(&self, kind: &str) -> &Condition {
        self.status()
            .conditions
            .iter()
            .find(|c| c.kind == kind)
            .unwrap()
    }
}

fn spawns(fx: &[Effect]) -> Vec<usize> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Spawn(c) => Some(*c),
            _ => None,
        })
        .collect()
}

fn runs(fx: &[Effect]) -> Vec<(usize, Task)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Run { c, task, .. } => Some((*c, *task)),
            _ => None,
        })
        .collect()
}

fn has(fx: &[Effect], want: &Effect) -> bool {
    fx.iter().any(|e| e == want)
}

fn records(fx: &[Effect]) -> Vec<String> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Record(r) => Some(format!("{}: {}", r.reason, r.message)),
            _ => None,
        })
        .collect()
}

fn waiting_reason(c: &ContainerStatus) -> &str {
    &c.state.waiting.as_ref().unwrap().reason
}

fn terminated(c: &ContainerStatus) -> &Terminated {
    c.state.terminated.as_ref().unwrap()
}

fn last(c: &ContainerStatus) -> &Terminated {
    c.last_state.terminated.as_ref().unwrap()
}

// Starting

#[test]
fn containers_start_in_order_at_once() {
    let sim = Sim::new(pod(&["a", "b", "c"]));
    assert_eq!(spawns(&sim.fx), [0, 1, 2]);
    assert_eq!(sim.status().phase, Phase::Running);
    assert!(sim.app("c").state.running.is_some());
    assert_eq!(sim.app("a").pid, Some(101));
}

#[test]
fn a_pod_is_pending_until_every_container_started() {
    let mut spec = pod(&["a", "b"]);
    spec.containers[0].post_start = Some(exec());
    let sim = Sim::new(spec);
    assert_eq!(sim.status().phase, Phase::Pending);
    assert_eq!(waiting_reason(sim.app("a")), "ContainerCreating");
}

#[test]
fn a_running_post_start_holds_the_next_container_back() {
    let mut spec = pod(&["a", "b"]);
    spec.containers[0].post_start = Some(exec());
    let mut sim = Sim::new(spec);
    assert_eq!(spawns(&sim.fx), [0]);
    assert_eq!(runs(&sim.fx), [(0, Task::PostStart)]);
    sim.at(S(5));
    assert_eq!(spawns(&sim.fx), [0], "b waits for a's postStart");
    let fx = sim.done(0, Task::PostStart, true);
    assert_eq!(spawns(&fx), [1]);
    assert!(sim.app("a").state.running.is_some());
    assert_eq!(sim.status().phase, Phase::Running);
}

#[test]
fn a_container_held_back_by_a_post_start_sets_no_timer() {
    // b is due, but waits for a's postStart: its due time is no timer, or the driver
    // would wake at once, again and again, for as long as the hook runs.
    let mut spec = pod(&["a", "b"]);
    spec.containers[0].post_start = Some(exec());
    let mut sim = Sim::new(spec);
    sim.at(S(5));
    assert_eq!(spawns(&sim.fx), [0]);
    let next = sim.pod.next_timer();
    assert!(!matches!(next, Some(t) if t <= S(5)), "{next:?}");
    sim.done(0, Task::PostStart, true);
    assert_eq!(sim.pod.next_timer().filter(|&t| t <= S(5)), None);
}

#[test]
fn a_failed_post_start_stops_the_container_and_says_why() {
    let mut spec = pod(&["a"]);
    spec.containers[0].post_start = Some(exec());
    let mut sim = Sim::new(spec);
    let fx = sim.done(0, Task::PostStart, false);
    assert!(has(&fx, &Effect::Terminate(0)));
    assert_eq!(
        records(&fx),
        ["FailedPostStartHook: PostStartHook failed: it said no"]
    );
    sim.exited(0, 143);
    let last = sim.app("a").last_state.terminated.clone().unwrap();
    assert_eq!(
        last.message.as_deref(),
        Some("PostStartHook failed: it said no")
    );
    assert_eq!(sim.app("a").restart_count, 1);
}

#[test]
fn a_post_start_sleep_is_the_machines_own_timer() {
    let mut spec = pod(&["a"]);
    spec.containers[0].post_start = Some(Action::Sleep(S(2)));
    let mut sim = Sim::new(spec);
    assert!(runs(&sim.fx).is_empty(), "the driver never sees a sleep");
    assert_eq!(sim.pod.next_timer(), Some(S(2)));
    sim.at(ms(1999));
    assert!(sim.app("a").state.running.is_none());
    sim.at(S(2));
    assert!(sim.app("a").state.running.is_some());
}

// Exits, restarts, back-off

#[test]
fn the_first_restart_comes_at_once() {
    let mut sim = Sim::new(pod(&["a"]));
    let fx = sim.exited(0, 1);
    assert!(has(&fx, &Effect::Kill(0)), "leftovers in the leaf go");
    assert_eq!(spawns(&fx), [0]);
    assert_eq!(sim.app("a").restart_count, 1);
    assert_eq!(last(sim.app("a")).exit_code, 1);
}

#[test]
fn back_off_doubles_from_10s_to_300s() {
    let mut sim = Sim::new(pod(&["a"]));
    let mut delays = Vec::new();
    for _ in 0..8 {
        let exited_at = sim.now;
        sim.exited(0, 1);
        let due = match sim.pod.next_timer() {
            Some(t) if t > exited_at => t - exited_at,
            _ => Duration::ZERO,
        };
        delays.push(due.as_secs());
        sim.at(exited_at + due);
        assert!(sim.app("a").state.running.is_some(), "restarted at {due:?}");
        sim.at(sim.now + S(1));
    }
    assert_eq!(delays, [0, 10, 20, 40, 80, 160, 300, 300]);
}

#[test]
fn back_off_waits_as_crash_loop_back_off_with_the_kubelets_message() {
    let mut sim = Sim::new(pod(&["a"]));
    sim.exited(0, 1);
    let fx = sim.exited(0, 1);
    assert!(spawns(&fx).is_empty());
    let a = sim.app("a");
    assert_eq!(waiting_reason(a), "CrashLoopBackOff");
    assert_eq!(
        a.state.waiting.as_ref().unwrap().message.as_deref(),
        Some("back-off 10s restarting failed container=a pod=p")
    );
    assert_eq!(
        records(&fx),
        ["BackOff: Back-off restarting failed container a in pod p"]
    );
    assert_eq!(
        sim.status().phase,
        Phase::Running,
        "crash-looping is Running"
    );
    sim.at(ms(9999));
    assert!(sim.app("a").state.running.is_none());
    sim.at(S(10));
    assert!(sim.app("a").state.running.is_some());
}

#[test]
fn back_off_resets_after_ten_minutes_of_running() {
    let mut sim = Sim::new(pod(&["a"]));
    sim.exited(0, 1);
    sim.exited(0, 1);
    sim.at(S(10));
    sim.at(S(610));
    let fx = sim.exited(0, 1);
    assert_eq!(spawns(&fx), [0], "ran 600 s: at once again");
}

#[test]
fn back_off_scales_for_tests() {
    let mut sim = Sim::scaled(pod(&["a"]), 0.01);
    sim.exited(0, 1);
    sim.exited(0, 1);
    assert_eq!(sim.pod.next_timer(), Some(ms(100)));
}

#[test]
fn on_failure_a_clean_exit_completes_and_the_pod_succeeds() {
    let mut spec = pod(&["a", "b"]);
    spec.restart = RestartPolicy::OnFailure;
    let mut sim = Sim::new(spec);
    sim.exited(0, 0);
    assert_eq!(terminated(sim.app("a")).reason, "Completed");
    assert_eq!(sim.status().phase, Phase::Running);
    assert!(!sim.pod.finished());
    let fx = sim.exited(1, 2);
    assert_eq!(spawns(&fx), [1], "a failure restarts");
    sim.exited(1, 0);
    assert_eq!(sim.status().phase, Phase::Succeeded);
    assert!(sim.pod.finished());
    assert_eq!(sim.pod.outcome(), (Phase::Succeeded, 0));
}

#[test]
fn never_a_failure_fails_the_pod_with_its_code() {
    let mut spec = pod(&["a", "b"]);
    spec.restart = RestartPolicy::Never;
    let mut sim = Sim::new(spec);
    sim.exited(1, 3);
    assert_eq!(terminated(sim.app("b")).reason, "Error");
    assert_eq!(sim.status().phase, Phase::Running, "a still runs");
    sim.exited(0, 0);
    assert_eq!(sim.status().phase, Phase::Failed);
    assert!(sim.pod.finished());
    assert_eq!(sim.pod.outcome(), (Phase::Failed, 3));
}

#[test]
fn always_restarts_even_a_clean_exit() {
    let mut sim = Sim::new(pod(&["a"]));
    let fx = sim.exited(0, 0);
    assert_eq!(spawns(&fx), [0]);
    assert_eq!(last(sim.app("a")).reason, "Completed");
}

#[test]
fn an_oom_kill_is_oom_killed() {
    let mut spec = pod(&["a"]);
    spec.restart = RestartPolicy::Never;
    let mut sim = Sim::new(spec);
    let exit = Exit {
        code: 137,
        signal: Some(9),
        oom: true,
        message: None,
    };
    sim.feed(Event::Exited { c: 0, exit });
    let t = terminated(sim.app("a"));
    assert_eq!((t.reason.as_str(), t.signal), ("OOMKilled", Some(9)));
}

#[test]
fn a_command_that_cannot_run_is_container_cannot_run() {
    let mut spec = pod(&["a"]);
    spec.restart = RestartPolicy::Never;
    let mut sim = Sim::new(spec);
    // Undo the automatic start: a fresh machine whose spawn fails.
    let mut sim2 = Sim {
        pod: Pod::new(sim.pod.spec().clone(), SystemTime::UNIX_EPOCH),
        now: Duration::ZERO,
        fx: Vec::new(),
        next_pid: 0,
        status: None,
    };
    let fx = sim2.pod.handle(Event::Tick, Duration::ZERO);
    assert_eq!(spawns(&fx), [0]);
    let fx = sim2.pod.handle(
        Event::CannotRun {
            c: 0,
            code: 127,
            message: "exec: \"nope\": executable file not found in $PATH".into(),
        },
        Duration::ZERO,
    );
    let Some(Effect::Publish(status)) = fx.last() else {
        panic!("no status: {fx:?}")
    };
    let t = terminated(&status.container_statuses[0]);
    assert_eq!(
        (t.exit_code, t.reason.as_str()),
        (127, "ContainerCannotRun")
    );
    assert!(t.message.as_deref().unwrap().contains("not found"));
    assert_eq!(status.phase, Phase::Failed);
    sim.exited(0, 0);
}

#[test]
fn an_exit_nobody_waits_for_changes_nothing() {
    let mut spec = pod(&["a"]);
    spec.restart = RestartPolicy::Never;
    let mut sim = Sim::new(spec);
    sim.exited(0, 0);
    let before = sim.status().clone();
    let fx = sim.exited(0, 1);
    assert!(fx.is_empty(), "{fx:?}");
    assert_eq!(sim.status(), &before);
}

// Probes

#[test]
fn probes_run_after_their_initial_delay_then_every_period() {
    let mut spec = pod(&["a"]);
    let mut p = probe(10, 3);
    p.initial_delay = S(5);
    spec.containers[0].probes.liveness = Some(p);
    let mut sim = Sim::new(spec);
    assert!(runs(&sim.fx).is_empty());
    assert_eq!(sim.pod.next_timer(), Some(S(5)));
    let fx = sim.at(S(5));
    assert_eq!(runs(&fx), [(0, Task::Probe(ProbeKind::Liveness))]);
    sim.done(0, Task::Probe(ProbeKind::Liveness), true);
    assert_eq!(sim.pod.next_timer(), Some(S(15)));
    assert!(runs(&sim.at(ms(14_999))).is_empty());
    assert_eq!(runs(&sim.at(S(15))).len(), 1);
}

#[test]
fn a_probe_never_runs_twice_at_once() {
    let mut spec = pod(&["a"]);
    let mut p = probe(1, 3);
    p.timeout = S(5);
    spec.containers[0].probes.readiness = Some(p);
    let mut sim = Sim::new(spec);
    assert_eq!(runs(&sim.fx).len(), 1);
    sim.at(S(1));
    sim.at(S(2));
    assert_eq!(runs(&sim.fx).len(), 1, "still the first run");
}

#[test]
fn a_probe_past_its_timeout_fails_and_is_cancelled() {
    let mut spec = pod(&["a"]);
    spec.containers[0].probes.liveness = Some(probe(10, 1));
    let mut sim = Sim::new(spec);
    let task = Task::Probe(ProbeKind::Liveness);
    assert_eq!(sim.pod.next_timer(), Some(S(1)), "its timeout");
    let fx = sim.at(S(1));
    assert!(has(&fx, &Effect::Cancel { c: 0, task }));
    assert_eq!(
        records(&fx)[0],
        "Unhealthy: Liveness probe failed: command timed out after 1s"
    );
    assert!(has(&fx, &Effect::Terminate(0)), "threshold 1: stopped");
    // Its late answer is nobody's business.
    assert!(sim.done(0, task, true).is_empty());
}

#[test]
fn timeouts_are_worded_per_action() {
    let addr = std::net::IpAddr::from([127, 0, 0, 1]);
    assert_eq!(
        timeout_message(
            &Action::TcpSocket {
                host: addr,
                port: 80
            },
            S(1)
        ),
        "dial tcp 127.0.0.1:80: i/o timeout"
    );
    let http = Action::HttpGet {
        host: addr,
        port: 8080,
        path: "/healthz".into(),
        headers: Vec::new(),
    };
    assert!(timeout_message(&http, S(1))
        .starts_with("Get \"http://127.0.0.1:8080/healthz\": context deadline exceeded"));
}

#[test]
fn liveness_failures_up_to_the_threshold_restart_the_container() {
    let mut spec = pod(&["a"]);
    spec.containers[0].probes.liveness = Some(probe(10, 3));
    let mut sim = Sim::new(spec);
    let task = Task::Probe(ProbeKind::Liveness);
    for (i, t) in [0u64, 10].iter().enumerate() {
        sim.at(S(*t));
        let fx = sim.done(0, task, false);
        assert!(!has(&fx, &Effect::Terminate(0)), "failure {}", i + 1);
    }
    sim.at(S(20));
    let fx = sim.done(0, task, false);
    assert!(has(&fx, &Effect::Terminate(0)));
    assert!(records(&fx)
        .contains(&"Killing: Container a failed liveness probe, will be restarted".to_string()));
    assert!(
        sim.app("a").state.running.is_some(),
        "still running while it stops"
    );
    assert!(!sim.app("a").ready);
    let fx = sim.exited(0, 0);
    assert_eq!(spawns(&fx), [0]);
    assert_eq!(
        last(sim.app("a")).message.as_deref(),
        Some("Container a failed liveness probe, will be restarted: it said no")
    );
}

#[test]
fn a_liveness_restart_happens_whatever_the_exit_status_unless_never() {
    for (policy, restarts) in [
        (RestartPolicy::OnFailure, true),
        (RestartPolicy::Never, false),
    ] {
        let mut spec = pod(&["a"]);
        spec.restart = policy;
        spec.containers[0].probes.liveness = Some(probe(10, 1));
        let mut sim = Sim::new(spec);
        sim.done(0, Task::Probe(ProbeKind::Liveness), false);
        let fx = sim.exited(0, 0);
        assert_eq!(!spawns(&fx).is_empty(), restarts, "{policy:?}");
    }
}

#[test]
fn a_success_resets_the_failure_count() {
    let mut spec = pod(&["a"]);
    spec.containers[0].probes.liveness = Some(probe(10, 2));
    let mut sim = Sim::new(spec);
    let task = Task::Probe(ProbeKind::Liveness);
    sim.done(0, task, false);
    sim.at(S(10));
    sim.done(0, task, true);
    sim.at(S(20));
    let fx = sim.done(0, task, false);
    assert!(!has(&fx, &Effect::Terminate(0)));
}

#[test]
fn the_probes_own_grace_period_times_the_stop() {
    let mut spec = pod(&["a"]);
    let mut p = probe(10, 1);
    p.grace = Some(S(3));
    spec.containers[0].probes.liveness = Some(p);
    let mut sim = Sim::new(spec);
    sim.done(0, Task::Probe(ProbeKind::Liveness), false);
    assert_eq!(sim.pod.next_timer(), Some(S(3)));
    assert!(has(&sim.at(S(3)), &Effect::Kill(0)));
}

#[test]
fn readiness_drives_ready_and_the_conditions() {
    let mut spec = pod(&["a", "b"]);
    spec.containers[0].probes.readiness = Some(probe(10, 2));
    let mut sim = Sim::new(spec);
    let task = Task::Probe(ProbeKind::Readiness);
    assert!(!sim.app("a").ready && sim.app("b").ready);
    let ready = sim.condition("Ready").clone();
    assert_eq!(ready.status, "False");
    assert_eq!(ready.reason.as_deref(), Some("ContainersNotReady"));
    assert_eq!(
        ready.message.as_deref(),
        Some("containers with unready status: [a]")
    );
    sim.done(0, task, true);
    assert!(sim.app("a").ready);
    assert_eq!(sim.condition("ContainersReady").status, "True");
    assert_eq!(sim.condition("Ready").message, None);
    sim.at(S(10));
    sim.done(0, task, false);
    assert!(sim.app("a").ready, "one failure of two");
    sim.at(S(20));
    sim.done(0, task, false);
    assert!(!sim.app("a").ready);
    assert_eq!(sim.condition("Ready").status, "False");
}

#[test]
fn readiness_needs_its_success_threshold() {
    let mut spec = pod(&["a"]);
    let mut p = probe(10, 3);
    p.success_threshold = 2;
    spec.containers[0].probes.readiness = Some(p);
    let mut sim = Sim::new(spec);
    let task = Task::Probe(ProbeKind::Readiness);
    sim.done(0, task, true);
    assert!(!sim.app("a").ready);
    sim.at(S(10));
    sim.done(0, task, true);
    assert!(sim.app("a").ready);
}

#[test]
fn a_startup_probe_holds_liveness_and_readiness_off() {
    let mut spec = pod(&["a"]);
    spec.containers[0].probes.startup = Some(probe(5, 10));
    spec.containers[0].probes.liveness = Some(probe(10, 1));
    spec.containers[0].probes.readiness = Some(probe(10, 1));
    let mut sim = Sim::new(spec);
    let startup = Task::Probe(ProbeKind::Startup);
    assert_eq!(runs(&sim.fx), [(0, startup)]);
    assert!(!sim.app("a").started && !sim.app("a").ready);
    sim.done(0, startup, false);
    sim.at(S(5));
    sim.done(0, startup, false);
    sim.at(S(10));
    assert!(runs(&sim.fx).iter().all(|(_, t)| *t == startup));
    let fx = sim.done(0, startup, true);
    assert!(sim.app("a").started);
    assert!(!sim.app("a").ready, "readiness has yet to pass");
    let mut kinds: Vec<Task> = runs(&fx).into_iter().map(|(_, t)| t).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            Task::Probe(ProbeKind::Liveness),
            Task::Probe(ProbeKind::Readiness)
        ],
        "both at once"
    );
}

#[test]
fn a_startup_probe_that_keeps_failing_restarts_the_container() {
    let mut spec = pod(&["a"]);
    spec.containers[0].probes.startup = Some(probe(1, 2));
    let mut sim = Sim::new(spec);
    let task = Task::Probe(ProbeKind::Startup);
    sim.done(0, task, false);
    sim.at(S(1));
    let fx = sim.done(0, task, false);
    assert!(has(&fx, &Effect::Terminate(0)));
    sim.exited(0, 143);
    let last = sim.app("a").last_state.terminated.clone().unwrap();
    assert!(last.message.unwrap().contains("failed startup probe"));
}

#[test]
fn probes_start_over_with_a_restarted_container() {
    let mut spec = pod(&["a"]);
    spec.containers[0].probes.readiness = Some(probe(10, 1));
    let mut sim = Sim::new(spec);
    sim.done(0, Task::Probe(ProbeKind::Readiness), true);
    assert!(sim.app("a").ready);
    sim.at(S(3));
    let fx = sim.exited(0, 1);
    assert!(!sim.app("a").ready);
    assert_eq!(runs(&fx), [(0, Task::Probe(ProbeKind::Readiness))]);
}

// Stopping

#[test]
fn a_stop_sends_sigterm_then_sigkill_after_the_grace_period() {
    let mut sim = Sim::new(pod(&["a", "b"]));
    let fx = sim.feed(Event::Stop { grace: None });
    assert!(has(&fx, &Effect::Terminate(0)) && has(&fx, &Effect::Terminate(1)));
    assert!(!has(&fx, &Effect::Kill(0)));
    assert_eq!(sim.pod.next_timer(), Some(S(30)));
    sim.exited(0, 0);
    let fx = sim.at(S(30));
    assert_eq!(
        fx.iter().filter(|e| matches!(e, Effect::Kill(_))).count(),
        1
    );
    assert!(has(&fx, &Effect::Kill(1)));
    assert!(!sim.pod.finished());
    let fx = sim.exited(1, 137);
    assert!(spawns(&fx).is_empty(), "nothing restarts in a stopping pod");
    assert!(sim.pod.finished());
}

#[test]
fn downs_grace_period_wins_and_zero_kills_at_once() {
    let mut sim = Sim::new(pod(&["a"]));
    let fx = sim.feed(Event::Stop {
        grace: Some(Duration::ZERO),
    });
    assert!(has(&fx, &Effect::Terminate(0)) && has(&fx, &Effect::Kill(0)));
    let mut sim = Sim::new(pod(&["a"]));
    sim.feed(Event::Stop { grace: Some(S(2)) });
    assert_eq!(sim.pod.next_timer(), Some(S(2)));
}

#[test]
fn pre_stop_runs_before_sigterm_inside_the_grace_period() {
    let mut spec = pod(&["a"]);
    spec.containers[0].pre_stop = Some(exec());
    spec.grace = S(10);
    let mut sim = Sim::new(spec);
    sim.at(S(1));
    let fx = sim.feed(Event::Stop { grace: None });
    assert_eq!(runs(&fx), [(0, Task::PreStop)]);
    assert!(!has(&fx, &Effect::Terminate(0)));
    sim.at(S(4));
    let fx = sim.done(0, Task::PreStop, true);
    assert!(has(&fx, &Effect::Terminate(0)));
    assert_eq!(
        sim.pod.next_timer(),
        Some(S(11)),
        "what is left of the grace"
    );
}

#[test]
fn a_pre_stop_that_overruns_the_grace_period_leaves_two_seconds() {
    let mut spec = pod(&["a"]);
    spec.containers[0].pre_stop = Some(exec());
    spec.grace = S(3);
    let mut sim = Sim::new(spec);
    sim.feed(Event::Stop { grace: None });
    assert!(!has(&sim.at(ms(2999)), &Effect::Terminate(0)));
    let fx = sim.at(S(3));
    assert!(has(
        &fx,
        &Effect::Cancel {
            c: 0,
            task: Task::PreStop
        }
    ));
    assert!(has(&fx, &Effect::Terminate(0)));
    assert_eq!(
        records(&fx),
        ["FailedPreStopHook: PreStopHook failed: did not finish within the grace period"]
    );
    assert!(!has(&sim.at(ms(4999)), &Effect::Kill(0)));
    assert!(has(&sim.at(S(5)), &Effect::Kill(0)));
}

#[test]
fn a_pre_stop_sleep_needs_no_driver() {
    let mut spec = pod(&["a"]);
    spec.containers[0].pre_stop = Some(Action::Sleep(S(2)));
    let mut sim = Sim::new(spec);
    let fx = sim.feed(Event::Stop { grace: None });
    assert!(runs(&fx).is_empty());
    assert!(has(&sim.at(S(2)), &Effect::Terminate(0)));
    assert_eq!(sim.pod.next_timer(), Some(S(30)));
}

#[test]
fn no_pre_stop_with_a_zero_grace_period() {
    let mut spec = pod(&["a"]);
    spec.containers[0].pre_stop = Some(exec());
    let mut sim = Sim::new(spec);
    let fx = sim.feed(Event::Stop {
        grace: Some(Duration::ZERO),
    });
    assert!(runs(&fx).is_empty());
    assert!(has(&fx, &Effect::Kill(0)));
}

#[test]
fn a_stopped_pod_keeps_its_containers_terminated() {
    let mut sim = Sim::new(pod(&["a"]));
    sim.exited(0, 1);
    sim.exited(0, 1);
    assert_eq!(waiting_reason(sim.app("a")), "CrashLoopBackOff");
    sim.feed(Event::Stop { grace: None });
    assert!(sim.pod.finished(), "nothing runs, nothing will");
    assert_eq!(sim.pod.next_timer(), None);
    sim.at(S(100));
    assert!(spawns(&sim.fx).len() == 2);
}

// Init containers

fn with_inits(inits: &[&str], apps: &[&str]) -> PodSpec {
    let mut spec = pod(apps);
    spec.init_containers = inits.iter().map(|n| ctr(n)).collect();
    spec
}

#[test]
fn init_containers_run_one_at_a_time_then_the_apps() {
    let mut sim = Sim::new(with_inits(&["i1", "i2"], &["a", "b"]));
    assert_eq!(spawns(&sim.fx), [0]);
    assert_eq!(sim.status().phase, Phase::Pending);
    assert_eq!(waiting_reason(sim.app("a")), "PodInitializing");
    let init = sim.condition("Initialized").clone();
    assert_eq!(init.status, "False");
    assert_eq!(
        init.message.as_deref(),
        Some("containers with incomplete status: [i1 i2]")
    );
    let fx = sim.exited(0, 0);
    assert_eq!(spawns(&fx), [1]);
    assert!(sim.init("i1").ready);
    let fx = sim.exited(1, 0);
    assert_eq!(spawns(&fx), [2, 3]);
    assert_eq!(sim.condition("Initialized").status, "True");
    assert_eq!(sim.status().phase, Phase::Running);
}

#[test]
fn a_failing_init_container_is_retried_with_back_off() {
    let mut sim = Sim::new(with_inits(&["i1"], &["a"]));
    let fx = sim.exited(0, 1);
    assert_eq!(spawns(&fx), [0]);
    sim.exited(0, 1);
    assert_eq!(waiting_reason(sim.init("i1")), "CrashLoopBackOff");
    // One restart so far: the kubelet counts the next at its creation, after the
    // back-off.
    assert_eq!(sim.init("i1").restart_count, 1);
    assert_eq!(sim.status().phase, Phase::Pending);
}

#[test]
fn under_never_a_failing_init_container_fails_the_pod() {
    let mut spec = with_inits(&["i1", "i2"], &["a"]);
    spec.restart = RestartPolicy::Never;
    let mut sim = Sim::new(spec);
    let fx = sim.exited(0, 2);
    assert!(spawns(&fx).is_empty());
    assert_eq!(sim.status().phase, Phase::Failed);
    assert!(sim.pod.finished());
    assert_eq!(sim.pod.outcome(), (Phase::Failed, 2));
}

#[test]
fn an_init_container_that_succeeded_is_never_run_again() {
    let mut sim = Sim::new(with_inits(&["i1"], &["a"]));
    sim.exited(0, 0);
    sim.exited(1, 1);
    assert_eq!(spawns(&sim.fx), [0, 1, 1]);
}

// The pod's end

#[test]
fn active_deadline_stops_the_pod_and_fails_it() {
    let mut spec = pod(&["a"]);
    spec.active_deadline = Some(S(5));
    let mut sim = Sim::new(spec);
    assert_eq!(sim.pod.next_timer(), Some(S(5)));
    let fx = sim.at(S(5));
    assert!(has(&fx, &Effect::Terminate(0)));
    assert_eq!(
        sim.status().phase,
        Phase::Running,
        "until its container is gone"
    );
    sim.exited(0, 143);
    assert_eq!(sim.status().phase, Phase::Failed);
    assert_eq!(sim.status().reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(terminated(sim.app("a")).reason, "DeadlineExceeded");
    assert!(sim.pod.finished());
}

#[test]
fn eviction_kills_every_container_at_once_and_fails_the_pod() {
    let mut spec = pod(&["a", "b"]);
    spec.volumes.push(Volume {
        name: "v".into(),
        source: VolumeSource::EmptyDir {
            memory: false,
            size_limit: Some(1 << 20),
            mode: None,
        },
    });
    let mut sim = Sim::new(spec);
    // Within its limit, and a volume without one: nothing happens.
    for (volume, bytes) in [("v", 1 << 20), ("other", 1 << 30)] {
        let fx = sim.feed(Event::StorageUsage(StorageUsage {
            volumes: vec![(volume.into(), bytes)],
            layers: Vec::new(),
        }));
        assert!(fx.iter().all(|e| !matches!(e, Effect::Kill(_))), "{fx:?}");
    }
    let fx = sim.feed(Event::StorageUsage(StorageUsage {
        volumes: vec![("v".into(), (1 << 20) + 1)],
        layers: Vec::new(),
    }));
    let evicted = fx.iter().find_map(|e| match e {
        Effect::Record(r) if r.reason == "Evicted" => Some(r),
        _ => None,
    });
    let evicted = evicted.expect("an Evicted event");
    assert!(evicted.container.is_empty() && evicted.warning);
    assert_eq!(
        evicted.message,
        "Usage of EmptyDir volume \"v\" exceeds the limit \"1Mi\". "
    );
    // No grace: the kubelet evicts for local storage with a grace period of 0.
    assert!(
        has(&fx, &Effect::Kill(0)) && has(&fx, &Effect::Kill(1)),
        "{fx:?}"
    );
    sim.exited(0, 137);
    sim.exited(1, 137);
    sim.at(S(60));
    assert_eq!(spawns(&sim.fx).len(), 2, "nothing restarted");
    let st = sim.status();
    assert_eq!(st.phase, Phase::Failed);
    assert_eq!(st.reason.as_deref(), Some("Evicted"));
    assert!(st.message.as_deref().unwrap().contains("exceeds the limit"));
    assert!(sim.pod.finished());
    // A second eviction, or a stop, changes nothing.
    assert!(sim
        .feed(Event::Stop { grace: None })
        .iter()
        .all(|e| !matches!(e, Effect::Spawn(_))));
}

#[test]
fn ephemeral_storage_evicts_in_the_kubelets_order_with_its_words() {
    let evicted = |fx: &[Effect]| {
        fx.iter().find_map(|e| match e {
            Effect::Record(r) if r.reason == "Evicted" => Some(r.message.clone()),
            _ => None,
        })
    };
    let usage = |volumes: &[(&str, u64)], layers: &[(usize, u64)]| {
        Event::StorageUsage(StorageUsage {
            volumes: volumes.iter().map(|(v, b)| (v.to_string(), *b)).collect(),
            layers: layers.to_vec(),
        })
    };
    let mut spec = pod(&["a", "b"]);
    spec.containers[0].limits.ephemeral_storage = Some(4 << 20);
    spec.containers[1].limits.ephemeral_storage = Some(1 << 20);
    spec.volumes.push(Volume {
        name: "v".into(),
        source: VolumeSource::EmptyDir {
            memory: false,
            size_limit: None,
            mode: None,
        },
    });
    // Each within its limit, the total within theirs: nothing.
    let mut sim = Sim::new(spec.clone());
    let fx = sim.feed(usage(&[("v", 1 << 20)], &[(0, 3 << 20), (1, 1 << 20)]));
    assert_eq!(evicted(&fx), None);
    // One container over its own limit.
    let fx = sim.feed(usage(&[("v", 0)], &[(0, 0), (1, (1 << 20) + 4096)]));
    assert_eq!(
        evicted(&fx).as_deref(),
        Some("Container b exceeded its local ephemeral storage limit \"1Mi\". ")
    );
    assert!(has(&fx, &Effect::Kill(0)) && has(&fx, &Effect::Kill(1)));
    // The pod's total (layers and disk emptyDirs) over the sum of the limits is
    // checked first.
    let mut sim = Sim::new(spec);
    let fx = sim.feed(usage(&[("v", 2 << 20)], &[(0, 3 << 20), (1, 2 << 20)]));
    assert_eq!(
        evicted(&fx).as_deref(),
        Some("Pod ephemeral local storage usage exceeds the total limit of containers 5Mi. ")
    );
}

#[test]
fn pause_dying_ends_the_pod_without_restarts() {
    let mut sim = Sim::new(pod(&["a", "b"]));
    sim.exited(1, 1);
    sim.exited(1, 1);
    let fx = sim.feed(Event::PauseDied {
        how: "was killed by signal 9".into(),
    });
    assert!(has(&fx, &Effect::KillPod));
    let exit = Exit {
        code: 137,
        signal: Some(9),
        oom: false,
        message: None,
    };
    let fx = sim.feed(Event::Exited { c: 0, exit });
    assert!(spawns(&fx).is_empty());
    sim.at(S(60));
    assert_eq!(spawns(&sim.fx).len(), 3, "nothing started after pause died");
    let st = sim.status();
    assert_eq!(st.phase, Phase::Failed);
    assert_eq!(st.reason.as_deref(), Some("PauseDied"));
    assert!(st
        .message
        .as_deref()
        .unwrap()
        .starts_with("pause (PID 1 of the pod) was killed by signal 9"));
    let a = terminated(sim.app("a"));
    assert_eq!((a.exit_code, a.reason.as_str()), (137, "Error"));
    assert_eq!(sim.app("a").restart_count, 0);
    assert_eq!(
        sim.app("b").restart_count,
        1,
        "its one real restart (the second waited for its back-off), no more"
    );
    assert!(sim.pod.finished());
    assert_eq!(sim.pod.outcome(), (Phase::Failed, 137));
}

#[test]
fn pause_dying_while_a_container_is_created_takes_it_back() {
    let mut p = Pod::new(pod(&["a"]), SystemTime::UNIX_EPOCH);
    let fx = p.handle(Event::Tick, Duration::ZERO);
    assert_eq!(spawns(&fx), [0]);
    let fx = p.handle(Event::PauseDied { how: "died".into() }, Duration::ZERO);
    assert!(spawns(&fx).is_empty());
    assert!(p.finished());
    assert_eq!(p.outcome(), (Phase::Failed, 1));
}

// Status

#[test]
fn status_is_published_only_when_it_changes() {
    let mut spec = pod(&["a"]);
    spec.restart = RestartPolicy::Never;
    let mut sim = Sim::new(spec);
    let publishes = |fx: &[Effect]| {
        fx.iter()
            .filter(|e| matches!(e, Effect::Publish(_)))
            .count()
    };
    assert_eq!(publishes(&sim.fx), 2, "Pending, then Running");
    assert_eq!(publishes(&sim.at(S(1))), 0);
    assert_eq!(publishes(&sim.at(S(2))), 0);
    assert_eq!(publishes(&sim.exited(0, 1)), 1);
}

#[test]
fn conditions_move_their_time_only_on_a_change() {
    let mut spec = pod(&["a"]);
    spec.containers[0].probes.readiness = Some(probe(10, 1));
    let mut sim = Sim::new(spec);
    let first = sim.condition("Ready").last_transition_time.clone();
    sim.at(S(5));
    sim.done(0, Task::Probe(ProbeKind::Readiness), false);
    assert_eq!(sim.condition("Ready").last_transition_time, first);
    sim.at(S(10));
    sim.done(0, Task::Probe(ProbeKind::Readiness), true);
    assert_eq!(
        sim.condition("Ready").last_transition_time,
        "1970-01-01T00:00:10Z"
    );
    assert_eq!(sim.condition("PodScheduled").status, "True");
}

#[test]
fn times_are_the_wall_clock_at_start_plus_the_monotonic_time() {
    let mut sim = Sim::new(pod(&["a"]));
    sim.at(S(90));
    sim.exited(0, 1);
    let last = sim.app("a").last_state.terminated.clone().unwrap();
    assert_eq!(last.started_at, "1970-01-01T00:00:00Z");
    assert_eq!(last.finished_at, "1970-01-01T00:01:30Z");
    assert_eq!(sim.status().start_time, "1970-01-01T00:00:00Z");
}

#[test]
fn the_largest_durations_never_overflow() {
    let max = S(crate::quantity::MAX_SECONDS);
    let mut spec = pod(&["a"]);
    spec.active_deadline = Some(max);
    spec.grace = max;
    let mut p = probe(1, 1);
    p.initial_delay = max;
    p.period = max;
    p.timeout = max;
    spec.containers[0].probes.liveness = Some(p);
    spec.containers[0].pre_stop = Some(Action::Sleep(max));
    let mut sim = Sim::scaled(spec, 1000.0);
    sim.exited(0, 1);
    sim.exited(0, 1);
    sim.at(max);
    sim.at(Duration::MAX);
    sim.feed(Event::Stop { grace: Some(max) });
    sim.at(Duration::MAX);
    let _ = sim.run_until(Duration::MAX);
}

#[test]
fn the_exit_code_is_the_first_failing_containers() {
    let mut spec = pod(&["a", "b"]);
    spec.restart = RestartPolicy::Never;
    let mut sim = Sim::new(spec);
    sim.exited(1, 4);
    sim.exited(0, 0);
    assert_eq!(sim.pod.outcome(), (Phase::Failed, 4));
}

#[test]
fn probes_are_empty_for_a_plain_container() {
    assert!(Probes::default().is_empty());
    let sim = Sim::new(pod(&["a"]));
    assert!(sim.app("a").started && sim.app("a").ready);
}

// Sidecars

/// A pod of `apps` after init containers `inits`, where `("s", true)` is a sidecar.
fn with_sidecars(apps: &[&str], inits: &[(&str, bool)]) -> PodSpec {
    let mut spec = pod(apps);
    spec.init_containers = inits
        .iter()
        .map(|(n, sidecar)| ContainerSpec {
            sidecar: *sidecar,
            ..ctr(n)
        })
        .collect();
    spec
}

fn terminates(fx: &[Effect]) -> Vec<usize> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Terminate(c) => Some(*c),
            _ => None,
        })
        .collect()
}

#[test]
fn a_sidecar_lets_the_next_container_start_once_it_has_started() {
    // s1 (sidecar, startup probe), init (runs to completion), s2 (sidecar), app.
    let mut spec = with_sidecars(&["app"], &[("s1", true), ("init", false), ("s2", true)]);
    spec.init_containers[0].probes.startup = Some(probe(1, 30));
    let mut sim = Sim::new(spec);
    assert_eq!(spawns(&sim.fx), [0], "the sidecar alone");
    assert_eq!(sim.status().phase, Phase::Pending);
    // Not started until its startup probe passes.
    assert_eq!(runs(&sim.fx), [(0, Task::Probe(ProbeKind::Startup))]);
    assert!(!sim.init("s1").started);
    let fx = sim.done(0, Task::Probe(ProbeKind::Startup), true);
    assert_eq!(spawns(&fx), [1], "then the init container");
    let fx = sim.exited(1, 0);
    assert_eq!(
        spawns(&fx),
        [2, 3],
        "then the second sidecar, started at once, then the app"
    );
    assert_eq!(sim.status().phase, Phase::Running);
    let s1 = sim.init("s1");
    assert!(s1.started && s1.ready && s1.state.running.is_some());
    assert_eq!(sim.condition("Initialized").status, "True");
    assert_eq!(sim.condition("Ready").status, "True");
}

#[test]
fn a_sidecar_restarts_whatever_the_policy_and_counts_for_readiness() {
    let mut spec = with_sidecars(&["app"], &[("s", true)]);
    spec.restart = RestartPolicy::Never;
    spec.init_containers[0].probes.readiness = Some(probe(10, 1));
    let mut sim = Sim::new(spec);
    assert_eq!(spawns(&sim.fx), [0, 1]);
    assert_eq!(sim.condition("ContainersReady").status, "False");
    sim.done(0, Task::Probe(ProbeKind::Readiness), true);
    assert_eq!(sim.condition("ContainersReady").status, "True");
    // Exit 0 under Never: restarted all the same, at once; then with back-off.
    let fx = sim.exited(0, 0);
    assert_eq!(spawns(&fx), [0]);
    assert_eq!(sim.init("s").restart_count, 1);
    let fx = sim.exited(0, 1);
    assert!(spawns(&fx).is_empty());
    assert_eq!(waiting_reason(sim.init("s")), "CrashLoopBackOff");
    assert_eq!(
        sim.status().phase,
        Phase::Running,
        "a sidecar does not fail the pod"
    );
    assert_eq!(sim.condition("Ready").status, "False");
    let fx = sim.run_until(S(10));
    assert_eq!(spawns(&fx), [0]);
}

#[test]
fn apps_done_stop_the_sidecars_last_first_and_the_pod_succeeds() {
    let mut spec = with_sidecars(&["app"], &[("s1", true), ("s2", true)]);
    spec.restart = RestartPolicy::Never;
    spec.grace = S(5);
    let mut sim = Sim::new(spec);
    assert_eq!(spawns(&sim.fx), [0, 1, 2]);
    let fx = sim.exited(2, 0);
    assert_eq!(terminates(&fx), [1], "the last sidecar first");
    assert!(!sim.pod.finished());
    assert_eq!(
        sim.status().phase,
        Phase::Running,
        "until the sidecars are gone"
    );
    let fx = sim.exited(1, 143);
    assert_eq!(terminates(&fx), [0]);
    assert!(spawns(&fx).is_empty(), "a stopped sidecar is not restarted");
    sim.exited(0, 143);
    assert!(sim.pod.finished());
    assert_eq!(sim.status().phase, Phase::Succeeded);
    assert_eq!(
        sim.pod.outcome(),
        (Phase::Succeeded, 0),
        "sidecars' 143 do not count"
    );
}

#[test]
fn a_stopped_pod_stops_its_sidecars_after_the_apps_within_the_grace_period() {
    let mut sim = Sim::new(with_sidecars(&["a", "b"], &[("s", true)]));
    sim.at(S(1));
    let fx = sim.feed(Event::Stop { grace: Some(S(10)) });
    assert_eq!(terminates(&fx), [1, 2], "apps first");
    sim.exited(1, 143);
    sim.at(S(4));
    let fx = sim.exited(2, 143);
    assert_eq!(terminates(&fx), [0], "then the sidecar");
    assert_eq!(
        sim.pod.next_timer(),
        Some(S(11)),
        "with what is left of the grace"
    );
    sim.exited(0, 143);
    assert!(sim.pod.finished());
}

#[test]
fn a_failed_init_container_stops_the_sidecars_before_it() {
    let mut spec = with_sidecars(&["app"], &[("s", true), ("init", false)]);
    spec.restart = RestartPolicy::Never;
    let mut sim = Sim::new(spec);
    assert_eq!(spawns(&sim.fx), [0, 1]);
    let fx = sim.exited(1, 3);
    assert_eq!(terminates(&fx), [0]);
    sim.exited(0, 143);
    assert!(sim.pod.finished());
    assert_eq!(sim.pod.outcome(), (Phase::Failed, 3));
}

#[test]
fn a_termination_message_follows_the_runtimes_and_is_cut_to_the_containers_share() {
    let mut spec = pod(&["a", "b", "c"]);
    spec.containers[0].post_start = Some(exec());
    let mut sim = Sim::new(spec);
    sim.done(0, Task::PostStart, false);
    let exit = Exit {
        code: 143,
        message: Some("bye".into()),
        ..Exit::default()
    };
    sim.feed(Event::Exited { c: 0, exit });
    assert_eq!(
        last(sim.app("a")).message.as_deref(),
        Some("PostStartHook failed: it said no: bye"),
        "the kubelet's ': ' between its words and the container's"
    );
    // 12 KiB for the pod, shared by its three containers, cut on a character.
    let mut sim = Sim::new(pod(&["a", "b", "c"]));
    let long = "é".repeat(3000);
    let exit = Exit {
        code: 1,
        message: Some(long),
        ..Exit::default()
    };
    sim.feed(Event::Exited { c: 0, exit });
    let cut = last(sim.app("a")).message.clone().unwrap();
    assert_eq!(cut.len(), 4096);
    assert!(cut.chars().all(|c| c == 'é'));
}

#[test]
fn a_second_stop_with_no_grace_left_kills_at_once_and_cuts_pre_stop_short() {
    let mut spec = pod(&["a", "b"]);
    spec.containers[0].pre_stop = Some(exec());
    let mut sim = Sim::new(spec);
    sim.at(S(1));
    let fx = sim.feed(Event::Stop { grace: None });
    assert!(runs(&fx).contains(&(0, Task::PreStop)));
    assert!(has(&fx, &Effect::Terminate(1)));
    assert_eq!(
        sim.status().deletion.as_ref().unwrap().grace_period_seconds,
        30
    );
    // ^C again: no grace left.
    sim.at(S(2));
    let fx = sim.feed(Event::Stop {
        grace: Some(Duration::ZERO),
    });
    assert!(has(
        &fx,
        &Effect::Cancel {
            c: 0,
            task: Task::PreStop
        }
    ));
    for c in [0, 1] {
        assert!(has(&fx, &Effect::Kill(c)), "{c} killed: {fx:?}");
    }
    // A longer one changes nothing.
    let fx = sim.feed(Event::Stop { grace: Some(S(60)) });
    assert!(fx
        .iter()
        .all(|e| !matches!(e, Effect::Kill(_) | Effect::Terminate(_))));
    sim.exited(0, 137);
    sim.exited(1, 137);
    assert!(sim.pod.finished());
    // Stopped on request without a failure before: up exits 0.
    assert_eq!(sim.pod.outcome().1, 0);
    assert!(sim.pod.stop_asked());
}

#[test]
fn a_failure_before_the_stop_is_still_ups_exit_status() {
    let mut spec = pod(&["a", "b"]);
    spec.restart = RestartPolicy::Never;
    let mut sim = Sim::new(spec);
    sim.at(S(1));
    sim.exited(0, 3);
    sim.feed(Event::Stop { grace: None });
    sim.exited(1, 143);
    assert!(sim.pod.finished());
    assert_eq!(sim.pod.outcome(), (Phase::Failed, 3));
}
