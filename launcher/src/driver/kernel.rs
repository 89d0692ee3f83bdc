//! What the driver asks of the kernel, as one small interface: signals and exits to
//! wait for, processes to start in the pod and to signal, cgroups to kill and read,
//! and the pod's end. [`Host`] makes the system calls; the driver's unit tests put a
//! fake in its place, so the wiring (an exit becomes an event, an effect becomes a
//! call) is tested without root.

use crate::cgroup::{memory, PodCgroup};
use crate::layer::{Layer, Root};
use crate::layout::PodPaths;
use crate::machine::Exit;
use crate::namespaces::Pause;
use crate::process::{self, Plan, Stdio, View};
use crate::sandbox::{self, Keep, Remains};
use crate::spec::{ContainerSpec, Resolved};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

/// A process the driver started: a container's main process, or an exec action.
pub struct Child {
    pub pid: i32,
    pub pidfd: OwnedFd,
}

/// Why a container's main process did not start.
#[derive(Debug, PartialEq)]
pub enum NotStarted {
    /// It cannot run: the exit code and message its status gets.
    CannotRun { code: i32, message: String },
    /// The pod's PID namespace is going away: nothing starts in it.
    PodDying,
}

pub trait Kernel {
    /// Turns readable when a signal waits (SIGCHLD, or a stop: TERM, INT, HUP).
    fn signal_fd(&self) -> BorrowedFd<'_>;
    /// The signals that arrived, by number.
    fn signals(&mut self) -> Vec<i32>;
    /// Every child that has exited, reaped: (pid, how).
    fn reap(&mut self) -> Vec<(i32, Exit)>;
    /// Starts container `c`'s main process of `pod`, with these standard streams.
    fn spawn(
        &mut self,
        pod: Resolved,
        c: &ContainerSpec,
        stdio: Stdio,
    ) -> Result<Child, NotStarted>;
    /// Sets container `c`'s main process up ahead of its start, held before its
    /// program until [`Kernel::start_prepared`]: the setups of a pod's next containers
    /// overlap the start of the one before. False where it is not done (`spawn` then
    /// does it all when the time comes).
    fn prepare(&mut self, _pod: Resolved, _c: &ContainerSpec, _stdio: Stdio) -> bool {
        false
    }
    /// Starts container `c`'s prepared main process, if there is one.
    fn start_prepared(&mut self, _c: &ContainerSpec) -> Option<Result<Child, NotStarted>> {
        None
    }
    /// Ends the prepared processes that will not be started.
    fn forget_prepared(&mut self) {}
    /// A pseudo-terminal in the pod's devpts for a `tty` container: its multiplexer
    /// end (non-blocking), and its terminal end.
    fn terminal(&mut self) -> std::io::Result<(OwnedFd, OwnedFd)>;
    /// Starts `argv` in container `c` (a probe's or hook's exec), in the mount
    /// namespace of its main process `main`, if it runs.
    fn exec(
        &mut self,
        pod: Resolved,
        c: &ContainerSpec,
        main: Option<BorrowedFd>,
        argv: &[String],
    ) -> Result<Child, String>;
    fn signal(&mut self, pidfd: &OwnedFd, signal: i32);
    /// SIGKILL to everything in container `name`'s cgroup leaf.
    fn kill_container(&mut self, name: &str);
    /// SIGKILL to everything in the pod; false if the pod has no cgroup to do it by.
    fn kill_pod(&mut self) -> bool;
    /// OOM kills counted in container `name`'s leaf so far.
    fn oom_kills(&self, name: &str) -> u64;
    /// pause, PID 1 of the pod.
    fn pause_pid(&self) -> i32;
    /// Has pause exited, or begun to?
    fn pause_exiting(&self) -> bool;
    /// Bytes used under `dir` (a disk emptyDir).
    fn disk_usage(&self, dir: &Path) -> u64;
    /// Bytes container `name` has written to its writable layer, if it has one.
    fn layer_usage(&self, name: &str) -> Option<u64>;
    /// The end of what container `name`'s last instance wrote to its termination log
    /// (at most `max` bytes), if it had one.
    fn termination_log(&self, name: &str, max: u64) -> Option<Vec<u8>>;
    /// Every container has stopped: the pod ends (pause, cgroups, network and,
    /// unless `keep`, its files).
    fn end(&mut self, keep: Keep) -> anyhow::Result<()>;
}

