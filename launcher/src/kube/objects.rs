//! ConfigMaps and Secrets that come with a Pod, in the same multi-document YAML stream
//! or in further `-f` files (as `podman kube play` takes them), and the check that
//! every reference the pod makes to them resolves unless it is `optional`.

use super::{field, ManifestError};
use crate::spec::{Data, EnvValue, Inputs, ObjectKind, PodSpec, VolumeSource};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};

/// Adds ConfigMap or Secret `doc` (document `at` of the input) to `inputs`.
pub fn add(
    doc: &str,
    kind: ObjectKind,
    at: &str,
    inputs: &mut Inputs,
) -> Result<(), ManifestError> {
    let typed = |e: serde_yaml_ng::Error| {
        let msg = e.to_string();
        ManifestError::Parse(format!(
            "{at}: {}",
            msg.split(" at line ").next().unwrap_or(&msg)
        ))
    };
    let (name, data) = match kind {
        ObjectKind::ConfigMap => {
            let cm: ConfigMap = serde_yaml_ng::from_str(doc).map_err(typed)?;
            let mut data = Data::new();
            for (k, v) in cm.data.into_iter().flatten() {
                data.insert(k, v.into_bytes());
            }
            for (k, v) in cm.binary_data.into_iter().flatten() {
                if data.insert(k.clone(), v.0).is_some() {
                    return Err(field(
                        format!("{at}.binaryData[{k:?}]"),
                        "duplicate of a key in data",
                    ));
                }
            }
            (cm.metadata.name, data)
        }
        ObjectKind::Secret => {
            let s: Secret = serde_yaml_ng::from_str(doc).map_err(typed)?;
            let mut data = Data::new();
            for (k, v) in s.data.into_iter().flatten() {
                data.insert(k, v.0);
            }
            // stringData wins over data, as the API server merges them.
            for (k, v) in s.string_data.into_iter().flatten() {
                data.insert(k, v.into_bytes());
            }
            (s.metadata.name, data)
        }
    };
    let name = name.ok_or_else(|| field(format!("{at}.metadata.name"), "required"))?;
    super::env::object_name(&name).map_err(|why| field(format!("{at}.metadata.name"), why))?;
    for k in data.keys() {
        super::env::data_key(k).map_err(|why| field(format!("{at}.data[{k:?}]"), why))?;
    }
    let map = match kind {
        ObjectKind::ConfigMap => &mut inputs.config_maps,
        ObjectKind::Secret => &mut inputs.secrets,
    };
    if map.insert(name.clone(), data).is_some() {
        return Err(field(
            format!("{at}.metadata.name"),
            format!("duplicate {} {name:?}", kind.name()),
        ));
    }
    Ok(())
}

/// Every ConfigMap and Secret the pod refers to, and every key, exists unless the
/// reference is optional: the kubelet would not start the container otherwise.
pub fn check_references(spec: &PodSpec, o: &Inputs) -> Result<(), ManifestError> {
    let missing = |kind: ObjectKind, name: &str| format!("{} {name:?} not found", kind.name());
    for (list, containers) in [
        ("initContainers", &spec.init_containers),
        ("containers", &spec.containers),
    ] {
        for (i, c) in containers.iter().enumerate() {
            let path = format!("spec.{list}[{i}]");
            for (j, e) in c.env.iter().enumerate() {
                let EnvValue::Key {
                    kind,
                    name,
                    key,
                    optional: false,
                } = &e.value
                else {
                    continue;
                };
                let sel = match kind {
                    ObjectKind::ConfigMap => "configMapKeyRef",
                    ObjectKind::Secret => "secretKeyRef",
                };
                let at = format!("{path}.env[{j}].valueFrom.{sel}");
                let data = o
                    .get(*kind, name)
                    .ok_or_else(|| field(format!("{at}.name"), missing(*kind, name)))?;
                if !data.contains_key(key) {
                    return Err(field(
                        format!("{at}.key"),
                        format!("couldn't find key {key} in {} {name:?}", kind.name()),
                    ));
                }
            }
            for (j, f) in c.env_from.iter().enumerate() {
                if !f.optional && o.get(f.kind, &f.name).is_none() {
                    let sel = match f.kind {
                        ObjectKind::ConfigMap => "configMapRef",
                        ObjectKind::Secret => "secretRef",
                    };
                    return Err(field(
                        format!("{path}.envFrom[{j}].{sel}.name"),
                        missing(f.kind, &f.name),
                    ));
                }
            }
        }
    }
    for (i, v) in spec.volumes.iter().enumerate() {
        let VolumeSource::Files {
            sources, projected, ..
        } = &v.source
        else {
            continue;
        };
        let sources: Vec<(String, &crate::spec::Projection)> = sources
            .iter()
            .enumerate()
            .map(|(k, s)| match projected {
                true => (format!("spec.volumes[{i}].projected.sources[{k}]"), s),
                false => (format!("spec.volumes[{i}]"), s),
            })
            .collect();
        // A secret volume names its Secret by secretName; a projected source by name.
        let secret_key = if *projected { "name" } else { "secretName" };
        for (at, p) in sources {
            let crate::spec::Projection::Object {
                kind,
                name,
                items,
                optional,
            } = p
            else {
                continue;
            };
            let sel = match kind {
                ObjectKind::ConfigMap => "configMap",
                ObjectKind::Secret => "secret",
            };
            let Some(data) = o.get(*kind, name) else {
                if *optional {
                    continue;
                }
                let key = match kind {
                    ObjectKind::Secret => secret_key,
                    ObjectKind::ConfigMap => "name",
                };
                return Err(field(format!("{at}.{sel}.{key}"), missing(*kind, name)));
            };
            for (k, item) in items.iter().enumerate() {
                if !data.contains_key(&item.key) && !optional {
                    return Err(field(
                        format!("{at}.{sel}.items[{k}].key"),
                        format!("couldn't find key {} in {} {name:?}", item.key, kind.name()),
                    ));
                }
            }
        }
    }
    Ok(())
}
