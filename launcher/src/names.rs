//! How a pod's processes find names: its own /etc/hosts, /etc/resolv.conf and
//! /etc/hostname, made as the kubelet and containerd make them, from the pod's
//! addresses, hostname, hostAliases, dnsPolicy and dnsConfig.
//!
//! They are written once, when the sandbox is made, into the pod's state directory,
//! and each container finds a copy in its own writable layer (`layer`): its changes
//! stay its own and go with it, as on a node ("changes are lost when the container
//! exits"), and the host's files are never written. A privileged pod, which keeps the
//! host's file systems, has the pod's files bound over the host's in its own view.
//!
//! There is no cluster DNS on one machine: ClusterFirst falls back to Default, the
//! node's resolv.conf, as the kubelet does when it has no cluster DNS (with its
//! MissingClusterDNS warning event).

use crate::spec::{Dns, DnsPolicy, Facts, Network, PodSpec};
use std::io;
use std::net::IpAddr;
use std::path::Path;

/// The files, by their name under /etc.
pub const FILES: [&str; 3] = ["hosts", "hostname", "resolv.conf"];

/// The cluster domain a pod's FQDN ends with (the kubelet's usual `clusterDomain`).
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// The namespace every pod here is in.
const NAMESPACE: &str = "default";

/// The resolver's limits, as the kubelet applies them (glibc reads three nameservers;
/// 32 search domains of 2048 characters since glibc 2.26).
const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCHES: usize = 32;
const MAX_SEARCH_CHARS: usize = 2048;

/// What the node's resolver configuration is read from: the kubelet's
/// `--resolv-conf`, and systemd-resolved's list of real servers where the first
/// names only its local stub (which a pod's own network cannot reach).
pub const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";
const RESOLVED_UPSTREAM: &str = "/run/systemd/resolve/resolv.conf";

/// The pod's domain (`<subdomain>.default.svc.cluster.local`), if it has a subdomain.
pub fn domain(dns: &Dns) -> Option<String> {
    let sub = dns.subdomain.as_deref()?;
    Some(format!("{sub}.{NAMESPACE}.svc.{CLUSTER_DOMAIN}"))
}

/// The pod's fully qualified name: its hostname, in its domain if it has one.
pub fn fqdn(spec: &PodSpec) -> String {
    match domain(&spec.dns) {
        Some(d) => format!("{}.{d}", spec.hostname),
        None => spec.hostname.clone(),
    }
}

/// The kernel hostname of the pod's UTS namespace.
pub fn uts_hostname(spec: &PodSpec) -> String {
    match spec.dns.hostname_as_fqdn {
        true => fqdn(spec),
        false => spec.hostname.clone(),
    }
}

/// The pod's /etc/hosts. On its own network: the kubelet's managed file (localhost,
/// the pod's addresses with its names, then the host aliases); on the host's, the
/// node's file and the aliases.
pub fn hosts(spec: &PodSpec, pod_ips: &[String], node_hosts: &str) -> String {
    let mut out = String::new();
    if spec.network == Network::Host {
        out.push_str("# Kubernetes-managed hosts file (host network).\n");
        out.push_str(node_hosts);
        if !node_hosts.is_empty() && !node_hosts.ends_with('\n') {
            out.push('\n');
        }
    } else {
        out.push_str(
            "# Kubernetes-managed hosts file.\n\
             127.0.0.1\tlocalhost\n\
             ::1\tlocalhost ip6-localhost ip6-loopback\n\
             fe00::0\tip6-localnet\n\
             fe00::0\tip6-mcastprefix\n\
             fe00::1\tip6-allnodes\n\
             fe00::2\tip6-allrouters\n",
        );
        let names = match domain(&spec.dns) {
            Some(d) => format!("{}.{d}\t{}", spec.hostname, spec.hostname),
            None => spec.hostname.clone(),
        };
        for ip in pod_ips {
            out.push_str(&format!("{ip}\t{names}\n"));
        }
    }
    if !spec.dns.host_aliases.is_empty() {
        out.push_str("\n# Entries added by HostAliases.\n");
        for (ip, names) in &spec.dns.host_aliases {
            out.push_str(&format!("{ip}\t{}\n", names.join("\t")));
        }
    }
    out
}

