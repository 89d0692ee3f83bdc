//! `launcher exec NAME [-i] [-t] -- CMD`: a command in a container, like `kubectl
//! exec`: the container's namespaces, cgroup, user, capabilities and environment,
//! and the command's exit status passed through. SIGINT, SIGTERM, SIGHUP and
//! SIGQUIT sent to `launcher exec` go to the command.
//!
//! Without `-i` the command's input is /dev/null; with it, the launcher's. With
//! `-it` and a terminal on stdin, the command gets a pseudo-terminal of the pod's
//! (see `terminal`) and this process copies bytes both ways until it exits,
//! forwarding window size changes.

use super::{preflight, Opts, PodHandle};
use crate::cgroup::PodCgroup;
use crate::cli;
use crate::process::{self, Plan, Started, Stdio, View};
use crate::spec::Resolved;
use crate::sys;
use crate::terminal::{self, Pty, RawMode};
use anyhow::{Context, Result};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};

/// Input typed ahead of what the pod's terminal has taken; beyond it, stdin waits.
const INPUT_QUEUE: usize = 64 * 1024;

pub fn exec(opts: &Opts, args: &cli::Exec) -> Result<i32> {
    let pod = PodHandle::new(opts, &args.name)?;
    if args.command.first().map_or(true, String::is_empty) {
        return Err(super::Usage::Invalid("exec: the command may not be empty".into()).into());
    }
    preflight()?;
    let rec = pod.record()?;
    // The command gets the container's environment as declared, as runc gives an
    // exec the container's configured one; ConfigMaps' and Secrets' values come from
    // the supervisor's memory. Without a supervisor, the main process's environment.
    let inputs = super::inputs_of(&rec);
    let declared = inputs.is_some();
    let inputs = inputs.unwrap_or_default();
    let container = super::pick_container(&rec.spec, &args.name, args.container.as_deref())?;
    let not_running = || format!("pod {:?} is not running", args.name);
    let pause = rec.pause.filter(|p| p.alive()).with_context(not_running)?;
    let pidfd = sys::pidfd_open(pause.pid).with_context(not_running)?;
    // kubectl: -t without -i is no terminal; -it without one on stdin warns.
    let tty = args.tty && args.stdin && {
        let is = terminal::stdin_is_terminal();
        if !is {
            super::warn_plain(terminal::NOT_A_TERMINAL);
        }
        is
    };
    let (pty, stdio) = if tty {
        let root = std::fs::File::open(format!("/proc/{}/root", pause.pid))
            .ok()
            .filter(|_| pause.alive())
            .with_context(not_running)?;
        let (pty, peer) = Pty::open_in(&root).context("failed to open a terminal in the pod")?;
        (Some(pty), Stdio::Terminal(peer))
    } else if args.stdin {
        (None, Stdio::Inherit)
    } else {
        (None, Stdio::NullIn)
    };
    let leaf = rec
        .cgroup
        .clone()
        .map(|dir| PodCgroup { dir }.leaf(&container.name));
    // The command joins the container's mount namespace: its main process's.
    let supervisor = rec.supervisor.filter(|s| s.alive()).map(|s| s.pid);
    let found = container_main(
        &pod,
        &container.name,
        supervisor,
        leaf.as_deref(),
        pause.pid,
    );
    let (main_pid, main) = found.with_context(|| {
        format!(
            "container {:?} of pod {:?} is not running",
            container.name, args.name
        )
    })?;
    let resolved = Resolved {
        spec: &rec.spec,
        inputs: &inputs,
        facts: &rec.facts,
    };
    let mut plan = Plan::new(
        resolved,
        container,
        &args.command,
        leaf.as_deref(),
        pidfd.as_fd(),
        stdio,
        View::Join(main.as_fd()),
    )?;
    if !declared {
        match process::environment_of(main_pid) {
            Some(env) => plan.set_environment(env),
            None => super::warn(&format!(
                "the ConfigMaps and Secrets of pod {:?} are not available (its supervisor \
                 is gone): the command's environment lacks their values",
                args.name
            )),
        }
    }
    // A terminal's type, as docker and podman give an exec with a tty (what `clear`
    // and editors need), unless the container declares one.
    if pty.is_some() {
        plan.default_env("TERM", "xterm")?;
    }
    // Taken from here on, and handed on to the command rather than ending us: the
    // command runs in its own session, so the terminal's ^C reaches only this process.
    // (The command's own signal mask starts empty.)
    let waited = waited_signals();
    waited.thread_block().context("failed to block signals")?;
    let signals = SignalFd::with_flags(&waited, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context("failed to create a signalfd")?;
    let started = process::spawn(plan)?;
    if let Some(e) = started.failed {
        let _ = waitpid(Pid::from_raw(started.pid), None);
        super::warn(&e.to_string());
        return Ok(e.exit_code());
    }
    let raw = match &pty {
        Some(_) => Some(RawMode::enter().context("failed to put the terminal in raw mode")?),
        None => None,
    };
    let status = session(&started, pty.as_ref(), &signals);
    drop(raw);
    Ok(match status? {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        _ => 1,
    })
}

/// A pidfd of container `name`'s main process, if it runs: the pid its supervisor
/// published, still that supervisor's child, or in the container's cgroup leaf, or in
/// the pod's PID namespace.
fn container_main(
    pod: &PodHandle,
    name: &str,
    supervisor: Option<i32>,
    leaf: Option<&std::path::Path>,
    pause: i32,
) -> Option<(i32, std::os::fd::OwnedFd)> {
    let status = pod.status()?;
    let pid = status
        .container_statuses
        .iter()
        .chain(&status.init_container_statuses)
        .find(|c| c.name == name)?
        .pid?;
    let pidfd = sys::pidfd_open(pid).ok()?;
    // Checked after the pidfd is open: the pid cannot be reused from here on.
    let child = supervisor.is_some() && supervisor == Some(crate::procfs::stat(pid)?.ppid);
    let in_leaf = || {
        leaf.and_then(|l| std::fs::read_to_string(l.join("cgroup.procs")).ok())
            .is_some_and(|procs| procs.lines().any(|p| p == pid.to_string()))
    };
    let ns = |p: i32| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
    let in_pod = || ns(pid).is_some() && ns(pid) == ns(pause);
    (child || in_leaf() || in_pod()).then_some((pid, pidfd))
}

/// Until the command exits: its terminal's output to stdout and stdin to its
/// terminal (with a pty), signals passed on, window sizes followed.
fn session(started: &Started, pty: Option<&Pty>, signals: &SignalFd) -> Result<WaitStatus> {
    let pid = Pid::from_raw(started.pid);
    let stdin = std::io::stdin();
    let mut input: Vec<u8> = Vec::new();
    let mut stdin_open = pty.is_some();
    let mut output_open = pty.is_some();
    let mut buf = [0u8; 8192];
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG))? {
            WaitStatus::StillAlive => {}
            status => {
                if let Some(p) = pty {
                    // Its last words: what is in the terminal now.
                    while output_open && copy_output(p, &mut buf) == Copied::Some {}
                }
                return Ok(status);
            }
        }
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        let (mut at_master, mut at_stdin) = (None, None);
        if let Some(p) = pty {
            let mut want = PollFlags::empty();
            if output_open {
                want |= PollFlags::POLLIN;
            }
            if !input.is_empty() {
                want |= PollFlags::POLLOUT;
            }
            if !want.is_empty() {
                at_master = Some(fds.len());
                fds.push(PollFd::new(p.master.as_fd(), want));
            }
            if stdin_open && input.len() < INPUT_QUEUE {
                at_stdin = Some(fds.len());
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match nix::poll::poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e).context("failed to poll"),
        }
        let revents = |i: Option<usize>| {
            i.and_then(|i| fds[i].revents())
                .unwrap_or(PollFlags::empty())
        };
        let (master_ev, stdin_ev, signal_ev) =
            (revents(at_master), revents(at_stdin), revents(Some(0)));
        drop(fds);
        if let Some(p) = pty {
            if master_ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                output_open = copy_output(p, &mut buf) != Copied::Closed;
            }
            if master_ev.contains(PollFlags::POLLOUT) {
                match nix::unistd::write(&p.master, &input) {
                    Ok(n) => drop(input.drain(..n)),
                    Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
                    Err(_) => input.clear(),
                }
            }
            if !stdin_ev.is_empty() {
                match sys::read(stdin.as_raw_fd(), &mut buf) {
                    Ok(0) => stdin_open = false,
                    Ok(n) => input.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => stdin_open = false,
                }
            }
        }
        if !signal_ev.is_empty() {
            while let Ok(Some(info)) = signals.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) | Err(_) => {}
                    Ok(Signal::SIGWINCH) => {
                        if let Some(p) = pty {
                            p.follow_local_size();
                        }
                    }
                    Ok(sig) => {
                        let _ = sys::pidfd_send_signal(&started.pidfd, sig as i32);
                    }
                }
            }
        }
    }
}

#[derive(PartialEq)]
enum Copied {
    Some,
    Nothing,
    /// Every process of the pod has let go of its end of the terminal (EIO).
    Closed,
}

/// Copies what the pod's terminal has now to stdout.
fn copy_output(pty: &Pty, buf: &mut [u8]) -> Copied {
    match sys::read(pty.master.as_raw_fd(), buf) {
        Ok(0) => Copied::Closed,
        Ok(n) => {
            let mut out = std::io::stdout().lock();
            // A reader of our output that is gone loses the rest; the command goes on.
            let _ = out.write_all(&buf[..n]).and_then(|()| out.flush());
            Copied::Some
        }
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Copied::Some,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Copied::Nothing,
        Err(_) => Copied::Closed,
    }
}

/// SIGCHLD, SIGWINCH, and what `exec` passes on to its command, as kubectl exec does.
fn waited_signals() -> SigSet {
    let mut set = SigSet::empty();
    for sig in [
        Signal::SIGCHLD,
        Signal::SIGWINCH,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        set.add(sig);
    }
    set
}
