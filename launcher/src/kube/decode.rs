//! Kubernetes Pod manifests (`launcher up -f pod.yaml`), YAML or JSON.
//!
//! The document is read twice: as a typed `k8s_openapi` Pod, whose deserializer
//! reports type errors with their field path, and as a plain value checked against the
//! fields this runtime supports. k8s-openapi drops fields it does not know, so without
//! that check a typo or an unsupported feature (a probe, a volume) would be ignored
//! silently; here it is an error naming its path. Fields that change nothing on one
//! machine (image, ports, labels) are accepted; `image` is noted, since processes run
//! from the host's file system.

use crate::quantity::{Memory, MilliCpu};
use crate::spec::{self, ContainerSpec, Limits, PodSpec, RestartPolicy};
use crate::spec::{Action, Probe, ProbeKind, Probes};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, ExecAction, HTTPGetAction, LifecycleHandler, Pod,
    Probe as K8sProbe, ResourceRequirements, SleepAction, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ManifestError {
    #[error("cannot read {file}: {why}")]
    Read { file: String, why: String },
    #[error("{0}")]
    Parse(String),
    #[error("{path}: {why}")]
    Field { path: String, why: String },
}

fn field(path: impl Into<String>, why: impl Into<String>) -> ManifestError {
    ManifestError::Field {
        path: path.into(),
        why: why.into(),
    }
}

/// What each object may hold: `S` supported, `I` informational (accepted, no effect).
enum Kind {
    S,
    I,
    Obj(&'static [(&'static str, Kind)]),
    List(&'static [(&'static str, Kind)]),
    /// A map with free keys whose values are checked by the key list (resources).
    Keys(&'static [&'static str]),
}

use Kind::*;

const EXEC: (&str, Kind) = ("exec", Obj(&[("command", S)]));
const HTTP_GET: (&str, Kind) = (
    "httpGet",
    Obj(&[
        ("host", S),
        ("port", S),
        ("path", S),
        ("scheme", S),
        ("httpHeaders", List(&[("name", S), ("value", S)])),
    ]),
);
const TCP_SOCKET: (&str, Kind) = ("tcpSocket", Obj(&[("host", S), ("port", S)]));

const PROBE: &[(&str, Kind)] = &[
    EXEC,
    HTTP_GET,
    TCP_SOCKET,
    ("initialDelaySeconds", S),
    ("periodSeconds", S),
    ("timeoutSeconds", S),
    ("successThreshold", S),
    ("failureThreshold", S),
    ("terminationGracePeriodSeconds", S),
];

const HOOK: &[(&str, Kind)] = &[EXEC, HTTP_GET, ("sleep", Obj(&[("seconds", S)]))];

const CONTAINER: &[(&str, Kind)] = &[
    ("name", S),
    ("image", I),
    ("imagePullPolicy", I),
    ("command", S),
    ("args", S),
    ("workingDir", S),
    ("env", List(&[("name", S), ("value", S)])),
    ("ports", I),
    (
        "resources",
        Obj(&[
            ("limits", Keys(&["cpu", "memory"])),
            ("requests", Keys(&["cpu", "memory"])),
        ]),
    ),
    ("terminationMessagePath", I),
    ("terminationMessagePolicy", I),
    ("livenessProbe", Obj(PROBE)),
    ("readinessProbe", Obj(PROBE)),
    ("startupProbe", Obj(PROBE)),
    (
        "lifecycle",
        Obj(&[("postStart", Obj(HOOK)), ("preStop", Obj(HOOK))]),
    ),
    (
        "securityContext",
        Obj(&[
            ("privileged", S),
            ("runAsUser", S),
            ("runAsGroup", S),
            ("runAsNonRoot", S),
            ("capabilities", Obj(&[("add", S), ("drop", S)])),
        ]),
    ),
];

const POD: &[(&str, Kind)] = &[
    ("apiVersion", S),
    ("kind", S),
    (
        "metadata",
        Obj(&[
            ("name", S),
            ("namespace", I),
            ("labels", I),
            ("annotations", I),
            ("uid", I),
            ("creationTimestamp", I),
        ]),
    ),
    (
        "spec",
        Obj(&[
            ("initContainers", List(CONTAINER)),
            ("containers", List(CONTAINER)),
            ("restartPolicy", S),
            ("terminationGracePeriodSeconds", S),
            ("activeDeadlineSeconds", S),
            ("hostname", S),
            ("shareProcessNamespace", S),
            (
                "securityContext",
                Obj(&[("runAsUser", S), ("runAsGroup", S), ("runAsNonRoot", S)]),
            ),
            (
                "resources",
                Obj(&[
                    ("limits", Keys(&["cpu", "memory"])),
                    ("requests", Keys(&["cpu", "memory"])),
                ]),
            ),
            ("dnsPolicy", I),
            ("schedulerName", I),
            ("serviceAccountName", I),
            ("enableServiceLinks", I),
        ]),
    ),
    ("status", I),
];

