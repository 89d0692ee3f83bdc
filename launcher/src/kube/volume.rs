//! Volumes and volumeMounts: `emptyDir` (on disk or `medium: Memory`) and `hostPath`
//! with its types; mounts by name with `readOnly`, `subPath` and `subPathExpr`.
//! The checks are the API server's (names, paths, `..`), so that a manifest refused
//! here is one a cluster refuses too.

use super::{field, ManifestError};
use crate::spec::{
    self, DownwardFile, DownwardValue, HostPathType, ObjectKind, Projection, Volume, VolumeMount,
    VolumeSource,
};
use k8s_openapi::api::core::v1::{
    ConfigMapProjection, ConfigMapVolumeSource, Container, DownwardAPIProjection,
    DownwardAPIVolumeFile, DownwardAPIVolumeSource, EmptyDirVolumeSource, HostPathVolumeSource,
    KeyToPath, PersistentVolumeClaimVolumeSource, ProjectedVolumeSource, SecretProjection,
    SecretVolumeSource, Volume as K8sVolume, VolumeMount as K8sMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::Value;

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
        let set = [
            v.empty_dir.is_some(),
            v.host_path.is_some(),
            v.config_map.is_some(),
            v.secret.is_some(),
            v.downward_api.is_some(),
            v.projected.is_some(),
            v.persistent_volume_claim.is_some(),
        ];
        if set.iter().filter(|s| **s).count() > 1 {
            return Err(field(
                path,
                "may not specify more than one volume source (emptyDir, hostPath, configMap, secret, downwardAPI, projected, persistentVolumeClaim)",
            ));
        }
        let files = |sources, default_mode: Option<i32>, projected, at: &str| {
            Ok::<_, ManifestError>(VolumeSource::Files {
                sources,
                default_mode: mode(default_mode, &format!("{at}.defaultMode"))?,
                projected,
            })
        };
        let source = if let Some(e) = &v.empty_dir {
            empty_dir(e, &format!("{path}.emptyDir"))?
        } else if let Some(h) = &v.host_path {
            host_path(h, &format!("{path}.hostPath"))?
        } else if let Some(cm) = &v.config_map {
            let at = format!("{path}.configMap");
            let p = object(
                ObjectKind::ConfigMap,
                &cm.name,
                cm.items.as_deref(),
                cm.optional,
                &at,
                "name",
            )?;
            files(vec![p], cm.default_mode, false, &at)?
        } else if let Some(sec) = &v.secret {
            let at = format!("{path}.secret");
            let name = sec.secret_name.clone().unwrap_or_default();
            let p = object(
                ObjectKind::Secret,
                &name,
                sec.items.as_deref(),
                sec.optional,
                &at,
                "secretName",
            )?;
            files(vec![p], sec.default_mode, false, &at)?
        } else if let Some(d) = &v.downward_api {
            let at = format!("{path}.downwardAPI");
            let p = downward(d.items.as_deref().unwrap_or_default(), &at)?;
            files(vec![p], d.default_mode, false, &at)?
        } else if let Some(pr) = &v.projected {
            let at = format!("{path}.projected");
            let mut sources = Vec::new();
            for (k, src) in pr.sources.iter().flatten().enumerate() {
                let at = format!("{at}.sources[{k}]");
                sources.push(if let Some(cm) = &src.config_map {
                    object(
                        ObjectKind::ConfigMap,
                        &cm.name,
                        cm.items.as_deref(),
                        cm.optional,
                        &format!("{at}.configMap"),
                        "name",
                    )?
                } else if let Some(sec) = &src.secret {
                    object(
                        ObjectKind::Secret,
                        &sec.name,
                        sec.items.as_deref(),
                        sec.optional,
                        &format!("{at}.secret"),
                        "name",
                    )?
                } else if let Some(d) = &src.downward_api {
                    downward(
                        d.items.as_deref().unwrap_or_default(),
                        &format!("{at}.downwardAPI"),
                    )?
                } else {
                    return Err(field(
                        at,
                        "must specify one of configMap, secret and downwardAPI",
                    ));
                });
            }
            files(sources, pr.default_mode, true, &at)?
        } else if let Some(c) = &v.persistent_volume_claim {
            let at = format!("{path}.persistentVolumeClaim.claimName");
            spec::validate_name("claim name", &c.claim_name)
                .map_err(|e| field(at, e.to_string()))?;
            VolumeSource::Claim {
                name: c.claim_name.clone(),
                read_only: c.read_only.unwrap_or(false),
            }
        } else {
            // The API server makes a volume without a source an emptyDir.
            VolumeSource::EmptyDir {
                memory: false,
                size_limit: None,
                mode: None,
            }
        };
        out.push(Volume {
            name: v.name.clone(),
            source,
        });
    }
    Ok(out)
}

