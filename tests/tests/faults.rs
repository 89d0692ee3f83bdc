//! Faults found by hostile testing: closed and stalled output, a child that keeps
//! writing after its container exited, durations that overflow, pause or the
//! supervisor dying, concurrent and interrupted commands, setup failures, state
//! removed underneath a running pod. Each reproduced on the earlier launcher.

#![allow(unsafe_code)]

use pod_tests::*;
use serde_json::Value;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn running(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running"
}

fn gone(pid: i32) -> bool {
    stat_state(pid).is_none_or(|(s, _)| s == 'Z')
}

fn no_panic(stderr: &[u8]) {
    let text = String::from_utf8_lossy(stderr);
    assert!(
        !text.contains("panicked") && !text.contains("backtrace"),
        "{text}"
    );
}

#[test]
fn a_closed_stdout_ends_ps_and_status_quietly() {
    let pods = Pods::new("epipe");
    pods.ok(&["up", "-d", "--name", "ep", "-c", "a=sleep 600"]);
    for args in [
        &["ps"][..],
        &["status", "ep"],
        &["status", "ep", "-o", "yaml"],
    ] {
        let (rd, wr) = std::io::pipe().unwrap();
        drop(rd);
        let out = pods
            .cmd(args)
            .stdout(wr)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        no_panic(&out.stderr);
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            out.status.code(),
            Some(141),
            "{args:?}: as killed by SIGPIPE"
        );
    }
    pods.ok(&["down", "ep", "--grace-period", "0"]);
    pods.assert_clean();
}

#[test]
fn foreground_up_whose_reader_goes_away_stops_the_pod_quietly() {
    let pods = Pods::new("head");
    let mut cmd = pods.cmd(&[
        "up",
        "--name",
        "head",
        "-c",
        "a=sh -c 'while :; do echo tick; sleep 0.02; done'",
    ]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut up = Proc::spawn(&mut cmd);
    // `| head -1`: one line, then the reader is gone.
    let mut first = String::new();
    let mut out = BufReader::new(up.child.stdout.take().unwrap());
    out.read_line(&mut first).unwrap();
    assert_eq!(first, "[a] tick\n");
    drop(out);
    up.wait_timeout(Duration::from_secs(10));
    no_panic(&up.stderr());
    pods.assert_clean();
}

#[test]
fn a_reader_that_never_reads_never_stalls_supervision() {
    let pods = Pods::new("stall");
    let mut cmd = pods.cmd(&[
        "up",
        "--name",
        "stall",
        "--backoff-scale",
        "0.01",
        "-c",
        "chatty=sh -c 'seq 1 200000; sleep 600'",
        "-c",
        "crashy=sh -c 'sleep 0.1; exit 1'",
    ]);
    // stdout is a pipe nobody reads: it fills after 64 KiB.
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    let _up = Proc::spawn(&mut cmd);
    let pod = pods.wait_status("stall", "4 restarts", Duration::from_secs(15), |p| {
        p["status"]["containerStatuses"][1]["restartCount"]
            .as_u64()
            .is_some_and(|n| n >= 4)
    });
    assert!(running(&pod));
    // Every line reached the log, whatever the terminal got.
    let log = pods.log_file("stall", "chatty");
    wait_for(
        "all 200000 lines in the log",
        Duration::from_secs(15),
        || fs::read_to_string(&log).is_ok_and(|l| l.ends_with(" stdout F 200000\n")),
    );
    let lines = fs::read_to_string(&log).unwrap().lines().count();
    assert_eq!(lines, 200_000);
    pods.ok(&["down", "stall", "--grace-period", "0"]);
    pods.assert_clean();
}

#[test]
fn an_exit_is_recorded_at_once_while_a_child_keeps_writing() {
    let pods = Pods::new("spam");
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "spam",
        "--restart",
        "Never",
        "--grace-period",
        "2s",
        // One file that only grows: no rotation may shrink it under the checks.
        "--log-max-size",
        "1Gi",
        "-c",
        "a=sh -c '(while :; do echo spam; done) & sleep 0.3; exit 3'",
        "-c",
        "b=sleep 600",
    ]);
    let pod = pods.wait_status("spam", "a's exit", Duration::from_secs(5), |p| {
        p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
    });
    let sup = as_pid(&pod["metadata"]["annotations"]["launcher/supervisor-pid"]);
    // The child went with its container, and the supervisor is idle again.
    let log = pods.log_file("spam", "a");
    let size = || fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let before = size();
    wait_for("the log to stop growing", Duration::from_secs(5), || {
        let s = size();
        std::thread::sleep(Duration::from_millis(200));
        s == size()
    });
    assert!(size() >= before);
    let ticks = || {
        let stat = fs::read_to_string(format!("/proc/{sup}/stat")).unwrap();
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split(' ').collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    };
    let t0 = ticks();
    std::thread::sleep(Duration::from_millis(500));
    assert!(ticks() - t0 < 10, "the supervisor spins");
    let start = Instant::now();
    pods.ok(&["down", "spam"]);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "down took {:?}",
        start.elapsed()
    );
    pods.assert_clean();
}

