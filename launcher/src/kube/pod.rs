//! The Pod: metadata, and the pod-wide fields of its spec (restartPolicy, grace
//! period, deadline, hostname, pod-level resources and securityContext); its
//! containers are `container`'s. Encoding adds the status the supervisor publishes.

use super::security::PodSecurity;
use super::{field, secs_field, ManifestError};
use crate::record::PodRecord;
use crate::spec::{
    self, Bandwidth, ContainerSpec, Limits, Network, PodSpec, PortMapping, Protocol, RestartPolicy,
};
use crate::status::{Phase, PodStatus};
use k8s_openapi::api::core::v1::{ContainerPort, Pod, PodSecurityContext, PodSpec as K8sPodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// The pod a manifest describes, and warnings for the user.
pub fn decode(pod: &Pod) -> Result<(PodSpec, Vec<String>), ManifestError> {
    let name = pod
        .metadata
        .name
        .clone()
        .ok_or_else(|| field("metadata.name", "required"))?;
    spec::validate_name("pod name", &name).map_err(|e| field("metadata.name", e.to_string()))?;
    let ps = pod.spec.as_ref().ok_or_else(|| field("spec", "required"))?;
    if ps.containers.is_empty() {
        return Err(field("spec.containers", "must have at least one container"));
    }
    let mut warnings = Vec::new();
    let security = match &ps.security_context {
        Some(sc) => PodSecurity {
            user: super::security::id(sc.run_as_user, "spec.securityContext.runAsUser")?,
            group: super::security::id(sc.run_as_group, "spec.securityContext.runAsGroup")?,
            non_root: sc.run_as_non_root.unwrap_or(false),
            groups: sc
                .supplemental_groups
                .iter()
                .flatten()
                .enumerate()
                .map(|(j, &g)| {
                    super::security::id(
                        Some(g),
                        &format!("spec.securityContext.supplementalGroups[{j}]"),
                    )
                    .map(Option::unwrap_or_default)
                })
                .collect::<Result<_, _>>()?,
            seccomp: sc
                .seccomp_profile
                .as_ref()
                .map(|p| super::security::seccomp(p, "spec.securityContext.seccompProfile"))
                .transpose()?,
        },
        None => PodSecurity::default(),
    };
    let volumes = super::volume::decode_volumes(ps.volumes.as_deref().unwrap_or_default())?;
    let privileged_of = |c: &k8s_openapi::api::core::v1::Container| {
        c.security_context
            .as_ref()
            .and_then(|s| s.privileged)
            .unwrap_or(false)
    };
    let mut containers: Vec<ContainerSpec> = Vec::new();
    let mut pod_limits = Limits::default();
    for (i, c) in ps.containers.iter().enumerate() {
        let path = format!("spec.containers[{i}]");
        let mut spec = super::container::decode(c, &path, &security, false)?;
        spec.volume_mounts = super::volume::decode_mounts(c, &path, &volumes, privileged_of(c))?;
        if containers.iter().any(|x| x.name == spec.name) {
            return Err(field(
                format!("{path}.name"),
                format!("duplicate container name {:?}", spec.name),
            ));
        }
        // "host" is what `up --dry-run` writes for processes from the host.
        if let Some(image) = c.image.as_ref().filter(|i| *i != "host") {
            warnings.push(format!("{path}.image: {image:?} is noted but not pulled: the process runs from the host's file system"));
        }
        // The pod cgroup gets the sum of its containers' limits, as the kubelet does.
        let sum = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        };
        pod_limits.memory = sum(pod_limits.memory, spec.limits.memory);
        pod_limits.cpu_milli = sum(pod_limits.cpu_milli, spec.limits.cpu_milli);
        pod_limits.cpu_request_milli =
            sum(pod_limits.cpu_request_milli, spec.limits.cpu_request_milli);
        pod_limits.memory_request = sum(pod_limits.memory_request, spec.limits.memory_request);
        containers.push(spec);
    }
    let mut init_containers: Vec<ContainerSpec> = Vec::new();
    for (i, c) in ps.init_containers.iter().flatten().enumerate() {
        let path = format!("spec.initContainers[{i}]");
        let mut spec = super::container::decode(c, &path, &security, true)?;
        spec.volume_mounts = super::volume::decode_mounts(c, &path, &volumes, privileged_of(c))?;
        if containers
            .iter()
            .chain(&init_containers)
            .any(|x| x.name == spec.name)
        {
            return Err(field(
                format!("{path}.name"),
                format!("duplicate container name {:?}", spec.name),
            ));
        }
        init_containers.push(spec);
    }
    // A pod limit is only sound if every container has one (else that container is unbounded).
    for (i, c) in containers.iter().enumerate() {
        if pod_limits.memory.is_some() && c.limits.memory.is_none() {
            warnings.push(format!("spec.containers[{i}].resources.limits.memory: unset, so the pod has no memory limit"));
        }
    }
    if containers.iter().any(|c| c.limits.memory.is_none()) {
        pod_limits.memory = None;
    }
    if containers.iter().any(|c| c.limits.cpu_milli.is_none()) {
        pod_limits.cpu_milli = None;
    }
    if let Some(p) = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PIDS_ANNOTATION))
    {
        let at = format!("metadata.annotations[{:?}]", PIDS_ANNOTATION);
        pod_limits.pids =
            Some(crate::quantity::parse_count(p).map_err(|e| field(at, e.to_string()))?);
    }
    let share_process_namespace = ps.share_process_namespace.unwrap_or(false);
    if share_process_namespace && ps.host_pid == Some(true) {
        return Err(field(
            "spec.shareProcessNamespace",
            "Invalid value: true: ShareProcessNamespace and HostPID cannot both be enabled",
        ));
    }
    let privileged: Vec<bool> = ps.containers.iter().map(privileged_of).collect();
    if privileged.iter().any(|&p| p != privileged[0]) {
        return Err(field(
            "spec.containers[].securityContext.privileged",
            "must be the same for every container of a launcher pod",
        ));
    }
    let restart = match ps.restart_policy.as_deref() {
        None | Some("Always") => RestartPolicy::Always,
        Some("OnFailure") => RestartPolicy::OnFailure,
        Some("Never") => RestartPolicy::Never,
        Some(other) => {
            return Err(field(
                "spec.restartPolicy",
                format!("unsupported value {other:?}: must be Always, OnFailure or Never"),
            ))
        }
    };
    let grace = secs_field(
        ps.termination_grace_period_seconds,
        0,
        "spec.terminationGracePeriodSeconds",
    )?
    .unwrap_or(Duration::from_secs(30));
    let active_deadline = secs_field(ps.active_deadline_seconds, 1, "spec.activeDeadlineSeconds")?;
    let hostname = ps.hostname.clone().unwrap_or_else(|| name.clone());
    spec::validate_name("hostname", &hostname)
        .map_err(|e| field("spec.hostname", e.to_string()))?;
    let dns = super::dns::decode(ps, &hostname)?;
    let sysctls = sysctls(ps.security_context.as_ref())?;
    let (fs_group, strict_groups) = groups(ps.security_context.as_ref())?;
    // Sidecars run beside every container after them, so the apps' sum grows by all
    // of them; an init container runs alone but for the sidecars before it. The pod
    // needs the larger of the two (the kubelet's rule); None is unbounded.
    let add = |a: Option<u64>, b: Option<u64>| Some(a?.saturating_add(b?));
    let (mut side_memory, mut side_cpu) = (Some(0), Some(0));
    for c in &init_containers {
        if c.sidecar {
            pod_limits.memory = add(pod_limits.memory, c.limits.memory);
            pod_limits.cpu_milli = add(pod_limits.cpu_milli, c.limits.cpu_milli);
            side_memory = add(side_memory, c.limits.memory);
            side_cpu = add(side_cpu, c.limits.cpu_milli);
        } else {
            let max = |pod: Option<u64>, need: Option<u64>| Some(pod?.max(need?));
            pod_limits.memory = max(pod_limits.memory, add(side_memory, c.limits.memory));
            pod_limits.cpu_milli = max(pod_limits.cpu_milli, add(side_cpu, c.limits.cpu_milli));
        }
    }
    // Pod-level resources (Kubernetes >= 1.32) take precedence over the sum.
    if let Some(res) = &ps.resources {
        let own = super::resources::decode(res, "spec")?;
        pod_limits = Limits {
            pids: pod_limits.pids,
            ..own
        };
    }
    let (labels, annotations) = metadata_maps(&pod.metadata)?;
    let host_network = ps.host_network.unwrap_or(false);
    let network = if host_network {
        Network::Host
    } else {
        Network::Cni(crate::network::DEFAULT_NETWORK.into())
    };
    let mut ports: Vec<PortMapping> = Vec::new();
    for (i, c) in ps.containers.iter().enumerate() {
        for (j, p) in c.ports.iter().flatten().enumerate() {
            let path = format!("spec.containers[{i}].ports[{j}]");
            if let Some(m) = port_mapping(p, &path, host_network)? {
                if ports.iter().any(|o| o.collides(&m)) {
                    return Err(field(
                        format!("{path}.hostPort"),
                        format!("duplicate value {}/{}", m.host_port, m.protocol.kube()),
                    ));
                }
                ports.push(m);
            }
        }
    }
    let mut bandwidth = Bandwidth::default();
    for (key, rate) in [
        (INGRESS_BANDWIDTH, &mut bandwidth.ingress),
        (EGRESS_BANDWIDTH, &mut bandwidth.egress),
    ] {
        if let Some(v) = annotations.get(key) {
            let at = format!("metadata.annotations[{key:?}]");
            *rate = Some(spec::parse_bandwidth(v).map_err(|e| field(at, e))?);
        }
    }
    let spec = PodSpec {
        network,
        ports,
        bandwidth,
        host_pid: ps.host_pid.unwrap_or(false),
        share_process_namespace,
        host_ipc: ps.host_ipc.unwrap_or(false),
        labels,
        annotations,
        name,
        hostname,
        init_containers,
        containers,
        env: Vec::new(),
        limits: pod_limits,
        restart,
        grace,
        active_deadline,
        privileged: privileged[0],
        supplemental_groups: security.groups,
        service_account: ps
            .service_account_name
            .clone()
            .unwrap_or_else(|| "default".into()),
        volumes,
        dns,
        sysctls,
        fs_group,
        strict_groups,
    };
    Ok((spec, warnings))
}

