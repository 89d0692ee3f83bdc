//! Name resolution as a pod has it: the kubelet's /etc/hosts, resolv.conf by
//! dnsPolicy and dnsConfig, the hostname in the pod's domain; each checked against
//! what the Kubernetes documentation's page shows for its example, and the host's
//! own files never touched.
#![allow(clippy::unwrap_used)]

use pod_tests::*;
use std::time::Duration;

/// The documentation's hostaliases-pod (concepts: "Adding entries to Pod /etc/hosts
/// with HostAliases").
const HOST_ALIASES: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: hostaliases-pod
spec:
  restartPolicy: Never
  hostAliases:
  - ip: "127.0.0.1"
    hostnames:
    - "foo.local"
    - "bar.local"
  - ip: "10.1.2.3"
    hostnames:
    - "foo.remote"
    - "bar.remote"
  containers:
  - name: cat-hosts
    image: busybox:1.28
    command:
    - cat
    args:
    - "/etc/hosts"
"#;

/// The documentation's dns-example (concepts: "DNS for Services and Pods", Pod's DNS
/// Config), with a second container for the hostname of a pod in a subdomain.
const DNS_EXAMPLE: &str = r#"apiVersion: v1
kind: Pod
metadata:
  namespace: default
  name: dns-example
spec:
  restartPolicy: Never
  hostname: busybox-1
  subdomain: busybox-subdomain
  setHostnameAsFQDN: true
  containers:
    - name: test
      image: nginx
      command: [cat, /etc/resolv.conf]
    - name: names
      command: [sh, -c, 'hostname; cat /etc/hostname']
  dnsPolicy: "None"
  dnsConfig:
    nameservers:
      - 192.0.2.1 # this is an example
    searches:
      - ns1.svc.cluster-domain.example
      - my.dns.search.suffix
    options:
      - name: ndots
        value: "2"
      - name: edns0
"#;

fn finished(pods: &Pods, name: &str) -> serde_json::Value {
    pods.wait_status(name, "the pod to finish", Duration::from_secs(20), |p| {
        p["status"]["phase"] == "Succeeded" || p["status"]["phase"] == "Failed"
    })
}

fn log(pods: &Pods, pod: &str, container: &str) -> String {
    pods.ok(&["logs", pod, "-c", container])
}

#[test]
fn the_host_aliases_example_prints_the_kubelets_hosts_file() {
    let pods = Pods::networked("names-aliases");
    pods.up_detached(HOST_ALIASES, &[]);
    let st = finished(&pods, "hostaliases-pod");
    let ip = st["status"]["podIP"].as_str().unwrap();
    assert_eq!(
        log(&pods, "hostaliases-pod", "cat-hosts"),
        format!(
            "# Kubernetes-managed hosts file.\n\
             127.0.0.1\tlocalhost\n\
             ::1\tlocalhost ip6-localhost ip6-loopback\n\
             fe00::0\tip6-localnet\n\
             fe00::0\tip6-mcastprefix\n\
             fe00::1\tip6-allnodes\n\
             fe00::2\tip6-allrouters\n\
             {ip}\thostaliases-pod\n\
             \n\
             # Entries added by HostAliases.\n\
             127.0.0.1\tfoo.local\tbar.local\n\
             10.1.2.3\tfoo.remote\tbar.remote\n"
        )
    );
    // No cluster DNS: ClusterFirst (the default policy) falls back, with the kubelet's warning.
    let events = pods.ok(&["events", "hostaliases-pod"]);
    assert!(
        events.contains("MissingClusterDNS")
            && events.contains("Falling back to \"Default\" policy."),
        "{events}"
    );
    pods.ok(&["down", "hostaliases-pod"]);
    pods.assert_clean();
}

#[test]
fn the_dns_config_example_gets_the_documentations_resolv_conf_and_its_fqdn() {
    let pods = Pods::new("names-dns");
    pods.up_detached(DNS_EXAMPLE, &[]);
    let st = finished(&pods, "dns-example");
    assert_eq!(st["status"]["phase"], "Succeeded", "{st:#}");
    assert_eq!(
        log(&pods, "dns-example", "test"),
        "nameserver 192.0.2.1\n\
         search ns1.svc.cluster-domain.example my.dns.search.suffix\n\
         options ndots:2 edns0\n"
    );
    let fqdn = "busybox-1.busybox-subdomain.default.svc.cluster.local";
    assert_eq!(
        log(&pods, "dns-example", "names"),
        format!("{fqdn}\n{fqdn}\n")
    );
    let events = pods.ok(&["events", "dns-example"]);
    assert!(!events.contains("MissingClusterDNS"), "{events}");
    // What the pod was given is what status prints, and it starts again as it is.
    let yaml = pods.ok(&["status", "dns-example", "-o", "yaml"]);
    for line in [
        "dnsPolicy: None",
        "- 192.0.2.1",
        "subdomain: busybox-subdomain",
        "setHostnameAsFQDN: true",
        "value: '2'",
    ] {
        assert!(yaml.contains(line), "{line}\n{yaml}");
    }
    pods.ok(&["down", "dns-example"]);
    pods.assert_clean();
}

