//! `launcher logs` with kubectl's flags, each against known output, and the default
//! container that `logs` and `exec` take when none is named.
#![allow(clippy::unwrap_used)]

use pod_tests::*;
use std::process::Stdio;
use std::time::Duration;

const FIVE: &str = "sh -c 'for i in 1 2 3 4 5; do echo $0$i; done; sleep 600'";

/// A pod whose containers a and b each printed five lines (a1..a5, b1..b5).
fn two_printers(pods: &Pods) {
    let a = format!("a={}", FIVE.replace("$0", "a"));
    let b = format!("b={}", FIVE.replace("$0", "b"));
    pods.ok(&["up", "-d", "--name", "p", "-c", &a, "-c", &b]);
    wait_for("both containers' output", Duration::from_secs(10), || {
        pods.ok(&["logs", "p", "-c", "b"]).lines().count() == 5
            && pods.ok(&["logs", "p", "-c", "a"]).lines().count() == 5
    });
}

fn stdout_stderr(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn each_flag_selects_and_decorates_as_kubectl_does() {
    let pods = Pods::new("logflags");
    two_printers(&pods);
    // No container named, several there: the first, with kubectl's notice.
    let (out, err) = stdout_stderr(&pods.run(&["logs", "p"]));
    assert_eq!(out, "a1\na2\na3\na4\na5\n");
    assert_eq!(err, "Defaulted container \"a\" out of: a, b\n");
    assert_eq!(
        pods.ok(&["logs", "p", "-c", "b", "--tail", "2"]),
        "b4\nb5\n"
    );
    assert_eq!(pods.ok(&["logs", "p", "-c", "b", "--tail", "0"]), "");
    assert_eq!(
        pods.ok(&["logs", "p", "-c", "b", "--tail", "-1"])
            .lines()
            .count(),
        5
    );
    assert_eq!(
        pods.ok(&["logs", "p", "-c", "a", "--limit-bytes", "5"]),
        "a1\na2"
    );
    assert_eq!(
        pods.ok(&["logs", "p", "--all-containers", "--prefix", "--tail", "1"]),
        "[pod/p/a] a5\n[pod/p/b] b5\n"
    );
    for line in pods.ok(&["logs", "p", "-c", "a", "--timestamps"]).lines() {
        let (ts, msg) = line.split_once(' ').unwrap();
        assert!(humantime::parse_rfc3339(ts).is_ok(), "{line}");
        assert!(msg.starts_with('a'), "{line}");
    }
    assert_eq!(
        pods.ok(&["logs", "p", "-c", "a", "--since", "1h"])
            .lines()
            .count(),
        5
    );
    let future =
        humantime::format_rfc3339(std::time::SystemTime::now() + Duration::from_secs(3600));
    assert_eq!(
        pods.ok(&["logs", "p", "-c", "a", "--since-time", &future.to_string()]),
        ""
    );
    assert_eq!(
        pods.ok(&[
            "logs",
            "p",
            "-c",
            "a",
            "--since-time",
            "2020-01-01T00:00:00Z"
        ])
        .lines()
        .count(),
        5
    );
    // Bad input: one line, exit 2.
    for args in [
        &["--tail", "-5"][..],
        &["--since", "soon"],
        &["--since-time", "yesterday"],
        &["--limit-bytes", "0"],
        &["-c", "a", "--all-containers"],
        &["--since", "1m", "--since-time", "2020-01-01T00:00:00Z"],
        &["--no-such-flag"],
    ] {
        let mut full = vec!["logs", "p"];
        full.extend_from_slice(args);
        let out = pods.run(&full);
        let (printed, err) = stdout_stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(printed, "", "{args:?}");
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("launcher: ") || first.starts_with("error: "),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    pods.ok(&["down", "p", "--grace-period", "0"]);
}

#[test]
fn the_default_container_annotation_picks_the_container_silently() {
    let pods = Pods::new("logdefault");
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: d\n  annotations: {kubectl.kubernetes.io/default-container: b}\nspec:\n  containers:\n  - {name: a, command: [sh, -c, 'echo from-a; sleep 600']}\n  - {name: b, command: [sh, -c, 'echo from-b; sleep 600']}\n";
    pods.up_detached(yaml, &[]);
    wait_for("b's output", Duration::from_secs(10), || {
        pods.ok(&["logs", "d"]) == "from-b\n"
    });
    let (out, err) = stdout_stderr(&pods.run(&["logs", "d"]));
    assert_eq!((out.as_str(), err.as_str()), ("from-b\n", ""));
    // exec takes it too.
    let out = pods.run(&["exec", "d", "--", "cat", "/proc/self/cgroup"]);
    let (cgroup, err) = stdout_stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(err, "");
    assert!(cgroup.lines().any(|l| l == "0::/b"), "{cgroup}");
    pods.ok(&["down", "d", "--grace-period", "0"]);
}

#[test]
fn follow_goes_on_across_restarts_and_ends_with_the_pod() {
    let pods = Pods::new("logfollow");
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "f",
        "--backoff-scale",
        "0.01",
        "-c",
        "a=sh -c 'echo run; sleep 0.3; exit 1'",
    ]);
    let out = TempDir::new("logfollow-out");
    let file = std::fs::File::create(out.path().join("log")).unwrap();
    let mut follow = Proc::spawn(
        pods.cmd(&["logs", "f", "-f"])
            .stdout(file)
            .stderr(Stdio::null()),
    );
    wait_for("three runs followed", Duration::from_secs(20), || {
        std::fs::read_to_string(out.path().join("log"))
            .unwrap()
            .lines()
            .filter(|l| *l == "run")
            .count()
            >= 3
    });
    assert!(follow.running(), "logs -f ended while the pod runs");
    pods.ok(&["down", "f", "--grace-period", "0"]);
    assert!(follow.wait_timeout(Duration::from_secs(5)).success());
}
