//! The Pod Security Standards, checked as the API server's PodSecurity admission
//! checks a Pod: `baseline` refuses the known privilege escalations, `restricted`
//! adds the hardening best practices. Each check reports in the admission's words:
//! `violates PodSecurity "baseline:latest": hostPath volumes (volume "proc")`.

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, SecurityContext};

/// A level of the standards (`--pod-security`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// The capabilities `baseline` lets a container add (the runtimes' default set).
const BASELINE_CAPS: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// The volume types `restricted` allows.
const RESTRICTED_VOLUMES: [&str; 8] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// What `pod` violates at `level`, as the admission words it after "violates" (or
/// "would violate"): `PodSecurity "baseline:latest": ...`; None if the pod passes.
pub fn verdict(pod: &Pod, level: Level) -> Option<String> {
    let found = violations(pod, level);
    (!found.is_empty()).then(|| {
        format!(
            "PodSecurity \"{}:latest\": {}",
            level.name(),
            found.join(", ")
        )
    })
}

/// Every check of `level` that `pod` fails: "what (detail)".
pub fn violations(pod: &Pod, level: Level) -> Vec<String> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if level >= Level::Baseline {
        baseline(spec, &mut out);
    }
    if level >= Level::Restricted {
        restricted(spec, &mut out);
    }
    out
}

fn containers(spec: &PodSpec) -> impl Iterator<Item = &Container> {
    spec.init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
}

/// `container "a"` or `containers "a", "b"`, and the verb agreeing with it.
fn named(noun: &str, names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    let plural = if names.len() == 1 { "" } else { "s" };
    format!("{noun}{plural} {}", quoted.join(", "))
}

fn sc(c: &Container) -> Option<&SecurityContext> {
    c.security_context.as_ref()
}

/// The names of the containers `keep` picks.
fn names_of(spec: &PodSpec, keep: impl Fn(&Container) -> bool) -> Vec<&str> {
    containers(spec)
        .filter(|c| keep(c))
        .map(|c| c.name.as_str())
        .collect()
}

/// `pod`, `container "a"`, or `pod and containers "a", "b"`: who set a field; None
/// if nobody did.
fn pod_and(pod: bool, names: &[&str]) -> Option<String> {
    let mut whose = Vec::new();
    if pod {
        whose.push("pod".to_string());
    }
    if !names.is_empty() {
        whose.push(named("container", names));
    }
    (!whose.is_empty()).then(|| whose.join(" and "))
}

/// A container's seccompProfile type, else its pod's.
fn seccomp_type<'a>(spec: &'a PodSpec, c: &'a Container) -> Option<&'a str> {
    let of =
        |s: Option<&'a k8s_openapi::api::core::v1::SeccompProfile>| s.map(|p| p.type_.as_str());
    of(sc(c).and_then(|s| s.seccomp_profile.as_ref())).or(of(spec
        .security_context
        .as_ref()
        .and_then(|s| s.seccomp_profile.as_ref())))
}

