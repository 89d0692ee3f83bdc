//! The launcher as a user drives it from a shell. Host tier unless marked; the VM
//! tier runs the controller ones and those `vm/smoke` lists.
#![allow(clippy::unwrap_used)]
#![allow(unsafe_code)]

use pod_tests::*;
use serde_json::Value;
use std::fs;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn pause_pid(pod: &Value) -> i32 {
    as_pid(&pod["metadata"]["annotations"]["launcher/pause-pid"])
}

fn running(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running"
        && pod["status"]["containerStatuses"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["state"]["running"].is_object())
}

fn gone(pid: i32) -> bool {
    stat_state(pid).is_none_or(|(s, _)| s == 'Z')
}

#[test]
fn containers_share_pause_namespaces_and_sit_in_their_cgroup() {
    let pods = Pods::new("ns");
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "ns",
        "-c",
        "a=sleep 600",
        "-c",
        "b=sleep 600",
    ]);
    let pod = pods.wait_status("ns", "running", Duration::from_secs(5), running);
    let pause = pause_pid(&pod);
    assert_eq!(
        status_field(pause, "NSpid")
            .unwrap()
            .split_whitespace()
            .last(),
        Some("1"),
        "pause is PID 1"
    );
    assert_eq!(
        fs::read_link(format!("/proc/{pause}/exe"))
            .unwrap()
            .file_name()
            .unwrap(),
        "pause"
    );
    let cgroup = pod["metadata"]["annotations"]["launcher/cgroup"]
        .as_str()
        .unwrap();
    assert_eq!(std::path::Path::new(cgroup), pods.pod_cgroup("ns"));
    let mount = cgroup2_mount();
    for name in ["a", "b"] {
        let pid = container_pid(&pod, name).expect("a running container");
        for kind in ["pid", "net", "ipc", "uts"] {
            assert_eq!(
                ns_of(pid, kind),
                ns_of(pause, kind),
                "container {name}: {kind} namespace"
            );
        }
        // Its mount namespace is its own, made from the pod's (for its volumes).
        assert_ne!(ns_of(pid, "mnt"), ns_of(pause, "mnt"), "container {name}");
        assert_ne!(ns_of(pid, "mnt"), ns_of(std::process::id() as i32, "mnt"));
        assert_ne!(ns_of(pid, "net"), ns_of(std::process::id() as i32, "net"));
        let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let line = cg.lines().find(|l| l.starts_with("0::")).unwrap();
        assert_eq!(
            mount.join(line.trim_start_matches("0::/")),
            pods.pod_cgroup("ns").join(name)
        );
        // A direct child of the supervisor, not of some intermediate.
        let sup = as_pid(&pod["metadata"]["annotations"]["launcher/supervisor-pid"]);
        assert_eq!(stat_state(pid).unwrap().1, sup);
        // Only fds 0-2, and the default capability set with no_new_privs.
        let fds: Vec<_> = fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(fds.len(), 3, "container {name} fds: {fds:?}");
        assert_eq!(status_field(pid, "CapEff").unwrap(), "00000000a80425fb");
        assert_eq!(status_field(pid, "NoNewPrivs").unwrap(), "1");
    }
    pods.ok(&["down", "ns"]);
}

#[test]
fn hostname_env_and_ps_inside_show_only_the_pod() {
    let pods = Pods::new("host");
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "host",
        "--hostname",
        "box.local",
        "-e",
        "GREETING=hi there",
        "-c",
        "a=sleep 600",
    ]);
    pods.wait_status("host", "running", Duration::from_secs(5), running);
    assert_eq!(
        pods.ok(&["exec", "host", "--", "hostname"]).trim(),
        "box.local"
    );
    let env = pods.ok(&["exec", "host", "--", "env"]);
    let mut vars: Vec<&str> = env.lines().map(|l| l.split('=').next().unwrap()).collect();
    vars.sort();
    assert_eq!(vars, ["GREETING", "HOSTNAME", "PATH"], "{env}");
    assert!(env.contains("GREETING=hi there"));
    // /proc inside is the pod's: pause, sleep, and the ls doing the listing.
    let listing = pods.ok(&["exec", "host", "--", "ls", "/proc"]);
    let pids: Vec<&str> = listing
        .split_whitespace()
        .filter(|e| e.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    assert_eq!(pids.len(), 3, "processes visible in the pod: {pids:?}");
    assert!(pids.contains(&"1"));
    pods.ok(&["down", "host"]);
}

#[test]
fn containers_talk_on_localhost_and_pods_reuse_ports() {
    let pods = Pods::new("net");
    let site = TempDir::new("site");
    for pod in ["web1", "web2"] {
        fs::write(
            site.path().join("index.html"),
            format!("hello from {pod}\n"),
        )
        .unwrap();
        let server = format!(
            "server=busybox httpd -f -p 127.0.0.1:8080 -h {}",
            site.path().display()
        );
        let client = "client=sh -c 'until busybox wget -qO- http://127.0.0.1:8080/; do sleep 0.1; done; sleep 600'";
        let volume = format!("{0}:{0}:ro", site.path().display());
        pods.ok(&[
            "up", "-d", "--name", pod, "-c", &server, "-c", client, "-v", &volume,
        ]);
        wait_for(
            "the client to fetch the page",
            Duration::from_secs(10),
            || {
                pods.ok(&["logs", pod, "-c", "client"])
                    .contains(&format!("hello from {pod}"))
            },
        );
    }
    // Both pods listen on 127.0.0.1:8080, each in its own network namespace.
    let listening = |pod: &str| {
        pods.ok(&["exec", pod, "--", "cat", "/proc/net/tcp"])
            .contains("0100007F:1F90 00000000:0000 0A")
    };
    assert!(listening("web1") && listening("web2"));
    pods.ok(&["down", "web1"]);
    pods.ok(&["down", "web2"]);
}