/// securityContext.fsGroup with fsGroupChangePolicy, and whether
/// supplementalGroupsPolicy is Strict.
fn groups(sc: Option<&PodSecurityContext>) -> Result<(Option<spec::FsGroup>, bool), ManifestError> {
    let Some(sc) = sc else {
        return Ok((None, false));
    };
    let gid = super::security::id(sc.fs_group, "spec.securityContext.fsGroup")?;
    let on_root_mismatch = match sc.fs_group_change_policy.as_deref() {
        None | Some("Always") => false,
        Some("OnRootMismatch") => true,
        Some(other) => {
            return Err(field(
                "spec.securityContext.fsGroupChangePolicy",
                format!(
                "Unsupported value: {other:?}: supported values: \"OnRootMismatch\", \"Always\""
            ),
            ))
        }
    };
    let strict = match sc.supplemental_groups_policy.as_deref() {
        None | Some("Merge") => false,
        Some("Strict") => true,
        Some(other) => {
            return Err(field(
                "spec.securityContext.supplementalGroupsPolicy",
                format!("Unsupported value: {other:?}: supported values: \"Merge\", \"Strict\""),
            ))
        }
    };
    let fs_group = gid.map(|gid| spec::FsGroup {
        gid,
        on_root_mismatch,
    });
    Ok((fs_group, strict))
}

