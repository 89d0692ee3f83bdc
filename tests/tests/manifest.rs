//! `launcher up -f`: Kubernetes Pod manifests, as a user writes them.
#![allow(clippy::unwrap_used)]

use pod_tests::*;
use std::time::Duration;

#[test]
fn a_manifest_runs_with_its_command_args_env_and_working_dir() {
    let pods = Pods::new("mf");
    let yaml = "apiVersion: v1
kind: Pod
metadata:
  name: mf
  labels: {app: demo}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 3
  containers:
  - name: a
    image: busybox:1.36
    command: [sh, -c]
    args: ['pwd; echo mode=$MODE; hostname']
    workingDir: /tmp
    env: [{name: MODE, value: fast}]
  - name: b
    command: ['true']
";
    let out = pods.up_yaml(yaml, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for line in ["[a] /tmp", "[a] mode=fast", "[a] mf"] {
        assert!(stdout.contains(line), "missing {line:?} in {stdout}");
    }
    assert!(
        stderr.contains(
            "warning: spec.containers[0].image: \"busybox:1.36\" is noted but not pulled"
        ),
        "{stderr}"
    );
    pods.assert_clean();
}

#[test]
fn invalid_manifests_fail_with_the_field_path() {
    let pods = Pods::new("mfbad");
    let base = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: a\n    command: [sleep, '60']\n";
    for (extra, want) in [
        (
            "  - name: b\n    command: [x]\n    livenessProbe:\n      exec: {command: ['true']}\n      periodSeconds: 0\n",
            "spec.containers[1].livenessProbe.periodSeconds: must be at least 1",
        ),
        (
            "    readinessProbe: {grpc: {port: 9000, mode: TLS}}\n",
            "spec.containers[0].readinessProbe.grpc.mode: TLS is not supported by launcher",
        ),
        (
            "    ports: [{name: web, containerPort: 80}]\n    livenessProbe: {httpGet: {port: http}}\n",
            "spec.containers[0].livenessProbe.httpGet.port: no port named \"http\"",
        ),
        (
            "    lifecycle: {preStop: {exec: {command: [a]}, sleep: {seconds: 1}}}\n",
            "spec.containers[0].lifecycle.preStop: must specify exactly one handler",
        ),
        (
            "    securityContext: {capabilities: {add: [FLY]}}\n",
            "spec.containers[0].securityContext.capabilities.add[0]: unknown capability \"FLY\"",
        ),
        (
            "    volumeMounts: [{name: v, mountPath: /v}]\n",
            "spec.containers[0].volumeMounts[0].name: not found: no volume named \"v\" in spec.volumes",
        ),
        (
            "    resources: {limits: {memory: 12Zi}}\n",
            "spec.containers[0].resources.limits.memory: invalid memory quantity \"12Zi\"",
        ),
        (
            "    resources: {limits: {cpu: '0.0001'}}\n",
            "spec.containers[0].resources.limits.cpu: invalid cpu quantity \"0.0001\"",
        ),
        (
            "  restartPolicy: Sometimes\n",
            "spec.restartPolicy: unsupported value \"Sometimes\"",
        ),
        (
            "  terminationGracePeriodSeconds: -1\n",
            "spec.terminationGracePeriodSeconds: must be at least 0",
        ),
    ] {
        let out = pods.up_yaml(&format!("{base}{extra}"), &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!("launcher: {want}")),
            "{extra}: {err}"
        );
        pods.assert_clean();
    }
    let out = pods.up_yaml("apiVersion: apps/v1\nkind: Deployment\n", &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected apiVersion v1 and kind Pod"));
    let out = pods.run(&["up", "-f", "/no/such/pod.yaml"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /no/such/pod.yaml"));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn dry_run_turns_flags_into_a_manifest_that_runs_the_same_pod() {
    let pods = Pods::new("dry");
    let flags = [
        "up",
        "--name",
        "dry",
        "-c",
        "a=sleep 600",
        "-c",
        "b=sh -c 'echo $X'",
        "-e",
        "X=1",
        "--memory",
        "64Mi",
        "--cpu",
        "250m",
        "--pids",
        "40",
        "--restart",
        "OnFailure",
        "--grace-period",
        "7s",
        "--dry-run",
        "-o",
        "yaml",
    ];
    let yaml = pods.ok(&flags);
    let pod: serde_json::Value = serde_json::to_value(
        serde_json::from_str::<serde_json::Value>(
            &pods.ok(&[&flags[..flags.len() - 1], &["json"]].concat()),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(pod["kind"], "Pod");
    assert_eq!(pod["spec"]["restartPolicy"], "OnFailure");
    assert_eq!(pod["spec"]["terminationGracePeriodSeconds"], 7);
    assert_eq!(pod["spec"]["resources"]["limits"]["memory"], "64Mi");
    assert_eq!(
        pod["spec"]["containers"][1]["command"],
        serde_json::json!(["sh", "-c", "echo $X"])
    );
    assert!(pods.leftover_state().is_empty(), "--dry-run starts nothing");
    // Fed back, the manifest describes the same pod.
    let again = pods.up_yaml(&yaml, &["--dry-run"]);
    assert_eq!(String::from_utf8_lossy(&again.stdout), yaml);
    assert!(
        again.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    // And it starts, detached, from standard input; with its limits where the
    // controllers exist (the VM), without them on a host that has none.
    let runnable = if in_vm() {
        yaml.clone()
    } else {
        yaml.replace(
            "  resources:\n    limits:\n      cpu: 250m\n      memory: 64Mi\n",
            "",
        )
        .replace("  annotations:\n    launcher/pids-max: '40'\n", "")
    };
    pods.up_detached(&runnable, &[]);
    pods.wait_status("dry", "running", Duration::from_secs(5), |p| {
        p["status"]["phase"] == "Running"
    });
    if in_vm() {
        let read = |f: &str| {
            std::fs::read_to_string(pods.pod_cgroup("dry").join(f))
                .unwrap()
                .trim()
                .to_string()
        };
        assert_eq!(read("pids.max"), "40");
        assert_eq!(read("memory.max"), (64u64 << 20).to_string());
        assert_eq!(read("cpu.max"), "25000 100000");
    }
    pods.ok(&["down", "dry"]);
}

#[test]
#[ignore = "needs cgroup v2 controllers: VM tier"]
fn container_limits_go_on_leaves_and_their_sum_on_the_pod() {
    let pods = Pods::new("leaf");
    let yaml = "apiVersion: v1
kind: Pod
metadata: {name: leaf}
spec:
  containers:
  - name: a
    command: [sleep, '600']
    resources: {limits: {memory: 32Mi, cpu: 200m}, requests: {cpu: 100m}}
  - name: b
    command: [sleep, '600']
    resources: {limits: {memory: 16Mi, cpu: 300m}}
";
    pods.up_detached(yaml, &[]);
    let cg = pods.pod_cgroup("leaf");
    let read = |f: &str| {
        std::fs::read_to_string(cg.join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(read("memory.max"), (48u64 << 20).to_string());
    assert_eq!(read("cpu.max"), "50000 100000");
    assert_eq!(read("a/memory.max"), (32u64 << 20).to_string());
    assert_eq!(read("b/memory.max"), (16u64 << 20).to_string());
    assert_eq!(read("a/cpu.max"), "20000 100000");
    assert_eq!(read("a/memory.oom.group"), "1");
    pods.ok(&["down", "leaf"]);
}

fn init_status<'a>(pod: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    pod["status"]["initContainerStatuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
}

#[test]
fn init_containers_run_in_order_to_success_before_the_app() {
    let pods = Pods::new("init");
    let tmp = TempDir::new("init");
    let (trail, gate) = (tmp.path().join("trail"), tmp.path().join("gate"));
    mkfifo(&gate);
    let yaml = format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: init}}
spec:
  volumes: {volumes}
  initContainers:
  - name: first
    command: [sh, -c, 'echo first >> {trail}']
    volumeMounts: {mounts}
  - name: second
    command: [sh, -c, 'read x < {gate}; echo second >> {trail}']
    volumeMounts: {mounts}
  containers:
  - name: app
    command: [sh, -c, 'echo app >> {trail}; sleep 600']
    volumeMounts: {mounts}
",
        trail = trail.display(),
        gate = gate.display(),
        volumes = host_dirs(&[tmp.path()]).0,
        mounts = host_dirs(&[tmp.path()]).1,
    );
    pods.up_detached(&yaml, &[]);
    // The second init container blocks: the pod is Pending and the app waits.
    let pod = pods.wait_status(
        "init",
        "the second init container to run",
        Duration::from_secs(5),
        |p| init_status(p, "second")["state"]["running"].is_object(),
    );
    assert_eq!(pod["status"]["phase"], "Pending");
    assert_eq!(
        init_status(&pod, "first")["state"]["terminated"]["reason"],
        "Completed"
    );
    assert_eq!(
        pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
        "PodInitializing"
    );
    assert_eq!(condition(&pod, "Initialized"), "False");
    assert!(pods.ok(&["ps"]).contains("Init:1/2"));
    std::fs::write(&gate, "go\n").unwrap();
    let pod = pods.wait_status("init", "the app to run", Duration::from_secs(5), |p| {
        p["status"]["phase"] == "Running"
    });
    assert_eq!(condition(&pod, "Initialized"), "True");
    wait_for("the app's line", Duration::from_secs(5), || {
        std::fs::read_to_string(&trail).is_ok_and(|t| t.contains("app"))
    });
    assert_eq!(
        std::fs::read_to_string(&trail).unwrap(),
        "first\nsecond\napp\n"
    );
    // `sleep`, PID 1 of its namespace, stops only at the grace period's SIGKILL.
    pods.ok(&["down", "init", "--grace-period", "0"]);
}

#[test]
fn a_failing_init_container_is_retried_or_fails_the_pod() {
    let pods = Pods::new("initfail");
    let yaml = |name: &str, policy: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: {policy}\n  initContainers:\n  - name: setup\n    command: [sh, -c, 'exit 5']\n  containers:\n  - name: app\n    command: [sleep, '600']\n"
        )
    };
    pods.up_detached(&yaml("never", "Never"), &[]);
    let pod = pods.wait_status("never", "Failed", Duration::from_secs(5), |p| {
        p["status"]["phase"] == "Failed"
    });
    assert_eq!(
        init_status(&pod, "setup")["state"]["terminated"]["exitCode"],
        5
    );
    let app = &pod["status"]["containerStatuses"][0];
    assert_eq!(
        app["state"]["waiting"]["reason"], "PodInitializing",
        "the app never started: {app}"
    );
    assert!(pods.ok(&["ps"]).contains("Init:Error"));

    pods.up_detached(&yaml("retry", "OnFailure"), &["--backoff-scale", "0.02"]);
    let pod = pods.wait_status("retry", "retries", Duration::from_secs(10), |p| {
        init_status(p, "setup")["restartCount"].as_u64() >= Some(2)
    });
    assert_eq!(pod["status"]["phase"], "Pending");
    assert_eq!(
        init_status(&pod, "setup")["lastState"]["terminated"]["exitCode"],
        5
    );
    pods.ok(&["down", "never"]);
    pods.ok(&["down", "retry"]);
}

#[test]
fn active_deadline_stops_the_pod_and_fails_it() {
    let pods = Pods::new("deadline");
    let yaml = "apiVersion: v1
kind: Pod
metadata: {name: late}
spec:
  activeDeadlineSeconds: 1
  terminationGracePeriodSeconds: 1
  containers:
  - name: a
    command: [sleep, '600']
";
    pods.up_detached(yaml, &[]);
    let start = std::time::Instant::now();
    let pod = pods.wait_status("late", "phase Failed", Duration::from_secs(10), |p| {
        p["status"]["phase"] == "Failed"
    });
    assert!(
        start.elapsed() >= Duration::from_millis(800),
        "stopped before its deadline"
    );
    assert_eq!(pod["status"]["reason"], "DeadlineExceeded");
    assert_eq!(
        pod["status"]["containerStatuses"][0]["state"]["terminated"]["reason"],
        "DeadlineExceeded"
    );
    assert_eq!(pod["spec"]["activeDeadlineSeconds"], 1);
    wait_for("the pod's cgroup to go", Duration::from_secs(5), || {
        !pods.pod_cgroup("late").exists()
    });
    pods.ok(&["down", "late"]);
    pods.assert_clean();
}

/// The Kubernetes documentation's sidecar pattern: a client sidecar fetching from the
/// web container over the pod's localhost, in a pod that runs to completion.
#[test]
fn native_sidecars_start_first_keep_running_and_stop_last_in_reverse_order() {
    let pods = Pods::new("sidecar");
    let site = TempDir::new("sidecar-site");
    std::fs::write(site.path().join("index.html"), "hello from web\n").unwrap();
    let stops = site.path().join("stops");
    let yaml = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: side}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 5
  volumes: {volumes}
  initContainers:
  - name: client
    restartPolicy: Always
    command: [sh, -c, 'trap "echo client >> {stops}; exit 0" TERM; while :; do busybox wget -qO- http://127.0.0.1:8080/ 2>/dev/null; sleep 0.2; done']
    volumeMounts: {mounts}
    startupProbe:
      exec: {{command: ['true']}}
      periodSeconds: 1
  - name: shipper
    restartPolicy: Always
    command: [sh, -c, 'trap "echo shipper >> {stops}; exit 0" TERM; while :; do sleep 0.1; done']
    volumeMounts: {mounts}
  - name: flaky
    restartPolicy: Always
    command: [sh, -c, 'sleep 0.3; exit 1']
  containers:
  - name: web
    command: [sh, -c, 'busybox httpd -f -p 127.0.0.1:8080 -h {site} & sleep 3; kill $!']
    volumeMounts: {mounts}
"#,
        stops = stops.display(),
        site = site.path().display(),
        volumes = host_dirs(&[site.path()]).0,
        mounts = host_dirs(&[site.path()]).1,
    );
    pods.up_detached(&yaml, &["--backoff-scale", "0.01"]);
    let pod = pods.wait_status(
        "side",
        "the client to fetch",
        Duration::from_secs(10),
        |_| {
            String::from_utf8_lossy(&pods.run(&["logs", "side", "-c", "client"]).stdout)
                .contains("hello from web")
        },
    );
    assert_eq!(pod["status"]["phase"], "Running");
    // kubectl counts sidecars in READY: client, shipper and web; flaky comes and goes.
    let ps = pods.ok(&["ps"]);
    let ready = ps
        .lines()
        .find(|l| l.starts_with("side "))
        .unwrap()
        .split_whitespace()
        .nth(1);
    assert!(matches!(ready, Some("3/4" | "4/4")), "{ps}");
    // The app runs 3 s, then the sidecars are stopped, last first; the flaky one kept
    // restarting although the pod's policy is Never.
    let pod = pods.wait_status("side", "Succeeded", Duration::from_secs(15), |p| {
        p["status"]["phase"] == "Succeeded"
    });
    let inits = pod["status"]["initContainerStatuses"].as_array().unwrap();
    let init = |n: &str| inits.iter().find(|c| c["name"] == n).unwrap();
    assert!(
        init("flaky")["restartCount"].as_u64().unwrap() >= 2,
        "{pod:#}"
    );
    for name in ["client", "shipper"] {
        assert_eq!(init(name)["restartCount"], 0);
        assert_eq!(init(name)["state"]["terminated"]["exitCode"], 0, "{name}");
    }
    assert_eq!(container(&pod, "web")["state"]["terminated"]["exitCode"], 0);
    assert_eq!(
        std::fs::read_to_string(&stops).unwrap(),
        "shipper\nclient\n"
    );
    pods.ok(&["down", "side"]);
    pods.assert_clean();
}

