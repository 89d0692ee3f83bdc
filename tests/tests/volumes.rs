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
    // The mount points were made in the containers' own views, never on the host.
    assert!(!Path::new(&docroot).exists());
    assert!(!Path::new("/work-dir").exists());
    pods.ok(&["down", "init-demo", "--grace-period", "0"]);
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
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        lines.contains(&"from the host") && lines.contains(&"plain"),
        "{log}"
    );
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
                "launcher: spec.volumes[0].hostPath: hostPath type check failed: {path} {what} (type {kind})"
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
            "[{name: v, nfs: {server: s, path: /}}]",
            "[]",
            "spec.volumes[0].nfs: not supported by launcher".into(),
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
    // The runtime's own data (every pod's logs and volumes) is no hostPath but for a
    // privileged pod.
    let data = pods.data.path().display().to_string();
    for path in [data.clone(), format!("{data}/pods"), "/".into()] {
        let yaml = pod(&format!("[{{name: v, hostPath: {{path: {path}}}}}]"), "[]");
        let out = pods.up_yaml(&yaml, &["-d"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{path}: {err}");
        assert!(
            err.contains("spec.volumes[0].hostPath.path:")
                && err.contains("only a privileged pod may mount it"),
            "{err}"
        );
    }
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
    resources: {limits: {memory: 64Mi, cpu: 500m}}
    env:
    - name: MY_MEM_LIMIT
      valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}
    - name: MY_CPU_LIMIT
      valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 1m}}
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
    // The downward API gives the container's limits in its divisor's units.
    let env = pods.ok(&["exec", "mem", "-c", "writer", "--", "env"]);
    assert!(
        env.contains("MY_MEM_LIMIT=64\n") && env.contains("MY_CPU_LIMIT=500\n"),
        "{env}"
    );
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

/// `exec POD -- sh -c SCRIPT`, its output.
fn sh(pods: &Pods, pod: &str, script: &str) -> String {
    pods.ok(&["exec", pod, "--", "sh", "-c", script])
}

/// A pod's state files: what the runtime wrote under the state root.
fn state_text(pods: &Pods, pod: &str) -> String {
    let mut all = String::new();
    for e in fs::read_dir(pods.root.path().join(pod)).unwrap().flatten() {
        all += &String::from_utf8_lossy(&fs::read(e.path()).unwrap_or_default());
    }
    all
}

#[test]
fn a_configmap_is_consumed_as_env_envfrom_and_files() {
    let pods = Pods::new("cfgmap");
    // kubernetes.io: "ConfigMaps", the configmap-demo-pod example, in one stream.
    let yaml = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: game-demo
data:
  # property-like keys; each key maps to a simple value
  player_initial_lives: "3"
  ui_properties_file_name: "user-interface.properties"

  # file-like keys
  game.properties: |
    enemy.types=aliens,monsters
    player.maximum-lives=5
  user-interface.properties: |
    color.good=purple
    color.bad=yellow
    allow.textmode=true
---
apiVersion: v1
kind: Pod
metadata:
  name: configmap-demo-pod
spec:
  containers:
    - name: demo
      image: alpine
      command: ["sleep", "3600"]
      env:
        # Define the environment variable
        - name: PLAYER_INITIAL_LIVES # Notice that the case is different here
                                     # from the key name in the ConfigMap.
          valueFrom:
            configMapKeyRef:
              name: game-demo           # The ConfigMap this value comes from.
              key: player_initial_lives # The key to fetch.
        - name: UI_PROPERTIES_FILE_NAME
          valueFrom:
            configMapKeyRef:
              name: game-demo
              key: ui_properties_file_name
        - name: MISSING
          valueFrom:
            configMapKeyRef: {name: nowhere, key: x, optional: true}
      envFrom:
        - configMapRef: {name: game-demo}
          prefix: CFG_
      volumeMounts:
      - name: config
        mountPath: "/pod-test-config"
        readOnly: true
  volumes:
  # You set volumes at the Pod level, then mount them into containers inside that Pod
  - name: config
    configMap:
      # Provide the name of the ConfigMap you want to mount.
      name: game-demo
      # An array of keys from the ConfigMap to create as files
      items:
      - key: "game.properties"
        path: "game.properties"
      - key: "user-interface.properties"
        path: "ui/user-interface.properties"
        mode: 0600
"#;
    pods.up_detached(yaml, &[]);
    let env = pods.ok(&["exec", "configmap-demo-pod", "--", "env"]);
    for want in [
        "PLAYER_INITIAL_LIVES=3\n",
        "UI_PROPERTIES_FILE_NAME=user-interface.properties\n",
        "CFG_player_initial_lives=3\n",
        "CFG_ui_properties_file_name=user-interface.properties\n",
    ] {
        assert!(env.contains(want), "{want:?} not in\n{env}");
    }
    assert!(
        !env.contains("MISSING="),
        "an optional key that is missing sets nothing"
    );
    let files = sh(
        &pods,
        "configmap-demo-pod",
        "cd /pod-test-config && find . -type f | sort && stat -c %a game.properties ui/user-interface.properties && cat game.properties",
    );
    assert_eq!(
        files,
        "./game.properties\n./ui/user-interface.properties\n644\n600\nenemy.types=aliens,monsters\nplayer.maximum-lives=5\n"
    );
    // Read-only, as the kubelet mounts it.
    let out = pods.run(&[
        "exec",
        "configmap-demo-pod",
        "--",
        "touch",
        "/pod-test-config/x",
    ]);
    assert!(!out.status.success());
    pods.ok(&["down", "configmap-demo-pod", "--grace-period", "0"]);
    assert_all_gone(&pods);
}

