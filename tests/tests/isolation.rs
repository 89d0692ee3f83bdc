//! A pod cannot reach past itself: each escape tried from inside a non-privileged pod
//! and refused, and what `--privileged` allows.

use pod_tests::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

/// Runs `script` with sh in container `c` of `pod`; (exit code, stdout + stderr).
fn sh(pods: &Pods, pod: &str, c: &str, script: &str) -> (i32, String) {
    let out = pods.run(&["exec", pod, "-c", c, "--", "sh", "-c", script]);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

fn running(p: &serde_json::Value) -> bool {
    p["status"]["containerStatuses"]
        .as_array()
        .is_some_and(|cs| cs.iter().all(|c| c["state"]["running"].is_object()))
}

#[test]
fn a_pod_cannot_touch_cgroups_or_the_runtimes_state() {
    let pods = Pods::new("escape");
    for name in ["victim", "p"] {
        pods.ok(&[
            "up",
            "-d",
            "--name",
            name,
            "-e",
            "SECRET=hunter2",
            "-c",
            "a=sleep 600",
        ]);
        pods.wait_status(name, "running", Duration::from_secs(5), running);
    }
    let cgroup = pods.pod_cgroup("p");
    let record = pods.root.path().join("victim/pod.json");
    assert!(record.exists());

    // Its own cgroup namespace, rooted at the pod's cgroup, mounted read-only.
    let (_, out) = sh(&pods, "p", "a", "cat /proc/self/cgroup; ls /sys/fs/cgroup");
    assert!(out.contains("0::/a\n"), "{out}");
    assert!(
        out.contains("_pause") && !out.contains("launcher-test"),
        "{out}"
    );
    for escape in [
        "echo $$ > /sys/fs/cgroup/cgroup.procs",
        "echo 1 > /sys/fs/cgroup/a/cgroup.kill",
        "echo 1 > /sys/fs/cgroup/cgroup.kill",
        "echo max > /sys/fs/cgroup/pids.max",
    ] {
        let (code, out) = sh(&pods, "p", "a", escape);
        assert_ne!(code, 0, "{escape}: {out}");
        assert!(out.contains("Read-only file system"), "{escape}: {out}");
    }
    // Nothing of the host's cgroups is reachable by its path either.
    let host_path = format!("{}/cgroup.procs", cgroup.display());
    let (code, out) = sh(&pods, "p", "a", &format!("echo $$ > {host_path}"));
    assert_ne!(code, 0, "{out}");
    assert!(fs::read_to_string(cgroup.join("a/cgroup.procs"))
        .unwrap()
        .lines()
        .next()
        .is_some());

    // The state root is not there (the test's roots are under /tmp, which a container
    // has of its own) or an empty read-only directory: no record, its own or another's.
    let root = pods.root.path().display().to_string();
    let unseen = |dir: &str| {
        let (code, out) = sh(&pods, "p", "a", &format!("ls -A {dir}"));
        assert!(
            (code, out.as_str()) == (0, "") || out.contains("No such file or directory"),
            "{dir} shows {out}"
        );
    };
    unseen(&root);
    for escape in [
        format!("cat {}", record.display()),
        format!("echo x > {root}/p/pod.json"),
        format!("mkdir {root}/evil"),
    ] {
        let (code, out) = sh(&pods, "p", "a", &escape);
        assert_ne!(code, 0, "{escape}: {out}");
        assert!(!out.contains("hunter2"), "{out}");
    }
    assert!(fs::read_to_string(&record).unwrap().contains("hunter2"));
    // So is the data root, where every pod's logs are.
    let data = pods.data.path().display().to_string();
    unseen(&data);
    let (code, _) = sh(&pods, "p", "a", &format!("mkdir {data}/pods/evil"));
    assert_ne!(code, 0);
    assert!(pods.log_dir("p", "a").exists());

    // runc's masked and read-only paths.
    for (path, escape) in [
        (
            "/proc/sys/kernel/ns_last_pid",
            "echo 1 > /proc/sys/kernel/ns_last_pid",
        ),
        ("/proc/sysrq-trigger", "echo h > /proc/sysrq-trigger"),
    ] {
        if !std::path::Path::new(path).exists() {
            continue;
        }
        let (code, out) = sh(&pods, "p", "a", escape);
        assert_ne!(code, 0, "{escape}: {out}");
        assert!(out.contains("Read-only file system"), "{escape}: {out}");
    }
    let mut masked = 0;
    for path in [
        "/proc/timer_list",
        "/proc/keys",
        "/proc/kcore",
        "/sys/firmware",
    ] {
        let shown = match fs::metadata(path) {
            Ok(m) if m.is_dir() => format!("ls -A {path}"),
            Ok(_) => format!("wc -c < {path}"),
            Err(_) => continue,
        };
        masked += 1;
        let (code, out) = sh(&pods, "p", "a", &shown);
        assert_eq!(code, 0, "{path}: {out}");
        assert!(matches!(out.trim(), "" | "0"), "{path} shows {out}");
    }
    assert!(masked >= 2, "too few of the masked paths exist to test");
    let (code, out) = sh(&pods, "p", "a", "touch /sys/kernel/x");
    assert_ne!(code, 0, "{out}");

    // Each pod has its own /dev/shm.
    let (code, out) = sh(&pods, "victim", "a", "echo secret > /dev/shm/victim-shm");
    assert_eq!(code, 0, "{out}");
    let (code, _) = sh(&pods, "p", "a", "cat /dev/shm/victim-shm");
    assert_ne!(code, 0, "another pod's /dev/shm is visible");

    // The pod keeps running and the runtime still knows it.
    assert!(pods.status("p")["status"]["phase"] == "Running");
    for name in ["victim", "p"] {
        pods.ok(&["down", name, "--grace-period", "0"]);
    }
    pods.assert_clean();
}

#[test]
fn a_privileged_pod_sees_the_hosts_cgroups_writable() {
    let pods = Pods::new("priv");
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "p",
        "--privileged",
        "-c",
        "a=sleep 600",
    ]);
    pods.wait_status("p", "running", Duration::from_secs(5), running);
    let cgroup = pods.pod_cgroup("p");
    // Its cgroup namespace still starts at the pod, but /sys is the host's, writable.
    let (code, out) = sh(
        &pods,
        "p",
        "a",
        &format!("test -w {}/cgroup.procs && echo writable", cgroup.display()),
    );
    assert_eq!((code, out.trim()), (0, "writable"), "{out}");
    // The runtime's state stays hidden even from a privileged pod.
    let (_, out) = sh(
        &pods,
        "p",
        "a",
        &format!("ls -A {}", pods.root.path().display()),
    );
    assert_eq!(out, "");
    pods.ok(&["down", "p", "--grace-period", "0"]);
    pods.assert_clean();
}

