//! Pod and container status with Kubernetes' field names and rules, and the Pod
//! object that `launcher status -o json` prints.
//!
//! Phase (Kubernetes' definitions): Pending until every container has started;
//! Running while at least one runs or will restart; Succeeded when all exited 0 and
//! none will restart; Failed when all are terminated and at least one failed;
//! Unknown when the supervisor is gone and the state cannot be verified.

use crate::cli::RestartPolicy;
use crate::quantity::{Memory, MilliCpu};
use crate::spec::{Action, Limits, PodSpec, Probe, ProbeKind};
use crate::state::PodRecord;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::SystemTime;

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Waiting {
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Running {
    pub started_at: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Terminated {
    pub exit_code: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub started_at: String,
    pub finished_at: String,
}

/// Exactly one of the three is set, as in Kubernetes' ContainerState.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Waiting>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<Running>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminated: Option<Terminated>,
}

impl ContainerState {
    pub fn waiting(reason: &str, message: Option<String>) -> Self {
        ContainerState {
            waiting: Some(Waiting {
                reason: reason.into(),
                message,
            }),
            ..Default::default()
        }
    }
    pub fn running(started_at: String) -> Self {
        ContainerState {
            running: Some(Running { started_at }),
            ..Default::default()
        }
    }
    pub fn terminated(t: Terminated) -> Self {
        ContainerState {
            terminated: Some(t),
            ..Default::default()
        }
    }
    pub fn is_empty(&self) -> bool {
        *self == ContainerState::default()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    pub name: String,
    pub ready: bool,
    pub started: bool,
    pub restart_count: u32,
    pub state: ContainerState,
    #[serde(default, skip_serializing_if = "ContainerState::is_empty")]
    pub last_state: ContainerState,
    pub image: String,
    pub image_id: String,
    /// Host pid while running (a launcher extension, shown in annotations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub last_transition_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    pub phase: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub conditions: Vec<Condition>,
    pub start_time: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_container_statuses: Vec<ContainerStatus>,
    pub container_statuses: Vec<ContainerStatus>,
}

/// Will a container that exited with `code` be started again under `policy`?
pub fn restarts(policy: RestartPolicy, code: i32) -> bool {
    match policy {
        RestartPolicy::Always => true,
        RestartPolicy::OnFailure => code != 0,
        RestartPolicy::Never => false,
    }
}

pub fn phase(policy: RestartPolicy, containers: &[ContainerStatus]) -> &'static str {
    let never_started = |c: &ContainerStatus| {
        c.restart_count == 0 && c.state.running.is_none() && c.state.terminated.is_none()
    };
    if containers.iter().any(never_started) {
        return "Pending";
    }
    let finished: Vec<&Terminated> = containers
        .iter()
        .filter_map(|c| {
            c.state
                .terminated
                .as_ref()
                .filter(|t| !restarts(policy, t.exit_code))
        })
        .collect();
    if finished.len() < containers.len() {
        return "Running";
    }
    if finished.iter().all(|t| t.exit_code == 0) {
        "Succeeded"
    } else {
        "Failed"
    }
}

/// Sets condition `kind` to `value`, moving lastTransitionTime only when it changes.
pub fn set_condition(conditions: &mut Vec<Condition>, kind: &str, value: bool) {
    let status = if value { "True" } else { "False" };
    match conditions.iter_mut().find(|c| c.kind == kind) {
        Some(c) if c.status == status => {}
        Some(c) => {
            c.status = status.into();
            c.last_transition_time = now_rfc3339();
        }
        None => conditions.push(Condition {
            kind: kind.into(),
            status: status.into(),
            last_transition_time: now_rfc3339(),
            reason: None,
            message: None,
        }),
    }
}

/// Sets condition `kind` to True, or to False with the kubelet's reason naming the
/// containers in the way: `containers with unready status: [a b]`.
pub fn set_condition_for(
    conditions: &mut Vec<Condition>,
    kind: &str,
    reason: &str,
    what: &str,
    blocking: &[&str],
) {
    set_condition(conditions, kind, blocking.is_empty());
    if let Some(c) = conditions.iter_mut().find(|c| c.kind == kind) {
        (c.reason, c.message) = match blocking {
            [] => (None, None),
            names => (
                Some(reason.into()),
                Some(format!(
                    "containers with {what} status: [{}]",
                    names.join(" ")
                )),
            ),
        };
    }
}

/// `{"limits": ..., "requests": ...}` in Kubernetes notation, or None when unset.
fn resources(l: &Limits) -> Option<Value> {
    let mut limits = serde_json::Map::new();
    if let Some(m) = l.memory {
        limits.insert("memory".into(), json!(Memory(m).to_string()));
    }
    if let Some(c) = l.cpu_milli {
        limits.insert("cpu".into(), json!(MilliCpu(c).to_string()));
    }
    let mut requests = serde_json::Map::new();
    if let Some(c) = l.cpu_request_milli {
        requests.insert("cpu".into(), json!(MilliCpu(c).to_string()));
    }
    let mut r = serde_json::Map::new();
    if !limits.is_empty() {
        r.insert("limits".into(), Value::Object(limits));
    }
    if !requests.is_empty() {
        r.insert("requests".into(), Value::Object(requests));
    }
    (!r.is_empty()).then_some(Value::Object(r))
}

/// The Pod manifest of a pod: what `up --dry-run` prints and `up -f` reads back.
/// Pod-wide limits from the command line become pod-level `spec.resources`
/// (Kubernetes >= 1.32); `--pids` has no Pod field and travels as an annotation.
pub fn pod_manifest(spec: &PodSpec) -> Value {
    let render = |c: &crate::spec::ContainerSpec| {
        // Kubernetes requires an image; processes here come from the host.
        let mut v = json!({"name": c.name, "image": "host", "command": c.command});
        let env: Vec<Value> = spec
            .env_of(c)
            .iter()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect();
        if !env.is_empty() {
            v["env"] = json!(env);
        }
        if let Some(dir) = &c.working_dir {
            v["workingDir"] = json!(dir);
        }
        if let Some(r) = resources(&c.limits) {
            v["resources"] = r;
        }
        for (kind, probe) in c.probes.iter() {
            let key = match kind {
                ProbeKind::Startup => "startupProbe",
                ProbeKind::Liveness => "livenessProbe",
                ProbeKind::Readiness => "readinessProbe",
            };
            v[key] = probe_json(probe);
        }
        let mut lifecycle = json!({});
        if let Some(a) = &c.post_start {
            lifecycle["postStart"] = action_json(a);
        }
        if let Some(a) = &c.pre_stop {
            lifecycle["preStop"] = action_json(a);
        }
        if lifecycle != json!({}) {
            v["lifecycle"] = lifecycle;
        }
        let mut sc = json!({});
        if spec.privileged {
            sc["privileged"] = json!(true);
        }
        if let Some(uid) = c.user {
            sc["runAsUser"] = json!(uid);
        }
        if let Some(gid) = c.group {
            sc["runAsGroup"] = json!(gid);
        }
        if let Some(set) = c.capabilities {
            let add: Vec<String> = caps::all()
                .into_iter()
                .filter(|cap| set & (1 << cap.index()) != 0)
                .map(|cap| cap.to_string().trim_start_matches("CAP_").to_string())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            sc["capabilities"] = json!({"drop": ["ALL"], "add": add});
        }
        if sc != json!({}) {
            v["securityContext"] = sc;
        }
        v
    };
    let containers: Vec<Value> = spec.containers.iter().map(render).collect();
    let mut pod_spec = json!({
        "hostname": spec.hostname,
        "restartPolicy": format!("{:?}", spec.restart),
        "terminationGracePeriodSeconds": spec.grace.as_secs(),
        "shareProcessNamespace": true,
        "containers": containers,
    });
    if let Some(d) = spec.active_deadline {
        pod_spec["activeDeadlineSeconds"] = json!(d.as_secs());
    }
    if !spec.init_containers.is_empty() {
        pod_spec["initContainers"] =
            Value::Array(spec.init_containers.iter().map(render).collect());
    }
    if spec.all_containers().all(|c| !c.limits.any()) {
        if let Some(r) = resources(&spec.limits) {
            pod_spec["resources"] = r;
        }
    }
    let mut metadata = json!({"name": spec.name});
    if let Some(p) = spec.limits.pids {
        metadata["annotations"] = json!({ PIDS_ANNOTATION: p.to_string() });
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_spec})
}

