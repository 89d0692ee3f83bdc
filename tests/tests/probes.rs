//! Probes, lifecycle hooks, termination, phases and security contexts from Pod
//! manifests: the examples of the Kubernetes documentation with their times scaled
//! down (periods of 1 s, back-off ×0.02).
#![allow(clippy::unwrap_used)]

use pod_tests::*;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Fast back-off, so restarts after probe failures come within a test's patience.
const FAST: &[&str] = &["--backoff-scale", "0.02"];

fn restarts(pod: &Value, name: &str) -> u64 {
    container(pod, name)["restartCount"].as_u64().unwrap()
}

fn last_message(pod: &Value, name: &str) -> String {
    container(pod, name)["lastState"]["terminated"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The docs' exec liveness example: healthy for a while, then the file goes.
#[test]
fn exec_liveness_restarts_a_container_that_turns_unhealthy() {
    let pods = Pods::new("pexec");
    // As the docs have it: /tmp is the container's own, which its probe sees.
    let healthy = "/tmp/healthy";
    let yaml = format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: liveness-exec}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: liveness
    command: [sh, -c, 'touch {h}; sleep 1; rm -f {h}; sleep 600']
    livenessProbe:
      exec: {{command: [cat, {h}]}}
      periodSeconds: 1
      failureThreshold: 1
",
        h = healthy
    );
    pods.up_detached(&yaml, FAST);
    let pod = pods.wait_status(
        "liveness-exec",
        "two restarts",
        Duration::from_secs(20),
        |p| restarts(p, "liveness") >= 2,
    );
    let message = last_message(&pod, "liveness");
    assert!(
        message.starts_with("Container liveness failed liveness probe, will be restarted: "),
        "{message}"
    );
    assert_eq!(pod["status"]["phase"], "Running");
    pods.ok(&["down", "liveness-exec"]);
    pods.assert_clean();
}

/// The docs' HTTP liveness example: a server whose /healthz turns to 500.
#[test]
fn http_liveness_restarts_a_server_that_starts_failing() {
    let pods = Pods::new("phttp");
    let yaml = format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: liveness-http}}
spec:
  terminationGracePeriodSeconds: 1
  volumes: {volumes}
  containers:
  - name: server
    command: [{target}, http, '8080', '3000']
    volumeMounts: {mounts}
    ports: [{{name: liveness-port, containerPort: 8080}}]
    livenessProbe:
      httpGet:
        path: /healthz
        port: liveness-port
        httpHeaders: [{{name: Custom-Header, value: Awesome}}]
      initialDelaySeconds: 1
      periodSeconds: 1
      failureThreshold: 1
",
        target = bin("probe-target").display(),
        volumes = host_dirs(&[&bin_dir()]).0,
        mounts = host_dirs(&[&bin_dir()]).1,
    );
    pods.up_detached(&yaml, FAST);
    let pod = pods.wait_status(
        "liveness-http",
        "the first 200s",
        Duration::from_secs(5),
        |p| container(p, "server")["state"]["running"].is_object(),
    );
    assert_eq!(restarts(&pod, "server"), 0);
    pods.wait_status(
        "liveness-http",
        "a restart after the 500s",
        Duration::from_secs(20),
        |p| last_message(p, "server").ends_with("HTTP probe failed with statuscode: 500"),
    );
    pods.ok(&["down", "liveness-http"]);
    pods.assert_clean();
}

/// The docs' TCP readiness example: Ready once the port accepts connections.
#[test]
fn tcp_readiness_flips_ready_and_the_pod_conditions() {
    let pods = Pods::new("ptcp");
    let tmp = TempDir::new("ptcp");
    let listen = tmp.path().join("listen");
    let yaml = format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: goproxy}}
spec:
  volumes: {volumes}
  containers:
  - name: goproxy
    command: [{target}, tcp, '8080', {listen}]
    volumeMounts: {mounts}
    readinessProbe:
      tcpSocket: {{port: 8080}}
      periodSeconds: 1