/// Errors for every field outside the supported schema, in document order.
fn check(value: &Value, schema: &Kind, path: &str, errors: &mut Vec<ManifestError>) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (schema, value) {
        (S | I, _) => {}
        (Obj(fields), Value::Object(map)) => {
            for (k, v) in map {
                match fields.iter().find(|(name, _)| name == k) {
                    Some((_, kind)) => check(v, kind, &join(k), errors),
                    None => errors.push(field(join(k), "not supported by launcher")),
                }
            }
        }
        (List(fields), Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                check(item, &Obj(fields), &format!("{path}[{i}]"), errors);
            }
        }
        (Keys(keys), Value::Object(map)) => {
            for k in map.keys().filter(|k| !keys.contains(&k.as_str())) {
                errors.push(field(join(k), "not supported by launcher"));
            }
        }
        // Wrong shapes are reported by the typed parse, with its own message.
        _ => {}
    }
}

/// Reads `file` (`-` for standard input).
pub fn read(file: &str) -> Result<String, ManifestError> {
    let text = if file == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map(|_| s)
    } else {
        std::fs::read_to_string(file)
    };
    text.map_err(|e| ManifestError::Read {
        file: file.to_string(),
        why: e.to_string(),
    })
}

/// Parses and validates a manifest into the pod to run, plus warnings for the user.
pub fn parse(text: &str, backoff_scale: f64) -> Result<(PodSpec, Vec<String>), ManifestError> {
    let raw: Value = serde_yaml_ng::from_str(text)
        .map_err(|e| ManifestError::Parse(format!("invalid manifest: {e}")))?;
    if !raw.is_object() {
        return Err(ManifestError::Parse(
            "invalid manifest: expected a Pod object".into(),
        ));
    }
    match (raw["apiVersion"].as_str(), raw["kind"].as_str()) {
        (Some("v1"), Some("Pod")) => {}
        (v, k) => {
            return Err(field(
                "kind",
                format!(
                    "expected apiVersion v1 and kind Pod, got {} {}",
                    v.unwrap_or("(none)"),
                    k.unwrap_or("(none)")
                ),
            ))
        }
    }
    let mut errors = Vec::new();
    check(&raw, &Obj(POD), "", &mut errors);
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    let pod: Pod = serde_yaml_ng::from_str(text).map_err(|e| {
        // serde_yaml_ng prefixes the path: "spec.containers[0].command: invalid type ..."
        let msg = e.to_string();
        ManifestError::Parse(msg.split(" at line ").next().unwrap_or(&msg).to_string())
    })?;
    to_spec(&pod, backoff_scale)
}

fn to_spec(pod: &Pod, backoff_scale: f64) -> Result<(PodSpec, Vec<String>), ManifestError> {
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
            user: id(sc.run_as_user, "spec.securityContext.runAsUser")?,
            group: id(sc.run_as_group, "spec.securityContext.runAsGroup")?,
            non_root: sc.run_as_non_root.unwrap_or(false),
        },
        None => PodSecurity::default(),
    };
    let mut containers: Vec<ContainerSpec> = Vec::new();
    let mut pod_limits = Limits::default();
    for (i, c) in ps.containers.iter().enumerate() {
        let path = format!("spec.containers[{i}]");
        let spec = container(c, &path, &security, false)?;
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
        containers.push(spec);
    }
    let mut init_containers: Vec<ContainerSpec> = Vec::new();
    for (i, c) in ps.init_containers.iter().flatten().enumerate() {
        let path = format!("spec.initContainers[{i}]");
        let spec = container(c, &path, &security, true)?;
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
    // Pod-level resources (Kubernetes >= 1.32) take precedence over the sum.
    if let Some(res) = &ps.resources {
        let own = resource_limits(res, "spec")?;
        pod_limits = Limits { pids: None, ..own };
    }
    if let Some(p) = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(super::encode::PIDS_ANNOTATION))
    {
        let at = format!("metadata.annotations[{:?}]", super::encode::PIDS_ANNOTATION);
        pod_limits.pids =
            Some(crate::quantity::parse_count(p).map_err(|e| field(at, e.to_string()))?);
    }
    if ps.share_process_namespace == Some(false) {
        return Err(field(
            "spec.shareProcessNamespace",
            "must be true: the processes of a launcher pod always share one PID namespace",
        ));
    }
    let privileged: Vec<bool> = ps
        .containers
        .iter()
        .map(|c| {
            c.security_context
                .as_ref()
                .and_then(|s| s.privileged)
                .unwrap_or(false)
        })
        .collect();
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
    // Init containers run alone, before the app containers: the pod needs the larger
    // of the apps' sum and any single init container's limit (the kubelet's rule).
    for c in &init_containers {
        pod_limits.memory = pod_limits
            .memory
            .zip(c.limits.memory)
            .map(|(a, b)| a.max(b));
        pod_limits.cpu_milli = pod_limits
            .cpu_milli
            .zip(c.limits.cpu_milli)
            .map(|(a, b)| a.max(b));
    }
    let spec = PodSpec {
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
        backoff_scale,
    };
    Ok((spec, warnings))
}