/// A probe's or hook's handler as the Pod API spells it.
fn action_json(a: &Action) -> Value {
    let host = |h: &std::net::IpAddr| (!h.is_loopback()).then(|| h.to_string());
    match a {
        Action::Exec(argv) => json!({"exec": {"command": argv}}),
        Action::HttpGet {
            host: h,
            port,
            path,
            headers,
        } => {
            let mut v = json!({"port": port, "path": path});
            if let Some(h) = host(h) {
                v["host"] = json!(h);
            }
            if !headers.is_empty() {
                let list: Vec<Value> = headers
                    .iter()
                    .map(|(k, v)| json!({"name": k, "value": v}))
                    .collect();
                v["httpHeaders"] = json!(list);
            }
            json!({ "httpGet": v })
        }
        Action::TcpSocket { host: h, port } => {
            let mut v = json!({ "port": port });
            if let Some(h) = host(h) {
                v["host"] = json!(h);
            }
            json!({ "tcpSocket": v })
        }
        Action::Sleep(d) => json!({"sleep": {"seconds": d.as_secs()}}),
    }
}

fn probe_json(p: &Probe) -> Value {
    let mut v = action_json(&p.action);
    v["initialDelaySeconds"] = json!(p.initial_delay.as_secs());
    v["periodSeconds"] = json!(p.period.as_secs());
    v["timeoutSeconds"] = json!(p.timeout.as_secs());
    v["successThreshold"] = json!(p.success_threshold);
    v["failureThreshold"] = json!(p.failure_threshold);
    if let Some(g) = p.grace {
        v["terminationGracePeriodSeconds"] = json!(g.as_secs());
    }
    v
}

