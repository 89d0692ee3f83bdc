//! A container's `env` (values and `valueFrom`) and `envFrom`, and the downward API's
//! field and resource references, which downwardAPI volumes share.

use super::{field, ManifestError};
use crate::spec::{self, EnvFrom, EnvValue, EnvVar, ObjectKind, ResourceRef};
use k8s_openapi::api::core::v1::{
    ConfigMapEnvSource, ConfigMapKeySelector, Container, EnvFromSource, EnvVar as K8sEnvVar,
    EnvVarSource, ObjectFieldSelector, ResourceFieldSelector, SecretEnvSource, SecretKeySelector,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The fields env may take from the pod (fieldRef.fieldPath), and those with a key.
const ENV_FIELDS: [&str; 9] = [
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.podIP",
    "status.podIPs",
    "status.hostIP",
    "status.hostIPs",
];
const KEYED_FIELDS: [&str; 2] = ["metadata.labels", "metadata.annotations"];

const RESOURCES: [&str; 4] = [
    "limits.cpu",
    "limits.memory",
    "requests.cpu",
    "requests.memory",
];

pub fn decode(c: &Container, path: &str) -> Result<(Vec<EnvVar>, Vec<EnvFrom>), ManifestError> {
    let mut env = Vec::new();
    for (j, e) in c.env.iter().flatten().enumerate() {
        let at = format!("{path}.env[{j}]");
        if !spec::valid_env_name(&e.name) {
            return Err(field(
                format!("{at}.name"),
                format!("invalid name {:?}: {}", e.name, spec::ENV_NAME_RULE),
            ));
        }
        let value = match (&e.value, &e.value_from) {
            (Some(v), Some(_)) if !v.is_empty() => {
                return Err(field(
                    format!("{at}.valueFrom"),
                    "may not be specified when `value` is not empty",
                ))
            }
            (_, Some(from)) => value_from(from, &format!("{at}.valueFrom"))?,
            (v, None) => {
                let v = v.clone().unwrap_or_default();
                spec::nul_free(&v).map_err(|why| field(format!("{at}.value"), why))?;
                EnvValue::Value(v)
            }
        };
        env.push(EnvVar {
            name: e.name.clone(),
            value,
        });
    }
    let mut from = Vec::new();
    for (j, f) in c.env_from.iter().flatten().enumerate() {
        let at = format!("{path}.envFrom[{j}]");
        let prefix = f.prefix.clone().unwrap_or_default();
        if !prefix.is_empty() && !spec::valid_env_name(&prefix) {
            return Err(field(
                format!("{at}.prefix"),
                format!("invalid prefix {prefix:?}: {}", spec::ENV_NAME_RULE),
            ));
        }
        let (kind, name, optional, key) = match (&f.config_map_ref, &f.secret_ref) {
            (Some(cm), None) => (ObjectKind::ConfigMap, &cm.name, cm.optional, "configMapRef"),
            (None, Some(s)) => (ObjectKind::Secret, &s.name, s.optional, "secretRef"),
            _ => {
                return Err(field(
                    at,
                    "must specify exactly one of configMapRef and secretRef",
                ))
            }
        };
        object_name(name).map_err(|why| field(format!("{at}.{key}.name"), why))?;
        from.push(EnvFrom {
            kind,
            name: name.clone(),
            prefix,
            optional: optional.unwrap_or(false),
        });
    }
    Ok((env, from))
}

fn value_from(from: &EnvVarSource, at: &str) -> Result<EnvValue, ManifestError> {
    let set = [
        from.config_map_key_ref.is_some(),
        from.secret_key_ref.is_some(),
        from.field_ref.is_some(),
        from.resource_field_ref.is_some(),
    ];
    if set.iter().filter(|s| **s).count() != 1 {
        return Err(field(
            at,
            "must specify exactly one of configMapKeyRef, secretKeyRef, fieldRef and resourceFieldRef",
        ));
    }
    let key_ref = |kind, name: &str, key: &str, optional: Option<bool>, sel: &str| {
        object_name(name).map_err(|why| field(format!("{at}.{sel}.name"), why))?;
        data_key(key).map_err(|why| field(format!("{at}.{sel}.key"), why))?;
        Ok(EnvValue::Key {
            kind,
            name: name.to_string(),
            key: key.to_string(),
            optional: optional.unwrap_or(false),
        })
    };
    if let Some(r) = &from.config_map_key_ref {
        return key_ref(
            ObjectKind::ConfigMap,
            &r.name,
            &r.key,
            r.optional,
            "configMapKeyRef",
        );
    }
    if let Some(r) = &from.secret_key_ref {
        return key_ref(
            ObjectKind::Secret,
            &r.name,
            &r.key,
            r.optional,
            "secretKeyRef",
        );
    }
    if let Some(f) = &from.field_ref {
        return field_path(&f.field_path, &format!("{at}.fieldRef.fieldPath"), false)
            .map(EnvValue::Field);
    }
    let r = from
        .resource_field_ref
        .as_ref()
        .ok_or_else(|| field(at, "required"))?;
    resource_ref(r, &format!("{at}.resourceFieldRef")).map(EnvValue::Resource)
}

/// A fieldRef's path, checked; `whole_maps`: `metadata.labels` and
/// `metadata.annotations` whole (downwardAPI volumes may, env may not).
pub fn field_path(path: &str, at: &str, whole_maps: bool) -> Result<String, ManifestError> {
    let keyed = KEYED_FIELDS.iter().any(|p| {
        path.strip_prefix(p)
            .and_then(|r| r.strip_prefix("['"))
            .and_then(|r| r.strip_suffix("']"))
            .is_some_and(|k| !k.is_empty())
    });
    let whole = whole_maps && KEYED_FIELDS.contains(&path);
    if keyed || whole || ENV_FIELDS.contains(&path) {
        return Ok(path.to_string());
    }
    let mut all: Vec<String> = ENV_FIELDS.iter().map(|f| format!("{f:?}")).collect();
    all.extend(KEYED_FIELDS.iter().map(|f| format!("\"{f}['KEY']\"")));
    if whole_maps {
        all.extend(KEYED_FIELDS.iter().map(|f| format!("{f:?}")));
    }
    Err(field(
        at,
        format!(
            "unsupported value {path:?}: supported values: {}",
            all.join(", ")
        ),
    ))
}

/// A resourceFieldRef: the resource and its divisor, checked.
pub fn resource_ref(r: &ResourceFieldSelector, at: &str) -> Result<ResourceRef, ManifestError> {
    if !RESOURCES.contains(&r.resource.as_str()) {
        let all: Vec<String> = RESOURCES.iter().map(|f| format!("{f:?}")).collect();
        return Err(field(
            format!("{at}.resource"),
            format!(
                "unsupported value {:?}: supported values: {}",
                r.resource,
                all.join(", ")
            ),
        ));
    }
    let cpu = r.resource.ends_with(".cpu");
    let divisor = match &r.divisor {
        None => {
            if cpu {
                1000
            } else {
                1
            }
        }
        Some(Quantity(q)) => {
            let parsed = if cpu {
                q.parse::<crate::quantity::MilliCpu>()
                    .map(|m| m.0)
                    .map_err(|e| e.to_string())
            } else {
                q.parse::<crate::quantity::Memory>()
                    .map(|m| m.0)
                    .map_err(|e| e.to_string())
            };
            parsed.ok().filter(|d| *d > 0).ok_or_else(|| {
                field(
                    format!("{at}.divisor"),
                    format!("invalid divisor {q:?} for {}", r.resource),
                )
            })?
        }
    };
    Ok(ResourceRef {
        container: r.container_name.clone().filter(|n| !n.is_empty()),
        resource: r.resource.clone(),
        divisor,
    })
}

/// A ConfigMap's or Secret's name: a DNS subdomain.
pub fn object_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid name {name:?}: must be a lowercase DNS subdomain (a-z, 0-9, '-', '.')"
        ))
    }
}

