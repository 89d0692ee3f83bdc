//! Kubernetes Pod manifests (`launcher up -f pod.yaml`), YAML or JSON.
//!
//! The document is read twice: as a typed `k8s_openapi` Pod, whose deserializer
//! reports type errors with their field path, and as a plain value checked against the
//! fields this runtime supports. k8s-openapi drops fields it does not know, so without
//! that check a typo or an unsupported feature (a probe, a volume) would be ignored
//! silently; here it is an error naming its path. Fields that change nothing on one
//! machine (image, ports, labels) are accepted; `image` is noted, since processes run
//! from the host's file system.

use crate::cli::RestartPolicy;
use crate::quantity::{Memory, MilliCpu};
use crate::spec::{self, ContainerSpec, Limits, PodSpec};
use k8s_openapi::api::core::v1::{Container, Pod, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::Value;
use std::collections::BTreeMap;
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
    ("securityContext", Obj(&[("privileged", S)])),
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
    let mut containers: Vec<ContainerSpec> = Vec::new();
    let mut pod_limits = Limits::default();
    for (i, c) in ps.containers.iter().enumerate() {
        let path = format!("spec.containers[{i}]");
        let spec = container(c, &path)?;
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
        let spec = container(c, &path)?;
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
        .and_then(|a| a.get(crate::status::PIDS_ANNOTATION))
    {
        let at = format!("metadata.annotations[{:?}]", crate::status::PIDS_ANNOTATION);
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
    let grace = match ps.termination_grace_period_seconds {
        None => Duration::from_secs(30),
        Some(s) if s >= 0 => Duration::from_secs(s as u64),
        Some(_) => {
            return Err(field(
                "spec.terminationGracePeriodSeconds",
                "must be at least 0",
            ))
        }
    };
    let active_deadline = match ps.active_deadline_seconds {
        None => None,
        Some(s) if s >= 1 => Some(Duration::from_secs(s as u64)),
        Some(_) => return Err(field("spec.activeDeadlineSeconds", "must be at least 1")),
    };
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

fn container(c: &Container, path: &str) -> Result<ContainerSpec, ManifestError> {
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
    let mut env = Vec::new();
    for (j, e) in c.env.iter().flatten().enumerate() {
        let ok = !e.name.is_empty() && !e.name.contains('=');
        if !ok {
            return Err(field(
                format!("{path}.env[{j}].name"),
                "must be a non-empty name without '='",
            ));
        }
        env.push((e.name.clone(), e.value.clone().unwrap_or_default()));
    }
    let limits = match &c.resources {
        Some(res) => resource_limits(res, path)?,
        None => Limits::default(),
    };
    if let Some(dir) = &c.working_dir {
        if !dir.starts_with('/') {
            return Err(field(
                format!("{path}.workingDir"),
                "must be an absolute path",
            ));
        }
    }
    Ok(ContainerSpec {
        name: c.name.clone(),
        command,
        env,
        working_dir: c.working_dir.clone(),
        limits,
    })
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

    #[test]
    fn errors_name_the_field_path() {
        let base = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: a\n    command: [sleep, '1']\n";
        assert_eq!(
            err(&format!(
                "{base}  - name: b\n    command: [x]\n    livenessProbe:\n      periodSeconds: 0\n"
            )),
            "spec.containers[1].livenessProbe: not supported by launcher"
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
