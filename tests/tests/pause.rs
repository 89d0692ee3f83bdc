//! pause as a user (and a runtime) sees it: as PID 1 of a PID namespace and not.
#![allow(unsafe_code)]
#![allow(clippy::unwrap_used)]

use pod_tests::*;
use std::fs;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::Duration;

const SIZE_BUDGET: u64 = 16 * 1024;

#[test]
fn version_flags_print_name_and_version() {
    for flag in ["-v", "--version"] {
        let out = Command::new(bin("pause")).arg(flag).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{flag}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("pause {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
}

#[test]
fn any_other_argument_is_a_usage_error() {
    for args in [&["--bogus"][..], &["-v", "extra"], &["x"], &["-h"]] {
        let out = Command::new(bin("pause")).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("usage: pause"), "{args:?}: {err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn binary_is_static_and_within_budget() {
    let path = bin("pause");
    let elf = fs::read(&path).unwrap();
    assert!(
        elf.len() as u64 <= SIZE_BUDGET,
        "pause is {} bytes, budget {SIZE_BUDGET}",
        elf.len()
    );
    assert_eq!(&elf[..4], b"\x7fELF");
    // A static binary has no PT_INTERP (3) and no PT_DYNAMIC (2) program header.
    let phoff = u64::from_le_bytes(elf[32..40].try_into().unwrap()) as usize;
    let phentsize = u16::from_le_bytes(elf[54..56].try_into().unwrap()) as usize;
    let phnum = u16::from_le_bytes(elf[56..58].try_into().unwrap()) as usize;
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let p_type = u32::from_le_bytes(elf[at..at + 4].try_into().unwrap());
        assert!(
            p_type != 2 && p_type != 3,
            "pause has a dynamic segment (type {p_type})"
        );
    }
}

/// Starts pause as PID 1 and returns (intermediate, pause's host pid).
fn start_pod() -> (Proc, i32) {
    let pod = spawn_pid1(&bin("pause"), &[]);
    let pause = pid1_of(&pod);
    wait_for(
        "pause to block in sigwaitinfo",
        Duration::from_secs(10),
        || {
            fs::read_link(format!("/proc/{pause}/exe")).is_ok_and(|e| e.ends_with("pause"))
                && stat_state(pause).is_some_and(|(s, _)| s == 'S')
        },
    );
    (pod, pause)
}

#[test]
fn pid1_holds_nothing_and_stays_small() {
    let (_pod, pause) = start_pod();
    assert_eq!(
        status_field(pause, "NSpid")
            .unwrap()
            .split_whitespace()
            .last(),
        Some("1")
    );
    assert_eq!(
        fs::read_link(format!("/proc/{pause}/cwd")).unwrap(),
        std::path::Path::new("/")
    );
    let mut fds: Vec<String> = fs::read_dir(format!("/proc/{pause}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    fds.sort();
    assert!(
        fds.iter().all(|fd| ["0", "1", "2"].contains(&fd.as_str())),
        "open fds: {fds:?}"
    );
    let rss: u64 = status_field(pause, "VmRSS")
        .unwrap()
        .trim_end_matches(" kB")
        .parse()
        .unwrap();
    assert!(rss <= 64, "pause resident set is {rss} KiB, budget 64 KiB");
}

#[test]
fn sigterm_from_outside_exits_zero() {
    let (mut pod, pause) = start_pod();
    // SAFETY: pause is our grandchild, started above.
    assert_eq!(unsafe { libc::kill(pause, libc::SIGTERM) }, 0);
    let st = pod.wait_timeout(Duration::from_secs(10));
    assert_eq!(st.code(), Some(0), "{st:?}");
}

#[test]
fn sigint_from_outside_exits_zero() {
    let (mut pod, pause) = start_pod();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pause, libc::SIGINT) }, 0);
    assert_eq!(pod.wait_timeout(Duration::from_secs(10)).code(), Some(0));
}

#[test]
fn shutdown_signals_from_inside_the_pod_are_ignored() {
    let (mut pod, pause) = start_pod();
    for sig in ["TERM", "INT", "HUP", "USR1", "QUIT"] {
        let st = in_pidns_of(
            pause,
            Command::new("sh").args(["-c", &format!("kill -{sig} 1")]),
        )
        .status()
        .unwrap();
        assert!(st.success(), "kill -{sig} 1 inside the pod: {st:?}");
    }
    // Signals stay pending until pause takes them with sigwaitinfo: once the shared
    // pending set is empty, pause has seen all of them.
    wait_for(
        "pause to consume the signals",
        Duration::from_secs(10),
        || status_field(pause, "ShdPnd").is_some_and(|m| m.trim_start_matches('0').is_empty()),
    );
    assert!(
        pod.running(),
        "pause exited on a signal sent from inside the pod"
    );
    assert_eq!(stat_state(pause).map(|s| s.0), Some('S'));
}

#[test]
fn reaps_two_thousand_orphans() {
    let (_pod, pause) = start_pod();
    let tmp = TempDir::new("orphans");
    let gate = tmp.path().join("gate");
    mkfifo(&gate);
    // 2000 background children of a shell inside the pod, the shell exits at once:
    // every one of them (alive or already a zombie) is reparented to pause. The last
    // one blocks on a FIFO so the test can see an orphan before letting it go.
    let script = format!(
        "i=0; while [ $i -lt 2000 ]; do (exit 3) & i=$((i+1)); done; (read x < {}) & exit 0",
        gate.display()
    );
    let st = in_pidns_of(pause, Command::new("sh").args(["-c", &script]))
        .status()
        .unwrap();
    assert!(st.success());
    wait_for(
        "the blocked orphan to be reparented to pause",
        Duration::from_secs(10),
        || !children_of(pause).is_empty(),
    );
    fs::write(&gate, "go\n").unwrap();
    wait_for(
        "pause to reap every orphan",
        Duration::from_secs(30),
        || children_of(pause).is_empty(),
    );
    assert_eq!(
        stat_state(pause).map(|s| s.0),
        Some('S'),
        "pause must still be up"
    );
}

#[test]
fn not_pid1_warns_and_reaps_as_subreaper() {
    let tmp = TempDir::new("subreaper");
    let pidfile = tmp.path().join("orphan.pid");
    let go = tmp.path().join("go");
    // The shell leaves its orphan only once pause is a subreaper (the test says go):
    // else, on a slow machine, the orphan goes to init before pause exists.
    let script = format!(
        "while [ ! -e {} ]; do sleep 0.01; done; sleep 60 & echo $! > {}; exit 0",
        go.display(),
        pidfile.display()
    );
    let sh = std::ffi::CString::new("/bin/sh").unwrap();
    let argv = [
        sh.clone(),
        std::ffi::CString::new("-c").unwrap(),
        std::ffi::CString::new(script).unwrap(),
    ];
    let mut cmd = Command::new(bin("pause"));
    cmd.stderr(Stdio::piped());
    // SAFETY: the hook forks a child that becomes pause's child once pause is exec'd;
    // it only calls execv with argv prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::fork() == 0 {
                let ptrs = [
                    argv[0].as_ptr(),
                    argv[1].as_ptr(),
                    argv[2].as_ptr(),
                    std::ptr::null(),
                ];
                libc::execv(sh.as_ptr(), ptrs.as_ptr());
                libc::_exit(127);
            }
            Ok(())
        });
    }
    let mut pause = Proc::spawn(&mut cmd);
    let pid = pause.pid();
    // In its wait loop (rt_sigtimedwait, syscall 128 on x86_64) pause has made
    // itself a subreaper.
    wait_for("pause to wait for signals", Duration::from_secs(10), || {
        fs::read_to_string(format!("/proc/{pid}/syscall"))
            .is_ok_and(|s| s.split(' ').next() == Some("128"))
    });
    fs::write(&go, "").unwrap();
    let mut orphan = 0;
    wait_for(
        "the shell to write the orphan's pid",
        Duration::from_secs(10),
        || {
            orphan = fs::read_to_string(&pidfile)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            orphan != 0
        },
    );
    wait_for(
        "the orphan to be reparented to pause",
        Duration::from_secs(10),
        || stat_state(orphan).is_some_and(|(_, ppid)| ppid == pid),
    );
    // SAFETY: the orphan is a process this test started.
    assert_eq!(unsafe { libc::kill(orphan, libc::SIGKILL) }, 0);
    wait_for("pause to reap the orphan", Duration::from_secs(10), || {
        stat_state(orphan).is_none()
    });
    pause.signal(libc::SIGTERM);
    let st = pause.wait_timeout(Duration::from_secs(10));
    assert_eq!(st.code(), Some(0), "{st:?} signal {:?}", st.signal());
    let mut err = String::new();
    std::io::Read::read_to_string(pause.child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains("warning: not PID 1"), "stderr: {err}");
}