/// cpu and memory limits and the cpu request of `res`, found at `<path>.resources`.
fn resource_limits(res: &ResourceRequirements, path: &str) -> Result<Limits, ManifestError> {
    fn get<'a>(map: &'a Option<BTreeMap<String, Quantity>>, key: &str) -> Option<&'a str> {
        map.as_ref().and_then(|m| m.get(key)).map(|q| q.0.as_str())
    }
    let at = |which: &str, key: &str| format!("{path}.resources.{which}.{key}");
    let memory = |which, v: Option<&str>| {
        v.map(|v| {
            v.parse::<Memory>()
                .map(|m| m.0)
                .map_err(|e| field(at(which, "memory"), e.to_string()))
        })
        .transpose()
    };
    let cpu = |which, v: Option<&str>| {
        v.map(|v| {
            v.parse::<MilliCpu>()
                .map(|m| m.0)
                .map_err(|e| field(at(which, "cpu"), e.to_string()))
        })
        .transpose()
    };
    // A memory request changes nothing here, but a malformed one is still an error.
    memory("requests", get(&res.requests, "memory"))?;
    Ok(Limits {
        memory: memory("limits", get(&res.limits, "memory"))?,
        cpu_milli: cpu("limits", get(&res.limits, "cpu"))?,
        cpu_request_milli: cpu("requests", get(&res.requests, "cpu"))?,
        pids: None,
    })
}

/// What a Pod's securityContext gives each of its containers.
#[derive(Default)]
struct PodSecurity {
    user: Option<u32>,
    group: Option<u32>,
    non_root: bool,
}

