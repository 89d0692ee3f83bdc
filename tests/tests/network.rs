//! Pod networking on the real CNI plugins (Debian's containernetworking-plugins):
//! pod IPs, published ports, bandwidth, the host's namespaces, and what is left after
//! teardown. Every test runs the launcher inside a network namespace of its own
//! (`NetHost`): the bridge, NAT rules and IPAM files live there, and traffic goes only
//! to addresses inside it.
#![allow(clippy::unwrap_used)]
#![allow(unsafe_code)]

use pod_tests::*;
use serde_json::Value;
use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn pod_ip(pods: &Pods, name: &str) -> String {
    let st = pods.status(name);
    st["status"]["podIP"]
        .as_str()
        .unwrap_or_else(|| panic!("no podIP: {st:#}"))
        .to_string()
}

fn serving(dir: &TempDir, body: &str) -> String {
    std::fs::write(dir.path().join("index.html"), body).unwrap();
    format!("busybox httpd -f -p 8080 -h {}", dir.path().display())
}

type Traces = (String, String, String, String);

/// What the host sees of the pods' traces: veths, IPAM reservations, pinned
/// namespaces, and its NAT and filter rules.
fn traces(net: &NetHost) -> Traces {
    let veths = net
        .sh("ip -o link show type veth | wc -l")
        .trim()
        .to_string();
    let ipam = net.sh(
        "ls /var/lib/cni/networks/launcher 2>/dev/null | grep -v -e lock -e last_reserved_ip || true",
    );
    let pins = net.sh("grep ' nsfs ' /proc/self/mountinfo || true");
    let rules = net.sh("iptables-save | grep -v '^[#:]' | sort");
    (veths, ipam, pins, rules)
}

