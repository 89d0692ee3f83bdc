//! `launcher exec -i -t` driven through a real pseudo-terminal opened by the test, as
//! a person at a terminal would use it; and `-i` / `-t` without one.
#![allow(unsafe_code)]
#![allow(clippy::unwrap_used)]

use pod_tests::*;
use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A pty pair of the test's: the master is the person's side, the terminal end is
/// what `launcher exec` gets as its stdin, stdout, stderr and controlling terminal.
struct Terminal {
    master: OwnedFd,
    tty: OwnedFd,
    seen: Vec<u8>,
}

impl Terminal {
    fn open(rows: u16, cols: u16) -> Terminal {
        let (mut m, mut s) = (0, 0);
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty fills the two fds; the name buffer and termios may be null.
        let rc =
            unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: fresh fds of ours.
        let (master, tty) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
        Terminal {
            master,
            tty,
            seen: Vec::new(),
        }
    }

    fn resize(&self, rows: u16, cols: u16) {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // The kernel sends SIGWINCH to the terminal's foreground process group (the
        // launcher).
        // SAFETY: TIOCSWINSZ reads the winsize it is given.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        assert_eq!(rc, 0);
    }

    fn lflag(&self) -> libc::tcflag_t {
        // SAFETY: termios is plain old data; tcgetattr fills it.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: a terminal fd of ours.
        assert_eq!(unsafe { libc::tcgetattr(self.tty.as_raw_fd(), &mut t) }, 0);
        t.c_lflag
    }

    fn type_(&self, text: &[u8]) {
        let mut f = std::fs::File::from(self.master.try_clone().unwrap());
        f.write_all(text).unwrap();
    }

    /// Reads the screen until `needle` shows up after what was already awaited.
    fn expect(&mut self, needle: &str) {
        assert!(
            self.try_expect(needle, Duration::from_secs(10)),
            "timed out waiting for {needle:?} on the terminal; it shows {:?}",
            String::from_utf8_lossy(&self.seen)
        );
    }