/// A file mode: 0 to 0777.
fn mode(m: Option<i32>, at: &str) -> Result<Option<u32>, ManifestError> {
    match m {
        None => Ok(None),
        Some(m) if (0..=0o777).contains(&m) => Ok(Some(m as u32)),
        Some(m) => Err(field(
            at,
            format!(
                "invalid value {m}: must be a number between 0 and 0777 (octal), both inclusive"
            ),
        )),
    }
}

/// A file's path in a volume: relative, without `..`.
fn item_path(p: &str, at: &str) -> Result<(), ManifestError> {
    if p.is_empty() {
        return Err(field(at, "required"));
    }
    spec::check_sub_path(p).map_err(|why| field(at, why))?;
    if p.split('/').next() == Some("..data") {
        return Err(field(at, "must not start with '..'"));
    }
    Ok(())
}

fn object(
    kind: ObjectKind,
    name: &str,
    items: Option<&[KeyToPath]>,
    optional: Option<bool>,
    at: &str,
    name_key: &str,
) -> Result<Projection, ManifestError> {
    super::env::object_name(name).map_err(|why| field(format!("{at}.{name_key}"), why))?;
    let mut out = Vec::new();
    for (k, item) in items.unwrap_or_default().iter().enumerate() {
        let ia = format!("{at}.items[{k}]");
        super::env::data_key(&item.key).map_err(|why| field(format!("{ia}.key"), why))?;
        item_path(&item.path, &format!("{ia}.path"))?;
        out.push(spec::KeyToPath {
            key: item.key.clone(),
            path: item.path.clone(),
            mode: mode(item.mode, &format!("{ia}.mode"))?,
        });
    }
    Ok(Projection::Object {
        kind,
        name: name.to_string(),
        items: out,
        optional: optional.unwrap_or(false),
    })
}

fn downward(items: &[DownwardAPIVolumeFile], at: &str) -> Result<Projection, ManifestError> {
    let mut out = Vec::new();
    for (k, item) in items.iter().enumerate() {
        let ia = format!("{at}.items[{k}]");
        item_path(&item.path, &format!("{ia}.path"))?;
        let value = match (&item.field_ref, &item.resource_field_ref) {
            (Some(f), None) => DownwardValue::Field(super::env::field_path(
                &f.field_path,
                &format!("{ia}.fieldRef.fieldPath"),
                true,
            )?),
            (None, Some(r)) => {
                if r.container_name.as_deref().unwrap_or("").is_empty() {
                    return Err(field(
                        format!("{ia}.resourceFieldRef.containerName"),
                        "required",
                    ));
                }
                DownwardValue::Resource(super::env::resource_ref(
                    r,
                    &format!("{ia}.resourceFieldRef"),
                )?)
            }
            _ => {
                return Err(field(
                    ia,
                    "must specify exactly one of fieldRef and resourceFieldRef",
                ))
            }
        };
        out.push(DownwardFile {
            path: item.path.clone(),
            mode: mode(item.mode, &format!("{ia}.mode"))?,
            value,
        });
    }
    Ok(Projection::Downward(out))
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
    // mode is not in k8s-openapi's types: `set_empty_dir_modes` reads it.
    Ok(VolumeSource::EmptyDir {
        memory,
        size_limit,
        mode: None,
    })
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
                spec::check_sub_path(sub).map_err(|why| field(format!("{at}.{key}"), why))?;
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
        VolumeSource::EmptyDir {
            memory, size_limit, ..
        } => {
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
        VolumeSource::Claim { name, read_only } => {
            out.persistent_volume_claim = Some(PersistentVolumeClaimVolumeSource {
                claim_name: name.clone(),
                read_only: read_only.then_some(true),
            })
        }
        VolumeSource::Files {
            sources,
            default_mode,
            projected,
        } => {
            let default_mode = default_mode.map(|m| m as i32);
            if *projected {
                out.projected = Some(ProjectedVolumeSource {
                    default_mode,
                    sources: Some(sources.iter().map(projection).collect()),
                    ..Default::default()
                });
            } else if let Some(src) = sources.first() {
                match src {
                    Projection::Object {
                        kind: ObjectKind::ConfigMap,
                        name,
                        items,
                        optional,
                    } => {
                        out.config_map = Some(ConfigMapVolumeSource {
                            name: name.clone(),
                            items: encode_items(items),
                            optional: optional.then_some(true),
                            default_mode,
                            ..Default::default()
                        })
                    }
                    Projection::Object {
                        kind: ObjectKind::Secret,
                        name,
                        items,
                        optional,
                    } => {
                        out.secret = Some(SecretVolumeSource {
                            secret_name: Some(name.clone()),
                            items: encode_items(items),
                            optional: optional.then_some(true),
                            default_mode,
                            ..Default::default()
                        })
                    }
                    Projection::Downward(files) => {
                        out.downward_api = Some(DownwardAPIVolumeSource {
                            items: Some(encode_downward(files)),
                            default_mode,
                            ..Default::default()
                        })
                    }
                }
            }
        }
    }
    out
}