/// The signals that ask the supervisor to stop the pod (down, ^C, a hangup).
const STOPS: [Signal; 3] = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP];

/// The signals the supervisor takes through its signalfd (the stops and SIGCHLD);
/// block them before any child exists so none is lost.
pub fn block_signals() -> nix::Result<SigSet> {
    let mut set = SigSet::empty();
    for s in STOPS.into_iter().chain([Signal::SIGCHLD]) {
        set.add(s);
    }
    set.thread_block()?;
    Ok(set)
}

/// A signalfd of the stop signals alone, blocked already by [`block_signals`]:
/// readable once a stop is asked for, whatever else is pending.
pub fn stop_signals() -> nix::Result<SignalFd> {
    let mut set = SigSet::empty();
    for s in STOPS {
        set.add(s);
    }
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
}

/// The kernel itself, for a pod whose sandbox stands.
pub struct Host {
    signals: SignalFd,
    pause: Pause,
    cgroup: Option<PodCgroup>,
    paths: PodPaths,
    /// The pod's CNI network, DEL'ed at the end, and the host's network namespace to
    /// go back to for it (the supervisor is in the pod's).
    network: Option<crate::network::Attachment>,
    host_netns: Option<File>,
    /// The pod's mounts on its root, read once from pause's mount table.
    pod_mounts: Option<std::rc::Rc<[crate::layer::HostMount]>>,
    /// The pod's hosts, hostname and resolv.conf, read once from its state directory.
    etc: Option<std::rc::Rc<[crate::layer::EtcFile]>>,
    /// Each container's writable layer (its instance's), by name.
    layers: std::collections::HashMap<String, Layer>,
    /// Main processes set up ahead of their start, by container name.
    prepared: Vec<(String, process::Pending)>,
}

impl Host {
    pub fn new(
        signals: &SigSet,
        pause: Pause,
        cgroup: Option<PodCgroup>,
        paths: PodPaths,
        network: Option<crate::network::Attachment>,
        host_netns: Option<File>,
    ) -> anyhow::Result<Host> {
        use anyhow::Context;
        let signals = SignalFd::with_flags(signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .context("failed to create a signalfd")?;
        Ok(Host {
            signals,
            pause,
            cgroup,
            paths,
            network,
            host_netns,
            pod_mounts: None,
            etc: None,
            layers: Default::default(),
            prepared: Vec::new(),
        })
    }

    /// A new writable layer for container `c`, with what its main process needs to
    /// stand on it; None for a privileged pod's, which has the host's file systems.
    fn root(&mut self, pod: &Resolved, c: &ContainerSpec) -> Result<Option<Root>, String> {
        if pod.spec.privileged {
            return Ok(None);
        }
        let host = match &self.pod_mounts {
            Some(m) => m.clone(),
            None => {
                let path = format!("/proc/{}/mountinfo", self.pause.pid);
                let text = crate::procfs::read(&path)
                    .map_err(|e| format!("read the pod's mounts ({path}): {e}"))?;
                let mounts: std::rc::Rc<[_]> =
                    crate::layer::host_mounts(&crate::procfs::parse_mountinfo(&text)).into();
                self.pod_mounts.insert(mounts).clone()
            }
        };
        let etc = match &self.etc {
            Some(files) => files.clone(),
            None => {
                let files: std::rc::Rc<[_]> = crate::names::read(&self.paths.state)
                    .map_err(|e| format!("read the pod's /etc files: {e}"))?
                    .into();
                self.etc.insert(files).clone()
            }
        };
        let size = crate::layer::size(pod.spec, c, pod.facts.capacity_memory);
        let layer = Layer::new(size, &etc)
            .map_err(|e| format!("make the container's writable layer: {e}"))?;
        if let Ok(fd) = layer.fd.try_clone() {
            self.layers.insert(c.name.clone(), Layer { fd });
        }
        Ok(Some(Root {
            layer: layer.fd,
            staging: self.paths.roots.state.clone(),
            host,
        }))
    }

    fn leaf(&self, name: &str) -> Option<std::path::PathBuf> {
        self.cgroup.as_ref().map(|cg| cg.leaf(name))
    }
}

impl Host {
    /// Container `c`'s main process planned (volumes, layer, cgroup leaf, the plan
    /// itself) and handed to `start` (spawn or prepare).
    fn main_plan<T>(
        &mut self,
        pod: Resolved,
        c: &ContainerSpec,
        stdio: Stdio,
        start: impl FnOnce(Plan<'_>) -> Result<T, process::SpawnError>,
    ) -> Result<T, NotStarted> {
        // A container whose setup failed before its program, as the kubelet's
        // StartError: 128.
        let cannot = |message: String| NotStarted::CannotRun { code: 128, message };
        let argv = pod.command_line(c);
        let env = pod.environment(c);
        let mut volumes = match pod.spec.privileged {
            // The pod's /etc files first: a volume mounted over one of them wins.
            true => crate::names::privileged_mounts(&self.paths.state)
                .map_err(|e| cannot(format!("prepare the pod's /etc files: {e}")))?,
            false => Vec::new(),
        };
        volumes.extend(
            crate::volumes::prepare(pod.spec, c, &self.paths, &env)
                .map_err(|e| cannot(e.to_string()))?,
        );
        crate::timings::mark("    volumes");
        let root = self.root(&pod, c).map_err(cannot)?;
        crate::timings::mark("    layer");
        let leaf = self.leaf(&c.name);
        let view = View::Own(volumes, root);
        let plan = Plan::new(
            pod,
            c,
            &argv,
            leaf.as_deref(),
            self.pause.pidfd.as_fd(),
            stdio,
            view,
        );
        crate::timings::mark("    plan (filter, user, environment)");
        plan.and_then(start).map_err(spawn_error)
    }
}

/// A plan or a clone that failed, as the container's start error.
fn spawn_error(e: process::SpawnError) -> NotStarted {
    match e {
        e if e.pod_is_dying() => NotStarted::PodDying,
        e => NotStarted::CannotRun {
            code: 128,
            message: format!("{:#}", anyhow::Error::from(e)),
        },
    }
}

/// A started child, or the error of the step it failed at (reaped here: its exit is
/// this error).
fn started_child(s: process::Started) -> Result<Child, NotStarted> {
    match s.failed {
        None => Ok(Child {
            pid: s.pid,
            pidfd: s.pidfd,
        }),
        Some(e) => {
            crate::sys::wait_pidfd(&s.pidfd);
            // A command that cannot run exits as a shell's would.
            let code = match e.step {
                process::Step::Exec => e.exit_code(),
                _ => 128,
            };
            let message = e.to_string();
            Err(NotStarted::CannotRun { code, message })
        }
    }
}

impl Kernel for Host {
    fn signal_fd(&self) -> BorrowedFd<'_> {
        self.signals.as_fd()
    }