    /// As `expect`, false after `limit`.
    fn try_expect(&mut self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + scaled(limit);
        loop {
            if let Some(at) = find(&self.seen, needle.as_bytes()) {
                self.seen.drain(..at + needle.len());
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let mut pfd = libc::pollfd {
                fd: self.master.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(100) as i32) };
            if n > 0 {
                let mut buf = [0u8; 4096];
                // SAFETY: reading into our buffer.
                let r = unsafe { libc::read(pfd.fd, buf.as_mut_ptr().cast(), buf.len()) };
                if r > 0 {
                    self.seen.extend_from_slice(&buf[..r as usize]);
                }
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn exec_it_gives_a_terminal_that_follows_the_local_one() {
    let pods = Pods::new("tty");
    pods.ok(&["up", "-d", "--name", "tty", "-c", "main=sleep 600"]);
    let mut term = Terminal::open(33, 101);
    let before = term.lflag();
    assert_ne!(before & libc::ICANON, 0, "a fresh terminal is cooked");
    let mut session = on_terminal(&pods, &term, &["exec", "-it", "tty", "--", "sh"]);

    // The shell in the pod has a terminal of the pod's own devpts, of our size.
    term.type_(b"tty; stty size; echo term-$TERM; echo end-$((1+1))\n");
    term.expect("/dev/pts/");
    term.expect("33 101");
    // A terminal's type, as docker and podman give an exec with a tty.
    term.expect("term-xterm");
    term.expect("end-2");
    let raw = term.lflag();
    assert_eq!(
        raw & (libc::ICANON | libc::ECHO | libc::ISIG),
        0,
        "raw mode"
    );

    // A resize of the local terminal reaches it.
    term.resize(40, 120);
    // SIGWINCH is asynchronous: ask until the new size shows.
    let deadline = Instant::now() + scaled(Duration::from_secs(10));
    loop {
        term.type_(b"echo size-$(stty size | tr ' ' x)\n");
        if term.try_expect("size-40x120", Duration::from_secs(1)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the resize never reached the pod"
        );
    }

    // ^C interrupts a sleep in the pod, not the session; no pty fd leaks into the
    // pod's other processes.
    let pod = pods.status("tty");
    let pause = as_pid(&pod["metadata"]["annotations"]["launcher/pause-pid"]);
    term.type_(b"sleep 30; echo not-interrupted\n");
    // ^C once the shell runs the sleep: a process `sleep 30` in the pod.
    wait_for("sleep 30 in the pod", Duration::from_secs(10), || {
        fs::read_dir("/proc").unwrap().flatten().any(|e| {
            let pid: i32 = e.file_name().to_string_lossy().parse().unwrap_or(0);
            pid > 0
                && fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == b"sleep\x0030\x00")
                && ns_of(pid, "pid") == ns_of(pause, "pid")
        })
    });
    let started = Instant::now();
    term.type_(b"\x03");
    term.type_(b"echo still-$((2*3))\n");
    term.expect("still-6");
    assert!(started.elapsed() < scaled(Duration::from_secs(10)));
    assert!(session.running(), "^C ended the session");
    let main = container_pid(&pod, "main").unwrap();
    for link in std::fs::read_dir(format!("/proc/{main}/fd"))
        .unwrap()
        .flatten()
    {
        let to = std::fs::read_link(link.path()).unwrap_or_default();
        let to = to.to_string_lossy();
        assert!(
            !to.contains("pts") && !to.contains("ptmx"),
            "the container holds {to}"
        );
    }

    // The exit status comes back and the local terminal is as it was.
    term.type_(b"exit 7\n");
    let status = session.wait_timeout(Duration::from_secs(10));
    assert_eq!(status.code(), Some(7));
    assert_eq!(term.lflag(), before, "terminal modes restored");
    pods.ok(&["down", "tty"]);
    pods.assert_clean();
}

#[test]
fn exec_without_a_terminal_warns_and_stdin_only_with_i() {
    let pods = Pods::new("notty");
    pods.ok(&["up", "-d", "--name", "notty", "-c", "main=sleep 600"]);
    let run = |args: &[&str], input: &str| pods.run_with_input(args, input);
    // -i forwards stdin.
    let out = run(&["exec", "-i", "notty", "--", "cat"], "typed\n");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "typed\n");
    // Without -i the command reads nothing.
    let out = run(&["exec", "notty", "--", "cat"], "typed\n");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert!(out.status.success());
    // -it with a pipe: kubectl's warning, and the command runs without a terminal.
    let out = run(
        &["exec", "-it", "notty", "--", "sh", "-c", "cat; tty; exit 3"],
        "piped\n",
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Unable to use a TTY - input is not a terminal or the right kind of file"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "piped\nnot a tty\n");
    pods.ok(&["down", "notty"]);
    // On a pod that is not running: one line, exit 1, nothing changed.
    let out = run(&["exec", "-it", "notty", "--", "sh"], "");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("\"notty\""), "{err}");
    pods.assert_clean();
}

/// `launcher ARGS` run on the test's terminal (its controlling terminal, and its
/// stdin, stdout and stderr), as a person would.
fn on_terminal(pods: &Pods, term: &Terminal, args: &[&str]) -> Proc {
    let mut cmd = pods.cmd(args);
    let tty = term.tty.as_raw_fd();
    // SAFETY: setsid and TIOCSCTTY between fork and exec, async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            if libc::ioctl(tty, libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.stdin(Stdio::from(term.tty.try_clone().unwrap()))
        .stdout(Stdio::from(term.tty.try_clone().unwrap()))
        .stderr(Stdio::from(term.tty.try_clone().unwrap()));
    Proc::spawn(&mut cmd)
}

/// kubectl's `attach -it` to a container with `stdin` and `tty`: its own terminal,
/// of the local size, raw here; ctrl-p ctrl-q leaves it running; a second session
/// finds the same shell; its exit ends the session, and the shell's output is in
/// its log.
#[test]
fn attach_it_reaches_the_containers_own_terminal_and_detaches() {
    let pods = Pods::new("attach");
    let yaml = "apiVersion: v1
kind: Pod
metadata: {name: shell-demo}
spec:
  restartPolicy: Never
  containers:
  - name: shell
    command: [sh]
    stdin: true
    tty: true
";
    pods.up_detached(yaml, &[]);
    let mut term = Terminal::open(30, 90);
    let before = term.lflag();
    let mut session = on_terminal(&pods, &term, &["attach", "-it", "shell-demo"]);
    term.expect("If you don't see a command prompt, try pressing enter.");
    term.type_(b"stty size; tty; echo hi-$((6*7))\r");
    term.expect("30 90");
    term.expect("/dev/pts/");
    term.expect("hi-42");
    assert_eq!(term.lflag() & (libc::ICANON | libc::ECHO), 0, "raw mode");
    term.resize(40, 120);
    let deadline = Instant::now() + scaled(Duration::from_secs(10));
    loop {
        term.type_(b"echo size-$(stty size | tr ' ' x)\r");
        if term.try_expect("size-40x120", Duration::from_secs(1)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the resize never reached the container"
        );
    }
    // Detach: the session ends, the terminal is restored, the shell runs on.
    term.type_(b"\x10\x11");
    assert_eq!(
        session.wait_timeout(Duration::from_secs(10)).code(),
        Some(0)
    );
    assert_eq!(term.lflag(), before, "terminal modes restored");
    let c = container(&pods.status("shell-demo"), "shell").clone();
    assert!(c["state"]["running"].is_object(), "{c}");
    // Back to the same shell: what it set is still there; its exit ends the session.
    let mut session = on_terminal(
        &pods,
        &term,
        &["attach", "-it", "shell-demo", "-c", "shell"],
    );
    term.expect("try pressing enter.");
    term.type_(b"echo again-$((2*5)); exit 3\r");
    term.expect("again-10");
    assert_eq!(
        session.wait_timeout(Duration::from_secs(10)).code(),
        Some(0)
    );
    let pod = pods.wait_status("shell-demo", "Failed", Duration::from_secs(10), |p| {
        p["status"]["phase"] == "Failed"
    });
    assert_eq!(
        container(&pod, "shell")["state"]["terminated"]["exitCode"],
        3
    );
    let log = pods.ok(&["logs", "shell-demo"]);
    assert!(log.contains("hi-42") && log.contains("again-10"), "{log}");
    pods.ok(&["down", "shell-demo"]);
    pods.assert_clean();
}

/// `attach -i` without a terminal: input from a pipe reaches the container's stdin;
/// with stdinOnce the stdin closes when that session ends (the container reads EOF);
/// without, it stays open for the next session. What cannot be attached says why.
#[test]
fn attach_i_feeds_stdin_and_stdin_once_closes_it() {
    let pods = Pods::new("attachi");
    let yaml = "apiVersion: v1
kind: Pod
metadata: {name: feed}
spec:
  restartPolicy: Never
  containers:
  - name: once
    command: [sh, -c, 'while read l; do echo \"once $l\"; done; echo once-eof']
    stdin: true
    stdinOnce: true
  - name: open
    command: [sh, -c, 'while read l; do echo \"open $l\"; done; echo open-eof']
    stdin: true
  - name: plain
    command: [sleep, '600']
";
    pods.up_detached(yaml, &[]);
    let attach = |container: &str, input: &str| {
        pods.spawn_with_input(&["attach", "-i", "feed", "-c", container], input)
    };
    // stdinOnce: the session's end is the container's EOF, and so its end; the
    // session follows it to its end.
    let out = attach("once", "a\nb\n").wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text, "once a\nonce b\nonce-eof\n");
    let pod = pods.wait_status("feed", "once done", Duration::from_secs(10), |p| {
        container(p, "once")["state"]["terminated"].is_object()
    });
    assert_eq!(
        container(&pod, "once")["state"]["terminated"]["exitCode"],
        0
    );
    // Without stdinOnce, a session that ends (here: by a signal) leaves stdin open.
    let mut first = attach("open", "x\n");
    let pid = first.id() as i32;
    wait_for("the first line", Duration::from_secs(10), || {
        pods.ok(&["logs", "feed", "-c", "open"]).contains("open x")
    });
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(first.wait().unwrap().code(), Some(128 + libc::SIGTERM));
    let second = attach("open", "y\n");
    wait_for("the second session's line", Duration::from_secs(10), || {
        pods.ok(&["logs", "feed", "-c", "open"]).contains("open y")
    });
    assert!(!pods
        .ok(&["logs", "feed", "-c", "open"])
        .contains("open-eof"));
    let mut second = second;
    second.kill().unwrap();
    second.wait().unwrap();
    // What cannot be attached: a container without stdin, one that ended, none.
    for (args, want) in [
        (
            vec!["attach", "-i", "feed", "-c", "plain"],
            "container \"plain\" has no stdin to attach to (stdin: true in its spec)",
        ),
        (
            vec!["attach", "feed", "-c", "once"],
            "container \"once\" is not running",
        ),
        (
            vec!["attach", "feed", "-c", "nosuch"],
            "pod \"feed\" has no container \"nosuch\"",
        ),
    ] {
        let out = pods.run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    pods.ok(&["down", "feed", "--grace-period", "0"]);
    pods.assert_clean();
}

/// `up -it`, as kubectl run -it: the shell's terminal is this one; its exit ends
/// the pod with its status; the detach keys leave the pod running instead.
#[test]
fn up_it_runs_a_shell_on_this_terminal_and_the_pod_goes_with_it() {
    let pods = Pods::new("upit");
    let mut term = Terminal::open(25, 70);
    let before = term.lflag();
    let mut session = on_terminal(&pods, &term, &["up", "--name", "dbg", "-c", "sh=sh", "-it"]);
    term.expect("try pressing enter.");
    term.type_(b"stty size; echo in-$((3*3)); exit 5\r");
    term.expect("25 70");
    term.expect("in-9");
    assert_eq!(
        session.wait_timeout(Duration::from_secs(10)).code(),
        Some(5)
    );
    assert_eq!(term.lflag(), before, "terminal modes restored");
    pods.assert_clean();
    // Detached: the pod runs on, and says how to come back.
    let mut session = on_terminal(&pods, &term, &["up", "--name", "dbg", "-c", "sh=sh", "-it"]);
    term.expect("try pressing enter.");
    term.type_(b"echo up-$((4*4))\r");
    term.expect("up-16");
    term.type_(b"\x10\x11");
    assert_eq!(
        session.wait_timeout(Duration::from_secs(10)).code(),
        Some(0)
    );
    term.expect("`launcher attach dbg -c sh -it` attaches again");
    assert_eq!(term.lflag(), before);
    let pod = pods.status("dbg");
    assert!(container(&pod, "sh")["state"]["running"].is_object());
    // An interactive shell ignores SIGTERM: it would take the whole grace period.
    pods.ok(&["down", "dbg", "--grace-period", "0"]);
    pods.assert_clean();
}

/// `up` in the foreground on a terminal: a line per step that matters, the stop with
/// its grace period, ^C again to stop at once, and exit 0 for a pod stopped on request.
#[test]
fn up_on_a_terminal_tells_its_steps_and_a_second_ctrl_c_stops_at_once() {
    let pods = Pods::new("fgsteps");
    let mut term = Terminal::open(24, 80);
    let mut session = on_terminal(
        &pods,
        &term,
        &[
            "up",
            "--name",
            "fg",
            "-c",
            "a=sh -c 'trap \"\" TERM; echo up; sleep 600'",
        ],
    );
    term.expect("launcher: pod fg: started a");
    term.expect("launcher: pod fg: ready");
    term.expect("[a] up");
    term.type_(b"\x03");
    term.expect("launcher: stopping pod fg (grace period 30s; ^C again to stop now)");
    // The container ignores SIGTERM: without a second ^C it would take 30 s.
    let asked = Instant::now();
    term.type_(b"\x03");
    term.expect("launcher: stopping pod fg now");
    term.expect("pod fg stopped");
    assert_eq!(
        session.wait_timeout(Duration::from_secs(10)).code(),
        Some(0)
    );
    assert!(asked.elapsed() < scaled(Duration::from_secs(10)));
    pods.assert_clean();
}
