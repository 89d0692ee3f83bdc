//! A pod's namespaces, held by pause.
//!
//! One clone3(2) makes the pod: new PID, network, IPC, UTS, mount and cgroup
//! namespaces, the child born in the pod's cgroup, which so becomes the root of the
//! pod's cgroup namespace (the caller then moves pause to its leaf). The child is PID 1
//! of the new PID namespace from its first instruction; before it execs pause it
//! 1. makes its mounts private and mounts a /proc of the pod's PID namespace, so `ps`
//!    in the pod shows only the pod (mount_namespaces(7): MS_PRIVATE stops the new
//!    /proc from propagating back to the host);
//! 2. sets up what the pod sees of the machine (`mounts`);
//! 3. sets the pod's hostname in the new UTS namespace;
//! 4. brings `lo` up in the new network namespace: every pod has its own 127.0.0.1.
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
        step: &'static str,
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

const STEPS: [&str; 7] = [
    "make mounts private and mount /proc",
    "set up the pod's mounts",
    "set the hostname",
    "bring up lo",
    "redirect stdio to /dev/null",
    "exec pause",
    "unknown step",
];

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

/// Starts pause in new namespaces (`flags`, from [`pod_flags`]).
pub fn start_pause(
    pause: &Path,
    hostname: &str,
    cgroup: Option<&File>,
    mounts: &Mounts,
    flags: libc::c_int,
) -> Result<Pause, NsError> {
    let path =
        CString::new(pause.as_os_str().as_bytes()).map_err(|_| NsError::Path(pause.into()))?;
    let host = CString::new(hostname).map_err(|_| NsError::Path(hostname.into()))?;
    let name =
        CString::new(OsStr::new("pause").as_bytes()).map_err(|_| NsError::Path(pause.into()))?;
    let argv = [name.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    let devnull = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|source| NsError::Setup {
            step: "open /dev/null",
            source,
        })?;
    let (rd, wr) = sys::pipe().map_err(|source| NsError::Setup {
        step: "pipe",
        source,
    })?;
    // SAFETY: the child below only makes child-safe calls and ends in execve or _exit.
    match unsafe { sys::clone3(flags, cgroup) }.map_err(NsError::Clone)? {
        Forked::Child => {
            let fail = |step: u8, err: std::io::Error| -> ! {
                let errno = err.raw_os_error().unwrap_or(0);
                let mut msg = [0u8; 5];
                msg[0] = step;
                msg[1..].copy_from_slice(&errno.to_ne_bytes());
                sys::write_all(wr.as_raw_fd(), &msg);
                sys::exit_child(1)
            };
            if let Err(e) = sys::private_proc() {
                fail(0, e);
            }
            if let Err(e) = mounts.apply() {
                fail(1, e);
            }
            if let Err(e) = sys::sethostname(&host) {
                fail(2, e);
            }
            if flags & libc::CLONE_NEWNET != 0 {
                if let Err(e) = sys::loopback_up() {
                    fail(3, e);
                }
            }
            for fd in 0..3 {
                if let Err(e) = sys::dup2(devnull.as_raw_fd(), fd) {
                    fail(4, e);
                }
            }
            sys::reset_signals();
            sys::setsid();
            let errno = sys::execve(&path, &argv, &envp);
            fail(5, std::io::Error::from_raw_os_error(errno))
        }
        Forked::Parent { pid, pidfd } => {
            drop(wr);
            let mut msg = [0u8; 5];
            let n = sys::read(rd.as_raw_fd(), &mut msg).map_err(|source| NsError::Setup {
                step: "read the child's report",
                source,
            })?;
            if n == 0 {
                return Ok(Pause { pid, pidfd });
            }
            // The child exits right after reporting; reap it here.
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            let step = STEPS[usize::from(msg[0]).min(STEPS.len() - 1)];
            let errno = i32::from_ne_bytes([msg[1], msg[2], msg[3], msg[4]]);
            let mut source = std::io::Error::from_raw_os_error(errno);
            if msg[0] == 5 {
                source =
                    std::io::Error::new(source.kind(), format!("{}: {source}", pause.display()));
            }
            Err(NsError::Setup { step, source })
        }
    }
}