#[test]
fn a_secret_reaches_env_and_files_but_never_the_disk_or_the_state() {
    let pods = Pods::new("secret");
    // kubernetes.io: "Distribute Credentials Securely Using Secrets", in two files.
    let dir = TempDir::new("secret-files");
    let secret = dir.path().join("secret.yaml");
    fs::write(
        &secret,
        r#"apiVersion: v1
kind: Secret
metadata:
  name: test-secret
data:
  username: bXktYXBw
  password: Mzk1MjgkdmRnN0pi
"#,
    )
    .unwrap();
    let pod = dir.path().join("pod.yaml");
    fs::write(
        &pod,
        r#"apiVersion: v1
kind: Pod
metadata:
  name: secret-test-pod
spec:
  containers:
    - name: test-container
      image: nginx
      command: [sleep, "600"]
      env:
      - name: SECRET_USERNAME
        valueFrom:
          secretKeyRef:
            name: test-secret
            key: username
      volumeMounts:
        # name must match the volume name below
        - name: secret-volume
          mountPath: /etc/pod-test-secret-volume
          readOnly: true
  # The secret data is exposed to Containers in the Pod through a Volume.
  volumes:
    - name: secret-volume
      secret:
        secretName: test-secret
        defaultMode: 0400
        items:
        - key: username
          path: my-group/my-username
        - key: password
          path: password
          mode: 0440
"#,
    )
    .unwrap();
    let (p, s) = (pod.display().to_string(), secret.display().to_string());
    pods.ok(&["up", "-d", "-f", &p, "-f", &s]);
    assert!(pods
        .ok(&["exec", "secret-test-pod", "--", "env"])
        .contains("SECRET_USERNAME=my-app\n"));
    let files = sh(
        &pods,
        "secret-test-pod",
        "cd /etc/pod-test-secret-volume && cat my-group/my-username && echo && cat password && echo && stat -c %a my-group/my-username password && stat -f -c %T .",
    );
    assert_eq!(files, "my-app\n39528$vdg7Jb\n400\n440\ntmpfs\n");
    // Not in the pod's record, status or events, nor in what `status` prints.
    let state = state_text(&pods, "secret-test-pod");
    assert!(
        !state.contains("my-app") && !state.contains("bXktYXBw"),
        "{state}"
    );
    let status = pods.ok(&["status", "secret-test-pod", "-o", "yaml"]);
    assert!(
        !status.contains("my-app") && !status.contains("39528"),
        "{status}"
    );
    assert!(status.contains("secretName: test-secret"), "{status}");
    // On disk under the data root: nothing but the tmpfs's mount point.
    let data = pods.data.path();
    let found = std::process::Command::new("grep")
        .args(["-r", "-l", "my-app"])
        .arg(data)
        .output()
        .unwrap();
    let hits = String::from_utf8_lossy(&found.stdout).into_owned();
    let mounts = mounts_below(data);
    assert!(
        hits.lines()
            .all(|h| mounts.iter().any(|m| h.starts_with(m.as_str()))),
        "secret on disk: {hits}"
    );
    pods.ok(&["down", "secret-test-pod", "--grace-period", "0"]);
    assert_all_gone(&pods);
}