/// A block device of this machine, as "MAJOR MINOR" (the VM has none).
fn some_disk() -> Option<String> {
    let dev = fs::read_dir("/sys/dev/block")
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .min()?;
    Some(dev.replace(':', " "))
}

#[test]
fn a_pod_has_its_own_dev_and_may_open_no_other_device() {
    let pods = Pods::new("dev");
    let nodes = TempDir::new("devnodes");
    fs::set_permissions(nodes.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let dir = nodes.path().display();
    let volume = format!("{dir}:{dir}");
    for (name, privileged) in [("p", false), ("priv", true)] {
        let mut args = vec![
            "up",
            "-d",
            "--name",
            name,
            "-c",
            "a=sleep 600",
            "-v",
            &volume,
        ];
        if privileged {
            args.push("--privileged");
        }
        pods.ok(&args);
        pods.wait_status(name, "running", Duration::from_secs(5), running);
    }

    // runc's /dev: a handful of devices, a devpts of its own, nothing of the host's
    // (and the kubelet's termination log).
    let (code, out) = sh(&pods, "p", "a", "ls -A /dev | tr '\\n' ' '");
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "fd full mqueue null ptmx pts random shm stderr stdin stdout termination-log tty urandom zero "
        )
    );
    let (code, out) = sh(
        &pods,
        "p",
        "a",
        "echo x > /dev/null && head -c 3 /dev/zero | wc -c && test -c /dev/pts/ptmx && \
         grep -c ' /dev/pts .* - devpts ' /proc/self/mountinfo",
    );
    assert_eq!((code, out.as_str()), (0, "3\n1\n"), "{out}");

    // Root in the pod has CAP_MKNOD and a writable directory, yet may open no device
    // beyond those: not the kernel log, not a disk.
    let mut script =
        format!("mknod {dir}/kmsg-NAME c 1 11 && (head -c 0 < {dir}/kmsg-NAME && echo opened)");
    let mut tries = 1;
    if let Some(disk) = some_disk() {
        script += &format!(
            "; mknod {dir}/disk-NAME b {disk} && (head -c 0 < {dir}/disk-NAME && echo opened)"
        );
        tries += 1;
    }
    let (code, out) = sh(&pods, "p", "a", &script.replace("NAME", "p"));
    assert_ne!(code, 0, "{out}");
    assert_eq!(
        out.matches("Operation not permitted").count(),
        tries,
        "{out}"
    );
    assert!(!out.contains("opened"), "{out}");
    // A privileged pod keeps the host's /dev and every device.
    let (code, out) = sh(&pods, "priv", "a", &script.replace("NAME", "priv"));
    assert_eq!((code, out.matches("opened\n").count()), (0, tries), "{out}");
    let (_, out) = sh(&pods, "priv", "a", "ls /dev | wc -l");
    assert!(out.trim().parse::<u32>().unwrap() > 14, "{out}");

    for name in ["p", "priv"] {
        pods.ok(&["down", name, "--grace-period", "0"]);
    }
    pods.assert_clean();
}