#[test]
fn foreground_up_prefixes_output_and_passes_exit_status_through() {
    let pods = Pods::new("fg");
    let out = pods.run(&[
        "up",
        "--name",
        "fg",
        "--restart",
        "Never",
        "-c",
        "a=sh -c 'echo out; echo err >&2; exit 3'",
        "-c",
        "b=true",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains("[a] out"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[a] err"));
    let out = pods.run(&[
        "up",
        "--name",
        "fg",
        "--restart",
        "Never",
        "-c",
        "a=sh -c 'kill -9 $$'",
    ]);
    assert_eq!(out.status.code(), Some(137), "killed by SIGKILL is 128+9");
    let out = pods.run(&[
        "up",
        "--name",
        "fg",
        "--restart",
        "OnFailure",
        "-c",
        "a=true",
        "-c",
        "b=sh -c 'exit 0'",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("pod fg Succeeded"));
    pods.assert_clean();
}

#[test]
fn foreground_up_stops_gracefully_on_sigterm() {
    let pods = Pods::new("sig");
    let mut cmd = pods.cmd(&[
        "up",
        "--name",
        "sig",
        "-c",
        "a=sh -c 'trap \"echo bye; exit 0\" TERM; while :; do sleep 0.05; done'",
    ]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut up = Proc::spawn(&mut cmd);
    pods.wait_status("sig", "running", Duration::from_secs(5), running);
    up.signal(libc::SIGTERM);
    let st = up.wait_timeout(Duration::from_secs(10));
    assert_eq!(st.code(), Some(0));
    let mut out = String::new();
    std::io::Read::read_to_string(up.child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(out.contains("[a] bye"), "{out}");
    pods.assert_clean();
}

#[test]
fn restart_policy_and_crash_loop_back_off() {
    let pods = Pods::new("restart");
    // back-off scaled by 0.02: 0, 200ms, 400ms, 800ms...
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "crash",
        "--backoff-scale",
        "0.02",
        "-c",
        "a=sh -c 'exit 4'",
    ]);
    let pod = pods.wait_status("crash", "a crash loop", Duration::from_secs(10), |p| {
        container(p, "a")["restartCount"].as_u64() >= Some(3)
            && container(p, "a")["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    });
    let a = container(&pod, "a");
    assert_eq!(a["lastState"]["terminated"]["exitCode"], 4);
    assert_eq!(a["lastState"]["terminated"]["reason"], "Error");
    assert!(
        a["state"]["waiting"]["message"]
            .as_str()
            .unwrap()
            .starts_with("back-off "),
        "{a}"
    );
    assert!(pods.ok(&["ps"]).contains("CrashLoopBackOff"));

    pods.ok(&[
        "up",
        "-d",
        "--name",
        "once",
        "--restart",
        "OnFailure",
        "-c",
        "a=true",
        "-c",
        "b=sleep 600",
    ]);
    let pod = pods.wait_status("once", "a completed", Duration::from_secs(5), |p| {
        container(p, "a")["state"]["terminated"].is_object()
    });
    assert_eq!(container(&pod, "a")["restartCount"], 0);
    assert_eq!(
        container(&pod, "a")["state"]["terminated"]["reason"],
        "Completed"
    );
    assert_eq!(pod["status"]["phase"], "Running");

    pods.ok(&[
        "up",
        "-d",
        "--name",
        "never",
        "--restart",
        "Never",
        "-c",
        "a=sh -c 'exit 2'",
    ]);
    let pod = pods.wait_status("never", "Failed", Duration::from_secs(5), |p| {
        p["status"]["phase"] == "Failed"
    });
    assert_eq!(container(&pod, "a")["state"]["terminated"]["exitCode"], 2);
    // A finished pod keeps its state for `status` until `down`, but no cgroup.
    wait_for(
        "the finished pod's cgroup to go",
        Duration::from_secs(5),
        || !pods.pod_cgroup("never").exists(),
    );
    for pod in ["crash", "once", "never"] {
        pods.ok(&["down", pod]);
    }
}

#[test]
fn a_missing_command_ends_its_container_with_127() {
    let pods = Pods::new("nocmd");
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "nocmd",
        "--restart",
        "Never",
        "-c",
        "bad=no-such-command-here",
        "-c",
        "good=sleep 600",
    ]);
    let pod = pods.wait_status("nocmd", "bad to terminate", Duration::from_secs(5), |p| {
        container(p, "bad")["state"]["terminated"].is_object()
    });
    let t = &container(&pod, "bad")["state"]["terminated"];
    assert_eq!(t["exitCode"], 127);
    assert_eq!(t["reason"], "ContainerCannotRun");
    assert!(
        t["message"]
            .as_str()
            .unwrap()
            .contains("executable file not found"),
        "{t}"
    );
    assert!(
        container(&pod, "good")["state"]["running"].is_object(),
        "the rest of the pod carries on"
    );
    pods.ok(&["down", "nocmd"]);
}

#[test]
fn logs_are_kept_in_cri_format() {
    let pods = Pods::new("logs");
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "logs",
        "-c",
        "a=sh -c 'echo one; echo two >&2; printf partial; sleep 600'",
    ]);
    wait_for("the log lines", Duration::from_secs(5), || {
        pods.ok(&["logs", "logs"]).contains("two")
    });
    let file = fs::read_to_string(pods.log_file("logs", "a")).unwrap();
    let mut lines: Vec<&str> = file.lines().collect();
    assert_eq!(lines.len(), 2, "{file}");
    // stdout and stderr are separate pipes: their relative order is not kept.
    lines.sort_by_key(|l| l.split(' ').nth(1).map(|s| s != "stdout"));
    for (line, stream, msg) in [(lines[0], "stdout", "one"), (lines[1], "stderr", "two")] {
        let parts: Vec<&str> = line.splitn(4, ' ').collect();
        assert_eq!(parts[1..], [stream, "F", msg], "{line}");
        let ts = parts[0];
        assert!(
            ts.len() == 30 && ts.ends_with('Z') && ts.as_bytes()[19] == b'.',
            "RFC 3339 nano timestamp: {ts}"
        );
        assert!(humantime::parse_rfc3339(ts).is_ok(), "{ts}");
    }
    let printed = pods.ok(&["logs", "logs", "-c", "a"]);
    assert!(
        printed == "one\ntwo\n" || printed == "two\none\n",
        "{printed:?}"
    );
    // -f follows until the pod goes; the unfinished line arrives when the stream ends.
    let dir = TempDir::new("logs-follow");
    let file = dir.path().join("out");
    let mut follow = pods.cmd(&["logs", "logs", "-f"]);
    follow.stdout(fs::File::create(&file).unwrap());
    let mut f = Proc::spawn(&mut follow);
    // Following, not yet started: the complete lines are there first.
    wait_for("logs -f to print the lines", Duration::from_secs(5), || {
        fs::read_to_string(&file).is_ok_and(|o| o.contains("two"))
    });
    pods.ok(&["down", "logs", "--grace-period", "0"]);
    assert!(f.wait_timeout(Duration::from_secs(5)).success());
    let out = fs::read_to_string(&file).unwrap();
    assert!(out.ends_with("partial\n"), "{out:?}");
}

#[test]
fn exec_runs_in_the_pod_and_passes_status_through() {
    let pods = Pods::new("exec");
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "exec",
        "-c",
        "a=sleep 600",
        "-c",
        "b=sleep 600",
    ]);
    pods.wait_status("exec", "running", Duration::from_secs(5), running);
    assert_eq!(
        pods.run(&["exec", "exec", "--", "sh", "-c", "exit 7"])
            .status
            .code(),
        Some(7)
    );
    let out = pods.run(&["exec", "exec", "--", "no-such-thing"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("\"no-such-thing\": executable file not found"));
    let cg = pods.ok(&["exec", "exec", "-c", "b", "--", "cat", "/proc/self/cgroup"]);
    // The pod's cgroup namespace is rooted at the pod's cgroup.
    assert!(cg.trim_end().ends_with("0::/b"), "{cg}");
    let pod = pods.status("exec");
    let inside = pods.ok(&[
        "exec",
        "exec",
        "--",
        "sh",
        "-c",
        "readlink /proc/self/ns/pid; readlink /proc/self/ns/net",
    ]);
    assert_eq!(
        inside,
        format!(
            "{}\n{}\n",
            ns_of(pause_pid(&pod), "pid"),
            ns_of(pause_pid(&pod), "net")
        )
    );
    let out = pods.run(&["exec", "exec", "-c", "zz", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no container \"zz\""));
    pods.ok(&["down", "exec"]);
}

#[test]
fn down_honours_the_grace_period_and_then_kills() {
    let pods = Pods::new("grace");
    let tmp = TempDir::new("grace");
    let mark = tmp.path().join("terminated");
    let polite = format!(
        "a=sh -c 'trap \"echo term > {}; exit 0\" TERM; while :; do sleep 0.05; done'",
        mark.display()
    );
    let volume = format!("{0}:{0}", tmp.path().display());
    pods.ok(&["up", "-d", "--name", "polite", "-c", &polite, "-v", &volume]);
    pods.wait_status("polite", "running", Duration::from_secs(5), running);
    let start = Instant::now();
    pods.ok(&["down", "polite", "--grace-period", "20s"]);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "a container that exits on SIGTERM is not waited for"
    );
    assert_eq!(fs::read_to_string(&mark).unwrap(), "term\n");

    let stubborn = "a=sh -c 'trap \"\" TERM; while :; do sleep 0.05; done'";
    pods.ok(&["up", "-d", "--name", "stubborn", "-c", stubborn]);
    let pod = pods.wait_status("stubborn", "running", Duration::from_secs(5), running);
    let pid = container_pid(&pod, "a").expect("a running container");
    let start = Instant::now();
    pods.ok(&["down", "stubborn", "--grace-period", "1s"]);
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "the grace period was not honoured"
    );
    assert!(gone(pid), "the container survived down");
    pods.assert_clean();
    // Again: kubectl's NotFound, unless it is to be ignored.
    assert_eq!(pods.run(&["down", "stubborn"]).status.code(), Some(1));
    pods.ok(&["down", "stubborn", "--ignore-not-found"]);
}

