//! The supervisor's event loop: one thread, one poll(2), driving the pod's state
//! machine (`machine`). It turns what the kernel reports into machine events and
//! carries the machine's effects out; it decides nothing itself. Its parts, one job
//! each:
//! - `kernel`: every system call on the pod's processes and cgroups, behind the
//!   [`Kernel`] interface ([`Host`] makes the calls; the unit tests' fake does not);
//! - `output`: the containers' output into their logs and, in the foreground, onto
//!   the terminal, without ever blocking;
//! - `publish`: the pod's status, events and systemd notifications;
//! - `attach`: `launcher attach` sessions, and the containers' stdin.
//!
//! poll watches the kernel's signal fd (SIGCHLD, SIGTERM, SIGINT, SIGHUP), the
//! containers' stdout/stderr pipes (or terminals), the sockets of probes and hooks in
//! flight, the attach socket and its sessions, containers' stdin while input waits
//! and, in the foreground, the terminal while output waits for it; the machine's next timer
//! (or the next measurement of the disk emptyDirs) is poll's timeout.
//!
//! pause dying is noticed before the exits of the containers it takes along (they
//! are reaped first: pause, PID 1 of the pod, waits for them), so no container is
//! restarted into a dying PID namespace.

mod attach;
mod kernel;
mod output;
mod publish;
#[cfg(test)]
mod tests;

pub use kernel::{block_signals, stop_signals, Child, Host, Kernel, NotStarted};
pub use output::Terminal;

use crate::layout::PodPaths;
use crate::logs::{Rotation, Stream};
use crate::machine::{Effect, Event, Exit, Pod, StorageUsage, Task, Verdict};
use crate::probe::Run;
use crate::sandbox::Keep;
use crate::spec::{Action, Facts, Inputs, Resolved};
use crate::status::Phase;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use output::Output;
use publish::Publisher;
use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The kubelet's bounds on a termination message: the last 4 KiB of the file, or of
/// the last 80 lines of the log, at most 2 KiB.
const MAX_TERMINATION_LOG: u64 = 4096;
const FALLBACK_LOG_LINES: usize = 80;
const MAX_FALLBACK_LOG: usize = 2048;

/// How often disk emptyDirs with a sizeLimit are measured (the kubelet's
/// housekeeping looks every 10 s; du of a small volume is cheap).
const STORAGE_CHECK: Duration = Duration::from_secs(2);

/// The local storage of a pod that a limit applies to.
struct Storage {
    /// Disk emptyDirs: (volume, directory).
    volumes: Vec<(String, PathBuf)>,
    /// Measure the containers' layers (some container has an ephemeral-storage limit).
    layers: bool,
}

impl Storage {
    /// With an ephemeral-storage limit, every disk emptyDir counts (for the pod's
    /// total); without, those with a sizeLimit.
    fn of(spec: &crate::spec::PodSpec, paths: &crate::layout::PodPaths) -> Storage {
        let layers = spec
            .all_containers()
            .any(|c| c.limits.ephemeral_storage.is_some());
        let volumes = (spec.volumes.iter())
            .filter(|v| match &v.source {
                crate::spec::VolumeSource::EmptyDir {
                    memory: false,
                    size_limit,
                    ..
                } => layers || size_limit.is_some(),
                _ => false,
            })
            .map(|v| (v.name.clone(), paths.volume(&v.name)))
            .collect();
        Storage { volumes, layers }
    }

    fn is_empty(&self) -> bool {
        self.volumes.is_empty() && !self.layers
    }
}

/// How the supervisor ended, for `up`'s exit status.
pub struct Outcome {
    pub phase: Phase,
    pub exit_code: i32,
    /// It was stopped on request (`down`, ^C, SIGTERM).
    pub stopped: bool,
}