",
        target = bin("probe-target").display(),
        listen = listen.display(),
        volumes = host_dirs(&[tmp.path(), &bin_dir()]).0,
        mounts = host_dirs(&[tmp.path(), &bin_dir()]).1,
    );
    pods.up_detached(&yaml, &[]);
    // Before the server listens: running, not ready, and the pod's conditions say why.
    let pod = pods.wait_status(
        "goproxy",
        "a failed readiness probe",
        Duration::from_secs(10),
        |p| {
            p["status"]["containerStatuses"][0]["state"]["running"].is_object()
                && condition(p, "Ready") == "False"
        },
    );
    let c = container(&pod, "goproxy");
    assert_eq!(c["ready"], false, "{c}");
    assert_eq!(condition(&pod, "ContainersReady"), "False");
    let ready = pod["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(ready["reason"], "ContainersNotReady");
    assert_eq!(
        ready["message"],
        "containers with unready status: [goproxy]"
    );
    assert!(pods.ok(&["ps"]).contains("0/1"));
    // Two more probe periods: still not ready while nothing listens.
    let waited = Instant::now();
    while waited.elapsed() < Duration::from_millis(2100) {
        assert_eq!(
            container(&pods.status("goproxy"), "goproxy")["ready"],
            false
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::write(&listen, "").unwrap();
    let pod = pods.wait_status("goproxy", "Ready", Duration::from_secs(10), |p| {
        container(p, "goproxy")["ready"] == true
    });
    assert_eq!(condition(&pod, "ContainersReady"), "True");
    assert_eq!(condition(&pod, "Ready"), "True");
    assert_eq!(restarts(&pod, "goproxy"), 0, "readiness never restarts");
    assert!(pods.ok(&["ps"]).contains("1/1"));
    // probe-target, PID 1 of its namespace, has no SIGTERM handler.
    pods.ok(&["down", "goproxy", "--grace-period", "0"]);
    pods.assert_clean();
}

/// The Python of the test venv, which has grpcio (`make deps` installs it).
fn grpc_python() -> std::path::PathBuf {
    let venv = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../build/venv");
    let python = venv.join("bin/python3");
    let has_grpc = std::process::Command::new(&python)
        .args(["-c", "import grpc_health.v1.health"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_grpc,
        "{} has no grpcio-health-checking: `make deps` installs it",
        python.display()
    );
    python
}

/// The gRPC readiness example of the Kubernetes blog (agnhost grpc-health-checking):
/// Ready while the server answers SERVING; after `make-not-serving`, not Ready, with
/// the kubelet's event; Ready again when it serves. A liveness probe of a service the
/// server does not know restarts the container with gRPC's NotFound.
#[test]
fn grpc_probes_speak_the_health_checking_protocol() {
    let pods = Pods::new("pgrpc");
    let tmp = TempDir::new("pgrpc");
    let flag = tmp.path().join("not-serving");
    let python = grpc_python();
    let venv = python
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .canonicalize()
        .unwrap();
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let dirs = [tmp.path(), venv.as_path(), script.as_path()];
    let (volumes, mounts) = host_dirs(&dirs);
    let server = |port: u16| {
        format!(
            "[{python}, {script}/grpc-health.py, '{port}', {flag}]",
            python = python.display(),
            script = script.display(),
            flag = flag.display()
        )
    };
    let yaml = format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: test-grpc}}
spec:
  terminationGracePeriodSeconds: 1
  volumes: {volumes}
  containers:
  - name: agnhost
    command: {serve}
    volumeMounts: {mounts}
    ports: [{{containerPort: 5000}}]
    readinessProbe:
      grpc: {{port: 5000}}
      periodSeconds: 1
  - name: db
    command: {db}
    volumeMounts: {mounts}
    livenessProbe:
      grpc: {{port: 5001, service: cache}}
      initialDelaySeconds: 2
      periodSeconds: 1
      failureThreshold: 1
",
        serve = server(5000),
        db = server(5001),
    );
    pods.up_detached(&yaml, FAST);
    let pod = pods.wait_status("test-grpc", "Ready", Duration::from_secs(15), |p| {
        container(p, "agnhost")["ready"] == true
    });
    assert_eq!(condition(&pod, "Ready"), "True");
    let describe = pods.ok(&["describe", "test-grpc"]);
    assert!(
        describe.contains(
            "Readiness:      grpc <pod>:5000  delay=0s timeout=1s period=1s #success=1 #failure=3"
        ),
        "{describe}"
    );
    // curl http://localhost:8080/make-not-serving, in the blog's words.
    std::fs::write(&flag, "").unwrap();
    pods.wait_status("test-grpc", "not Ready", Duration::from_secs(10), |p| {
        container(p, "agnhost")["ready"] == false
    });
    let events = pods.ok(&["events", "test-grpc"]);
    assert!(
        events.contains(
            r#"Readiness probe failed: service unhealthy (responded with "NOT_SERVING")"#
        ),
        "{events}"
    );
    std::fs::remove_file(&flag).unwrap();
    pods.wait_status("test-grpc", "Ready again", Duration::from_secs(10), |p| {
        container(p, "agnhost")["ready"] == true
    });
    // The unknown service: NotFound, a restart with the kubelet's message.
    let pod = pods.wait_status("test-grpc", "db restarted", Duration::from_secs(20), |p| {
        restarts(p, "db") >= 1
    });
    let message = last_message(&pod, "db");
    assert!(
        message.starts_with("Container db failed liveness probe, will be restarted: ")
            && message
                .contains("error: health rpc probe failed: rpc error: code = NotFound desc = "),
        "{message}"
    );
    assert_eq!(restarts(&pod, "agnhost"), 0);
    // Python, PID 1 of its namespace, stops at the grace period's SIGKILL.
    pods.ok(&["down", "test-grpc", "--grace-period", "0"]);
    pods.assert_clean();
}