/// A resolver configuration: what resolv.conf says.
#[derive(Debug, Default, PartialEq)]
pub struct Resolver {
    pub nameservers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<(String, Option<String>)>,
}

impl Resolver {
    /// resolv.conf's lines as the resolver reads them: every nameserver, the last
    /// search line, every option (a later one of a name replacing the earlier).
    pub fn parse(text: &str) -> Resolver {
        let mut r = Resolver::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut fields = line.split_whitespace();
            match fields.next() {
                Some("nameserver") => r.nameservers.extend(fields.next().map(String::from)),
                Some("search") => r.searches = fields.map(String::from).collect(),
                Some("options") => {
                    for o in fields {
                        let (name, value) = match o.split_once(':') {
                            Some((n, v)) => (n, Some(v.to_string())),
                            None => (o, None),
                        };
                        set_option(&mut r.options, name, value);
                    }
                }
                _ => {}
            }
        }
        r
    }

    /// As the documentation's pages show a pod's resolv.conf.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for ns in &self.nameservers {
            out.push_str(&format!("nameserver {ns}\n"));
        }
        if !self.searches.is_empty() {
            out.push_str(&format!("search {}\n", self.searches.join(" ")));
        }
        if !self.options.is_empty() {
            let options: Vec<String> = (self.options.iter())
                .map(|(n, v)| match v {
                    Some(v) => format!("{n}:{v}"),
                    None => n.clone(),
                })
                .collect();
            out.push_str(&format!("options {}\n", options.join(" ")));
        }
        out
    }
}

fn set_option(options: &mut Vec<(String, Option<String>)>, name: &str, value: Option<String>) {
    match options.iter_mut().find(|(n, _)| n == name) {
        Some(o) => o.1 = value,
        None => options.push((name.to_string(), value)),
    }
}

/// The node's resolver, as a pod with the Default policy gets it: `/etc/resolv.conf`,
/// or systemd-resolved's upstream list where that names only loopback servers and the
/// pod has a network of its own (loopback there is the pod's own).
pub fn node_resolver(network: &Network) -> Resolver {
    let read = |path| std::fs::read_to_string(path).map(|t| Resolver::parse(&t));
    let node = read(HOST_RESOLV_CONF).unwrap_or_default();
    let loopback_only = !node.nameservers.is_empty()
        && (node.nameservers.iter())
            .all(|ns| ns.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()));
    match (
        loopback_only && *network != Network::Host,
        read(RESOLVED_UPSTREAM),
    ) {
        (true, Ok(upstream)) if !upstream.nameservers.is_empty() => upstream,
        _ => node,
    }
}

/// The pod's resolv.conf from its policy, the node's resolver and its dnsConfig, as
/// the kubelet forms it; and warnings for what the resolver's limits cut.
pub fn resolv_conf(spec: &PodSpec, node: Resolver) -> (String, Vec<String>) {
    let dns = &spec.dns;
    let mut r = match dns.policy {
        DnsPolicy::None => Resolver::default(),
        _ => node,
    };
    for ns in &dns.nameservers {
        if !r.nameservers.contains(ns) {
            r.nameservers.push(ns.clone());
        }
    }
    for s in &dns.searches {
        if !r.searches.contains(s) {
            r.searches.push(s.clone());
        }
    }
    for (name, value) in &dns.options {
        set_option(&mut r.options, name, value.clone());
    }
    let mut warnings = Vec::new();
    if r.nameservers.len() > MAX_NAMESERVERS {
        r.nameservers.truncate(MAX_NAMESERVERS);
        warnings.push(format!(
            "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: {}",
            r.nameservers.join(" ")
        ));
    }
    let chars = |s: &[String]| s.iter().map(String::len).sum::<usize>() + s.len().saturating_sub(1);
    if r.searches.len() > MAX_SEARCHES || chars(&r.searches) > MAX_SEARCH_CHARS {
        r.searches.truncate(MAX_SEARCHES);
        while chars(&r.searches) > MAX_SEARCH_CHARS {
            r.searches.pop();
        }
        warnings.push(format!(
            "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: {}",
            r.searches.join(" ")
        ));
    }
    (r.render(), warnings)
}

