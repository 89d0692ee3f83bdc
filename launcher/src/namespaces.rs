//! A pod's namespaces, held by pause.
//!
//! The pod's network, IPC and UTS namespaces are made ahead ([`make_ahead`]), on a
//! thread of their own, while the supervisor makes the pod's cgroup and device filter: a new
//! network namespace is the costliest step of a pod's start (~1.5 ms here), and the
//! machine has more than one core. The thread sets the pod's hostname in the new UTS
//! namespace and brings `lo` up in the new network namespace (every pod has its own
//! 127.0.0.1), and leaves the three as fds.
//!
//! Then one clone3(2) makes pause: new PID and mount namespaces, the child born in
//! pause's cgroup leaf, joining the pod's cgroup namespace, made beforehand by
//! [`cgroup_namespace_at`] rooted at the pod's cgroup (no process is ever moved
//! between cgroups: a move costs an RCU grace period), and the namespaces made
//! ahead. The child is PID 1 of the new PID namespace from its first instruction;
//! before it execs pause it
//! 1. joins the namespaces made ahead (the network first: the sysctls among the
//!    mounts' steps are its own);
//! 2. makes its mounts private and mounts a /proc of the pod's PID namespace, so `ps`
//!    in the pod shows only the pod (mount_namespaces(7): MS_PRIVATE stops the new
//!    /proc from propagating back to the host);
//! 3. sets up what the pod sees of the machine (`mounts`).
//!
//! A pod that shares the host's network, PID or IPC namespace (`hostNetwork`,
//! `hostPID`, `hostIPC`) gets none of its own of that kind; with the host's PIDs,
//! pause is no PID 1 and reaps as a subreaper.
//!
//! Failures reach the parent through a close-on-exec pipe: EOF means pause is running.

use crate::mounts::Mounts;
use crate::sys::{self, Forked};
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum NsError {
    #[error("failed to create the pod's namespaces (clone3)")]
    Clone(#[source] std::io::Error),
    #[error("pod setup failed: {step}")]
    Setup {
        step: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid path {0:?}")]
    Path(std::path::PathBuf),
}

pub struct Pause {
    pub pid: i32,
    pub pidfd: OwnedFd,
}

/// The steps of pause's child, as it reports the one that failed.
const PROC: u32 = 0;
const STDIO: u32 = 3;
const EXEC: u32 = 4;
const CGROUP_NS: u32 = 5;
/// Step `JOIN + i`: joining the i-th namespace made ahead.
const JOIN: u32 = 50;
/// Step `MOUNTS + i`: step i of the pod's mounts.
const MOUNTS: u32 = 100;

/// The namespaces a pod gets of its own: all of them, but those it shares with the
/// host (`hostNetwork`, `hostPID`, `hostIPC`).
pub fn pod_flags(spec: &crate::spec::PodSpec) -> libc::c_int {
    let mut flags = libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWCGROUP;
    if spec.network != crate::spec::Network::Host {
        flags |= libc::CLONE_NEWNET;
    }
    if !spec.host_pid {
        flags |= libc::CLONE_NEWPID;
    }
    if !spec.host_ipc {
        flags |= libc::CLONE_NEWIPC;
    }
    flags
}

/// The kinds of namespace [`make_ahead`] makes: those a thread may unshare by itself.
const AHEAD: libc::c_int = libc::CLONE_NEWNET | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;

/// The namespaces of `flags` (from [`pod_flags`]) that a thread may make by itself
/// (network, IPC, UTS), made with `hostname` set and `lo` up, as fds for
/// [`start_pause`] to join. Run on a thread of its own, which these namespaces
/// become: the process's other threads keep the host's.
pub fn make_ahead(flags: libc::c_int, hostname: &str) -> Result<Vec<(libc::c_int, File)>, NsError> {
    let setup = |step: &'static str| {
        move |source| NsError::Setup {
            step: step.into(),
            source,
        }
    };
    let host = CString::new(hostname).map_err(|_| NsError::Path(hostname.into()))?;
    let flags = flags & AHEAD;
    sys::unshare(flags).map_err(setup("make the network, IPC and UTS namespaces"))?;
    sys::sethostname(&host).map_err(setup("set the hostname"))?;
    if flags & libc::CLONE_NEWNET != 0 {
        sys::loopback_up().map_err(setup("bring up lo"))?;
    }
    let kinds = [
        (libc::CLONE_NEWNET, "net"),
        (libc::CLONE_NEWIPC, "ipc"),
        (libc::CLONE_NEWUTS, "uts"),
    ];
    let mut fds = Vec::new();
    for (kind, name) in kinds.into_iter().filter(|(k, _)| flags & k != 0) {
        let ns = File::open(format!("/proc/thread-self/ns/{name}"))
            .map_err(setup("open the namespaces made"))?;
        fds.push((kind, ns));
    }
    Ok(fds)
}

/// A cgroup namespace rooted at `dir` (the pod's cgroup), made without moving a
/// process: a child cloned into `dir` with CLONE_NEWCGROUP holds it until its
/// namespace is open here, then exits.
pub fn cgroup_namespace_at(dir: &File) -> Result<OwnedFd, NsError> {
    let setup = |step: &str| {
        let step = step.to_string();
        move |source| NsError::Setup { step, source }
    };
    let (rd, wr) = sys::pipe().map_err(setup("pipe"))?;
    // SAFETY: the child only reads a pipe and exits.
    match unsafe { sys::clone3(libc::CLONE_NEWCGROUP, Some(dir)) }.map_err(NsError::Clone)? {
        Forked::Child => {
            drop(wr);
            let mut byte = [0u8; 1];
            let _ = sys::read(rd.as_raw_fd(), &mut byte);
            sys::exit_child(0)
        }
        Forked::Parent { pid, .. } => {
            drop(rd);
            let ns = File::open(format!("/proc/{pid}/ns/cgroup"));
            drop(wr);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            Ok(ns.map_err(setup("open the pod's cgroup namespace"))?.into())
        }
    }
}

/// Pause's child between its clone and its exec: its PID namespace is there, its
/// other namespaces and its mounts are being made. Its pid and pidfd are in the
/// [`Pause`] [`start_pause`] returns with it; [`Starting::wait`] before anything
/// that needs pause's namespaces joined or its mounts made.
pub struct Starting {
    pid: i32,
    /// The child's report of a failed step; EOF once it has exec'd.
    report: OwnedFd,
    binary: std::path::PathBuf,
    mounts: Mounts,
}

impl Starting {
    /// Waits until pause runs, or its setup failed (the child is reaped then, and
    /// the error names its step).
    pub fn wait(self) -> Result<(), NsError> {
        let failed =
            sys::read_failure(self.report.as_raw_fd()).map_err(|source| NsError::Setup {
                step: "read the child's report".into(),
                source,
            })?;
        let Some((step, source)) = failed else {
            crate::timings::mark("pause running");
            return Ok(());
        };
        // The child exits right after reporting; reap it here.
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None);
        let step = match step {
            PROC => "make mounts private and mount /proc".into(),
            STDIO => "redirect stdio to /dev/null".into(),
            EXEC => format!("exec {}", self.binary.display()),
            CGROUP_NS => "join the pod's cgroup namespace".into(),
            i if (JOIN..MOUNTS).contains(&i) => "join the pod's namespaces".into(),
            i => self.mounts.describe(i.saturating_sub(MOUNTS) as usize),
        };
        Err(NsError::Setup { step, source })
    }
}

