//! Starting a process inside a pod: a container, an exec probe or hook, or a command
//! of `launcher exec`, all from one [`Plan`].
//!
//! The caller has already joined the pod's PID namespace for its children
//! (setns(pidfd, CLONE_NEWPID) changes only where children are born). Then:
//! 1. clone3 with CLONE_INTO_CGROUP: the child is born in the pod's PID namespace and
//!    in the container's cgroup leaf, a direct child of the caller (so the caller gets
//!    its exit status), and never runs outside its cgroup;
//! 2. the child joins the rest of pause's namespaces with one setns(pidfd, NET|IPC|
//!    UTS|MNT|CGROUP); a container's main process then makes its own mount namespace
//!    (over its writable layer, its volumes), any other joins the main process's; it wires fds
//!    0-2, starts a new session, resets signals, marks every other fd close-on-exec,
//!    takes its user and groups, restricts capabilities and sets no_new_privs;
//! 3. execve over each candidate path; if all fail, the errno goes back through a
//!    close-on-exec pipe and the child exits 127 (not found) or 126 (not executable).
//!
//! Everything the child needs is allocated before clone3: between clone3 and execve
//! there is no allocation, no lock and no logging.

use crate::mounts::Mounts;
use crate::spec::{ContainerSpec, Resolved};
use crate::sys::{self, Forked};
use crate::users::Ids;
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("failed to start a process in the pod (clone3 into {cgroup})")]
    Clone { cgroup: String, source: io::Error },
    #[error("{0:?} contains a NUL byte")]
    Nul(String),
    #[error("failed to open cgroup {path}")]
    Cgroup { path: String, source: io::Error },
    #[error("failed to set up the process's standard streams")]
    Stdio(#[source] io::Error),
    #[error("failed to set up the process")]
    Pipe(#[source] io::Error),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error("failed to enter the container's PID namespace")]
    PidNamespace(#[source] io::Error),
}

impl SpawnError {
    /// The pod's PID namespace is going away (its init, pause, is exiting): the
    /// kernel refuses new processes in it with ENOMEM (pid_namespaces(7)).
    pub fn pod_is_dying(&self) -> bool {
        matches!(self, SpawnError::Clone { source, .. } if source.raw_os_error() == Some(libc::ENOMEM))
    }
}

/// Default PATH of a container, as container runtimes set it.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a process's fds 0, 1 and 2 are.
pub enum Stdio {
    /// /dev/null for all three (probes, hooks).
    Null,
    /// The launcher's own (`launcher exec`).
    Inherit,
    /// A container's: its input from `stdin` (a pipe the supervisor writes, for
    /// `attach`) or /dev/null, its output to these two (read by the supervisor).
    Pipes {
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    /// This end of a pseudo-terminal for all three, and as the controlling terminal
    /// of the process's session (`launcher exec -t`).
    Terminal(OwnedFd),
    /// /dev/null in, the launcher's stdout and stderr out: `launcher exec` without
    /// `-i`, whose command gets no input, as kubectl exec's does not.
    NullIn,
}

/// Which mount namespace a process of a container is in.
pub enum View<'a> {
    /// The container's main process: one of its own, made from the pod's, with the
    /// container's volumes, over its writable layer unless the pod is privileged.
    Own(Vec<crate::volumes::Prepared>, Option<crate::layer::Root>),
    /// A process beside it (exec, probe, hook): the main process's, by its pidfd.
    Join(BorrowedFd<'a>),
}

/// Everything a process of a container gets, decided and allocated before clone3:
/// the namespaces to join (pause's), its cgroup leaf, user and groups, capabilities,
/// environment, working directory and stdio. The child only carries the steps out.
pub struct Plan<'a> {
    argv: Vec<CString>,
    env: Vec<CString>,
    /// Where to look for argv[0], in order.
    paths: Vec<CString>,
    cwd: CString,
    /// The container's cgroup leaf (none in a pod without a cgroup).
    cgroup: Option<File>,
    cgroup_name: String,
    /// pidfd of pause: whose namespaces to join.
    pause: BorrowedFd<'a>,
    /// pidfd of the process whose PID namespace the process is born in (pause's, or
    /// its container's main process's).
    pid_ns: BorrowedFd<'a>,
    /// For a container's main process with a PID namespace of its own: this process's
    /// own (the host's), under which the kernel makes the new one (copy_pid_ns(): a
    /// sibling of pause's, as containerd's are).
    new_pid_ns: Option<OwnedFd>,
    stdio: [OwnedFd; 3],
    /// fd 0 is a terminal to make the session's controlling one.
    terminal: bool,
    /// The capability set to keep; None keeps every one (privileged).
    capabilities: Option<u64>,
    last_cap: u32,
    /// uid, gid and supplementary groups.
    ids: Ids,
    /// The container's own mounts, on top of the pod's (a main process), or whose
    /// mount namespace to join.
    mounts: Option<Mounts>,
    join_mounts: Option<BorrowedFd<'a>>,
    /// The volumes' trees and the layer the mounts attach, open until the child has
    /// them.
    _volumes: Vec<crate::volumes::Prepared>,
    _root: Option<crate::layer::Root>,
    no_new_privs: bool,
    /// The container's oom_score_adj (`qos`), as written to /proc/self/oom_score_adj.
    oom_score_adj: CString,
    /// The syscall filters, installed last (but for a prepared child's wait at its
    /// gate, see `filter_at_gate`).
    seccomp: Vec<crate::seccomp::Program>,
    /// The filters allow what a prepared child does after them until its exec (read
    /// its gate, exit): RuntimeDefault's deny-list does, so a prepared child installs
    /// them before its wait and only execve is left when it is let go; a Localhost
    /// profile, whose allow-list may not, is installed after the wait.
    filter_at_gate: bool,
}

impl<'a> Plan<'a> {
    /// `argv` as a process of container `c` of `pod`, in its cgroup `leaf` if the pod
    /// has one.
    pub fn new(
        resolved: Resolved,
        c: &ContainerSpec,
        argv: &[String],
        leaf: Option<&Path>,
        pause: BorrowedFd<'a>,
        stdio: Stdio,
        view: View<'a>,
    ) -> Result<Plan<'a>, SpawnError> {
        let pod = resolved.spec;
        let argv_c: Vec<CString> = argv.iter().map(|a| cstring(a)).collect::<Result<_, _>>()?;
        let mut env: Vec<CString> = vec![
            cstring(&format!("PATH={DEFAULT_PATH}"))?,
            cstring(&format!("HOSTNAME={}", pod.hostname))?,
        ];
        for (k, v) in resolved.environment(c) {
            env.push(cstring(&format!("{k}={v}"))?);
        }
        let program = argv.first().map(String::as_str).unwrap_or_default();
        let paths: Vec<CString> = candidates(program, DEFAULT_PATH)
            .iter()
            .map(|p| cstring(p))
            .collect::<Result<_, _>>()?;
        let cgroup_name = leaf.map_or("the pod".into(), |l| l.display().to_string());
        let cgroup = leaf
            .map(File::open)
            .transpose()
            .map_err(|source| SpawnError::Cgroup {
                path: cgroup_name.clone(),
                source,
            })?;
        let terminal = matches!(stdio, Stdio::Terminal(_));
        let stdio = match stdio {
            Stdio::Terminal(tty) => [tty.try_clone(), tty.try_clone(), Ok(tty)],
            Stdio::NullIn => [devnull(), inherited(1), inherited(2)],
            Stdio::Null => {
                let null = devnull().map_err(SpawnError::Stdio)?;
                [null.try_clone(), null.try_clone(), Ok(null)]
            }
            Stdio::Inherit => [0, 1, 2].map(inherited),
            Stdio::Pipes {
                stdin,
                stdout,
                stderr,
            } => [stdin.map_or_else(devnull, Ok), Ok(stdout), Ok(stderr)],
        };
        let [a, b, c2] = stdio;
        let stdio = [
            a.map_err(SpawnError::Stdio)?,
            b.map_err(SpawnError::Stdio)?,
            c2.map_err(SpawnError::Stdio)?,
        ];
        let own_pid_ns = pod.own_pid_namespaces();
        let (mounts, join_mounts, volumes, root) = match view {
            View::Own(volumes, root) => (
                Some(Mounts::container(
                    root.as_ref(),
                    c.read_only_root,
                    &volumes,
                    c.termination_message.path(),
                    own_pid_ns,
                )),
                None,
                volumes,
                root,
            ),
            View::Join(fd) => (None, Some(fd), Vec::new(), None),
        };
        let pid_ns = match (own_pid_ns, join_mounts) {
            (true, Some(main)) => main,
            _ => pause,
        };
        Ok(Plan {
            argv: argv_c,
            env,
            paths,
            cwd: cstring(c.working_dir.as_deref().unwrap_or("/"))?,
            cgroup,
            cgroup_name,
            pause,
            pid_ns,
            new_pid_ns: match own_pid_ns && join_mounts.is_none() {
                true => Some(
                    File::open("/proc/self/ns/pid")
                        .map(OwnedFd::from)
                        .map_err(SpawnError::PidNamespace)?,
                ),
                false => None,
            },
            stdio,
            terminal,
            capabilities: pod.capabilities_of(c),
            last_cap: sys::last_cap(),
            ids: Ids::resolve(c.user, c.group, &pod.extra_groups(), pod.strict_groups),
            mounts,
            join_mounts,
            _volumes: volumes,
            _root: root,
            no_new_privs: !pod.privileged && !c.privilege_escalation,
            oom_score_adj: cstring(
                &crate::qos::oom_score_adj(pod, c, resolved.facts.capacity_memory).to_string(),
            )?,
            seccomp: crate::seccomp::filters(c.seccomp.as_ref(), pod.capabilities_of(c))?,
            filter_at_gate: !matches!(c.seccomp, Some(crate::spec::Seccomp::Localhost { .. })),
        })
    }

    /// Gives the process `env` instead of the container's declared environment.
    pub fn set_environment(&mut self, env: Vec<CString>) {
        self.env = env;
    }

    /// Sets `name` to `value` unless the environment has it.
    pub fn default_env(&mut self, name: &str, value: &str) -> Result<(), SpawnError> {
        let prefix = format!("{name}=");
        if !self
            .env
            .iter()
            .any(|e| e.as_bytes().starts_with(prefix.as_bytes()))
        {
            self.env.push(cstring(&format!("{prefix}{value}"))?);
        }
        Ok(())
    }

    pub fn program(&self) -> String {
        self.argv
            .first()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// The environment of process `pid`, None if it cannot be read. A process in the
/// middle of execve(2) shows an empty one (its new memory has no environment yet, nor
/// a command line), and a read that straddles the execve gets a part of the old one:
/// read until two reads in a row agree, every entry a `NAME=value`, for up to a
/// second.
pub fn environment_of(pid: i32) -> Option<Vec<CString>> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    let read = || std::fs::read(format!("/proc/{pid}/environ")).ok();
    let mut last = read()?;
    loop {
        std::thread::sleep(std::time::Duration::from_millis(2));
        let now = read()?;
        let whole = !now.is_empty()
            && now.ends_with(&[0])
            && now
                .split(|&b| b == 0)
                .filter(|v| !v.is_empty())
                .all(|v| v.contains(&b'='));
        if whole && now == last {
            return Some(
                now.split(|&b| b == 0)
                    .filter(|v| !v.is_empty())
                    .filter_map(|v| CString::new(v).ok())
                    .collect(),
            );
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        last = now;
    }
}

/// A copy of this process's fd 0, 1 or 2.
fn inherited(fd: i32) -> io::Result<OwnedFd> {
    // SAFETY: fds 0-2 are this process's own and stay open while borrowed.
    unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()
}

fn devnull() -> io::Result<OwnedFd> {
    File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map(OwnedFd::from)
}

pub struct Started {
    pub pid: i32,
    pub pidfd: OwnedFd,
    /// Set when a step of the child's setup, or its execve, failed: the child has
    /// exited (127, or 126).
    pub failed: Option<ChildError>,
}

/// A step of a child's setup, as it reports the one that failed (with the errno)
/// through its close-on-exec pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Namespaces,
    MountNamespace,
    Stdio,
    /// Step `i` of the container's mounts (`Mounts::describe`).
    Mount(usize),
    WorkingDir,
    Terminal,
    CloseFds,
    User,
    Capabilities,
    NoNewPrivs,
    Seccomp,
    OomScoreAdj,
    Exec,
}

impl Step {
    const MOUNTS: u32 = 100;

    fn code(self) -> u32 {
        match self {
            Step::Namespaces => 1,
            Step::MountNamespace => 2,
            Step::Stdio => 3,
            Step::WorkingDir => 4,
            Step::Terminal => 5,
            Step::CloseFds => 6,
            Step::User => 7,
            Step::Capabilities => 8,
            Step::NoNewPrivs => 9,
            Step::Exec => 10,
            Step::Seccomp => 11,
            Step::OomScoreAdj => 12,
            Step::Mount(i) => Step::MOUNTS + i as u32,
        }
    }

    fn from_code(code: u32) -> Step {
        match code {
            1 => Step::Namespaces,
            2 => Step::MountNamespace,
            3 => Step::Stdio,
            4 => Step::WorkingDir,
            5 => Step::Terminal,
            6 => Step::CloseFds,
            7 => Step::User,
            8 => Step::Capabilities,
            9 => Step::NoNewPrivs,
            10 => Step::Exec,
            11 => Step::Seccomp,
            12 => Step::OomScoreAdj,
            i => Step::Mount(i.saturating_sub(Step::MOUNTS) as usize),
        }
    }
}

/// Why a child did not become the process it was planned as, worded as runc words
/// it: the step, what it was about, and the errno.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ChildError {
    pub step: Step,
    pub errno: io::Error,
    message: String,
}

/// What a child's failure is told with: the plan's words, kept past the plan (a
/// prepared child fails, if it does, after its plan is gone).
struct Explainer {
    program: String,
    cwd: String,
    /// Each mount step, described.
    mounts: Vec<String>,
    uid: u32,
    gid: u32,
    oom_score_adj: String,
}

impl Explainer {
    fn of(plan: &Plan<'_>) -> Explainer {
        let mounts = plan
            .mounts
            .as_ref()
            .map_or_else(Vec::new, |m| (0..m.len()).map(|i| m.describe(i)).collect());
        Explainer {
            program: plan.program(),
            cwd: plan.cwd.to_string_lossy().into_owned(),
            mounts,
            uid: plan.ids.uid,
            gid: plan.ids.gid,
            oom_score_adj: plan.oom_score_adj.to_string_lossy().into_owned(),
        }
    }
}

impl ChildError {
    fn new(plan: &Explainer, step: Step, errno: io::Error) -> ChildError {
        let program = plan.program.clone();
        let why = sys::strerror(&errno);
        let message = match step {
            Step::Exec => exec_error_message(&program, &errno),
            Step::WorkingDir => format!("chdir to workingDir {:?}: {}", plan.cwd, why),
            Step::Mount(i) => {
                let what = (plan.mounts.get(i).cloned()).unwrap_or_else(|| "set up mounts".into());
                format!("{what}: {}", why)
            }
            Step::Namespaces => format!("join the pod's namespaces: {}", why),
            Step::MountNamespace => {
                format!("join the container's mount namespace: {}", why)
            }
            Step::Stdio => format!("set up standard streams: {}", why),
            Step::Terminal => format!("take the terminal: {}", why),
            Step::CloseFds => format!("close inherited files: {}", why),
            Step::User => format!("set user {}:{}: {}", plan.uid, plan.gid, why),
            Step::Capabilities => format!("set capabilities: {}", why),
            Step::NoNewPrivs => format!("set no_new_privs: {why}"),
            Step::Seccomp => format!("install the seccomp filter: {why}"),
            Step::OomScoreAdj => format!("set oom_score_adj {}: {why}", plan.oom_score_adj),
        };
        ChildError {
            step,
            errno,
            message,
        }
    }

    /// The exit status a command that could not run gets: 127 when the program was
    /// not found, 126 for any other failure (as a shell has it).
    pub fn exit_code(&self) -> i32 {
        match self.step {
            Step::Exec => exit_code_for_exec_error(&self.errno),
            _ => 126,
        }
    }
}

fn cstring(s: &str) -> Result<CString, SpawnError> {
    CString::new(s).map_err(|_| SpawnError::Nul(s.to_string()))
}

/// Where to look for argv[0]: itself if it has a slash, else each PATH entry.
pub fn candidates(program: &str, path: &str) -> Vec<String> {
    if program.contains('/') {
        return vec![program.to_string()];
    }
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| format!("{d}/{program}"))
        .collect()
}

