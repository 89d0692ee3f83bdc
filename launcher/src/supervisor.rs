//! The pod's supervisor: one single-threaded process per pod that starts the
//! containers, keeps their logs, restarts them per policy with the kubelet's back-off,
//! writes the pod's status, and stops the pod gracefully.
//!
//! Events come from one poll(2): a signalfd (SIGCHLD, SIGTERM, SIGINT, SIGHUP) and the
//! containers' stdout/stderr pipes; timers (back-off, grace period) are poll timeouts.
//! SIGCHLDs coalesce, so every SIGCHLD reaps with waitpid(-1, WNOHANG) until nothing is left.
//!
//! Back-off (kubelet): the first restart comes at once; each later one waits 10 s, 20 s,
//! 40 s, ... capped at 300 s, counted from the exit; the back-off resets once a container
//! has run 10 minutes. All three figures scale with `--backoff-scale` for tests.
//!
//! Graceful stop: SIGTERM to every container, wait up to the grace period, then
//! cgroup.kill (SIGKILL to each as a fallback), stop pause, remove the cgroups.

use crate::cgroup::{memory, PodCgroup};
use crate::logs::{LineSplitter, LogFile, Stream};
use crate::namespaces::Pause;
use crate::process::{self, Request};
use crate::spec::{ContainerSpec, PodSpec};
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
    /// Set once a stop began: (deadline for SIGKILL, whether it was asked for).
    stopping: Option<Instant>,
    killed: bool,
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
            stopping: None,
            killed: false,
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
            if self.stopping.is_none() && self.pause_died.is_none() {
                self.start_due();
            }
            self.publish();
            if self.finished() {
                return self.finish();
            }
            self.wait_for_events();
            if self.stopping.is_none() && self.deadline.is_some_and(|d| Instant::now() >= d) {
                // Kubernetes stops the pod the way `down` does and marks it Failed.
                self.deadline_exceeded = true;
                self.begin_stop();
            }
            if let Some(deadline) = self.stopping {
                if !self.killed && Instant::now() >= deadline {
                    self.kill_all();
                }
            }
        }
    }

    fn finished(&self) -> bool {
        let none_running = self.containers.iter().all(|c| c.pid.is_none());
        if self.stopping.is_some() || self.pause_died.is_some() {
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
        let leaf_name = c.leaf.display().to_string();
        let env = self.spec.env_of(&c.spec);
        let req = Request {
            argv: &c.spec.command,
            env: &env,
            hostname: &self.spec.hostname,
            cgroup: &c.leaf_dir,
            cgroup_name: &leaf_name,
            pause: pause_fd,
            stdio: [devnull.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()],
            privileged: self.spec.privileged,
            cwd: c.spec.working_dir.as_deref(),
        };
        match process::spawn(&req) {
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
                    c.status.state = ContainerState::running(at);
                    c.status.started = true;
                    c.status.ready = true;
                    c.status.pid = Some(started.pid);
                }
            }
            Err(e) => {
                let msg = format!("{:#}", anyhow::Error::from(e));
                self.cannot_run(i, msg);
            }
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

    fn wait_for_events(&mut self) {
        let now = Instant::now();
        let mut wake: Option<Instant> = self.containers.iter().filter_map(|c| c.next_start).min();
        if let Some(d) = self.deadline.filter(|_| self.stopping.is_none()) {
            wake = Some(wake.map_or(d, |w| w.min(d)));
        }
        if let Some(d) = self.stopping.filter(|_| !self.killed) {
            wake = Some(wake.map_or(d, |w| w.min(d)));
        }
        let timeout = match wake {
            None => PollTimeout::NONE,
            Some(t) => {
                let ms = t.saturating_duration_since(now).as_millis().min(60_000) as u16;
                PollTimeout::from(ms.max(1))
            }
        };
        let mut owners: Vec<(usize, usize)> = Vec::new();
        let mut fds = vec![PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
        for (ci, c) in self.containers.iter().enumerate() {
            for (pi, p) in c.pipes.iter().enumerate() {
                fds.push(PollFd::new(p.fd.as_fd(), PollFlags::POLLIN));
                owners.push((ci, pi));
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
        for (k, &(ci, pi)) in owners.iter().enumerate().rev() {
            if ready[k + 1] {
                self.drain(ci, pi);
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
            self.pause = None;
            if self.stopping.is_none() || !self.killed {
                let how = signal.map_or(format!("exited {code}"), |s| {
                    format!("was killed by signal {s}")
                });
                self.pause_died = Some(format!(
                    "pause (PID 1 of the pod) {how}: the kernel killed every process in the pod"
                ));
                if !self.killed {
                    self.kill_all();
                }
            }
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

    fn exited(&mut self, i: usize, t: Terminated, ran: Duration) {
        let stopping = self.stopping.is_some() || self.pause_died.is_some();
        let policy = self.spec.restart;
        let pod = self.spec.name.clone();
        let c = &mut self.containers[i];
        c.pid = None;
        c.pidfd = None;
        c.exec_error = None;
        c.status.pid = None;
        c.status.ready = false;
        c.status.started = false;
        let code = t.exit_code;
        if c.init && code == 0 && !stopping {
            // Done for good: init containers are never restarted after success.
            c.status.state = ContainerState::terminated(t);
            c.status.ready = true;
            self.start_next_stage();
            return;
        }
        if stopping || !status::restarts(policy, code) {
            self.init_failed |= c.init && !stopping;
            let mut t = t;
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

    /// SIGTERM to every container; SIGKILL comes when the grace period runs out.
    pub fn begin_stop(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        let grace = std::fs::read_to_string(self.pod_dir.join("stop"))
            .ok()
            .and_then(|s| crate::quantity::parse_duration(s.trim()).ok())
            .unwrap_or(self.spec.grace);
        self.stopping = Some(Instant::now() + grace);
        for c in &mut self.containers {
            c.next_start = None;
            if let Some(fd) = &c.pidfd {
                let _ = crate::sys::pidfd_send_signal(fd, libc::SIGTERM);
            }
        }
        if grace.is_zero() {
            self.kill_all();
        }
    }

    fn kill_all(&mut self) {
        self.killed = true;
        if self.stopping.is_none() {
            self.stopping = Some(Instant::now());
        }
        if self.cgroup.kill().is_err() {
            for c in &self.containers {
                if let Some(fd) = &c.pidfd {
                    let _ = crate::sys::pidfd_send_signal(fd, libc::SIGKILL);
                }
            }
        }
    }

    fn publish(&mut self) {
        let (inits, apps): (Vec<&Container>, Vec<&Container>) =
            self.containers.iter().partition(|c| c.init);
        let initialized = inits.iter().all(|c| succeeded(c));
        self.status.init_container_statuses = inits.iter().map(|c| c.status.clone()).collect();
        self.status.container_statuses = apps.iter().map(|c| c.status.clone()).collect();
        let all_ready = apps.iter().all(|c| c.status.ready);
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
        status::set_condition(&mut self.status.conditions, "Initialized", initialized);
        status::set_condition(&mut self.status.conditions, "ContainersReady", all_ready);
        status::set_condition(&mut self.status.conditions, "Ready", all_ready);
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