/// Starts pause in new namespaces (`flags`, from [`pod_flags`]), those of
/// [`make_ahead`] joined, in the cgroup `cgroup` and the cgroup namespace `cgroup_ns`
/// if given (else a new one). Returns once it is cloned: its child makes its mounts
/// meanwhile, on the other core, while the caller goes on with what does not need
/// them, and waits for it with [`Starting::wait`].
pub fn start_pause(
    pause: &Path,
    joined: &[(libc::c_int, File)],
    cgroup: Option<&File>,
    cgroup_ns: Option<&OwnedFd>,
    mounts: Mounts,
    flags: libc::c_int,
) -> Result<(Pause, Starting), NsError> {
    let mut flags = flags & !AHEAD;
    if cgroup_ns.is_some() {
        flags &= !libc::CLONE_NEWCGROUP;
    }
    let path =
        CString::new(pause.as_os_str().as_bytes()).map_err(|_| NsError::Path(pause.into()))?;
    let name =
        CString::new(OsStr::new("pause").as_bytes()).map_err(|_| NsError::Path(pause.into()))?;
    let argv = [name.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    let devnull = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|source| NsError::Setup {
            step: "open /dev/null".into(),
            source,
        })?;
    let (rd, wr) = sys::pipe().map_err(|source| NsError::Setup {
        step: "pipe".into(),
        source,
    })?;
    // SAFETY: the child below only makes child-safe calls and ends in execve or _exit.
    match unsafe { sys::clone3(flags, cgroup) }.map_err(NsError::Clone)? {
        Forked::Child => {
            let fail = |step: u32, err: std::io::Error| -> ! {
                sys::report_failure(wr.as_raw_fd(), step, err.raw_os_error().unwrap_or(0));
                sys::exit_child(1)
            };
            if let Some(ns) = cgroup_ns {
                // First: the cgroup2 mount below shows the namespace's root.
                if let Err(e) = sys::setns(ns.as_raw_fd(), libc::CLONE_NEWCGROUP) {
                    fail(CGROUP_NS, e);
                }
            }
            for (i, (kind, ns)) in joined.iter().enumerate() {
                if let Err(e) = sys::setns(ns.as_raw_fd(), *kind) {
                    fail(JOIN + i as u32, e);
                }
            }
            if let Err(e) = sys::private_proc() {
                fail(PROC, e);
            }
            if let Err((i, e)) = mounts.apply() {
                fail(MOUNTS + i as u32, e);
            }
            for fd in 0..3 {
                if let Err(e) = sys::dup2(devnull.as_raw_fd(), fd) {
                    fail(STDIO, e);
                }
            }
            sys::reset_signals();
            sys::setsid();
            let errno = sys::execve(&path, &argv, &envp);
            fail(EXEC, std::io::Error::from_raw_os_error(errno))
        }
        Forked::Parent { pid, pidfd } => {
            drop(wr);
            let starting = Starting {
                pid,
                report: rd,
                binary: pause.to_path_buf(),
                mounts,
            };
            Ok((Pause { pid, pidfd }, starting))
        }
    }
}
