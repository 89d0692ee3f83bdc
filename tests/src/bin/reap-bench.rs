//! `reap-bench HOSTPID N`: times how long the init process HOSTPID takes to reap N
//! orphans. Joins the init's PID namespace, forks a maker that forks N children that
//! exit at once, then the maker exits: exit_notify() reparents all N zombies to the
//! init before the maker itself can be waited for, so the clock measures only the
//! init's reaping. Prints milliseconds until /proc/HOSTPID/task/HOSTPID/children is back to
//! what it was before.
#![allow(unsafe_code)]

use std::fs;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(pid), Some(n)) = (
        args.get(1).and_then(|a| a.parse::<i32>().ok()),
        args.get(2).and_then(|a| a.parse::<u32>().ok()),
    ) else {
        eprintln!("usage: reap-bench HOSTPID N");
        std::process::exit(2);
    };
    let ns =
        fs::File::open(format!("/proc/{pid}/ns/pid")).unwrap_or_else(|e| die("open pid ns", e));
    // SAFETY: setns on a valid fd; it only changes the namespace of future children.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWPID) } != 0 {
        die("setns", std::io::Error::last_os_error());
    }
    // tini and dumb-init keep a child of their own: wait for the count to fall back.
    let children = format!("/proc/{pid}/task/{pid}/children");
    let count = || fs::read_to_string(&children).map_or(0, |c| c.split_whitespace().count());
    let baseline = count();
    // SAFETY: single-threaded here; the children only call _exit.
    let maker = unsafe { libc::fork() };
    if maker == 0 {
        for _ in 0..n {
            // SAFETY: as above.
            if unsafe { libc::fork() } == 0 {
                // SAFETY: _exit is always safe.
                unsafe { libc::_exit(0) };
            }
        }
        // SAFETY: _exit is always safe.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(maker, &mut status, 0) };
    let start = Instant::now();
    while count() > baseline {
        if start.elapsed() > Duration::from_secs(120) {
            eprintln!("reap-bench: init {pid} did not reap {n} orphans within 120 s");
            std::process::exit(1);
        }
        // Reading the children list takes the tasklist lock the reaper needs too.
        std::thread::sleep(Duration::from_micros(200));
    }
    println!("{:.2}", start.elapsed().as_secs_f64() * 1000.0);
}

fn die(what: &str, e: std::io::Error) -> ! {
    eprintln!("reap-bench: {what}: {e}");
    std::process::exit(1);
}
