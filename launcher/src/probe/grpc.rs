//! A gRPC health check (`grpc.health.v1.Health/Check`) over cleartext HTTP/2, as the
//! kubelet's gRPC probe makes it: one connection, one unary call, the kubelet's words
//! for every outcome. The supervisor drives it without blocking: `outgoing` is what
//! to write next, `incoming` takes what was read and says when the call is decided.

use super::hpack;
use crate::machine::Verdict;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const CONTINUATION: u8 = 9;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The call's stream: a client's first.
const STREAM: u32 = 1;
/// SETTINGS_MAX_FRAME_SIZE's default, which this client never raises.
const MAX_FRAME: usize = 16_384;
/// The most of a response body kept: a HealthCheckResponse is a few bytes.
const MAX_BODY: usize = 64 * 1024;

/// gRPC's status codes by number, as grpc-go names them.
const CODES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];
const UNIMPLEMENTED: u32 = 12;
const DEADLINE_EXCEEDED: u32 = 4;

/// One health check in flight on a connected socket.
pub struct Call {
    out: Vec<u8>,
    input: Vec<u8>,
    hpack: hpack::Decoder,
    /// A header block still waiting for its CONTINUATION frames, and whether the
    /// HEADERS frame that began it ended the stream.
    partial: Option<(Vec<u8>, bool)>,
    status: Option<String>,
    body: Vec<u8>,
    grpc_status: Option<String>,
    grpc_message: String,
    timeout: std::time::Duration,
}

impl Call {
    /// The call for `service` at `authority` (`host:port`), with the probe's timeout
    /// sent as the call's deadline (grpc-timeout) as a Go client sends it.
    pub fn new(authority: &str, service: &str, timeout: std::time::Duration) -> Call {
        let mut out = PREFACE.to_vec();
        frame(&mut out, SETTINGS, 0, 0, &[0, 2, 0, 0, 0, 0]); // ENABLE_PUSH = 0
        let mut block = vec![0x83, 0x86]; // :method POST, :scheme http (static 3, 6)
        literal(&mut block, 4, "/grpc.health.v1.Health/Check"); // :path
        literal(&mut block, 1, authority); // :authority
        literal(&mut block, 31, "application/grpc"); // content-type
        literal(&mut block, 58, super::USER_AGENT); // user-agent
        block.push(0);
        string(&mut block, "te");
        string(&mut block, "trailers");
        block.push(0);
        string(&mut block, "grpc-timeout");
        string(&mut block, &format!("{}m", timeout.as_millis().max(1)));
        frame(&mut out, HEADERS, END_HEADERS, STREAM, &block);
        // A HealthCheckRequest: field 1 (service), a length-delimited string, left
        // out when empty as proto3 does; behind gRPC's 5-byte message prefix.
        let mut message = Vec::new();
        if !service.is_empty() {
            message.push(0x0a);
            varint(&mut message, service.len() as u64);
            message.extend_from_slice(service.as_bytes());
        }
        let mut body = vec![0];
        body.extend_from_slice(&(message.len() as u32).to_be_bytes());
        body.extend_from_slice(&message);
        frame(&mut out, DATA, END_STREAM, STREAM, &body);
        Call {
            out,
            input: Vec::new(),
            hpack: hpack::Decoder::default(),
            partial: None,
            status: None,
            body: Vec::new(),
            grpc_status: None,
            grpc_message: String::new(),
            timeout,
        }
    }

    /// Is there something to write?
    pub fn writing(&self) -> bool {
        !self.out.is_empty()
    }