/// The message Kubernetes runtimes give when a container's command cannot run.
pub fn exec_error_message(program: &str, err: &io::Error) -> String {
    if err.kind() == io::ErrorKind::NotFound && program.contains('/') {
        format!("exec: {program:?}: stat {program}: no such file or directory")
    } else if err.kind() == io::ErrorKind::NotFound {
        format!("exec: {program:?}: executable file not found in $PATH")
    } else {
        format!("exec: {program:?}: {err}")
    }
}

pub fn exit_code_for_exec_error(err: &io::Error) -> i32 {
    if err.kind() == io::ErrorKind::NotFound {
        127
    } else {
        126
    }
}

/// Starts the process `plan` describes; returns once it has exec'd or failed to.
pub fn spawn(plan: Plan<'_>) -> Result<Started, SpawnError> {
    start(plan, false)?.go()
}

/// Sets the process `plan` describes up, up to its program: it waits there, its
/// namespaces joined, mounts made, user and capabilities set, until [`Pending::go`]
/// lets it install its filter and exec. Dropped, it ends. A pod's next containers are
/// prepared while the one before them starts, so that their setups overlap.
pub fn prepare(plan: Plan<'_>) -> Result<Pending, SpawnError> {
    start(plan, true)
}

/// A child set up and held before its program (see [`prepare`]).
pub struct Pending {
    pid: i32,
    pidfd: Option<OwnedFd>,
    /// Its gate's write end: a byte lets the child go on, EOF ends it.
    gate: Option<OwnedFd>,
    /// The child's report of a failed step; EOF once it has exec'd.
    failure: OwnedFd,
    explain: Explainer,
}