#[test]
fn the_pod_survives_a_supervisor_crash_and_down_still_works() {
    let pods = Pods::new("crash");
    pods.ok(&["up", "-d", "--name", "orphan", "-c", "a=sleep 600"]);
    let pod = pods.wait_status("orphan", "running", Duration::from_secs(5), running);
    let sup = as_pid(&pod["metadata"]["annotations"]["launcher/supervisor-pid"]);
    let pause = pause_pid(&pod);
    let app = container_pid(&pod, "a").expect("a running container");
    // SAFETY: the supervisor is a process this test started (through up -d).
    assert_eq!(unsafe { libc::kill(sup, libc::SIGKILL) }, 0);
    wait_for("the supervisor to die", Duration::from_secs(5), || {
        gone(sup)
    });
    let pod = pods.wait_status("orphan", "phase Unknown", Duration::from_secs(5), |p| {
        p["status"]["phase"] == "Unknown"
    });
    assert_eq!(pod["status"]["reason"], "SupervisorGone");
    assert!(
        !gone(pause) && !gone(app),
        "pause and the app must outlive the supervisor"
    );
    assert!(pods.ok(&["ps"]).contains("orphan"));
    pods.ok(&["down", "orphan", "--grace-period", "2s"]);
    assert!(gone(pause) && gone(app));
    pods.assert_clean();
}

#[test]
fn killing_pause_fails_the_pod_and_cleans_up() {
    let pods = Pods::new("pausekill");
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "pk",
        "-c",
        "a=sleep 600",
        "-c",
        "b=sleep 600",
    ]);
    let pod = pods.wait_status("pk", "running", Duration::from_secs(5), running);
    let pause = pause_pid(&pod);
    let apps: Vec<i32> = ["a", "b"]
        .iter()
        .map(|c| container_pid(&pod, c).expect("a running container"))
        .collect();
    // SAFETY: pause is a process this test started (through up -d).
    assert_eq!(unsafe { libc::kill(pause, libc::SIGKILL) }, 0);
    let pod = pods.wait_status("pk", "phase Failed", Duration::from_secs(5), |p| {
        p["status"]["phase"] == "Failed"
    });
    assert_eq!(pod["status"]["reason"], "PauseDied");
    assert!(apps.iter().all(|&p| gone(p)));
    wait_for(
        "the pod's cgroup to be removed",
        Duration::from_secs(5),
        || !pods.pod_cgroup("pk").exists(),
    );
    pods.ok(&["down", "pk"]);
    assert!(pods.leftover_state().is_empty());
}

/// `ps -w`: the table, then a row each time a pod changes, as kubectl get pods -w.
#[test]
fn ps_watch_prints_a_row_as_a_pod_changes() {
    use std::io::BufRead;
    let pods = Pods::new("psw");
    let mut watch = pods
        .cmd(&["ps", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let reader = {
        let seen = seen.clone();
        let out = watch.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                seen.lock().unwrap().push(line);
            }
        })
    };
    pods.ok(&["up", "-d", "--name", "w1", "-c", "a=sleep 600"]);
    wait_for("w1's Running row", Duration::from_secs(10), || {
        (seen.lock().unwrap().iter()).any(|l| l.starts_with("w1 ") && l.contains(" Running "))
    });
    let rows = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("w1 "))
        .count();
    // Nothing changes: no new row (AGE alone does not count).
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        seen.lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with("w1 "))
            .count(),
        rows
    );
    pods.ok(&["down", "w1", "--grace-period", "0"]);
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(watch.id() as i32, libc::SIGTERM) };
    let _ = watch.wait();
    reader.join().unwrap();
    pods.assert_clean();
}

