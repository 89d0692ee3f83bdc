//! The supervisor's event loop: one thread, one poll(2), driving the pod's state
//! machine (`machine`). It turns what the kernel reports into machine events and
//! carries the machine's effects out as system calls; it decides nothing itself.
//!
//! poll watches a signalfd (SIGCHLD, SIGTERM, SIGINT, SIGHUP), the containers'
//! stdout/stderr pipes, the sockets of probes and hooks in flight and, in the
//! foreground, the terminal while output waits for it; the machine's next timer is
//! poll's timeout. SIGCHLDs coalesce, so every SIGCHLD reaps with waitpid(-1, WNOHANG)
//! until nothing is left.
//!
//! Nothing here may stall supervision:
//! - each wake-up reads at most [`READS_PER_WAKE`] buffers from a pipe, so a process
//!   that writes without pause (even one left behind by an exited container) cannot
//!   keep the loop from exits, probes and timers;
//! - the foreground copy of the output goes through a non-blocking descriptor of
//!   its own with a bounded queue: a slow or stopped reader loses terminal lines (the
//!   log file keeps them all); a reader that is gone stops the pod, as ^C does.
//!
//! pause dying is noticed before the exits of the containers it takes along (they
//! are reaped first: pause, PID 1 of the pod, waits for them), so no container is
//! restarted into a dying PID namespace.