/// securityContext.sysctls, named as the API server validates them, dotted.
fn sysctls(sc: Option<&PodSecurityContext>) -> Result<Vec<(String, String)>, ManifestError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, s) in sc
        .and_then(|sc| sc.sysctls.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("spec.securityContext.sysctls[{i}].name");
        let segment = |seg: &str| {
            let b = seg.as_bytes();
            let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            !b.is_empty()
                && b.first().is_some_and(edge)
                && b.last().is_some_and(edge)
                && b.iter().all(|c| edge(c) || *c == b'-' || *c == b'_')
        };
        if s.name.len() > 253 || !s.name.split(['.', '/']).all(segment) {
            return Err(field(
                at,
                format!("Invalid value: {:?}: must have at most 253 characters and be lowercase segments of [-_a-z0-9] separated by '.' or '/'", s.name),
            ));
        }
        let name = crate::sysctl::dotted(&s.name);
        if out.iter().any(|(n, _)| *n == name) {
            return Err(field(at, format!("Duplicate value: {:?}", s.name)));
        }
        out.push((name, s.value.clone()));
    }
    Ok(out)
}

pub const INGRESS_BANDWIDTH: &str = "kubernetes.io/ingress-bandwidth";
pub const EGRESS_BANDWIDTH: &str = "kubernetes.io/egress-bandwidth";