fn baseline(spec: &PodSpec, out: &mut Vec<String>) {
    let host: Vec<&str> = [
        (spec.host_network, "hostNetwork=true"),
        (spec.host_pid, "hostPID=true"),
        (spec.host_ipc, "hostIPC=true"),
    ]
    .into_iter()
    .filter(|(set, _)| *set == Some(true))
    .map(|(_, what)| what)
    .collect();
    if !host.is_empty() {
        out.push(format!("host namespaces ({})", host.join(", ")));
    }
    let privileged = names_of(spec, |c| sc(c).and_then(|s| s.privileged) == Some(true));
    if !privileged.is_empty() {
        out.push(format!(
            "privileged ({} must not set securityContext.privileged=true)",
            named("container", &privileged)
        ));
    }
    let mut added: Vec<&str> = Vec::new();
    let mut adders: Vec<&str> = Vec::new();
    for c in containers(spec) {
        let adds = sc(c)
            .and_then(|s| s.capabilities.as_ref())
            .and_then(|caps| caps.add.as_ref());
        let extra: Vec<&str> = adds
            .into_iter()
            .flatten()
            .map(|cap| cap.as_str())
            .filter(|cap| !BASELINE_CAPS.contains(&cap.trim_start_matches("CAP_")))
            .collect();
        if !extra.is_empty() {
            adders.push(&c.name);
            for cap in extra {
                if !added.contains(&cap) {
                    added.push(cap);
                }
            }
        }
    }
    if !adders.is_empty() {
        let caps: Vec<String> = added.iter().map(|c| format!("{c:?}")).collect();
        out.push(format!(
            "non-default capabilities ({} must not include {} in securityContext.capabilities.add)",
            named("container", &adders),
            caps.join(", ")
        ));
    }
    let host_paths: Vec<&str> = spec
        .volumes
        .iter()
        .flatten()
        .filter(|v| v.host_path.is_some())
        .map(|v| v.name.as_str())
        .collect();
    if !host_paths.is_empty() {
        out.push(format!(
            "hostPath volumes ({})",
            named("volume", &host_paths)
        ));
    }
    let mut ports: Vec<String> = Vec::new();
    let mut porters: Vec<&str> = Vec::new();
    for c in containers(spec) {
        let used: Vec<String> = c
            .ports
            .iter()
            .flatten()
            .filter_map(|p| p.host_port.filter(|&h| h != 0))
            .map(|h| h.to_string())
            .collect();
        if !used.is_empty() {
            porters.push(&c.name);
            ports.extend(used);
        }
    }
    if !porters.is_empty() {
        let (verb, noun) = match porters.len() {
            1 if ports.len() == 1 => ("uses", "hostPort"),
            1 => ("uses", "hostPorts"),
            _ => ("use", "hostPorts"),
        };
        out.push(format!(
            "hostPort ({} {verb} {noun} {})",
            named("container", &porters),
            ports.join(", ")
        ));
    }
    let unconfined = |p: Option<&k8s_openapi::api::core::v1::SeccompProfile>| {
        p.is_some_and(|p| p.type_ == "Unconfined")
    };
    let pod = spec.security_context.as_ref();
    let own = names_of(spec, |c| {
        unconfined(sc(c).and_then(|s| s.seccomp_profile.as_ref()))
    });
    if let Some(whose) = pod_and(
        unconfined(pod.and_then(|s| s.seccomp_profile.as_ref())),
        &own,
    ) {
        out.push(format!(
            "seccompProfile ({whose} must not set securityContext.seccompProfile.type to \"Unconfined\")"
        ));
    }
}

