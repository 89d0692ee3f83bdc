//! Encoding a pod as a Kubernetes Pod object: the manifest `up --dry-run` prints and
//! `up -f` reads back, and the object `status` and `ps -o json` print.

use crate::quantity::{Memory, MilliCpu};
use crate::spec::{Action, Limits, PodSpec, Probe, ProbeKind};
use crate::state::PodRecord;
use crate::status::{Phase, PodStatus};
use serde_json::{json, Value};

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
    let status = match status {
        Some(s) if supervisor_alive || s.phase.is_terminal() => Some(s.clone()),
        // Nobody vouches for what the file says: the pod's state is Unknown and
        // none of its containers counts as ready (as for a pod on a lost node).
        Some(s) => Some(unverified(s.clone())),
        None if supervisor_alive => None,
        None => Some(unverified(PodStatus {
            phase: Phase::Unknown,
            reason: None,
            message: None,
            conditions: Vec::new(),
            start_time: rec.created.clone(),
            init_container_statuses: Vec::new(),
            container_statuses: Vec::new(),
        })),
    };
    let status_value = match status {
        Some(s) => serde_json::to_value(s).unwrap_or(Value::Null),
        None => json!({"phase": "Pending", "conditions": [], "containerStatuses": []}),
    };
    pod["status"] = status_value;
    pod
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
