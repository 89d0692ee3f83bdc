//! Volumes as the kubelet mounts them, from the examples of the Kubernetes
//! documentation (commands kept, times scaled): emptyDir shared by an init container
//! and a read-only app, dependent environment variables, hostPath types, subPath,
//! each container in a mount namespace of its own that exec and probes join; and
//! bad input refused with the field's path, leaving nothing.
#![allow(clippy::unwrap_used)]

use pod_tests::*;
use std::fs;
use std::path::Path;
use std::time::Duration;

/// Mounts of this (the host's) mount namespace below `dir`.
fn mounts_below(dir: &Path) -> Vec<String> {
    let dir = dir.display().to_string();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|p| p.starts_with(&dir))
        .collect()
}

/// Asserts nothing of any pod is left: state, data, cgroups, mounts under the data root.
fn assert_all_gone(pods: &Pods) {
    pods.assert_clean();
    assert_eq!(mounts_below(pods.data.path()), Vec::<String>::new());
}

#[test]
fn an_init_container_fills_an_emptydir_that_the_app_serves_read_only() {
    let pods = Pods::new("initvol");
    // kubernetes.io: "Configure Pod Initialization", with the page written locally
    // (no network) and busybox's httpd for nginx.
    let docroot = format!("/pod-test-html-{}", std::process::id());
    let yaml = format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: init-demo
spec:
  containers:
  - name: nginx
    image: nginx
    command: [busybox, httpd, -f, -p, "8080", -h, {docroot}]
    volumeMounts:
    - name: workdir
      mountPath: {docroot}
      readOnly: true
  initContainers:
  - name: install
    image: busybox:1.28
    command: [sh, -c, 'echo "<h1>made by install</h1>" > /work-dir/index.html']
    volumeMounts:
    - name: workdir
      mountPath: "/work-dir"
  dnsPolicy: Default
  volumes:
  - name: workdir
    emptyDir: {{}}
"#
    );
    pods.up_detached(&yaml, &[]);
    pods.wait_status("init-demo", "nginx running", Duration::from_secs(10), |p| {
        container(p, "nginx")["state"]["running"].is_object()
    });
    let mut page = String::new();
    wait_for("the page", Duration::from_secs(10), || {
        let out = pods.run(&[
            "exec",
            "init-demo",
            "--",
            "busybox",
            "wget",
            "-qO-",
            "http://127.0.0.1:8080/",
        ]);
        page = String::from_utf8_lossy(&out.stdout).into_owned();
        out.status.success()
    });
    assert_eq!(page, "<h1>made by install</h1>\n");
    // Read-only where the app has it: a write fails with EROFS.
    let out = pods.run(&[
        "exec",
        "init-demo",
        "--",
        "sh",
        "-c",
        &format!("echo x > {docroot}/x"),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Read-only file system"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // describe lists the volumes and each container's mounts, as kubectl does.
    let described = pods.ok(&["describe", "init-demo"]);
    for want in [
        "      /work-dir from workdir (rw)\n",
        &format!("      {docroot} from workdir (ro)\n"),
        "  workdir:\n    Type:       EmptyDir (a temporary directory that shares a pod's lifetime)\n",
    ] {
        assert!(described.contains(want), "{want:?} not in\n{described}");
    }
    // The mount points were made on the host, and nothing is mounted there.
    assert!(Path::new(&docroot).is_dir());
    assert!(fs::read_dir(&docroot).unwrap().next().is_none());
    pods.ok(&["down", "init-demo", "--grace-period", "0"]);
    assert!(!Path::new(&docroot).exists(), "the mount point stays");
    assert_all_gone(&pods);
}

#[test]
fn dependent_environment_variables_expand_as_the_kubelet_expands_them() {
    let pods = Pods::new("depenv");
    // kubernetes.io: "Define Dependent Environment Variables", one round of its loop.
    let yaml = r#"
apiVersion: v1
kind: Pod
metadata:
  name: dependent-envars-demo
spec:
  containers:
    - name: dependent-envars-demo
      args:
        - printf UNCHANGED_REFERENCE=$UNCHANGED_REFERENCE'\n'; printf SERVICE_ADDRESS=$SERVICE_ADDRESS'\n';printf ESCAPED_REFERENCE=$ESCAPED_REFERENCE'\n'; sleep 600
      command:
        - sh
        - -c
      image: busybox:1.28
      env:
        - name: SERVICE_PORT
          value: "80"
        - name: SERVICE_IP
          value: "172.17.0.1"
        - name: UNCHANGED_REFERENCE
          value: "$(PROTOCOL)://$(SERVICE_IP):$(SERVICE_PORT)"
        - name: PROTOCOL
          value: "https"
        - name: SERVICE_ADDRESS
          value: "$(PROTOCOL)://$(SERVICE_IP):$(SERVICE_PORT)"
        - name: ESCAPED_REFERENCE
          value: "$$(PROTOCOL)://$(SERVICE_IP):$(SERVICE_PORT)"
"#;
    pods.up_detached(yaml, &[]);
    let mut log = String::new();
    wait_for("the three lines", Duration::from_secs(10), || {
        log = pods.ok(&["logs", "dependent-envars-demo"]);
        log.lines().count() >= 3
    });
    assert_eq!(
        log,
        "UNCHANGED_REFERENCE=$(PROTOCOL)://172.17.0.1:80\nSERVICE_ADDRESS=https://172.17.0.1:80\nESCAPED_REFERENCE=$(PROTOCOL)://172.17.0.1:80\n"
    );
    // The manifest keeps what was written: status prints the values unexpanded.
    let pod = pods.status("dependent-envars-demo");
    assert_eq!(
        pod["spec"]["containers"][0]["env"][4]["value"],
        "$(PROTOCOL)://$(SERVICE_IP):$(SERVICE_PORT)"
    );
    // args alone, with no command, are the command line ($(VAR) expanded there too).
    let yaml = r#"
apiVersion: v1
kind: Pod
metadata: {name: argsonly}
spec:
  containers:
  - name: a
    args: [sh, -c, 'echo $(WHO); sleep 600']
    env: [{name: WHO, value: args-alone}]
"#;
    pods.up_detached(yaml, &[]);
    wait_for("args alone", Duration::from_secs(10), || {
        pods.ok(&["logs", "argsonly"]) == "args-alone\n"
    });
    pods.ok(&["down", "dependent-envars-demo", "--grace-period", "0"]);
    pods.ok(&["down", "argsonly", "--grace-period", "0"]);
    assert_all_gone(&pods);
}

#[test]
fn an_emptydir_outlives_container_restarts_and_goes_with_the_pod() {
    let pods = Pods::new("edrestart");
    let yaml = r#"
apiVersion: v1
kind: Pod
metadata: {name: counter}
spec:
  containers:
  - name: c
    command: [sh, -c, 'echo run >> /pod-test-cache/runs; wc -l < /pod-test-cache/runs; sleep 0.2; exit 1']
    volumeMounts: [{name: cache, mountPath: /pod-test-cache}]
  volumes: [{name: cache, emptyDir: {}}]
"#;
    pods.up_detached(yaml, &["--backoff-scale", "0.01"]);
    pods.wait_status("counter", "two restarts", Duration::from_secs(20), |p| {
        container(p, "c")["restartCount"]
            .as_u64()
            .is_some_and(|n| n >= 2)
    });
    // Each instance saw what the ones before it wrote.
    wait_for("a third run counted", Duration::from_secs(10), || {
        pods.ok(&["logs", "counter"])
            .trim()
            .parse::<u32>()
            .unwrap_or(0)
            >= 3
    });
    let dir = pods.log_dir("counter", "c");
    let data = dir.parent().unwrap().parent().unwrap();
    let runs = data.join("volumes/cache/runs");
    assert!(fs::read_to_string(&runs).unwrap().lines().count() >= 3);
    pods.ok(&["down", "counter", "--grace-period", "0"]);
    assert!(!runs.exists());
    assert!(!Path::new("/pod-test-cache").exists());
    assert_all_gone(&pods);
}

#[test]
fn exec_and_probes_join_the_containers_own_mount_namespace() {
    let pods = Pods::new("mntns");
    let yaml = r#"
apiVersion: v1
kind: Pod
metadata: {name: mnt}
spec:
  containers:
  - name: a
    command: [sh, -c, 'sleep 0.5; touch /pod-test-scratch/ready; sleep 600']
    readinessProbe:
      exec: {command: [cat, /pod-test-scratch/ready]}
      periodSeconds: 1
    volumeMounts: [{name: scratch, mountPath: /pod-test-scratch}]
  - name: b
    command: [sleep, "600"]
  volumes: [{name: scratch, emptyDir: {medium: Memory}}]
"#;
    pods.up_detached(yaml, &[]);
    // The probe reads a file that exists only in a's mount namespace.
    let pod = pods.wait_status("mnt", "ready", Duration::from_secs(10), |p| {
        condition(p, "Ready") == "True"
    });
    let a = container_pid(&pod, "a").unwrap();
    let b = container_pid(&pod, "b").unwrap();
    let pause = as_pid(&pod["metadata"]["annotations"]["launcher/pause-pid"]);
    let (mnt_a, mnt_b, mnt_pause) = (ns_of(a, "mnt"), ns_of(b, "mnt"), ns_of(pause, "mnt"));
    assert_ne!(
        mnt_a, mnt_b,
        "each container has a mount namespace of its own"
    );
    assert_ne!(mnt_a, mnt_pause);
    let exec_ns = pods.ok(&[
        "exec",
        "mnt",
        "-c",
        "a",
        "--",
        "readlink",
        "/proc/self/ns/mnt",
    ]);
    assert_eq!(exec_ns.trim(), mnt_a, "exec joins the container's");
    assert!(pods
        .ok(&["exec", "mnt", "-c", "a", "--", "ls", "/pod-test-scratch"])
        .contains("ready"));
    // b does not have a's volume.
    let out = pods.run(&[
        "exec",
        "mnt",
        "-c",
        "b",
        "--",
        "ls",
        "/pod-test-scratch/ready",
    ]);
    assert!(!out.status.success());
    // Nothing of it reached the host.
    assert!(!Path::new("/pod-test-scratch/ready").exists());
    pods.ok(&["down", "mnt", "--grace-period", "0"]);
    assert_all_gone(&pods);
}

#[test]
fn host_paths_are_checked_by_type_and_mounted_with_subpath_and_read_only() {
    let pods = Pods::new("hostpath");
    let tmp = TempDir::new("vol-hp");
    let base = tmp.path().to_path_buf();
    fs::create_dir_all(base.join("dir/sub")).unwrap();
    fs::write(base.join("dir/sub/file"), "from the host\n").unwrap();
    fs::write(base.join("plain"), "plain\n").unwrap();
    // A symlink pointing out of the volume: a subPath through it is refused.
    std::os::unix::fs::symlink("/etc", base.join("dir/out")).unwrap();
    let b = base.display();
    let yaml = format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: hp}}