/// A gRPC probe of a port nothing listens on, and of a server that is not gRPC.
#[test]
fn grpc_probes_that_cannot_reach_a_health_service_say_why() {
    let pods = Pods::new("pgrpcx");
    let yaml = format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: nogrpc}}
spec:
  terminationGracePeriodSeconds: 1
  volumes: {volumes}
  containers:
  - name: web
    command: [{target}, http, '8080', '600000']
    volumeMounts: {mounts}
    readinessProbe:
      grpc: {{port: 8080}}
      periodSeconds: 1
  - name: none
    command: [sleep, '600']
    readinessProbe:
      grpc: {{port: 5999}}
      periodSeconds: 1
",
        target = bin("probe-target").display(),
        volumes = host_dirs(&[&bin_dir()]).0,
        mounts = host_dirs(&[&bin_dir()]).1,
    );
    pods.up_detached(&yaml, &[]);
    wait_for("both probes to fail", Duration::from_secs(10), || {
        let events = pods.ok(&["events", "nogrpc"]);
        events.contains(r#"Readiness probe failed: error: failed to connect service at "127.0.0.1:5999": dial tcp 127.0.0.1:5999: connect: connection refused"#)
            && events.contains("Readiness probe failed: error: health rpc probe failed: rpc error: code = Unavailable")
    });
    pods.ok(&["down", "nogrpc", "--grace-period", "0"]);
    pods.assert_clean();
}