/// What the driver runs a pod with, besides its machine and kernel.
pub struct Parts {
    pub paths: PodPaths,
    pub rotation: Rotation,
    pub inputs: Inputs,
    pub facts: Facts,
    /// The foreground's terminal; none for a detached pod.
    pub terminal: Option<Terminal>,
    /// systemd, when `up` runs in the foreground as a Type=notify service.
    pub notify: Option<crate::notify::Notifier>,
    /// Warning events of the sandbox's making (reason, message), recorded first.
    pub warnings: Vec<(&'static str, String)>,
}

/// A container's main process.
struct Main {
    child: Child,
    oom_before: u64,
}

/// What the driver holds for one container.
struct Slot {
    output: Output,
    main: Option<Main>,
    runs: Vec<(Task, Run)>,
    /// Its current instance's stdin, with `stdin: true`.
    input: Option<attach::Input>,
    /// Prepared ahead of its first start (see `prepare_next`): the read ends of its
    /// output and its stdin, given to the process being held.
    prepared: Option<(OwnedFd, Option<OwnedFd>, Option<attach::Input>)>,
}

/// What one poll entry stands for.
#[derive(Clone, Copy)]
enum Source {
    Signals,
    Pipe(usize, usize),
    Run(usize, usize),
    Terminal(Stream),
    Attach(attach::Source),
    Input(usize),
}

pub struct Driver<K: Kernel> {
    pod: Pod,
    kernel: K,
    /// The pod's ConfigMaps and Secrets, and what the runtime learned about it.
    inputs: Inputs,
    facts: Facts,
    epoch: Instant,
    pause_dead: bool,
    slots: Vec<Slot>,
    terminal: Option<Terminal>,
    publisher: Publisher,
    /// A stop was asked for (down, ^C): the pod's state goes with it.
    stop_asked: bool,
    stop_request: PathBuf,
    /// The `down` that asked for this stop wants its phases, in this file.
    stop_timings: bool,
    stop_timings_file: PathBuf,
    /// What local storage has a limit to check: the disk emptyDirs (volume,
    /// directory) and the containers' layers, and when they are measured next.
    storage: Storage,
    next_storage_check: Duration,
    /// Parts::warnings, until the pod begins.
    setup_warnings: Vec<(&'static str, String)>,
    /// In the foreground on a terminal: what of the pod's progress was told there.
    progress: Option<Progress>,
    /// The last warning told on the terminal (container, message) and how often.
    last_warning: Option<((String, String), u64)>,
    sessions: attach::Sessions,
    attach_socket: PathBuf,
}

impl<K: Kernel> Driver<K> {
    pub fn new(pod: Pod, kernel: K, parts: Parts) -> anyhow::Result<Driver<K>> {
        use anyhow::Context;
        let Parts {
            paths,
            rotation,
            inputs,
            facts,
            terminal,
            notify,
            warnings,
        } = parts;
        let mut slots = Vec::new();
        for c in pod.spec().all_containers() {
            let dir = paths.logs(&c.name);
            let output = Output::open(&c.name, &dir, rotation)
                .with_context(|| format!("failed to open a log in {}", dir.display()))?;
            slots.push(Slot {
                output,
                main: None,
                runs: Vec::new(),
                input: None,
                prepared: None,
            });
        }
        let storage = Storage::of(pod.spec(), &paths);
        let foreground = terminal.is_some();
        let terminal_is_tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
        // Without its socket a pod runs on; `attach` then says it cannot reach it.
        let attach_socket = paths.attach_socket();
        let sessions = attach::Sessions::new(crate::attach::listen(&attach_socket).ok());
        Ok(Driver {
            pod,
            kernel,
            inputs,
            facts,
            epoch: Instant::now(),
            pause_dead: false,
            slots,
            terminal,
            stop_asked: false,
            stop_request: paths.stop_request(),
            stop_timings: false,
            stop_timings_file: paths.stop_timings(),
            publisher: Publisher::new(paths, notify),
            storage,
            next_storage_check: STORAGE_CHECK,
            setup_warnings: warnings,
            progress: (terminal_is_tty && foreground).then(Progress::default),
            last_warning: None,
            sessions,
            attach_socket,
        })
    }