    /// What is still to be written.
    pub fn outgoing(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Takes bytes read from the server (empty: it closed the connection); Some
    /// once the call is decided.
    pub fn incoming(&mut self, bytes: &[u8]) -> Option<Verdict> {
        if bytes.is_empty() {
            return Some(failed(rpc_error(
                "Unavailable",
                "error reading from server: EOF",
            )));
        }
        self.input.extend_from_slice(bytes);
        loop {
            let header = self.input.get(..9)?;
            let len =
                usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
            if len > MAX_FRAME {
                // What an HTTP/1 server's answer to the preface looks like, too.
                return Some(failed(rpc_error(
                    "Unavailable",
                    "connection error: desc = \"error reading server preface: http2: frame too large\"",
                )));
            }
            if self.input.len() < 9 + len {
                return None;
            }
            let (kind, flags) = (header[3], header[4]);
            let stream =
                u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
            let payload: Vec<u8> = self.input[9..9 + len].to_vec();
            self.input.drain(..9 + len);
            if let Some(verdict) = self.frame(kind, flags, stream, &payload) {
                return Some(verdict);
            }
        }
    }

    /// One frame from the server.
    fn frame(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Option<Verdict> {
        match kind {
            SETTINGS if flags & ACK == 0 => frame(&mut self.out, SETTINGS, ACK, 0, &[]),
            PING if flags & ACK == 0 => frame(&mut self.out, PING, ACK, 0, payload),
            // A GOAWAY that leaves the call out; one that lets it finish changes nothing.
            GOAWAY if payload.get(..4).map_or(0, be32) & 0x7fff_ffff < STREAM => {
                let code = payload.get(4..8).map_or(0, be32);
                return Some(failed(rpc_error(
                    "Unavailable",
                    &format!("closing transport due to: connection error: desc = \"error reading from server: EOF\", received prior goaway: code: {}", h2_error(code)),
                )));
            }
            RST_STREAM if stream == STREAM => {
                let code = payload.get(..4).map_or(0, be32);
                return Some(failed(rpc_error(
                    "Internal",
                    &format!(
                        "stream terminated by RST_STREAM with error code: {}",
                        h2_error(code)
                    ),
                )));
            }
            HEADERS if stream == STREAM => {
                let Some(mut block) = unpad(flags, payload) else {
                    return Some(protocol("a malformed HEADERS frame"));
                };
                if flags & PRIORITY != 0 {
                    block = block.get(5..).unwrap_or_default();
                }
                let end = flags & END_STREAM != 0;
                if flags & END_HEADERS == 0 {
                    self.partial = Some((block.to_vec(), end));
                    return None;
                }
                return self.headers(block, end);
            }
            CONTINUATION if stream == STREAM => {
                let Some((mut block, end)) = self.partial.take() else {
                    return Some(protocol("CONTINUATION without HEADERS"));
                };
                block.extend_from_slice(payload);
                if flags & END_HEADERS == 0 {
                    self.partial = Some((block, end));
                    return None;
                }
                return self.headers(&block, end);
            }
            DATA if stream == STREAM => {
                let Some(data) = unpad(flags, payload) else {
                    return Some(protocol("a malformed DATA frame"));
                };
                if self.body.len() + data.len() > MAX_BODY {
                    return Some(failed(rpc_error(
                        "ResourceExhausted",
                        "received message larger than max",
                    )));
                }
                self.body.extend_from_slice(data);
                if flags & END_STREAM != 0 {
                    return Some(self.result());
                }
            }
            // WINDOW_UPDATE, PRIORITY, acknowledgements, other streams: nothing to do
            // for one small call (a response fits the default windows).
            _ => {}
        }
        None
    }

    /// A complete header block: the response's headers, or its trailers.
    fn headers(&mut self, block: &[u8], end: bool) -> Option<Verdict> {
        let fields = match self.hpack.decode(block) {
            Ok(f) => f,
            Err(hpack::Malformed(why)) => return Some(protocol(why)),
        };
        for (name, value) in fields {
            match name.as_str() {
                ":status" => self.status = Some(value),
                "grpc-status" => self.grpc_status = Some(value),
                "grpc-message" => self.grpc_message = percent_decode(&value),
                _ => {}
            }
        }
        end.then(|| self.result())
    }

    /// The verdict once the server ended the stream.
    fn result(&self) -> Verdict {
        let timeout = crate::quantity::format_duration(self.timeout);
        if let Some(status) = self.status.as_deref().filter(|s| *s != "200") {
            // grpc-go's mapping of HTTP statuses to codes.
            let code = match status {
                "400" => "Internal",
                "401" => "Unauthenticated",
                "403" => "PermissionDenied",
                "404" => "Unimplemented",
                "429" | "502" | "503" | "504" => "Unavailable",
                _ => "Unknown",
            };
            let desc = format!("unexpected HTTP status code received from server: {status}");
            return if code == "Unimplemented" {
                unimplemented(&desc)
            } else {
                failed(rpc_error(code, &desc))
            };
        }
        let Some(code) = self.grpc_status.as_deref() else {
            return failed(rpc_error(
                "Internal",
                "server closed the stream without sending trailers",
            ));
        };
        match code.parse::<u32>() {
            Ok(0) => {}
            Ok(UNIMPLEMENTED) => return unimplemented(&self.grpc_message),
            Ok(DEADLINE_EXCEEDED) => {
                return Verdict::Failure(format!(
                    "timeout: health rpc did not complete within {timeout}"
                ))
            }
            Ok(n) => {
                let name = CODES
                    .get(n as usize)
                    .map_or(format!("Code({n})"), |c| c.to_string());
                return failed(rpc_error(&name, &self.grpc_message));
            }
            Err(_) => {
                return failed(rpc_error(
                    "Unknown",
                    &format!("transport: malformed grpc-status: {code:?}"),
                ))
            }
        }
        match health_status(&self.body) {
            Some(1) => Verdict::Success,
            Some(n) => {
                let name = match n {
                    0 => "UNKNOWN".to_string(),
                    2 => "NOT_SERVING".to_string(),
                    3 => "SERVICE_UNKNOWN".to_string(),
                    n => n.to_string(),
                };
                Verdict::Failure(format!("service unhealthy (responded with {name:?})"))
            }
            None => failed(rpc_error(
                "Internal",
                "grpc: failed to unmarshal the received message",
            )),
        }
    }
}

/// The kubelet's words for a call that failed (not a failed check).
fn failed(error: String) -> Verdict {
    Verdict::Failure(format!("error: health rpc probe failed: {error}"))
}

fn unimplemented(message: &str) -> Verdict {
    Verdict::Failure(format!(
        "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): {message}"
    ))
}

fn protocol(why: &str) -> Verdict {
    failed(rpc_error(
        "Internal",
        &format!("connection error: desc = \"{why}\""),
    ))
}

/// An error as grpc-go's status prints it.
fn rpc_error(code: &str, desc: &str) -> String {
    format!("rpc error: code = {code} desc = {desc}")
}

/// The status in a HealthCheckResponse behind its message prefix; proto3 leaves a
/// zero (UNKNOWN) out, so an empty message is UNKNOWN. None if it is no message.
fn health_status(body: &[u8]) -> Option<u64> {
    let (prefix, mut message) = (body.get(..5)?, body.get(5..)?);
    if prefix[0] != 0 || be32(&prefix[1..5]) as usize != message.len() {
        return None;
    }
    let mut status = 0;
    while !message.is_empty() {
        let key = read_varint(&mut message)?;
        match key & 7 {
            0 => {
                let v = read_varint(&mut message)?;
                if key >> 3 == 1 {
                    status = v;
                }
            }
            1 => message = message.get(8..)?,
            2 => {
                let n = usize::try_from(read_varint(&mut message)?).ok()?;
                message = message.get(n..)?;
            }
            5 => message = message.get(4..)?,
            _ => return None,
        }
    }
    Some(status)
}

fn read_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// HTTP/2's error codes by number, as Go's http2 package names them.
fn h2_error(code: u32) -> String {
    const NAMES: [&str; 14] = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];
    NAMES.get(code as usize).map_or_else(
        || format!("unknown error code 0x{code:x}"),
        |n| n.to_string(),
    )
}

/// A frame's payload without its padding; None if the padding does not fit.
fn unpad(flags: u8, payload: &[u8]) -> Option<&[u8]> {
    if flags & PADDED == 0 {
        return Some(payload);
    }
    let (&pad, rest) = payload.split_first()?;
    rest.get(..rest.len().checked_sub(usize::from(pad))?)
}

/// grpc-message is percent-encoded (the gRPC over HTTP/2 specification).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// A literal field without indexing whose name is static entry `index` (4-bit prefix).
fn literal(block: &mut Vec<u8>, index: u8, value: &str) {
    if index < 15 {
        block.push(index);
    } else {
        block.extend_from_slice(&[15, index - 15]);
    }
    string(block, value);
}

/// A string literal, not Huffman coded (7-bit length prefix).
fn string(block: &mut Vec<u8>, s: &str) {
    let mut n = s.len();
    if n < 127 {
        block.push(n as u8);
    } else {
        block.push(127);
        n -= 127;
        while n >= 0x80 {
            block.push((n as u8) | 0x80);
            n >>= 7;
        }
        block.push(n as u8);
    }
    block.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn call() -> Call {
        Call::new("127.0.0.1:5000", "", Duration::from_secs(1))
    }

    /// The response a server sends: headers, a message with `status`, trailers.
    fn response(status: u8, grpc_status: &str) -> Vec<u8> {
        let mut out = Vec::new();
        frame(&mut out, SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]);
        let mut headers = vec![0x88]; // :status 200
        literal(&mut headers, 31, "application/grpc");
        frame(&mut out, HEADERS, END_HEADERS, STREAM, &headers);
        let message: &[u8] = if status == 0 { &[] } else { &[0x08, status] };
        let mut body = vec![0, 0, 0, 0, message.len() as u8];
        body.extend_from_slice(message);
        frame(&mut out, DATA, 0, STREAM, &body);
        let mut trailers = vec![0];
        string(&mut trailers, "grpc-status");
        string(&mut trailers, grpc_status);
        frame(
            &mut out,
            HEADERS,
            END_HEADERS | END_STREAM,
            STREAM,
            &trailers,
        );
        out
    }