/// (gid of `uid` in this machine's /etc/passwd, or 0).
fn primary_gid(uid: u32) -> u32 {
    fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[2] == uid.to_string()).then(|| f[3].parse().ok())?
        })
        .unwrap_or(0)
}

/// A copy of `cat` carrying the file capability CAP_DAC_READ_SEARCH in its permitted,
/// inheritable and effective sets: how a process regains a privilege at exec.
#[allow(unsafe_code)] // setxattr(2): std has no call for it
fn capability_binary(dir: &std::path::Path) -> std::path::PathBuf {
    let cat = ["/bin/cat", "/usr/bin/cat"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("cat");
    let copy = dir.join("capcat");
    fs::copy(fs::canonicalize(cat).expect("cat"), &copy).expect("copy cat");
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).expect("chmod");
    // struct vfs_cap_data, revision 2, effective flag; CAP_DAC_READ_SEARCH is bit 2.
    let mut data = Vec::new();
    data.extend_from_slice(&(0x0200_0000u32 | 1).to_le_bytes());
    data.extend_from_slice(&(1u32 << 2).to_le_bytes()); // permitted
    data.extend_from_slice(&(1u32 << 2).to_le_bytes()); // inheritable
    data.extend_from_slice(&[0; 8]);
    let path = std::ffi::CString::new(copy.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: valid NUL-terminated strings and a buffer of the length passed.
    let rc = unsafe {
        libc::setxattr(
            path.as_ptr(),
            c"security.capability".as_ptr(),
            data.as_ptr().cast(),
            data.len(),
            0,
        )
    };
    assert_eq!(rc, 0, "setxattr: {}", std::io::Error::last_os_error());
    copy
}

#[test]
fn identities_and_capabilities_are_set_as_runc_sets_them() {
    let pods = Pods::new("ids");
    let bins = TempDir::new("capbin");
    fs::set_permissions(bins.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let capcat = capability_binary(bins.path());
    let yaml = format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: ids}}
spec:
  securityContext: {{supplementalGroups: [4242]}}
  volumes:
  - {{name: bins, hostPath: {{path: {bins}, type: Directory}}}}
  containers:
  - name: user
    command: [sleep, "600"]
    securityContext: {{runAsUser: 65534}}
    volumeMounts: [{{name: bins, mountPath: {bins}, readOnly: true}}]
  - name: root
    command: [sleep, "600"]
"#,
        bins = bins.path().display()
    );
    pods.up_detached(&yaml, &[]);
    pods.wait_status("ids", "running", Duration::from_secs(5), running);

    let (_, out) = sh(
        &pods,
        "ids",
        "user",
        "id -u; id -g; id -G; grep ^Cap /proc/self/status",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "65534");
    assert_eq!(
        lines[1],
        primary_gid(65534).to_string(),
        "primary group from /etc/passwd"
    );
    assert!(
        lines[2].split(' ').any(|g| g == "4242"),
        "supplementalGroups: {out}"
    );
    let cap = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:\t")))
            .unwrap()
            .to_string()
    };
    assert_eq!(cap("CapInh"), "0000000000000000");
    assert_eq!(cap("CapAmb"), "0000000000000000");
    assert_eq!(cap("CapEff"), "0000000000000000");
    assert_eq!(
        cap("CapBnd"),
        "00000000a80425fb",
        "the default capability set"
    );

    // A file capability gives nothing back (no inheritable set, no_new_privs): the
    // kernel refuses to run a capability-aware-less binary without its capabilities
    // (EPERM), or it runs with none.
    let (code, out) = sh(
        &pods,
        "ids",
        "user",
        &format!("{} /proc/self/status | grep ^Cap", capcat.display()),
    );
    if code == 0 {
        assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
        assert!(out.contains("CapPrm:\t0000000000000000"), "{out}");
    } else {
        assert!(out.contains("Operation not permitted"), "{out}");
    }

    // Root keeps the default set, nothing inheritable, and only its own groups.
    let (_, out) = sh(&pods, "ids", "root", "id -G; grep ^Cap /proc/self/status");
    assert!(out.starts_with("0 4242\n"), "{out}");
    assert!(out.contains("CapInh:\t0000000000000000"), "{out}");
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    pods.ok(&["down", "ids", "--grace-period", "0"]);
    pods.assert_clean();
}

