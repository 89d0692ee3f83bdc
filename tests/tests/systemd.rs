//! The README's systemd recipe, run by a real systemd: the unit the README shows
//! (`Type=notify`, `KillMode=mixed`, `ExecStopPost=... down --ignore-not-found`),
//! installed as written, started and stopped with systemctl. systemd runs as PID 1 of a
//! PID, mount, cgroup and network namespace of the test's (the pod has the host's
//! network, which is that namespace's), so only in the VM tier: its machine is
//! thrown away after the run, and a systemd started on a real host's file system would
//! run that host's units (tmpfiles, journald) against it.
#![allow(clippy::unwrap_used)]

use pod_tests::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The README's unit: its ```ini block, whose first line names the file.
fn readme_unit() -> (String, String) {
    let path = std::env::var_os("POD_README")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"));
    let readme = fs::read_to_string(&path).unwrap();
    let block: Vec<&str> = (readme.lines())
        .skip_while(|l| *l != "```ini")
        .skip(1)
        .take_while(|l| *l != "```")
        .collect();
    let first = block.first().expect("the README's ini block");
    let name = (first.strip_prefix("# /etc/systemd/system/"))
        .expect("the block's first line names the unit's file")
        .to_string();
    (name, block.join("\n") + "\n")
}

/// The targets a service's default dependencies name (the VM has no others: systemd
/// here runs nothing but the unit under test).
const TARGETS: &[&str] = &["sysinit.target", "basic.target", "shutdown.target"];

const POD: &str = "apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 30
  containers:
  - name: web
    image: busybox
    command: [sh, -c, 'trap \"echo stopping; exit 0\" TERM; while :; do sleep 0.1; done']
    readinessProbe:
      exec: {command: [true]}
      periodSeconds: 1
";

/// systemd, PID 1 of namespaces of its own; killed with everything in them on drop.
struct Systemd {
    unshare: Proc,
    pid: i32,
    cgroup: PathBuf,
    _dir: TempDir,
}

impl Systemd {
    /// Boots systemd with `units` in /etc/systemd/system, `pods` at /etc/pods and the
    /// binaries under test at /usr/local/bin, as the recipe has them installed.
    fn boot(dir: TempDir, unit: &str) -> Systemd {
        let cgroup = cgroup2_mount().join(format!("systemd-test-{}", std::process::id()));
        fs::create_dir(&cgroup).unwrap();
        let d = dir.path().display();
        let inner = format!(
            "mount -t tmpfs run /run && umount -l /sys/fs/cgroup && \
             mount -t cgroup2 cgroup2 /sys/fs/cgroup && \
             mkdir -p /etc/systemd/system /etc/pods /usr/local/bin && \
             mount -o bind {d}/units /etc/systemd/system && mount -o bind {d}/pods /etc/pods && \
             mount -o bind {bin} /usr/local/bin && \
             exec env container=pod-test /lib/systemd/systemd --log-target=console \
             --log-level=notice --unit={unit}",
            bin = bin_dir().display()
        );
        let unshare = Proc::spawn(
            Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "echo $$ > {}/cgroup.procs && exec /usr/bin/unshare --pid --fork --mount-proc \
                     --cgroup --net --propagation private sh -c '{inner}'",
                    cgroup.display()
                ))
                .stdin(Stdio::null()),
        );
        let mut pid = 0;
        wait_for("systemd as PID 1", Duration::from_secs(30), || {
            pid = children_of(unshare.pid()).first().copied().unwrap_or(0);
            pid != 0
                && fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == "systemd")
        });
        Systemd {
            unshare,
            pid,
            cgroup,
            _dir: dir,
        }
    }

    /// `program ARGS` in systemd's mount and PID namespaces (its /run, its units; a
    /// client systemd can name: it refuses one from outside its PID namespace).
    fn inside(&self, program: &str, args: &[&str]) -> std::process::Output {
        Command::new("/usr/bin/nsenter")
            .args([
                "--target",
                &self.pid.to_string(),
                "--mount",
                "--pid",
                "--",
                program,
            ])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn systemctl(&self, args: &[&str]) -> String {
        let out = self.inside("/usr/bin/systemctl", args);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Systemd {
    fn drop(&mut self) {
        // PID 1 of the namespace: its end ends every process in it.
        assert!(self.pid > 1);
        signal_pid(self.pid, libc::SIGKILL);
        self.unshare.wait_timeout(Duration::from_secs(10));
        let mut dirs = vec![self.cgroup.clone()];
        let mut i = 0;
        while i < dirs.len() {
            let subdirs = fs::read_dir(&dirs[i]).into_iter().flatten().flatten();
            dirs.extend(subdirs.map(|e| e.path()).filter(|p| p.is_dir()));
            i += 1;
        }
        for d in dirs.iter().rev() {
            wait_for("an emptied cgroup removed", Duration::from_secs(10), || {
                fs::remove_dir(d).is_ok() || !d.exists()
            });
        }
    }
}

#[test]
#[ignore = "runs systemd as PID 1 of a namespace: only on the VM tier's throwaway machine"]
fn the_readmes_systemd_unit_starts_when_ready_and_stops_cleanly() {
    let (name, unit) = readme_unit();
    assert!(unit.contains("Type=notify"), "{unit}");
    let dir = TempDir::new("systemd");
    let units = dir.path().join("units");
    let pods = dir.path().join("pods");
    fs::create_dir(&units).unwrap();
    fs::create_dir(&pods).unwrap();
    fs::write(units.join(&name), &unit).unwrap();
    for t in TARGETS {
        fs::write(units.join(t), "[Unit]\nDescription=stand-in\n").unwrap();
    }
    fs::write(pods.join("web.yaml"), POD).unwrap();

    let systemd = Systemd::boot(dir, &name);
    // Type=notify: active once the launcher said READY=1, after the readiness probe.
    wait_for("the unit active", Duration::from_secs(60), || {
        systemd.systemctl(&["is-active", &name]) == "active"
    });
    let status = systemd.systemctl(&["show", &name, "-p", "StatusText"]);
    assert!(status.contains("1/1 containers ready"), "{status}");
    let ps = systemd.inside(&bin("launcher").display().to_string(), &["ps"]);
    let ps = String::from_utf8_lossy(&ps.stdout).to_string();
    assert!(
        ps.lines()
            .any(|l| l.starts_with("web ") && l.contains("Running")),
        "{ps}"
    );

    // systemctl stop: SIGTERM to the launcher alone (KillMode=mixed), which stops the
    // pod within its grace period and exits 0: a clean stop, nothing left.
    let stop = systemd.inside("/usr/bin/systemctl", &["stop", &name]);
    assert!(stop.status.success(), "{stop:?}");
    let show = systemd.systemctl(&[
        "show",
        &name,
        "-p",
        "ActiveState",
        "-p",
        "Result",
        "-p",
        "ExecMainStatus",
    ]);
    for want in ["ActiveState=inactive", "Result=success", "ExecMainStatus=0"] {
        assert!(show.lines().any(|l| l == want), "{want} not in:\n{show}");
    }
    let ps = systemd.inside(&bin("launcher").display().to_string(), &["ps"]);
    assert!(ps.status.success());
    assert!(
        String::from_utf8_lossy(&ps.stdout).trim().is_empty(),
        "pods left: {ps:?}"
    );
}
