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
