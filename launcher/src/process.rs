//! Starting a process inside a pod: a container, or a command of `launcher exec`.
//!
//! The caller has already joined the pod's PID namespace for its children
//! (setns(pidfd, CLONE_NEWPID) changes only where children are born). Then:
//! 1. clone3 with CLONE_INTO_CGROUP: the child is born in the pod's PID namespace and
//!    in the container's cgroup leaf, a direct child of the caller (so the caller gets
//!    its exit status), and never runs outside its cgroup;
//! 2. the child joins the rest of pause's namespaces with one setns(pidfd, NET|IPC|
//!    UTS|MNT), wires fds 0-2, starts a new session, resets signals, marks every other
//!    fd close-on-exec, restricts capabilities and sets no_new_privs;
//! 3. execve over each candidate path; if all fail, the errno goes back through a
//!    close-on-exec pipe and the child exits 127 (not found) or 126 (not executable).
//!
//! Everything the child needs is allocated before clone3: between clone3 and execve
//! there is no allocation, no lock and no logging.

use crate::sys::{self, Forked};
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("failed to start a process in the pod (clone3 into {cgroup})")]
    Clone { cgroup: String, source: io::Error },
    #[error("{0:?} contains a NUL byte")]
    Nul(String),
    #[error("failed to set up the process")]
    Pipe(#[source] io::Error),
}

/// Default PATH of a container, as container runtimes set it.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub struct Request<'a> {
    pub argv: &'a [String],
    /// Environment beyond PATH and HOSTNAME.
    pub env: &'a [(String, String)],
    pub hostname: &'a str,
    /// The container's cgroup leaf, opened as a directory.
    pub cgroup: &'a File,
    pub cgroup_name: &'a str,
    /// pidfd of pause: whose namespaces to join.
    pub pause: RawFd,
    /// fds for the child's 0, 1, 2.
    pub stdio: [RawFd; 3],
    /// The capability set to keep; None keeps every one (privileged).
    pub capabilities: Option<u64>,
    /// runAsUser / runAsGroup; unset ids stay 0.
    pub user: Option<u32>,
    pub group: Option<u32>,
    /// Working directory [default: /].
    pub cwd: Option<&'a str>,
}

pub struct Started {
    pub pid: i32,
    pub pidfd: OwnedFd,
    /// Set when execve failed: the child has exited (127 or 126) with this errno.
    pub exec_error: Option<io::Error>,
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
    if err.kind() == io::ErrorKind::NotFound {
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

pub fn spawn(req: &Request) -> Result<Started, SpawnError> {
    let argv: Vec<CString> = req
        .argv
        .iter()
        .map(|a| cstring(a))
        .collect::<Result<_, _>>()?;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut env: Vec<CString> = vec![
        cstring(&format!("PATH={DEFAULT_PATH}"))?,
        cstring(&format!("HOSTNAME={}", req.hostname))?,
    ];
    for (k, v) in req.env {
        env.push(cstring(&format!("{k}={v}"))?);
    }
    let mut env_ptrs: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    env_ptrs.push(std::ptr::null());
    let program = req.argv.first().map(String::as_str).unwrap_or_default();
    let paths: Vec<CString> = candidates(program, DEFAULT_PATH)
        .iter()
        .map(|p| cstring(p))
        .collect::<Result<_, _>>()?;
    let last_cap = sys::last_cap();
    let cwd = cstring(req.cwd.unwrap_or("/"))?;
    let (rd, wr) = sys::pipe().map_err(SpawnError::Pipe)?;

    // SAFETY: the child only makes child-safe calls and ends in execve or _exit.
    let forked =
        unsafe { sys::clone3(0, Some(req.cgroup)) }.map_err(|source| SpawnError::Clone {
            cgroup: req.cgroup_name.to_string(),
            source,
        })?;
    match forked {
        Forked::Child => {
            let fail = |errno: i32, code: i32| -> ! {
                sys::write_all(wr.as_raw_fd(), &errno.to_ne_bytes());
                sys::exit_child(code)
            };
            let errno_of = |e: io::Error| e.raw_os_error().unwrap_or(libc::EINVAL);
            if let Err(e) = sys::setns(
                req.pause,
                libc::CLONE_NEWNS | libc::CLONE_NEWNET | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS,
            ) {
                fail(errno_of(e), 126);
            }
            for (target, fd) in req.stdio.iter().enumerate() {
                if let Err(e) = sys::dup2(*fd, target as RawFd) {
                    fail(errno_of(e), 126);
                }
            }
            if let Err(e) = sys::chdir(&cwd) {
                fail(errno_of(e), 126);
            }
            sys::setsid();
            sys::reset_signals();
            if let Err(e) = sys::cloexec_from_3() {
                fail(errno_of(e), 126);
            }
            if req.user.is_some() || req.group.is_some() {
                let (uid, gid) = (req.user.unwrap_or(0), req.group.unwrap_or(0));
                if let Err(e) = sys::switch_user(uid, gid) {
                    fail(errno_of(e), 126);
                }
            }
            if let Some(keep) = req.capabilities {
                if let Err(e) = sys::restrict_capabilities(keep, last_cap) {
                    fail(errno_of(e), 126);
                }
            }
            // Like execvp: ENOENT moves on to the next PATH entry; EACCES is kept as
            // the answer unless a later entry succeeds.
            let mut errno = libc::ENOENT;
            for path in &paths {
                let e = sys::execve(path, &argv_ptrs, &env_ptrs);
                if e != libc::ENOENT && e != libc::ENOTDIR {
                    errno = e;
                }
            }
            fail(errno, if errno == libc::ENOENT { 127 } else { 126 })
        }
        Forked::Parent { pid, pidfd } => {
            drop(wr);
            let mut buf = [0u8; 4];
            let n = sys::read(rd.as_raw_fd(), &mut buf).map_err(SpawnError::Pipe)?;
            let exec_error =
                (n == 4).then(|| io::Error::from_raw_os_error(i32::from_ne_bytes(buf)));
            Ok(Started {
                pid,
                pidfd,
                exec_error,
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