/// A container port as Kubernetes validates it; the host port it publishes, if any.
/// On the host's network a hostPort is the containerPort itself: nothing to publish.
fn port_mapping(
    p: &ContainerPort,
    path: &str,
    host_network: bool,
) -> Result<Option<PortMapping>, ManifestError> {
    let number = |v: i32, key: &str| {
        u16::try_from(v).ok().filter(|&n| n > 0).ok_or_else(|| {
            field(
                format!("{path}.{key}"),
                format!("{v} must be between 1 and 65535, inclusive"),
            )
        })
    };
    let container_port = number(p.container_port, "containerPort")?;
    let protocol = match p.protocol.as_deref() {
        None | Some("TCP") => Protocol::Tcp,
        Some("UDP") => Protocol::Udp,
        Some("SCTP") => Protocol::Sctp,
        Some(other) => {
            return Err(field(
                format!("{path}.protocol"),
                format!("unsupported value {other:?}: must be TCP, UDP or SCTP"),
            ))
        }
    };
    let host_ip = p
        .host_ip
        .as_deref()
        .filter(|ip| !ip.is_empty())
        .map(|ip| {
            ip.parse().map_err(|_| {
                field(
                    format!("{path}.hostIP"),
                    format!("{ip:?} must be a valid IP address"),
                )
            })
        })
        .transpose()?;
    let host_port = match p.host_port {
        None | Some(0) => return Ok(None),
        Some(h) => number(h, "hostPort")?,
    };
    if host_network {
        if host_port != container_port {
            return Err(field(
                format!("{path}.hostPort"),
                "must match containerPort when hostNetwork is true",
            ));
        }
        return Ok(None);
    }
    Ok(Some(PortMapping {
        host_ip,
        host_port,
        container_port,
        protocol,
    }))
}

type Strings = BTreeMap<String, String>;

/// The pod's labels (validated as Kubernetes does) and the user's annotations. The
/// runtime's own (`launcher/...`, which `status` prints) are facts of a running pod,
/// not wishes: dropped, so that a printed pod can be started again.
fn metadata_maps(meta: &ObjectMeta) -> Result<(Strings, Strings), ManifestError> {
    let labels = meta.labels.clone().unwrap_or_default();
    for (k, v) in &labels {
        crate::selector::validate_label(k, v)
            .map_err(|e| field(format!("metadata.labels[{k:?}]"), e))?;
    }
    let mut annotations = meta.annotations.clone().unwrap_or_default();
    annotations.retain(|k, _| !k.starts_with("launcher/"));
    for k in annotations.keys() {
        crate::selector::validate_key("annotation", k)
            .map_err(|e| field(format!("metadata.annotations[{k:?}]"), e))?;
    }
    Ok((labels, annotations))
}

/// What `--pids` becomes: there is no Pod field for it.
pub const PIDS_ANNOTATION: &str = "launcher/pids-max";

/// The Pod manifest of a pod: what `up --dry-run` prints and `up -f` reads back.
/// Pod-wide limits from the command line become pod-level `spec.resources`
/// (Kubernetes >= 1.32); `--pids` travels as an annotation.
pub fn pod_manifest(spec: &PodSpec) -> Value {
    let mut value = serde_json::to_value(manifest(spec)).unwrap_or(Value::Null);
    super::volume::put_empty_dir_modes(&spec.volumes, &mut value);
    value
}

/// `spec` as a Pod object.
pub fn pod_of(spec: &PodSpec) -> Pod {
    manifest(spec)
}