/// The traces once `settled` holds for them, or as they are after 10 s: a pod's veth
/// goes with its network namespace, which the kernel removes in its own time once the
/// pod's processes are gone and the namespace let go.
fn traces_once(net: &NetHost, settled: impl Fn(&Traces) -> bool) -> Traces {
    let deadline = Instant::now() + scaled(Duration::from_secs(10));
    loop {
        let t = traces(net);
        if settled(&t) || Instant::now() > deadline {
            return t;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// No veth, reservation or pin left (the rules are the test's to check).
fn no_pod_traces(t: &Traces) -> bool {
    (t.0.as_str(), t.1.as_str(), t.2.as_str()) == ("0", "", "")
}

#[test]
fn pods_reach_each_other_and_the_host_reaches_them_by_ip_and_published_port() {
    let pods = Pods::networked("net-reach");
    let www = TempDir::new("net-reach-www");
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "web",
        "-c",
        &format!("web={}", serving(&www, "hello from web")),
        "-p",
        "9090:8080",
        "-v",
        &format!("{0}:{0}:ro", www.path().display()),
    ]);
    pods.ok(&["up", "-d", "--name", "client", "-c", "c=sleep 600"]);
    let ip = pod_ip(&pods, "web");
    assert!(ip.starts_with("10.77."), "{ip}");
    let other = pod_ip(&pods, "client");
    assert_ne!(ip, other);
    // The downward API has the addresses too.
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: dapi}\nspec:\n  containers:\n  - name: a\n    command: [sleep, '600']\n    env:\n    - {name: MY_POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}\n    - {name: MY_HOST_IP, valueFrom: {fieldRef: {fieldPath: status.hostIP}}}\n";
    pods.up_detached(yaml, &[]);
    let dapi = pods.status("dapi");
    let env = pods.ok(&["exec", "dapi", "--", "env"]);
    for (var, field) in [("MY_POD_IP", "podIP"), ("MY_HOST_IP", "hostIP")] {
        let want = format!("{var}={}\n", dapi["status"][field].as_str().unwrap());
        assert!(env.contains(&want), "{want:?} not in\n{env}");
    }
    assert!(env.contains("MY_POD_IP=10.77."), "{env}");
    // describe resolves them as kubectl does, with their field.
    let described = pods.ok(&["describe", "dapi"]);
    let pod_ip_line = format!(
        "      MY_POD_IP:   {} (v1:status.podIP)\n",
        dapi["status"]["podIP"].as_str().unwrap()
    );
    assert!(described.contains(&pod_ip_line), "{described}");
    pods.ok(&["down", "dapi", "--grace-period", "0"]);
    let fetch = |url: &str| {
        wait_for(&format!("{url} to answer"), Duration::from_secs(10), || {
            pods.net()
                .sh(&format!("timeout 5 busybox wget -qO- {url} || true"))
                .contains("hello from web")
        })
    };
    // The host, over the pod's IP, over the published port on every address of its
    // own, 127.0.0.1 included.
    fetch(&format!("http://{ip}:8080/"));
    fetch("http://127.0.0.1:9090/");
    let host_ip = pods.status("web")["status"]["hostIP"]
        .as_str()
        .unwrap()
        .to_string();
    fetch(&format!("http://{host_ip}:9090/"));
    // Another pod, over the pod's IP: both are on the same bridge.
    let out = pods.ok(&[
        "exec",
        "client",
        "--",
        "busybox",
        "wget",
        "-qO-",
        &format!("http://{ip}:8080/"),
    ]);
    assert_eq!(out, "hello from web");
    // Every container shares the pod's one interface and address.
    let addrs = pods.ok(&[
        "exec", "client", "--", "ip", "-o", "-4", "addr", "show", "eth0",
    ]);
    assert!(addrs.contains(&format!("inet {other}/16")), "{addrs}");
    // ps -o wide and describe show it.
    let wide = pods.ok(&["ps", "-o", "wide"]);
    assert!(wide.lines().next().unwrap().contains(" IP "), "{wide}");
    assert!(wide.contains(&ip), "{wide}");
    let describe = pods.ok(&["describe", "web"]);
    assert!(
        describe.contains(&format!("IP:               {ip}")),
        "{describe}"
    );
    assert!(
        describe.contains("    Port:           8080/TCP\n    Host Port:      9090/TCP\n"),
        "{describe}"
    );
    let st = pods.status("web");
    assert_eq!(st["status"]["podIPs"][0]["ip"], ip.as_str());
    assert_eq!(st["status"]["hostIPs"][0]["ip"], host_ip.as_str());
    // The default network was written where the user can read and replace it.
    let conf =
        std::fs::read_to_string(pods.net().conf_dir.path().join("90-launcher.conflist")).unwrap();
    let conf: Value = serde_json::from_str(&conf).unwrap();
    assert_eq!(conf["plugins"][0]["bridge"], "launcher0");
    pods.ok(&["down", "web"]);
    pods.ok(&["down", "client"]);
    let (veths, ipam, pins, _) = traces_once(pods.net(), no_pod_traces);
    assert_eq!(
        (veths.as_str(), ipam.as_str(), pins.as_str()),
        ("0", "", "")
    );
}

#[test]
fn none_is_loopback_only_and_host_is_the_hosts_namespace() {
    let pods = Pods::networked("net-modes");
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "lonely",
        "--network",
        "none",
        "-c",
        "a=sleep 600",
    ]);
    let links = pods.ok(&["exec", "lonely", "--", "ip", "-o", "link"]);
    let names: Vec<&str> = links
        .lines()
        .map(|l| l.split(": ").nth(1).unwrap())
        .collect();
    assert_eq!(names, ["lo"], "{links}");
    assert!(pods.status("lonely")["status"].get("podIP").is_none());
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "shared",
        "--network",
        "host",
        "-c",
        "a=sleep 600",
    ]);
    let st = pods.status("shared");
    let pid = container_pid(&st, "a").unwrap();
    assert_eq!(ns_of(pid, "net"), ns_of(pods.net().pid(), "net"));
    // On the host's network the pod's IP is the host's.
    assert_eq!(st["status"]["podIP"], st["status"]["hostIP"]);
    // A manifest says so with hostNetwork, and may share PIDs and IPC too.
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: hosty}\nspec:\n  hostNetwork: true\n  hostPID: true\n  hostIPC: true\n  containers:\n  - {name: a, command: [sleep, '600'], ports: [{containerPort: 8080, hostPort: 8080}]}\n";
    pods.up_detached(yaml, &[]);
    let pid = container_pid(&pods.status("hosty"), "a").unwrap();
    let me = std::process::id() as i32;
    for kind in ["net", "pid", "ipc"] {
        let host = if kind == "net" { pods.net().pid() } else { me };
        assert_eq!(ns_of(pid, kind), ns_of(host, kind), "{kind}");
    }
    assert_ne!(ns_of(pid, "uts"), ns_of(me, "uts"));
    for p in ["lonely", "shared", "hosty"] {
        pods.ok(&["down", p]);
    }
}

