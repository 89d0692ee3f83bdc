//! Volumes and volumeMounts: `emptyDir` (on disk or `medium: Memory`) and `hostPath`
//! with its types; mounts by name with `readOnly`, `subPath` and `subPathExpr`.
//! The checks are the API server's (names, paths, `..`), so that a manifest refused
//! here is one a cluster refuses too.

use super::{field, ManifestError};
use crate::spec::{self, HostPathType, Volume, VolumeMount, VolumeSource};
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, HostPathVolumeSource, Volume as K8sVolume,
    VolumeMount as K8sMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

pub fn decode_volumes(volumes: &[K8sVolume]) -> Result<Vec<Volume>, ManifestError> {
    let mut out: Vec<Volume> = Vec::new();
    for (i, v) in volumes.iter().enumerate() {
        let path = format!("spec.volumes[{i}]");
        spec::validate_name("volume name", &v.name)
            .map_err(|e| field(format!("{path}.name"), e.to_string()))?;
        if out.iter().any(|o| o.name == v.name) {
            return Err(field(
                format!("{path}.name"),
                format!("duplicate volume name {:?}", v.name),
            ));
        }
        let source = match (&v.empty_dir, &v.host_path) {
            (Some(_), Some(_)) => {
                return Err(field(
                    path,
                    "may not specify more than one volume source (emptyDir, hostPath)",
                ))
            }
            (Some(e), None) => empty_dir(e, &format!("{path}.emptyDir"))?,
            (None, Some(h)) => host_path(h, &format!("{path}.hostPath"))?,
            // The API server makes a volume without a source an emptyDir.
            (None, None) => VolumeSource::EmptyDir {
                memory: false,
                size_limit: None,
            },
        };
        out.push(Volume {
            name: v.name.clone(),
            source,
        });
    }
    Ok(out)
}

fn empty_dir(e: &EmptyDirVolumeSource, path: &str) -> Result<VolumeSource, ManifestError> {
    let memory = match e.medium.as_deref() {
        None | Some("") => false,
        Some("Memory") => true,
        Some(other) => {
            return Err(field(
                format!("{path}.medium"),
                format!("unsupported value {other:?}: must be \"\" or \"Memory\""),
            ))
        }
    };
    let size_limit = match &e.size_limit {
        None => None,
        Some(Quantity(q)) => Some(
            q.parse::<crate::quantity::Memory>()
                .map_err(|err| field(format!("{path}.sizeLimit"), err.to_string()))?
                .0,
        ),
    };
    if size_limit == Some(0) {
        return Err(field(
            format!("{path}.sizeLimit"),
            "must be greater than zero",
        ));
    }
    Ok(VolumeSource::EmptyDir { memory, size_limit })
}

fn host_path(h: &HostPathVolumeSource, path: &str) -> Result<VolumeSource, ManifestError> {
    spec::nul_free(&h.path).map_err(|why| field(format!("{path}.path"), why))?;
    if !h.path.starts_with('/') {
        return Err(field(format!("{path}.path"), "must be an absolute path"));
    }
    if h.path.split('/').any(|c| c == "..") {
        return Err(field(format!("{path}.path"), "must not contain '..'"));
    }
    let name = h.type_.as_deref().unwrap_or("");
    let kind = HostPathType::ALL
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let all: Vec<String> = HostPathType::ALL
                .iter()
                .map(|(n, _)| format!("{n:?}"))
                .collect();
            field(
                format!("{path}.type"),
                format!(
                    "unsupported value {name:?}: must be one of {}",
                    all.join(", ")
                ),
            )
        })?;
    Ok(VolumeSource::HostPath {
        path: h.path.clone(),
        kind,
    })
}