fn manifest(spec: &PodSpec) -> Pod {
    let containers = |list: &[ContainerSpec]| -> Vec<_> {
        list.iter()
            .map(|c| super::container::encode(spec, c))
            .collect()
    };
    let mut app_containers = containers(&spec.containers);
    // The pod's published ports, on its first container: they share one network.
    if let Some(first) = app_containers
        .first_mut()
        .filter(|_| !spec.ports.is_empty())
    {
        first.ports = Some(
            spec.ports
                .iter()
                .map(|p| ContainerPort {
                    container_port: i32::from(p.container_port),
                    host_port: Some(i32::from(p.host_port)),
                    host_ip: p.host_ip.map(|ip| ip.to_string()),
                    protocol: Some(p.protocol.kube().into()),
                    ..Default::default()
                })
                .collect(),
        );
    }
    let own_limits = spec.all_containers().any(|c| c.limits.any());
    let mut annotations = spec.annotations.clone();
    if let Some(p) = spec.limits.pids {
        annotations.insert(PIDS_ANNOTATION.to_string(), p.to_string());
    }
    let mut pod = Pod {
        metadata: ObjectMeta {
            name: Some(spec.name.clone()),
            labels: (!spec.labels.is_empty()).then(|| spec.labels.clone()),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..Default::default()
        },
        spec: Some(K8sPodSpec {
            hostname: Some(spec.hostname.clone()),
            restart_policy: Some(format!("{:?}", spec.restart)),
            termination_grace_period_seconds: Some(spec.grace.as_secs() as i64),
            active_deadline_seconds: spec.active_deadline.map(|d| d.as_secs() as i64),
            share_process_namespace: spec.share_process_namespace.then_some(true),
            init_containers: (!spec.init_containers.is_empty())
                .then(|| containers(&spec.init_containers)),
            containers: app_containers,
            host_network: (spec.network == Network::Host).then_some(true),
            host_pid: spec.host_pid.then_some(true),
            host_ipc: spec.host_ipc.then_some(true),
            volumes: (!spec.volumes.is_empty()).then(|| {
                spec.volumes
                    .iter()
                    .map(super::volume::encode_volume)
                    .collect()
            }),
            resources: if own_limits {
                None
            } else {
                super::resources::encode(&spec.limits)
            },
            security_context: {
                let sc = PodSecurityContext {
                    supplemental_groups: (!spec.supplemental_groups.is_empty()).then(|| {
                        spec.supplemental_groups
                            .iter()
                            .map(|&g| i64::from(g))
                            .collect()
                    }),
                    fs_group: spec.fs_group.map(|f| i64::from(f.gid)),
                    fs_group_change_policy: (spec.fs_group)
                        .filter(|f| f.on_root_mismatch)
                        .map(|_| "OnRootMismatch".into()),
                    supplemental_groups_policy: spec.strict_groups.then(|| "Strict".into()),
                    sysctls: (!spec.sysctls.is_empty()).then(|| {
                        (spec.sysctls.iter())
                            .map(|(name, value)| k8s_openapi::api::core::v1::Sysctl {
                                name: name.clone(),
                                value: value.clone(),
                            })
                            .collect()
                    }),
                    ..Default::default()
                };
                (sc != PodSecurityContext::default()).then_some(sc)
            },
            ..Default::default()
        }),
        status: None,
    };
    if let Some(ps) = &mut pod.spec {
        super::dns::encode(&spec.dns, ps);
    }
    pod
}

/// This machine, the node of every pod: its host name, read once.
pub fn node_name() -> Option<String> {
    static NODE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    NODE.get_or_init(|| {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
        Some(name.trim().to_string()).filter(|n| !n.is_empty())
    })
    .clone()
}