/// Seconds a `busybox wget` of `bytes` takes, run by `fetch`.
fn transfer(mut fetch: impl FnMut() -> std::process::Output) -> f64 {
    let t = Instant::now();
    let out = fetch();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed().as_secs_f64()
}

#[test]
fn the_bandwidth_annotations_shape_the_pods_traffic() {
    let pods = Pods::networked("net-bw");
    let www = TempDir::new("net-bw-www");
    // 2.5 MB each way at 8 Mbit/s: 2.5 s, far beyond the 100 ms burst.
    const BYTES: usize = 2_500_000;
    const RATE: f64 = 8_000_000.0;
    std::fs::write(www.path().join("blob"), vec![7u8; BYTES]).unwrap();
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: slow\n  annotations:\n    kubernetes.io/ingress-bandwidth: 8M\n    kubernetes.io/egress-bandwidth: 8M\nspec:\n  volumes: {volumes}\n  containers:\n  - name: web\n    command: [busybox, httpd, -f, -p, '8080', -h, {www}]\n    volumeMounts: {mounts}\n",
        www = www.path().display(),
        volumes = host_dirs(&[www.path()]).0,
        mounts = host_dirs(&[www.path()]).1,
    );
    pods.up_detached(&yaml, &[]);
    let ip = pod_ip(&pods, "slow");
    // The rates are on the pod's host-side veth (ingress) and its ifb (egress).
    let qdiscs = pods.net().sh("tc qdisc show");
    assert_eq!(qdiscs.matches("qdisc tbf").count(), 2, "{qdiscs}");
    // (The VM's tc, copied without its qdisc modules, cannot print their options;
    // the transfers below measure the rate anyway.)
    if qdiscs.contains(" rate ") {
        assert_eq!(qdiscs.matches("rate 8Mbit").count(), 2, "{qdiscs}");
    }
    // Egress: the host downloads from the pod.
    let mut host = std::process::Command::new("busybox");
    host.args([
        "wget",
        "-qO",
        "/dev/null",
        &format!("http://{ip}:8080/blob"),
    ]);
    pods.net().enter(&mut host);
    wait_for("the pod's server", Duration::from_secs(10), || {
        pods.net()
            .sh(&format!(
                "timeout 5 busybox wget -qO /dev/null http://{ip}:8080/ 2>&1 || true"
            ))
            .contains("404")
    });
    let egress = transfer(|| host.stdout(Stdio::null()).output().unwrap());
    // Ingress: the pod downloads from a server on the host.
    let host_ip = pods.status("slow")["status"]["hostIP"]
        .as_str()
        .unwrap()
        .to_string();
    let mut server = std::process::Command::new("busybox");
    server.args([
        "httpd",
        "-f",
        "-p",
        "8181",
        "-h",
        www.path().to_str().unwrap(),
    ]);
    pods.net().enter(&mut server);
    let _server = Proc::spawn(&mut server);
    let url = format!("http://{host_ip}:8181/blob");
    let fetch = || {
        pods.run(&[
            "exec",
            "slow",
            "--",
            "busybox",
            "wget",
            "-qO",
            "/dev/null",
            &url,
        ])
    };
    wait_for("the host's server", Duration::from_secs(10), || {
        fetch().status.success()
    });
    let ingress = transfer(fetch);
    let expected = (BYTES * 8) as f64 / RATE;
    for (way, secs) in [("egress", egress), ("ingress", ingress)] {
        let rate = (BYTES * 8) as f64 / secs;
        assert!(
            (0.75..=1.25).contains(&(rate / RATE)),
            "{way}: {secs:.2}s for {BYTES} bytes is {:.2} Mbit/s, not 8 (expected {expected:.2}s)",
            rate / 1e6
        );
    }
    // busybox httpd, PID 1 of its namespace, has no SIGTERM handler.
    pods.ok(&["down", "slow", "--grace-period", "0"]);
    assert_eq!(
        pods.net().sh("tc qdisc show | grep -c tbf || true").trim(),
        "0"
    );
}