    #[test]
    fn the_request_is_one_unary_call_on_stream_1() {
        let mut c = Call::new("127.0.0.1:5000", "db", Duration::from_secs(2));
        let out = c.outgoing().clone();
        assert!(out.starts_with(PREFACE));
        let mut rest = &out[PREFACE.len()..];
        let mut frames = Vec::new();
        while !rest.is_empty() {
            let len = usize::from(rest[1]) << 8 | usize::from(rest[2]);
            frames.push((rest[3], rest[4], rest[9..9 + len].to_vec()));
            rest = &rest[9 + len..];
        }
        assert_eq!(frames[0].0, SETTINGS);
        assert_eq!((frames[1].0, frames[1].1), (HEADERS, END_HEADERS));
        let fields = hpack::Decoder::default().decode(&frames[1].2).unwrap();
        let get = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get(":method"), Some("POST"));
        assert_eq!(get(":path"), Some("/grpc.health.v1.Health/Check"));
        assert_eq!(get(":authority"), Some("127.0.0.1:5000"));
        assert_eq!(get("content-type"), Some("application/grpc"));
        assert_eq!(get("te"), Some("trailers"));
        assert_eq!(get("grpc-timeout"), Some("2000m"));
        assert!(get("user-agent").unwrap().starts_with("kube-probe/"));
        assert_eq!((frames[2].0, frames[2].1), (DATA, END_STREAM));
        assert_eq!(frames[2].2, b"\0\0\0\0\x04\x0a\x02db");
    }

    #[test]
    fn serving_succeeds_and_other_statuses_fail_with_the_kubelets_words() {
        let mut c = call();
        // Fed a byte at a time: frames split anywhere.
        let bytes = response(1, "0");
        let (last, head) = bytes.split_last().unwrap();
        for b in head {
            assert_eq!(c.incoming(&[*b]), None);
        }
        assert_eq!(c.incoming(&[*last]), Some(Verdict::Success));
        // The server's SETTINGS are acknowledged.
        assert!(c
            .outgoing()
            .ends_with(&[0, 0, 0, SETTINGS, ACK, 0, 0, 0, 0]));
        let unhealthy = |m: &str| Some(Verdict::Failure(m.to_string()));
        assert_eq!(
            call().incoming(&response(2, "0")),
            unhealthy("service unhealthy (responded with \"NOT_SERVING\")")
        );
        assert_eq!(
            call().incoming(&response(0, "0")),
            unhealthy("service unhealthy (responded with \"UNKNOWN\")")
        );
        assert_eq!(
            call().incoming(&response(1, "5")),
            unhealthy("error: health rpc probe failed: rpc error: code = NotFound desc = ")
        );
        assert_eq!(
            call().incoming(&response(1, "4")),
            unhealthy("timeout: health rpc did not complete within 1s")
        );
    }

    #[test]
    fn a_trailers_only_answer_and_a_server_without_the_health_service() {
        let mut out = Vec::new();
        let mut block = vec![0x88];
        for (n, v) in [
            ("grpc-status", "12"),
            ("grpc-message", "Method not found%21"),
        ] {
            block.push(0);
            string(&mut block, n);
            string(&mut block, v);
        }
        frame(&mut out, HEADERS, END_HEADERS | END_STREAM, STREAM, &block);
        assert_eq!(
            call().incoming(&out),
            Some(Verdict::Failure(
                "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): Method not found!".into()
            ))
        );
    }

    #[test]
    fn what_is_not_a_grpc_server_fails_plainly() {
        let http1 = b"HTTP/1.1 400 Bad Request\r\n\r\n";
        assert!(matches!(call().incoming(http1),
            Some(Verdict::Failure(m)) if m.contains("code = Unavailable") && m.contains("frame too large")));
        assert!(matches!(call().incoming(b""),
            Some(Verdict::Failure(m)) if m.ends_with("error reading from server: EOF")));
        let mut rst = Vec::new();
        frame(&mut rst, RST_STREAM, 0, STREAM, &[0, 0, 0, 7]);
        assert!(matches!(call().incoming(&rst),
            Some(Verdict::Failure(m)) if m.ends_with("RST_STREAM with error code: REFUSED_STREAM")));
        let mut not_found = Vec::new();
        frame(
            &mut not_found,
            HEADERS,
            END_HEADERS | END_STREAM,
            STREAM,
            &[0x8d],
        );
        assert!(matches!(call().incoming(&not_found),
            Some(Verdict::Failure(m)) if m.contains("does not implement") && m.ends_with("status code received from server: 404")));
        assert_eq!(health_status(b"\0\0\0\0\x02\x08"), None);
        assert_eq!(health_status(b"\0\0\0\0\x04\x12\0\x08\x01"), Some(1));
    }
}
