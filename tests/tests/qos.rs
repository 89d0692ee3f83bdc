//! Quality of service, checked against the documentation's qos-demo pods (tasks:
//! "Configure Quality of Service for Pods"): `status.qosClass` as the API server
//! computes it, and the kubelet's oom_score_adj on every process of a container (and
//! -998 on pause). Pods with limits need cgroup v2 controllers, and scores below 0
//! CAP_SYS_RESOURCE: VM tier.
#![allow(clippy::unwrap_used)]

use pod_tests::*;
use std::time::Duration;

fn pod(name: &str, containers: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: qos-example\nspec:\n  containers:\n{containers}")
}

/// The oom_score_adj of process `pid`, read from the host.
fn score(pid: i32) -> i32 {
    std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Starts `yaml`, waits for it to run; its status.
fn running(pods: &Pods, name: &str, yaml: &str) -> serde_json::Value {
    pods.up_detached(yaml, &[]);
    pods.wait_status(name, "running", Duration::from_secs(10), |p| {
        p["status"]["phase"] == "Running"
    })
}

/// Checks class, the scores of `want` (container, oom_score_adj) on the main process
/// and an exec, and describe's line.
fn check(pods: &Pods, name: &str, class: &str, want: &[(&str, i32)]) {
    let st = pods.status(name);
    assert_eq!(st["status"]["qosClass"], class, "{st:#}");
    for &(c, adj) in want {
        assert_eq!(
            score(container_pid(&st, c).unwrap()),
            adj,
            "{c}'s main process"
        );
        let exec = pods.ok(&[
            "exec",
            name,
            "-c",
            c,
            "--",
            "cat",
            "/proc/self/oom_score_adj",
        ]);
        assert_eq!(exec.trim(), adj.to_string(), "{c}'s exec");
    }
    let described = pods.ok(&["describe", name]);
    assert!(
        described.contains(&format!("QoS Class:        {class}\n")),
        "{described}"
    );
}

#[test]
fn best_effort_and_burstable_by_requests_alone() {
    let pods = Pods::new("qos-host");
    // qos-demo-3: no requests, no limits.
    let yaml = pod(
        "qos-demo-3",
        "  - name: qos-demo-3-ctr\n    image: nginx\n    command: [sleep, '600']\n",
    );
    running(&pods, "qos-demo-3", &yaml);
    check(
        &pods,
        "qos-demo-3",
        "BestEffort",
        &[("qos-demo-3-ctr", 1000)],
    );
    // qos-demo-4: one container with a memory request, one with nothing.
    let yaml = pod(
        "qos-demo-4",
        "  - name: qos-demo-4-ctr-1\n    image: nginx\n    command: [sleep, '600']\n    resources:\n      requests:\n        memory: \"200Mi\"\n    env:\n    - name: MEM_REQUEST\n      valueFrom: {resourceFieldRef: {resource: requests.memory, divisor: 1Mi}}\n  - name: qos-demo-4-ctr-2\n    image: redis\n    command: [sleep, '600']\n",
    );
    running(&pods, "qos-demo-4", &yaml);
    // 1000 - 1000 x request / the machine's memory, as the kubelet computes it.
    let total = mem_total_kib() * 1024;
    let adj = (1000 - 1000 * (200u64 << 20) / total) as i32;
    check(
        &pods,
        "qos-demo-4",
        "Burstable",
        &[
            ("qos-demo-4-ctr-1", adj.min(999)),
            ("qos-demo-4-ctr-2", 999),
        ],
    );
    // The request is kept: the downward API reads it, status prints it.
    let env = pods.ok(&[
        "exec",
        "qos-demo-4",
        "-c",
        "qos-demo-4-ctr-1",
        "--",
        "printenv",
        "MEM_REQUEST",
    ]);
    assert_eq!(env.trim(), "200");
    let yaml = pods.ok(&["status", "qos-demo-4", "-o", "yaml"]);
    assert!(yaml.contains("requests:\n        memory: 200Mi"), "{yaml}");
    pods.ok(&["down", "qos-demo-3", "--grace-period", "0"]);
    pods.ok(&["down", "qos-demo-4", "--grace-period", "0"]);
    pods.assert_clean();
}

#[test]
#[ignore = "needs cgroup v2 controllers: VM tier"]
fn guaranteed_and_burstable_by_limits() {
    let pods = Pods::new("qos-vm");
    // qos-demo: requests equal to limits.
    let yaml = pod(
        "qos-demo",
        "  - name: qos-demo-ctr\n    image: nginx\n    command: [sleep, '600']\n    resources:\n      limits:\n        memory: \"200Mi\"\n        cpu: \"700m\"\n      requests:\n        memory: \"200Mi\"\n        cpu: \"700m\"\n",
    );
    let st = running(&pods, "qos-demo", &yaml);
    // Scores below 0 need CAP_SYS_RESOURCE, which the VM's root has (the host tier's
    // machine withholds it: there the inherited score stays, as under runc).
    check(&pods, "qos-demo", "Guaranteed", &[("qos-demo-ctr", -997)]);
    let pause: i32 = st["metadata"]["annotations"]["launcher/pause-pid"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(score(pause), -998, "pause, the sandbox");
    // qos-demo-2: a memory limit above its request.
    let yaml = pod(
        "qos-demo-2",
        "  - name: qos-demo-2-ctr\n    image: nginx\n    command: [sleep, '600']\n    resources:\n      limits:\n        memory: \"200Mi\"\n      requests:\n        memory: \"100Mi\"\n",
    );
    running(&pods, "qos-demo-2", &yaml);
    let st = pods.status("qos-demo-2");
    assert_eq!(st["status"]["qosClass"], "Burstable");
    let adj = score(container_pid(&st, "qos-demo-2-ctr").unwrap());
    assert!((3..999).contains(&adj), "a Burstable score: {adj}");
    pods.ok(&["down", "qos-demo", "--grace-period", "0"]);
    pods.ok(&["down", "qos-demo-2", "--grace-period", "0"]);
    pods.assert_clean();
}