spec:
  containers:
  - name: a
    command: [sh, -c, 'cat /pod-test-hp/sub/file /pod-test-hp-file; echo new > /pod-test-hp/new; echo x > /pod-test-hp-sub/file || true; sleep 600']
    volumeMounts:
    - {{name: dir, mountPath: /pod-test-hp}}
    - {{name: dir, mountPath: /pod-test-hp-sub, subPath: sub, readOnly: true}}
    - {{name: file, mountPath: /pod-test-hp-file}}
    - {{name: made, mountPath: /pod-test-hp-made}}
  volumes:
  - {{name: dir, hostPath: {{path: {b}/dir, type: Directory}}}}
  - {{name: file, hostPath: {{path: {b}/plain, type: File}}}}
  - {{name: made, hostPath: {{path: {b}/made/here, type: DirectoryOrCreate}}}}
"#
    );
    pods.up_detached(&yaml, &[]);
    let mut log = String::new();
    wait_for("a's output", Duration::from_secs(10), || {
        log = pods.ok(&["logs", "hp"]);
        log.lines().count() >= 3
    });
    // stdout and stderr are separate pipes: their relative order is not kept.
    assert!(log.contains("from the host\nplain\n"), "{log}");
    assert!(log.contains("Read-only file system"), "{log}");
    assert_eq!(fs::read_to_string(base.join("dir/new")).unwrap(), "new\n");
    assert_eq!(
        fs::read_to_string(base.join("dir/sub/file")).unwrap(),
        "from the host\n"
    );
    assert!(
        base.join("made/here").is_dir(),
        "DirectoryOrCreate makes it"
    );
    pods.ok(&["down", "hp", "--grace-period", "0"]);
    // A subPath through the symlink: the container cannot run, the message says why.
    let escape = yaml
        .replace("name: hp}", "name: esc}")
        .replace("subPath: sub,", "subPath: out,");
    pods.up_detached(&escape, &[]);
    let pod = pods.wait_status("esc", "a cannot run", Duration::from_secs(10), |p| {
        container(p, "a")["lastState"]["terminated"]["message"]
            .as_str()
            .or(container(p, "a")["state"]["terminated"]["message"].as_str())
            .is_some()
    });
    let c = container(&pod, "a");
    let msg = c["lastState"]["terminated"]["message"]
        .as_str()
        .or(c["state"]["terminated"]["message"].as_str())
        .unwrap();
    assert!(
        msg.contains("subPath \"out\" leads out of its volume"),
        "{msg}"
    );
    pods.ok(&["down", "esc", "--grace-period", "0"]);

    // Types that do not match: refused before anything exists, with the field.
    for (kind, path, what) in [
        ("Directory", format!("{b}/plain"), "is not a directory"),
        ("Directory", format!("{b}/none"), "is not a directory"),
        ("File", format!("{b}/dir"), "is not a file"),
        ("Socket", format!("{b}/plain"), "is not a socket file"),
        (
            "CharDevice",
            format!("{b}/plain"),
            "is not a character device",
        ),
        (
            "BlockDevice",
            "/dev/null".to_string(),
            "is not a block device",
        ),
    ] {
        let yaml = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: bad}}\nspec:\n  containers:\n  - name: a\n    command: [sleep, '1']\n  volumes:\n  - {{name: v, hostPath: {{path: {path}, type: {kind}}}}}\n"
        );
        let out = pods.up_yaml(&yaml, &["-d"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{kind}: {err}");
        assert_eq!(
            err.trim(),
            format!(
                "launcher: spec.volumes[0].hostPath: hostPath type check failed: {path} {what}"
            )
        );
    }
    assert_all_gone(&pods);
}