/// A startup probe holds a strict liveness probe off a slow starter; one that never
/// succeeds gets the container restarted.
#[test]
fn a_startup_probe_protects_a_slow_starter_from_its_liveness_probe() {
    let pods = Pods::new("pstart");
    let tmp = TempDir::new("pstart");
    let pod = |name: &str, marker: &str, threshold: u32| {
        format!(
            "apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  volumes: {volumes}
  containers:
  - name: app
    command: [sh, -c, 'sleep 2; touch {up}; sleep 600']
    volumeMounts: {mounts}
    startupProbe:
      exec: {{command: [cat, {marker}]}}
      periodSeconds: 1
      failureThreshold: {threshold}
    livenessProbe:
      exec: {{command: [cat, {marker}]}}
      periodSeconds: 1
      failureThreshold: 1
",
            up = tmp.path().join(format!("{name}-up")).display(),
            marker = tmp.path().join(marker).display(),
            volumes = host_dirs(&[tmp.path()]).0,
            mounts = host_dirs(&[tmp.path()]).1,
        )
    };
    pods.up_detached(&pod("slow", "slow-up", 10), FAST);
    pods.up_detached(&pod("never", "nothing", 2), FAST);
    let early = pods.status("slow");
    assert_eq!(container(&early, "app")["started"], false, "{early}");
    assert_eq!(container(&early, "app")["ready"], false, "{early}");
    let slow = pods.wait_status("slow", "started", Duration::from_secs(15), |p| {
        container(p, "app")["started"] == true
    });
    assert_eq!(container(&slow, "app")["ready"], true);
    let never = pods.wait_status("never", "a restart", Duration::from_secs(15), |p| {
        restarts(p, "app") >= 1
    });
    assert!(
        last_message(&never, "app").contains("failed startup probe"),
        "{never}"
    );
    // Liveness had every chance to fire on the slow starter meanwhile.
    assert_eq!(restarts(&pods.status("slow"), "app"), 0);
    pods.ok(&["down", "slow"]);
    pods.ok(&["down", "never"]);
    pods.assert_clean();
}

/// postStart runs before the container counts as Running and before the next
/// container starts; preStop runs before SIGTERM on down.
#[test]
fn post_start_and_pre_stop_run_in_the_kubelet_order() {
    let pods = Pods::new("phook");
    let tmp = TempDir::new("phook");
    let trail = tmp.path().join("trail");
    let gate = tmp.path().join("gate");
    let yaml = format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: hooks}}
spec:
  terminationGracePeriodSeconds: 10
  volumes: {volumes}
  containers:
  - name: a
    command: [sh, -c, 'trap \"echo TERM >> {t}; exit 0\" TERM; while :; do sleep 0.05; done']
    volumeMounts: {mounts}
    lifecycle:
      postStart: {{exec: {{command: [sh, -c, 'until [ -e {g} ]; do sleep 0.05; done; echo postStart >> {t}']}}}}
      preStop: {{exec: {{command: [sh, -c, 'echo preStop >> {t}; sleep 0.5']}}}}
  - name: b
    command: [sh, -c, 'echo b >> {t}; trap \"exit 0\" TERM; while :; do sleep 0.05; done']
    volumeMounts: {mounts}
",
        t = trail.display(),
        g = gate.display(),
        volumes = host_dirs(&[tmp.path()]).0,
        mounts = host_dirs(&[tmp.path()]).1,
    );
    pods.up_detached(&yaml, &[]);
    // While postStart runs, a is not yet running, the pod Pending, b not started.
    let pod = pods.status("hooks");
    let a = container(&pod, "a");
    assert_eq!(a["state"]["waiting"]["reason"], "ContainerCreating", "{a}");
    assert_eq!(pod["status"]["phase"], "Pending");
    assert!(container(&pod, "b")["state"]["waiting"].is_object());
    std::fs::write(&gate, "").unwrap();
    pods.wait_status("hooks", "Running", Duration::from_secs(10), |p| {
        p["status"]["phase"] == "Running" && container(p, "b")["state"]["running"].is_object()
    });
    wait_for("b's line", Duration::from_secs(5), || {
        std::fs::read_to_string(&trail).is_ok_and(|t| t.contains('b'))
    });
    pods.ok(&["down", "hooks"]);
    assert_eq!(
        std::fs::read_to_string(&trail).unwrap(),
        "postStart\nb\npreStop\nTERM\n"
    );
    pods.assert_clean();
}

/// The containers after the first are set up ahead (held before their program): a
/// pod stopped while the first one's postStart runs never runs them, and nothing of
/// them is left.
#[test]
fn a_pod_stopped_during_post_start_never_runs_the_containers_after() {
    let pods = Pods::new("phold");
    let tmp = TempDir::new("phold");
    let trail = tmp.path().join("trail");
    let yaml = format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: held}}