#[test]
fn durations_that_would_overflow_are_refused_with_their_path() {
    let pods = Pods::new("huge");
    let cases: [(&[&str], &str); 4] = [
        (
            &["up", "--name", "h", "-c", "a=true", "--grace-period", "18446744073709551615"],
            "--grace-period: invalid duration \"18446744073709551615\": must be at most 2147483647s",
        ),
        (
            &["up", "--name", "h", "-c", "a=true", "--backoff-scale", "1e300"],
            "--backoff-scale must be a number above 0 and at most 1000",
        ),
        (
            &["down", "h", "--grace-period", "18446744073709551615"],
            "--grace-period: invalid duration",
        ),
        (
            &["up", "--name", "h", "-c", "a=true", "--grace-period", "99999999999999999999h"],
            "--grace-period: invalid duration",
        ),
    ];
    for (args, want) in cases {
        let out = pods.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with(&format!("launcher: {want}")), "{err}");
        assert_eq!(err.lines().count(), 1);
    }
    let base = "apiVersion: v1\nkind: Pod\nmetadata: {name: h}\nspec:\n  containers:\n  - name: a\n    command: [sleep, '60']\n";
    for (extra, want) in [
        (
            "  activeDeadlineSeconds: 9223372036854775807\n",
            "spec.activeDeadlineSeconds: must be at most 2147483647",
        ),
        (
            "  terminationGracePeriodSeconds: 9223372036854775807\n",
            "spec.terminationGracePeriodSeconds: must be at most 2147483647",
        ),
        (
            "    lifecycle: {preStop: {sleep: {seconds: 9223372036854775807}}}\n",
            "spec.containers[0].lifecycle.preStop.sleep.seconds: must be at most 2147483647",
        ),
        (
            "    livenessProbe: {exec: {command: ['true']}, terminationGracePeriodSeconds: 9223372036854775807}\n",
            "spec.containers[0].livenessProbe.terminationGracePeriodSeconds: must be at most 2147483647",
        ),
        (
            "    env: [{name: \"A\\0B\", value: x}]\n",
            "spec.containers[0].env[0].name: invalid name",
        ),
        (
            "    args: [\"a\\0b\"]\n",
            "spec.containers[0].args[0]: must not contain a NUL byte",
        ),
    ] {
        let out = pods.up_yaml(&format!("{base}{extra}"), &["-d"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra}: {err}");
        assert!(err.starts_with(&format!("launcher: {want}")), "{extra}: {err}");
    }
    // The largest accepted values run, and down still works.
    let big = format!(
        "{base}  activeDeadlineSeconds: 2147483647\n  terminationGracePeriodSeconds: 2147483647\n"
    );
    pods.up_detached(&big, &[]);
    pods.wait_status("h", "running", Duration::from_secs(5), running);
    pods.ok(&["down", "h", "--grace-period", "0"]);
    pods.assert_clean();
}