/// The default network runs what a pod needs: bridge alone for a pod that publishes
/// no port and has no bandwidth annotations; masquerading is one rule for the subnet,
/// made once, not a chain per pod.
#[test]
fn a_pod_of_the_default_network_runs_only_the_plugins_it_needs() {
    let pods = Pods::networked("net-lean");
    let plugins = |name: &str| -> Vec<String> {
        let record = std::fs::read_to_string(pods.root.path().join(name).join("pod.json")).unwrap();
        let record: serde_json::Value = serde_json::from_str(&record).unwrap();
        (record["network"]["config"]["plugins"]
            .as_array()
            .unwrap()
            .iter())
        .map(|p| p["type"].as_str().unwrap().to_string())
        .collect()
    };
    pods.ok(&["up", "-d", "--name", "lean", "-c", "a=sleep 600"]);
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "published",
        "-c",
        "a=sleep 600",
        "-p",
        "7300:80",
    ]);
    assert_eq!(plugins("lean"), ["bridge"]);
    assert_eq!(plugins("published"), ["bridge", "portmap"]);
    let rules = traces(pods.net()).3;
    assert_eq!(
        rules
            .matches("launcher: masquerade pod traffic out")
            .count(),
        1,
        "{rules}"
    );
    assert!(
        rules.contains("-A POSTROUTING -s 10.77.0.0/16 ! -d 10.77.0.0/16"),
        "{rules}"
    );
    let uid = |name: &str| {
        pods.status(name)["metadata"]["uid"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        !rules.contains(&uid("lean")),
        "a rule of the pod's own: {rules}"
    );
    pods.ok(&["down", "lean", "published", "--grace-period", "0"]);
    pods.assert_clean();
}

#[test]
fn a_hundred_up_down_cycles_leave_no_veth_address_rule_or_mount() {
    let pods = Pods::networked("net-cycles");
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "first",
        "-c",
        "a=sleep 600",
        "-p",
        "7000:80",
    ]);
    pods.ok(&["down", "first"]);
    // The first pod made what every pod shares (the bridge, the portmap chains).
    let before = traces_once(pods.net(), no_pod_traces);
    assert_eq!(before.0, "0");
    let cycles = if in_vm() { 20 } else { 100 };
    std::thread::scope(|s| {
        for w in 0..4 {
            let pods = &pods;
            s.spawn(move || {
                for i in 0..cycles / 4 {
                    let name = format!("c{w}-{i}");
                    let port = (7100 + w * 100 + i).to_string();
                    pods.ok(&[
                        "up",
                        "-d",
                        "--name",
                        &name,
                        "-c",
                        "a=sleep 600",
                        "-p",
                        &format!("{port}:80"),
                    ]);
                    pods.ok(&["down", &name, "--grace-period", "0"]);
                }
            });
        }
    });
    assert_eq!(traces_once(pods.net(), |t| *t == before), before);
    pods.assert_clean();
}

#[test]
fn pause_dying_ends_the_pod_and_releases_its_address() {
    let pods = Pods::networked("net-pause");
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "p",
        "-c",
        "a=sleep 600",
        "-p",
        "7171:80",
    ]);
    let st = pods.status("p");
    let ip = pod_ip(&pods, "p");
    let pause = as_pid(&st["metadata"]["annotations"]["launcher/pause-pid"]);
    // SAFETY: the pod's pause, started by this test.
    assert_eq!(unsafe { libc::kill(pause, libc::SIGKILL) }, 0);
    // The supervisor takes the pod down by itself, its network included: once it
    // is gone, nothing of the pod's network is left.
    let supervisor = as_pid(&st["metadata"]["annotations"]["launcher/supervisor-pid"]);
    wait_for("the supervisor to end", Duration::from_secs(20), || {
        stat_state(supervisor).is_none_or(|(s, _)| s == 'Z')
    });
    let (veths, ipam, pins, rules) = traces_once(pods.net(), no_pod_traces);
    assert_eq!(
        (veths.as_str(), ipam.as_str(), pins.as_str()),
        ("0", "", "")
    );
    assert!(!rules.contains(&ip), "{rules}");
    pods.ok(&["down", "p"]);
    pods.assert_clean();
}