spec:
  terminationGracePeriodSeconds: 1
  volumes: {volumes}
  containers:
  - name: a
    command: [sleep, '600']
    volumeMounts: {mounts}
    lifecycle:
      postStart: {{exec: {{command: [sh, -c, 'echo postStart >> {t}; sleep 600']}}}}
  - name: b
    command: [sh, -c, 'echo b >> {t}; exec sleep 600']
    volumeMounts: {mounts}
  - name: c
    command: [sh, -c, 'echo c >> {t}; exec sleep 600']
    volumeMounts: {mounts}
",
        t = trail.display(),
        volumes = host_dirs(&[tmp.path()]).0,
        mounts = host_dirs(&[tmp.path()]).1,
    );
    pods.up_detached(&yaml, &[]);
    wait_for("a's postStart", Duration::from_secs(10), || {
        std::fs::read_to_string(&trail).is_ok_and(|t| t.contains("postStart"))
    });
    std::thread::sleep(Duration::from_millis(300));
    let events = pods.ok(&["events", "held"]);
    assert!(!events.contains("container b"), "{events}");
    pods.ok(&["down", "held", "--grace-period", "0"]);
    assert_eq!(std::fs::read_to_string(&trail).unwrap(), "postStart\n");
    pods.assert_clean();
}

#[test]
fn a_failing_post_start_hook_kills_the_container() {
    let pods = Pods::new("pfail");
    let yaml = "apiVersion: v1
kind: Pod
metadata: {name: badhook}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: a
    command: [sleep, '600']
    lifecycle:
      postStart: {exec: {command: [sh, -c, 'exit 3']}}
";
    pods.up_detached(yaml, &[]);
    let pod = pods.wait_status("badhook", "Failed", Duration::from_secs(10), |p| {
        p["status"]["phase"] == "Failed"
    });
    let t = &container(&pod, "a")["state"]["terminated"];
    assert_eq!(
        t["message"], "PostStartHook failed: command exited with status 3",
        "{t}"
    );
    // sleep, PID 1 of its own namespace, has no SIGTERM handler: the SIGKILL at the
    // end of the grace period ends it, as on a node.
    assert_eq!(
        (&t["signal"], &t["exitCode"]),
        (&9.into(), &137.into()),
        "{t}"
    );
    pods.ok(&["down", "badhook"]);
    pods.assert_clean();
}

/// A preStop hook that outlives the grace period is cut short; the container then
/// gets SIGTERM and the kubelet's last 2 s before SIGKILL.
#[test]
fn a_pre_stop_hook_that_overruns_the_grace_period_gets_two_more_seconds() {
    let pods = Pods::new("pover");
    let tmp = TempDir::new("pover");
    let trail = tmp.path().join("trail");
    let yaml = format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: overrun}}
spec:
  terminationGracePeriodSeconds: 1
  volumes: {volumes}
  containers:
  - name: a
    command: [sh, -c, 'trap \"echo TERM >> {t}\" TERM; while :; do sleep 0.05; done']
    volumeMounts: {mounts}
    lifecycle:
      preStop: {{exec: {{command: [sh, -c, 'echo preStop >> {t}; exec sleep 30']}}}}
",
        t = trail.display(),
        volumes = host_dirs(&[tmp.path()]).0,
        mounts = host_dirs(&[tmp.path()]).1,
    );
    pods.up_detached(&yaml, &[]);
    let pod = pods.wait_status("overrun", "Running", Duration::from_secs(5), |p| {
        p["status"]["phase"] == "Running"
    });
    let pid = container_pid(&pod, "a").expect("a running container");
    let start = Instant::now();
    pods.ok(&["down", "overrun"]);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(2900),
        "1 s grace + 2 s extension, took {took:?}"
    );
    assert!(took < scaled(Duration::from_secs(15)), "took {took:?}");
    assert_eq!(
        std::fs::read_to_string(&trail).unwrap(),
        "preStop\nTERM\n",
        "SIGTERM comes after preStop, which does not finish"
    );
    assert!(stat_state(pid).is_none_or(|(s, _)| s == 'Z'), "killed");
    pods.assert_clean();
}

