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

#[test]
fn previous_shows_the_instance_before_the_last_restart() {
    let pods = Pods::new("logprev");
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "r",
        "--backoff-scale",
        "0.01",
        "-c",
        "a=sh -c 'echo run-$(cat /proc/uptime); sleep 1; exit 1'",
        "-c",
        "b=sleep 600",
    ]);
    // Before any restart there is no previous instance: kubectl's words, exit 1.
    let out = pods.run(&["logs", "r", "-c", "b", "-p"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "launcher: previous terminated container \"b\" in pod \"r\" not found\n"
    );
    pods.wait_status("r", "two restarts of a", Duration::from_secs(20), |p| {
        p["status"]["containerStatuses"][0]["restartCount"]
            .as_u64()
            .is_some_and(|n| n >= 2)
    });
    // Each instance has a log of its own: one line in each, the previous one older.
    // Read while no restart comes between: the current one is the same before and after.
    let deadline = std::time::Instant::now() + scaled(Duration::from_secs(20));
    let (current, previous) = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no quiet moment between restarts"
        );
        let current = pods.ok(&["logs", "r", "-c", "a"]);
        let previous = pods.ok(&["logs", "r", "-c", "a", "-p"]);
        let again = pods.ok(&["logs", "r", "-c", "a"]);
        if current == again && current.lines().count() == 1 && previous.lines().count() == 1 {
            break (current, previous);
        }
    };
    assert!(current.starts_with("run-") && previous.starts_with("run-"));
    assert_ne!(current, previous);
    let uptime = |s: &str| -> f64 {
        s.trim_start_matches("run-")
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(uptime(&previous) < uptime(&current), "{previous} {current}");
    // Only the current instance and the one before it are kept.
    let dir = pods.log_dir("r", "a");
    pods.wait_status("r", "four restarts of a", Duration::from_secs(20), |p| {
        p["status"]["containerStatuses"][0]["restartCount"]
            .as_u64()
            .is_some_and(|n| n >= 4)
    });
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(files.len() <= 2, "{files:?}");
    pods.ok(&["down", "r", "--grace-period", "0"]);
    pods.assert_clean();
}

/// The resident set of `pid`, in KiB.
fn rss_kib(pid: i32) -> u64 {
    status_field(pid, "VmRSS")
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[test]
fn a_container_writing_200_mb_leaves_about_50_mib_of_rotated_logs() {
    let pods = Pods::new("logrot");
    // 2,000,000 numbered lines of 100 characters and a newline: 202 MB.
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "big",
        "-c",
        "w=sh -c \"awk 'BEGIN { for (i = 1; i <= 2000000; i++) printf \\\"%0100d\\\\n\\\", i }'; echo done; sleep 600\"",
    ]);
    let pod = pods.status("big");
    let sup = as_pid(&pod["metadata"]["annotations"]["launcher/supervisor-pid"]);
    let before = rss_kib(sup);
    let dir = pods.log_dir("big", "w");
    wait_for("the writer to finish", Duration::from_secs(120), || {
        pods.ok(&["logs", "big", "--tail", "1"]) == "done\n"
    });
    let files: Vec<(String, u64)> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, e.metadata().unwrap().len())
        })
        .collect();
    let total: u64 = files.iter().map(|(_, n)| n).sum();
    // The kubelet's defaults: 10Mi per file, 5 files with the live one.
    assert!(files.len() <= 5, "{files:?}");
    assert!(total <= 5 * (10 << 20) + 4096, "{total} bytes in {files:?}");
    assert!(total >= 4 * (10 << 20), "{total} bytes in {files:?}");
    assert!(
        files
            .iter()
            .filter(|(n, _)| n.starts_with("0.log."))
            .count()
            == files.len() - 1,
        "{files:?}"
    );
    // The supervisor's memory did not grow with what it logged.
    let after = rss_kib(sup);
    assert!(
        after < before + 2048,
        "supervisor RSS {before} KiB -> {after} KiB"
    );
    // `logs` reads across the rotated files, oldest first, every line once.
    let out = pods.cmd(&["logs", "big"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"done"));
    let numbers: Vec<u64> = lines[..lines.len() - 1]
        .iter()
        .map(|l| {
            assert_eq!(l.len(), 100, "{l:?}");
            l.parse().unwrap()
        })
        .collect();
    assert_eq!(*numbers.last().unwrap(), 2_000_000);
    let first = numbers[0];
    assert!(
        numbers.iter().zip(first..).all(|(n, want)| *n == want),
        "lines missing or out of order across the rotated files"
    );
    assert!(numbers.len() > 300_000, "{} lines kept", numbers.len());
    pods.ok(&["down", "big", "--grace-period", "0"]);
    pods.assert_clean();
}