#[test]
fn bad_volumes_are_refused_with_the_field_and_leave_nothing() {
    let pods = Pods::new("badvol");
    let pod = |volumes: &str, mounts: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: bad}}\nspec:\n  volumes: {volumes}\n  containers:\n  - name: a\n    command: [sleep, '600']\n    volumeMounts: {mounts}\n"
        )
    };
    let m = "spec.containers[0].volumeMounts";
    for (volumes, mounts, want) in [
        (
            "[{name: v}]",
            "[{name: w, mountPath: /x}]",
            format!("{m}[0].name: not found: no volume named \"w\""),
        ),
        (
            "[{name: v}, {name: v}]",
            "[]",
            "spec.volumes[1].name: duplicate volume name \"v\"".into(),
        ),
        (
            "[{name: v}]",
            "[{name: v, mountPath: x}]",
            format!("{m}[0].mountPath: \"x\" must be an absolute path"),
        ),
        (
            "[{name: v}]",
            "[{name: v, mountPath: /x}, {name: v, mountPath: /x}]",
            format!("{m}[1].mountPath: \"/x\": must be unique"),
        ),
        (
            "[{name: v}]",
            "[{name: v, mountPath: /x, subPath: ../../etc}]",
            format!("{m}[0].subPath: \"../../etc\" must not contain '..'"),
        ),
        (
            "[{name: v, configMap: {name: c}}]",
            "[]",
            "spec.volumes[0].configMap: not supported by launcher".into(),
        ),
        (
            "[{name: v, emptyDir: {sizeLimit: lots}}]",
            "[]",
            "spec.volumes[0].emptyDir.sizeLimit: invalid memory quantity \"lots\"".into(),
        ),
    ] {
        let out = pods.up_yaml(&pod(volumes, mounts), &["-d"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{volumes} {mounts}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(&want), "{err}\nwant {want}");
    }
    assert!(!Path::new("/x").exists());
    assert_all_gone(&pods);
}