fn restricted(spec: &PodSpec, out: &mut Vec<String>) {
    for v in spec.volumes.iter().flatten() {
        let value = serde_json::to_value(v).unwrap_or_default();
        let kind = value
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.as_str())
            .find(|k| *k != "name");
        if let Some(kind) = kind.filter(|k| !RESTRICTED_VOLUMES.contains(k)) {
            out.push(format!(
                "restricted volume types (volume {:?} uses restricted volume type {kind:?})",
                v.name
            ));
        }
    }
    let escalating = names_of(spec, |c| {
        sc(c).and_then(|s| s.allow_privilege_escalation) != Some(false)
    });
    if !escalating.is_empty() {
        out.push(format!(
            "allowPrivilegeEscalation != false ({} must set securityContext.allowPrivilegeEscalation=false)",
            named("container", &escalating)
        ));
    }
    let mut unrestricted = Vec::new();
    for c in containers(spec) {
        let caps = sc(c).and_then(|s| s.capabilities.as_ref());
        let drops_all = caps
            .and_then(|c| c.drop.as_ref())
            .is_some_and(|d| d.iter().any(|x| x == "ALL"));
        let extra: Vec<String> = caps
            .and_then(|c| c.add.as_ref())
            .into_iter()
            .flatten()
            .filter(|cap| cap.trim_start_matches("CAP_") != "NET_BIND_SERVICE")
            .map(|cap| format!("{cap:?}"))
            .collect();
        if !drops_all {
            unrestricted.push(format!(
                "container {:?} must set securityContext.capabilities.drop=[\"ALL\"]",
                c.name
            ));
        }
        if !extra.is_empty() {
            unrestricted.push(format!(
                "container {:?} must not include {} in securityContext.capabilities.add",
                c.name,
                extra.join(", ")
            ));
        }
    }
    if !unrestricted.is_empty() {
        out.push(format!(
            "unrestricted capabilities ({})",
            unrestricted.join("; ")
        ));
    }
    let pod_sc = spec.security_context.as_ref();
    let pod_non_root = pod_sc.and_then(|s| s.run_as_non_root);
    let not_non_root = names_of(spec, |c| {
        sc(c).and_then(|s| s.run_as_non_root).or(pod_non_root) != Some(true)
    });
    if !not_non_root.is_empty() {
        out.push(format!(
            "runAsNonRoot != true (pod or {} must set securityContext.runAsNonRoot=true)",
            named("container", &not_non_root)
        ));
    }
    let pod_root = pod_sc.and_then(|s| s.run_as_user) == Some(0);
    let root = names_of(spec, |c| sc(c).and_then(|s| s.run_as_user) == Some(0));
    if let Some(whose) = pod_and(pod_root, &root) {
        out.push(format!("runAsUser=0 ({whose} must not set runAsUser=0)"));
    }
    // Set to RuntimeDefault or Localhost; an Unconfined one is baseline's to report.
    let unset = names_of(spec, |c| {
        !matches!(
            seccomp_type(spec, c),
            Some("RuntimeDefault" | "Localhost" | "Unconfined")
        )
    });
    if !unset.is_empty() {
        out.push(format!(
            "seccompProfile (pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")",
            named("container", &unset)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml: &str) -> Pod {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn baseline_refuses_host_namespaces_privilege_host_paths_and_ports() {
        let p = pod("apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  hostNetwork: true
  hostPID: true
  containers:
  - name: a
    securityContext: {privileged: true, capabilities: {add: [NET_ADMIN, CHOWN]}}
    ports: [{containerPort: 80, hostPort: 8080}]
  - name: b
    securityContext: {seccompProfile: {type: Unconfined}}
  volumes:
  - {name: proc, hostPath: {path: /proc}}
");
        assert_eq!(
            verdict(&p, Level::Baseline).unwrap(),
            "PodSecurity \"baseline:latest\": host namespaces (hostNetwork=true, hostPID=true), \
             privileged (container \"a\" must not set securityContext.privileged=true), \
             non-default capabilities (container \"a\" must not include \"NET_ADMIN\" in securityContext.capabilities.add), \
             hostPath volumes (volume \"proc\"), \
             hostPort (container \"a\" uses hostPort 8080), \
             seccompProfile (container \"b\" must not set securityContext.seccompProfile.type to \"Unconfined\")"
        );
        assert_eq!(verdict(&p, Level::Privileged), None);
    }

    #[test]
    fn restricted_wants_the_hardened_pod_and_passes_it() {
        let loose = pod("apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - {name: a}
");
        assert_eq!(verdict(&loose, Level::Baseline), None);
        assert_eq!(
            verdict(&loose, Level::Restricted).unwrap(),
            "PodSecurity \"restricted:latest\": \
             allowPrivilegeEscalation != false (container \"a\" must set securityContext.allowPrivilegeEscalation=false), \
             unrestricted capabilities (container \"a\" must set securityContext.capabilities.drop=[\"ALL\"]), \
             runAsNonRoot != true (pod or container \"a\" must set securityContext.runAsNonRoot=true), \
             seccompProfile (pod or container \"a\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        );
        let hardened = pod("apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: a
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
  volumes:
  - {name: cache, emptyDir: {}}
");
        assert_eq!(verdict(&hardened, Level::Restricted), None);
    }
}