#[test]
fn the_downward_api_gives_fields_as_files_and_env() {
    let pods = Pods::new("downward");
    // kubernetes.io: "Expose Pod Information to Containers Through Files" and
    // "... Through Environment Variables", in one pod, times scaled.
    let yaml = r#"
apiVersion: v1
kind: Pod
metadata:
  name: kubernetes-downwardapi-volume-example
  labels:
    zone: us-est-coast
    cluster: test-cluster1
    rack: rack-22
  annotations:
    build: two
    builder: john-doe
spec:
  serviceAccountName: robot
  containers:
    - name: client-container
      image: registry.k8s.io/busybox:1.27.2
      command: ["sh", "-c"]
      args:
      - while true; do
          if [ -e /etc/pod-test-podinfo/labels ]; then
            echo -en '\n\n'; cat /etc/pod-test-podinfo/labels; fi;
          if [ -e /etc/pod-test-podinfo/annotations ]; then
            echo -en '\n\n'; cat /etc/pod-test-podinfo/annotations; fi;
          sleep 600;
        done;
      env:
        - name: MY_NODE_NAME
          valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
        - name: MY_POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        - name: MY_POD_NAMESPACE
          valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
        - name: MY_POD_UID
          valueFrom: {fieldRef: {fieldPath: metadata.uid}}
        - name: MY_POD_SERVICE_ACCOUNT
          valueFrom: {fieldRef: {fieldPath: spec.serviceAccountName}}
        - name: MY_RACK
          valueFrom: {fieldRef: {fieldPath: "metadata.labels['rack']"}}
        - name: MY_MEM_LIMIT
          valueFrom:
            resourceFieldRef: {containerName: client-container, resource: limits.memory, divisor: 1Mi}
        - name: MY_CPU_LIMIT
          valueFrom:
            resourceFieldRef: {resource: limits.cpu}
      volumeMounts:
        - name: podinfo
          mountPath: /etc/pod-test-podinfo
  volumes:
    - name: podinfo
      downwardAPI:
        items:
          - path: "labels"
            fieldRef:
              fieldPath: metadata.labels
          - path: "annotations"
            fieldRef:
              fieldPath: metadata.annotations
          - path: "cpu_limit"
            resourceFieldRef: {containerName: client-container, resource: limits.cpu, divisor: 1m}
"#;
    pods.up_detached(yaml, &[]);
    let pod = "kubernetes-downwardapi-volume-example";
    let labels = "cluster=\"test-cluster1\"\nrack=\"rack-22\"\nzone=\"us-est-coast\"";
    let annotations = "build=\"two\"\nbuilder=\"john-doe\"";
    assert_eq!(sh(&pods, pod, "cat /etc/pod-test-podinfo/labels"), labels);
    assert_eq!(
        sh(&pods, pod, "cat /etc/pod-test-podinfo/annotations"),
        annotations
    );
    wait_for("the labels in the log", Duration::from_secs(10), || {
        pods.ok(&["logs", pod]).contains("rack=\"rack-22\"")
    });
    let status = pods.status(pod);
    let node = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let env = pods.ok(&["exec", pod, "--", "env"]);
    // The CPUs online, as the kubelet counts a node's (e.g. "0-1,4" is 3).
    let online = fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    let cpus: u32 = (online.trim().split(','))
        .map(|r| match r.split_once('-') {
            Some((a, b)) => b.parse::<u32>().unwrap() - a.parse::<u32>().unwrap() + 1,
            None => 1,
        })
        .sum();
    let mem_mi: u64 = mem_total_kib().div_ceil(1024);
    for want in [
        format!("MY_NODE_NAME={}\n", node.trim()),
        format!("MY_POD_NAME={pod}\n"),
        "MY_POD_NAMESPACE=default\n".into(),
        format!(
            "MY_POD_UID={}\n",
            status["metadata"]["uid"].as_str().unwrap()
        ),
        "MY_POD_SERVICE_ACCOUNT=robot\n".into(),
        "MY_RACK=rack-22\n".into(),
        // No limit: the machine's capacity, as the kubelet gives it.
        format!("MY_MEM_LIMIT={mem_mi}\n"),
        format!("MY_CPU_LIMIT={cpus}\n"),
    ] {
        assert!(env.contains(&want), "{want:?} not in\n{env}");
    }
    assert_eq!(
        sh(&pods, pod, "cat /etc/pod-test-podinfo/cpu_limit"),
        (cpus * 1000).to_string()
    );
    pods.ok(&["down", pod, "--grace-period", "0"]);
    assert_all_gone(&pods);
}

