//! `launcher attach`, the supervisor's side: the pod's attach socket, its sessions,
//! and the standard input it holds for each container with `stdin: true`.
//!
//! A session follows one container: its output from the moment it attached (a copy
//! of what goes to the log, raw), and, when it asked for input and the container
//! has it, what it types into the container's stdin (a pipe, or its terminal). Like
//! the rest of the loop, nothing blocks: a session that does not read its output
//! (more than [`MAX_QUEUED`] behind) is dropped; typed input waits in a bounded
//! queue, and the sessions' input is not read while it is full.
//!
//! The session of a `stdinOnce` container that sent input closes that input when it
//! ends, unless it detached: the container reads EOF (a terminal gets ^D), until it
//! restarts.

use crate::attach::Frame;
use crate::spec::ContainerSpec;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};

/// Output a session may fall behind by before it is dropped.
const MAX_QUEUED: usize = 4 << 20;
/// Input waiting for a container that does not read; beyond it, sessions wait.
const MAX_INPUT: usize = 64 * 1024;
/// Sessions at once, per pod.
const MAX_SESSIONS: usize = 32;

/// A container's standard input, held open while it runs.
pub struct Input {
    /// The write end of its stdin pipe (gone once closed), or its terminal's
    /// multiplexer end.
    fd: Option<OwnedFd>,
    tty: bool,
    once: bool,
    queue: Vec<u8>,
    /// No more input (stdinOnce after a session, or the container stopped reading).
    closed: bool,
}

impl Input {
    /// `fd` is non-blocking.
    pub fn new(fd: OwnedFd, c: &ContainerSpec) -> Input {
        Input {
            fd: Some(fd),
            tty: c.tty,
            once: c.stdin_once,
            queue: Vec::new(),
            closed: false,
        }
    }