/// The nameservers a resolv.conf names.
fn nameservers(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("nameserver"))
        .map(|ns| ns.split_whitespace().next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn a_pods_files_are_its_own_and_the_hosts_are_never_written() {
    let pods = Pods::new("names-own");
    let host_files: Vec<Vec<u8>> = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"]
        .iter()
        .map(|f| std::fs::read(f).unwrap_or_default())
        .collect();
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "own",
        "--hostname",
        "box",
        "--add-host",
        "db.example:192.0.2.7",
        "-c",
        "a=sleep 600",
        "-c",
        "b=sleep 600",
    ]);
    let exec = |c: &str, script: &str| pods.ok(&["exec", "own", "-c", c, "--", "sh", "-c", script]);
    // Flags ask for no cluster: Default, the node's resolver.
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let own_resolv = exec("a", "cat /etc/resolv.conf");
    let host_ns = nameservers(&host_resolv);
    let loopback_only = !host_ns.is_empty()
        && host_ns
            .iter()
            .all(|ns| ns.starts_with("127.") || ns == "::1");
    if loopback_only {
        // A local stub is not reachable from a pod's network: never handed to one.
        assert!(
            !nameservers(&own_resolv)
                .iter()
                .any(|ns| ns.starts_with("127.")),
            "{own_resolv}"
        );
    } else {
        assert_eq!(nameservers(&own_resolv), host_ns, "{own_resolv}");
    }
    let hosts = exec("a", "cat /etc/hosts");
    assert!(
        hosts.starts_with("# Kubernetes-managed hosts file.\n"),
        "{hosts}"
    );
    assert!(
        hosts.ends_with("\n# Entries added by HostAliases.\n192.0.2.7\tdb.example\n"),
        "{hosts}"
    );
    assert_eq!(
        exec("a", "getent hosts db.example")
            .split_whitespace()
            .next(),
        Some("192.0.2.7")
    );
    assert_eq!(exec("a", "hostname; cat /etc/hostname"), "box\nbox\n");
    // A container's changes are its own: not the host's, not its sibling's.
    exec(
        "a",
        "echo '192.0.2.99 changed' >> /etc/hosts && echo nameserver 192.0.2.98 > /etc/resolv.conf",
    );
    assert!(exec("a", "cat /etc/hosts").contains("changed"));
    assert!(!exec("b", "cat /etc/hosts").contains("changed"));
    assert_eq!(
        nameservers(&exec("b", "cat /etc/resolv.conf")),
        nameservers(&own_resolv)
    );
    pods.ok(&["down", "own", "--grace-period", "0"]);
    // A privileged pod keeps the host's file systems but has the pod's files.
    pods.ok(&[
        "up",
        "-d",
        "--name",
        "priv",
        "--privileged",
        "--add-host",
        "db.example:192.0.2.8",
        "-c",
        "a=sleep 600",
    ]);
    let hosts = pods.ok(&[
        "exec",
        "priv",
        "--",
        "sh",
        "-c",
        "cat /etc/hosts; echo '192.0.2.97 mine' >> /etc/hosts",
    ]);
    assert!(hosts.contains("192.0.2.8\tdb.example"), "{hosts}");
    pods.ok(&["down", "priv", "--grace-period", "0"]);
    let after: Vec<Vec<u8>> = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"]
        .iter()
        .map(|f| std::fs::read(f).unwrap_or_default())
        .collect();
    assert!(
        after == host_files,
        "the host's /etc/hosts, hostname or resolv.conf changed"
    );
    pods.assert_clean();
}

#[test]
fn bad_name_fields_are_refused_with_their_path() {
    let pods = Pods::new("names-bad");
    let base = "apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec:\n  containers: [{name: a, command: [sleep, '1']}]\n";
    for (extra, want) in [
        ("  dnsPolicy: None\n", "spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"),
        ("  dnsPolicy: Cluster\n", "spec.dnsPolicy: Unsupported value: \"Cluster\""),
        ("  hostAliases: [{ip: 10.0.0.300, hostnames: [x]}]\n", "spec.hostAliases[0].ip: Invalid value: \"10.0.0.300\": must be a valid IP address"),
        ("  dnsConfig: {nameservers: [1.1.1.1, 1.0.0.1, 8.8.8.8, 8.8.4.4]}\n", "spec.dnsConfig.nameservers: Invalid value"),
        ("  hostname: a\n  subdomain: s\n  setHostnameAsFQDN: true\n  hostAliases: [{ip: 10.0.0.1, hostnames: [Bad_Name]}]\n", "spec.hostAliases[0].hostnames[0]: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"),
    ] {
        let out = pods.up_yaml(&format!("{base}{extra}"), &["-d"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra}: {err}");
        assert!(err.contains(want), "{extra}\n got {err}\nwant {want}");
    }
    let out = pods.run(&[
        "up",
        "-d",
        "--name",
        "x",
        "--add-host",
        "db",
        "-c",
        "a=sleep 1",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "launcher: invalid --add-host \"db\": expected NAME:IP"
    );
    pods.assert_clean();
}
