//! The driver's output pump: each container's stdout and stderr pipes into its log
//! (one file per instance, see `logs`) and, in the foreground, onto the launcher's
//! own stdout and stderr as `[container] line`.
//!
//! Nothing here may stall supervision:
//! - each wake-up reads at most [`READS_PER_WAKE`] buffers from a pipe, so a process
//!   that writes without pause (even one left behind by an exited container) cannot
//!   keep the loop from exits, probes and timers;
//! - the foreground copy goes through a non-blocking descriptor of its own with a
//!   bounded queue: a slow or stopped reader loses terminal lines (the log file keeps
//!   them all); a reader that is gone is reported, and the driver stops the pod.

use crate::logs::{LineSplitter, LogFile, Recorded, Rotation, Stream};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Reads of one pipe per wake-up: 8 x 8 KiB.
pub const READS_PER_WAKE: usize = 8;
/// Output waiting for a slow terminal; beyond this, lines are dropped there.
const TERMINAL_QUEUE: usize = 1 << 20;

/// Lines for the terminal: (stream, `[container] line\n`).
pub type Lines = Vec<(Stream, Vec<u8>)>;

struct Pipe {
    fd: OwnedFd,
    stream: Stream,
    split: LineSplitter,
}

/// One container's output: its pipes (those of an earlier instance stay until their
/// writers are gone) and the log of its current instance.
pub struct Output {
    name: String,
    dir: PathBuf,
    rotation: Rotation,
    log: Option<LogFile>,
    pipes: Vec<Pipe>,
    /// Why its log began to lose lines (a full disk), until reported.
    loss: Option<String>,
    /// What was read, as read, for attach sessions; None when nobody follows.
    pub tap: Option<Vec<(Stream, Vec<u8>)>>,
}

impl Output {
    /// The first instance's log is opened now: a pod that cannot have it (no fd
    /// left, a full disk) fails to start, with nothing left behind.
    pub fn open(name: &str, dir: &Path, rotation: Rotation) -> std::io::Result<Output> {
        Ok(Output {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            rotation,
            log: Some(LogFile::open(dir, 0, rotation)?),
            pipes: Vec::new(),
            loss: None,
            tap: None,
        })
    }

    /// A new instance started, writing to the other ends of `stdout` and `stderr`
    /// (a terminal's multiplexer end for both: no stderr). Output of the earlier
    /// instance still in its pipes goes to this one's log. A log that cannot be
    /// opened comes back as a line for the terminal.
    pub fn start(
        &mut self,
        instance: u32,
        stdout: OwnedFd,
        stderr: Option<OwnedFd>,
    ) -> Option<String> {
        let mut warning = None;
        if self.log.as_ref().map(LogFile::instance) != Some(instance) {
            let log = LogFile::open(&self.dir, instance, self.rotation);
            if let Err(e) = &log {
                warning = Some(format!(
                    "launcher: {}: its output is not logged: {}: {e}\n",
                    self.name,
                    self.dir.display()
                ));
            }
            self.log = log.ok();
        }
        let streams = [(Some(stdout), Stream::Stdout), (stderr, Stream::Stderr)];
        for (fd, stream) in streams.into_iter().filter_map(|(fd, s)| Some((fd?, s))) {
            let _ = nix::fcntl::fcntl(
                &fd,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            );
            self.pipes.push(Pipe {
                fd,
                stream,
                split: LineSplitter::default(),
            });
        }
        warning
    }

    /// The end of the current instance's log: its last `lines` lines, at most `max`
    /// bytes of them.
    pub fn tail(&self, lines: usize, max: usize) -> Vec<u8> {
        match &self.log {
            Some(log) => crate::logs::tail(&self.dir, log.instance(), lines, max),
            None => Vec::new(),
        }
    }

    /// The pipes to poll, by index.
    pub fn fds(&self) -> impl Iterator<Item = (usize, BorrowedFd<'_>)> {
        self.pipes
            .iter()
            .enumerate()
            .map(|(i, p)| (i, p.fd.as_fd()))
    }

