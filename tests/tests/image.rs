//! The pause image run the way a runtime runs a pod's infra container: unpacked into
//! an OCI bundle with umoci and run by crun. crun refuses this host's v1/v2 hybrid
//! cgroups, so the test runs in the VM tier, where cgroup2 is the only hierarchy.
#![allow(clippy::unwrap_used)]

use pod_tests::*;
use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

/// `crun state` of the container, while it exists.
fn state(ctr: &CrunContainer) -> Option<serde_json::Value> {
    let out = ctr
        .crun()
        .args(["state", &ctr.id])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

#[test]
#[ignore = "needs a pure cgroup2 host (crun refuses v1/v2 hybrid): VM tier"]
fn pause_image_runs_reaps_and_stops_under_crun() {
    let tmp = TempDir::new("image");
    let oci = tmp.path().join("oci");
    fs::create_dir(&oci).unwrap();
    let st = Command::new("tar")
        .arg("-xf")
        .arg(pause_image_archive())
        .arg("-C")
        .arg(&oci)
        .status()
        .unwrap();
    assert!(st.success());
    let bundle = tmp.path().join("bundle");
    let image = format!(
        "{}:localhost/pause:{}",
        oci.display(),
        env!("CARGO_PKG_VERSION")
    );
    let out = Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "umoci unpack: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The entrypoint is /pause and the rootfs holds nothing else.
    let config_path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&fs::read(&config_path).unwrap()).unwrap();
    assert_eq!(config["process"]["args"], serde_json::json!(["/pause"]));
    let rootfs: Vec<_> = fs::read_dir(bundle.join("rootfs"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(rootfs, vec![std::ffi::OsString::from("pause")]);
    // No terminal: the test is not a tty, as a sandbox container is not.
    config["process"]["terminal"] = serde_json::json!(false);
    fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();

    let ctr = CrunContainer {
        root: tmp.path().join("state"),
        id: format!("pause-test-{}", std::process::id()),
    };
    let mut run = ctr.crun();
    run.args(["run", "--bundle"])
        .arg(&bundle)
        .arg(&ctr.id)
        .stdin(Stdio::null());
    let mut runtime = Proc::spawn(&mut run);
    let mut pid = 0;
    wait_for("the container to run", Duration::from_secs(10), || {
        let state = state(&ctr);
        pid = state.as_ref().and_then(|s| s["pid"].as_i64()).unwrap_or(0) as i32;
        state.is_some_and(|s| s["status"] == "running") && pid > 0
    });
    assert_eq!(
        status_field(pid, "NSpid")
            .unwrap()
            .split_whitespace()
            .last(),
        Some("1")
    );

    // Orphans inside the container are reaped by pause.
    let script = "i=0; while [ $i -lt 200 ]; do (exit 0) & i=$((i+1)); done; exit 0";
    assert!(in_pidns_of(pid, Command::new("sh").args(["-c", script]))
        .status()
        .unwrap()
        .success());
    wait_for("pause to reap the orphans", Duration::from_secs(20), || {
        children_of(pid).is_empty()
    });

    let st = ctr.crun().args(["kill", &ctr.id, "TERM"]).status().unwrap();
    assert!(st.success());
    let st = runtime.wait_timeout(Duration::from_secs(10));
    assert_eq!(st.code(), Some(0), "container exit: {st:?}");
}