use crate::cgroup::{memory, PodCgroup};
use crate::events::EventLog;
use crate::layout::PodPaths;
use crate::logs::{LineSplitter, LogFile, Rotation, Stream};
use crate::machine::{Effect, Event, Exit, Pod, Task, Verdict};
use crate::namespaces::Pause;
use crate::probe::Run;
use crate::process::{self, Plan, Stdio, View};
use crate::sandbox::{self, Keep, Remains};
use crate::spec::{Action, Facts, Inputs, Resolved};
use crate::state;
use crate::status::{Phase, PodStatus};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often disk emptyDirs with a sizeLimit are measured (the kubelet's
/// housekeeping looks every 10 s; du of a small volume is cheap).
const STORAGE_CHECK: Duration = Duration::from_secs(2);

/// Reads of one pipe per wake-up: 8 x 8 KiB.
const READS_PER_WAKE: usize = 8;
/// Output waiting for a slow terminal; beyond this, lines are dropped there.
const TERMINAL_QUEUE: usize = 1 << 20;

/// How the supervisor ended, for `up`'s exit status.
pub struct Outcome {
    pub phase: Phase,
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

struct Pipe {
    fd: OwnedFd,
    stream: Stream,
    split: LineSplitter,
}

/// A container's main process.
struct Main {
    pid: i32,
    pidfd: OwnedFd,
    oom_before: u64,
}

/// What the driver holds for one container.
struct Slot {
    name: String,
    /// Its cgroup leaf, if the pod has a cgroup.
    leaf: Option<PathBuf>,
    /// Its logs' directory, and the log of its current instance once it started.
    log_dir: PathBuf,
    log: Option<LogFile>,
    /// Its output; pipes of an earlier run stay until their writers are gone.
    pipes: Vec<Pipe>,
    main: Option<Main>,
    runs: Vec<(Task, Run)>,
}

/// What one poll entry stands for.
#[derive(Clone, Copy)]
enum Source {
    Signals,
    Pipe(usize, usize),
    Run(usize, usize),
    Terminal(Stream),
}

/// What the driver runs a pod with, besides its machine: what the sandbox made and
/// what was resolved and learned for the pod.
pub struct Parts {
    pub paths: PodPaths,
    pub rotation: Rotation,
    pub cgroup: Option<PodCgroup>,
    pub pause: Pause,
    /// The pod's CNI network, DEL'ed when the pod ends, and the host's network
    /// namespace to go back to for it (the supervisor is in the pod's).
    pub network: Option<crate::network::Attachment>,
    pub host_netns: Option<File>,
    pub inputs: Inputs,
    pub facts: Facts,
}

pub struct Driver {
    pod: Pod,
    /// The pod's ConfigMaps and Secrets, and what the runtime learned about it.
    inputs: Inputs,
    facts: Facts,
    epoch: Instant,
    cgroup: Option<PodCgroup>,
    pause: Pause,
    pause_dead: bool,
    signals: SignalFd,
    slots: Vec<Slot>,
    terminal: Option<Terminal>,
    /// Where the pod's state, logs and volumes are.
    paths: PodPaths,
    rotation: Rotation,
    /// A stop was asked for (down, ^C): the pod's state goes with it.
    stop_asked: bool,
    /// The status to write once this wake-up's events are handled: one write for a
    /// burst of changes (three containers ending at once), not one per change.
    unpublished: Option<PodStatus>,
    /// The pod's events, written with the status.
    events: EventLog,
    /// systemd, when `up` runs in the foreground as a Type=notify service.
    notify: Option<crate::notify::Notifier>,
    /// The pod's CNI network, DEL'ed when the pod ends, and the host's network
    /// namespace to go back to for it (this process is in the pod's).
    network: Option<crate::network::Attachment>,
    host_netns: Option<std::fs::File>,
    /// Disk emptyDirs with a sizeLimit: (volume, directory, limit in bytes), and when
    /// they are measured next.
    storage: Vec<(String, PathBuf, u64)>,
    next_storage_check: Duration,
}

impl Driver {
    pub fn new(
        pod: Pod,
        parts: Parts,
        signals: &SigSet,
        foreground: bool,
    ) -> anyhow::Result<Driver> {
        use anyhow::Context;
        let Parts {
            paths,
            rotation,
            cgroup,
            pause,
            network,
            host_netns,
            inputs,
            facts,
        } = parts;
        let signals = SignalFd::with_flags(signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .context("failed to create a signalfd")?;
        // The first instance's logs are opened now: a pod that cannot have them (no
        // fd left, a full disk) fails to start, with nothing left behind.
        let mut slots = Vec::new();
        for c in pod.spec().all_containers() {
            let log_dir = paths.logs(&c.name);
            let log = LogFile::open(&log_dir, 0, rotation)
                .with_context(|| format!("failed to open a log in {}", log_dir.display()))?;
            slots.push(Slot {
                name: c.name.clone(),
                leaf: cgroup.as_ref().map(|cg| cg.leaf(&c.name)),
                log_dir,
                log: Some(log),
                pipes: Vec::new(),
                main: None,
                runs: Vec::new(),
            });
        }
        let storage = pod
            .spec()
            .volumes
            .iter()
            .filter_map(|v| match &v.source {
                crate::spec::VolumeSource::EmptyDir {
                    memory: false,
                    size_limit: Some(limit),
                } => Some((v.name.clone(), paths.volume(&v.name), *limit)),
                _ => None,
            })
            .collect();
        Ok(Driver {
            pod,
            inputs,
            facts,
            epoch: Instant::now(),
            cgroup,
            pause,
            pause_dead: false,
            signals,
            slots,
            terminal: foreground.then(Terminal::open),
            paths,
            rotation,
            stop_asked: false,
            unpublished: None,
            events: EventLog::default(),
            notify: foreground.then(crate::notify::Notifier::from_env).flatten(),
            network,
            host_netns,
            storage,
            next_storage_check: STORAGE_CHECK,
        })
    }

    /// Runs the pod to its end; reports through `ready` (for `up -d`) once every
    /// container that can start has been started.
    pub fn run(mut self, ready: Option<File>) -> Outcome {
        let scheduled = format!(
            "Successfully assigned default/{} to {}",
            self.pod.spec().name,
            crate::kube::node_name().unwrap_or_default()
        );
        self.event(None, false, "Scheduled", scheduled, "default-scheduler");
        self.step(Event::Tick);
        self.publish();
        if let Some(mut r) = ready {
            let _ = r.write_all(b"ok\n");
        }
        // Setup's code is done with: the loop keeps only its own pages resident.
        crate::sys::shed_executable_pages();
        while !self.pod.finished() {
            self.wait();
            self.check_storage();
            self.step(Event::Tick);
            self.publish();
        }
        self.finish()
    }

    /// The pod as its processes see it.
    fn resolved(&self) -> Resolved<'_> {
        Resolved {
            spec: self.pod.spec(),
            inputs: &self.inputs,
            facts: &self.facts,
        }
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Evicts the pod, as the kubelet does, once a disk emptyDir holds more than its
    /// sizeLimit.
    fn check_storage(&mut self) {
        if self.storage.is_empty() || self.now() < self.next_storage_check {
            return;
        }
        self.next_storage_check = self.now() + STORAGE_CHECK;
        let over = self
            .storage
            .iter()
            .find(|(_, dir, limit)| crate::volumes::disk_usage(dir) > *limit);
        if let Some((name, _, limit)) = over {
            let message = format!(
                "Usage of EmptyDir volume {name:?} exceeds the limit {:?}. ",
                crate::quantity::Memory(*limit).to_string()
            );
            self.event(None, true, "Evicted", message.clone(), "kubelet");
            self.storage.clear();
            self.step(Event::Evict { message });
        }
    }

    /// Feeds `event` to the machine and carries out its effects, and those of the
    /// events they give rise to, in order.
    fn step(&mut self, event: Event) {
        let mut queue = VecDeque::from([event]);
        while let Some(event) = queue.pop_front() {
            let now = self.now();
            for effect in self.pod.handle(event, now) {
                self.apply(effect, &mut queue);
            }
        }
    }

    fn apply(&mut self, effect: Effect, queue: &mut VecDeque<Event>) {
        match effect {
            Effect::Spawn(c) => match self.pause_gone() {
                // The machine takes c back: nothing starts in a dying pod.
                Some(how) => queue.push_back(Event::PauseDied { how }),
                None => queue.push_back(self.spawn(c)),
            },
            Effect::Run { c, task, action } => match self.launch(c, &action) {
                Ok(run) => self.slots[c].runs.push((task, run)),
                Err(verdict) => queue.push_back(Event::Done { c, task, verdict }),
            },
            Effect::Cancel { c, task } => {
                let runs = &mut self.slots[c].runs;
                if let Some(i) = runs.iter().position(|(t, _)| *t == task) {
                    runs.swap_remove(i).1.cancel();
                }
            }
            Effect::Terminate(c) => {
                if let Some(m) = &self.slots[c].main {
                    let _ = crate::sys::pidfd_send_signal(&m.pidfd, libc::SIGTERM);
                }
            }
            Effect::Kill(c) => {
                if let Some(m) = &self.slots[c].main {
                    let _ = crate::sys::pidfd_send_signal(&m.pidfd, libc::SIGKILL);
                }
                if let Some(cg) = &self.cgroup {
                    cg.kill_leaf(&self.slots[c].name);
                }
            }
            Effect::KillPod => {
                if !self.cgroup.as_ref().is_some_and(|cg| cg.kill().is_ok()) {
                    for m in self.slots.iter().filter_map(|s| s.main.as_ref()) {
                        let _ = crate::sys::pidfd_send_signal(&m.pidfd, libc::SIGKILL);
                    }
                }
            }
            Effect::Record(r) => {
                let list = if r.init {
                    "initContainers"
                } else {
                    "containers"
                };
                let object = Some(format!("spec.{list}{{{}}}", r.container));
                self.event(object, r.warning, r.reason, r.message.clone(), "kubelet");
                if r.warning {
                    let line = format!("launcher: {}: {}\n", r.container, r.message);
                    self.say(Stream::Stderr, line.as_bytes());
                }
            }
            Effect::Publish(status) => self.unpublished = Some(status),
        }
    }

    /// Starts container `c`'s main process: Started, or CannotRun with the reason.
    fn spawn(&mut self, c: usize) -> Event {
        let cannot = |message: String| Event::CannotRun {
            c,
            code: 128,
            message,
        };
        let (out_r, out_w) = match crate::sys::pipe() {
            Ok(p) => p,
            Err(e) => return cannot(format!("pipe: {e}")),
        };
        let (err_r, err_w) = match crate::sys::pipe() {
            Ok(p) => p,
            Err(e) => return cannot(format!("pipe: {e}")),
        };
        let slot = &self.slots[c];
        let pod = self.resolved();
        let container = self.pod.container(c);
        let stdio = Stdio::Pipes {
            stdout: out_w,
            stderr: err_w,
        };
        let argv = pod.command_line(container);
        let volumes = match crate::volumes::prepare(
            pod.spec,
            container,
            &self.paths,
            &pod.environment(container),
        ) {
            Ok(v) => v,
            Err(e) => return cannot(e.to_string()),
        };
        let plan = Plan::new(
            pod,
            container,
            &argv,
            slot.leaf.as_deref(),
            self.pause.pidfd.as_fd(),
            stdio,
            View::Own(volumes),
        );
        let oom_before = slot.leaf.as_deref().map_or(0, memory::oom_kills);
        let started = plan.and_then(process::spawn);
        match started {
            Ok(s) => {
                if let Some(e) = s.failed {
                    // The child has already exited; reap it here, its exit is this.
                    let _ = waitpid(Pid::from_raw(s.pid), None);
                    // A command that cannot run exits as a shell's would; a container
                    // whose setup failed before it, as the kubelet's StartError: 128.
                    let code = match e.step {
                        process::Step::Exec => e.exit_code(),
                        _ => 128,
                    };
                    let message = e.to_string();
                    return Event::CannotRun { c, code, message };
                }
                let instance = self.pod.restarts(c);
                let slot = &self.slots[c];
                if slot.log.as_ref().map(LogFile::instance) != Some(instance) {
                    // Output of the earlier instance still in its pipes goes to this log.
                    let log = LogFile::open(&slot.log_dir, instance, self.rotation);
                    if let Err(e) = &log {
                        let line = format!(
                            "launcher: {}: its output is not logged: {}: {e}\n",
                            slot.name,
                            slot.log_dir.display()
                        );
                        self.say(Stream::Stderr, line.as_bytes());
                    }
                    self.slots[c].log = log.ok();
                }
                let slot = &mut self.slots[c];
                for (fd, stream) in [(out_r, Stream::Stdout), (err_r, Stream::Stderr)] {
                    let _ = nix::fcntl::fcntl(
                        &fd,
                        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                    );
                    slot.pipes.push(Pipe {
                        fd,
                        stream,
                        split: LineSplitter::default(),
                    });
                }
                slot.main = Some(Main {
                    pid: s.pid,
                    pidfd: s.pidfd,
                    oom_before,
                });
                Event::Started { c, pid: s.pid }
            }
            Err(e) if e.pod_is_dying() => {
                self.pause_dead = true;
                Event::PauseDied { how: "died".into() }
            }
            Err(e) => cannot(format!("{:#}", anyhow::Error::from(e))),
        }
    }

    /// Starts a probe's or hook's action for container `c`. An exec runs in the
    /// container (its namespaces, cgroup, user) with /dev/null for stdio.
    fn launch(&self, c: usize, action: &Action) -> Result<Run, Verdict> {
        match action {
            Action::Exec(argv) => {
                let slot = &self.slots[c];
                let view = match &slot.main {
                    Some(m) => View::Join(m.pidfd.as_fd()),
                    None => View::Pod,
                };
                let plan = Plan::new(
                    self.resolved(),
                    self.pod.container(c),
                    argv,
                    slot.leaf.as_deref(),
                    self.pause.pidfd.as_fd(),
                    Stdio::Null,
                    view,
                );
                let started = plan
                    .and_then(process::spawn)
                    .map_err(|e| Verdict::Failure(format!("{:#}", anyhow::Error::from(e))))?;
                if let Some(e) = started.failed {
                    let _ = waitpid(Pid::from_raw(started.pid), None);
                    return Err(Verdict::Failure(e.to_string()));
                }
                Ok(Run::exec(started.pid, started.pidfd))
            }
            Action::HttpGet {
                host,
                port,
                path,
                headers,
            } => Run::connect(*host, *port, Some((path, headers))),
            Action::TcpSocket { host, port } => Run::connect(*host, *port, None),
            // The machine times sleeps itself; one here is already over.
            Action::Sleep(_) => Err(Verdict::Success),
        }
    }

    /// Has pause died, or started dying? Then how, for the pod's message.
    fn pause_gone(&mut self) -> Option<String> {
        if self.pause_dead {
            return None;
        }
        // An exiting init of a PID namespace waits in the kernel for every process
        // in the namespace to be reaped (pid_namespaces(7)); it is PF_EXITING then.
        let exiting = pf_exiting(self.pause.pid);
        let exited = poll_in(&self.pause.pidfd);
        if !(exiting || exited) {
            return None;
        }
        self.pause_dead = true;
        Some("died".into())
    }

    fn publish(&mut self) {
        self.events.save(&self.paths.events());
        if let Some(status) = self.unpublished.take() {
            if let Some(n) = &mut self.notify {
                n.status(&self.pod.spec().name, &status);
            }
            // A state directory removed underneath the pod is not the pod's end.
            let _ = state::write_json(&self.paths.status(), &status);
        }
    }

    /// Records an event about the pod, or about one of its containers (`object`).
    fn event(
        &mut self,
        object: Option<String>,
        warning: bool,
        reason: &str,
        message: String,
        source: &str,
    ) {
        let event = crate::events::Event {
            kind: if warning { "Warning" } else { "Normal" }.into(),
            reason: reason.into(),
            message,
            field_path: object,
            source: source.into(),
            count: 0,
            first_timestamp: String::new(),
            last_timestamp: String::new(),
        };
        self.events.add(event, &crate::status::now_rfc3339());
    }

    /// Waits for the next kernel event or timer and feeds what happened.
    fn wait(&mut self) {
        let next = match (self.pod.next_timer(), self.storage.is_empty()) {
            (t, true) => t,
            (None, false) => Some(self.next_storage_check),
            (Some(t), false) => Some(t.min(self.next_storage_check)),
        };
        let timeout = match next {
            None => PollTimeout::NONE,
            Some(t) => {
                let left = t.saturating_sub(self.now());
                // Rounded up, so a timer is never polled for again just before it is due.
                let ms = left.as_micros().div_ceil(1000).min(60_000) as u16;
                PollTimeout::from(ms)
            }
        };
        let mut sources = vec![Source::Signals];
        let mut fds = vec![PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
        for (ci, slot) in self.slots.iter().enumerate() {
            for (pi, p) in slot.pipes.iter().enumerate() {
                fds.push(PollFd::new(p.fd.as_fd(), PollFlags::POLLIN));
                sources.push(Source::Pipe(ci, pi));
            }
            for (ri, (_, run)) in slot.runs.iter().enumerate() {
                if let Some((fd, flags)) = run.interest() {
                    fds.push(PollFd::new(fd, flags));
                    sources.push(Source::Run(ci, ri));
                }
            }
        }
        if let Some(t) = &self.terminal {
            for (stream, sink) in [(Stream::Stdout, &t.out), (Stream::Stderr, &t.err)] {
                if let Some(fd) = sink.waiting() {
                    fds.push(PollFd::new(fd, PollFlags::POLLOUT));
                    sources.push(Source::Terminal(stream));
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
        // Output first, so a container's last words are logged before its exit.
        // Backwards, so a pipe removed at EOF leaves the other indices valid.
        for (k, source) in sources.iter().enumerate().rev() {
            if let (true, Source::Pipe(ci, pi)) = (ready[k], *source) {
                self.drain(ci, pi);
            }
        }
        let mut results = Vec::new();
        for (k, source) in sources.iter().enumerate().rev() {
            if !ready[k] {
                continue;
            }
            match *source {
                Source::Run(ci, ri) => {
                    let runs = &mut self.slots[ci].runs;
                    if let Some(verdict) = runs[ri].1.ready() {
                        let (task, _) = runs.swap_remove(ri);
                        results.push(Event::Done {
                            c: ci,
                            task,
                            verdict,
                        });
                    }
                }
                Source::Terminal(stream) => self.flush_terminal(stream),
                Source::Signals | Source::Pipe(..) => {}
            }
        }
        for event in results {
            self.step(event);
        }
        if ready[0] {
            self.signals();
        }
    }

    /// Reads what one pipe has now, at most READS_PER_WAKE buffers. At EOF the
    /// unfinished line is logged and the pipe goes.
    fn drain(&mut self, ci: usize, pi: usize) {
        let mut buf = [0u8; 8192];
        let mut lines: Vec<(Stream, Vec<u8>)> = Vec::new();
        let fg = self.terminal.is_some();
        let slot = &mut self.slots[ci];
        let (name, log) = (&slot.name, &mut slot.log);
        let pipe = &mut slot.pipes[pi];
        let stream = pipe.stream;
        let mut emit = |line: &[u8], full: bool| {
            if let Some(log) = log.as_mut() {
                log.record(stream, line, full);
            }
            if fg {
                let mut text = format!("[{name}] ").into_bytes();
                text.extend_from_slice(line);
                text.push(b'\n');
                lines.push((stream, text));
            }
        };
        let mut eof = false;
        for _ in 0..READS_PER_WAKE {
            match crate::sys::read(pipe.fd.as_raw_fd(), &mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => pipe.split.feed(&buf[..n], &mut emit),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        if eof {
            pipe.split.finish(&mut emit);
            slot.pipes.remove(pi);
        }
        for (stream, text) in lines {
            self.say(stream, &text);
        }
    }

    fn signals(&mut self) {
        while let Ok(Some(info)) = self.signals.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => self.reap(),
                Ok(_) => self.stop(),
                Err(_) => {}
            }
        }
    }

    /// A stop asked for (down, ^C): the grace period `down` wrote, or the pod's.
    fn stop(&mut self) {
        self.stop_asked = true;
        if let Some(n) = &mut self.notify {
            n.stopping(&self.pod.spec().name);
        }
        let grace = std::fs::read_to_string(self.paths.stop_request())
            .ok()
            .and_then(|s| crate::quantity::parse_duration(s.trim()).ok());
        self.step(Event::Stop { grace });
    }

    fn reap(&mut self) {
        let mut exits: Vec<(i32, Exit)> = Vec::new();
        loop {
            let (pid, code, signal) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid.as_raw(), code, None),
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    (pid.as_raw(), 128 + sig as i32, Some(sig as i32))
                }
                Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => break,
                Err(nix::errno::Errno::EINTR) | Ok(_) => continue,
                Err(_) => break,
            };
            let exit = Exit {
                code,
                signal,
                oom: false,
            };
            exits.push((pid, exit));
        }
        // pause first: the containers it took along must not be restarted.
        if let Some(&(_, e)) = exits.iter().find(|(pid, _)| *pid == self.pause.pid) {
            if !self.pause_dead {
                self.pause_dead = true;
                let how = match e.signal {
                    Some(s) => format!("was killed by signal {s}"),
                    None => format!("exited {}", e.code),
                };
                self.step(Event::PauseDied { how });
            }
        } else if !exits.is_empty() {
            if let Some(how) = self.pause_gone() {
                self.step(Event::PauseDied { how });
            }
        }
        for (pid, mut exit) in exits {
            if let Some(c) = self
                .slots
                .iter()
                .position(|s| s.main.as_ref().is_some_and(|m| m.pid == pid))
            {
                // Its last words first, as far as one wake-up goes.
                for pi in (0..self.slots[c].pipes.len()).rev() {
                    self.drain(c, pi);
                }
                let slot = &mut self.slots[c];
                if let Some(m) = slot.main.take() {
                    exit.oom = slot.leaf.as_deref().map_or(0, memory::oom_kills) > m.oom_before;
                }
                self.step(Event::Exited { c, exit });
            } else if let Some((c, ri)) = self.slots.iter().enumerate().find_map(|(c, s)| {
                s.runs
                    .iter()
                    .position(|(_, r)| r.pid() == Some(pid))
                    .map(|ri| (c, ri))
            }) {
                let (task, _) = self.slots[c].runs.swap_remove(ri);
                let verdict = Run::exited(exit.code);
                self.step(Event::Done { c, task, verdict });
            }
        }
    }

    /// A line for the terminal, in the foreground.
    fn say(&mut self, stream: Stream, text: &[u8]) {
        let Some(t) = &mut self.terminal else {
            return;
        };
        let closed = t.sink(stream).push(text);
        if closed && stream == Stream::Stdout && !self.stop_asked {
            // Nobody reads the pod's output any more (`up | head -1`): stop it, as ^C.
            self.stop();
        }
    }

    fn flush_terminal(&mut self, stream: Stream) {
        if let Some(t) = &mut self.terminal {
            if t.sink(stream).flush() && stream == Stream::Stdout && !self.stop_asked {
                self.stop();
            }
        }
    }

    /// Every container has stopped: the last output, then pause and the cgroups go.
    /// The state stays for `status` unless a stop was asked for or the pod ran in the
    /// foreground.
    fn finish(mut self) -> Outcome {
        if let Some(n) = &mut self.notify {
            n.stopping(&self.pod.spec().name);
        }
        for ci in 0..self.slots.len() {
            for pi in (0..self.slots[ci].pipes.len()).rev() {
                self.drain(ci, pi);
            }
            let slot = &mut self.slots[ci];
            let fg = self.terminal.is_some();
            let mut lines = Vec::new();
            for pipe in &mut slot.pipes {
                let (log, name, stream) = (&mut slot.log, &slot.name, pipe.stream);
                pipe.split.finish(|line, full| {
                    if let Some(log) = log.as_mut() {
                        log.record(stream, line, full);
                    }
                    if fg {
                        lines.push((
                            stream,
                            format!("[{name}] {}\n", String::from_utf8_lossy(line)),
                        ));
                    }
                });
            }
            for (stream, line) in lines {
                self.say(stream, line.as_bytes());
            }
        }
        // pause, PID 1 of the pod, exits only once every process of the pod is
        // reaped; all of them are children of this process.
        // Without a cgroup, pause's end is what takes the rest of the pod's PID
        // namespace with it.
        match &self.cgroup {
            Some(cg) => drop(cg.kill()),
            None => drop(crate::sys::pidfd_send_signal(
                &self.pause.pidfd,
                libc::SIGKILL,
            )),
        }
        loop {
            match waitpid(Pid::from_raw(-1), None) {
                Ok(s) if s.pid() == Some(Pid::from_raw(self.pause.pid)) => break,
                Err(nix::errno::Errno::EINTR) | Ok(_) => {}
                Err(_) => break,
            }
        }
        // The plugins run in the host's namespaces, not in the pod's, whose PID
        // namespace can hold no new process now that pause is gone.
        if let Some(netns) = &self.host_netns {
            let _ = crate::sys::leave_pod(netns);
        }
        if let Some(t) = &mut self.terminal {
            t.drain(Duration::from_secs(1));
        }
        // pause is reaped: the cgroups and the network are left to go, and with them
        // the pod's files unless `status` and `logs` may still want them.
        let keep = match self.terminal.is_some() || self.stop_asked {
            true => Keep::Nothing,
            false => Keep::Files,
        };
        let remains = Remains {
            state: self.paths.state.clone(),
            netns_pin: self.paths.netns_pin(),
            network_lock: self.paths.network_lock(),
            pods: vec![self.paths.clone()],
            cgroup: self.cgroup.clone(),
            pause: None,
            network: self.network.as_ref(),
        };
        if let Err(e) = sandbox::teardown(remains, Duration::ZERO, keep) {
            // Detached, nobody reads this: `down` tries again, and says so.
            let _ = writeln!(std::io::stderr(), "launcher: pod teardown: {e:#}");
        }
        let (phase, exit_code) = self.pod.outcome();
        Outcome { phase, exit_code }
    }
}

/// Is `pid` exiting (PF_EXITING in the flags of /proc/PID/stat)?
fn pf_exiting(pid: i32) -> bool {
    const PF_EXITING: u64 = 0x4;
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.get(s.rfind(')')? + 2..)?;
            // rest starts at field 3 (state); flags are field 9.
            rest.split(' ').nth(6)?.parse::<u64>().ok()
        })
        .is_some_and(|flags| flags & PF_EXITING != 0)
}

/// Is `fd` readable right now (a pidfd: its process has exited)?
fn poll_in(fd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    nix::poll::poll(&mut fds, PollTimeout::ZERO).is_ok_and(|n| n > 0)
}

/// The foreground copy of the pod's output: `[container] line` on the launcher's
/// stdout and stderr, never blocking the supervisor.
struct Terminal {
    out: Sink,
    err: Sink,
}

impl Terminal {
    fn open() -> Terminal {
        Terminal {
            out: Sink::open(1),
            err: Sink::open(2),
        }
    }

    fn sink(&mut self, stream: Stream) -> &mut Sink {
        match stream {
            Stream::Stdout => &mut self.out,
            Stream::Stderr => &mut self.err,
        }
    }

    /// At the end: what is still queued, for at most `limit`.
    fn drain(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        for sink in [&mut self.out, &mut self.err] {
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
                let Some(fd) = sink.waiting() else {
                    break;
                };
                let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
                let writable =
                    nix::poll::poll(&mut fds, PollTimeout::from(ms)).is_ok_and(|n| n > 0);
                if left.is_zero() || !writable {
                    break;
                }
                sink.flush();
            }
        }
    }
}

/// One of the launcher's output streams, written without blocking.
struct Sink {
    fd: Option<OwnedFd>,
    socket: bool,
    queue: Vec<u8>,
    closed: bool,
}

impl Sink {
    /// A pipe or terminal is opened again through /proc/self/fd: a new open file
    /// description, so O_NONBLOCK on it leaves the one the shell shares alone. A
    /// regular file never blocks and keeps its offset: it is used as it is.
    fn open(fd: i32) -> Sink {
        use nix::sys::stat::{fstat, SFlag};
        // SAFETY: fds 0-2 stay open for the life of the process.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let kind = fstat(borrowed).map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT);
        let reopen = matches!(kind, Ok(k) if k == SFlag::S_IFIFO || k == SFlag::S_IFCHR);
        let socket = matches!(kind, Ok(k) if k == SFlag::S_IFSOCK);
        let own = if reopen {
            std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(format!("/proc/self/fd/{fd}"))
                .map(OwnedFd::from)
                .ok()
        } else {
            borrowed.try_clone_to_owned().ok()
        };
        // A pipe whose reader is already gone cannot be opened (ENXIO).
        let closed = own.is_none() && kind.is_ok();
        Sink {
            fd: own,
            socket,
            queue: Vec::new(),
            closed,
        }
    }

    /// The fd to poll for POLLOUT while output waits.
    fn waiting(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.fd
            .as_ref()
            .filter(|_| !self.queue.is_empty() && !self.closed)
            .map(|f| f.as_fd())
    }

    /// Queues `text` (dropped whole when the queue is full) and writes what it can.
    /// True once the reader is gone.
    fn push(&mut self, text: &[u8]) -> bool {
        if self.closed || self.fd.is_none() {
            return self.closed;
        }
        if self.queue.len() + text.len() <= TERMINAL_QUEUE {
            self.queue.extend_from_slice(text);
        }
        self.flush()
    }

    /// Writes without blocking; true once the reader is gone (EPIPE).
    fn flush(&mut self) -> bool {
        let Some(fd) = &self.fd else {
            return self.closed;
        };
        while !self.queue.is_empty() && !self.closed {
            let n = if self.socket {
                nix::sys::socket::send(
                    fd.as_raw_fd(),
                    &self.queue,
                    nix::sys::socket::MsgFlags::MSG_DONTWAIT
                        | nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
                )
            } else {
                nix::unistd::write(fd, &self.queue)
            };
            match n {
                Ok(n) => {
                    self.queue.drain(..n);
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(_) => {
                    self.closed = true;
                    self.queue.clear();
                }
            }
        }
        self.closed
    }
}