#[test]
fn down_after_the_supervisor_was_killed_releases_the_address() {
    let pods = Pods::networked("net-kill");
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "k",
        "-c",
        "a=sleep 600",
        "-p",
        "7070:80",
    ]);
    let st = pods.status("k");
    let ip = pod_ip(&pods, "k");
    let supervisor = as_pid(&st["metadata"]["annotations"]["launcher/supervisor-pid"]);
    let reserved = pods.net().sh("ls /var/lib/cni/networks/launcher");
    assert!(reserved.contains(&ip), "{reserved}");
    // SAFETY: the pod's supervisor, started by this test.
    assert_eq!(unsafe { libc::kill(supervisor, libc::SIGKILL) }, 0);
    wait_for("the supervisor to die", Duration::from_secs(5), || {
        stat_state(supervisor).is_none_or(|(s, _)| s == 'Z')
    });
    pods.ok(&["down", "k"]);
    let (veths, ipam, pins, rules) = traces_once(pods.net(), no_pod_traces);
    assert_eq!(
        (veths.as_str(), ipam.as_str(), pins.as_str()),
        ("0", "", "")
    );
    assert!(!rules.contains(&ip), "{rules}");
    pods.assert_clean();
}

/// `launcher up ARGS` fails with one line holding `needle`, exit `code`, and leaves
/// nothing: no state, cgroup, veth, reservation, pin or rule.
fn refused(pods: &Pods, args: &[&str], code: i32, needle: &str) {
    let before = (
        traces(pods.net()),
        pods.leftover_cgroups(),
        pods.leftover_state(),
    );
    let mut full = vec!["up", "-d"];
    full.extend_from_slice(args);
    let out = pods.run(&full);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: not one line: {err}"
    );
    assert!(
        err.contains(needle),
        "{args:?}: {err:?} does not mention {needle:?}"
    );
    let after = (
        traces_once(pods.net(), |t| *t == before.0),
        pods.leftover_cgroups(),
        pods.leftover_state(),
    );
    assert_eq!(after, before, "{args:?} left something");
}

