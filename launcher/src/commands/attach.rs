//! `launcher attach NAME [-c C] [-i] [-t]`: a running container's output from now
//! on, and with `-i` what is typed into its stdin, like `kubectl attach` (and
//! podman's detach keys, ctrl-p ctrl-q, to leave it running).
//!
//! The pod's supervisor holds each container's stdin and terminal (see
//! `driver::attach`); this process is a client of its attach socket. With `-t` and a
//! container with `tty: true`, the local terminal is raw for the session (restored
//! on every way out) and its size follows the local one.

use super::{Opts, PodHandle};
use crate::attach::Frame;
use crate::cli;
use crate::terminal::{self, RawMode};
use anyhow::{bail, Context, Result};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;

/// kubectl's hint when attaching to a terminal, whose prompt was printed before.
const PROMPT_HINT: &str = "If you don't see a command prompt, try pressing enter.";

pub fn attach(opts: &Opts, args: &cli::Attach) -> Result<i32> {
    let keys = detach_keys(&args.detach_keys).map_err(super::Usage::Invalid)?;
    let pod = PodHandle::new(opts, &args.name)?;
    let rec = pod.record()?;
    let container = super::pick_container(&rec.spec, &args.name, args.container.as_deref())?;
    if !super::handle::supervisor_alive(&rec) {
        bail!("pod {:?} is not running", args.name);
    }
    let how = session(&pod, &container.name, args.stdin, args.tty, keys)?;
    Ok(match how {
        End::Ended | End::Detached => 0,
        End::Signal(n) => 128 + n,
    })
}

/// How a session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The container ended (or the pod, or the supervisor went).
    Ended,
    /// The detach keys were typed: the container runs on.
    Detached,
    /// This process was asked to stop (SIGINT, SIGTERM, SIGHUP).
    Signal(i32),
}

/// A session with container `container` of `pod`: its output here, with `stdin`
/// what is typed there, with `tty` (and a terminal here) raw.
pub fn session(
    pod: &PodHandle,
    container: &str,
    stdin: bool,
    tty: bool,
    keys: Vec<u8>,
) -> Result<End> {
    let not_running = || format!("pod {:?} is not running", pod.name);
    let mut stream = crate::attach::connect(&pod.root.roots.attach_socket(&pod.name))
        .with_context(not_running)?;
    let mut out = Vec::new();
    Frame::Hello {
        container: container.to_string(),
        stdin,
    }
    .encode(&mut out);
    stream.write_all(&out).with_context(not_running)?;
    let mut read = Vec::new();
    let has_tty = match next_frame(&mut stream, &mut read)? {
        Some(Frame::Ready { tty }) => tty,
        Some(Frame::Refused(why)) => bail!("{why}"),
        _ => bail!(not_running()),
    };
    // kubectl: -t on a container without a terminal, or without one here, warns.
    let raw = match (tty, has_tty) {
        (false, _) => false,
        (true, false) => {
            super::warn_plain(&format!(
                "Unable to use a TTY - container {container} did not allocate one"
            ));
            false
        }
        (true, true) if !stdin || !terminal::stdin_is_terminal() => {
            super::warn_plain(terminal::NOT_A_TERMINAL);
            false
        }
        (true, true) => true,
    };
    let mut waited = SigSet::empty();
    for sig in [
        Signal::SIGWINCH,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
    ] {
        waited.add(sig);
    }
    waited.thread_block().context("failed to block signals")?;
    let signals = SignalFd::with_flags(&waited, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context("failed to create a signalfd")?;
    let _raw = match raw {
        true => {
            eprintln!("{PROMPT_HINT}");
            if let Some(size) = resize_frame() {
                send(&mut stream, &size)?;
            }
            Some(RawMode::enter().context("failed to put the terminal in raw mode")?)
        }
        false => None,
    };
    let end = Session {
        stream,
        read,
        stdin_open: stdin,
        keys,
        matched: 0,
        raw,
    }
    .run(&signals);
    let _ = waited.thread_unblock();
    end
}

/// podman's default detach keys.
pub const DEFAULT_DETACH_KEYS: &[u8] = &[0x10, 0x11];

struct Session {
    stream: UnixStream,
    read: Vec<u8>,
    stdin_open: bool,
    keys: Vec<u8>,
    /// How many bytes of the detach keys were typed last (held back until it is
    /// clear whether they detach).
    matched: usize,
    raw: bool,
}

impl Session {
    /// Until the container ends, the keys detach, or a signal ends the session.
    fn run(mut self, signals: &SignalFd) -> Result<End> {
        let stdin = std::io::stdin();
        let mut buf = [0u8; 8192];
        loop {
            let mut fds = vec![
                PollFd::new(signals.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.stream.as_fd(), PollFlags::POLLIN),
            ];
            if self.stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
            match nix::poll::poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e).context("failed to poll"),
            }
            let ready: Vec<bool> = fds
                .iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            drop(fds);
            if ready[0] {
                while let Ok(Some(info)) = signals.read_signal() {
                    match info.ssi_signo as i32 {
                        libc::SIGWINCH => {
                            if let Some(size) = resize_frame().filter(|_| self.raw) {
                                send(&mut self.stream, &size)?;
                            }
                        }
                        sig => return Ok(End::Signal(sig)),
                    }
                }
            }
            if ready[1] {
                match self.stream.read(&mut buf) {
                    Ok(0) | Err(_) => return Ok(End::Ended),
                    Ok(n) => self.read.extend_from_slice(&buf[..n]),
                }
                while let Some(frame) = Frame::decode(&mut self.read).map_err(anyhow::Error::msg)? {
                    match frame {
                        Frame::Stdout(b) => write_out(&mut std::io::stdout(), &b),
                        Frame::Stderr(b) => write_out(&mut std::io::stderr(), &b),
                        Frame::Ended => return Ok(End::Ended),
                        _ => {}
                    }
                }
            }
            if ready.get(2) == Some(&true) {
                match crate::sys::read(stdin.as_raw_fd(), &mut buf) {
                    Ok(0) | Err(_) => {
                        self.stdin_open = false;
                        send(&mut self.stream, &Frame::InputEnd)?;
                    }
                    Ok(n) => {
                        let (typed, detach) = self.scan(&buf[..n]);
                        if !typed.is_empty() {
                            send(&mut self.stream, &Frame::Input(typed))?;
                        }
                        if detach {
                            send(&mut self.stream, &Frame::Detach)?;
                            return Ok(End::Detached);
                        }
                    }
                }
            }
        }
    }

    /// What of `bytes` goes to the container, and whether the detach keys were
    /// typed: a partial match is held back until the next byte decides it.
    fn scan(&mut self, bytes: &[u8]) -> (Vec<u8>, bool) {
        let mut typed = Vec::with_capacity(bytes.len());
        for &b in bytes {
            if self.keys.is_empty() {
                typed.push(b);
                continue;
            }
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (typed, true);
                }
                continue;
            }
            // Not the keys after all: what was held back goes, and b starts afresh.
            typed.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
            } else {
                typed.push(b);
            }
        }
        (typed, false)
    }
}