    /// The fd to poll for room, while input waits.
    pub fn waiting(&self) -> Option<BorrowedFd<'_>> {
        let fd = self.fd.as_ref()?;
        (!self.queue.is_empty()).then(|| fd.as_fd())
    }

    /// Writes what waits, as far as the container takes it.
    pub fn flush(&mut self) {
        while let (false, Some(fd)) = (self.queue.is_empty(), &self.fd) {
            match crate::sys::write(fd.as_raw_fd(), &self.queue) {
                Ok(n) => {
                    self.queue.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                // EPIPE: the container closed its stdin; nothing more goes in.
                Err(_) => {
                    self.queue.clear();
                    self.closed = true;
                }
            }
        }
        if self.queue.is_empty() && self.closed && !self.tty {
            // Nothing more will come: the pipe's write end goes, the reader sees EOF.
            self.fd = None;
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        if !self.closed && self.fd.is_some() {
            self.queue.extend_from_slice(bytes);
            self.flush();
        }
    }

    pub fn full(&self) -> bool {
        self.queue.len() >= MAX_INPUT
    }

    /// No more input: a pipe's reader gets EOF once what waits is written; a
    /// terminal's gets ^D (its end of file, at the start of a line).
    fn close(&mut self) {
        if self.closed {
            return;
        }
        if self.tty {
            self.queue.push(0x04);
        }
        self.closed = true;
        self.flush();
    }

    fn resize(&self, rows: u16, cols: u16) {
        if let (true, Some(fd)) = (self.tty, &self.fd) {
            crate::attach::resize(fd.as_fd(), rows, cols);
        }
    }
}

struct Session {
    /// Stable while others come and go (poll's entries name sessions by it).
    id: u64,
    stream: UnixStream,
    /// The container, once the session said which.
    c: Option<usize>,
    /// Watches the pod's events (`events -w`), told them when the pod ends.
    events: bool,
    stdin: bool,
    read: Vec<u8>,
    out: Vec<u8>,
    /// Said its last (Refused, Ended): closes once that is written.
    ending: bool,
    gone: bool,
}

/// The attach socket and its sessions.
pub struct Sessions {
    listener: Option<UnixListener>,
    sessions: Vec<Session>,
    next_id: u64,
}

/// What a poll entry of the sessions stands for.
#[derive(Clone, Copy)]
pub enum Source {
    Listener,
    /// A session by its id: output sent meanwhile may have dropped others.
    Session(u64),
}

impl Sessions {
    /// Without a listener (it could not be made), `attach` finds no pod to attach to.
    pub fn new(listener: Option<UnixListener>) -> Sessions {
        Sessions {
            listener,
            sessions: Vec::new(),
            next_id: 0,
        }
    }

    /// Is some session following container `c`'s output?
    pub fn follows(&self, c: usize) -> bool {
        self.sessions.iter().any(|s| s.c == Some(c) && !s.ending)
    }

    /// The fds to poll: the listener, each session (for its input unless `blocked`
    /// says its container's input is full, for room while output waits).
    pub fn interest(
        &self,
        blocked: impl Fn(usize) -> bool,
    ) -> Vec<(Source, BorrowedFd<'_>, nix::poll::PollFlags)> {
        use nix::poll::PollFlags;
        let mut fds = Vec::new();
        if let Some(l) = &self.listener {
            fds.push((Source::Listener, l.as_fd(), PollFlags::POLLIN));
        }
        for s in &self.sessions {
            let mut flags = PollFlags::empty();
            if !s.ending && !s.c.is_some_and(&blocked) {
                flags |= PollFlags::POLLIN;
            }
            if !s.out.is_empty() {
                flags |= PollFlags::POLLOUT;
            }
            fds.push((Source::Session(s.id), s.stream.as_fd(), flags));
        }
        fds
    }

    /// New connections.
    pub fn accept(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        while let Ok((stream, _)) = listener.accept() {
            if self.sessions.len() >= MAX_SESSIONS || stream.set_nonblocking(true).is_err() {
                continue;
            }
            self.next_id += 1;
            self.sessions.push(Session {
                id: self.next_id,
                stream,
                c: None,
                events: false,
                stdin: false,
                read: Vec::new(),
                out: Vec::new(),
                ending: false,
                gone: false,
            });
        }
    }

    /// Session `id` is ready: what it sent is acted on, what waits for it written.
    /// `containers` are the pod's (init containers first), `inputs` their stdin,
    /// `running` whether each runs now. A session gone meanwhile is no more.
    pub fn ready(
        &mut self,
        id: u64,
        containers: &[&ContainerSpec],
        inputs: &mut [Option<Input>],
        running: impl Fn(usize) -> bool,
    ) {
        let Some(s) = self.sessions.iter_mut().find(|s| s.id == id) else {
            return;
        };
        let mut buf = [0u8; 8192];
        loop {
            match s.stream.read(&mut buf) {
                Ok(0) => {
                    s.gone = true;
                    break;
                }
                Ok(n) => s.read.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    s.gone = true;
                    break;
                }
            }
            if s.read.len() > crate::attach::MAX_FRAME * 2 {
                break;
            }
        }
        loop {
            let frame = match Frame::decode(&mut s.read) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => {
                    s.gone = true;
                    break;
                }
            };
            match (frame, s.c) {
                (Frame::Hello { container, stdin }, None) => {
                    let found = containers.iter().position(|c| c.name == container);
                    let refusal = match found {
                        None => Some(format!("container {container:?} not found")),
                        Some(c) if !running(c) => {
                            Some(format!("container {container:?} is not running"))
                        }
                        Some(c) if stdin && !containers[c].stdin => Some(format!(
                            "container {container:?} has no stdin to attach to (stdin: true in its spec)"
                        )),
                        Some(c) if stdin && !inputs[c].as_ref().is_some_and(|i| !i.closed) => {
                            Some(format!(
                                "the stdin of container {container:?} is closed (stdinOnce: it opens again when the container restarts)"
                            ))
                        }
                        Some(_) => None,
                    };
                    match (refusal, found) {
                        (None, Some(c)) => {
                            s.c = Some(c);
                            s.stdin = stdin;
                            Frame::Ready {
                                tty: containers[c].tty,
                            }
                            .encode(&mut s.out);
                        }
                        (why, _) => {
                            Frame::Refused(why.unwrap_or_default()).encode(&mut s.out);
                            s.ending = true;
                        }
                    }
                }
                (Frame::Input(bytes), Some(c)) if s.stdin => {
                    if let Some(input) = &mut inputs[c] {
                        input.push(&bytes);
                    }
                }
                (Frame::InputEnd, Some(c)) if s.stdin => {
                    s.stdin = false;
                    if let Some(input) = inputs[c].as_mut().filter(|i| i.once) {
                        input.close();
                    }
                }
                (Frame::Events, None) if !s.events => s.events = true,
                (Frame::Detach, Some(_)) => s.stdin = false,
                (Frame::Resize { rows, cols }, Some(c)) => {
                    if let Some(input) = &inputs[c] {
                        input.resize(rows, cols);
                    }
                }
                _ => s.gone = true,
            }
        }
        if s.gone {
            // The end of a session with input closes a stdinOnce container's.
            if let (Some(c), true) = (s.c, s.stdin) {
                if let Some(input) = inputs[c].as_mut().filter(|i| i.once) {
                    input.close();
                }
            }
        } else {
            write_out(s);
        }
        self.sessions.retain(|s| !s.gone);
    }

    /// Container `c`'s output, to the sessions that follow it.
    pub fn output(&mut self, c: usize, stdout: bool, bytes: &[u8]) {
        for s in self
            .sessions
            .iter_mut()
            .filter(|s| s.c == Some(c) && !s.ending)
        {
            match stdout {
                true => Frame::Stdout(bytes.to_vec()).encode(&mut s.out),
                false => Frame::Stderr(bytes.to_vec()).encode(&mut s.out),
            }
            write_out(s);
            if s.out.len() > MAX_QUEUED {
                s.gone = true;
            }
        }
        self.sessions.retain(|s| !s.gone);
    }

    /// Container `c` ended: its sessions are told, and close.
    pub fn ended(&mut self, c: usize) {
        for s in self
            .sessions
            .iter_mut()
            .filter(|s| s.c == Some(c) && !s.ending)
        {
            Frame::Ended.encode(&mut s.out);
            s.ending = true;
            write_out(s);
        }
        self.sessions.retain(|s| !s.gone);
    }

    /// The pod ended: every session is told, as far as it reads now, the watchers of
    /// its events what they are (`events`, the last ones); the socket goes.
    pub fn close(&mut self, socket: &std::path::Path, events: &[crate::events::Event]) {
        for s in &mut self.sessions {
            if s.events {
                for e in events {
                    if let Ok(json) = serde_json::to_vec(e) {
                        Frame::Event(json).encode(&mut s.out);
                    }
                }
            }
            if !s.ending {
                Frame::Ended.encode(&mut s.out);
            }
            let _ = s.stream.set_nonblocking(false);
            let _ = s
                .stream
                .set_write_timeout(Some(std::time::Duration::from_millis(200)));
            let _ = s.stream.write_all(&s.out);
        }
        self.sessions.clear();
        if self.listener.take().is_some() {
            let _ = std::fs::remove_file(socket);
        }
    }
}