/// Container `c`'s volumeMounts (at `path`), each naming one of `volumes`.
pub fn decode_mounts(
    c: &Container,
    path: &str,
    volumes: &[Volume],
    privileged: bool,
) -> Result<Vec<VolumeMount>, ManifestError> {
    let mut out: Vec<VolumeMount> = Vec::new();
    for (j, m) in c.volume_mounts.iter().flatten().enumerate() {
        let at = format!("{path}.volumeMounts[{j}]");
        if !volumes.iter().any(|v| v.name == m.name) {
            return Err(field(
                format!("{at}.name"),
                format!("not found: no volume named {:?} in spec.volumes", m.name),
            ));
        }
        spec::nul_free(&m.mount_path).map_err(|why| field(format!("{at}.mountPath"), why))?;
        if !m.mount_path.starts_with('/') {
            return Err(field(
                format!("{at}.mountPath"),
                format!("{:?} must be an absolute path", m.mount_path),
            ));
        }
        if m.mount_path.split('/').any(|c| c == "..") {
            return Err(field(format!("{at}.mountPath"), "must not contain '..'"));
        }
        let clean = normalize(&m.mount_path);
        if clean == "/" {
            return Err(field(
                format!("{at}.mountPath"),
                "may not be /: the pod's containers run from the host's file system",
            ));
        }
        if out.iter().any(|o| o.mount_path == clean) {
            return Err(field(
                format!("{at}.mountPath"),
                format!("{clean:?}: must be unique"),
            ));
        }
        if m.sub_path.as_deref().is_some_and(|s| !s.is_empty()) && m.sub_path_expr.is_some() {
            return Err(field(
                format!("{at}.subPathExpr"),
                "subPathExpr and subPath are mutually exclusive",
            ));
        }
        for (key, value) in [("subPath", &m.sub_path), ("subPathExpr", &m.sub_path_expr)] {
            if let Some(sub) = value {
                check_sub_path(sub).map_err(|why| field(format!("{at}.{key}"), why))?;
            }
        }
        match m.mount_propagation.as_deref() {
            None | Some("None") => {}
            Some("Bidirectional") if !privileged => {
                return Err(field(
                    format!("{at}.mountPropagation"),
                    "Bidirectional mount propagation is available only to privileged containers",
                ))
            }
            Some(other @ ("HostToContainer" | "Bidirectional")) => {
                return Err(field(
                    format!("{at}.mountPropagation"),
                    format!(
                        "{other:?} is not supported by launcher: a pod's mounts are private (None)"
                    ),
                ))
            }
            Some(other) => {
                return Err(field(
                    format!("{at}.mountPropagation"),
                    format!(
                    "unsupported value {other:?}: must be None, HostToContainer or Bidirectional"
                ),
                ))
            }
        }
        out.push(VolumeMount {
            name: m.name.clone(),
            mount_path: clean,
            read_only: m.read_only.unwrap_or(false),
            sub_path: m.sub_path.clone().filter(|s| !s.is_empty()),
            sub_path_expr: m.sub_path_expr.clone().filter(|s| !s.is_empty()),
        });
    }
    Ok(out)
}

/// A subPath as the API server takes it: relative, without `..`.
pub fn check_sub_path(sub: &str) -> Result<(), String> {
    spec::nul_free(sub)?;
    if sub.starts_with('/') {
        return Err(format!("{sub:?} must be a relative path"));
    }
    if sub.split('/').any(|c| c == "..") {
        return Err(format!("{sub:?} must not contain '..'"));
    }
    Ok(())
}

/// `/a//b/` as `/a/b`.
fn normalize(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

pub fn encode_volume(v: &Volume) -> K8sVolume {
    let mut out = K8sVolume {
        name: v.name.clone(),
        ..Default::default()
    };
    match &v.source {
        VolumeSource::EmptyDir { memory, size_limit } => {
            out.empty_dir = Some(EmptyDirVolumeSource {
                medium: memory.then(|| "Memory".into()),
                size_limit: size_limit.map(|b| Quantity(crate::quantity::Memory(b).to_string())),
                ..Default::default()
            })
        }
        VolumeSource::HostPath { path, kind } => {
            out.host_path = Some(HostPathVolumeSource {
                path: path.clone(),
                type_: (*kind != HostPathType::Unset).then(|| kind.name().into()),
            })
        }
    }
    out
}

pub fn encode_mount(m: &VolumeMount) -> K8sMount {
    K8sMount {
        name: m.name.clone(),
        mount_path: m.mount_path.clone(),
        read_only: m.read_only.then_some(true),
        sub_path: m.sub_path.clone(),
        sub_path_expr: m.sub_path_expr.clone(),
        ..Default::default()
    }
}
