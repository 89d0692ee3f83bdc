//! Probes and lifecycle hooks in flight, driven by the supervisor's poll loop.
//!
//! Nothing here blocks: a tcpSocket or httpGet action is a non-blocking socket the
//! supervisor polls, an exec action a child process whose exit the supervisor reaps.
//! Time limits, and sleep actions, are timers of the state machine. The supervisor lives in the pod's network namespace, so sockets
//! reach the pod's own loopback, where the kubelet would reach the pod's IP.
//!
//! Results follow the kubelet: exec succeeds on exit status 0, tcpSocket when the
//! connection is accepted, httpGet on a status of 200-399, grpc when the health
//! service answers SERVING; running out of time fails.

mod grpc;
mod hpack;

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

/// The User-Agent the kubelet sends (`kube-probe/<major>.<minor>`).
const USER_AGENT: &str = concat!("kube-probe/launcher-", env!("CARGO_PKG_VERSION"));

/// The most of a response read before giving up on finding its status line.
const MAX_RESPONSE: usize = 10 * 1024;

pub use crate::machine::Verdict;

/// One run of an action. Its time limit is the state machine's to keep.
pub struct Run {
    what: Work,
}

enum Work {
    /// A process in the container; the supervisor reaps it and calls `exited`.
    Exec { pid: i32, pidfd: OwnedFd },
    Connect {
        stream: TcpStream,
        addr: SocketAddr,
        next: Next,
    },
    Http {
        stream: TcpStream,
        request: Vec<u8>,
        sent: usize,
        response: Vec<u8>,
    },
    Grpc {
        stream: TcpStream,
        call: Box<grpc::Call>,
    },
}

/// What follows the connection.
enum Next {
    /// Nothing: tcpSocket succeeds once connected.
    Done,
    /// httpGet sends this request.
    Http(Vec<u8>),
    /// grpc makes this call.
    Grpc(Box<grpc::Call>),
}

impl Run {
    pub fn exec(pid: i32, pidfd: OwnedFd) -> Run {
        Run {
            what: Work::Exec { pid, pidfd },
        }
    }

    /// Starts connecting to `host:port`; with `http`, a GET of that path follows.
    pub fn connect(
        host: IpAddr,
        port: u16,
        http: Option<(&str, &[(String, String)])>,
    ) -> Result<Run, Verdict> {
        let next = match http {
            Some((path, headers)) => Next::Http(request(host, port, path, headers)),
            None => Next::Done,
        };
        Run::start(SocketAddr::new(host, port), next)
    }

    /// Starts a gRPC health check of `service` on `host:port`, with the probe's
    /// `timeout` as its deadline.
    pub fn grpc(host: IpAddr, port: u16, service: &str, timeout: Duration) -> Result<Run, Verdict> {
        let addr = SocketAddr::new(host, port);
        let call = grpc::Call::new(&addr.to_string(), service, timeout);
        Run::start(addr, Next::Grpc(Box::new(call))).map_err(|v| match v {
            Verdict::Failure(why) => Verdict::Failure(format!(
                "error: failed to connect service at \"{addr}\": {why}"
            )),
            v => v,
        })
    }