#[test]
fn a_read_only_root_file_system_keeps_the_host_unwritten() {
    let pods = Pods::new("rofs");
    let yaml = r#"
apiVersion: v1
kind: Pod
metadata: {name: ro}
spec:
  containers:
  - name: ro
    command: [sleep, "600"]
    securityContext: {readOnlyRootFilesystem: true}
  - name: rw
    command: [sleep, "600"]
"#;
    pods.up_detached(yaml, &[]);
    pods.wait_status("ro", "running", Duration::from_secs(5), running);
    for path in ["/etc/launcher-test-rofs", "/tmp/x", "/usr/x"] {
        let (code, out) = sh(&pods, "ro", "ro", &format!("echo x > {path}"));
        assert_ne!(code, 0, "{out}");
        assert!(out.contains("Read-only file system"), "{out}");
    }
    // Devices, the pod's /dev/shm and /proc still work.
    let (code, out) = sh(
        &pods,
        "ro",
        "ro",
        "echo x > /dev/null && echo y > /dev/shm/y && cat /proc/self/comm",
    );
    assert_eq!((code, out.as_str()), (0, "cat\n"), "{out}");
    // The container next to it writes to its own layer, not the host.
    let (code, out) = sh(&pods, "ro", "rw", "echo x > /etc/launcher-test-rofs");
    assert_eq!(code, 0, "{out}");
    assert!(!std::path::Path::new("/etc/launcher-test-rofs").exists());
    pods.ok(&["down", "ro", "--grace-period", "0"]);
    pods.assert_clean();
}