/// Succeeded and Failed as Kubernetes defines them for each restart policy.
#[test]
fn phases_follow_the_restart_policy() {
    let pods = Pods::new("phase");
    let cases = [
        ("never-ok", "Never", 0, "Succeeded"),
        ("never-err", "Never", 3, "Failed"),
        ("onfail-ok", "OnFailure", 0, "Succeeded"),
        ("onfail-err", "OnFailure", 3, "Running"),
        ("always-ok", "Always", 0, "Running"),
    ];
    for (name, policy, code, _) in cases {
        let yaml = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: {policy}\n  containers:\n  - name: a\n    command: [sh, -c, 'sleep 0.2; exit {code}']\n"
        );
        pods.up_detached(&yaml, FAST);
    }
    for (name, _, code, phase) in cases {
        let pod = pods.wait_status(name, phase, Duration::from_secs(10), |p| {
            let a = container(p, "a");
            let done = a["state"]["terminated"].is_object() || restarts(p, "a") >= 2;
            done && p["status"]["phase"] == phase
        });
        let a = container(&pod, "a");
        if phase == "Running" {
            // Restarted whatever the exit status (Always), or after failing (OnFailure).
            assert!(restarts(&pod, "a") >= 2, "{a}");
            assert_eq!(a["lastState"]["terminated"]["exitCode"], code);
        } else {
            assert_eq!(a["state"]["terminated"]["exitCode"], code, "{a}");
            assert_eq!(restarts(&pod, "a"), 0);
        }
    }
    for (name, ..) in cases {
        pods.ok(&["down", name]);
    }
    pods.assert_clean();
}

/// runAsUser / runAsGroup and capabilities, seen from inside the containers.
#[test]
fn security_context_sets_user_group_and_capabilities() {
    let pods = Pods::new("psec");
    let yaml = "apiVersion: v1
kind: Pod
metadata: {name: sec}
spec:
  restartPolicy: Never
  securityContext: {runAsUser: 1000}
  containers:
  - name: user
    command: [sh, -c, 'echo $(id -u):$(id -g) $(grep CapEff /proc/self/status)']
    securityContext: {runAsGroup: 2000}
  - name: caps
    command: [sh, -c, 'grep -E \"^Cap(Eff|Bnd)\" /proc/self/status']
    securityContext:
      runAsUser: 0
      capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
";
    let out = pods.up_yaml(yaml, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A non-root user keeps no effective capability (no ambient set), as under runc.
    assert!(
        stdout.contains("[user] 1000:2000 CapEff: 0000000000000000"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[caps] CapEff:\t0000000000000400"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[caps] CapBnd:\t0000000000000400"),
        "{stdout}"
    );
    pods.assert_clean();
}

/// Over its memory limit, a manifest's container ends OOMKilled and comes back.
#[test]
#[ignore = "needs cgroup v2 controllers: VM tier"]
fn a_container_over_its_memory_limit_is_oom_killed_and_restarted() {
    let pods = Pods::new("poom");
    let yaml = "apiVersion: v1
kind: Pod
metadata: {name: oom}
spec:
  restartPolicy: OnFailure
  containers:
  - name: hog
    command: [dd, if=/dev/zero, of=/dev/null, bs=64M, count=1]
    resources: {limits: {memory: 32Mi}}
  - name: idle
    command: [sleep, '600']
    resources: {limits: {memory: 32Mi}}
";
    pods.up_detached(yaml, FAST);
    let pod = pods.wait_status(
        "oom",
        "an OOM kill and a restart",
        Duration::from_secs(30),
        |p| restarts(p, "hog") >= 1,
    );
    let hog = container(&pod, "hog");
    assert_eq!(
        hog["lastState"]["terminated"]["reason"], "OOMKilled",
        "{hog}"
    );
    assert_eq!(hog["lastState"]["terminated"]["exitCode"], 137);
    assert_eq!(
        restarts(&pod, "idle"),
        0,
        "the OOM kill stays in its container"
    );
    // `sleep`, PID 1 of its namespace, stops only at the grace period's SIGKILL.
    pods.ok(&["down", "oom", "--grace-period", "0"]);
    pods.assert_clean();
}