/// A pod in its grace period is Terminating, as kubectl shows a deleted pod, and its
/// object has the deletion's time and grace period as the API server sets them.
#[test]
fn a_pod_being_stopped_is_terminating() {
    let pods = Pods::new("terminating");
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "slow",
        "-c",
        "a=sh -c 'trap \"\" TERM; sleep 600'",
    ]);
    pods.wait_status("slow", "running", Duration::from_secs(5), running);
    let mut down = pods
        .cmd(&["down", "slow", "--grace-period", "2"])
        .spawn()
        .unwrap();
    wait_for("Terminating", Duration::from_secs(5), || {
        pods.ok(&["ps"]).contains("Terminating")
    });
    let pod = pods.status("slow");
    assert!(pod["metadata"]["deletionTimestamp"].is_string(), "{pod}");
    assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 2);
    assert!(down.wait().unwrap().success());
    pods.assert_clean();
}

#[test]
fn ps_and_status_speak_kubernetes() {
    let pods = Pods::new("ps");
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "alpha",
        "-c",
        "a=sleep 600",
        "-c",
        "b=sleep 600",
    ]);
    pods.wait_status("alpha", "running", Duration::from_secs(5), running);
    let table = pods.ok(&["ps"]);
    let mut lines = table.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row[..4], ["alpha", "2/2", "Running", "0"]);
    let list: Value = serde_json::from_str(&pods.ok(&["ps", "-o", "json"])).unwrap();
    assert_eq!(
        (list["apiVersion"].as_str(), list["kind"].as_str()),
        (Some("v1"), Some("List"))
    );
    let pod = &list["items"][0];
    assert_eq!(
        (pod["apiVersion"].as_str(), pod["kind"].as_str()),
        (Some("v1"), Some("Pod"))
    );
    assert_eq!(pod["metadata"]["name"], "alpha");
    assert_eq!(
        pod["spec"]["containers"][1]["command"],
        serde_json::json!(["sleep", "600"])
    );
    let conditions: Vec<(&str, &str)> = pod["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["type"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert!(
        conditions.contains(&("Ready", "True"))
            && conditions.contains(&("ContainersReady", "True"))
    );
    let yaml = pods.ok(&["status", "alpha", "-o", "yaml"]);
    assert!(yaml.starts_with("apiVersion: v1\nkind: Pod\n"), "{yaml}");
    assert!(pods
        .ok(&["ps", "-o", "wide"])
        .contains(pods.pod_cgroup("alpha").to_str().unwrap()));
    pods.ok(&["down", "alpha"]);
}

/// Runs `launcher up` with bad input; asserts a one-line error containing `needle`,
/// a non-zero exit, and nothing left behind.
fn rejected(pods: &Pods, args: &[&str], needle: &str) {
    let mut full = vec!["up"];
    full.extend_from_slice(args);
    let out = pods.run(&full);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} was accepted");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: not one line: {err}"
    );
    assert!(
        err.contains(needle),
        "{args:?}: {err:?} does not mention {needle:?}"
    );
    assert!(!err.contains("panicked") && !err.contains("backtrace"));
    assert!(pods.leftover_cgroups().is_empty(), "{args:?} left a cgroup");
}

#[test]
fn bad_input_is_refused_with_a_clear_error_and_leaves_nothing() {
    let pods = Pods::new("bad");
    for name in ["../x", "a/b", "", "Caps", "-lead"] {
        rejected(&pods, &["--name", name, "-c", "a=true"], "invalid pod name");
        rejected(
            &pods,
            &["--name", "p", "-c", &format!("{name}=true")],
            "invalid container name",
        );
    }
    rejected(
        &pods,
        &["--name", &"x".repeat(64), "-c", "a=true"],
        "at most 63",
    );
    rejected(
        &pods,
        &["--name", "p", "-c", "a=true", "-c", "a=false"],
        "duplicate container name \"a\"",
    );
    for (flag, value, needle) in [
        (
            "--memory",
            "12Zi",
            "--memory: invalid memory quantity \"12Zi\"",
        ),
        ("--memory", "-1", "invalid memory quantity \"-1\""),
        ("--memory", "1.5.5", "invalid memory quantity \"1.5.5\""),
        ("--cpu", "0.0001", "--cpu: invalid cpu quantity \"0.0001\""),
        ("--cpu", "1.5.5", "invalid cpu quantity"),
        ("--cpu-request", "-1", "--cpu-request: invalid cpu quantity"),
        ("--pids", "0", "--pids: invalid count"),
        (
            "--grace-period",
            "soon",
            "--grace-period: invalid duration \"soon\"",
        ),
        ("--grace-period", "-5s", "invalid duration"),
    ] {
        rejected(&pods, &["--name", "p", "-c", "a=true", flag, value], needle);
    }
    rejected(
        &pods,
        &["--name", "p", "-c", "a=echo 'open"],
        "invalid command for container \"a\"",
    );
    rejected(
        &pods,
        &["--name", "p", "-c", "a=true", "--restart", "Sometimes"],
        "Sometimes",
    );
    assert!(pods.leftover_state().is_empty());

    // A name in use.
    pods.ok(&["up", "-d", "--name", "taken", "-c", "a=sleep 600"]);
    let before = pods.status("taken");
    let out = pods.run(&["up", "-d", "--name", "taken", "-c", "a=sleep 600"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pod \"taken\" already exists"));
    assert_eq!(
        pause_pid(&pods.status("taken")),
        pause_pid(&before),
        "the running pod was untouched"
    );
    pods.ok(&["down", "taken"]);
}

/// Runs launcher with `hook` applied in the child before exec.
fn run_restricted(
    pods: &Pods,
    hook: impl Fn() -> std::io::Result<()> + Send + Sync + 'static,
) -> std::process::Output {
    let mut cmd = pods.cmd(&["up", "--name", "p", "-c", "a=true"]);
    // SAFETY: the hook only makes async-signal-safe system calls.
    unsafe { cmd.pre_exec(hook) };
    cmd.output().unwrap()
}