#[test]
fn bad_networks_and_ports_are_refused_and_leave_nothing() {
    let pods = Pods::networked("net-bad");
    let conf = pods.net().conf_dir.path().to_path_buf();
    let pod = ["--name", "p", "-c", "a=sleep 600"];
    let with = |extra: &[&str]| -> Vec<String> {
        pod.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let run = |extra: &[&str], code, needle: &str| {
        let args = with(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&pods, &args, code, needle);
    };
    run(
        &["--network", "nosuch"],
        2,
        &format!("network \"nosuch\" not found in {}", conf.display()),
    );
    run(&["--network", "a/b"], 2, "invalid --network \"a/b\"");
    std::fs::write(conf.join("10-broken.conflist"), "{\"name\": \"broken\",").unwrap();
    run(
        &["--network", "broken"],
        2,
        &format!(
            "invalid network configuration {}",
            conf.join("10-broken.conflist").display()
        ),
    );
    std::fs::remove_file(conf.join("10-broken.conflist")).unwrap();
    std::fs::write(
        conf.join("20-odd.conflist"),
        r#"{"cniVersion": "1.0.0", "name": "odd", "plugins": [{"type": "bridge", "bridge": "odd0", "ipam": {"type": "host-local", "subnet": "10.78.0.0/30"}}, {"type": "nosuch-plugin"}]}"#,
    )
    .unwrap();
    run(
        &["--network", "odd"],
        2,
        "CNI plugin \"nosuch-plugin\" not found in /usr/lib/cni, /opt/cni/bin (install containernetworking-plugins",
    );
    // A plugin that fails: a /30 has one address for pods, and "held" has it.
    std::fs::write(
        conf.join("20-odd.conflist"),
        r#"{"cniVersion": "1.0.0", "name": "odd", "plugins": [{"type": "bridge", "bridge": "odd0", "ipam": {"type": "host-local", "subnet": "10.78.0.0/30"}}]}"#,
    )
    .unwrap();
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "held",
        "--network",
        "odd",
        "-c",
        "a=sleep 600",
    ]);
    // The user's list gave it its address: the one a /30 has after its gateway.
    assert_eq!(pod_ip(&pods, "held"), "10.78.0.2");
    let held = traces(pods.net());
    let out = pods.run(&[
        "up",
        "-d",
        "--name",
        "p",
        "--network",
        "odd",
        "-c",
        "a=sleep 600",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("CNI plugin bridge failed (ADD): "), "{err}");
    assert!(err.contains("no IP addresses available"), "{err}");
    assert_eq!(
        traces_once(pods.net(), |t| *t == held),
        held,
        "the failed pod left something"
    );
    pods.ok(&["down", "held"]);
    // A port another pod publishes; host networking with published ports.
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "pub",
        "-c",
        "a=sleep 600",
        "-p",
        "8088:80",
    ]);
    run(
        &["-p", "8088:81"],
        2,
        "port 8088:81/tcp is already published by pod \"pub\"",
    );
    run(
        &["-p", "127.0.0.1:8088:80"],
        2,
        "already published by pod \"pub\"",
    );
    run(&["-p", "80"], 2, "invalid --publish \"80\"");
    pods.ok(&["down", "pub"]);
    run(
        &["--network", "host", "-p", "8088:80"],
        2,
        "published ports need a network of the pod's own, not --network host",
    );
    run(
        &["--network", "none", "-p", "8088:80"],
        2,
        "not --network none",
    );
    // The annotations are checked, named by their path.
    for (value, why) in [
        ("10", "unreasonably small"),
        ("2P", "unreasonably large"),
        ("fast", "not a quantity"),
    ] {
        let yaml = format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {{kubernetes.io/egress-bandwidth: '{value}'}}\nspec:\n  containers: [{{name: a, command: [sleep, '9']}}]\n");
        let out = pods.up_yaml(&yaml, &["-d"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("metadata.annotations[\"kubernetes.io/egress-bandwidth\"]"),
            "{err}"
        );
        assert!(err.contains(why), "{err}");
    }
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostNetwork: true\n  containers: [{name: a, command: [sleep, '9'], ports: [{containerPort: 80, hostPort: 81}]}]\n";
    let err = String::from_utf8_lossy(&pods.up_yaml(yaml, &["-d"]).stderr).into_owned();
    assert!(err.contains("spec.containers[0].ports[0].hostPort: must match containerPort when hostNetwork is true"), "{err}");
    pods.assert_clean();
}

/// A CNI plugin `hang` in `dir` whose ADD touches `started`, starts a child and never
/// answers; its DEL answers at once (as a plugin must, for what it never made).
fn hang_plugin(dir: &std::path::Path, started: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let plugin = dir.join("hang");
    let script = format!(
        "#!/bin/sh\n[ \"$CNI_COMMAND\" = ADD ] || exit 0\ntouch {}\nsleep 600 &\nwait\n",
        started.display()
    );
    fs::write(&plugin, script).unwrap();
    fs::set_permissions(&plugin, fs::Permissions::from_mode(0o755)).unwrap();
}

/// A CNI plugin that never answers holds `up` only until `--cni-timeout`: it is
/// killed with what it started, the error names the network and the plugin, and
/// nothing of the pod is left (the bridge's ADD before it is DEL'ed).
#[test]
fn a_plugin_that_hangs_is_killed_at_the_cni_timeout() {
    let pods = Pods::networked("net-hang");
    let conf = pods.net().conf_dir.path().to_path_buf();
    let bin = TempDir::new("net-hang-bin");
    hang_plugin(bin.path(), &bin.path().join("started"));
    fs::write(
        conf.join("30-slow.conflist"),
        r#"{"cniVersion": "1.0.0", "name": "slow", "plugins": [{"type": "bridge", "bridge": "slow0", "ipam": {"type": "host-local", "subnet": "10.79.0.0/24"}}, {"type": "hang"}]}"#,
    )
    .unwrap();
    let dirs = format!("{}:/usr/lib/cni", bin.path().display());
    refused(
        &pods,
        &[
            "--name",
            "p",
            "--network",
            "slow",
            "--cni-bin-dir",
            &dirs,
            "--cni-timeout",
            "1s",
            "-c",
            "a=sleep 600",
        ],
        1,
        "network \"slow\": CNI plugin hang failed (ADD): no answer within 1s (--cni-timeout): killed",
    );
    pods.assert_clean();
}