#[test]
fn a_hundred_up_down_cycles_with_volumes_leave_no_mount_and_no_directory() {
    let pods = Pods::new("volcycle");
    let yaml = r#"
apiVersion: v1
kind: Pod
metadata: {name: cyc}
spec:
  containers:
  - name: a
    command: [sleep, "600"]
    volumeMounts:
    - {name: d, mountPath: /pod-test-cycle-disk}
    - {name: m, mountPath: /pod-test-cycle-mem}
  volumes:
  - {name: d, emptyDir: {}}
  - {name: m, emptyDir: {medium: Memory, sizeLimit: 1Mi}}
"#;
    let cycles = if in_vm() { 20 } else { 100 };
    for _ in 0..cycles {
        pods.up_detached(yaml, &[]);
        pods.ok(&["down", "cyc", "--grace-period", "0"]);
    }
    // Other tests mount and unmount meanwhile: what counts is this test's paths.
    let left: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| {
            l.contains("pod-test-cycle") || l.contains(&pods.data.path().display().to_string())
        })
        .map(String::from)
        .collect();
    assert!(left.is_empty(), "mounts left on the host: {left:?}");
    assert!(!Path::new("/pod-test-cycle-disk").exists());
    assert!(!Path::new("/pod-test-cycle-mem").exists());
    let registry = fs::read_to_string("/run/launcher/.mountpoints").unwrap_or_default();
    assert!(!registry.contains("pod-test-cycle"), "{registry}");
    assert_all_gone(&pods);
}