fn write_out(out: &mut impl Write, bytes: &[u8]) {
    // A reader of our output that is gone loses the rest; the session goes on.
    let _ = out.write_all(bytes).and_then(|()| out.flush());
}

fn send(stream: &mut UnixStream, frame: &Frame) -> Result<()> {
    let mut out = Vec::new();
    frame.encode(&mut out);
    stream
        .write_all(&out)
        .context("the pod's supervisor went away")
}

/// The local terminal's size, for the container's; none if it has none (0x0).
fn resize_frame() -> Option<Frame> {
    let ws = crate::sys::window_size(std::io::stdin().as_raw_fd()).ok()?;
    (ws.ws_row > 0 && ws.ws_col > 0).then_some(Frame::Resize {
        rows: ws.ws_row,
        cols: ws.ws_col,
    })
}

/// The next frame, waiting for it.
fn next_frame(stream: &mut UnixStream, read: &mut Vec<u8>) -> Result<Option<Frame>> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(f) = Frame::decode(read).map_err(anyhow::Error::msg)? {
            return Ok(Some(f));
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return Ok(None),
            Ok(n) => read.extend_from_slice(&buf[..n]),
        }
    }
}

/// podman's --detach-keys: comma-separated `ctrl-X` (a-z, @, [, \, ], ^, _) or
/// single characters; empty: none.
fn detach_keys(spec: &str) -> Result<Vec<u8>, String> {
    if spec.is_empty() {
        return Ok(Vec::new());
    }
    spec.split(',')
        .map(|key| {
            let bad = || format!("--detach-keys: {key:?} is not a key (ctrl-p, ctrl-q, a)");
            match key.strip_prefix("ctrl-") {
                Some(k) if k.len() == 1 => {
                    let c = k.as_bytes()[0].to_ascii_uppercase();
                    matches!(c, b'@'..=b'_').then(|| c - b'@').ok_or_else(bad)
                }
                Some(_) => Err(bad()),
                None if key.len() == 1 && key.is_ascii() => Ok(key.as_bytes()[0]),
                None => Err(bad()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(keys: &str) -> Session {
        let (stream, _) = UnixStream::pair().unwrap();
        Session {
            stream,
            read: Vec::new(),
            stdin_open: true,
            keys: detach_keys(keys).unwrap(),
            matched: 0,
            raw: false,
        }
    }

    #[test]
    fn detach_keys_as_podman_spells_them() {
        assert_eq!(detach_keys("ctrl-p,ctrl-q"), Ok(vec![0x10, 0x11]));
        assert_eq!(detach_keys("ctrl-@,x"), Ok(vec![0, b'x']));
        assert_eq!(detach_keys(""), Ok(vec![]));
        assert!(detach_keys("ctrl-pp").is_err());
        assert!(detach_keys("alt-x").is_err());
    }

    #[test]
    fn the_keys_detach_even_split_across_reads_and_are_typed_otherwise() {
        let mut s = session("ctrl-p,ctrl-q");
        assert_eq!(s.scan(b"ls\x10"), (b"ls".to_vec(), false));
        assert_eq!(s.scan(b"\x11rest"), (Vec::new(), true));
        let mut s = session("ctrl-p,ctrl-q");
        assert_eq!(s.scan(b"a\x10b"), (b"a\x10b".to_vec(), false));
        // A ctrl-p typed before the keys goes to the container.
        assert_eq!(s.scan(b"\x10\x10\x11"), (vec![0x10], true));
        let mut s = session("");
        assert_eq!(s.scan(b"\x10\x11"), (b"\x10\x11".to_vec(), false));
    }
}