impl Pending {
    /// Lets the child exec; returns once it has, or has failed to (a failure during
    /// its setup shows here, as [`spawn`] would have shown it).
    pub fn go(mut self) -> Result<Started, SpawnError> {
        if let Some(gate) = self.gate.take() {
            // A child that failed before the gate has gone: EPIPE, and its report
            // is in the failure pipe.
            sys::write_all(gate.as_raw_fd(), b"1");
        }
        let failed = sys::read_failure(self.failure.as_raw_fd())
            .map_err(SpawnError::Pipe)?
            .map(|(step, errno)| ChildError::new(&self.explain, Step::from_code(step), errno));
        // Always there: only `go` and `drop`, which consume the Pending, take it.
        let pidfd = self
            .pidfd
            .take()
            .ok_or(SpawnError::Pipe(io::ErrorKind::Other.into()))?;
        Ok(Started {
            pid: self.pid,
            pidfd,
            failed,
        })
    }
}

impl Drop for Pending {
    /// A child never let go: its gate closes (it ends on EOF) and it is killed and
    /// reaped now, by its pidfd (its pid may have been reaped and reused).
    fn drop(&mut self) {
        self.gate.take();
        if let Some(pidfd) = self.pidfd.take() {
            let _ = sys::pidfd_send_signal(&pidfd, libc::SIGKILL);
            sys::wait_pidfd(&pidfd);
        }
    }
}