#[test]
fn pause_dying_ends_the_pod_without_restarting_anything() {
    let pods = Pods::new("pdie");
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "pd",
        "--backoff-scale",
        "0.01",
        "-c",
        "a=sleep 600",
        "-c",
        "b=sleep 600",
    ]);
    let pod = pods.wait_status("pd", "running", Duration::from_secs(5), running);
    let pause = as_pid(&pod["metadata"]["annotations"]["launcher/pause-pid"]);
    // SAFETY: pause is a process this test started (through up -d).
    assert_eq!(unsafe { libc::kill(pause, libc::SIGKILL) }, 0);
    let pod = pods.wait_status("pd", "phase Failed", Duration::from_secs(5), |p| {
        p["status"]["phase"] == "Failed"
    });
    assert_eq!(pod["status"]["reason"], "PauseDied");
    for c in ["a", "b"] {
        let st = container(&pod, c);
        assert_eq!(st["restartCount"], 0, "{st:#}");
        assert_eq!(st["ready"], false);
        let t = &st["state"]["terminated"];
        assert_eq!(t["exitCode"], 137, "{st:#}");
        assert_eq!(t["reason"], "Error");
    }
    assert!(!pod.to_string().contains("Out of memory"), "{pod:#}");
    pods.ok(&["down", "pd"]);
    pods.assert_clean();
}

#[test]
fn a_dead_supervisor_leaves_the_pod_unknown_and_nothing_ready() {
    let pods = Pods::new("supdie");
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "sd",
        "-c",
        "a=sleep 600",
        "-c",
        "b=sleep 600",
    ]);
    let pod = pods.wait_status("sd", "running", Duration::from_secs(5), running);
    let sup = as_pid(&pod["metadata"]["annotations"]["launcher/supervisor-pid"]);
    // SAFETY: the supervisor is a process this test started (through up -d).
    assert_eq!(unsafe { libc::kill(sup, libc::SIGKILL) }, 0);
    wait_for("the supervisor to die", Duration::from_secs(5), || {
        gone(sup)
    });
    let pod = pods.status("sd");
    assert_eq!(pod["status"]["phase"], "Unknown");
    for c in ["a", "b"] {
        assert_eq!(container(&pod, c)["ready"], false);
        assert_eq!(container_pid(&pod, c), None);
    }
    assert_eq!(condition(&pod, "Ready"), "False");
    let ps = pods.ok(&["ps"]);
    let row = ps.lines().find(|l| l.starts_with("sd ")).unwrap();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cols[1..3], ["0/2", "SupervisorGone"], "{ps}");
    pods.ok(&["down", "sd", "--grace-period", "0"]);
    pods.assert_clean();
}

#[test]
fn one_pods_grace_period_never_blocks_another_pod() {
    let pods = Pods::new("locks");
    let stubborn = "a=sh -c 'trap \"\" TERM; while :; do sleep 0.05; done'";
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "slow",
        "--grace-period",
        "6s",
        "-c",
        stubborn,
    ]);
    pods.wait_status("slow", "running", Duration::from_secs(5), running);
    let mut down = Proc::spawn(pods.cmd(&["down", "slow"]).stdout(Stdio::null()));
    wait_for("slow to be stopping", Duration::from_secs(5), || {
        pods.status("slow")["metadata"]["deletionTimestamp"].is_string()
    });
    let start = Instant::now();
    pods.ok(&["up", "-d", "--name", "quick", "-c", "a=sleep 600"]);
    pods.ok(&["down", "quick", "--grace-period", "0"]);
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "up and down of another pod waited {:?}",
        start.elapsed()
    );
    assert!(down.running(), "slow's down is still in its grace period");
    assert!(down.wait_timeout(Duration::from_secs(20)).success());
    pods.assert_clean();
}