    fn signals(&mut self) -> Vec<i32> {
        let mut got = Vec::new();
        while let Ok(Some(info)) = self.signals.read_signal() {
            got.push(info.ssi_signo as i32);
        }
        got
    }

    /// SIGCHLDs coalesce: waitpid(-1, WNOHANG) until nothing is left.
    fn reap(&mut self) -> Vec<(i32, Exit)> {
        let mut exits = Vec::new();
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
                message: None,
            };
            exits.push((pid, exit));
        }
        exits
    }

    fn terminal(&mut self) -> std::io::Result<(OwnedFd, OwnedFd)> {
        let root = File::open(format!("/proc/{}/root", self.pause.pid))?;
        let master = crate::sys::open_ptmx_in(&root)?;
        let peer = crate::sys::pty_peer(&master)?;
        // A terminal's size until an attach gives its own: the classic 80x24.
        crate::attach::resize(master.as_fd(), 24, 80);
        Ok((master, peer))
    }

    fn spawn(
        &mut self,
        pod: Resolved,
        c: &ContainerSpec,
        stdio: Stdio,
    ) -> Result<Child, NotStarted> {
        let started = self.main_plan(pod, c, stdio, process::spawn)?;
        started_child(started)
    }

    fn prepare(&mut self, pod: Resolved, c: &ContainerSpec, stdio: Stdio) -> bool {
        match self.main_plan(pod, c, stdio, process::prepare) {
            Ok(pending) => {
                self.prepared.push((c.name.clone(), pending));
                true
            }
            // Not prepared: its start says why, in its turn.
            Err(_) => false,
        }
    }

    fn start_prepared(&mut self, c: &ContainerSpec) -> Option<Result<Child, NotStarted>> {
        let i = self.prepared.iter().position(|(name, _)| *name == c.name)?;
        let (_, pending) = self.prepared.swap_remove(i);
        Some(pending.go().map_err(spawn_error).and_then(started_child))
    }

    fn forget_prepared(&mut self) {
        self.prepared.clear();
    }

    /// An exec runs in the container (its namespaces, cgroup, user) with /dev/null
    /// for stdio.
    fn exec(
        &mut self,
        pod: Resolved,
        c: &ContainerSpec,
        main: Option<BorrowedFd>,
        argv: &[String],
    ) -> Result<Child, String> {
        // As in a runtime, there is nothing to exec in without the container's process
        // (the pod's own view has the host's file system, writable).
        let view = match main {
            Some(fd) => View::Join(fd),
            None => return Err(format!("container {:?} is not running", c.name)),
        };
        let leaf = self.leaf(&c.name);
        let pause = self.pause.pidfd.as_fd();
        let plan = Plan::new(pod, c, argv, leaf.as_deref(), pause, Stdio::Null, view);
        let started = plan
            .and_then(process::spawn)
            .map_err(|e| format!("{:#}", anyhow::Error::from(e)))?;
        if let Some(e) = started.failed {
            let _ = waitpid(Pid::from_raw(started.pid), None);
            return Err(e.to_string());
        }
        Ok(Child {
            pid: started.pid,
            pidfd: started.pidfd,
        })
    }

    fn signal(&mut self, pidfd: &OwnedFd, signal: i32) {
        let _ = crate::sys::pidfd_send_signal(pidfd, signal);
    }

    fn kill_container(&mut self, name: &str) {
        if let Some(cg) = &self.cgroup {
            cg.kill_leaf(name);
        }
    }

    fn kill_pod(&mut self) -> bool {
        self.cgroup.as_ref().is_some_and(|cg| cg.kill().is_ok())
    }

    fn oom_kills(&self, name: &str) -> u64 {
        self.leaf(name).as_deref().map_or(0, memory::oom_kills)
    }

    fn pause_pid(&self) -> i32 {
        self.pause.pid
    }

    /// An exiting init of a PID namespace waits in the kernel for every process in
    /// the namespace to be reaped (pid_namespaces(7)); it is PF_EXITING then.
    fn pause_exiting(&self) -> bool {
        let mut fds = [PollFd::new(self.pause.pidfd.as_fd(), PollFlags::POLLIN)];
        let exited = nix::poll::poll(&mut fds, PollTimeout::ZERO).is_ok_and(|n| n > 0);
        exited
            || crate::procfs::stat(self.pause.pid)
                .is_some_and(|st| st.flags & crate::procfs::Stat::PF_EXITING != 0)
    }

    fn disk_usage(&self, dir: &Path) -> u64 {
        crate::volumes::disk_usage(dir)
    }

    fn layer_usage(&self, name: &str) -> Option<u64> {
        self.layers.get(name).map(Layer::used)
    }

    fn termination_log(&self, name: &str, max: u64) -> Option<Vec<u8>> {
        self.layers.get(name)?.termination_log(max).ok()
    }

    fn end(&mut self, keep: Keep) -> anyhow::Result<()> {
        // pause, PID 1 of the pod, exits only once every process of the pod is
        // reaped; all of them are children of this process. Without a cgroup,
        // pause's end is what takes the rest of the pod's PID namespace with it.
        if !self.kill_pod() {
            let _ = crate::sys::pidfd_send_signal(&self.pause.pidfd, libc::SIGKILL);
        }
        loop {
            match waitpid(Pid::from_raw(-1), None) {
                Ok(s) if s.pid() == Some(Pid::from_raw(self.pause.pid)) => break,
                Err(nix::errno::Errno::EINTR) | Ok(_) => {}
                Err(_) => break,
            }
        }
        crate::timings::mark("  pause gone, the pod's processes reaped");
        // The plugins run in the host's namespaces, not in the pod's, whose PID
        // namespace can hold no new process now that pause is gone.
        if let Some(netns) = &self.host_netns {
            let _ = crate::sys::leave_pod(netns);
        }
        // pause is reaped: the cgroups and the network are left to go, and with them
        // the pod's files unless `status` and `logs` may still want them.
        let remains = Remains::of_pod(
            self.paths.clone(),
            self.cgroup.clone(),
            self.network.as_ref(),
        );
        sandbox::teardown(remains, Duration::ZERO, keep)
    }
}