fn container(
    c: &Container,
    path: &str,
    pod: &PodSecurity,
    init: bool,
) -> Result<ContainerSpec, ManifestError> {
    spec::validate_name("container name", &c.name)
        .map_err(|e| field(format!("{path}.name"), e.to_string()))?;
    let mut command = c.command.clone().unwrap_or_default();
    if command.is_empty() {
        return Err(field(
            format!("{path}.command"),
            "required: there is no image entrypoint, processes run from the host's file system",
        ));
    }
    command.extend(c.args.clone().unwrap_or_default());
    for (j, arg) in command.iter().enumerate() {
        let key = match c.command.as_ref().map_or(0, Vec::len) {
            n if j < n => format!("command[{j}]"),
            n => format!("args[{}]", j - n),
        };
        spec::nul_free(arg).map_err(|why| field(format!("{path}.{key}"), why))?;
    }
    let mut env = Vec::new();
    for (j, e) in c.env.iter().flatten().enumerate() {
        if !spec::valid_env_name(&e.name) {
            return Err(field(
                format!("{path}.env[{j}].name"),
                format!("invalid name {:?}: {}", e.name, spec::ENV_NAME_RULE),
            ));
        }
        let value = e.value.clone().unwrap_or_default();
        spec::nul_free(&value).map_err(|why| field(format!("{path}.env[{j}].value"), why))?;
        env.push((e.name.clone(), value));
    }
    let limits = match &c.resources {
        Some(res) => resource_limits(res, path)?,
        None => Limits::default(),
    };
    if let Some(dir) = &c.working_dir {
        spec::nul_free(dir).map_err(|why| field(format!("{path}.workingDir"), why))?;
        if !dir.starts_with('/') {
            return Err(field(
                format!("{path}.workingDir"),
                "must be an absolute path",
            ));
        }
    }
    let ports = c.ports.as_deref().unwrap_or_default();
    let probe = |p: &Option<K8sProbe>, key: &str, kind: ProbeKind| {
        p.as_ref()
            .map(|p| to_probe(p, &format!("{path}.{key}"), ports, kind))
            .transpose()
    };
    let probes = Probes {
        startup: probe(&c.startup_probe, "startupProbe", ProbeKind::Startup)?,
        liveness: probe(&c.liveness_probe, "livenessProbe", ProbeKind::Liveness)?,
        readiness: probe(&c.readiness_probe, "readinessProbe", ProbeKind::Readiness)?,
    };
    let hook = |h: Option<&LifecycleHandler>, key: &str| {
        h.map(|h| hook(h, &format!("{path}.lifecycle.{key}"), ports))
            .transpose()
    };
    let lifecycle = c.lifecycle.as_ref();
    let post_start = hook(lifecycle.and_then(|l| l.post_start.as_ref()), "postStart")?;
    let pre_stop = hook(lifecycle.and_then(|l| l.pre_stop.as_ref()), "preStop")?;
    if init {
        // Kubernetes refuses these for init containers too: they run to completion.
        for (set, key) in [
            (probes.startup.is_some(), "startupProbe"),
            (probes.liveness.is_some(), "livenessProbe"),
            (probes.readiness.is_some(), "readinessProbe"),
            (lifecycle.is_some(), "lifecycle"),
        ] {
            if set {
                return Err(field(
                    format!("{path}.{key}"),
                    "may not be set for init containers",
                ));
            }
        }
    }
    let sc = c.security_context.as_ref();
    let at = |key: &str| format!("{path}.securityContext.{key}");
    let user = id(sc.and_then(|s| s.run_as_user), &at("runAsUser"))?.or(pod.user);
    let group = id(sc.and_then(|s| s.run_as_group), &at("runAsGroup"))?.or(pod.group);
    let non_root = sc.and_then(|s| s.run_as_non_root).unwrap_or(pod.non_root);
    if non_root && user.unwrap_or(0) == 0 {
        return Err(field(
            format!("{path}.securityContext.runAsNonRoot"),
            "the container would run as root: set runAsUser to a non-zero user",
        ));
    }
    let capabilities = sc
        .and_then(|s| s.capabilities.as_ref())
        .map(|caps| capability_set(caps, &format!("{path}.securityContext.capabilities")))
        .transpose()?;
    Ok(ContainerSpec {
        name: c.name.clone(),
        command,
        env,
        working_dir: c.working_dir.clone(),
        limits,
        probes,
        post_start,
        pre_stop,
        user,
        group,
        capabilities,
    })
}

/// A field of whole seconds, from `min` to 2^31-1 (the API server's range for
/// activeDeadlineSeconds; kept for every duration, so no time can overflow).
fn secs_field(v: Option<i64>, min: i64, path: &str) -> Result<Option<Duration>, ManifestError> {
    let max = crate::quantity::MAX_SECONDS as i64;
    match v {
        None => Ok(None),
        Some(s) if s < min => Err(field(path, format!("must be at least {min}"))),
        Some(s) if s > max => Err(field(path, format!("must be at most {max}"))),
        Some(s) => Ok(Some(Duration::from_secs(s as u64))),
    }
}

/// A user or group id; -1 (4294967295) is not one.
fn id(v: Option<i64>, path: &str) -> Result<Option<u32>, ManifestError> {
    v.map(|v| {
        u32::try_from(v)
            .ok()
            .filter(|&v| v != u32::MAX)
            .ok_or_else(|| field(path, "must be between 0 and 4294967294"))
    })
    .transpose()
}