#[test]
fn not_root_missing_capability_and_no_cgroup2_are_clear_errors() {
    let pods = Pods::new("priv");
    let out = run_restricted(&pods, || {
        // SAFETY: setuid in the child only.
        if unsafe { libc::setuid(65534) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    });
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("must run as root"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run_restricted(&pods, || {
        // SAFETY: dropping a capability from the bounding set in the child only; root's
        // exec then leaves it out of the effective set.
        match unsafe { libc::prctl(libc::PR_CAPBSET_DROP, 21, 0, 0, 0) } {
            0 => Ok(()),
            _ => Err(std::io::Error::last_os_error()),
        }
    });
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("missing capability CAP_SYS_ADMIN"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // In a private mount namespace with the cgroup2 mount detached.
    let mount = std::ffi::CString::new(cgroup2_mount().as_os_str().as_encoded_bytes()).unwrap();
    let out = run_restricted(&pods, move || {
        // SAFETY: unshare/mount/umount2 in the child only, on its private mount namespace.
        unsafe {
            if libc::unshare(libc::CLONE_NEWNS) != 0
                || libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) != 0
                || libc::umount2(mount.as_ptr(), libc::MNT_DETACH) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    });
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no cgroup2 file system is mounted"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(pods.leftover_state().is_empty());
}

#[test]
fn a_hundred_up_down_cycles_leave_nothing_behind() {
    let pods = Pods::new("cycles");
    let cycles = if in_vm() { 30 } else { 100 };
    for i in 0..cycles {
        let name = format!("c{i}");
        pods.ok(&[
            "up",
            "-d",
            "--name",
            &name,
            "-c",
            "a=sleep 600",
            "-c",
            "b=sleep 600",
        ]);
        pods.ok(&["down", &name, "--grace-period", "0"]);
    }
    pods.assert_clean();
    let pauses = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| fs::read_link(e.path().join("exe")).is_ok_and(|x| x == bin("pause")))
        .filter(|e| {
            fs::read_to_string(e.path().join("cgroup"))
                .is_ok_and(|c| c.contains("launcher-test-") && c.contains("-cycles/"))
        })
        .count();
    assert_eq!(pauses, 0, "pause processes left behind");
}

// ---- VM tier: cgroup v2 controllers ----

const VM: &str = "needs cgroup v2 controllers: VM tier";

fn cg_file(pods: &Pods, pod: &str, file: &str) -> String {
    fs::read_to_string(pods.pod_cgroup(pod).join(file))
        .unwrap()
        .trim()
        .to_string()
}

fn cg_stat(pods: &Pods, pod: &str, file: &str, key: &str) -> u64 {
    cg_file(pods, pod, file)
        .lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        .unwrap()
}

#[test]
#[ignore = "needs cgroup v2 controllers: VM tier"]
fn memory_max_bites_and_ends_in_oom_killed() {
    let _ = VM;
    let pods = Pods::new("mem");
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "mem",
        "--memory",
        "32Mi",
        "--restart",
        "Never",
        "-c",
        "hog=dd if=/dev/zero of=/dev/null bs=64M count=1",
        "-c",
        "idle=sleep 600",
    ]);
    assert_eq!(cg_file(&pods, "mem", "memory.max"), "33554432");
    assert_eq!(
        fs::read_to_string(pods.pod_cgroup("mem").join("hog/memory.oom.group"))
            .unwrap()
            .trim(),
        "1"
    );
    let pod = pods.wait_status(
        "mem",
        "hog to be OOM killed",
        Duration::from_secs(20),
        |p| container(p, "hog")["state"]["terminated"].is_object(),
    );
    let t = &container(&pod, "hog")["state"]["terminated"];
    assert_eq!(t["reason"], "OOMKilled", "{t}");
    assert_eq!(t["exitCode"], 137);
    assert!(cg_stat(&pods, "mem", "memory.events", "oom_kill ") >= 1);
    assert!(
        container(&pod, "idle")["state"]["running"].is_object(),
        "the OOM kill stays in its container"
    );
    pods.ok(&["down", "mem"]);
}

#[test]
#[ignore = "needs cgroup v2 controllers: VM tier"]
fn cpu_max_throttles() {
    let pods = Pods::new("cpu");
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "cpu",
        "--cpu",
        "100m",
        "-c",
        "spin=sh -c 'while :; do :; done'",
    ]);
    assert_eq!(cg_file(&pods, "cpu", "cpu.max"), "10000 100000");
    wait_for(
        "cpu.stat nr_throttled to grow",
        Duration::from_secs(10),
        || cg_stat(&pods, "cpu", "cpu.stat", "nr_throttled ") > 2,
    );
    pods.ok(&["down", "cpu", "--grace-period", "0"]);
}

#[test]
#[ignore = "needs cgroup v2 controllers: VM tier"]
fn cpu_request_sets_cpu_weight() {
    let pods = Pods::new("weight");
    for (q, weight) in [("500m", "59"), ("1", "100"), ("250m", "35"), ("2", "174")] {
        pods.ok(&[
            "up",
            "-d",
            "--name",
            "w",
            "--cpu-request",
            q,
            "-c",
            "a=sleep 600",
        ]);
        assert_eq!(
            cg_file(&pods, "w", "cpu.weight"),
            weight,
            "--cpu-request {q}"
        );
        pods.ok(&["down", "w", "--grace-period", "0"]);
    }
}

#[test]
#[ignore = "needs cgroup v2 controllers: VM tier"]
fn pids_max_contains_a_fork_bomb() {
    let pods = Pods::new("pids");
    let bomb = "bomb=sh -c 'i=0; while [ $i -lt 200 ]; do sleep 600 & i=$((i+1)); done; wait'";
    pods.ok(&["up", "-d", "--name", "bomb", "--pids", "20", "-c", bomb]);
    assert_eq!(cg_file(&pods, "bomb", "pids.max"), "20");
    // Linux < 6.2 counts the refused fork in the forking task's cgroup (the leaf),
    // later kernels in the cgroup whose limit was hit (the pod).
    wait_for(
        "a fork refused by pids.max",
        Duration::from_secs(20),
        || {
            cg_stat(&pods, "bomb", "pids.events", "max ")
                + cg_stat(&pods, "bomb", "bomb/pids.events", "max ")
                > 0
        },
    );
    assert!(
        cg_file(&pods, "bomb", "pids.current")
            .parse::<u64>()
            .unwrap()
            <= 20
    );
    let start = Instant::now();
    pods.ok(&["down", "bomb", "--grace-period", "1s"]);
    assert!(
        start.elapsed() < scaled(Duration::from_secs(15)),
        "the pod was not stoppable"
    );
    pods.assert_clean();
}