fn start(plan: Plan<'_>, gated: bool) -> Result<Pending, SpawnError> {
    let mut argv: Vec<*const libc::c_char> = plan.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut env: Vec<*const libc::c_char> = plan.env.iter().map(|e| e.as_ptr()).collect();
    env.push(std::ptr::null());
    let stdio = [0, 1, 2].map(|i| plan.stdio[i].as_raw_fd());
    let (rd, wr) = sys::pipe().map_err(SpawnError::Pipe)?;
    let gate = match gated {
        true => Some(sys::pipe().map_err(SpawnError::Pipe)?),
        false => None,
    };

    // Children are born in the PID namespace set here (setns(2) changes it for the
    // children only), the pod's again once this one is.
    let (born_in, extra) = match &plan.new_pid_ns {
        Some(own) => (own.as_raw_fd(), libc::CLONE_NEWPID),
        None => (plan.pid_ns.as_raw_fd(), 0),
    };
    sys::setns(born_in, libc::CLONE_NEWPID).map_err(SpawnError::PidNamespace)?;
    // SAFETY: the child only makes child-safe calls and ends in execve or _exit.
    let forked = unsafe { sys::clone3(extra, plan.cgroup.as_ref()) };
    // The parent only: the child goes on in its own namespace.
    let parent = !matches!(forked, Ok(Forked::Child));
    if parent && born_in != plan.pause.as_raw_fd() {
        if let Err(e) = sys::setns(plan.pause.as_raw_fd(), libc::CLONE_NEWPID) {
            // Not a process to keep: the next ones would be born in the wrong place.
            if let Ok(Forked::Parent { pid, .. }) = &forked {
                sys::kill_and_reap(*pid);
            }
            return Err(SpawnError::PidNamespace(e));
        }
    }
    let forked = forked.map_err(|source| SpawnError::Clone {
        cgroup: plan.cgroup_name.clone(),
        source,
    })?;
    match forked {
        Forked::Child => {
            let fail = |step: Step, errno: i32| -> ! {
                sys::report_failure(wr.as_raw_fd(), step.code(), errno);
                let code = if step == Step::Exec && errno == libc::ENOENT {
                    127
                } else {
                    126
                };
                sys::exit_child(code)
            };
            let errno_of = |e: io::Error| e.raw_os_error().unwrap_or(libc::EINVAL);
            // The gate's write end is the parent's alone: its close is our EOF.
            if let Some((_, gate_w)) = &gate {
                sys::close(gate_w.as_raw_fd());
            }
            // First: the runtime's /proc shows this process whatever PID namespace it
            // is in (the pod's may not), and the capabilities to lower the score
            // (CAP_SYS_RESOURCE) are there. Where the runtime itself lacks them, the
            // inherited score stays, as under runc.
            match sys::set_oom_score_adj(&plan.oom_score_adj).map_err(errno_of) {
                Ok(()) | Err(libc::EACCES | libc::EPERM) => {}
                Err(errno) => fail(Step::OomScoreAdj, errno),
            }
            if let Err(e) = sys::setns(
                plan.pause.as_raw_fd(),
                libc::CLONE_NEWNS
                    | libc::CLONE_NEWNET
                    | libc::CLONE_NEWIPC
                    | libc::CLONE_NEWUTS
                    | libc::CLONE_NEWCGROUP,
            ) {
                fail(Step::Namespaces, errno_of(e));
            }
            if let Some(main) = plan.join_mounts {
                if let Err(e) = sys::setns(main.as_raw_fd(), libc::CLONE_NEWNS) {
                    fail(Step::MountNamespace, errno_of(e));
                }
            }
            if let Err(e) = sys::place_fds(stdio, 0) {
                fail(Step::Stdio, errno_of(e));
            }
            if let Some(Err((i, e))) = plan.mounts.as_ref().map(Mounts::apply) {
                fail(Step::Mount(i), errno_of(e));
            }
            if let Err(e) = sys::chdir(&plan.cwd) {
                fail(Step::WorkingDir, errno_of(e));
            }
            sys::setsid();
            if plan.terminal {
                if let Err(e) = sys::take_controlling_terminal() {
                    fail(Step::Terminal, errno_of(e));
                }
            }
            sys::reset_signals();
            if let Err(e) = sys::cloexec_from_3() {
                fail(Step::CloseFds, errno_of(e));
            }
            let ids = &plan.ids;
            if let Err(e) = sys::switch_user(ids.uid, ids.gid, &ids.groups) {
                fail(Step::User, errno_of(e));
            }
            if let Some(keep) = plan.capabilities {
                if let Err(e) = sys::restrict_capabilities(keep, plan.last_cap) {
                    fail(Step::Capabilities, errno_of(e));
                }
            }
            if plan.no_new_privs {
                if let Err(e) = sys::no_new_privs() {
                    fail(Step::NoNewPrivs, errno_of(e));
                }
            }
            let filter = || {
                for program in &plan.seccomp {
                    if let Err(e) = sys::install_filter(program) {
                        fail(Step::Seccomp, errno_of(e));
                    }
                }
            };
            if plan.filter_at_gate {
                filter();
            }
            // Prepared: hold here until the parent lets go (a byte) or gives up (EOF),
            // with nothing of the runtime's open but the gate and the report pipe: a
            // held copy of a pipe or lock would keep it from its end (`up -d` waits
            // for its ready pipe's EOF; `down` for the pod's lock).
            if let Some((gate_r, _)) = &gate {
                let (a, b) = (gate_r.as_raw_fd(), wr.as_raw_fd());
                sys::close_from_3_but([a.min(b), a.max(b)]);
                match sys::read(gate_r.as_raw_fd(), &mut [0u8]) {
                    Ok(1) => {}
                    Ok(_) => sys::exit_child(0),
                    Err(e) => fail(Step::Seccomp, errno_of(e)),
                }
            }
            if !plan.filter_at_gate {
                filter();
            }
            // Like execvp: ENOENT moves on to the next PATH entry; EACCES is kept as
            // the answer unless a later entry succeeds.
            let mut errno = libc::ENOENT;
            for path in &plan.paths {
                let e = sys::execve(path, &argv, &env);
                if e != libc::ENOENT && e != libc::ENOTDIR {
                    errno = e;
                }
            }
            fail(Step::Exec, errno)
        }
        Forked::Parent { pid, pidfd } => {
            drop(wr);
            let explain = Explainer::of(&plan);
            // The child's copies of the stdio fds are its own now.
            drop(plan);
            Ok(Pending {
                pid,
                pidfd: Some(pidfd),
                gate: gate.map(|(_, w)| w),
                failure: rd,
                explain,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_search_order() {
        assert_eq!(candidates("/bin/sh", DEFAULT_PATH), ["/bin/sh"]);
        assert_eq!(candidates("./x", "/a"), ["./x"]);
        assert_eq!(candidates("sh", "/a::/b"), ["/a/sh", "/b/sh"]);
    }

    #[test]
    fn messages_name_the_program() {
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(
            exec_error_message("nope", &e),
            "exec: \"nope\": executable file not found in $PATH"
        );
        assert_eq!(exit_code_for_exec_error(&e), 127);
        assert_eq!(
            exit_code_for_exec_error(&io::Error::from_raw_os_error(libc::EACCES)),
            126
        );
    }
}