#[test]
fn privilege_escalation_is_refused_where_no_new_privs_would_be_lifted() {
    let pods = Pods::new("ape");
    let yaml = r#"
apiVersion: v1
kind: Pod
metadata: {name: ape}
spec:
  containers:
  - name: a
    command: [sleep, "600"]
    securityContext: {allowPrivilegeEscalation: true}
"#;
    let out = pods.up_yaml(yaml, &["-d"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("spec.containers[0].securityContext.allowPrivilegeEscalation: may be true only with privileged or CAP_SYS_ADMIN"),
        "{err}"
    );
    let privileged = yaml.replace(
        "{allowPrivilegeEscalation: true}",
        "{allowPrivilegeEscalation: false, privileged: true}",
    );
    let out = pods.up_yaml(&privileged, &["-d"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("cannot set allowPrivilegeEscalation to false and privileged to true"));
    pods.assert_clean();
}

#[test]
fn bad_input_is_refused_at_once_and_leaves_nothing() {
    let pods = Pods::new("input");
    let big = TempDir::new("input-big");
    let huge = big.path().join("huge.yaml");
    fs::write(&huge, "a".repeat(4 << 20)).unwrap();
    let huge = huge.display().to_string();
    let dir = big.path().display().to_string();
    for (args, stdin, says) in [
        (
            vec!["up", "-f", "/dev/zero"],
            None,
            "cannot read /dev/zero: not a regular file or a pipe",
        ),
        (
            vec!["up", "-f", "-"],
            Some("/dev/zero"),
            "cannot read -: not a regular file or a pipe",
        ),
        (
            vec!["up", "-f", &huge],
            None,
            "larger than 3 MiB, the most a manifest may be",
        ),
        (
            vec!["up", "-f", "-"],
            Some(huge.as_str()),
            "larger than 3 MiB",
        ),
        (vec!["up", "-f", &dir], None, "is a directory"),
    ] {
        let mut cmd = pods.cmd(&args);
        if let Some(path) = stdin {
            cmd.stdin(fs::File::open(path).unwrap());
        }
        let start = std::time::Instant::now();
        let out = cmd.output().unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{args:?} took {:?}",
            start.elapsed()
        );
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(says) && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }
    // An invalid quantity is named once, not once per link of the error chain.
    let out = pods.run(&["up", "--name", "q", "-c", "a=true", "--memory=-5"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("invalid memory quantity").count(), 1, "{err}");
    let out = pods.run(&["exec", "nopod", "--", ""]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the command may not be empty"));
    // A cgroup parent that climbs out of the cgroup2 mount.
    let mut cmd = Command::new(bin("launcher"));
    let climbing = format!("{}/../../../../tmp/x", cgroup2_mount().display());
    let out = cmd
        .args(["--root", &pods.root.path().display().to_string()])
        .args([
            "--cgroup-parent",
            &climbing,
            "up",
            "--name",
            "x",
            "-c",
            "a=true",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("may not contain \"..\""));
    assert!(!std::path::Path::new("/tmp/x").exists());
    // A state root anyone may write to is not trusted.
    let open = TempDir::new("input-open-root");
    fs::set_permissions(open.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let out = Command::new(bin("launcher"))
        .arg("--root")
        .arg(open.path())
        .arg("ps")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is writable by everyone"));
    // So is a data root.
    let out = pods
        .cmd(&["up", "-d", "--name", "x", "-c", "a=true"])
        .arg("--data-root")
        .arg(open.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is writable by everyone") && err.contains("--data-root"),
        "{err}"
    );
    // Nor is one whose parent anyone may write to, or another user owns: they could
    // rename it away and put one of their own in its place.
    let owned = TempDir::new("input-owned-parent");
    std::os::unix::fs::chown(owned.path(), Some(65534), None).unwrap();
    for (parent, says) in [
        (open.path(), "is writable by everyone".to_string()),
        (
            owned.path(),
            format!("{} belongs to uid 65534", owned.path().display()),
        ),
    ] {
        let root = parent.join("root");
        let out = Command::new(bin("launcher"))
            .arg("--root")
            .arg(&root)
            .arg("ps")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(&says) && err.contains("--root"), "{err}");
        assert!(!root.exists(), "refused, yet made {}", root.display());
    }
    pods.assert_clean();
}

/// A hostPath is checked on what is mounted, not on a name looked up again: a
/// symlink swapped to the runtime's state after `up` checked it mounts nothing there.
#[test]
fn a_host_path_swapped_for_the_runtimes_state_after_the_check_is_refused() {
    let pods = Pods::new("swap");
    let dir = TempDir::new("swap-host");
    let safe = dir.path().join("safe");
    fs::create_dir(&safe).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&safe, &link).unwrap();
    let yaml = format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: swap}}
spec:
  restartPolicy: OnFailure
  containers:
  - name: a
    command: [sh, -c, 'ls /mnt > {out}; exit 1']
    volumeMounts: [{{name: h, mountPath: /mnt}}]
  volumes:
  - {{name: h, hostPath: {{path: {link}}}}}
",
        out = dir.path().join("seen").display(),
        link = link.display()
    );
    pods.up_detached(&yaml, &["--backoff-scale", "0.01"]);
    // Now the link leads to the state root, where every pod's record is: swapped in
    // one rename, so that no restart meets the link missing.
    let swap = dir.path().join("link.new");
    std::os::unix::fs::symlink(pods.root.path(), &swap).unwrap();
    fs::rename(&swap, &link).unwrap();
    let refused = |p: &serde_json::Value| -> Option<String> {
        let c = &p["status"]["containerStatuses"][0];
        [&c["state"]["terminated"], &c["lastState"]["terminated"]]
            .into_iter()
            .find(|t| t["reason"] == "ContainerCannotRun")
            .and_then(|t| t["message"].as_str().map(String::from))
    };
    let pod = pods.wait_status(
        "swap",
        "the restart refused",
        Duration::from_secs(10),
        |p| refused(p).is_some(),
    );
    let msg = refused(&pod).unwrap();
    assert!(
        msg.contains("volume \"h\"") && msg.contains("holds the runtime's own state"),
        "{msg}"
    );
    let seen = fs::read_to_string(dir.path().join("seen")).unwrap_or_default();
    assert!(!seen.contains("swap"), "the state root was mounted: {seen}");
    pods.ok(&["down", "swap", "--grace-period", "0"]);
    pods.assert_clean();
}

