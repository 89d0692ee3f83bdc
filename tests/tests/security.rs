//! A pod's securityContext beyond users and capabilities, checked against the
//! documentation's examples: sysctls ("Using sysctls in a Kubernetes Cluster").
#![allow(clippy::unwrap_used)]

use pod_tests::*;

/// The documentation's sysctl-example, with a command (no image here) and one name
/// written with slashes.
const SYSCTLS: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: sysctl-example
spec:
  securityContext:
    sysctls:
    - name: kernel.shm_rmid_forced
      value: "1"
    - name: net.core.somaxconn
      value: "1024"
    - name: kernel.msgmax
      value: "65536"
    - name: net/ipv4/ip_local_port_range
      value: "20000 30000"
  containers:
  - name: c
    command: [sleep, "600"]
"#;

const READ: &str = "cat /proc/sys/kernel/shm_rmid_forced /proc/sys/net/core/somaxconn /proc/sys/kernel/msgmax /proc/sys/net/ipv4/ip_local_port_range";

#[test]
fn sysctls_are_the_pods_own_safe_ones_always_unsafe_ones_when_allowed() {
    let pods = Pods::new("sysctl");
    let host = std::process::Command::new("sh")
        .args(["-c", READ])
        .output()
        .unwrap()
        .stdout;
    // Unsafe ones are refused unless the runtime allows them, as the kubelet does.
    let out = pods.up_yaml(SYSCTLS, &["-d"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "launcher: spec.securityContext.sysctls[1].name: forbidden sysctl: \"net.core.somaxconn\" not allowlisted (allow it with --allowed-unsafe-sysctls \"net.core.somaxconn\")"
    );
    pods.assert_clean();
    pods.up_detached(
        SYSCTLS,
        &["--allowed-unsafe-sysctls", "kernel.msg*,net.core.somaxconn"],
    );
    let inside = pods.ok(&["exec", "sysctl-example", "--", "sh", "-c", READ]);
    assert_eq!(inside, "1\n1024\n65536\n20000\t30000\n");
    // The pod's namespaces have them; the machine's are as they were.
    let after = std::process::Command::new("sh")
        .args(["-c", READ])
        .output()
        .unwrap()
        .stdout;
    assert_eq!(after, host);
    pods.ok(&["down", "sysctl-example", "--grace-period", "0"]);
    pods.assert_clean();
}

#[test]
fn bad_sysctls_are_refused_and_leave_nothing() {
    let pods = Pods::new("sysctl-bad");
    let pod = |sysctls: &str, extra: &str| {
        format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: bad}}\nspec:\n{extra}  securityContext:\n    sysctls: {sysctls}\n  containers: [{{name: a, command: [sleep, '1']}}]\n")
    };
    for (yaml, code, want) in [
        (pod("[{name: vm.swappiness, value: '10'}]", ""), 2, "spec.securityContext.sysctls[0].name: \"vm.swappiness\" is not a namespaced sysctl: it would change the whole machine"),
        (pod("[{name: kernel.shm_rmid_forced, value: '1'}]", "  hostIPC: true\n"), 2, "spec.securityContext.sysctls[0].name: \"kernel.shm_rmid_forced\" not allowed with host ipc enabled"),
        (pod("[{name: Kernel.X, value: '1'}]", ""), 2, "spec.securityContext.sysctls[0].name: Invalid value: \"Kernel.X\""),
        (pod("[{name: kernel.shm_rmid_forced, value: '1'}, {name: kernel/shm_rmid_forced, value: '0'}]", ""), 2, "spec.securityContext.sysctls[1].name: Duplicate value: \"kernel/shm_rmid_forced\""),
        // A value the kernel refuses: the pod cannot be made.
        (pod("[{name: net.ipv4.tcp_syncookies, value: abc}]", ""), 1, "set sysctl net.ipv4.tcp_syncookies=abc: Invalid argument"),
    ] {
        let out = pods.up_yaml(&yaml, &["-d"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{yaml}: {err}");
        assert!(err.contains(want), "got {err}\nwant {want}");
        pods.assert_clean();
    }
}

/// The documentation's security-context-demo ("Configure a Security Context for a Pod
/// or Container"), and its supplementalGroupsPolicy pages.
const DEMO: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: security-context-demo
spec:
  securityContext:
    runAsUser: 1000
    runAsGroup: 3000
    fsGroup: 2000
    supplementalGroups: [4000]
  volumes:
  - name: sec-ctx-vol
    emptyDir: {}
  containers:
  - name: sec-ctx-demo
    image: busybox:1.28
    command: [ "sh", "-c", "sleep 1h" ]
    volumeMounts:
    - name: sec-ctx-vol
      mountPath: /data/demo
    securityContext:
      allowPrivilegeEscalation: false
"#;

#[test]
fn fs_group_owns_the_volume_and_joins_every_process() {
    let pods = Pods::new("fsgroup");
    pods.up_detached(DEMO, &[]);
    let sh = |script: &str| pods.ok(&["exec", "security-context-demo", "--", "sh", "-c", script]);
    // `ls -l /data`: drwxrwsrwx 2 root 2000 ... demo
    assert_eq!(
        sh("stat -c '%A %U %g' /data/demo"),
        "drwxrwsrwx root 2000\n"
    );
    // `echo hello > testfile; ls -l`: -rw-r--r-- 1 1000 2000 6 ... testfile
    assert_eq!(
        sh("cd /data/demo && echo hello > testfile && stat -c '%A %u %g %s' testfile"),
        "-rw-r--r-- 1000 2000 6\n"
    );
    // `id`: uid=1000 gid=3000 groups=2000,3000,4000
    assert_eq!(
        sh("id -u; id -g; id -G | tr ' ' '\\n' | sort | tr '\\n' ' '"),
        "1000\n3000\n2000 3000 4000 "
    );
    let st = pods.status("security-context-demo");
    assert_eq!(
        container(&st, "sec-ctx-demo")["user"],
        serde_json::json!({"linux": {"uid": 1000, "gid": 3000, "supplementalGroups": [2000, 3000, 4000]}})
    );
    pods.ok(&["down", "security-context-demo", "--grace-period", "0"]);
    pods.assert_clean();
}

#[test]
fn strict_supplemental_groups_leave_out_the_users_memberships() {
    let pods = Pods::new("strict-groups");
    // A user of the host's /etc/group with a membership: root is in none by name, so
    // find one that is.
    let groups = std::fs::read_to_string("/etc/group").unwrap();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let member = groups.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        let name = f.get(3)?.split(',').find(|m| !m.is_empty())?;
        let uid = passwd.lines().find_map(|p| {
            let q: Vec<&str> = p.split(':').collect();
            (q.first() == Some(&name)).then(|| q[2].to_string())
        })?;
        Some((uid, f[2].to_string()))
    });
    let Some((uid, gid)) = member else {
        panic!("no user of /etc/passwd is a member of a group in /etc/group");
    };
    for (policy, has) in [("Merge", true), ("Strict", false)] {
        let yaml = format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: g}}\nspec:\n  securityContext: {{runAsUser: {uid}, runAsGroup: 3000, supplementalGroups: [4000], supplementalGroupsPolicy: {policy}}}\n  containers: [{{name: c, command: [sleep, '600']}}]\n");
        pods.up_detached(&yaml, &[]);
        let ids = pods.ok(&["exec", "g", "--", "id", "-G"]);
        let listed: Vec<&str> = ids.split_whitespace().collect();
        assert!(
            listed.contains(&"3000") && listed.contains(&"4000"),
            "{policy}: {ids}"
        );
        assert_eq!(listed.contains(&gid.as_str()), has, "{policy}: {ids}");
        let st = pods.status("g");
        let user = &container(&st, "c")["user"]["linux"]["supplementalGroups"];
        let reported: Vec<String> = user
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.to_string())
            .collect();
        assert_eq!(reported.contains(&gid), has, "{policy}: {user}");
        pods.ok(&["down", "g", "--grace-period", "0"]);
    }
    pods.assert_clean();
}
