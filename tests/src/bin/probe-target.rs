//! A server for probe tests, run as a container on the pod's loopback:
//!
//! - `probe-target http PORT HEALTHY_MS`: answers every GET with 200 for HEALTHY_MS
//!   after it started, then with 500, like the Kubernetes docs' liveness example;
//! - `probe-target tcp PORT FILE`: listens only once FILE exists (the test makes it
//!   when it has seen the pod unready), then accepts and closes connections.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let parsed = (
        args.get(1).map(String::as_str),
        args.get(2).and_then(|a| a.parse::<u16>().ok()),
        args.get(3),
    );
    let (mode, port, arg) = match parsed {
        (Some(mode @ ("http" | "tcp")), Some(port), Some(arg)) => (mode, port, arg),
        _ => {
            eprintln!("usage: probe-target http PORT HEALTHY_MS | tcp PORT FILE");
            std::process::exit(2);
        }
    };
    let start = Instant::now();
    let window = Duration::from_millis(arg.parse().unwrap_or(0));
    if mode == "tcp" {
        while !std::path::Path::new(arg).exists() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("probe-target: bind 127.0.0.1:{port}: {e}");
            std::process::exit(1);
        }
    };
    println!("listening on {port}");
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        if mode == "tcp" {
            continue;
        }
        let mut buf = [0u8; 4096];
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let _ = stream.read(&mut buf);
        let status = if start.elapsed() < window {
            "200 OK"
        } else {
            "500 Internal Server Error"
        };
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }
}