/// A non-privileged container, its exec sessions and its probes run under the
/// RuntimeDefault syscall filter: no namespace (a user namespace needs no capability
/// but the filter's leave), no key in the kernel's keyrings. `Unconfined` lifts it;
/// so does privileged.
#[test]
fn runtime_default_refuses_namespaces_and_keys_unless_unconfined() {
    let pods = Pods::new("seccomp");
    // add_key(2) of a "user" key into the process keyring (-2): 248 on x86_64.
    let add_key = "python3 -c 'import ctypes,sys; r=ctypes.CDLL(None, use_errno=True).syscall(248, b\"user\", b\"k\", b\"v\", 1, -2); sys.exit(0 if r >= 0 else ctypes.get_errno())'";
    let yaml = "apiVersion: v1
kind: Pod
metadata: {name: sc}
spec:
  containers:
  - name: default
    command: [sleep, '600']
    readinessProbe:
      exec: {command: [sh, -c, 'unshare -U true']}
      periodSeconds: 1
  - name: open
    command: [sleep, '600']
    securityContext: {seccompProfile: {type: Unconfined}}
";
    pods.up_detached(yaml, &[]);
    let exec = |c: &str, script: &str| {
        let out = pods.run(&["exec", "sc", "-c", c, "--", "sh", "-c", script]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = exec("default", "unshare -U true");
    assert_ne!(
        code,
        Some(0),
        "a user namespace was made under RuntimeDefault"
    );
    assert!(err.contains("Operation not permitted"), "{err}");
    assert_eq!(exec("default", add_key).0, Some(libc::EPERM));
    assert_eq!(exec("open", "unshare -U true").0, Some(0));
    assert_eq!(exec("open", add_key).0, Some(0));
    // The probe runs under it too: unshare fails there.
    wait_for(
        "the readiness probe to fail",
        Duration::from_secs(10),
        || {
            pods.ok(&["events", "sc"])
                .contains("Readiness probe failed")
        },
    );
    assert_eq!(container(&pods.status("sc"), "default")["ready"], false);
    let describe = pods.ok(&["describe", "sc"]);
    let profiles: Vec<&str> = describe
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Seccomp:"))
        .map(str::trim)
        .collect();
    assert_eq!(profiles, ["RuntimeDefault", "Unconfined"], "{describe}");
    pods.ok(&["down", "sc", "--grace-period", "0"]);
    pods.assert_clean();
}

/// `--pod-security` enforces the Pod Security Standards as the API server's admission
/// does, in its words, before anything exists; `--pod-security-warn` only says so.
#[test]
fn pod_security_levels_refuse_or_warn_in_the_admissions_words() {
    let pods = Pods::new("pss");
    let yaml = "apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - {name: a, command: [sleep, '600'], volumeMounts: [{name: proc, mountPath: /host-proc}]}
  volumes:
  - {name: proc, hostPath: {path: /proc}}
";
    let out = pods.up_yaml(yaml, &["-d", "--pod-security", "baseline"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "launcher: pods \"p\" is forbidden: violates PodSecurity \"baseline:latest\": hostPath volumes (volume \"proc\")\n"
    );
    assert!(pods.leftover_state().is_empty() && pods.leftover_cgroups().is_empty());
    // The same through the environment, as a service's unit would set it.
    let out = pods
        .cmd(&["up", "-d", "-f", "-"])
        .env("LAUNCHER_POD_SECURITY", "restricted")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(yaml.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("violates PodSecurity \"restricted:latest\": hostPath volumes (volume \"proc\"), restricted volume types (volume \"proc\" uses restricted volume type \"hostPath\")"), "{err}");
    // Warned, the pod runs.
    let plain = "apiVersion: v1\nkind: Pod\nmetadata: {name: w}\nspec:\n  containers: [{name: a, command: [sleep, '600']}]\n";
    let out = pods.up_yaml(plain, &["-d", "--pod-security-warn", "restricted"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("Warning: would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false"),
        "{err}"
    );
    pods.ok(&["down", "w", "--grace-period", "0"]);
    // A pod hardened as `restricted` asks runs under it.
    let hardened = "apiVersion: v1
kind: Pod
metadata: {name: h}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: a
    command: [sleep, '600']
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
";
    let out = pods.up_yaml(hardened, &["-d", "--pod-security", "restricted"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    pods.wait_status("h", "running", Duration::from_secs(5), |p| {
        p["status"]["phase"] == "Running"
    });
    pods.ok(&["down", "h", "--grace-period", "0"]);
    pods.assert_clean();
}

/// A Localhost profile (OCI/Docker JSON under --seccomp-profile-root) is the
/// container's filter; a missing one is bad input, named by its field.
#[test]
fn a_localhost_seccomp_profile_is_the_containers_filter() {
    let pods = Pods::new("localhost-sc");
    let root = TempDir::new("localhost-sc-profiles");
    fs::create_dir(root.path().join("profiles")).unwrap();
    fs::write(
        root.path().join("profiles/no-mkdir.json"),
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    )
    .unwrap();
    let manifest = |profile: &str| {
        format!(
            "apiVersion: v1
kind: Pod
metadata: {{name: lp}}
spec:
  containers:
  - name: a
    command: [sleep, '600']
    securityContext: {{seccompProfile: {{type: Localhost, localhostProfile: {profile}}}}}
"
        )
    };
    let flag = root.path().display().to_string();
    let out = pods.up_yaml(
        &manifest("profiles/none.json"),
        &["-d", "--seccomp-profile-root", &flag],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("spec.containers[0].securityContext.seccompProfile.localhostProfile:")
            && err.contains("none.json: No such file or directory"),
        "{err}"
    );
    assert!(pods.leftover_state().is_empty());
    let out = pods.up_yaml(
        &manifest("profiles/no-mkdir.json"),
        &["-d", "--seccomp-profile-root", &flag],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = TempDir::new("localhost-sc-target");
    let target = dir.path().join("new");
    let out = pods.run(&["exec", "lp", "--", "mkdir", target.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!target.exists());
    // What the profile allows still works.
    assert!(pods
        .ok(&["exec", "lp", "--", "cat", "/proc/self/status"])
        .contains("Seccomp:"));
    let describe = pods.ok(&["describe", "lp"]);
    assert!(describe.contains("Localhost"), "{describe}");
    pods.ok(&["down", "lp", "--grace-period", "0"]);
    pods.assert_clean();
}

#[test]
fn a_containers_writes_land_in_its_own_layer_and_go_with_it() {
    let pods = Pods::new("layer");
    let mark = format!("/etc/pod-test-layer-{}", std::process::id());
    let usr = format!("/usr/bin/pod-test-layer-{}", std::process::id());
    let mount = format!("/pod-test-layer-{}/deep/mnt", std::process::id());
    // The host's /tmp holds this; a container's /tmp is its own.
    let host_tmp = TempDir::new("layer-host-tmp");
    let yaml = format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: layer}}
spec:
  volumes: [{{name: scratch, emptyDir: {{}}}}]
  containers:
  - name: a
    command: [sh, -c, 'test -e {mark} && echo dirty || echo clean; echo a > {mark}; echo x > {usr}; exec sleep 600']
    volumeMounts: [{{name: scratch, mountPath: {mount}}}]
  - name: b
    command: [sleep, "600"]
"#
    );
    pods.up_detached(&yaml, &["--backoff-scale", "0.01"]);
    let pod = pods.wait_status("layer", "running", Duration::from_secs(5), running);
    let (code, out) = sh(
        &pods,
        "layer",
        "a",
        &format!("cat {mark} {usr}; ls -A /tmp /run; test -d {mount} && echo mounted"),
    );
    assert_eq!(
        (code, out.as_str()),
        (0, "a\nx\n/run:\n\n/tmp:\nmounted\n"),
        "{out}"
    );
    // Nothing of it on the host, nor in the container beside it.
    for path in [&mark, &usr, &mount] {
        assert!(!std::path::Path::new(path).exists(), "{path} on the host");
    }
    let (code, out) = sh(
        &pods,
        "layer",
        "b",
        &format!("test ! -e {mark} && test ! -e {usr}"),
    );
    assert_eq!(code, 0, "{out}");
    let (code, _) = sh(
        &pods,
        "layer",
        "a",
        &format!("test -e {}", host_tmp.path().display()),
    );
    assert_ne!(code, 0, "the host's /tmp shows through");

    // A restart starts with a new, empty layer.
    signal_pid(container_pid(&pod, "a").unwrap(), libc::SIGKILL);
    pods.wait_status("layer", "a restart", Duration::from_secs(10), |p| {
        container(p, "a")["restartCount"] == 1 && running(p)
    });
    let mut line = String::new();
    wait_for("the second start's line", Duration::from_secs(5), || {
        line = pods.ok(&["logs", "layer", "-c", "a"]);
        !line.is_empty()
    });
    assert_eq!(line, "clean\n", "the restart saw the first start's writes");
    pods.ok(&["down", "layer", "--grace-period", "0"]);
    pods.assert_clean();

    // A privileged pod's containers write to the host's files as they are.
    let written = host_tmp.path().join("written");
    let command = format!("a=touch {}", written.display());
    pods.ok(&[
        "up",
        "--name",
        "priv",
        "--privileged",
        "--restart",
        "Never",
        "-c",
        &command,
    ]);
    assert!(written.exists());
    // The foreground pod took itself away when it ended.
    pods.ok(&["down", "priv", "--ignore-not-found"]);
    pods.assert_clean();
}

#[test]
fn a_container_over_its_ephemeral_storage_limit_evicts_the_pod() {
    let pods = Pods::new("ephemeral");
    // 3 MiB into a layer of 2 MiB and the headroom: ENOSPC at worst, then eviction.
    let yaml = r#"
apiVersion: v1
kind: Pod
metadata: {name: filler}
spec:
  containers:
  - name: small
    command: [sh, -c, 'head -c 524288 /dev/zero > /tmp/half; exec sleep 600']
    resources: {limits: {ephemeral-storage: 2Mi}}
  - name: w
    command: [sh, -c, 'head -c 3145728 /dev/zero > /tmp/fill; exec sleep 600']
    resources: {limits: {ephemeral-storage: 2Mi}, requests: {ephemeral-storage: 1Mi}}
"#;
    pods.up_detached(yaml, &[]);
    let pod = pods.wait_status("filler", "evicted", Duration::from_secs(15), |p| {
        p["status"]["phase"] == "Failed"
    });
    assert_eq!(pod["status"]["reason"], "Evicted");
    assert_eq!(
        pod["status"]["message"],
        "Container w exceeded its local ephemeral storage limit \"2Mi\". "
    );
    let events = pods.ok(&["events", "filler"]);
    assert!(
        events.contains("Evicted") && events.contains("exceeded its local ephemeral storage"),
        "{events}"
    );
    // The limits and the request round-trip as given.
    let spec = &pod["spec"]["containers"][1]["resources"];
    assert_eq!(spec["limits"]["ephemeral-storage"], "2Mi");
    assert_eq!(spec["requests"]["ephemeral-storage"], "1Mi");
    pods.ok(&["down", "filler"]);
    pods.assert_clean();
}