#[test]
fn a_projected_volume_joins_a_configmap_a_secret_and_the_downward_api() {
    let pods = Pods::new("projected");
    // kubernetes.io: "Configure a Pod to Use a Projected Volume for Storage", with a
    // ConfigMap beside the two Secrets.
    let yaml = r#"
apiVersion: v1
kind: Secret
metadata: {name: user}
stringData: {user: admin}
---
apiVersion: v1
kind: Secret
metadata: {name: pass}
stringData: {pass: 1f2d1e2e67df}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {mode: fast}
---
apiVersion: v1
kind: Pod
metadata:
  name: test-projected-volume
  labels: {app: demo}
spec:
  containers:
  - name: test-projected-volume
    image: busybox:1.28
    args:
    - sleep
    - "86400"
    volumeMounts:
    - name: all-in-one
      mountPath: "/pod-test-projected-volume"
      readOnly: true
  volumes:
  - name: all-in-one
    projected:
      sources:
      - secret:
          name: user
      - secret:
          name: pass
      - configMap:
          name: cfg
          items: [{key: mode, path: config/mode}]
      - downwardAPI:
          items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]
"#;
    pods.up_detached(yaml, &[]);
    assert_eq!(
        sh(
            &pods,
            "test-projected-volume",
            "cd /pod-test-projected-volume && cat user; echo; cat pass; echo; cat config/mode; echo; cat labels"
        ),
        "admin\n1f2d1e2e67df\nfast\napp=\"demo\""
    );
    pods.ok(&["down", "test-projected-volume", "--grace-period", "0"]);
    assert_all_gone(&pods);
}