    fn start(addr: SocketAddr, next: Next) -> Result<Run, Verdict> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            None,
        )
        .and_then(|s| s.set_nonblocking(true).map(|()| s))
        .map_err(|e| Verdict::Failure(format!("socket: {e}")))?;
        match socket.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(refused(addr, &e)),
        }
        Ok(Run {
            what: Work::Connect {
                stream: socket.into(),
                addr,
                next,
            },
        })
    }

    /// The pid of an exec action, whose exit is this run's result.
    pub fn pid(&self) -> Option<i32> {
        match &self.what {
            Work::Exec { pid, .. } => Some(*pid),
            _ => None,
        }
    }

    /// The socket to poll and for what, if this run waits on one.
    pub fn interest(&self) -> Option<(BorrowedFd<'_>, nix::poll::PollFlags)> {
        use nix::poll::PollFlags;
        match &self.what {
            Work::Connect { stream, .. } => Some((stream.as_fd(), PollFlags::POLLOUT)),
            Work::Http {
                stream,
                request,
                sent,
                ..
            } if sent < &request.len() => Some((stream.as_fd(), PollFlags::POLLOUT)),
            Work::Http { stream, .. } => Some((stream.as_fd(), PollFlags::POLLIN)),
            Work::Grpc { stream, call } if call.writing() => {
                Some((stream.as_fd(), PollFlags::POLLIN | PollFlags::POLLOUT))
            }
            Work::Grpc { stream, .. } => Some((stream.as_fd(), PollFlags::POLLIN)),
            _ => None,
        }
    }

    /// Moves a socket run on after poll said its socket is ready; Some once decided.
    pub fn ready(&mut self) -> Option<Verdict> {
        match &mut self.what {
            Work::Connect { stream, addr, next } => {
                let grpc = matches!(next, Next::Grpc(_));
                match stream.take_error() {
                    Ok(None) => {}
                    Ok(Some(e)) | Err(e) if grpc => {
                        return Some(Verdict::Failure(format!(
                            "error: failed to connect service at \"{addr}\": {}",
                            dial_error(*addr, &e)
                        )))
                    }
                    Ok(Some(e)) | Err(e) => return Some(refused(*addr, &e)),
                }
                let stream = match stream.try_clone() {
                    Ok(s) => s,
                    Err(e) => return Some(Verdict::Failure(format!("socket: {e}"))),
                };
                self.what = match std::mem::replace(next, Next::Done) {
                    Next::Done => return Some(Verdict::Success),
                    Next::Http(request) => Work::Http {
                        stream,
                        request,
                        sent: 0,
                        response: Vec::new(),
                    },
                    Next::Grpc(call) => Work::Grpc { stream, call },
                };
                None
            }
            Work::Grpc { stream, call } => {
                let out = call.outgoing();
                if !out.is_empty() {
                    match stream.write(out) {
                        Ok(n) => {
                            out.drain(..n);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => {
                            return Some(Verdict::Failure(format!(
                                "error: health rpc probe failed: rpc error: code = Unavailable desc = connection error: {}",
                                describe(&e)
                            )))
                        }
                    }
                }
                let mut buf = [0u8; 4096];
                match stream.read(&mut buf) {
                    Ok(n) => call.incoming(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
                    Err(e) => Some(Verdict::Failure(format!(
                        "error: health rpc probe failed: rpc error: code = Unavailable desc = error reading from server: {}",
                        describe(&e)
                    ))),
                }
            }
            Work::Http {
                stream,
                request,
                sent,
                response,
            } => {
                if *sent < request.len() {
                    return match stream.write(&request[*sent..]) {
                        Ok(n) => {
                            *sent += n;
                            None
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
                        Err(e) => Some(Verdict::Failure(format!(
                            "HTTP probe failed: {}",
                            describe(&e)
                        ))),
                    };
                }
                let mut buf = [0u8; 4096];
                match stream.read(&mut buf) {
                    Ok(0) => http_result(response, true),
                    Ok(n) => {
                        response.extend_from_slice(&buf[..n]);
                        http_result(response, response.len() >= MAX_RESPONSE)
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
                    Err(e) => Some(Verdict::Failure(format!(
                        "HTTP probe failed: {}",
                        describe(&e)
                    ))),
                }
            }
            Work::Exec { .. } => None,
        }
    }

    /// The result of an exec action whose process exited with `code`.
    pub fn exited(code: i32) -> Verdict {
        if code == 0 {
            Verdict::Success
        } else {
            Verdict::Failure(format!("command exited with status {code}"))
        }
    }

    /// Stops whatever still runs (an exec's process); the result is not wanted.
    /// A run no longer wanted: the pidfd of its process, if it is an exec, for the
    /// caller to kill; a socket is just closed.
    pub fn into_pidfd(self) -> Option<OwnedFd> {
        match self.what {
            Work::Exec { pidfd, .. } => Some(pidfd),
            _ => None,
        }
    }
}

fn refused(addr: SocketAddr, e: &io::Error) -> Verdict {
    Verdict::Failure(dial_error(addr, e))
}

fn dial_error(addr: SocketAddr, e: &io::Error) -> String {
    format!("dial tcp {addr}: connect: {}", describe(e))
}

/// An OS error as Go prints it ("connection refused"), without Rust's "(os error N)".
fn describe(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_lowercase(),
        None => e.to_string(),
    }
}

/// The GET the kubelet sends; the Host header carries the port as Go's client does.
fn request(host: IpAddr, port: u16, path: &str, headers: &[(String, String)]) -> Vec<u8> {
    let authority = match host {
        IpAddr::V4(ip) => format!("{ip}:{port}"),
        IpAddr::V6(ip) => format!("[{ip}]:{port}"),
    };
    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    let mut r = format!("GET {path} HTTP/1.1\r\n");
    if !has("host") {
        r += &format!("Host: {authority}\r\n");
    }
    if !has("user-agent") {
        r += &format!("User-Agent: {USER_AGENT}\r\n");
    }
    if !has("accept") {
        r += "Accept: */*\r\n";
    }
    r += "Connection: close\r\n";
    for (k, v) in headers {
        r += &format!("{k}: {v}\r\n");
    }
    r += "\r\n";
    r.into_bytes()
}

/// The verdict on the response so far, None while the status line is still to come;
/// `complete`: nothing more will (the peer closed, or the response is too long).
fn http_result(response: &[u8], complete: bool) -> Option<Verdict> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut headers);
    let result = parsed.parse(response);
    Some(match (parsed.code, result) {
        (Some(code), _) if (200..400).contains(&code) => Verdict::Success,
        (Some(code), _) => Verdict::Failure(format!("HTTP probe failed with statuscode: {code}")),
        (None, Err(e)) => Verdict::Failure(format!("HTTP probe failed: malformed response: {e}")),
        (None, Ok(_)) if complete => {
            Verdict::Failure("HTTP probe failed: no status line in the response".into())
        }
        (None, Ok(_)) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_decide_as_soon_as_the_status_line_is_in() {
        let ok = Some(Verdict::Success);
        let failed = |code| {
            Some(Verdict::Failure(format!(
                "HTTP probe failed with statuscode: {code}"
            )))
        };
        assert_eq!(http_result(b"HTTP/1.1 200 OK\r\n", false), ok);
        assert_eq!(
            http_result(b"HTTP/1.0 302 Found\r\nLocation: /x\r\n\r\n", false),
            ok
        );
        assert_eq!(
            http_result(b"HTTP/1.1 500 Internal Server Error\r\n", false),
            failed(500)
        );
        assert_eq!(http_result(b"HTTP/1.1 199 Odd\r\n", false), failed(199));
        assert_eq!(http_result(b"HTTP/1.1 4", false), None);
        assert!(
            matches!(http_result(b"SSH-2.0-x\r\n", false), Some(Verdict::Failure(m)) if m.contains("malformed"))
        );
        assert!(
            matches!(http_result(b"", true), Some(Verdict::Failure(m)) if m.contains("no status line"))
        );
    }

    #[test]
    fn the_request_is_what_the_kubelet_sends() {
        let r = request(
            IpAddr::from([127, 0, 0, 1]),
            8080,
            "/healthz",
            &[("X-Custom".into(), "yes".into())],
        );
        let r = String::from_utf8(r).unwrap();
        assert!(r.starts_with(
            "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: kube-probe/"
        ));
        assert!(r.ends_with("Connection: close\r\nX-Custom: yes\r\n\r\n"));
        let own_host = request(
            IpAddr::from([127, 0, 0, 1]),
            80,
            "/",
            &[("host".into(), "example".into())],
        );
        assert!(!String::from_utf8(own_host).unwrap().contains("127.0.0.1"));
    }

    #[test]
    fn a_closed_port_fails_with_the_address() {
        // Port 1 on loopback: nothing listens there in a test environment.
        let outcome = match Run::connect(IpAddr::from([127, 0, 0, 1]), 1, None) {
            Err(o) => o,
            Ok(mut run) => loop {
                let (fd, flags) = run.interest().unwrap();
                let mut fds = [nix::poll::PollFd::new(fd, flags)];
                nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5000u16)).unwrap();
                if let Some(o) = run.ready() {
                    break o;
                }
            },
        };
        assert!(
            matches!(outcome, Verdict::Failure(m) if m.starts_with("dial tcp 127.0.0.1:1: connect:"))
        );
    }
}
