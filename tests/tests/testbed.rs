//! The test bed itself: proves the VM tier really offers cgroup v2 controllers and
//! that a limit really bites there, so a later launcher test that relies on them
//! cannot pass for the wrong reason.
#![allow(clippy::unwrap_used)]
#![allow(unsafe_code)]

use pod_tests::*;
use std::fs;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;
use std::time::Duration;

/// A cgroup made by a test, removed (after killing what is left in it) on drop.
struct Cgroup(std::path::PathBuf);

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = fs::write(self.0.join("cgroup.kill"), "1");
        let _ = wait_empty(&self.0);
        let _ = fs::remove_dir(&self.0);
    }
}

fn wait_empty(cg: &std::path::Path) -> bool {
    for _ in 0..500 {
        if fs::read_to_string(cg.join("cgroup.procs")).is_ok_and(|p| p.trim().is_empty()) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Makes `cmd`'s child move itself into cgroup `dir` before it execs.
fn join_on_exec(cmd: &mut Command, dir: &std::path::Path) {
    let path =
        std::ffi::CString::new(dir.join("cgroup.procs").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: writing our own pid to cgroup.procs between fork and exec is one
    // open/write/close; the path was allocated before the fork.
    unsafe {
        cmd.pre_exec(move || {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY);
            if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(fd);
            Ok(())
        });
    }
}

#[test]
fn cgroup2_is_found_from_mountinfo_on_every_tier() {
    let mount = cgroup2_mount();
    assert!(
        mount.join("cgroup.controllers").exists(),
        "{}",
        mount.display()
    );
    let cg = Cgroup(mount.join(format!("testbed-{}", std::process::id())));
    fs::create_dir(&cg.0).unwrap();
    let mut child = Command::new("sleep");
    child.arg("30");
    let procs = cg.0.join("cgroup.procs");
    join_on_exec(&mut child, &cg.0);
    let mut p = Proc::spawn(&mut child);
    assert_eq!(
        fs::read_to_string(&procs).unwrap().trim(),
        p.pid().to_string()
    );
    fs::write(cg.0.join("cgroup.kill"), "1").unwrap();
    let st = p.wait_timeout(Duration::from_secs(5));
    assert_eq!(st.signal(), Some(libc::SIGKILL));
}

#[test]
#[ignore = "needs cgroup v2 controllers: VM tier"]
fn vm_offers_controllers_and_memory_max_bites() {
    let mount = cgroup2_mount();
    let offered = fs::read_to_string(mount.join("cgroup.subtree_control")).unwrap();
    for c in ["memory", "cpu", "pids", "io"] {
        assert!(
            offered.split_whitespace().any(|o| o == c),
            "{c} not enabled: {offered}"
        );
    }
    let cg = Cgroup(mount.join(format!("membite-{}", std::process::id())));
    fs::create_dir(&cg.0).unwrap();
    fs::write(cg.0.join("memory.max"), "16777216").unwrap();
    fs::write(cg.0.join("memory.swap.max"), "0").ok();
    // dd touches its whole 64 MiB buffer: four times the limit.
    let mut cmd = Command::new("dd");
    cmd.args(["if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]);
    join_on_exec(&mut cmd, &cg.0);
    let st = Proc::spawn(&mut cmd).wait_timeout(Duration::from_secs(20));
    assert_eq!(
        st.signal(),
        Some(libc::SIGKILL),
        "dd was not OOM killed: {st:?}"
    );
    let events = fs::read_to_string(cg.0.join("memory.events")).unwrap();
    let kills: u64 = events
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(kills >= 1, "memory.events: {events}");
}
