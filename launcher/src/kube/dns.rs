//! Name resolution fields of a Pod: dnsPolicy, dnsConfig, hostAliases, subdomain and
//! setHostnameAsFQDN, validated as the API server validates them.

use super::{field, ManifestError};
use crate::spec::{Dns, DnsPolicy};
use k8s_openapi::api::core::v1::{HostAlias, PodDNSConfig, PodDNSConfigOption, PodSpec};

/// What the resolver reads of them (the API server's limits).
const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCHES: usize = 32;
const MAX_SEARCH_CHARS: usize = 2048;

pub fn decode(ps: &PodSpec, hostname: &str) -> Result<Dns, ManifestError> {
    let policy = match ps.dns_policy.as_deref() {
        None => DnsPolicy::ClusterFirst,
        Some(p) => DnsPolicy::ALL
            .iter()
            .find(|(name, _)| *name == p)
            .map(|(_, policy)| *policy)
            .ok_or_else(|| {
                field(
                    "spec.dnsPolicy",
                    format!("Unsupported value: {p:?}: supported values: \"ClusterFirst\", \"ClusterFirstWithHostNet\", \"Default\", \"None\""),
                )
            })?,
    };
    let mut dns = Dns {
        policy,
        ..Dns::default()
    };
    match &ps.dns_config {
        Some(config) => config_of(config, &mut dns)?,
        None if policy == DnsPolicy::None => {
            return Err(field(
                "spec.dnsConfig",
                "Required value: must provide `dnsConfig` when `dnsPolicy` is None",
            ))
        }
        None => {}
    }
    if policy == DnsPolicy::None && dns.nameservers.is_empty() {
        return Err(field(
            "spec.dnsConfig.nameservers",
            "Required value: must provide at least one DNS nameserver when `dnsPolicy` is None",
        ));
    }
    for (i, alias) in ps.host_aliases.iter().flatten().enumerate() {
        let at = format!("spec.hostAliases[{i}]");
        let ip = ip(&alias.ip, &format!("{at}.ip"))?;
        let names = alias.hostnames.clone().unwrap_or_default();
        for (j, name) in names.iter().enumerate() {
            subdomain(name, &format!("{at}.hostnames[{j}]"))?;
        }
        dns.host_aliases.push((ip, names));
    }
    if let Some(sub) = ps.subdomain.as_deref().filter(|s| !s.is_empty()) {
        crate::spec::validate_name("subdomain", sub)
            .map_err(|e| field("spec.subdomain", e.to_string()))?;
        dns.subdomain = Some(sub.to_string());
    }
    dns.hostname_as_fqdn = ps.set_hostname_as_fqdn.unwrap_or(false);
    if dns.hostname_as_fqdn {
        // The kernel's limit (HOST_NAME_MAX), as the kubelet checks it.
        let fqdn = match crate::names::domain(&dns) {
            Some(d) => format!("{hostname}.{d}"),
            None => hostname.to_string(),
        };
        if fqdn.len() > 64 {
            return Err(field(
                "spec.setHostnameAsFQDN",
                format!(
                    "FQDN {fqdn} is too long (64 characters is the max, {} characters requested)",
                    fqdn.len()
                ),
            ));
        }
    }
    Ok(dns)
}

fn config_of(config: &PodDNSConfig, dns: &mut Dns) -> Result<(), ManifestError> {
    let nameservers = config.nameservers.as_deref().unwrap_or_default();
    if nameservers.len() > MAX_NAMESERVERS {
        return Err(field(
            "spec.dnsConfig.nameservers",
            format!("Invalid value: {nameservers:?}: must not have more than {MAX_NAMESERVERS} nameservers"),
        ));
    }
    for (i, ns) in nameservers.iter().enumerate() {
        dns.nameservers
            .push(ip(ns, &format!("spec.dnsConfig.nameservers[{i}]"))?);
    }
    let searches = config.searches.as_deref().unwrap_or_default();
    if searches.len() > MAX_SEARCHES {
        return Err(field(
            "spec.dnsConfig.searches",
            format!("must not have more than {MAX_SEARCHES} search paths"),
        ));
    }
    let chars = searches.iter().map(String::len).sum::<usize>() + searches.len().saturating_sub(1);
    if chars > MAX_SEARCH_CHARS {
        return Err(field(
            "spec.dnsConfig.searches",
            format!("must not have more than {MAX_SEARCH_CHARS} characters (including spaces) in the search list"),
        ));
    }
    for (i, s) in searches.iter().enumerate() {
        // A trailing dot is allowed: an absolute domain.
        subdomain(
            s.strip_suffix('.').unwrap_or(s),
            &format!("spec.dnsConfig.searches[{i}]"),
        )?;
        dns.searches.push(s.clone());
    }
    for (i, o) in config.options.iter().flatten().enumerate() {
        let name = o.name.clone().unwrap_or_default();
        if name.is_empty() {
            return Err(field(
                format!("spec.dnsConfig.options[{i}].name"),
                "Required value: Option.Name must not be empty",
            ));
        }
        dns.options.push((name, o.value.clone()));
    }
    Ok(())
}

fn ip(s: &str, path: &str) -> Result<String, ManifestError> {
    s.parse::<std::net::IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| {
            field(
                path,
                format!("Invalid value: {s:?}: must be a valid IP address"),
            )
        })
}

/// A lowercase RFC 1123 subdomain, as the API server words its rule.
fn subdomain(s: &str, path: &str) -> Result<(), ManifestError> {
    let label = |l: &str| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if s.len() <= 253 && s.split('.').all(label) {
        return Ok(());
    }
    Err(field(
        path,
        format!("Invalid value: {s:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"),
    ))
}

/// The fields back into a Pod's spec.
pub fn encode(dns: &Dns, ps: &mut PodSpec) {
    ps.dns_policy = Some(dns.policy.name().into());
    let config = PodDNSConfig {
        nameservers: (!dns.nameservers.is_empty()).then(|| dns.nameservers.clone()),
        searches: (!dns.searches.is_empty()).then(|| dns.searches.clone()),
        options: (!dns.options.is_empty()).then(|| {
            (dns.options.iter())
                .map(|(name, value)| PodDNSConfigOption {
                    name: Some(name.clone()),
                    value: value.clone(),
                })
                .collect()
        }),
    };
    ps.dns_config = (config != PodDNSConfig::default()).then_some(config);
    ps.host_aliases = (!dns.host_aliases.is_empty()).then(|| {
        (dns.host_aliases.iter())
            .map(|(ip, names)| HostAlias {
                ip: ip.clone(),
                hostnames: Some(names.clone()),
            })
            .collect()
    });
    ps.subdomain = dns.subdomain.clone();
    ps.set_hostname_as_fqdn = dns.hostname_as_fqdn.then_some(true);
}