    /// Runs the pod to its end; reports through `ready` (for `up -d`) once every
    /// container that can start has been started.
    pub fn run(mut self, ready: Option<File>) -> Outcome {
        self.begin();
        match ready {
            Some(mut r) => {
                let _ = r.write_all(format!("ok\n{}", crate::timings::encode()).as_bytes());
            }
            None => crate::timings::report("up"),
        }
        // Setup's code is done with: the loop keeps only its own pages resident.
        crate::sys::shed_executable_pages();
        while !self.pod.finished() {
            self.turn();
        }
        self.finish()
    }

    /// The pod is scheduled and its first containers start.
    fn begin(&mut self) {
        let scheduled = format!(
            "Successfully assigned default/{} to {}",
            self.pod.spec().name,
            crate::kube::node_name().unwrap_or_default()
        );
        let publisher = &mut self.publisher;
        publisher.event(None, false, "Scheduled", scheduled, "default-scheduler");
        for (reason, message) in std::mem::take(&mut self.setup_warnings) {
            publisher.event(None, true, reason, message, "kubelet");
        }
        self.step(Event::Tick);
        crate::timings::mark("containers started");
        self.publisher.publish();
        crate::timings::mark("status, events");
    }

    /// One turn of the loop: wait for the kernel or a timer, feed what happened,
    /// publish what changed.
    fn turn(&mut self) {
        self.wait();
        self.measure_storage();
        self.step(Event::Tick);
        self.publisher.publish();
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Reports how full the pod's local storage with a limit is; the machine decides
    /// whether that evicts the pod.
    fn measure_storage(&mut self) {
        if self.storage.is_empty() || self.now() < self.next_storage_check {
            return;
        }
        self.next_storage_check = self.now() + STORAGE_CHECK;
        let volumes = (self.storage.volumes.iter())
            .map(|(name, dir)| (name.clone(), self.kernel.disk_usage(dir)))
            .collect();
        let layers = match self.storage.layers {
            false => Vec::new(),
            true => (self.pod.spec().all_containers().enumerate())
                .filter_map(|(c, spec)| Some((c, self.kernel.layer_usage(&spec.name)?)))
                .collect(),
        };
        self.step(Event::StorageUsage(StorageUsage { volumes, layers }));
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
        self.forget_prepared();
    }

    fn apply(&mut self, effect: Effect, queue: &mut VecDeque<Event>) {
        match effect {
            Effect::Spawn(c) => match self.pause_gone() {
                // The machine takes c back: nothing starts in a dying pod.
                Some(how) => queue.push_back(Event::PauseDied { how }),
                None => {
                    self.prepare_next(c);
                    queue.push_back(self.spawn(c))
                }
            },
            Effect::Run { c, task, action } => match self.launch(c, task, &action) {
                Ok(run) => self.slots[c].runs.push((task, run)),
                Err(verdict) => queue.push_back(Event::Done { c, task, verdict }),
            },
            Effect::Cancel { c, task } => {
                let runs = &mut self.slots[c].runs;
                if let Some(i) = runs.iter().position(|(t, _)| *t == task) {
                    if let Some(pidfd) = runs.swap_remove(i).1.into_pidfd() {
                        self.kernel.signal(&pidfd, libc::SIGKILL);
                    }
                }
            }
            Effect::Terminate(c) => {
                if let Some(m) = &self.slots[c].main {
                    self.kernel.signal(&m.child.pidfd, libc::SIGTERM);
                }
            }
            Effect::Kill(c) => {
                if let Some(m) = &self.slots[c].main {
                    self.kernel.signal(&m.child.pidfd, libc::SIGKILL);
                }
                let name = self.pod.container(c).name.clone();
                self.kernel.kill_container(&name);
            }
            Effect::KillPod => {
                if !self.kernel.kill_pod() {
                    for m in self.slots.iter().filter_map(|s| s.main.as_ref()) {
                        self.kernel.signal(&m.child.pidfd, libc::SIGKILL);
                    }
                }
            }
            Effect::Record(r) if r.container.is_empty() => {
                self.publisher
                    .event(None, r.warning, r.reason, r.message, "kubelet");
            }
            Effect::Record(r) => {
                let list = if r.init {
                    "initContainers"
                } else {
                    "containers"
                };
                let object = Some(format!("spec.{list}{{{}}}", r.container));
                let publisher = &mut self.publisher;
                publisher.event(object, r.warning, r.reason, r.message.clone(), "kubelet");
                if r.warning {
                    // A warning that repeats (a failing probe) is told again only at
                    // x10, x100, ... as its event folds.
                    let key = (r.container.clone(), r.message.clone());
                    let times = match &mut self.last_warning {
                        Some((k, n)) if *k == key => {
                            *n += 1;
                            *n
                        }
                        slot => {
                            *slot = Some((key, 1));
                            1
                        }
                    };
                    if times == 1 || (times >= 10 && 10u64.pow(times.ilog10()) == times) {
                        let folded = match times {
                            1 => String::new(),
                            n => format!(" (x{n})"),
                        };
                        let line = format!("launcher: {}: {}{folded}\n", r.container, r.message);
                        self.say(Stream::Stderr, line.as_bytes());
                    }
                }
            }
            Effect::Publish(status) => {
                self.tell_progress(&status);
                self.publisher.status(status);
            }
        }
    }

    /// Before the first start of an app container, prepares the app containers the
    /// machine will start after it: each one's process set up and held before its
    /// program, so that their setups (namespaces, mounts, the old root's unmount, which
    /// waits for an RCU grace period) overlap instead of adding up. They start only
    /// when the machine asks, in its order; a stop forgets them.
    fn prepare_next(&mut self, c: usize) {
        for d in self.pod.to_start_after(c) {
            if self.slots[d].prepared.is_some() {
                continue;
            }
            let container = self.pod.container(d);
            let Ok((stdio, out_r, err_r, input)) = stdio(&mut self.kernel, container) else {
                continue;
            };
            let pod = Resolved {
                spec: self.pod.spec(),
                inputs: &self.inputs,
                facts: &self.facts,
            };
            if self.kernel.prepare(pod, container, stdio) {
                self.slots[d].prepared = Some((out_r, err_r, input));
            }
        }
    }

    /// Ends the prepared processes once the pod stops: they will never be asked for.
    fn forget_prepared(&mut self) {
        if self.pod.active() || self.slots.iter().all(|s| s.prepared.is_none()) {
            return;
        }
        self.kernel.forget_prepared();
        for slot in &mut self.slots {
            slot.prepared = None;
        }
    }

    /// Starts container `c`'s main process (its prepared one, if it has one):
    /// Started, or CannotRun with the reason.
    fn spawn(&mut self, c: usize) -> Event {
        let cannot = |message: String| Event::CannotRun {
            c,
            code: 128,
            message,
        };
        let container = self.pod.container(c);
        let oom_before = self.kernel.oom_kills(&container.name);
        let prepared = (self.slots[c].prepared.take())
            .and_then(|p| Some((p, self.kernel.start_prepared(container)?)));
        let (out_r, err_r, input, spawned) = match prepared {
            Some(((out_r, err_r, input), spawned)) => (out_r, err_r, input, spawned),
            None => {
                let (stdio, out_r, err_r, input) = match stdio(&mut self.kernel, container) {
                    Ok(s) => s,
                    Err(e) => return cannot(e),
                };
                let pod = Resolved {
                    spec: self.pod.spec(),
                    inputs: &self.inputs,
                    facts: &self.facts,
                };
                let spawned = self.kernel.spawn(pod, container, stdio);
                (out_r, err_r, input, spawned)
            }
        };
        crate::timings::mark(&format!("  spawn {}", container.name));
        match spawned {
            Ok(child) => {
                self.slots[c].input = input;
                let instance = self.pod.restarts(c);
                if let Some(warning) = self.slots[c].output.start(instance, out_r, err_r) {
                    self.say(Stream::Stderr, warning.as_bytes());
                }
                let pid = child.pid;
                self.slots[c].main = Some(Main { child, oom_before });
                Event::Started { c, pid }
            }
            Err(NotStarted::CannotRun { code, message }) => Event::CannotRun { c, code, message },
            Err(NotStarted::PodDying) => {
                self.pause_dead = true;
                Event::PauseDied { how: "died".into() }
            }
        }
    }

    /// Starts a probe's or hook's action for container `c`.
    fn launch(&mut self, c: usize, task: Task, action: &Action) -> Result<Run, Verdict> {
        match action {
            Action::Exec(argv) => {
                let main = self.slots[c].main.as_ref().map(|m| m.child.pidfd.as_fd());
                let pod = Resolved {
                    spec: self.pod.spec(),
                    inputs: &self.inputs,
                    facts: &self.facts,
                };
                let child = self
                    .kernel
                    .exec(pod, self.pod.container(c), main, argv)
                    .map_err(Verdict::Failure)?;
                Ok(Run::exec(child.pid, child.pidfd))
            }
            Action::HttpGet {
                host,
                port,
                path,
                headers,
            } => Run::connect(*host, *port, Some((path, headers))),
            Action::TcpSocket { host, port } => Run::connect(*host, *port, None),
            Action::Grpc { port, service } => {
                // The probe's timeout goes with the call as its deadline.
                let timeout = match task {
                    Task::Probe(kind) => self
                        .pod
                        .container(c)
                        .probes
                        .iter()
                        .find(|(k, _)| *k == kind),
                    _ => None,
                }
                .map_or(Duration::from_secs(1), |(_, p)| p.timeout);
                Run::grpc(
                    std::net::IpAddr::from([127, 0, 0, 1]),
                    *port,
                    service,
                    timeout,
                )
            }
            // The machine times sleeps itself; one here is already over.
            Action::Sleep(_) => Err(Verdict::Success),
        }
    }

    /// Has pause died, or started dying? Then how, for the pod's message.
    fn pause_gone(&mut self) -> Option<String> {
        if self.pause_dead || !self.kernel.pause_exiting() {
            return None;
        }
        self.pause_dead = true;
        Some("died".into())
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
        let mut fds = vec![PollFd::new(self.kernel.signal_fd(), PollFlags::POLLIN)];
        for (ci, slot) in self.slots.iter().enumerate() {
            for (pi, fd) in slot.output.fds() {
                fds.push(PollFd::new(fd, PollFlags::POLLIN));
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
            for (stream, fd) in t.waiting() {
                fds.push(PollFd::new(fd, PollFlags::POLLOUT));
                sources.push(Source::Terminal(stream));
            }
        }
        for (ci, slot) in self.slots.iter().enumerate() {
            if let Some(fd) = slot.input.as_ref().and_then(attach::Input::waiting) {
                fds.push(PollFd::new(fd, PollFlags::POLLOUT));
                sources.push(Source::Input(ci));
            }
        }
        let full = |ci: usize| {
            self.slots[ci]
                .input
                .as_ref()
                .is_some_and(attach::Input::full)
        };
        for (source, fd, flags) in self.sessions.interest(full) {
            fds.push(PollFd::new(fd, flags));
            sources.push(Source::Attach(source));
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
                self.drain(ci, Some(pi));
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
                Source::Terminal(stream) => {
                    let gone = self.terminal.as_mut().is_some_and(|t| t.flush(stream));
                    if gone && !self.stop_asked {
                        self.stop();
                    }
                }
                Source::Input(ci) => {
                    if let Some(input) = &mut self.slots[ci].input {
                        input.flush();
                    }
                }
                Source::Attach(_) | Source::Signals | Source::Pipe(..) => {}
            }
        }
        // Sessions last, by id: output above may have dropped some.
        for (k, source) in sources.iter().enumerate() {
            match (ready[k], *source) {
                (true, Source::Attach(attach::Source::Session(id))) => self.attach_session(id),
                (true, Source::Attach(attach::Source::Listener)) => self.sessions.accept(),
                _ => {}
            }
        }
        for event in results {
            self.step(event);
        }
        if ready[0] {
            self.signals();
        }
    }

    /// Container `ci`'s output: one pipe's, or all of them; onto the terminal too.
    /// A log that begins to lose lines (a full disk) is a Warning event; the pod runs
    /// on.
    fn drain(&mut self, ci: usize, pipe: Option<usize>) {
        let fg = self.terminal.is_some();
        let output = &mut self.slots[ci].output;
        output.tap = self.sessions.follows(ci).then(Vec::new);
        let lines = match pipe {
            Some(pi) => output.drain(pi, fg),
            None => output.drain_all(fg),
        };
        for (stream, bytes) in output.tap.take().unwrap_or_default() {
            self.sessions.output(ci, stream == Stream::Stdout, &bytes);
        }
        let output = &mut self.slots[ci].output;
        let loss = output.take_loss();
        for (stream, text) in lines {
            self.say(stream, &text);
        }
        if let Some(why) = loss {
            let c = self.pod.container(ci);
            let list = match ci < self.pod.spec().init_containers.len() {
                true => "initContainers",
                false => "containers",
            };
            let object = Some(format!("spec.{list}{{{}}}", c.name));
            let message = format!(
                "Failed to write the log of container {}: {why}; its output is lost until there is room",
                c.name
            );
            self.publisher
                .event(object, true, "LogLost", message, "kubelet");
        }
    }

    /// Attach session `id` is ready to read or write.
    fn attach_session(&mut self, id: u64) {
        let containers: Vec<&crate::spec::ContainerSpec> =
            self.pod.spec().all_containers().collect();
        let mut inputs: Vec<Option<attach::Input>> =
            self.slots.iter_mut().map(|s| s.input.take()).collect();
        let slots = &self.slots;
        self.sessions
            .ready(id, &containers, &mut inputs, |c| slots[c].main.is_some());
        for (slot, input) in self.slots.iter_mut().zip(inputs) {
            slot.input = input;
        }
    }

    fn signals(&mut self) {
        for signal in self.kernel.signals() {
            match signal {
                libc::SIGCHLD => self.reap(),
                _ => self.stop(),
            }
        }
    }

    /// A stop asked for (down, ^C): the grace period `down` wrote, or the pod's. The
    /// request is taken (its file removed), so that another signal without a new
    /// request (^C again) means now: no grace left.
    fn stop(&mut self) {
        let again = self.stop_asked;
        let request = crate::state::read_text(&self.stop_request).unwrap_or_default();
        let _ = std::fs::remove_file(&self.stop_request);
        let mut words = request.split_whitespace();
        let written = (words.next()).and_then(|g| crate::quantity::parse_duration(g).ok());
        if !again {
            self.stop_timings = words.any(|w| w == crate::timings::TIMINGS_WANTED);
            crate::timings::restart(self.stop_timings);
        }
        self.stop_asked = true;
        self.publisher.stopping();
        let grace = match (again, written) {
            (true, None) => Some(Duration::ZERO),
            (_, g) => g,
        };
        if self.progress.is_some() {
            let name = &self.pod.spec().name;
            let line = match (again, grace.unwrap_or(self.pod.spec().grace)) {
                (true, g) if g.is_zero() => format!("launcher: stopping pod {name} now\n"),
                (_, g) if g.is_zero() => format!("launcher: stopping pod {name}\n"),
                (_, g) => format!(
                    "launcher: stopping pod {name} (grace period {}; ^C again to stop now)\n",
                    crate::quantity::format_duration(g)
                ),
            };
            self.say(Stream::Stderr, line.as_bytes());
        }
        self.step(Event::Stop { grace });
    }

    fn reap(&mut self) {
        let exits = self.kernel.reap();
        // pause first: the containers it took along must not be restarted.
        let pause = self.kernel.pause_pid();
        if let Some((_, e)) = exits.iter().find(|(pid, _)| *pid == pause) {
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
        for (pid, exit) in exits {
            self.exited(pid, exit);
        }
    }

    /// What container `c`'s instance that exited with `code` left as its termination
    /// message, as the kubelet reads it: the end of its termination log, else, with
    /// FallbackToLogsOnError after a failure, the end of its log.
    fn termination_message(&self, c: usize, code: i32) -> Option<String> {
        let spec = self.pod.container(c);
        let mut words = (self.kernel)
            .termination_log(&spec.name, MAX_TERMINATION_LOG)
            .unwrap_or_default();
        if words.is_empty() && spec.termination_message.fallback_to_logs && code != 0 {
            words = self.slots[c]
                .output
                .tail(FALLBACK_LOG_LINES, MAX_FALLBACK_LOG);
        }
        (!words.is_empty()).then(|| String::from_utf8_lossy(&words).into_owned())
    }

    /// Process `pid` exited: a container's main process, or an action's.
    fn exited(&mut self, pid: i32, mut exit: Exit) {
        let main_of = |s: &Slot| s.main.as_ref().is_some_and(|m| m.child.pid == pid);
        if let Some(c) = self.slots.iter().position(main_of) {
            // Its last words first, as far as one wake-up goes.
            self.drain(c, None);
            self.sessions.ended(c);
            self.slots[c].input = None;
            if let Some(m) = self.slots[c].main.take() {
                let name = &self.pod.container(c).name;
                exit.oom = self.kernel.oom_kills(name) > m.oom_before;
            }
            exit.message = self.termination_message(c, exit.code);
            self.step(Event::Exited { c, exit });
            return;
        }
        let run_of = |(c, s): (usize, &Slot)| {
            let ri = s.runs.iter().position(|(_, r)| r.pid() == Some(pid))?;
            Some((c, ri))
        };
        if let Some((c, ri)) = self.slots.iter().enumerate().find_map(run_of) {
            let (task, _) = self.slots[c].runs.swap_remove(ri);
            let verdict = Run::exited(exit.code);
            self.step(Event::Done { c, task, verdict });
        }
    }

    /// In the foreground on a terminal, one line per step that matters: the init
    /// containers done, every container started, the pod ready (or no longer).
    fn tell_progress(&mut self, status: &crate::status::PodStatus) {
        let Some(p) = &self.progress else {
            return;
        };
        let condition =
            |kind: &str| (status.conditions.iter()).any(|c| c.kind == kind && c.status == "True");
        let inits = !status.init_container_statuses.is_empty();
        let started = !status.container_statuses.is_empty()
            && status.container_statuses.iter().all(|c| c.started);
        let now = Progress {
            initialized: inits && condition("Initialized"),
            started: p.started || started,
            ready: condition("Ready"),
        };
        let name = &self.pod.spec().name;
        let mut lines = Vec::new();
        if now.initialized && !p.initialized {
            lines.push(format!("launcher: pod {name}: init containers done"));
        }
        if now.started && !p.started {
            let names: Vec<&str> = (status.container_statuses.iter())
                .map(|c| c.name.as_str())
                .collect();
            lines.push(format!(
                "launcher: pod {name}: started {}",
                names.join(", ")
            ));
        }
        if now.ready != p.ready && !self.stop_asked {
            match now.ready {
                true => lines.push(format!("launcher: pod {name}: ready")),
                false => lines.push(format!("launcher: pod {name}: not ready")),
            }
        }
        self.progress = Some(now);
        for line in lines {
            self.say(Stream::Stderr, format!("{line}\n").as_bytes());
        }
    }

    /// A line for the terminal, in the foreground.
    fn say(&mut self, stream: Stream, text: &[u8]) {
        let Some(t) = &mut self.terminal else {
            return;
        };
        if t.say(stream, text) && !self.stop_asked {
            // Nobody reads the pod's output any more (`up | head -1`): stop it, as ^C.
            self.stop();
        }
    }

    /// Every container has stopped: the last output, then the pod ends. The state
    /// stays for `status` unless a stop was asked for or the pod ran in the
    /// foreground.
    fn finish(mut self) -> Outcome {
        crate::timings::mark("containers stopped");
        self.publisher.stopping();
        let fg = self.terminal.is_some();
        for ci in 0..self.slots.len() {
            for (stream, line) in self.slots[ci].output.finish(fg) {
                self.say(stream, &line);
            }
        }
        if let Some(t) = &mut self.terminal {
            t.drain(Duration::from_secs(1));
        }
        self.sessions
            .close(&self.attach_socket, self.publisher.events());
        crate::timings::mark("last output, status");
        let keep = match fg || self.stop_asked {
            true => Keep::Nothing,
            false => Keep::Files,
        };
        if let Err(e) = self.kernel.end(keep) {
            // Detached, nobody reads this: `down` tries again, and says so.
            let _ = writeln!(std::io::stderr(), "launcher: pod teardown: {e:#}");
        }
        crate::timings::mark("teardown");
        if self.terminal.is_some() {
            crate::timings::report("stop");
        } else if self.stop_timings {
            let _ = std::fs::write(&self.stop_timings_file, crate::timings::encode());
        }
        let (phase, exit_code) = self.pod.outcome();
        Outcome {
            phase,
            exit_code,
            stopped: self.pod.stop_asked(),
        }
    }
}

/// Container `c`'s standard streams: a terminal's for all three with `tty`, else
/// pipes, stdin one only with `stdin`. With the ends read here (stdout, stderr)
/// and the stdin kept here.
#[allow(clippy::type_complexity)]
fn stdio(
    kernel: &mut impl Kernel,
    c: &crate::spec::ContainerSpec,
) -> Result<
    (
        crate::process::Stdio,
        std::os::fd::OwnedFd,
        Option<std::os::fd::OwnedFd>,
        Option<attach::Input>,
    ),
    String,
> {
    use crate::process::Stdio;
    if c.tty {
        let (master, peer) =
            (kernel.terminal()).map_err(|e| format!("open a terminal in the pod: {e}"))?;
        let read = master.try_clone().map_err(|e| format!("dup: {e}"))?;
        let input = c.stdin.then(|| attach::Input::new(master, c));
        return Ok((Stdio::Terminal(peer), read, None, input));
    }
    let pipe = || crate::sys::pipe().map_err(|e| format!("pipe: {e}"));
    let ((out_r, out_w), (err_r, err_w)) = (pipe()?, pipe()?);
    let (stdin, input) = match c.stdin {
        false => (None, None),
        true => {
            let (r, w) = pipe()?;
            nix::fcntl::fcntl(
                &w,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            )
            .map_err(|e| format!("fcntl: {e}"))?;
            (Some(r), Some(attach::Input::new(w, c)))
        }
    };
    let stdio = Stdio::Pipes {
        stdin,
        stdout: out_w,
        stderr: err_w,
    };
    Ok((stdio, out_r, Some(err_r), input))
}

/// What of a foreground pod's progress was told on the terminal.
#[derive(Default, Clone, Copy)]
struct Progress {
    initialized: bool,
    started: bool,
    ready: bool,
}