fn to_probe(
    p: &K8sProbe,
    path: &str,
    ports: &[ContainerPort],
    kind: ProbeKind,
) -> Result<Probe, ManifestError> {
    let action = action(
        [
            p.exec.as_ref().map(Handler::Exec),
            p.http_get.as_ref().map(Handler::Http),
            p.tcp_socket.as_ref().map(Handler::Tcp),
        ],
        p.grpc.is_some(),
        path,
        ports,
    )?;
    let seconds = |v: Option<i32>, default: i32, min: i32, key: &str| {
        let v = v.unwrap_or(default);
        if v < min {
            return Err(field(
                format!("{path}.{key}"),
                format!("must be at least {min}"),
            ));
        }
        Ok(v as u32)
    };
    let success = seconds(p.success_threshold, 1, 1, "successThreshold")?;
    if kind != ProbeKind::Readiness && success != 1 {
        return Err(field(
            format!("{path}.successThreshold"),
            "must be 1 for liveness and startup probes",
        ));
    }
    let grace = match p.termination_grace_period_seconds {
        Some(_) if kind == ProbeKind::Readiness => {
            return Err(field(
                format!("{path}.terminationGracePeriodSeconds"),
                "may not be set for readiness probes",
            ));
        }
        s => secs_field(s, 1, &format!("{path}.terminationGracePeriodSeconds"))?,
    };
    let secs = |v: u32| Duration::from_secs(u64::from(v));
    Ok(Probe {
        action,
        initial_delay: secs(seconds(
            p.initial_delay_seconds,
            0,
            0,
            "initialDelaySeconds",
        )?),
        period: secs(seconds(p.period_seconds, 10, 1, "periodSeconds")?),
        timeout: secs(seconds(p.timeout_seconds, 1, 1, "timeoutSeconds")?),
        success_threshold: success,
        failure_threshold: seconds(p.failure_threshold, 3, 1, "failureThreshold")?,
        grace,
    })
}

fn hook(
    h: &LifecycleHandler,
    path: &str,
    ports: &[ContainerPort],
) -> Result<Action, ManifestError> {
    // tcpSocket (deprecated for hooks) is refused by the allowlist.
    action(
        [
            h.exec.as_ref().map(Handler::Exec),
            h.http_get.as_ref().map(Handler::Http),
            h.sleep.as_ref().map(Handler::Sleep),
        ],
        false,
        path,
        ports,
    )
}

