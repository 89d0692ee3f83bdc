//! PID namespaces as Kubernetes has them: each container's own unless the pod asks
//! to share one (pause its PID 1, reaping for all); checked against the
//! documentation's pages ("Share Process Namespace between Containers in a Pod",
//! "Configure a Security Context": the capabilities of /proc/1/status).
#![allow(clippy::unwrap_used)]

use pod_tests::*;
use std::time::Duration;

fn running(pods: &Pods, name: &str, yaml: &str) -> serde_json::Value {
    pods.up_detached(yaml, &[]);
    pods.wait_status(
        name,
        "every container running",
        Duration::from_secs(10),
        |p| {
            p["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
        },
    )
}

fn sh(pods: &Pods, pod: &str, c: &str, script: &str) -> String {
    pods.ok(&["exec", pod, "-c", c, "--", "sh", "-c", script])
}

/// The documentation's security-context-demo-4, with a command (no image here).
const CAPS: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: security-context-demo-4
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: sec-ctx-4
    image: gcr.io/google-samples/hello-app:2.0
    command: [sh, -c, '(sleep 300 &); exec sleep 600']
    securityContext:
      capabilities:
        add: ["NET_ADMIN", "SYS_TIME"]
  - name: other
    command: [sleep, "600"]
"#;

#[test]
fn each_container_has_its_own_pid_namespace_by_default() {
    let pods = Pods::new("pidns-own");
    let st = running(&pods, "security-context-demo-4", CAPS);
    assert!(
        st["spec"]["shareProcessNamespace"].is_null(),
        "{:#}",
        st["spec"]
    );
    // `cd /proc/1; cat status`: the container's own process, with its capabilities.
    let status = sh(
        &pods,
        "security-context-demo-4",
        "sec-ctx-4",
        "cat /proc/1/status",
    );
    assert!(status.contains("CapPrm:\t00000000aa0435fb\n"), "{status}");
    assert!(status.contains("CapEff:\t00000000aa0435fb\n"), "{status}");
    // Its main process is PID 1; it sees its own processes only, the orphan its own
    // (PID 1 reaps in its namespace), and an exec joins it.
    let ps = sh(
        &pods,
        "security-context-demo-4",
        "sec-ctx-4",
        "ps -o pid=,ppid=,args= -e",
    );
    let rows: Vec<Vec<&str>> = ps.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0][..3], ["1", "0", "sleep"], "{ps}");
    assert!(
        rows.iter()
            .any(|r| r[1] == "1" && r[2..] == ["sleep", "300"]),
        "{ps}"
    );
    // Not pause, not the other container's `sleep 600`.
    assert!(!ps.contains("pause"), "{ps}");
    assert_eq!(rows.iter().filter(|r| r[2] == "sleep").count(), 2, "{ps}");
    let ns = |c: &str| {
        sh(
            &pods,
            "security-context-demo-4",
            c,
            "readlink /proc/self/ns/pid; readlink /proc/1/ns/pid",
        )
    };
    let (mine, other) = (ns("sec-ctx-4"), ns("other"));
    let mine: Vec<&str> = mine.lines().collect();
    assert_eq!(mine[0], mine[1], "an exec is in its container's namespace");
    assert!(!other.contains(mine[0]), "the other container's is another");
    // PID 1's signal semantics: `sleep` has no SIGTERM handler, so only the SIGKILL at
    // the end of the grace period ends it (the pod's 1 s here).
    let started = std::time::Instant::now();
    pods.ok(&["down", "security-context-demo-4"]);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    pods.assert_clean();
}

/// The documentation's share-process-namespace example, nginx replaced by a process
/// of the host (and without stdin and tty).
const SHARED: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: nginx
spec:
  shareProcessNamespace: true
  containers:
  - name: nginx
    image: nginx
    command: [sh, -c, 'trap "echo reloaded" HUP; while true; do sleep 0.2; done']
  - name: shell
    image: busybox:1.28
    command: ["sleep", "3600"]
    securityContext:
      capabilities:
        add:
        - SYS_PTRACE
"#;

#[test]
fn a_shared_namespace_has_pause_as_pid_1_and_every_container_in_it() {
    let pods = Pods::new("pidns-shared");
    let st = running(&pods, "nginx", SHARED);
    assert_eq!(st["spec"]["shareProcessNamespace"], true);
    let ps = sh(&pods, "nginx", "shell", "ps -o pid=,args= -e");
    let first = ps
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>();
    assert_eq!(first[0], "1");
    assert!(first[1].ends_with("pause"), "{ps}");
    let nginx = ps
        .lines()
        .find(|l| l.contains("trap"))
        .unwrap_or_else(|| panic!("the other container's process: {ps}"))
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    // "kill -HUP 8": signals reach the other container; with SYS_PTRACE its file
    // system is in view through /proc/$pid/root.
    sh(&pods, "nginx", "shell", &format!("kill -HUP {nginx}"));
    wait_for(
        "the other container to get SIGHUP",
        Duration::from_secs(5),
        || {
            pods.ok(&["logs", "nginx", "-c", "nginx"])
                .contains("reloaded")
        },
    );
    let root = sh(
        &pods,
        "nginx",
        "shell",
        &format!("ls /proc/{nginx}/root/etc/hostname"),
    );
    assert_eq!(root.trim(), format!("/proc/{nginx}/root/etc/hostname"));
    pods.ok(&["down", "nginx", "--grace-period", "0"]);
    pods.assert_clean();
}

#[test]
fn a_pod_of_processes_shares_and_host_pid_may_not() {
    let pods = Pods::new("pidns-flags");
    let out = pods.ok(&[
        "up",
        "--name",
        "p",
        "-c",
        "a=sleep 1",
        "--dry-run",
        "-o",
        "yaml",
    ]);
    assert!(out.contains("shareProcessNamespace: true"), "{out}");
    let bad = "apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec:\n  hostPID: true\n  shareProcessNamespace: true\n  containers: [{name: a, command: [sleep, '1']}]\n";
    let out = pods.up_yaml(bad, &["-d"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "launcher: spec.shareProcessNamespace: Invalid value: true: ShareProcessNamespace and HostPID cannot both be enabled"
    );
    pods.assert_clean();
}
