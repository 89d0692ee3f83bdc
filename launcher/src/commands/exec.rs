//! `launcher exec NAME -- CMD`: a command in a container, like `kubectl exec`: the
//! container's namespaces, cgroup, user, capabilities and environment, the
//! launcher's own stdio, and the command's exit status passed through. SIGINT,
//! SIGTERM, SIGHUP and SIGQUIT sent to `launcher exec` go to the command.

use super::{preflight, Opts, PodHandle};
use crate::cgroup::PodCgroup;
use crate::cli;
use crate::process::{self, Plan, Stdio};
use crate::sys;
use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::os::fd::{AsFd, AsRawFd};

pub fn exec(opts: &Opts, args: &cli::Exec) -> Result<i32> {
    let pod = PodHandle::new(opts, &args.name)?;
    if args.command.first().map_or(true, String::is_empty) {
        return Err(super::Usage::Invalid("exec: the command may not be empty".into()).into());
    }
    preflight()?;
    let rec = pod.record()?;
    let container = super::pick_container(&rec.spec, &args.name, args.container.as_deref())?;
    let not_running = || format!("pod {:?} is not running", args.name);
    let pause = rec.pause.filter(|p| p.alive()).with_context(not_running)?;
    let pidfd = sys::pidfd_open(pause.pid).with_context(not_running)?;
    let leaf = rec
        .cgroup
        .clone()
        .map(|dir| PodCgroup { dir }.leaf(&container.name));
    sys::setns(pidfd.as_raw_fd(), libc::CLONE_NEWPID)
        .context("failed to join the pod's PID namespace")?;
    let plan = Plan::new(
        &rec.spec,
        container,
        &args.command,
        leaf.as_deref(),
        pidfd.as_fd(),
        Stdio::Inherit,
    )?;
    // Taken from here on, and handed on to the command rather than ending us: the
    // command runs in its own session, so the terminal's ^C reaches only this process.
    // (The command's own signal mask starts empty.)
    let waited = waited_signals();
    waited.thread_block().context("failed to block signals")?;
    let started = process::spawn(plan)?;
    let pid = Pid::from_raw(started.pid);
    let status = loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG))? {
            WaitStatus::StillAlive => {}
            status => break status,
        }
        match waited.wait().context("failed to wait for a signal")? {
            Signal::SIGCHLD => {}
            sig => {
                let _ = sys::pidfd_send_signal(&started.pidfd, sig as i32);
            }
        }
    };
    if let Some(e) = started.exec_error {
        super::warn(&process::exec_error_message(&args.command[0], &e));
        return Ok(process::exit_code_for_exec_error(&e));
    }
    Ok(match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        _ => 1,
    })
}

/// SIGCHLD, and what `exec` passes on to its command, as kubectl exec does.
fn waited_signals() -> SigSet {
    let mut set = SigSet::empty();
    for sig in [
        Signal::SIGCHLD,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        set.add(sig);
    }
    set
}