#[test]
fn down_right_after_a_killed_up_removes_everything() {
    let pods = Pods::new("killup");
    for i in 0..12u64 {
        let name = format!("k{i}");
        let mut up = Proc::spawn(
            pods.cmd(&["up", "-d", "--name", &name, "-c", "a=sleep 600"])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        // Killed at a different point of its setup each time.
        std::thread::sleep(Duration::from_millis(i * 4));
        up.signal(libc::SIGKILL);
        up.wait_timeout(Duration::from_secs(5));
        // Killed before it made anything, there is no pod to find.
        let out = pods.run(&["down", &name, "--grace-period", "0", "--ignore-not-found"]);
        assert!(
            out.status.success(),
            "down {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            pods.leftover_state().is_empty(),
            "{name}: {:?}",
            pods.leftover_state()
        );
        assert!(
            !pods.pod_cgroup(&name).exists(),
            "{name}: cgroup left behind"
        );
    }
    pods.assert_clean();
}

#[test]
fn a_setup_failure_leaves_nothing_and_frees_the_name() {
    let pods = Pods::new("fdlimit");
    let mut args = vec!["up".to_string(), "--name".into(), "many".into()];
    for i in 0..60 {
        args.extend(["-c".into(), format!("c{i}=sleep 600")]);
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    for detach in [false, true] {
        let mut argv = argv.clone();
        if detach {
            argv.push("-d");
        }
        let mut cmd = pods.cmd(&argv);
        // SAFETY: setrlimit is async-signal-safe; `ulimit -n 64` for the launcher.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: 64,
                    rlim_max: 64,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = cmd.stdin(Stdio::null()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "detach={detach}: {err}");
        assert!(err.contains("(os error 24)"), "{err}");
        no_panic(&out.stderr);
        pods.assert_clean();
    }
    // The name is free again.
    pods.ok(&["up", "-d", "--name", "many", "-c", "a=sleep 600"]);
    pods.ok(&["down", "many", "--grace-period", "0"]);
    pods.assert_clean();
}

/// Pause's child fails a step of its setup (the kernel refuses a sysctl's value): the
/// step is the error, whatever the supervisor was doing meanwhile (pause's PID
/// namespace goes with it), and nothing is left, in the foreground and detached.
#[test]
fn a_failure_of_pauses_own_setup_names_its_step_and_leaves_nothing() {
    let pods = Pods::new("pausefail");
    let manifest = "apiVersion: v1
kind: Pod
metadata:
  name: badsys
spec:
  securityContext:
    sysctls:
    - name: net.ipv4.ip_unprivileged_port_start
      value: \"nope\"
  containers:
  - name: a
    command: [sleep, \"600\"]
";
    for extra in [&[][..], &["-d"][..]] {
        let out = pods.up_yaml(manifest, extra);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {err}");
        assert_eq!(
            err.trim_end(),
            "launcher: pod setup failed: set sysctl net.ipv4.ip_unprivileged_port_start=nope: \
             Invalid argument (os error 22)",
            "{extra:?}"
        );
        pods.assert_clean();
    }
}

/// `events -w` that falls behind (here: stopped) while `down` takes the pod and its
/// events.json away still shows the pod's last events: the supervisor tells them on
/// the watcher's connection before the state goes. A watch of one pod then ends; a
/// watch of all goes on. (Once in the examples' test under load: "Stopping container
/// web" missing.)
#[test]
fn a_watcher_that_falls_behind_still_shows_the_pods_last_events() {
    let pods = Pods::new("evlag");
    let tmp = TempDir::new("evlag");
    let watch = |args: &[&str], out: &str| {
        let out = tmp.path().join(out);
        let watcher = Proc::spawn(
            pods.cmd(args)
                .stdout(fs::File::create(&out).unwrap())
                .stderr(Stdio::null()),
        );
        (watcher, move || {
            fs::read_to_string(&out).unwrap_or_default()
        })
    };
    // The watch of all pods from before the pod (its supervisor is asked once it
    // listens).
    let (mut all, all_saw) = watch(&["events", "-w"], "all");
    pods.ok(&["up", "-d", "--name", "ew", "-c", "web=sleep 600"]);
    let (mut one, one_saw) = watch(&["events", "ew", "-w"], "one");
    wait_for(
        "the watchers' first events",
        Duration::from_secs(10),
        || {
            one_saw().contains("Started container web")
                && all_saw().contains("Started container web")
        },
    );
    one.signal(libc::SIGSTOP);
    all.signal(libc::SIGSTOP);
    pods.ok(&["down", "ew", "--grace-period", "0"]);
    assert!(pods.leftover_state().is_empty());
    one.signal(libc::SIGCONT);
    all.signal(libc::SIGCONT);
    assert!(one.wait_timeout(Duration::from_secs(10)).success());
    wait_for(
        "the last events of all pods",
        Duration::from_secs(10),
        || all_saw().contains("Stopping container web"),
    );
    assert!(all.running(), "a watch of all pods goes on");
    for text in [one_saw(), all_saw()] {
        assert!(
            text.contains("Killing") && text.contains("Stopping container web"),
            "{text}"
        );
        assert_eq!(text.matches("Started container web").count(), 1, "{text}");
    }
    drop(all);
    pods.assert_clean();
}

#[test]
fn a_pod_whose_state_is_removed_or_corrupted_is_still_listed_and_taken_down() {
    let pods = Pods::new("lost");
    for how in ["removed", "corrupt", "huge"] {
        pods.ok(&["up", "-d", "--name", "lost", "-c", "a=sleep 600"]);
        let pod = pods.wait_status("lost", "running", Duration::from_secs(5), running);
        let pause = as_pid(&pod["metadata"]["annotations"]["launcher/pause-pid"]);
        let app = container_pid(&pod, "a").expect("a running container");
        let dir = pods.root.path().join("lost");
        match how {
            "removed" => fs::remove_dir_all(&dir).unwrap(),
            "corrupt" => fs::write(dir.join("pod.json"), "{garbage").unwrap(),
            // 1 GiB (sparse): refused by its size, not read.
            _ => fs::File::create(dir.join("pod.json"))
                .unwrap()
                .set_len(1 << 30)
                .unwrap(),
        }
        let start = Instant::now();
        let out = pods.run(&["ps"]);
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{how}: ps took {:?}",
            start.elapsed()
        );
        assert!(out.status.success(), "{how}");
        let ps = String::from_utf8_lossy(&out.stdout);
        let row = ps
            .lines()
            .find(|l| l.starts_with("lost "))
            .unwrap_or_else(|| panic!("{how}: {ps}"));
        let (reason, warning) = match how {
            "removed" => ("StateLost", String::new()),
            "huge" => (
                "StateCorrupt",
                format!("launcher: warning: pod lost: {}/pod.json is corrupt: 1073741824 bytes, more than any pod's state can be\n", dir.display()),
            ),
            _ => (
                "StateCorrupt",
                format!("launcher: warning: pod lost: {}/pod.json is corrupt: key must be a string at line 1 column 2\n", dir.display()),
            ),
        };
        assert_eq!(row.split_whitespace().nth(2), Some(reason), "{how}: {ps}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), warning);
        let pod = &serde_json::from_str::<serde_json::Value>(&pods.ok(&["ps", "-o", "json"]))
            .unwrap()["items"][0];
        assert_eq!(
            (&pod["status"]["phase"], &pod["status"]["reason"]),
            (&"Unknown".into(), &reason.into())
        );
        pods.ok(&["down", "lost", "--grace-period", "2s"]);
        assert!(gone(pause) && gone(app), "{how}: the pod survived down");
        assert!(!pods.ok(&["ps"]).contains("lost"));
        pods.assert_clean();
    }
}

#[test]
fn status_is_written_on_changes_not_for_every_chunk_of_output() {
    let pods = Pods::new("quiet");
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "q",
        "-c",
        "a=sh -c 'while :; do echo spam; done'",
        // No rotation within the test: a 0.log just rotated would be nearly empty.
        "--log-max-size",
        "1Gi",
    ]);
    pods.wait_status("q", "running", Duration::from_secs(5), running);
    let status = pods.root.path().join("q/status.json");
    let inode = || fs::metadata(&status).unwrap().ino();
    let first = inode();
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        assert_eq!(
            inode(),
            first,
            "status.json rewritten while nothing changed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(fs::metadata(pods.log_file("q", "a")).unwrap().len() > 10_000);
    pods.ok(&["down", "q", "--grace-period", "0"]);
    pods.assert_clean();
}

#[test]
fn twenty_ups_and_twenty_downs_at_once_keep_every_pod_whole() {
    let pods = Pods::new("par");
    let old: Vec<String> = (0..20).map(|i| format!("old{i}")).collect();
    let new: Vec<String> = (0..20).map(|i| format!("new{i}")).collect();
    // Twenty at once into a cgroup parent that does not exist yet.
    std::thread::scope(|s| {
        for n in &old {
            let pods = &pods;
            s.spawn(move || pods.ok(&["up", "-d", "--name", n, "-c", "a=sleep 600"]));
        }
    });
    // Twenty pods come up while the twenty others are taken down, all at once.
    let outputs: Vec<(String, std::process::Output)> = std::thread::scope(|s| {
        let ups = new.iter().map(|n| {
            let pods = &pods;
            s.spawn(move || {
                let out = pods.run(&[
                    "up",
                    "-d",
                    "--name",
                    n,
                    "-c",
                    "a=sleep 600",
                    "-c",
                    "b=sleep 600",
                ]);
                (format!("up {n}"), out)
            })
        });
        let downs = old.iter().map(|n| {
            let pods = &pods;
            s.spawn(move || {
                (
                    format!("down {n}"),
                    pods.run(&["down", n, "--grace-period", "0"]),
                )
            })
        });
        let handles: Vec<_> = ups.chain(downs).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (what, out) in &outputs {
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        no_panic(&out.stderr);
    }
    for name in &new {
        let pod = pods.status(name);
        assert_eq!(pod["metadata"]["name"], name.as_str());
        assert_eq!(pod["status"]["phase"], "Running", "{pod}");
        for c in ["a", "b"] {
            assert!(container(&pod, c)["state"]["running"].is_object(), "{pod}");
        }
        assert_eq!(
            pod["metadata"]["annotations"]["launcher/cgroup"],
            pods.pod_cgroup(name).display().to_string()
        );
    }
    for name in &old {
        assert!(
            !pods.run(&["status", name]).status.success(),
            "{name} is still there"
        );
        assert!(!pods.pod_cgroup(name).exists(), "{name}'s cgroup is left");
    }
    let listed = pods.ok(&["ps"]);
    let mut names: Vec<&str> = listed
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    names.sort_unstable();
    let mut want: Vec<&str> = new.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(names, want);
    std::thread::scope(|s| {
        for n in &new {
            let pods = &pods;
            s.spawn(move || pods.ok(&["down", n, "--grace-period", "0"]));
        }
    });
    pods.assert_clean();
}

/// `down` takes apart only what the layout says is the pod's: a record whose paths
/// were changed (a data directory elsewhere, a uid that climbs out of the data root,
/// a record of another pod's name) leads it to no other directory.
#[test]
fn a_changed_record_leads_down_to_no_other_directory() {
    let pods = Pods::new("tamper");
    let victim = TempDir::new("tamper-victim");
    fs::create_dir_all(victim.path().join("pods")).unwrap();
    fs::write(victim.path().join("keep"), "mine").unwrap();
    for (i, change) in ["data_dir", "uid", "name"].into_iter().enumerate() {
        let name = format!("t{i}");
        pods.ok(&["up", "-d", "--name", &name, "-c", "a=sleep 600"]);
        // Without its supervisor: `down` alone takes the pod apart, by the record.
        let pod = pods.wait_status(&name, "running", Duration::from_secs(5), running);
        let sup = as_pid(&pod["metadata"]["annotations"]["launcher/supervisor-pid"]);
        signal_pid(sup, libc::SIGKILL);
        wait_for("the supervisor to go", Duration::from_secs(5), || gone(sup));
        let record = pods.root.path().join(&name).join("pod.json");
        let mut rec: Value = serde_json::from_str(&fs::read_to_string(&record).unwrap()).unwrap();
        let out_of_root = format!("x/../../../../../../../..{}", victim.path().display());
        match change {
            "data_dir" => rec["data_dir"] = victim.path().display().to_string().into(),
            "uid" => rec["facts"]["uid"] = out_of_root.into(),
            _ => rec["spec"]["name"] = "other".into(),
        }
        assert!(
            rec.pointer("/facts/uid").is_some() && rec.get("spec").is_some(),
            "the record's shape changed: {rec}"
        );
        fs::write(&record, serde_json::to_vec(&rec).unwrap()).unwrap();
        pods.ok(&["down", &name, "--grace-period", "0"]);
        assert_eq!(
            fs::read_to_string(victim.path().join("keep")).unwrap(),
            "mine",
            "{change}"
        );
        assert!(victim.path().join("pods").is_dir(), "{change}");
    }
    pods.assert_clean();
}

/// A FIFO, a symlink or a directory in place of a pod's state files holds no command:
/// each reads the file without waiting, says what it found, and `down` still works.
#[test]
fn a_fifo_in_place_of_a_state_file_hangs_no_command() {
    let pods = Pods::new("fifo");
    pods.ok(&["up", "-d", "--name", "f", "-c", "a=sleep 600"]);
    pods.wait_status("f", "running", Duration::from_secs(5), running);
    let dir = pods.root.path().join("f");
    for file in ["status.json", "events.json", "pod.json"] {
        let path = dir.join(file);
        let saved = fs::read(&path).unwrap_or_default();
        let _ = fs::remove_file(&path);
        mkfifo(&path);
        for args in [
            vec!["ps"],
            vec!["status", "f"],
            vec!["describe", "f"],
            vec!["events", "f"],
        ] {
            let mut cmd = Proc::spawn(pods.cmd(&args).stdout(Stdio::null()).stderr(Stdio::piped()));
            cmd.wait_timeout(Duration::from_secs(5));
            no_panic(&cmd.stderr());
        }
        fs::remove_file(&path).unwrap();
        fs::write(&path, saved).unwrap();
    }
    // A symlink to a file elsewhere is not followed.
    let status = dir.join("status.json");
    fs::remove_file(&status).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", &status).unwrap();
    let out = pods.run(&["status", "f"]);
    no_panic(&out.stderr);
    pods.ok(&["down", "f", "--grace-period", "0"]);
    pods.assert_clean();
}

/// A pod's cgroup names its owner: another state root sharing the cgroup parent
/// neither lists the pod nor takes it down.
#[test]
fn another_roots_down_and_ps_never_touch_a_pod() {
    let a = Pods::new("owner");
    let mut b = Pods::new("owner-b");
    b.cgroup_parent = a.cgroup_parent.clone();
    a.ok(&["up", "-d", "--name", "mine", "-c", "x=sleep 600"]);
    let pod = a.wait_status("mine", "running", Duration::from_secs(5), running);
    let pause = as_pid(&pod["metadata"]["annotations"]["launcher/pause-pid"]);
    assert!(!b.ok(&["ps"]).contains("mine"), "listed by another root");
    let out = b.run(&["down", "mine", "--grace-period", "0"]);
    assert_eq!(out.status.code(), Some(1), "not found there");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not found"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!gone(pause), "another root's down ended the pod");
    assert!(a.pod_cgroup("mine").is_dir());
    a.ok(&["down", "mine", "--grace-period", "0"]);
    a.assert_clean();
}

/// A tmpfs mounted over `dir` for as long as it lives.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Tmpfs {
        let opts = format!("size={size},mode=0700");
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
            .arg(dir)
            .status();
        assert!(
            st.is_ok_and(|s| s.success()),
            "mount a tmpfs on {}",
            dir.display()
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// A data root with no room left loses log lines, not the pod: a Warning event says
/// so, once, and the container runs on.
#[test]
fn a_full_data_root_is_a_warning_and_the_pod_runs_on() {
    let pods = Pods::new("full");
    let _tmpfs = Tmpfs::mount(pods.data.path(), "1m");
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "full",
        "--log-max-size",
        "100Mi",
        "-c",
        "a=sh -c 'yes 0123456789abcdef | head -c 3000000; exec sleep 600'",
    ]);
    let lost = "Failed to write the log of container a: No space left on device";
    wait_for("the LogLost event", Duration::from_secs(10), || {
        pods.ok(&["events", "full"]).contains(lost)
    });
    let events = pods.ok(&["events", "full"]);
    assert_eq!(events.matches(lost).count(), 1, "{events}");
    assert!(events.contains("LogLost"), "{events}");
    let pod = pods.status("full");
    assert!(
        pod["status"]["containerStatuses"][0]["state"]["running"].is_object(),
        "{pod}"
    );
    assert!(pods.ok(&["describe", "full"]).contains(lost));
    pods.ok(&["down", "full", "--grace-period", "0"]);
    pods.assert_clean();
}