#[test]
#[ignore = "needs cgroup v2 controllers: VM tier"]
fn a_memory_emptydir_counts_in_the_memory_of_the_container_that_writes_it() {
    let pods = Pods::new("memvol");
    let yaml = r#"
apiVersion: v1
kind: Pod
metadata: {name: mem}
spec:
  containers:
  - name: writer
    command: [sh, -c, 'dd if=/dev/zero of=/pod-test-mem/fill bs=1M count=24 2>/dev/null; sleep 600']
    resources: {limits: {memory: 64Mi}}
    volumeMounts: [{name: m, mountPath: /pod-test-mem}]
  - name: idle
    command: [sleep, "600"]
    resources: {limits: {memory: 64Mi}}
  volumes: [{name: m, emptyDir: {medium: Memory}}]
"#;
    pods.up_detached(yaml, &[]);
    let leaf = pods.pod_cgroup("mem").join("writer");
    let current = || -> u64 {
        fs::read_to_string(leaf.join("memory.current"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    wait_for("24 MiB charged to writer", Duration::from_secs(20), || {
        current() >= 24 << 20
    });
    let idle: u64 = fs::read_to_string(pods.pod_cgroup("mem").join("idle/memory.current"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(idle < 8 << 20, "idle holds {idle} bytes");
    // The tmpfs is sized by the pod's memory limit (2 x 64Mi).
    let df = pods.ok(&[
        "exec",
        "mem",
        "-c",
        "writer",
        "--",
        "df",
        "-k",
        "/pod-test-mem",
    ]);
    assert!(df.contains("131072"), "{df}");
    pods.ok(&["down", "mem", "--grace-period", "0"]);
    assert_all_gone(&pods);
}