/// A ConfigMap's or Secret's key: `[-._a-zA-Z0-9]+`, not `.` or `..`.
pub fn data_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && key.len() <= 253
        && key != "."
        && key != ".."
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid key {key:?}: must consist of alphanumeric characters, '-', '_' or '.'"
        ))
    }
}

pub fn encode(env: &[EnvVar]) -> Vec<K8sEnvVar> {
    env.iter()
        .map(|e| {
            let mut out = K8sEnvVar {
                name: e.name.clone(),
                ..Default::default()
            };
            match &e.value {
                EnvValue::Value(v) => out.value = Some(v.clone()),
                EnvValue::Key {
                    kind,
                    name,
                    key,
                    optional,
                } => {
                    let optional = optional.then_some(true);
                    out.value_from = Some(match kind {
                        ObjectKind::ConfigMap => EnvVarSource {
                            config_map_key_ref: Some(ConfigMapKeySelector {
                                key: key.clone(),
                                name: name.clone(),
                                optional,
                            }),
                            ..Default::default()
                        },
                        ObjectKind::Secret => EnvVarSource {
                            secret_key_ref: Some(SecretKeySelector {
                                key: key.clone(),
                                name: name.clone(),
                                optional,
                            }),
                            ..Default::default()
                        },
                    })
                }
                EnvValue::Field(path) => {
                    out.value_from = Some(EnvVarSource {
                        field_ref: Some(field_selector(path)),
                        ..Default::default()
                    })
                }
                EnvValue::Resource(r) => {
                    out.value_from = Some(EnvVarSource {
                        resource_field_ref: Some(resource_selector(r)),
                        ..Default::default()
                    })
                }
            }
            out
        })
        .collect()
}

pub fn field_selector(path: &str) -> ObjectFieldSelector {
    ObjectFieldSelector {
        api_version: Some("v1".into()),
        field_path: path.to_string(),
    }
}

pub fn resource_selector(r: &ResourceRef) -> ResourceFieldSelector {
    let divisor = if r.resource.ends_with(".cpu") {
        crate::quantity::MilliCpu(r.divisor).to_string()
    } else {
        crate::quantity::Memory(r.divisor).to_string()
    };
    ResourceFieldSelector {
        container_name: r.container.clone(),
        divisor: Some(Quantity(divisor)),
        resource: r.resource.clone(),
    }
}

pub fn encode_from(from: &[EnvFrom]) -> Vec<EnvFromSource> {
    from.iter()
        .map(|f| {
            let optional = f.optional.then_some(true);
            EnvFromSource {
                prefix: (!f.prefix.is_empty()).then(|| f.prefix.clone()),
                config_map_ref: (f.kind == ObjectKind::ConfigMap).then(|| ConfigMapEnvSource {
                    name: f.name.clone(),
                    optional,
                }),
                secret_ref: (f.kind == ObjectKind::Secret).then(|| SecretEnvSource {
                    name: f.name.clone(),
                    optional,
                }),
            }
        })
        .collect()
}