#[test]
fn labels_select_pods_as_kubectl_does() {
    let pods = Pods::new("labels");
    pods.up_detached(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels: {app: web, tier: front}\n  annotations: {team.example.com/owner: ana}\nspec:\n  containers:\n  - name: a\n    command: [sleep, '600']\n",
        &[],
    );
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "db",
        "-l",
        "app=db,tier=db",
        "-c",
        "a=sleep 600",
    ]);
    pods.ok(&["up", "-d", "--name", "bare", "-c", "a=sleep 600"]);
    let names = |selector: &str| -> Vec<String> {
        pods.ok(&["ps", "-l", selector])
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect()
    };
    assert_eq!(names("app=web"), ["web"]);
    assert_eq!(names("tier!=db"), ["bare", "web"]);
    assert_eq!(names("app in (web,db)"), ["db", "web"]);
    assert_eq!(names("!app"), ["bare"]);
    assert_eq!(names("app,tier notin (front)"), ["db"]);
    let out = pods.run(&["ps", "-l", "app=nothing"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "launcher: no pods found\n"
    );

    let table = pods.ok(&["ps", "--show-labels"]);
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap()
            .to_string()
    };
    assert!(table.lines().next().unwrap().ends_with("LABELS"), "{table}");
    assert!(row("web").ends_with(" app=web,tier=front"), "{table}");
    assert!(row("bare").ends_with(" <none>"), "{table}");

    // Labels and the user's annotations are the pod's metadata.
    let web = pods.status("web");
    assert_eq!(web["metadata"]["labels"]["tier"], "front");
    assert_eq!(
        web["metadata"]["annotations"]["team.example.com/owner"],
        "ana"
    );

    // Bad selectors and labels: one line, exit 2, nothing made.
    for (args, says) in [
        (
            &["ps", "-l", "app in (web"][..],
            "launcher: --selector: invalid selector \"app in (web\": unbalanced parentheses",
        ),
        (
            &["up", "-d", "--name", "x", "-l", "app=we b", "-c", "a=true"],
            "launcher: --labels: invalid value \"we b\" for label \"app\"",
        ),
    ] {
        let out = pods.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with(says) && err.lines().count() == 1, "{err}");
    }
    let out = pods.up_yaml(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  labels: {-bad: x}\nspec:\n  containers:\n  - name: a\n    command: ['true']\n",
        &["-d"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .starts_with("launcher: metadata.labels[\"-bad\"]: invalid label key \"-bad\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["web", "db", "bare"] {
        pods.ok(&["down", name, "--grace-period", "0"]);
    }
    pods.assert_clean();
}

/// A container that cannot start says which step failed, once, as runc words it: its
/// working directory, a volume that does not mount, its program; in its status,
/// its event, and `exec`'s error.
#[test]
fn a_container_that_cannot_start_names_the_step_that_failed() {
    let pods = Pods::new("step");
    let yaml = "apiVersion: v1
kind: Pod
metadata: {name: step}
spec:
  restartPolicy: Never
  containers:
  - name: cwd
    command: [sh, -c, pwd]
    workingDir: /no/such/dir
  - name: mount
    command: ['true']
    volumeMounts: [{name: f, mountPath: /tmp}]
  - name: program
    command: [no-such-program]
  - name: up
    command: [sleep, '600']
  volumes:
  - name: f
    hostPath: {path: /etc/hostname, type: File}
";
    pods.up_detached(yaml, &[]);
    let pod = pods.wait_status(
        "step",
        "three containers that cannot run",
        Duration::from_secs(10),
        |p| {
            ["cwd", "mount", "program"]
                .iter()
                .all(|c| container(p, c)["state"]["terminated"].is_object())
        },
    );
    for (c, code, message) in [
        (
            "cwd",
            128,
            r#"chdir to workingDir "/no/such/dir": No such file or directory"#,
        ),
        (
            "mount",
            128,
            r#"mount volume "f" at /tmp: Invalid argument"#,
        ),
        (
            "program",
            127,
            r#"exec: "no-such-program": executable file not found in $PATH"#,
        ),
    ] {
        let t = &container(&pod, c)["state"]["terminated"];
        assert_eq!(t["exitCode"], code, "{c}: {t}");
        assert_eq!(t["reason"], "ContainerCannotRun", "{c}: {t}");
        assert_eq!(t["message"], message, "{c}: {t}");
        let events = pods.ok(&["events", "step"]);
        let line = format!("Error: {message}");
        assert_eq!(events.matches(&line).count(), 1, "{c}: {events}");
        assert!(!events.contains("Error: Error:"), "{events}");
    }
    // exec names its step too, and exits as a shell would.
    let out = pods.run(&["exec", "step", "-c", "up", "--", "no-such-program"]);
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "launcher: exec: \"no-such-program\": executable file not found in $PATH\n"
    );
    pods.ok(&["down", "step", "--grace-period", "0"]);
    pods.assert_clean();
}