#[test]
fn log_rotation_flags_are_checked() {
    let pods = Pods::new("logbad");
    for (args, needle) in [
        (
            &["--log-max-size", "1k"][..],
            "--log-max-size \"1k\" is less than 1Ki",
        ),
        (&["--log-max-size", "ten"], "--log-max-size \"ten\""),
        (
            &["--log-max-files", "1"],
            "--log-max-files must be at least 2",
        ),
    ] {
        let mut all = vec!["up", "-d", "--name", "x", "-c", "a=true"];
        all.extend_from_slice(args);
        let out = pods.run(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{err}");
    }
    pods.assert_clean();
}

/// kubectl's `logs POD CONTAINER` and `pod/NAME` forms.
#[test]
fn logs_take_the_container_after_the_pod_as_kubectl_does() {
    let pods = Pods::new("logs-pos");
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "lp",
        "-c",
        "a=sh -c 'echo from-a; sleep 600'",
        "-c",
        "b=sh -c 'echo from-b; sleep 600'",
    ]);
    wait_for("both lines", Duration::from_secs(5), || {
        pods.ok(&["logs", "lp", "--all-containers"]).lines().count() == 2
    });
    assert_eq!(pods.ok(&["logs", "lp", "b"]), "from-b\n");
    assert_eq!(
        pods.ok(&["logs", "pod/lp", "a", "--prefix"]),
        "[pod/lp/a] from-a\n"
    );
    assert_eq!(
        pods.run(&["logs", "lp", "b", "-c", "a"]).status.code(),
        Some(2)
    );
    pods.ok(&["down", "lp", "--grace-period", "0"]);
    pods.assert_clean();
}

/// `logs -l SELECTOR`, as kubectl: every matching pod's default container, the last
/// 10 lines of each unless --tail says otherwise; none matching is no error.
#[test]
fn a_selector_shows_the_last_lines_of_each_matching_pod() {
    let pods = Pods::new("logsel");
    let fifteen = "a=sh -c 'for i in $(seq 1 15); do echo $0-$i; done; sleep 600'";
    for (name, labels) in [("web1", "app=web"), ("web2", "app=web"), ("db", "app=db")] {
        let cmd = fifteen.replace("$0", name);
        pods.ok(&["up", "-d", "--name", name, "-l", labels, "-c", &cmd]);
    }
    wait_for("the lines", Duration::from_secs(10), || {
        ["web1", "web2"]
            .iter()
            .all(|n| pods.ok(&["logs", n]).contains(&format!("{n}-15")))
    });
    let out = pods.ok(&["logs", "-l", "app=web", "--prefix"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 20, "{out}");
    for n in ["web1", "web2"] {
        assert!(out.contains(&format!("[pod/{n}/a] {n}-6\n")), "{out}");
        assert!(!out.contains(&format!("{n}-5\n")), "{out}");
    }
    assert!(!out.contains("db-"), "{out}");
    assert_eq!(
        pods.ok(&["logs", "-l", "app=web", "--tail", "1"])
            .lines()
            .count(),
        2
    );
    let none = pods.run(&["logs", "-l", "app=nothing"]);
    assert_eq!(none.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&none.stderr),
        "No resources found in default namespace.\n"
    );
    for n in ["web1", "web2", "db"] {
        pods.ok(&["down", n, "--grace-period", "0"]);
    }
    pods.assert_clean();
}