fn encode_items(items: &[spec::KeyToPath]) -> Option<Vec<KeyToPath>> {
    (!items.is_empty()).then(|| {
        items
            .iter()
            .map(|i| KeyToPath {
                key: i.key.clone(),
                path: i.path.clone(),
                mode: i.mode.map(|m| m as i32),
                ..Default::default()
            })
            .collect()
    })
}

fn encode_downward(files: &[DownwardFile]) -> Vec<DownwardAPIVolumeFile> {
    files
        .iter()
        .map(|f| DownwardAPIVolumeFile {
            path: f.path.clone(),
            mode: f.mode.map(|m| m as i32),
            field_ref: match &f.value {
                DownwardValue::Field(p) => Some(super::env::field_selector(p)),
                DownwardValue::Resource(_) => None,
            },
            resource_field_ref: match &f.value {
                DownwardValue::Resource(r) => Some(super::env::resource_selector(r)),
                DownwardValue::Field(_) => None,
            },
            ..Default::default()
        })
        .collect()
}

fn projection(p: &Projection) -> VolumeProjection {
    match p {
        Projection::Object {
            kind: ObjectKind::ConfigMap,
            name,
            items,
            optional,
        } => VolumeProjection {
            config_map: Some(ConfigMapProjection {
                name: name.clone(),
                items: encode_items(items),
                optional: optional.then_some(true),
            }),
            ..Default::default()
        },
        Projection::Object {
            kind: ObjectKind::Secret,
            name,
            items,
            optional,
        } => VolumeProjection {
            secret: Some(SecretProjection {
                name: name.clone(),
                items: encode_items(items),
                optional: optional.then_some(true),
            }),
            ..Default::default()
        },
        Projection::Downward(files) => VolumeProjection {
            downward_api: Some(DownwardAPIProjection {
                items: Some(encode_downward(files)),
            }),
            ..Default::default()
        },
    }
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

/// emptyDir.mode (Kubernetes 1.37), which k8s-openapi's types do not have: read from
/// the manifest as written, into the decoded `volumes` (in the same order).
pub fn set_empty_dir_modes(raw: &Value, volumes: &mut [Volume]) -> Result<(), ManifestError> {
    let listed = raw["spec"]["volumes"].as_array().into_iter().flatten();
    for (i, v) in listed.enumerate() {
        let m = &v["emptyDir"]["mode"];
        if m.is_null() {
            continue;
        }
        let mode = (m.as_i64())
            .filter(|m| (0..=0o1777).contains(m))
            .ok_or_else(|| {
                field(
                    format!("spec.volumes[{i}].emptyDir.mode"),
                    format!("invalid value {m}: must be a number between 0 and 01777 (octal), both inclusive"),
                )
            })?;
        if let Some(VolumeSource::EmptyDir { mode: slot, .. }) =
            volumes.get_mut(i).map(|v| &mut v.source)
        {
            *slot = Some(mode as u32);
        }
    }
    Ok(())
}

/// emptyDir.mode back into a Pod's JSON.
pub fn put_empty_dir_modes(volumes: &[Volume], pod: &mut Value) {
    for (i, v) in volumes.iter().enumerate() {
        if let VolumeSource::EmptyDir {
            mode: Some(mode), ..
        } = v.source
        {
            pod["spec"]["volumes"][i]["emptyDir"]["mode"] = mode.into();
        }
    }
}