/// Writes what waits for session `s`; a session that said its last and has nothing
/// more waiting, or whose peer is gone, is done.
fn write_out(s: &mut Session) {
    while !s.out.is_empty() {
        match s.stream.write(&s.out) {
            Ok(n) => {
                s.out.drain(..n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(_) => {
                s.gone = true;
                return;
            }
        }
    }
    if s.ending {
        s.gone = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(name: &str, stdin: bool, once: bool) -> ContainerSpec {
        ContainerSpec {
            name: name.into(),
            stdin,
            stdin_once: once,
            ..Default::default()
        }
    }

    /// A session on one end of a socket pair, its client the other end.
    fn session(sessions: &mut Sessions) -> UnixStream {
        let (server, client) = UnixStream::pair().unwrap();
        server.set_nonblocking(true).unwrap();
        sessions.next_id += 1;
        sessions.sessions.push(Session {
            id: sessions.next_id,
            stream: server,
            c: None,
            events: false,
            stdin: false,
            read: Vec::new(),
            out: Vec::new(),
            ending: false,
            gone: false,
        });
        client
    }

    fn send(client: &mut UnixStream, frame: Frame) {
        let mut out = Vec::new();
        frame.encode(&mut out);
        client.write_all(&out).unwrap();
    }

    fn receive(client: &mut UnixStream) -> Frame {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            if let Some(f) = Frame::decode(&mut buf).unwrap() {
                return f;
            }
            client.read_exact(&mut byte).unwrap();
            buf.push(byte[0]);
        }
    }

    #[test]
    fn input_reaches_the_container_and_stdin_once_closes_with_the_session() {
        let specs = [
            container("once", true, true),
            container("plain", false, false),
        ];
        let containers: Vec<&ContainerSpec> = specs.iter().collect();
        let (r, w) = crate::sys::pipe().unwrap();
        nix::fcntl::fcntl(
            &w,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .unwrap();
        let mut inputs = vec![Some(Input::new(w, &specs[0])), None];
        let mut sessions = Sessions::new(None);
        let mut client = session(&mut sessions);
        send(
            &mut client,
            Frame::Hello {
                container: "once".into(),
                stdin: true,
            },
        );
        send(&mut client, Frame::Input(b"hello\n".to_vec()));
        sessions.ready(sessions.next_id, &containers, &mut inputs, |_| true);
        assert_eq!(receive(&mut client), Frame::Ready { tty: false });
        assert!(sessions.follows(0) && !sessions.follows(1));
        sessions.output(0, true, b"out");
        assert_eq!(receive(&mut client), Frame::Stdout(b"out".to_vec()));
        // The session goes: the container reads what was typed, then EOF.
        drop(client);
        sessions.ready(sessions.next_id, &containers, &mut inputs, |_| true);
        assert!(!sessions.follows(0));
        let mut got = String::new();
        std::fs::File::from(r).read_to_string(&mut got).unwrap();
        assert_eq!(got, "hello\n");
        // The next session cannot send input; one to a container without stdin neither.
        for (name, want) in [
            ("once", "the stdin of container \"once\" is closed"),
            ("plain", "container \"plain\" has no stdin to attach to"),
            ("nosuch", "container \"nosuch\" not found"),
        ] {
            let mut client = session(&mut sessions);
            send(
                &mut client,
                Frame::Hello {
                    container: name.into(),
                    stdin: true,
                },
            );
            sessions.ready(sessions.next_id, &containers, &mut inputs, |_| true);
            match receive(&mut client) {
                Frame::Refused(why) => assert!(why.starts_with(want), "{why}"),
                f => panic!("{f:?}"),
            }
        }
        assert!(sessions.sessions.is_empty());
    }

    /// A watcher of the pod's events hears nothing of its containers, and every event
    /// then Ended when the pod ends; an attached session only Ended.
    #[test]
    fn event_watchers_are_told_the_last_events_when_the_pod_ends() {
        let specs = [container("a", false, false)];
        let containers: Vec<&ContainerSpec> = specs.iter().collect();
        let mut inputs = vec![None];
        let mut sessions = Sessions::new(None);
        let mut watcher = session(&mut sessions);
        send(&mut watcher, Frame::Events);
        sessions.ready(sessions.next_id, &containers, &mut inputs, |_| true);
        let mut attached = session(&mut sessions);
        let hello = Frame::Hello {
            container: "a".into(),
            stdin: false,
        };
        send(&mut attached, hello);
        sessions.ready(sessions.next_id, &containers, &mut inputs, |_| true);
        assert_eq!(receive(&mut attached), Frame::Ready { tty: false });
        sessions.output(0, true, b"out");
        assert_eq!(receive(&mut attached), Frame::Stdout(b"out".to_vec()));
        let event = |reason: &str| crate::events::Event {
            kind: "Normal".into(),
            reason: reason.into(),
            message: format!("{reason} container a"),
            field_path: Some("spec.containers{a}".into()),
            source: "kubelet".into(),
            count: 1,
            first_timestamp: "t".into(),
            last_timestamp: "t".into(),
        };
        let events = [event("Started"), event("Killing")];
        sessions.close(std::path::Path::new(""), &events);
        for e in &events {
            match receive(&mut watcher) {
                Frame::Event(json) => {
                    let got: crate::events::Event = serde_json::from_slice(&json).unwrap();
                    assert_eq!(&got, e);
                }
                f => panic!("{f:?}"),
            }
        }
        assert_eq!(receive(&mut watcher), Frame::Ended);
        assert_eq!(receive(&mut attached), Frame::Ended);
    }

    /// Output to a session whose client is gone drops it; the others stay reachable
    /// by their ids (by position, the next one's would now name another or none).
    #[test]
    fn a_session_dropped_by_output_leaves_the_others_reachable() {
        let specs = [container("a", false, false)];
        let containers: Vec<&ContainerSpec> = specs.iter().collect();
        let mut inputs = vec![None];
        let mut sessions = Sessions::new(None);
        let mut clients = Vec::new();
        for _ in 0..2 {
            let mut client = session(&mut sessions);
            send(
                &mut client,
                Frame::Hello {
                    container: "a".into(),
                    stdin: false,
                },
            );
            sessions.ready(sessions.next_id, &containers, &mut inputs, |_| true);
            assert_eq!(receive(&mut client), Frame::Ready { tty: false });
            clients.push(client);
        }
        let (first, second) = (sessions.sessions[0].id, sessions.sessions[1].id);
        drop(clients.remove(0));
        sessions.output(0, true, b"x");
        assert_eq!(sessions.sessions.len(), 1);
        sessions.ready(first, &containers, &mut inputs, |_| true);
        sessions.ready(second, &containers, &mut inputs, |_| true);
        assert_eq!(receive(&mut clients[0]), Frame::Stdout(b"x".to_vec()));
    }
}
