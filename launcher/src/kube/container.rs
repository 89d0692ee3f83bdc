//! A container: name, command and args, env, workingDir, image, resources, probes,
//! lifecycle and securityContext.

use super::security::PodSecurity;
use super::{field, ManifestError};
use crate::spec::{self, ContainerSpec, Limits, PodSpec, ProbeKind, Probes, TerminationMessage};
use k8s_openapi::api::core::v1::{Container, Lifecycle, LifecycleHandler, Probe as K8sProbe};

/// Container `c`, found at `path`.
pub fn decode(
    c: &Container,
    path: &str,
    pod: &PodSecurity,
    init: bool,
) -> Result<ContainerSpec, ManifestError> {
    spec::validate_name("container name", &c.name)
        .map_err(|e| field(format!("{path}.name"), e.to_string()))?;
    // With no image, there is no entrypoint: args alone are the command line.
    let mut command = c.command.clone().unwrap_or_default();
    command.extend(c.args.clone().unwrap_or_default());
    if command.is_empty() {
        return Err(field(
            format!("{path}.command"),
            "required (or args): there is no image entrypoint, processes run from the host's file system",
        ));
    }
    for (j, arg) in command.iter().enumerate() {
        let key = match c.command.as_ref().map_or(0, Vec::len) {
            n if j < n => format!("command[{j}]"),
            n => format!("args[{}]", j - n),
        };
        spec::nul_free(arg).map_err(|why| field(format!("{path}.{key}"), why))?;
    }
    let (env, env_from) = super::env::decode(c, path)?;
    let limits = match &c.resources {
        Some(res) => super::resources::decode(res, path)?,
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
            .map(|p| super::probe::decode(p, &format!("{path}.{key}"), ports, kind))
            .transpose()
    };
    let probes = Probes {
        startup: probe(&c.startup_probe, "startupProbe", ProbeKind::Startup)?,
        liveness: probe(&c.liveness_probe, "livenessProbe", ProbeKind::Liveness)?,
        readiness: probe(&c.readiness_probe, "readinessProbe", ProbeKind::Readiness)?,
    };
    let hook = |h: Option<&LifecycleHandler>, key: &str| {
        h.map(|h| super::probe::decode_hook(h, &format!("{path}.lifecycle.{key}"), ports))
            .transpose()
    };
    let lifecycle = c.lifecycle.as_ref();
    let post_start = hook(lifecycle.and_then(|l| l.post_start.as_ref()), "postStart")?;
    let pre_stop = hook(lifecycle.and_then(|l| l.pre_stop.as_ref()), "preStop")?;
    let sidecar = match (c.restart_policy.as_deref(), init) {
        (None, _) => false,
        (Some("Always"), true) => true,
        (Some(other), true) => {
            return Err(field(
                format!("{path}.restartPolicy"),
                format!("unsupported value {other:?}: only \"Always\" (a sidecar container)"),
            ))
        }
        (Some(_), false) => {
            return Err(field(
                format!("{path}.restartPolicy"),
                "may be set only on init containers (a sidecar container)",
            ))
        }
    };
    if init && !sidecar {
        // Kubernetes refuses these for init containers: they run to completion.
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
    let id = super::security::decode(c.security_context.as_ref(), path, pod)?;
    let termination_message = termination_message(c, path)?;
    Ok(ContainerSpec {
        name: c.name.clone(),
        command,
        env,
        env_from,
        working_dir: c.working_dir.clone(),
        limits,
        probes,
        post_start,
        pre_stop,
        user: id.user,
        group: id.group,
        capabilities: id.capabilities,
        read_only_root: id.read_only_root,
        privilege_escalation: id.privilege_escalation,
        seccomp: id.seccomp,
        sidecar,
        volume_mounts: Vec::new(),
        termination_message,
        stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        tty: c.tty.unwrap_or(false),
    })
}

fn termination_message(c: &Container, path: &str) -> Result<TerminationMessage, ManifestError> {
    let at = format!("{path}.terminationMessagePath");
    let file = match c.termination_message_path.as_deref() {
        None | Some("") => None,
        Some(p) => {
            spec::nul_free(p).map_err(|why| field(&at, why))?;
            if !p.starts_with('/') || spec::check_sub_path(p.trim_start_matches('/')).is_err() {
                return Err(field(at, "must be an absolute path without \"..\""));
            }
            (p != TerminationMessage::DEFAULT_PATH).then(|| p.to_string())
        }
    };
    let fallback_to_logs = match c.termination_message_policy.as_deref() {
        None | Some("File") => false,
        Some("FallbackToLogsOnError") => true,
        Some(other) => {
            return Err(field(
                format!("{path}.terminationMessagePolicy"),
                format!("Unsupported value: {other:?}: supported values: \"File\", \"FallbackToLogsOnError\""),
            ))
        }
    };
    Ok(TerminationMessage {
        path: file,
        fallback_to_logs,
    })
}

/// Container `c` of `pod` as the Pod API spells it.
pub fn encode(pod: &PodSpec, c: &ContainerSpec) -> Container {
    let env = super::env::encode(&pod.env_of(c));
    let env_from = super::env::encode_from(&c.env_from);
    let probe = |kind| {
        c.probes
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, p)| super::probe::encode(p))
    };
    let lifecycle = Lifecycle {
        post_start: c.post_start.as_ref().map(super::probe::encode_hook),
        pre_stop: c.pre_stop.as_ref().map(super::probe::encode_hook),
        ..Default::default()
    };
    Container {
        name: c.name.clone(),
        // Kubernetes requires an image; processes here come from the host.
        image: Some("host".into()),
        command: Some(c.command.clone()),
        env: (!env.is_empty()).then_some(env),
        env_from: (!env_from.is_empty()).then_some(env_from),
        working_dir: c.working_dir.clone(),
        resources: super::resources::encode(&c.limits),
        startup_probe: probe(ProbeKind::Startup),
        liveness_probe: probe(ProbeKind::Liveness),
        readiness_probe: probe(ProbeKind::Readiness),
        lifecycle: (lifecycle != Lifecycle::default()).then_some(lifecycle),
        security_context: super::security::encode(c, pod.privileged),
        restart_policy: c.sidecar.then(|| "Always".into()),
        termination_message_path: c.termination_message.path.clone(),
        termination_message_policy: (c.termination_message.fallback_to_logs)
            .then(|| "FallbackToLogsOnError".into()),
        stdin: c.stdin.then_some(true),
        stdin_once: c.stdin_once.then_some(true),
        tty: c.tty.then_some(true),
        volume_mounts: (!c.volume_mounts.is_empty()).then(|| {
            c.volume_mounts
                .iter()
                .map(super::volume::encode_mount)
                .collect()
        }),
        ..Default::default()
    }
}
