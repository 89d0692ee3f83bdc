//! pause: holds a pod's namespaces and, as PID 1 of the pod, reaps every zombie.
//!
//! Read top to bottom in the order it runs: arguments, block every signal, become a
//! subreaper if not PID 1, chdir("/"), close stray descriptors, then wait for signals
//! forever. Once the loop starts it only ever exits on a shutdown signal, because when
//! PID 1 of a PID namespace dies the kernel kills everything else in it.
//!
//! Shutdown (exit 0) is SIGTERM or SIGINT sent from *outside* the pod. The kernel
//! reports a sender that lives in an ancestor PID namespace as `si_pid == 0`
//! (pid_namespaces(7)), so a process inside the pod cannot `kill 1` and take the pod
//! down, a known weakness of the Kubernetes pause. Every other signal is ignored.
//!
//! No heap, no unwinding, no busy loop: all signals stay blocked and are taken
//! synchronously with sigwaitinfo(2).
//!
//! Exit codes: 0 shutdown or `--version`; 2 usage; 3 sigprocmask failed;
//! 4 PR_SET_CHILD_SUBREAPER failed; 5 chdir("/") failed; 70 internal error (a panic,
//! which the code has no path to). Once in the loop, a failing sigwaitinfo or waitpid
//! is reported on stderr and the loop goes on: pause exiting would kill the pod.
#![no_std]
#![no_main]
// The whole program is a sequence of libc calls; each one is annotated below.
#![allow(unsafe_code)]

use core::ffi::{c_char, c_int, CStr};
use core::mem::MaybeUninit;
use core::panic::PanicInfo;

const EXIT_USAGE: c_int = 2;
const EXIT_SIGPROCMASK: c_int = 3;
const EXIT_SUBREAPER: c_int = 4;
const EXIT_CHDIR: c_int = 5;
const EXIT_INTERNAL: c_int = 70;

const USAGE: &str = "usage: pause [-v|--version]\n\
Holds a pod's namespaces; as PID 1 it reaps every zombie.\n\
Exits 0 on SIGTERM or SIGINT sent from outside the pod; ignores everything else.\n";

// Called only by the C runtime, which passes a valid argv.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
#[no_mangle]
pub extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    if argc > 1 {
        // SAFETY: the C runtime passes argc valid, NUL-terminated strings in argv.
        let arg = unsafe { CStr::from_ptr(*argv.add(1)) }.to_bytes();
        if argc == 2 && (arg == b"-v" || arg == b"--version") {
            write_all(1, "pause ");
            write_all(1, env!("CARGO_PKG_VERSION"));
            write_all(1, "\n");
            return 0;
        }
        write_all(2, USAGE);
        return EXIT_USAGE;
    }

    // Block everything before anything else can arrive: a blocked signal is queued
    // even for PID 1 with default dispositions (kernel/signal.c: sig_ignored), and
    // sigwaitinfo then takes it off the queue together with its sender.
    let mut all = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigfillset initialises the set it is given; sigprocmask reads it.
    let blocked = unsafe {
        libc::sigfillset(all.as_mut_ptr());
        libc::sigprocmask(libc::SIG_BLOCK, all.as_ptr(), core::ptr::null_mut())
    };
    if blocked != 0 {
        return fail("sigprocmask", EXIT_SIGPROCMASK);
    }
    // SAFETY: initialised by sigfillset above.
    let all = unsafe { all.assume_init() };

    // SAFETY: getpid cannot fail.
    let pid1 = unsafe { libc::getpid() } == 1;
    if !pid1 {
        write_all(
            2,
            "pause: warning: not PID 1; reaping orphans as a child subreaper instead\n",
        );
        // SAFETY: plain prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
            return fail("prctl(PR_SET_CHILD_SUBREAPER)", EXIT_SUBREAPER);
        }
    }

    // Do not pin whatever directory or mount we were started from.
    // SAFETY: the literal is NUL-terminated.
    if unsafe { libc::chdir(c"/".as_ptr()) } != 0 {
        return fail("chdir(\"/\")", EXIT_CHDIR);
    }
    // Hold nothing beyond 0-2: an inherited descriptor would keep a pipe, socket or
    // file of the launcher open for the life of the pod. Best effort: close_range(2)
    // is Linux >= 5.9 and there is nothing to do about an older kernel here.
    // SAFETY: close_range takes plain integers and only closes descriptors.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };

    // Children may already have exited before the first SIGCHLD could be waited for.
    reap();
    loop {
        let mut info = MaybeUninit::<libc::siginfo_t>::uninit();
        // SAFETY: `all` is a valid set; `info` is written by the kernel on success.
        let sig = unsafe { libc::sigwaitinfo(&all, info.as_mut_ptr()) };
        if sig < 0 {
            if errno() != libc::EINTR {
                report("sigwaitinfo");
                pause_a_second();
            }
            continue;
        }
        // SAFETY: sigwaitinfo succeeded, so it filled `info`.
        let info = unsafe { info.assume_init() };
        match sig {
            libc::SIGCHLD => reap(),
            // SAFETY: si_pid is valid for signals sent with kill(2) and for SIGCHLD;
            // for kernel-generated ones (terminal ^C) it reads as 0, which is "outside".
            libc::SIGTERM | libc::SIGINT if !pid1 || unsafe { info.si_pid() } == 0 => return 0,
            _ => {}
        }
    }
}

/// Reaps until nothing is left: SIGCHLDs coalesce, so one signal may stand for many
/// exits (waitpid(2)). An error is reported; the next SIGCHLD tries again.
fn reap() {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid > 0 {
            continue;
        }
        if pid == 0 {
            return;
        }
        match errno() {
            libc::EINTR => continue,
            libc::ECHILD => return,
            _ => return report("waitpid"),
        }
    }
}

/// After an error in the loop: not a busy loop, should it persist.
fn pause_a_second() {
    let one = libc::timespec {
        tv_sec: 1,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec; the remainder is not wanted.
    unsafe { libc::nanosleep(&one, core::ptr::null_mut()) };
}

fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

/// Prints `pause: <what> failed (errno N)` and hands back the exit code.
fn fail(what: &str, code: c_int) -> c_int {
    report(what);
    code
}

/// Prints `pause: <what> failed (errno N)`.
fn report(what: &str) {
    let err = errno();
    write_all(2, "pause: ");
    write_all(2, what);
    write_all(2, " failed (errno ");
    let mut digits = [0u8; 12];
    let mut at = digits.len();
    let mut n = err.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    write_bytes(2, &digits[at..]);
    write_all(2, ")\n");
}

fn write_all(fd: c_int, s: &str) {
    write_bytes(fd, s.as_bytes());
}

fn write_bytes(fd: c_int, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: buf is a valid slice for its length.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            return;
        }
        buf = buf.get(n as usize..).unwrap_or(&[]);
    }
}

// Unoptimised builds keep a reference to the unwinder's personality routine from the
// precompiled core even with panic = "abort"; it is never called. Release builds
// (LTO) drop the reference and do not get this symbol.
#[cfg(debug_assertions)]
#[no_mangle]
extern "C" fn rust_eh_personality() {}

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    // SAFETY: _exit never returns and is async-signal-safe.
    unsafe { libc::_exit(EXIT_INTERNAL) }
}