enum Handler<'a> {
    Exec(&'a ExecAction),
    Http(&'a HTTPGetAction),
    Tcp(&'a TCPSocketAction),
    Sleep(&'a SleepAction),
}

/// The one handler of a probe or hook.
fn action(
    handlers: [Option<Handler>; 3],
    grpc: bool,
    path: &str,
    ports: &[ContainerPort],
) -> Result<Action, ManifestError> {
    if grpc {
        return Err(field(format!("{path}.grpc"), "not supported by launcher"));
    }
    let mut set = handlers.into_iter().flatten();
    let (Some(handler), None) = (set.next(), set.next()) else {
        return Err(field(
            path,
            "must specify exactly one handler (exec, httpGet, tcpSocket or sleep)",
        ));
    };
    let host = |h: &Option<String>, at: &str| -> Result<IpAddr, ManifestError> {
        match h.as_deref() {
            None | Some("") | Some("localhost") => Ok(IpAddr::from([127, 0, 0, 1])),
            Some(h) => h.parse().map_err(|_| {
                field(
                    format!("{path}.{at}.host"),
                    format!("{h:?} is not an IP address (a launcher pod has no DNS)"),
                )
            }),
        }
    };
    Ok(match handler {
        Handler::Exec(e) => {
            let command = e.command.clone().unwrap_or_default();
            if command.is_empty() {
                return Err(field(format!("{path}.exec.command"), "required"));
            }
            Action::Exec(command)
        }
        Handler::Http(h) => {
            if let Some(scheme) = h.scheme.as_deref().filter(|s| *s != "HTTP") {
                return Err(field(
                    format!("{path}.httpGet.scheme"),
                    format!("unsupported value {scheme:?}: only HTTP"),
                ));
            }
            let mut headers = Vec::new();
            for (j, hd) in h.http_headers.iter().flatten().enumerate() {
                let ok = !hd.name.is_empty()
                    && hd.name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
                if !ok || hd.value.contains(['\r', '\n']) {
                    return Err(field(
                        format!("{path}.httpGet.httpHeaders[{j}]"),
                        "invalid header name or value",
                    ));
                }
                headers.push((hd.name.clone(), hd.value.clone()));
            }
            let p = h.path.clone().unwrap_or_default();
            if p.contains(|c: char| c.is_whitespace() || c.is_control()) {
                return Err(field(
                    format!("{path}.httpGet.path"),
                    "must not contain spaces or control characters",
                ));
            }
            Action::HttpGet {
                host: host(&h.host, "httpGet")?,
                port: port(&h.port, &format!("{path}.httpGet.port"), ports)?,
                path: if p.starts_with('/') {
                    p
                } else {
                    format!("/{p}")
                },
                headers,
            }
        }
        Handler::Tcp(t) => Action::TcpSocket {
            host: host(&t.host, "tcpSocket")?,
            port: port(&t.port, &format!("{path}.tcpSocket.port"), ports)?,
        },
        Handler::Sleep(s) => {
            let at = format!("{path}.sleep.seconds");
            Action::Sleep(secs_field(Some(s.seconds), 0, &at)?.unwrap_or_default())
        }
    })
}

/// A port by number, or by the name of one of the container's ports.
fn port(p: &IntOrString, path: &str, ports: &[ContainerPort]) -> Result<u16, ManifestError> {
    let n = match p {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => match name.parse::<i32>() {
            Ok(n) => n,
            Err(_) => ports
                .iter()
                .find(|cp| cp.name.as_deref() == Some(name))
                .map(|cp| cp.container_port)
                .ok_or_else(|| {
                    field(
                        path,
                        format!("no port named {name:?} among the container's ports"),
                    )
                })?,
        },
    };
    u16::try_from(n)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| field(path, format!("must be between 1 and 65535, got {n}")))
}

/// The runtimes' default set with `drop` removed and `add` added ("ALL" for every one).
fn capability_set(caps: &Capabilities, path: &str) -> Result<u64, ManifestError> {
    let all = caps::all().iter().fold(0u64, |set, c| set | 1 << c.index());
    let parse = |list: &Option<Vec<String>>, key: &str| -> Result<(bool, u64), ManifestError> {
        let mut set = 0u64;
        let mut has_all = false;
        for (j, name) in list.iter().flatten().enumerate() {
            if name == "ALL" {
                has_all = true;
                continue;
            }
            let full = format!("CAP_{}", name.trim_start_matches("CAP_"));
            let cap = full.parse::<caps::Capability>().map_err(|_| {
                field(
                    format!("{path}.{key}[{j}]"),
                    format!("unknown capability {name:?}"),
                )
            })?;
            set |= 1 << cap.index();
        }
        Ok((has_all, set))
    };
    let (drop_all, dropped) = parse(&caps.drop, "drop")?;
    let (add_all, added) = parse(&caps.add, "add")?;
    let mut set = if drop_all {
        0
    } else {
        crate::sys::DEFAULT_CAPS & !dropped
    };
    set |= if add_all { all } else { added };
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 5
  containers:
  - name: server
    image: busybox
    command: [busybox, httpd]
    args: [-f, -p, '8080']
    workingDir: /tmp
    env: [{name: MODE, value: fast}]
    ports: [{containerPort: 8080}]
    resources:
      limits: {memory: 64Mi, cpu: 250m}
      requests: {cpu: 100m}
  - name: side
    command: [sleep, '600']
    resources:
      limits: {memory: 32Mi, cpu: '1'}
";

    #[test]
    fn a_supported_manifest_maps_to_the_pod() {
        let (spec, warnings) = parse(GOOD, 1.0).unwrap();
        assert_eq!(spec.name, "web");
        assert_eq!(spec.restart, RestartPolicy::OnFailure);
        assert_eq!(spec.grace, Duration::from_secs(5));
        assert_eq!(
            spec.containers[0].command,
            ["busybox", "httpd", "-f", "-p", "8080"]
        );
        assert_eq!(
            spec.containers[0].env,
            [("MODE".to_string(), "fast".to_string())]
        );
        assert_eq!(spec.containers[0].working_dir.as_deref(), Some("/tmp"));
        assert_eq!(spec.containers[0].limits.memory, Some(64 << 20));
        // The pod gets the sum of its containers' limits.
        assert_eq!(spec.limits.memory, Some(96 << 20));
        assert_eq!(spec.limits.cpu_milli, Some(1250));
        assert_eq!(spec.limits.cpu_request_milli, Some(100));
        assert!(warnings[0].starts_with("spec.containers[0].image: \"busybox\" is noted"));
    }

    #[test]
    fn json_is_accepted_too() {
        let json = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"j"},"spec":{"containers":[{"name":"a","command":["true"]}]}}"#;
        assert_eq!(parse(json, 1.0).unwrap().0.containers[0].command, ["true"]);
    }

    fn err(doc: &str) -> String {
        parse(doc, 1.0).unwrap_err().to_string()
    }

    const PROBED: &str = "apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  securityContext: {runAsUser: 1000}
  containers:
  - name: web
    command: [server]
    ports: [{name: http, containerPort: 8080}]
    livenessProbe:
      httpGet: {path: healthz, port: http, httpHeaders: [{name: X-Probe, value: '1'}]}
      periodSeconds: 2
    readinessProbe:
      tcpSocket: {port: 8080}
      successThreshold: 2
    startupProbe:
      exec: {command: [test, -f, /tmp/up]}
      failureThreshold: 30
      terminationGracePeriodSeconds: 3
    lifecycle:
      postStart: {exec: {command: [touch, /tmp/started]}}
      preStop: {sleep: {seconds: 2}}
    securityContext:
      runAsGroup: 100
      capabilities: {drop: [ALL], add: [NET_BIND_SERVICE, CAP_KILL]}
";

    #[test]
    fn probes_hooks_and_security_context_map_with_the_kubelet_defaults() {
        let (spec, _) = parse(PROBED, 1.0).unwrap();
        let c = &spec.containers[0];
        let live = c.probes.liveness.as_ref().unwrap();
        assert_eq!(
            live.action,
            Action::HttpGet {
                host: IpAddr::from([127, 0, 0, 1]),
                port: 8080,
                path: "/healthz".into(),
                headers: vec![("X-Probe".into(), "1".into())],
            }
        );
        assert_eq!(live.period, Duration::from_secs(2));
        assert_eq!(live.initial_delay, Duration::ZERO);
        assert_eq!(live.timeout, Duration::from_secs(1));
        assert_eq!((live.success_threshold, live.failure_threshold), (1, 3));
        let ready = c.probes.readiness.as_ref().unwrap();
        assert_eq!(ready.success_threshold, 2);
        assert_eq!(ready.period, Duration::from_secs(10));
        let startup = c.probes.startup.as_ref().unwrap();
        assert_eq!(startup.failure_threshold, 30);
        assert_eq!(startup.grace, Some(Duration::from_secs(3)));
        assert_eq!(
            c.post_start,
            Some(Action::Exec(vec!["touch".into(), "/tmp/started".into()]))
        );
        assert_eq!(c.pre_stop, Some(Action::Sleep(Duration::from_secs(2))));
        // The pod's runAsUser, the container's own runAsGroup.
        assert_eq!((c.user, c.group), (Some(1000), Some(100)));
        assert_eq!(c.capabilities, Some(1 << 10 | 1 << 5));
    }

    #[test]
    fn the_manifest_written_back_describes_the_same_pod() {
        let (spec, _) = parse(PROBED, 1.0).unwrap();
        let written = serde_json::to_string(&crate::kube::encode::pod_manifest(&spec)).unwrap();
        assert_eq!(parse(&written, 1.0).unwrap().0, spec, "{written}");
    }

    #[test]
    fn dropping_one_capability_keeps_the_other_defaults() {
        let doc = PROBED.replace(
            "drop: [ALL], add: [NET_BIND_SERVICE, CAP_KILL]",
            "drop: [NET_RAW]",
        );
        let set = parse(&doc, 1.0).unwrap().0.containers[0]
            .capabilities
            .unwrap();
        assert_eq!(set, crate::sys::DEFAULT_CAPS & !(1 << 13));
    }

    #[test]
    fn invalid_probes_hooks_and_security_contexts_name_their_path() {
        let c = "spec.containers[0]";
        let cases: &[(&str, &str, String)] = &[
            ("periodSeconds: 2", "periodSeconds: 0", format!("{c}.livenessProbe.periodSeconds: must be at least 1")),
            ("failureThreshold: 30", "failureThreshold: 0", format!("{c}.startupProbe.failureThreshold: must be at least 1")),
            ("successThreshold: 2", "timeoutSeconds: 0", format!("{c}.readinessProbe.timeoutSeconds: must be at least 1")),
            ("periodSeconds: 2", "successThreshold: 2", format!("{c}.livenessProbe.successThreshold: must be 1 for liveness and startup probes")),
            ("periodSeconds: 2", "initialDelaySeconds: -1", format!("{c}.livenessProbe.initialDelaySeconds: must be at least 0")),
            ("port: http,", "port: https,", format!("{c}.livenessProbe.httpGet.port: no port named \"https\" among the container's ports")),
            ("tcpSocket: {port: 8080}", "tcpSocket: {port: 70000}", format!("{c}.readinessProbe.tcpSocket.port: must be between 1 and 65535, got 70000")),
            ("tcpSocket: {port: 8080}", "tcpSocket: {port: 80, host: db.local}", format!("{c}.readinessProbe.tcpSocket.host: \"db.local\" is not an IP address (a launcher pod has no DNS)")),
            ("tcpSocket: {port: 8080}", "grpc: {port: 9000}", format!("{c}.readinessProbe.grpc: not supported by launcher")),
            ("tcpSocket: {port: 8080}", "tcpSocket: {port: 1}\n      exec: {command: [x]}", format!("{c}.readinessProbe: must specify exactly one handler (exec, httpGet, tcpSocket or sleep)")),
            ("httpGet: {path: healthz,", "httpGet: {scheme: HTTPS, path: healthz,", format!("{c}.livenessProbe.httpGet.scheme: unsupported value \"HTTPS\": only HTTP")),
            ("exec: {command: [test, -f, /tmp/up]}", "exec: {command: []}", format!("{c}.startupProbe.exec.command: required")),
            ("preStop: {sleep: {seconds: 2}}", "preStop: {tcpSocket: {port: 1}}", format!("{c}.lifecycle.preStop.tcpSocket: not supported by launcher")),
            ("preStop: {sleep: {seconds: 2}}", "preStop: {sleep: {seconds: -1}}", format!("{c}.lifecycle.preStop.sleep.seconds: must be at least 0")),
            ("add: [NET_BIND_SERVICE, CAP_KILL]", "add: [FLY]", format!("{c}.securityContext.capabilities.add[0]: unknown capability \"FLY\"")),
            ("runAsGroup: 100", "runAsGroup: -1", format!("{c}.securityContext.runAsGroup: must be between 0 and 4294967294")),
            ("runAsGroup: 100", "runAsGroup: 100\n      runAsNonRoot: true\n      runAsUser: 0", format!("{c}.securityContext.runAsNonRoot: the container would run as root: set runAsUser to a non-zero user")),
            ("runAsGroup: 100", "seccompProfile: {type: RuntimeDefault}", format!("{c}.securityContext.seccompProfile: not supported by launcher")),
        ];
        for (from, to, want) in cases {
            assert!(PROBED.contains(from), "{from}");
            assert_eq!(&err(&PROBED.replacen(from, to, 1)), want, "{to}");
        }
        let init = PROBED.replace("  containers:\n", "  initContainers:\n  - name: setup\n    command: [x]\n    readinessProbe: {exec: {command: [x]}}\n  containers:\n");
        assert_eq!(
            err(&init),
            "spec.initContainers[0].readinessProbe: may not be set for init containers"
        );
    }

    #[test]
    fn errors_name_the_field_path() {
        let base = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: a\n    command: [sleep, '1']\n";
        assert_eq!(
            err(&format!(
                "{base}  - name: b\n    command: [x]\n    livenessProbe:\n      exec: {{command: [x]}}\n      periodSeconds: 0\n"
            )),
            "spec.containers[1].livenessProbe.periodSeconds: must be at least 1"
        );
        assert_eq!(
            err(&format!("{base}    env:\n    - name: X\n      valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}\n")),
            "spec.containers[0].env[0].valueFrom: not supported by launcher"
        );
        assert_eq!(
            err(&format!("{base}  volumes: []\n")),
            "spec.volumes: not supported by launcher"
        );
        assert_eq!(
            err(&format!("{base}    resources:\n      limits: {{memory: 12Zi}}\n")),
            "spec.containers[0].resources.limits.memory: invalid memory quantity \"12Zi\" (examples: 128Mi, 1G, 129e6, 512974848)"
        );
        assert_eq!(err(&format!("{base}  restartPolicy: Sometimes\n")), "spec.restartPolicy: unsupported value \"Sometimes\": must be Always, OnFailure or Never");
        assert!(err(&base.replace("command: [sleep, '1']", "command: 5"))
            .starts_with("spec.containers[0].command: invalid type"));
        assert!(err(&base.replace("command: [sleep, '1']", "args: [x]"))
            .starts_with("spec.containers[0].command: required"));
        assert!(err(&base.replace("name: p", "name: ../x"))
            .starts_with("metadata.name: invalid pod name"));
        assert!(err(&base.replace("kind: Pod", "kind: Deployment"))
            .starts_with("kind: expected apiVersion v1 and kind Pod"));
        assert!(err(&format!("{base}  - name: a\n    command: [x]\n"))
            .contains("duplicate container name"));
    }
}