/// `down` of a pod still being made stops its setup at once: the plugin in flight is
/// killed, `up` says why, and nothing of the pod is left.
#[test]
fn down_of_a_pod_in_setup_stops_its_plugins_at_once() {
    let pods = Pods::networked("net-stopsetup");
    let conf = pods.net().conf_dir.path().to_path_buf();
    let bin = TempDir::new("net-stopsetup-bin");
    let started = bin.path().join("started");
    hang_plugin(bin.path(), &started);
    fs::write(
        conf.join("30-slow.conflist"),
        r#"{"cniVersion": "1.0.0", "name": "slow", "plugins": [{"type": "hang"}]}"#,
    )
    .unwrap();
    let dirs = format!("{}:/usr/lib/cni", bin.path().display());
    let mut up = Proc::spawn(
        pods.cmd(&[
            "up",
            "-d",
            "--name",
            "p",
            "--network",
            "slow",
            "--cni-bin-dir",
            &dirs,
            "--cni-timeout",
            "10m",
            "-c",
            "a=sleep 600",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped()),
    );
    wait_for("the plugin to be running", Duration::from_secs(10), || {
        started.exists()
    });
    let asked = Instant::now();
    pods.ok(&["down", "p", "--grace-period", "0"]);
    assert!(
        asked.elapsed() < scaled(Duration::from_secs(10)),
        "down waited {:?} for the setup",
        asked.elapsed()
    );
    assert_eq!(up.wait_timeout(Duration::from_secs(10)).code(), Some(1));
    let err = String::from_utf8_lossy(&up.stderr()).into_owned();
    assert!(
        err.contains("CNI plugin hang failed (ADD): stopped: the pod is being taken down"),
        "{err}"
    );
    pods.assert_clean();
}

/// A record's plugins are run as root only if each is the plugin its type names, in
/// directories only root may change: a record changed to run another program makes
/// `down` refuse, and that program never runs.
#[test]
fn a_record_changed_to_run_another_program_runs_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let pods = Pods::networked("net-evil");
    // A published port: portmap, a program of the list (the default bridge is built
    // in and runs none).
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "p",
        "-c",
        "a=sleep 600",
        "-p",
        "7400:80",
    ]);
    let pod = pods.wait_status("p", "running", Duration::from_secs(10), |p| {
        p["status"]["phase"] == "Running"
    });
    let sup = as_pid(&pod["metadata"]["annotations"]["launcher/supervisor-pid"]);
    signal_pid(sup, libc::SIGKILL);
    wait_for("the supervisor to go", Duration::from_secs(5), || {
        stat_state(sup).is_none_or(|(s, _)| s == 'Z')
    });
    let bin = TempDir::new("net-evil-bin");
    let marker = bin.path().join("ran");
    let evil = bin.path().join("evil");
    fs::write(&evil, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
    fs::set_permissions(&evil, fs::Permissions::from_mode(0o755)).unwrap();
    let record = pods.root.path().join("p/pod.json");
    let mut rec: Value = serde_json::from_str(&fs::read_to_string(&record).unwrap()).unwrap();
    let exes = rec["network"]["executables"].as_array_mut().unwrap();
    assert_eq!(exes.len(), 2, "{rec}");
    exes[1] = evil.display().to_string().into();
    fs::write(&record, serde_json::to_vec(&rec).unwrap()).unwrap();
    let out = pods.run(&["down", "p", "--grace-period", "0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not the plugin \"portmap\""), "{err}");
    assert!(!marker.exists(), "the record's program ran");
    assert!(pods.leftover_state().is_empty() && pods.leftover_cgroups().is_empty());
}