#[test]
fn logs_are_bytes_exec_forwards_signals_and_a_missing_command_is_named() {
    use std::io::{BufRead, BufReader};
    let pods = Pods::new("small");
    // A foreground pod whose command does not exist says why, as the kubelet's event.
    let out = pods.run(&[
        "up",
        "--name",
        "m",
        "--restart",
        "Never",
        "-c",
        "a=/no/such/cmd",
    ]);
    assert_eq!(out.status.code(), Some(127));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("launcher: a: Error: exec: \"/no/such/cmd\": stat /no/such/cmd: no such file or directory\n"),
        "{err}"
    );

    // Logs are bytes: what is not UTF-8 comes out as it went in.
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "b",
        "-c",
        r#"a=sh -c 'printf "caf\351 \377\nafter\n"; sleep 600'"#,
    ]);
    wait_for("the output", Duration::from_secs(5), || {
        pods.run(&["logs", "b"]).stdout.ends_with(b"after\n")
    });
    assert_eq!(pods.run(&["logs", "b"]).stdout, b"caf\xe9 \xff\nafter\n");

    // `logs -f` ends with its pod, even when a pod of the same name follows at once.
    let mut follow = Proc::spawn(
        pods.cmd(&["logs", "-f", "b"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    pods.ok(&["down", "b", "--grace-period", "0"]);
    pods.ok(&["up", "-d", "--name", "b", "-c", "a=sleep 600"]);
    assert!(follow.wait_timeout(Duration::from_secs(3)).success());

    // SIGTERM (or ^C) to `launcher exec` reaches the command, whose status is passed on.
    let mut exec = Proc::spawn(
        pods.cmd(&[
            "exec",
            "b",
            "--",
            "sh",
            "-c",
            "trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.1; done",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped()),
    );
    let mut lines = BufReader::new(exec.child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    exec.signal(libc::SIGTERM);
    assert_eq!(exec.wait_timeout(Duration::from_secs(3)).code(), Some(7));
    assert_eq!(lines.next().unwrap().unwrap(), "got TERM");
    pods.ok(&["down", "b", "--grace-period", "0"]);
    // The foreground pod took itself away when it ended.
    pods.ok(&["down", "m", "--ignore-not-found"]);
    pods.assert_clean();
}

#[test]
fn wait_returns_on_the_change_it_waits_for() {
    let pods = Pods::new("wait");
    let flag = TempDir::new("wait-flag");
    let ready = flag.path().join("ready");
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: w}}\nspec:\n  volumes: [{{name: flag, hostPath: {{path: {dir}}}}}]\n  containers:\n  - name: a\n    command: [sleep, '600']\n    volumeMounts: [{{name: flag, mountPath: {dir}}}]\n    readinessProbe:\n      exec: {{command: [test, -f, {ready}]}}\n      periodSeconds: 1\n",
        dir = flag.path().display(),
        ready = ready.display()
    );
    pods.up_detached(&yaml, &[]);
    let out = pods.run(&["wait", "w", "--for=condition=Ready", "--timeout=0"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "launcher: timed out waiting for the condition on pods/w\n"
    );
    // Ready comes within a probe period of the file; wait sees it at once.
    let mut wait = Proc::spawn(
        pods.cmd(&["wait", "w", "--for=condition=Ready", "--timeout=30s"])
            .stdout(Stdio::piped()),
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(wait.running(), "wait returned before the pod was ready");
    fs::write(&ready, "").unwrap();
    let made = Instant::now();
    assert!(wait.wait_timeout(Duration::from_secs(5)).success());
    let took = made.elapsed();
    assert!(
        took < scaled(Duration::from_millis(1500)),
        "wait returned {took:?} after the file (period 1 s)"
    );
    let mut text = String::new();
    std::io::Read::read_to_string(&mut wait.child.stdout.take().unwrap(), &mut text).unwrap();
    assert_eq!(text, "pod/w condition met\n");
    assert_eq!(
        pods.ok(&[
            "wait",
            "w",
            "--for=jsonpath={.status.containerStatuses[0].ready}=true"
        ]),
        "pod/w condition met\n"
    );
    // --for=delete returns when `down` has removed the pod.
    let mut gone = Proc::spawn(
        pods.cmd(&["wait", "w", "--for=delete"])
            .stdout(Stdio::null()),
    );
    pods.ok(&["down", "w", "--grace-period", "0"]);
    assert!(gone.wait_timeout(Duration::from_secs(5)).success());

    // A pod that ended can no longer become Ready: said at once, exit 1.
    pods.up_detached(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: f}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: a\n    command: [sh, -c, 'sleep 1; exit 3']\n    readinessProbe: {exec: {command: ['false']}}\n",
        &[],
    );
    let start = Instant::now();
    let out = pods.run(&["wait", "f", "--for=condition=Ready", "--timeout=60s"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(start.elapsed() < scaled(Duration::from_secs(5)));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "launcher: pod/f is Failed and will not change any more: condition Ready=True cannot be met\n"
    );
    assert_eq!(
        pods.ok(&["wait", "f", "--for=jsonpath={.status.phase}=Failed"]),
        "pod/f condition met\n"
    );
    pods.ok(&["down", "f"]);
    let out = pods.run(&["wait", "f", "--for=ready"]);
    assert_eq!(out.status.code(), Some(2));
    pods.assert_clean();
}

#[test]
fn events_of_a_detached_pod_are_kept_folded_and_described() {
    use std::io::{BufRead, BufReader};
    let pods = Pods::new("events");
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "ev",
        "--backoff-scale",
        "0.02",
        "-c",
        "crash=sh -c 'sleep 0.1; exit 1'",
        "-c",
        "b=sleep 600",
    ]);
    let backoffs = || -> u64 {
        let out = pods.ok(&["events", "ev"]);
        out.lines()
            .find(|l| l.contains("BackOff"))
            .and_then(|l| l.split("(x").nth(1)?.split(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    wait_for("two back-offs", scaled(Duration::from_secs(10)), || {
        backoffs() >= 2
    });
    let first = backoffs();
    wait_for("the count to grow", scaled(Duration::from_secs(10)), || {
        backoffs() > first
    });
    let events = pods.ok(&["events", "ev"]);
    let header = events.lines().next().unwrap();
    assert!(
        header.starts_with("LAST SEEN") && header.contains("OBJECT"),
        "{events}"
    );
    for want in [
        "Normal    Scheduled",
        "Successfully assigned default/ev to ",
        "Started container b",
        "Back-off restarting failed container crash in pod ev",
    ] {
        assert!(events.contains(want), "{want:?} missing: {events}");
    }
    assert_eq!(events.matches("Started container b").count(), 1, "{events}");
    // kubectl events' filters: --types, --for KIND/NAME, -o.
    let warnings = pods.ok(&["events", "--for", "pod/ev", "--types", "warning"]);
    assert!(
        warnings.contains("Back-off restarting failed container crash"),
        "{warnings}"
    );
    assert!(!warnings.contains("Normal"), "{warnings}");
    let list: Value = serde_json::from_str(&pods.ok(&["events", "ev", "-o", "json"])).unwrap();
    assert_eq!(list["kind"], "EventList");
    let first = &list["items"][0];
    assert_eq!(first["involvedObject"]["name"], "ev");
    assert_eq!(first["reason"], "Scheduled");
    let bad = pods.run(&["events", "--types", "Error"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("valid types are Normal and Warning"));

    let describe = pods.ok(&["describe", "ev"]);
    for want in [
        "Name:             ev\n",
        "Status:           Running\n",
        "  crash:\n",
        "    Last State:     Terminated\n      Reason:       Error\n      Exit Code:    1\n",
        "    Ready:          True\n    Restart Count:  0\n",
        "  Type     Reason     Age",
    ] {
        assert!(describe.contains(want), "{want:?} missing:\n{describe}");
    }
    let backoff = describe
        .lines()
        .find(|l| l.contains("Back-off restarting"))
        .unwrap();
    assert!(
        backoff.starts_with("  Warning  BackOff") && backoff.contains(" over "),
        "{backoff}"
    );

    // -w follows: the events of `down` come, then it ends with the pod.
    let mut watch = Proc::spawn(pods.cmd(&["events", "ev", "-w"]).stdout(Stdio::piped()));
    let mut lines = BufReader::new(watch.child.stdout.take().unwrap()).lines();
    assert!(lines.next().unwrap().unwrap().starts_with("LAST SEEN"));
    pods.ok(&["down", "ev", "--grace-period", "5"]);
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(watch.wait_timeout(Duration::from_secs(5)).success());
    assert!(
        rest.iter()
            .any(|l| l.contains("Killing") && l.contains("Stopping container b")),
        "{rest:#?}"
    );
    pods.assert_clean();
}

#[test]
fn foreground_up_tells_systemd_ready_restarts_and_stopping_in_order() {
    use std::os::unix::net::UnixDatagram;
    let pods = Pods::new("notify");
    let dir = TempDir::new("notify");
    let socket_path = dir.path().join("notify.sock");
    let systemd = UnixDatagram::bind(&socket_path).unwrap();
    systemd
        .set_read_timeout(Some(scaled(Duration::from_secs(10))))
        .unwrap();
    let ready = dir.path().join("ready");
    let crash = dir.path().join("crash");
    // The worker's trap is set: a SIGTERM from now on ends it with 0.
    let armed = dir.path().join("armed");
    let manifest = dir.path().join("pod.yaml");
    fs::write(
        &manifest,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: svc}}\nspec:\n  \
             volumes: [{{name: dir, hostPath: {{path: {dir}}}}}]\n  containers:\n  \
             - name: web\n    command: [sh, -c, 'echo \"notify=$NOTIFY_SOCKET\"; trap \"exit 0\" TERM; while :; do sleep 0.05; done']\n    \
             volumeMounts: [{{name: dir, mountPath: {dir}}}]\n    \
             readinessProbe:\n      exec: {{command: [test, -f, {ready}]}}\n      periodSeconds: 1\n  \
             - name: worker\n    command: [sh, -c, 'trap \"exit 0\" TERM; touch {armed}; while [ ! -f {crash} ]; do sleep 0.05; done; rm {crash}; exit 1']\n    \
             volumeMounts: [{{name: dir, mountPath: {dir}}}]\n",
            dir = dir.path().display(),
            ready = ready.display(),
            crash = crash.display(),
            armed = armed.display(),
        ),
    )
    .unwrap();
    let mut cmd = pods.cmd(&[
        "up",
        "-f",
        manifest.to_str().unwrap(),
        "--backoff-scale",
        "0.02",
    ]);
    cmd.env("NOTIFY_SOCKET", &socket_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut up = Proc::spawn(&mut cmd);
    let next = || {
        let mut buf = [0u8; 4096];
        // A signal to this test process (another test's child ending) is no answer.
        let n = loop {
            match systemd.recv(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => break r.expect("a message from the launcher"),
            }
        };
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };

    // Nothing before every container is ready: the readiness probe holds READY=1 back.
    pods.wait_status("svc", "running", Duration::from_secs(5), running);
    systemd.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    assert!(
        systemd.recv(&mut buf).is_err(),
        "a message before the pod was ready"
    );
    systemd.set_nonblocking(false).unwrap();
    fs::write(&ready, "").unwrap();
    assert_eq!(next(), "READY=1\nSTATUS=pod svc: 2/2 containers ready");

    wait_for("the worker's trap", Duration::from_secs(5), || {
        armed.exists()
    });
    fs::remove_file(&armed).unwrap();
    fs::write(&crash, "").unwrap();
    assert_eq!(next(), "STATUS=pod svc: restarted worker x1");

    wait_for(
        "the restarted worker's trap",
        Duration::from_secs(5),
        || armed.exists(),
    );
    up.signal(libc::SIGTERM);
    assert_eq!(next(), "STOPPING=1\nSTATUS=pod svc: stopping");
    assert_eq!(up.wait_timeout(Duration::from_secs(10)).code(), Some(0));
    systemd.set_nonblocking(true).unwrap();
    assert!(systemd.recv(&mut buf).is_err(), "STOPPING=1 is said once");

    // The socket is the launcher's business, not the containers'.
    let mut out = String::new();
    std::io::Read::read_to_string(up.child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(out.contains("[web] notify=\n"), "{out}");
    pods.assert_clean();
}

#[test]
fn completions_and_man_pages_come_from_the_parser() {
    let pods = Pods::new("docs");
    // The scripts register a function that asks launcher itself on each TAB
    // (tests/completion.rs presses TAB in a real bash).
    let bash = pods.ok(&["completion", "bash"]);
    assert!(
        bash.contains("-F _clap_complete_launcher launcher"),
        "{bash}"
    );
    assert!(bash.contains("LAUNCHER_COMPLETE=\"bash\""), "{bash}");
    assert!(pods
        .ok(&["completion", "zsh"])
        .starts_with("#compdef launcher"));
    assert!(pods
        .ok(&["completion", "fish"])
        .contains("complete --keep-order --exclusive --command launcher"));
    // What a TAB gets: every command, and the flags of a command once "-" is typed.
    let tab = |words: &[&str]| {
        let out = pods
            .cmd(&[])
            .env("LAUNCHER_COMPLETE", "bash")
            .env("_CLAP_COMPLETE_INDEX", (words.len() - 1).to_string())
            .arg("--")
            .args(words)
            .output()
            .unwrap();
        assert!(out.status.success(), "{words:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let commands = tab(&["launcher", ""]);
    for word in ["up", "down", "logs"] {
        assert!(
            commands.lines().any(|l| l == word),
            "{word} not offered: {commands}"
        );
    }
    let flags = tab(&["launcher", "up", "--"]);
    assert!(flags.lines().any(|l| l == "--network"), "{flags}");
    let flags = tab(&["launcher", "logs", "--"]);
    for word in ["--all-containers", "--since-time"] {
        assert!(
            flags.lines().any(|l| l == word),
            "{word} not offered: {flags}"
        );
    }
    let out = pods.run(&["completion", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    let dir = TempDir::new("docs-man");
    pods.ok(&["man", dir.path().to_str().unwrap()]);
    let up = fs::read_to_string(dir.path().join("launcher-up.1")).unwrap();
    assert!(up.contains(".TH launcher-up 1"), "{up}");
    assert!(up.contains("network"), "{up}");
    // The synopsis is the command as typed; every page has its environment, exit
    // status and the pages that exist.
    assert!(up.contains(".SH SYNOPSIS\n\\fBlauncher up\\fR"), "{up}");
    for section in [
        ".SH ENVIRONMENT",
        "\\fBLAUNCHER_ROOT\\fR",
        ".SH \"EXIT STATUS\"",
        ".SH \"SEE ALSO\"",
    ] {
        assert!(up.contains(section), "{section} missing: {up}");
    }
    let see_also = up.split(".SH \"SEE ALSO\"\n").nth(1).unwrap();
    for page in see_also.split(", ") {
        let name = page
            .trim()
            .trim_start_matches("\\fB")
            .split("\\fR")
            .next()
            .unwrap();
        let file = format!("{}.1", name.replace("\\-", "-"));
        assert!(
            dir.path().join(&file).exists(),
            "SEE ALSO names {file}, which is not there"
        );
    }
    for page in ["launcher.1", "launcher-logs.1", "launcher-exec.1"] {
        assert!(dir.path().join(page).exists(), "{page}");
    }
    // The supervisor's own entry point is no user's command.
    assert!(!dir.path().join("launcher-supervise.1").exists());
}

/// `down` as `kubectl delete pod`: names (and pod/NAME), -l, --all, all stopped at
/// once, kubectl's words and exit status for a pod that is not there.
#[test]
fn down_takes_names_selectors_and_all_as_kubectl_delete_does() {
    let pods = Pods::new("down-habits");
    for (name, app) in [("d1", "x"), ("d2", "y"), ("d3", "x"), ("d4", "z")] {
        // SIGTERM ignored: each stop takes the whole grace period (2 s).
        pods.ok(&[
            "up",
            "-d",
            "--name",
            name,
            "-l",
            &format!("app={app}"),
            "--grace-period",
            "2s",
            "-c",
            "a=sh -c 'trap \"\" TERM; while :; do sleep 0.1; done'",
        ]);
    }
    let out = pods.run(&["down", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error from server (NotFound): pods \"nosuch\" not found\n"
    );
    let out = pods.run(&["down", "nosuch", "--ignore-not-found"]);
    assert!(out.status.success() && out.stdout.is_empty() && out.stderr.is_empty());
    // Two pods at once: one grace period, not two.
    let started = std::time::Instant::now();
    assert_eq!(
        pods.ok(&["down", "-l", "app=x"]),
        "pod \"d1\" deleted\npod \"d3\" deleted\n"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_millis(3900),
        "{took:?}"
    );
    let out = pods.run(&["down", "pod/d2", "gone", "--grace-period", "0"]);
    assert_eq!(out.status.code(), Some(1), "one of them was not there");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "pod \"d2\" deleted\n");
    assert_eq!(
        pods.ok(&["down", "--all", "--grace-period", "0"]),
        "pod \"d4\" deleted\n"
    );
    let out = pods.run(&["down", "--all"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "No resources found\n");
    let out = pods.run(&["down", "deployment/web"]);
    assert_eq!(out.status.code(), Some(2));
    pods.assert_clean();
}

/// `ps` as `kubectl get pods`: names (pod/NAME too) in the order asked, NotFound and
/// exit 1 for one that is not there, `-o name|json|yaml` (one named pod is the object
/// itself), `--no-headers`.
#[test]
fn ps_takes_names_and_kubectls_output_forms() {
    let pods = Pods::new("ps-habits");
    for name in ["q1", "q2"] {
        pods.ok(&["up", "-d", "--name", name, "-c", "a=sleep 600"]);
    }
    let out = pods.run(&["ps", "q2", "nosuch", "--no-headers"]);
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.starts_with("q2 ") && table.lines().count() == 1,
        "{table}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error from server (NotFound): pods \"nosuch\" not found\n"
    );
    assert_eq!(pods.ok(&["ps", "-o", "name"]), "pod/q1\npod/q2\n");
    let one: serde_json::Value =
        serde_json::from_str(&pods.ok(&["ps", "pod/q1", "-o", "json"])).unwrap();
    assert_eq!(
        (&one["kind"], &one["metadata"]["name"]),
        (&"Pod".into(), &"q1".into())
    );
    let yaml = pods.ok(&["ps", "q1", "q2", "-o", "yaml"]);
    assert!(yaml.starts_with("apiVersion: v1\nitems:\n"), "{yaml}");
    assert!(yaml.contains("kind: List"), "{yaml}");
    assert_eq!(pods.run(&["ps", "svc/web"]).status.code(), Some(2));
    pods.ok(&["down", "--all", "--grace-period", "0"]);
    pods.assert_clean();
}

/// Other tools' verbs get this tool's, not the nearest spelling (`stop` is not `top`).
#[test]
fn other_tools_verbs_point_to_launchers() {
    let pods = Pods::new("verbs");
    for (verb, says) in [
        ("delete", "`launcher down NAME`"),
        ("stop", "`launcher down NAME`"),
        ("get", "`launcher ps [NAME...]`"),
        ("start", "`launcher up -f POD.yaml`"),
        ("inspect", "`launcher describe NAME`"),
    ] {
        let out = pods.run(&[verb, "web"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{verb}");
        assert!(
            err.starts_with(&format!("launcher: unknown command {verb:?}: ")) && err.contains(says),
            "{verb}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

/// LAUNCHER_TIMINGS=1: `up -d` and `down` say where their time went, phase by phase
/// (`make bench` prints them), `down` with the supervisor's own stop inside its phase,
/// and leave nothing of it behind.
#[test]
fn timings_show_up_and_down_phase_by_phase() {
    let pods = Pods::new("timings");
    let run = |args: &[&str]| {
        let out = pods
            .cmd(args)
            .env("LAUNCHER_TIMINGS", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "launcher {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let up = run(&[
        "up",
        "-d",
        "--name",
        "t",
        "-c",
        "a=sleep 600",
        "-c",
        "b=sleep 600",
    ]);
    for phase in [
        "launcher: up timings (total ",
        "  supervisor (total ",
        "pause cloned",
        "pause running",
        "spawn a\n",
        "spawn b\n",
        "status, events",
    ] {
        assert!(up.contains(phase), "no {phase:?} in:\n{up}");
    }
    let down = run(&["down", "t", "--grace-period", "0"]);
    for phase in [
        "launcher: down timings (total ",
        "  t: the supervisor's stop (total ",
        "    containers stopped",
        "pause gone, the pod's processes reaped",
        "volumes, data, state",
    ] {
        assert!(down.contains(phase), "no {phase:?} in:\n{down}");
    }
    assert!(!pods.root.path().join(".t.timings").exists());
    pods.assert_clean();
}