pub const PIDS_ANNOTATION: &str = "launcher/pids-max";

/// The Pod object: apiVersion v1, kind Pod, metadata, spec, status.
pub fn pod_object(rec: &PodRecord, status: Option<&PodStatus>, supervisor_alive: bool) -> Value {
    let mut pod = pod_manifest(&rec.spec);
    let meta = &mut pod["metadata"];
    meta["namespace"] = json!("default");
    meta["uid"] = json!(rec.uid);
    meta["creationTimestamp"] = json!(rec.created);
    if !meta["annotations"].is_object() {
        meta["annotations"] = json!({});
    }
    let annotations = &mut meta["annotations"];
    if let Some(p) = rec.pause {
        annotations["launcher/pause-pid"] = json!(p.pid.to_string());
    }
    annotations["launcher/cgroup"] = json!(rec.cgroup.display().to_string());
    if let Some(s) = rec.supervisor {
        annotations["launcher/supervisor-pid"] = json!(s.pid.to_string());
    }
    let mut status_value = match status {
        Some(s) => serde_json::to_value(s).unwrap_or(Value::Null),
        None => json!({"phase": "Pending", "conditions": [], "containerStatuses": []}),
    };
    let terminal = status.is_some_and(|s| s.phase == "Succeeded" || s.phase == "Failed");
    if !supervisor_alive && !terminal {
        status_value["phase"] = json!("Unknown");
        status_value["reason"] = json!("SupervisorGone");
        status_value["message"] =
            json!("the pod's supervisor is not running; its state cannot be verified");
    }
    pod["status"] = status_value;
    pod
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctr(state: ContainerState, restarts: u32) -> ContainerStatus {
        ContainerStatus {
            name: "c".into(),
            ready: false,
            started: false,
            restart_count: restarts,
            state,
            last_state: ContainerState::default(),
            image: "host".into(),
            image_id: String::new(),
            pid: None,
        }
    }

    fn exited(code: i32) -> ContainerState {
        ContainerState::terminated(Terminated {
            exit_code: code,
            reason: "x".into(),
            ..Default::default()
        })
    }

    #[test]
    fn phases_follow_kubernetes() {
        use RestartPolicy::*;
        let waiting = ctr(ContainerState::waiting("ContainerCreating", None), 0);
        let running = ctr(ContainerState::running("t".into()), 0);
        assert_eq!(
            phase(Always, &[waiting.clone(), running.clone()]),
            "Pending"
        );
        assert_eq!(phase(Always, std::slice::from_ref(&running)), "Running");
        assert_eq!(
            phase(Never, &[ctr(exited(0), 0), ctr(exited(0), 0)]),
            "Succeeded"
        );
        assert_eq!(
            phase(Never, &[ctr(exited(0), 0), ctr(exited(1), 0)]),
            "Failed"
        );
        assert_eq!(
            phase(Never, &[ctr(exited(0), 0), running.clone()]),
            "Running"
        );
        assert_eq!(phase(OnFailure, &[ctr(exited(0), 0)]), "Succeeded");
        assert_eq!(phase(OnFailure, &[ctr(exited(2), 1)]), "Running");
        assert_eq!(phase(Always, &[ctr(exited(0), 3)]), "Running");
        // Crash-looping while waiting out its back-off is still Running.
        assert_eq!(
            phase(
                Always,
                &[ctr(ContainerState::waiting("CrashLoopBackOff", None), 2)]
            ),
            "Running"
        );
    }

    #[test]
    fn condition_time_moves_only_on_change() {
        let mut c = Vec::new();
        set_condition(&mut c, "Ready", false);
        c[0].last_transition_time = "then".into();
        set_condition(&mut c, "Ready", false);
        assert_eq!(c[0].last_transition_time, "then");
        set_condition(&mut c, "Ready", true);
        assert_ne!(c[0].last_transition_time, "then");
        assert_eq!(c[0].status, "True");
    }
}
