//! A pod's sysctls (securityContext.sysctls), as the kubelet admits them: the
//! namespaced ones only (the pod's network and IPC namespaces hold their own copy),
//! the safe set always, any other only if `--allowed-unsafe-sysctls` names it. They
//! are written by pause's child into the pod's new namespaces, before /proc/sys is
//! made read-only.

/// The kubelet's safe set (Kubernetes 1.32): namespaced, and unable to harm the node
/// or other pods.
pub const SAFE: [&str; 12] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

/// Which of the pod's namespaces holds a sysctl, if one does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    Ipc,
    Net,
}

/// `name` with dots (`net/ipv4/tcp_syncookies` is `net.ipv4.tcp_syncookies`; a dot in
/// a slash-separated name is part of the component, and becomes a slash).
pub fn dotted(name: &str) -> String {
    match name.contains('/') {
        true => name
            .chars()
            .map(|c| match c {
                '/' => '.',
                '.' => '/',
                c => c,
            })
            .collect(),
        false => name.to_string(),
    }
}

/// The namespace that holds sysctl `name` (dotted), as the kubelet's list has them.
pub fn namespace_of(name: &str) -> Option<Namespace> {
    let ipc = ["kernel.shm", "kernel.msg", "fs.mqueue."];
    if name == "kernel.sem" || ipc.iter().any(|p| name.starts_with(p)) {
        return Some(Namespace::Ipc);
    }
    name.starts_with("net.").then_some(Namespace::Net)
}

/// Does one of the `allowed` patterns (`kernel.msg*`, `net.core.somaxconn`) name it?
pub fn allowed(name: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => p == name,
    })
}

/// Why the kubelet would refuse sysctl `name` (dotted) for a pod on the host's network
/// or IPC namespace, with `allowed` unsafe patterns; None if it admits it.
pub fn refusal(
    name: &str,
    host_network: bool,
    host_ipc: bool,
    unsafe_ok: &[String],
) -> Option<String> {
    let ns = match namespace_of(name) {
        Some(ns) => ns,
        None => {
            return Some(format!(
                "{name:?} is not a namespaced sysctl: it would change the whole machine"
            ))
        }
    };
    if ns == Namespace::Net && host_network {
        return Some(format!("{name:?} not allowed with host net enabled"));
    }
    if ns == Namespace::Ipc && host_ipc {
        return Some(format!("{name:?} not allowed with host ipc enabled"));
    }
    if SAFE.contains(&name) || allowed(name, unsafe_ok) {
        return None;
    }
    Some(format!(
        "forbidden sysctl: {name:?} not allowlisted (allow it with --allowed-unsafe-sysctls {name:?})"
    ))
}

/// Where the pod's child writes sysctl `name` (dotted).
pub fn proc_path(name: &str) -> String {
    let mut path = String::from("/proc/sys/");
    path.extend(name.chars().map(|c| match c {
        '.' => '/',
        '/' => '.',
        c => c,
    }));
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubelets_rules() {
        assert_eq!(refusal("kernel.shm_rmid_forced", false, false, &[]), None);
        assert_eq!(
            refusal("net.ipv4.ip_local_port_range", false, false, &[]),
            None
        );
        assert!(refusal("net.core.somaxconn", false, false, &[])
            .unwrap()
            .starts_with("forbidden sysctl: \"net.core.somaxconn\" not allowlisted"));
        let allow = vec!["kernel.msg*".to_string(), "net.core.somaxconn".to_string()];
        assert_eq!(refusal("kernel.msgmax", false, false, &allow), None);
        assert_eq!(refusal("net.core.somaxconn", false, false, &allow), None);
        assert!(refusal("vm.swappiness", false, false, &["vm.*".into()])
            .unwrap()
            .contains("not a namespaced sysctl"));
        assert_eq!(
            refusal("net.ipv4.tcp_syncookies", true, false, &[]).unwrap(),
            "\"net.ipv4.tcp_syncookies\" not allowed with host net enabled"
        );
        assert!(refusal("kernel.shm_rmid_forced", false, true, &[]).is_some());
    }

    #[test]
    fn names_with_slashes_read_as_dots() {
        assert_eq!(dotted("net/ipv4/tcp_syncookies"), "net.ipv4.tcp_syncookies");
        assert_eq!(
            dotted("net/ipv4/conf/eth0.100/forwarding"),
            "net.ipv4.conf.eth0/100.forwarding"
        );
        assert_eq!(
            proc_path("net.ipv4.conf.eth0/100.forwarding"),
            "/proc/sys/net/ipv4/conf/eth0.100/forwarding"
        );
        assert_eq!(
            proc_path("kernel.shm_rmid_forced"),
            "/proc/sys/kernel/shm_rmid_forced"
        );
    }
}
