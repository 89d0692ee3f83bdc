//! The attach protocol between `launcher attach` and a pod's supervisor, over the
//! unix socket in the pod's state directory (0600: root's, as the pod is).
//!
//! Every message is a frame: a kind byte, a 4-byte big-endian length, the payload.
//! The client opens with Hello (the container, and whether it sends input); the
//! supervisor answers Ready (whether the container has a terminal) or Refused (why),
//! then streams the container's output as it comes (Stdout, Stderr) until the
//! container ends (Ended) or the client goes. The client sends Input, InputEnd (its
//! stdin is done: a `stdinOnce` container's stdin closes), Resize, and Detach (it
//! leaves the container running: a `stdinOnce` container's stdin stays open).
//!
//! `events -w` opens with Events instead: when the pod ends, the supervisor sends it
//! the pod's events (Event, one each, as events.json has them) and Ended, before it
//! removes the pod's state: a watcher that had not read the last events.json yet
//! still shows what it held.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

/// The most of one frame's payload either side accepts.
pub const MAX_FRAME: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Hello {
        container: String,
        stdin: bool,
    },
    Ready {
        tty: bool,
    },
    Refused(String),
    Input(Vec<u8>),
    InputEnd,
    Resize {
        rows: u16,
        cols: u16,
    },
    /// The session leaves the container running: its end is no end of input.
    Detach,
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Ended,
    /// The client watches the pod's events.
    Events,
    /// One of the pod's events, JSON.
    Event(Vec<u8>),
}

impl Frame {
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (kind, payload): (u8, std::borrow::Cow<[u8]>) = match self {
            Frame::Hello { container, stdin } => {
                let mut p = vec![u8::from(*stdin)];
                p.extend_from_slice(container.as_bytes());
                (b'H', p.into())
            }
            Frame::Ready { tty } => (b'R', vec![u8::from(*tty)].into()),
            Frame::Refused(why) => (b'N', why.as_bytes().into()),
            Frame::Input(bytes) => (b'i', bytes.as_slice().into()),
            Frame::InputEnd => (b'c', Vec::new().into()),
            Frame::Resize { rows, cols } => {
                let mut p = rows.to_be_bytes().to_vec();
                p.extend_from_slice(&cols.to_be_bytes());
                (b'w', p.into())
            }
            Frame::Detach => (b'd', Vec::new().into()),
            Frame::Stdout(bytes) => (b'o', bytes.as_slice().into()),
            Frame::Stderr(bytes) => (b'e', bytes.as_slice().into()),
            Frame::Ended => (b'x', Vec::new().into()),
            Frame::Events => (b'v', Vec::new().into()),
            Frame::Event(json) => (b'E', json.as_slice().into()),
        };
        out.push(kind);
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&payload);
    }

    /// The first whole frame in `buf`, taken out of it; None until one is in.
    pub fn decode(buf: &mut Vec<u8>) -> Result<Option<Frame>, String> {
        let Some(header) = buf.get(..5) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        if len > MAX_FRAME {
            return Err(format!("a frame of {len} bytes"));
        }
        if buf.len() < 5 + len {
            return Ok(None);
        }
        let kind = buf[0];
        let p: Vec<u8> = buf.drain(..5 + len).skip(5).collect();
        let frame = match (kind, p.as_slice()) {
            (b'H', [stdin, name @ ..]) => Frame::Hello {
                container: String::from_utf8_lossy(name).into_owned(),
                stdin: *stdin != 0,
            },
            (b'R', [tty]) => Frame::Ready { tty: *tty != 0 },
            (b'N', why) => Frame::Refused(String::from_utf8_lossy(why).into_owned()),
            (b'i', _) => Frame::Input(p),
            (b'c', []) => Frame::InputEnd,
            (b'w', [r0, r1, c0, c1]) => Frame::Resize {
                rows: u16::from_be_bytes([*r0, *r1]),
                cols: u16::from_be_bytes([*c0, *c1]),
            },
            (b'd', []) => Frame::Detach,
            (b'o', _) => Frame::Stdout(p),
            (b'e', _) => Frame::Stderr(p),
            (b'x', []) => Frame::Ended,
            (b'v', []) => Frame::Events,
            (b'E', _) => Frame::Event(p),
            (kind, _) => return Err(format!("an unknown frame {kind:#x}")),
        };
        Ok(Some(frame))
    }
}

/// A unix socket's path may be only 107 bytes long; a pod's state directory can be
/// longer (a deep --root). So the socket is named through an fd of that directory.
fn short_path(dir: &std::fs::File, name: &std::ffi::OsStr) -> std::path::PathBuf {
    Path::new(&format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name)
}

fn split(socket: &Path) -> io::Result<(std::fs::File, &std::ffi::OsStr)> {
    let (Some(dir), Some(name)) = (socket.parent(), socket.file_name()) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)?;
    Ok((dir, name))
}

use std::os::unix::fs::OpenOptionsExt;

/// The supervisor's listening socket at `socket` (replacing a stale one), 0600,
/// non-blocking.
pub fn listen(socket: &Path) -> io::Result<UnixListener> {
    let (dir, name) = split(socket)?;
    let path = short_path(&dir, name);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    // Made 0600 from the start: no moment in which another user could connect.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let listener = UnixListener::bind(&path);
    nix::sys::stat::umask(old);
    let listener = listener?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// `launcher attach`'s connection to the supervisor at `socket`.
pub fn connect(socket: &Path) -> io::Result<UnixStream> {
    let (dir, name) = split(socket)?;
    UnixStream::connect(short_path(&dir, name))
}

/// Sets a pseudo-terminal's size.
pub fn resize(master: BorrowedFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let _ = crate::sys::set_window_size(master.as_raw_fd(), &ws);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_go_through_whole_and_split_anywhere() {
        let frames = [
            Frame::Hello {
                container: "shell".into(),
                stdin: true,
            },
            Frame::Ready { tty: true },
            Frame::Refused("no".into()),
            Frame::Input(b"ls\r".to_vec()),
            Frame::InputEnd,
            Frame::Resize {
                rows: 40,
                cols: 120,
            },
            Frame::Stdout(b"out".to_vec()),
            Frame::Stderr(Vec::new()),
            Frame::Ended,
            Frame::Events,
            Frame::Event(b"{}".to_vec()),
        ];
        let mut wire = Vec::new();
        for f in &frames {
            f.encode(&mut wire);
        }
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for b in wire {
            buf.push(b);
            while let Some(f) = Frame::decode(&mut buf).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, frames);
        assert!(Frame::decode(&mut vec![b'?', 0, 0, 0, 0]).is_err());
        assert!(Frame::decode(&mut vec![b'o', 0xff, 0, 0, 0]).is_err());
    }
}