/// The Pod object `status` and `ps -o json` print: the manifest, the pod's
/// identity in its metadata, and the status its supervisor published.
pub fn pod_object(rec: &PodRecord, status: Option<&PodStatus>, supervisor_alive: bool) -> Value {
    let mut pod = manifest(&rec.spec);
    // Scheduled here: this machine is the pod's node.
    if let Some(spec) = &mut pod.spec {
        spec.node_name = node_name();
    }
    let meta = &mut pod.metadata;
    meta.namespace = Some("default".into());
    meta.uid = Some(rec.facts.uid.clone());
    meta.creation_timestamp = rec.created.parse().ok().map(Time);
    let annotations = meta.annotations.get_or_insert_with(BTreeMap::new);
    if let Some(p) = rec.pause {
        annotations.insert("launcher/pause-pid".into(), p.pid.to_string());
    }
    if let Some(cgroup) = &rec.cgroup {
        annotations.insert("launcher/cgroup".into(), cgroup.display().to_string());
    }
    if let Some(s) = rec.supervisor {
        annotations.insert("launcher/supervisor-pid".into(), s.pid.to_string());
    }
    let pending = || PodStatus {
        phase: Phase::Pending,
        reason: None,
        message: None,
        conditions: Vec::new(),
        start_time: rec.created.clone(),
        init_container_statuses: Vec::new(),
        container_statuses: Vec::new(),
        deletion: None,
    };
    let status = match status {
        Some(s) if supervisor_alive || s.phase.is_terminal() => s.clone(),
        // Nobody vouches for what the file says: the pod's state is Unknown and
        // none of its containers counts as ready (as for a pod on a lost node).
        Some(s) => unverified(s.clone()),
        None if supervisor_alive => pending(),
        None => unverified(pending()),
    };
    // Host pids of running containers, as `a=123,b=456`.
    let pids: Vec<String> = status
        .init_container_statuses
        .iter()
        .chain(&status.container_statuses)
        .filter_map(|c| Some(format!("{}={}", c.name, c.pid?)))
        .collect();
    if !pids.is_empty() {
        annotations.insert("launcher/container-pids".into(), pids.join(","));
    }
    let mut status = status;
    for c in status
        .init_container_statuses
        .iter_mut()
        .chain(&mut status.container_statuses)
    {
        c.pid = None;
    }
    // A stop asked for is a delete to Kubernetes: metadata, not status.
    if let Some(d) = status.deletion.take() {
        meta.deletion_timestamp = d.timestamp.parse().ok().map(Time);
        meta.deletion_grace_period_seconds = i64::try_from(d.grace_period_seconds).ok();
    }
    let mut value = serde_json::to_value(pod).unwrap_or(Value::Null);
    super::volume::put_empty_dir_modes(&rec.spec.volumes, &mut value);
    value["status"] = serde_json::to_value(status).unwrap_or(Value::Null);
    value["status"]["qosClass"] = crate::qos::class(&rec.spec).name().into();
    for list in ["initContainerStatuses", "containerStatuses"] {
        for c in value["status"][list].as_array_mut().into_iter().flatten() {
            if let Some(user) = user_of(&rec.spec, c) {
                c["user"] = user;
            }
        }
    }
    for (one, all, ips) in [
        ("hostIP", "hostIPs", &rec.facts.host_ips),
        ("podIP", "podIPs", &rec.facts.pod_ips),
    ] {
        if let Some(first) = ips.first() {
            value["status"][one] = Value::from(first.as_str());
            value["status"][all] = ips.iter().map(|ip| serde_json::json!({"ip": ip})).collect();
        }
    }
    value
}

/// `user.linux` of a container that has started, as the runtime reports the identity
/// of its first process: uid, gid, and the supplementary groups (sorted, as the
/// kernel keeps them).
fn user_of(spec: &PodSpec, status: &Value) -> Option<Value> {
    let started =
        status["state"]["running"].is_object() || status["state"]["terminated"].is_object();
    let c = spec
        .all_containers()
        .find(|c| status["name"] == c.name.as_str())?;
    if !started {
        return None;
    }
    let accounts = crate::users::Accounts::cached();
    let ids = accounts.ids(c.user, c.group, &spec.extra_groups(), spec.strict_groups);
    let mut groups = ids.groups;
    groups.sort_unstable();
    Some(
        serde_json::json!({"linux": {"uid": ids.uid, "gid": ids.gid, "supplementalGroups": groups}}),
    )
}

/// A status whose supervisor is gone: phase Unknown, nothing ready, no pids.
fn unverified(mut s: PodStatus) -> PodStatus {
    s.phase = Phase::Unknown;
    s.reason = Some("SupervisorGone".into());
    s.message = Some("the pod's supervisor is not running; its state cannot be verified".into());
    for c in s
        .init_container_statuses
        .iter_mut()
        .chain(&mut s.container_statuses)
    {
        c.ready = false;
        c.pid = None;
    }
    for c in &mut s.conditions {
        if c.kind == "Ready" || c.kind == "ContainersReady" {
            c.status = "False".into();
            c.reason = Some("SupervisorGone".into());
            c.message = None;
        }
    }
    s
}