    /// Reads what pipe `pi` has now, at most READS_PER_WAKE buffers, into the log and
    /// (`terminal`) the lines returned. At EOF the unfinished line is logged and the
    /// pipe goes: indices above `pi` move down.
    pub fn drain(&mut self, pi: usize, terminal: bool) -> Lines {
        let mut buf = [0u8; 8192];
        let mut lines = Lines::new();
        let (name, log, loss, tap) = (&self.name, &mut self.log, &mut self.loss, &mut self.tap);
        let pipe = &mut self.pipes[pi];
        let stream = pipe.stream;
        let mut emit = |line: &[u8], full: bool| {
            if let Some(log) = log.as_mut() {
                if let Recorded::LostFirst(why) = log.record(stream, line, full) {
                    *loss = Some(why);
                }
            }
            if terminal {
                let mut text = format!("[{name}] ").into_bytes();
                text.extend_from_slice(line);
                text.push(b'\n');
                lines.push((stream, text));
            }
        };
        let mut eof = false;
        for _ in 0..READS_PER_WAKE {
            match crate::sys::read(pipe.fd.as_raw_fd(), &mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    if let Some(tap) = tap.as_mut() {
                        tap.push((stream, buf[..n].to_vec()));
                    }
                    pipe.split.feed(&buf[..n], &mut emit)
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        if eof {
            pipe.split.finish(&mut emit);
            self.pipes.remove(pi);
        }
        lines
    }

    /// Why the log began to lose lines, once.
    pub fn take_loss(&mut self) -> Option<String> {
        self.loss.take()
    }

    /// One more read of every pipe, as far as one wake-up goes.
    pub fn drain_all(&mut self, terminal: bool) -> Lines {
        let mut lines = Lines::new();
        for pi in (0..self.pipes.len()).rev() {
            lines.extend(self.drain(pi, terminal));
        }
        lines
    }

    /// The pod ended: what is left in the pipes, and the unfinished lines.
    pub fn finish(&mut self, terminal: bool) -> Lines {
        let mut lines = self.drain_all(terminal);
        let (log, name) = (&mut self.log, &self.name);
        for pipe in &mut self.pipes {
            let stream = pipe.stream;
            pipe.split.finish(|line, full| {
                if let Some(log) = log.as_mut() {
                    let _ = log.record(stream, line, full);
                }
                if terminal {
                    let text = format!("[{name}] {}\n", String::from_utf8_lossy(line));
                    lines.push((stream, text.into_bytes()));
                }
            });
        }
        lines
    }
}

/// The foreground copy of the pod's output: `[container] line` on the launcher's
/// stdout and stderr, never blocking the supervisor.
pub struct Terminal {
    out: Sink,
    err: Sink,
}

impl Terminal {
    /// The launcher's own stdout and stderr.
    pub fn open() -> Terminal {
        Terminal {
            out: Sink::open(1),
            err: Sink::open(2),
        }
    }

    fn sink(&mut self, stream: Stream) -> &mut Sink {
        match stream {
            Stream::Stdout => &mut self.out,
            Stream::Stderr => &mut self.err,
        }
    }

    /// Queues `text` and writes what it can; true once stdout's reader is gone.
    pub fn say(&mut self, stream: Stream, text: &[u8]) -> bool {
        self.sink(stream).push(text) && stream == Stream::Stdout
    }

    /// Writes what waits on `stream`; true once stdout's reader is gone.
    pub fn flush(&mut self, stream: Stream) -> bool {
        self.sink(stream).flush() && stream == Stream::Stdout
    }

    /// The streams whose output waits for their reader.
    pub fn waiting(&self) -> impl Iterator<Item = (Stream, BorrowedFd<'_>)> {
        [(Stream::Stdout, &self.out), (Stream::Stderr, &self.err)]
            .into_iter()
            .filter_map(|(stream, sink)| Some((stream, sink.waiting()?)))
    }

    /// At the end: what is still queued, for at most `limit`.
    pub fn drain(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        for sink in [&mut self.out, &mut self.err] {
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
                let Some(fd) = sink.waiting() else {
                    break;
                };
                let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
                let writable =
                    nix::poll::poll(&mut fds, PollTimeout::from(ms)).is_ok_and(|n| n > 0);
                if left.is_zero() || !writable {
                    break;
                }
                sink.flush();
            }
        }
    }
}

/// One of the launcher's output streams, written without blocking.
struct Sink {
    fd: Option<OwnedFd>,
    socket: bool,
    queue: Vec<u8>,
    closed: bool,
}

impl Sink {
    /// A pipe or terminal is opened again through /proc/self/fd: a new open file
    /// description, so O_NONBLOCK on it leaves the one the shell shares alone. A
    /// regular file never blocks and keeps its offset: it is used as it is.
    fn open(fd: i32) -> Sink {
        use nix::sys::stat::{fstat, SFlag};
        // SAFETY: fds 0-2 stay open for the life of the process.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let kind = fstat(borrowed).map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT);
        let reopen = matches!(kind, Ok(k) if k == SFlag::S_IFIFO || k == SFlag::S_IFCHR);
        let socket = matches!(kind, Ok(k) if k == SFlag::S_IFSOCK);
        let own = if reopen {
            std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(format!("/proc/self/fd/{fd}"))
                .map(OwnedFd::from)
                .ok()
        } else {
            borrowed.try_clone_to_owned().ok()
        };
        // A pipe whose reader is already gone cannot be opened (ENXIO).
        let closed = own.is_none() && kind.is_ok();
        Sink {
            fd: own,
            socket,
            queue: Vec::new(),
            closed,
        }
    }

    /// The fd to poll for POLLOUT while output waits.
    fn waiting(&self) -> Option<BorrowedFd<'_>> {
        self.fd
            .as_ref()
            .filter(|_| !self.queue.is_empty() && !self.closed)
            .map(|f| f.as_fd())
    }

    /// Queues `text` (dropped whole when the queue is full) and writes what it can.
    /// True once the reader is gone.
    fn push(&mut self, text: &[u8]) -> bool {
        if self.closed || self.fd.is_none() {
            return self.closed;
        }
        if self.queue.len() + text.len() <= TERMINAL_QUEUE {
            self.queue.extend_from_slice(text);
        }
        self.flush()
    }

    /// Writes without blocking; true once the reader is gone (EPIPE).
    fn flush(&mut self) -> bool {
        let Some(fd) = &self.fd else {
            return self.closed;
        };
        while !self.queue.is_empty() && !self.closed {
            let n = if self.socket {
                nix::sys::socket::send(
                    fd.as_raw_fd(),
                    &self.queue,
                    nix::sys::socket::MsgFlags::MSG_DONTWAIT
                        | nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
                )
            } else {
                nix::unistd::write(fd, &self.queue)
            };
            match n {
                Ok(n) => {
                    self.queue.drain(..n);
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(_) => {
                    self.closed = true;
                    self.queue.clear();
                }
            }
        }
        self.closed
    }
}
