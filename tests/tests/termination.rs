//! Termination messages as the kubelet reads them: terminationMessagePath (a file of
//! each container instance's own, default /dev/termination-log) and
//! terminationMessagePolicy FallbackToLogsOnError, into the terminated state's
//! message, with the kubelet's bounds.
#![allow(clippy::unwrap_used)]

use pod_tests::*;
use std::time::Duration;

/// The documentation's termination-demo (tasks: "Determine the Reason for Pod
/// Failure"), its `sleep 10` made `sleep 1`.
const DEMO: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: termination-demo
spec:
  containers:
  - name: termination-demo-container
    image: debian
    command: ["/bin/sh"]
    args: ["-c", "sleep 1 && echo Sleep expired > /dev/termination-log"]
"#;

#[test]
fn the_termination_demo_reports_sleep_expired() {
    let pods = Pods::new("term-demo");
    pods.up_detached(DEMO, &[]);
    let st = pods.wait_status(
        "termination-demo",
        "the container to have ended once",
        Duration::from_secs(10),
        |p| container(p, "termination-demo-container")["lastState"]["terminated"].is_object(),
    );
    // kubectl get pod termination-demo -o go-template=
    //   "{{range .status.containerStatuses}}{{.lastState.terminated.message}}{{end}}"
    let last = &container(&st, "termination-demo-container")["lastState"]["terminated"];
    assert_eq!(last["message"], "Sleep expired\n", "{st:#}");
    assert_eq!(last["reason"], "Completed");
    let described = pods.ok(&["describe", "termination-demo"]);
    assert!(
        described.contains("      Message:      Sleep expired\n"),
        "{described}"
    );
    pods.ok(&["down", "termination-demo", "--grace-period", "0"]);
    pods.assert_clean();
}

const POLICIES: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: words
spec:
  restartPolicy: Never
  containers:
  - name: fails
    terminationMessagePolicy: FallbackToLogsOnError
    command: [sh, -c, 'for i in $(seq 1 100); do echo "line $i"; done; exit 3']
  - name: succeeds
    terminationMessagePolicy: FallbackToLogsOnError
    command: [sh, -c, 'echo fine']
  - name: says-why
    terminationMessagePolicy: FallbackToLogsOnError
    command: [sh, -c, 'echo noise; printf "disk full" > /dev/termination-log; exit 1']
  - name: custom
    terminationMessagePath: /var/run/app/why
    securityContext: {runAsUser: 1000, readOnlyRootFilesystem: true}
    command: [sh, -c, 'echo -n BEGIN > /var/run/app/why; head -c 5000 /dev/zero | tr "\0" x >> /var/run/app/why']
  - name: sibling
    command: [sh, -c, 'sleep 1; wc -c < /dev/termination-log > /dev/termination-log']
"#;

#[test]
fn policies_paths_and_bounds_are_the_kubelets() {
    let pods = Pods::new("term-policies");
    pods.up_detached(POLICIES, &[]);
    let st = pods.wait_status(
        "words",
        "every container to end",
        Duration::from_secs(15),
        |p| p["status"]["phase"] == "Failed",
    );
    let message = |c: &str| {
        container(&st, c)["state"]["terminated"]["message"]
            .as_str()
            .map(String::from)
    };
    // A failure with nothing in its file: the last 80 lines of its log.
    let lines: String = (21..=100).map(|i| format!("line {i}\n")).collect();
    assert_eq!(message("fails").as_deref(), Some(lines.as_str()), "{st:#}");
    // The log stands in only after a failure, and never for what the file says.
    assert_eq!(message("succeeds"), None, "{st:#}");
    assert_eq!(message("says-why").as_deref(), Some("disk full"));
    // Another path, made in the container's view (read-only root and all), written by
    // a non-root user: the last 4096 bytes of it, cut to the container's share of the
    // pod's 12 KiB (five containers: 2457 bytes).
    let custom = message("custom").unwrap();
    assert_eq!(custom.len(), 12 * 1024 / 5);
    assert!(
        custom.bytes().all(|b| b == b'x'),
        "not the file's end: {custom}"
    );
    // Each container's file is its own: the sibling's was empty when it looked.
    assert_eq!(message("sibling").as_deref(), Some("0\n"));
    pods.ok(&["down", "words"]);
    pods.assert_clean();
}

#[test]
fn a_bad_termination_message_field_is_refused_with_its_path() {
    let pods = Pods::new("term-bad");
    let base = "apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec:\n  containers:\n  - name: a\n    command: [sleep, '1']\n";
    for (extra, want) in [
        (
            "    terminationMessagePolicy: Always\n",
            "spec.containers[0].terminationMessagePolicy: Unsupported value: \"Always\": supported values: \"File\", \"FallbackToLogsOnError\"",
        ),
        (
            "    terminationMessagePath: ../x\n",
            "spec.containers[0].terminationMessagePath: must be an absolute path without \"..\"",
        ),
    ] {
        let out = pods.up_yaml(&format!("{base}{extra}"), &["-d"]);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim(),
            format!("launcher: {want}")
        );
    }
    pods.assert_clean();
}