#[test]
fn a_claims_data_is_kept_across_down_and_up_until_volume_rm() {
    let pods = Pods::new("claim");
    let yaml = r#"
apiVersion: v1
kind: Pod
metadata: {name: db}
spec:
  containers:
  - name: db
    command: [sh, -c, 'echo run >> /pod-test-claim/runs; sleep 600']
    volumeMounts: [{name: data, mountPath: /pod-test-claim}]
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: db-data}
"#;
    for run in 1..=2 {
        pods.up_detached(yaml, &[]);
        wait_for("the run counted", Duration::from_secs(10), || {
            pods.run(&["exec", "db", "--", "cat", "/pod-test-claim/runs"])
                .stdout
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .count()
                == run
        });
        let ls = pods.ok(&["volume", "ls"]);
        assert_eq!(ls, "NAME      USED BY\ndb-data   db\n");
        let out = pods.run(&["volume", "rm", "db-data"]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "launcher: volume \"db-data\" is in use by pod \"db\". Hint: launcher down db\n"
        );
        pods.ok(&["down", "db", "--grace-period", "0"]);
    }
    assert_eq!(
        pods.ok(&["volume", "ls"]),
        "NAME      USED BY\ndb-data   <none>\n"
    );
    assert_eq!(pods.ok(&["volume", "rm", "db-data"]), "db-data\n");
    let out = pods.run(&["volume", "rm", "db-data"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("volume \"db-data\" not found"));
    let out = pods.run(&["volume", "rm", "../x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!pods.data.path().join("volumes/db-data").exists());
    assert_all_gone(&pods);
}

#[test]
fn missing_configmaps_secrets_and_keys_are_refused_unless_optional() {
    let pods = Pods::new("missingobj");
    let pod = |env: &str, volumes: &str, objects: &str| {
        format!(
            "{objects}apiVersion: v1\nkind: Pod\nmetadata: {{name: m}}\nspec:\n  volumes: {volumes}\n  containers:\n  - name: a\n    command: [sleep, '600']\n    env: {env}\n"
        )
    };
    let c = "spec.containers[0]";
    for (env, volumes, objects, want) in [
        ("[{name: X, valueFrom: {configMapKeyRef: {name: cfg, key: k}}}]", "[]", "", format!("{c}.env[0].valueFrom.configMapKeyRef.name: configmap \"cfg\" not found")),
        ("[{name: X, valueFrom: {configMapKeyRef: {name: cfg, key: k}}}]", "[]", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {j: v}\n---\n", format!("{c}.env[0].valueFrom.configMapKeyRef.key: couldn't find key k in configmap \"cfg\"")),
        ("[{name: X, valueFrom: {secretKeyRef: {name: s, key: k}}}]", "[]", "", format!("{c}.env[0].valueFrom.secretKeyRef.name: secret \"s\" not found")),
        ("[]", "[{name: v, secret: {secretName: s}}]", "", "spec.volumes[0].secret.secretName: secret \"s\" not found".into()),
        ("[]", "[{name: v, configMap: {name: c, items: [{key: k, path: p}]}}]", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n", "spec.volumes[0].configMap.items[0].key: couldn't find key k in configmap \"c\"".into()),
        ("[]", "[{name: v, configMap: {name: c, defaultMode: 01000}}]", "", "spec.volumes[0].configMap.defaultMode: invalid value 512: must be a number between 0 and 0777 (octal), both inclusive".into()),
        ("[]", "[]", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n---\n", "kind: expected apiVersion v1 and kind Pod (or ConfigMap, Secret), got apps/v1 Deployment".into()),
    ] {
        let out = pods.up_yaml(&pod(env, volumes, objects), &["-d"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{env} {volumes}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(&want), "{err}\nwant {want}");
        assert_all_gone(&pods);
    }
    // Optional ones that are missing: the pod runs without them.
    let yaml = pod(
        "[{name: X, valueFrom: {secretKeyRef: {name: s, key: k, optional: true}}}]",
        "[{name: v, configMap: {name: c, optional: true}}]",
        "",
    );
    pods.up_detached(&yaml, &[]);
    pods.ok(&["down", "m", "--grace-period", "0"]);
    assert_all_gone(&pods);
}

#[test]
fn a_disk_emptydir_over_its_size_limit_evicts_the_pod() {
    let pods = Pods::new("evict");
    let yaml = r#"
apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  containers:
  - name: writer
    command: [sh, -c, 'sleep 0.5; dd if=/dev/zero of=/pod-test-evict/big bs=1M count=3 2>/dev/null; sleep 600']
    volumeMounts: [{name: cache, mountPath: /pod-test-evict}]
  - name: other
    command: [sleep, "600"]
  volumes:
  - name: cache
    emptyDir: {sizeLimit: 1Mi}
"#;
    pods.up_detached(yaml, &[]);
    let pod = pods.wait_status("hog", "evicted", Duration::from_secs(20), |p| {
        p["status"]["phase"] == "Failed"
    });
    assert_eq!(pod["status"]["reason"], "Evicted");
    assert_eq!(
        pod["status"]["message"],
        "Usage of EmptyDir volume \"cache\" exceeds the limit \"1Mi\". "
    );
    // Every container was stopped, none restarted.
    for c in ["writer", "other"] {
        assert!(
            container(&pod, c)["state"]["terminated"].is_object(),
            "{c}: {pod:#}"
        );
    }
    let events = pods.ok(&["events", "hog"]);
    assert!(
        events.contains("Evicted") && events.contains("exceeds the limit"),
        "{events}"
    );
    pods.ok(&["down", "hog", "--grace-period", "0"]);
    assert_all_gone(&pods);
}

#[test]
fn sub_path_expr_expands_the_containers_environment() {
    let pods = Pods::new("subexpr");
    let logs = TempDir::new("subexpr-logs");
    // kubernetes.io: "Using subPath with expanded environment variables", times scaled.
    let yaml = format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: pod1
spec:
  containers:
  - name: container1
    env:
    - name: POD_NAME
      valueFrom:
        fieldRef:
          apiVersion: v1
          fieldPath: metadata.name
    image: busybox:1.28
    command: [ "sh", "-c", "while [ true ]; do echo 'Hello'; sleep 600; done | tee -a /pod-test-logs/hello.txt" ]
    volumeMounts:
    - name: workdir1
      mountPath: /pod-test-logs
      # The variable expansion uses round brackets (not curly brackets).
      subPathExpr: $(POD_NAME)
  restartPolicy: Never
  volumes:
  - name: workdir1
    hostPath:
      path: {}
"#,
        logs.path().display()
    );
    pods.up_detached(&yaml, &[]);
    let file = logs.path().join("pod1/hello.txt");
    wait_for(
        "pod1/hello.txt on the host",
        Duration::from_secs(10),
        || fs::read_to_string(&file).is_ok_and(|t| t == "Hello\n"),
    );
    pods.ok(&["down", "pod1", "--grace-period", "0"]);
    assert_all_gone(&pods);
}

/// `exec` gets the container's environment every time, its Secrets included: while
/// the main process is in the middle of one execve after another (its
/// /proc/PID/environ then reads empty), and after the supervisor is gone.
#[test]
fn exec_gets_the_containers_environment_while_its_main_process_execs() {
    let pods = Pods::new("execenv");
    let loop_ = r#"exec sh -c "$0" "$0""#;
    let yaml = format!(
        r#"apiVersion: v1
kind: Secret
metadata: {{name: s}}
stringData: {{token: t0ken}}
---
apiVersion: v1
kind: Pod
metadata: {{name: execenv}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: a
    command: [sh, -c, '{loop_}', '{loop_}']
    env:
    - {{name: PLAIN, value: here}}
    - name: TOKEN
      valueFrom: {{secretKeyRef: {{name: s, key: token}}}}
"#
    );
    pods.up_detached(&yaml, &[]);
    let pod = pods.status("execenv");
    let check = |round: &str| {
        for i in 0..60 {
            let env = pods.ok(&["exec", "execenv", "--", "env"]);
            assert!(
                env.contains("PLAIN=here\n") && env.contains("TOKEN=t0ken\n"),
                "{round}, exec {i}: {env:?}"
            );
        }
    };
    check("with its supervisor");
    // Without the supervisor, the main process's own environment, read when its
    // execve is done.
    let sup = as_pid(&pod["metadata"]["annotations"]["launcher/supervisor-pid"]);
    signal_pid(sup, libc::SIGKILL);
    wait_for("the supervisor to go", Duration::from_secs(5), || {
        stat_state(sup).is_none_or(|(state, _)| state == 'Z')
    });
    check("without its supervisor");
    pods.ok(&["down", "execenv", "--grace-period", "0"]);
    pods.assert_clean();
}

/// A memory-backed emptyDir is at most the machine's memory, whatever its sizeLimit
/// says (the kubelet's sizing): a tmpfs of 1Ei would let a pod take it all.
#[test]
fn a_memory_emptydir_is_never_larger_than_the_machine() {
    let pods = Pods::new("memcap");
    let yaml = "apiVersion: v1
kind: Pod
metadata: {name: memcap}
spec:
  containers:
  - name: a
    command: [sleep, '600']
    volumeMounts: [{name: huge, mountPath: /memcap-huge}, {name: plain, mountPath: /memcap-plain}]
  volumes:
  - {name: huge, emptyDir: {medium: Memory, sizeLimit: 1Ei}}
  - {name: plain, emptyDir: {medium: Memory}}
";
    pods.up_detached(yaml, &[]);
    let total_kib = mem_total_kib();
    let mounts = sh(&pods, "memcap", "grep memcap- /proc/mounts");
    for name in ["/memcap-huge", "/memcap-plain"] {
        let line = mounts.lines().find(|l| l.contains(name)).unwrap();
        let size_kib: u64 = line
            .split([',', ' '])
            .find_map(|o| o.strip_prefix("size="))
            .and_then(|s| s.strip_suffix('k'))
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            size_kib > 0 && size_kib <= total_kib,
            "{line} (MemTotal {total_kib} kB)"
        );
    }
    pods.ok(&["down", "memcap", "--grace-period", "0"]);
    pods.assert_clean();
}

/// A ConfigMap's data stays out of the pod's record (it is the supervisor's, in
/// memory): a 2 MB one leaves the record small, and the pod's files whole.
#[test]
fn a_large_configmap_leaves_the_record_small() {
    let pods = Pods::new("bigcm");
    // 1,999,998 bytes of 0x01, in base64 ("AQEB" is three of them).
    let data = "AQEB".repeat(666_666);
    let yaml = format!(
        "apiVersion: v1
kind: ConfigMap
metadata: {{name: big}}
binaryData: {{blob: {data}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: bigcm}}
spec:
  containers:
  - name: a
    command: [sleep, '600']
    volumeMounts: [{{name: big, mountPath: /big}}]
  volumes:
  - {{name: big, configMap: {{name: big}}}}
"
    );
    pods.up_detached(&yaml, &[]);
    assert_eq!(sh(&pods, "bigcm", "wc -c < /big/blob").trim(), "1999998");
    let record = fs::metadata(pods.root.path().join("bigcm/pod.json")).unwrap();
    assert!(
        record.len() < 64 << 10,
        "pod.json is {} bytes",
        record.len()
    );
    assert!(pods.ok(&["ps"]).contains("bigcm"));
    pods.ok(&["down", "bigcm", "--grace-period", "0"]);
    pods.assert_clean();
}

/// With the data root outside /tmp (as its default /var/lib/launcher is), the pod's
/// view masks it, and the volumes mounted below it (a Memory emptyDir, a configMap's
/// files) are not copied from there into a container's view (they are attached as
/// volumes): a regression of the writable layer, which tests under /tmp never saw.
#[test]
fn volumes_below_a_data_root_outside_tmp_reach_their_containers() {
    let mut pods = Pods::new("vol-varlib");
    pods.data = TempDir::new_in(Path::new("/var/lib"), "vol-varlib-data");
    let yaml = "apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {greeting: hello}
---
apiVersion: v1
kind: Pod
metadata: {name: varlib}
spec:
  securityContext: {fsGroup: 2000}
  volumes:
  - {name: mem, emptyDir: {medium: Memory}}
  - {name: disk, emptyDir: {mode: 0750}}
  - {name: cfg, configMap: {name: cfg}}
  containers:
  - name: c
    command: [sleep, '600']
    volumeMounts:
    - {name: mem, mountPath: /mem}
    - {name: disk, mountPath: /disk}
    - {name: cfg, mountPath: /cfg}
";
    pods.up_detached(yaml, &[]);
    let out = pods.ok(&[
        "exec", "varlib", "--", "sh", "-c",
        "cat /cfg/greeting; echo; echo x > /mem/f && echo x > /disk/f && stat -c '%A %g' /disk /disk/f /cfg/greeting",
    ]);
    // fsGroup over emptyDir.mode 0750: the group's rwx and setgid; the files its too.
    assert_eq!(
        out,
        "hello\ndrwxrws--- 2000\n-rw-r--r-- 2000\n-rw-r--r-- 2000\n"
    );
    pods.ok(&["down", "varlib", "--grace-period", "0"]);
    pods.assert_clean();
}