/// The warning event of a pod whose policy asks for the cluster's DNS, which there is
/// not: its message, as the kubelet words it.
pub fn missing_cluster_dns(spec: &PodSpec, uid: &str) -> Option<String> {
    let cluster = match spec.dns.policy {
        DnsPolicy::ClusterFirstWithHostNet => true,
        DnsPolicy::ClusterFirst => spec.network != Network::Host,
        DnsPolicy::Default | DnsPolicy::None => false,
    };
    cluster.then(|| {
        format!(
            "pod: \"{}_{NAMESPACE}({uid})\". kubelet does not have ClusterDNS IP configured and cannot create Pod using \"{}\" policy. Falling back to \"Default\" policy.",
            spec.name,
            spec.dns.policy.name()
        )
    })
}

/// Writes the pod's files into `dir` (its state directory); returns the warning
/// events (reason, message) of what could not be had as asked.
pub fn write(spec: &PodSpec, facts: &Facts, dir: &Path) -> io::Result<Vec<(&'static str, String)>> {
    let node_hosts = match spec.network {
        Network::Host => std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
        _ => String::new(),
    };
    let (resolv, cut) = resolv_conf(spec, node_resolver(&spec.network));
    let texts = [
        hosts(spec, &facts.pod_ips, &node_hosts),
        format!("{}\n", uts_hostname(spec)),
        resolv,
    ];
    for (name, text) in FILES.iter().zip(texts) {
        std::fs::write(dir.join(name), text)?;
    }
    let mut warnings: Vec<_> = cut.into_iter().map(|m| ("DNSConfigForming", m)).collect();
    warnings.extend(missing_cluster_dns(spec, &facts.uid).map(|m| ("MissingClusterDNS", m)));
    Ok(warnings)
}

/// The pod's files from `dir`, for the containers' layers.
pub fn read(dir: &Path) -> io::Result<Vec<crate::layer::EtcFile>> {
    FILES
        .iter()
        .map(|name| {
            Ok(crate::layer::EtcFile {
                name: std::ffi::CString::new(*name).unwrap_or_default(),
                bytes: std::fs::read(dir.join(name))?,
            })
        })
        .collect()
}