/// The default network's bridge is built in (no plugin runs for it) and keeps the
/// addresses as host-local does: a pod the plugins attached (the list edited, so
/// they run) is released by the built-in, and one the built-in attached by the
/// plugins.
#[test]
fn the_built_in_bridge_and_the_plugins_release_each_others_addresses() {
    let pods = Pods::networked("net-twin");
    let conf = pods.net().conf_dir.path().join("90-launcher.conflist");
    let reserved = |ip: &str| {
        pods.net()
            .sh("ls /var/lib/cni/networks/launcher")
            .lines()
            .any(|l| l == ip)
    };
    // Swaps the record's bridge for the one the plugins run (an `mtu` they read) or
    // back.
    let edit = |pod: &str, plugins: bool| {
        let path = pods.root.path().join(pod).join("pod.json");
        let mut rec: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        let bridge = &mut rec["network"]["config"]["plugins"][0];
        match plugins {
            true => bridge["mtu"] = 1500.into(),
            false => drop(bridge.as_object_mut().unwrap().remove("mtu")),
        }
        fs::write(&path, serde_json::to_vec(&rec).unwrap()).unwrap();
    };
    // The built-in attaches, the plugins release.
    pods.ok(&["up", "-d", "--name", "own", "-c", "a=sleep 600"]);
    let own = pod_ip(&pods, "own");
    assert!(reserved(&own));
    // A list the launcher did not write as it is runs the plugins.
    let mut list: Value = serde_json::from_str(&fs::read_to_string(&conf).unwrap()).unwrap();
    list["plugins"][0]["mtu"] = 1500.into();
    fs::write(&conf, serde_json::to_vec(&list).unwrap()).unwrap();
    pods.ok(&["up", "-d", "--name", "plugins", "-c", "a=sleep 600"]);
    let theirs = pod_ip(&pods, "plugins");
    assert!(reserved(&theirs) && theirs != own, "{theirs} {own}");
    // Pods of both reach each other over the bridge.
    let ping = |from: &str, to: &str| {
        let out = pods.run(&[
            "exec", from, "--", "busybox", "ping", "-c", "1", "-W", "2", to,
        ]);
        assert!(out.status.success(), "{from} -> {to}: {out:?}");
    };
    ping("own", &theirs);
    ping("plugins", &own);
    edit("own", true);
    edit("plugins", false);
    pods.ok(&["down", "own", "--grace-period", "0"]);
    pods.ok(&["down", "plugins", "--grace-period", "0"]);
    let (veths, ipam, pins, _) = traces_once(pods.net(), no_pod_traces);
    assert_eq!(
        (veths.as_str(), ipam.as_str(), pins.as_str()),
        ("0", "", "")
    );
    pods.assert_clean();
}

/// A pod of the default network needs no plugin installed: its bridge is built in.
/// One that publishes a port needs portmap, and says so.
#[test]
fn the_default_network_needs_no_plugin_until_a_port_is_published() {
    let pods = Pods::networked("net-noplugins");
    let none = TempDir::new("net-noplugins-bin");
    let bin = none.path().to_str().unwrap();
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "bare",
        "--cni-bin-dir",
        bin,
        "-c",
        "a=sleep 600",
    ]);
    let ip = pod_ip(&pods, "bare");
    assert!(ip.starts_with("10.77."), "{ip}");
    let ping = pods.net().sh(&format!(
        "busybox ping -c 1 -W 2 {ip} >/dev/null && echo reached"
    ));
    assert_eq!(ping.trim(), "reached");
    refused(
        &pods,
        &[
            "--name",
            "web",
            "--cni-bin-dir",
            bin,
            "-c",
            "a=sleep 600",
            "-p",
            "7500:80",
        ],
        2,
        "CNI plugin \"portmap\" not found",
    );
    pods.ok(&["down", "bare", "--grace-period", "0"]);
    let (veths, ipam, pins, _) = traces_once(pods.net(), no_pod_traces);
    assert_eq!(
        (veths.as_str(), ipam.as_str(), pins.as_str()),
        ("0", "", "")
    );
    pods.assert_clean();
}