/// The pod's files bound over the host's in a privileged container's view (which has
/// no layer), where the host has them: nothing is made on the host.
pub fn privileged_mounts(dir: &Path) -> io::Result<Vec<crate::volumes::Prepared>> {
    let mut out = Vec::new();
    for name in FILES {
        let target = Path::new("/etc").join(name);
        if !target.is_file() {
            continue;
        }
        let source = crate::sys::open_path(&dir.join(name))?;
        out.push(crate::volumes::Prepared {
            tree: crate::sys::clone_tree(&source)?,
            target: std::ffi::CString::new(target.as_os_str().as_encoded_bytes())
                .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?,
            file: true,
            volume: name.to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> PodSpec {
        let mut spec = crate::spec::tests::pod();
        spec.name = "hostaliases-pod".into();
        spec.hostname = "hostaliases-pod".into();
        spec.network = Network::Cni("default".into());
        spec
    }

    #[test]
    fn hosts_is_the_kubelets_managed_file() {
        let mut spec = pod();
        spec.dns.host_aliases = vec![
            (
                "127.0.0.1".into(),
                vec!["foo.local".into(), "bar.local".into()],
            ),
            (
                "10.1.2.3".into(),
                vec!["foo.remote".into(), "bar.remote".into()],
            ),
        ];
        // The documentation's output for its hostaliases-pod example.
        assert_eq!(
            hosts(&spec, &["10.200.0.5".into()], ""),
            "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n10.200.0.5\thostaliases-pod\n\n# Entries added by HostAliases.\n127.0.0.1\tfoo.local\tbar.local\n10.1.2.3\tfoo.remote\tbar.remote\n"
        );
        spec.dns.host_aliases.clear();
        spec.hostname = "busybox-1".into();
        spec.dns.subdomain = Some("busybox-subdomain".into());
        assert!(hosts(&spec, &["10.1.0.7".into()], "").ends_with(
            "10.1.0.7\tbusybox-1.busybox-subdomain.default.svc.cluster.local\tbusybox-1\n"
        ));
        spec.network = Network::Host;
        assert_eq!(
            hosts(
                &spec,
                &["192.0.2.2".into()],
                "127.0.0.1 localhost\n10.0.0.1 node"
            ),
            "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n10.0.0.1 node\n"
        );
    }

    #[test]
    fn resolv_conf_follows_the_policy_and_dns_config() {
        let node = || {
            Resolver::parse(
                "# written by hand\nnameserver 192.0.2.53\nsearch old.example\nsearch corp.example\noptions ndots:1 rotate\nnameserver 192.0.2.54 ; second\n",
            )
        };
        let mut spec = pod();
        assert_eq!(
            resolv_conf(&spec, node()).0,
            "nameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch corp.example\noptions ndots:1 rotate\n"
        );
        // The documentation's dns-example: None with its own dnsConfig.
        spec.dns.policy = DnsPolicy::None;
        spec.dns.nameservers = vec!["192.0.2.1".into()];
        spec.dns.searches = vec![
            "ns1.svc.cluster-domain.example".into(),
            "my.dns.search.suffix".into(),
        ];
        spec.dns.options = vec![("ndots".into(), Some("2".into())), ("edns0".into(), None)];
        assert_eq!(
            resolv_conf(&spec, node()),
            ("nameserver 192.0.2.1\nsearch ns1.svc.cluster-domain.example my.dns.search.suffix\noptions ndots:2 edns0\n".into(), vec![])
        );
        // Added to Default's, deduplicated, an option of the same name replaced.
        spec.dns.policy = DnsPolicy::Default;
        spec.dns.nameservers = vec!["192.0.2.53".into(), "192.0.2.9".into(), "192.0.2.10".into()];
        spec.dns.searches = vec!["corp.example".into()];
        let (text, warnings) = resolv_conf(&spec, node());
        assert_eq!(
            text,
            "nameserver 192.0.2.53\nnameserver 192.0.2.54\nnameserver 192.0.2.9\nsearch corp.example\noptions ndots:2 rotate edns0\n"
        );
        assert_eq!(warnings, ["Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: 192.0.2.53 192.0.2.54 192.0.2.9"]);
    }

    #[test]
    fn cluster_first_falls_back_to_default_with_the_kubelets_warning() {
        let mut spec = pod();
        assert_eq!(missing_cluster_dns(&spec, "u"), None);
        spec.dns.policy = DnsPolicy::ClusterFirst;
        assert_eq!(
            missing_cluster_dns(&spec, "u").unwrap(),
            "pod: \"hostaliases-pod_default(u)\". kubelet does not have ClusterDNS IP configured and cannot create Pod using \"ClusterFirst\" policy. Falling back to \"Default\" policy."
        );
        // On the host's network ClusterFirst means Default.
        spec.network = Network::Host;
        assert_eq!(missing_cluster_dns(&spec, "u"), None);
    }

    #[test]
    fn the_fqdn_is_the_hostname_in_the_pods_domain() {
        let mut spec = pod();
        assert_eq!(uts_hostname(&spec), "hostaliases-pod");
        spec.dns.subdomain = Some("sub".into());
        spec.dns.hostname_as_fqdn = true;
        assert_eq!(
            uts_hostname(&spec),
            "hostaliases-pod.sub.default.svc.cluster.local"
        );
    }
}
