//! The Kubernetes adapter: Pod objects in and out. Nothing else in the launcher
//! knows Kubernetes' wire format.
//!
//! One file per area, each decoding (a manifest into the runtime's `spec`, with the
//! field's path in every error) and encoding (back into k8s-openapi types): `pod`,
//! `container`, `probe` (probes and lifecycle handlers), `security`, `resources`.
//! `schema` is the list of fields this runtime supports.
//!
//! A manifest is read twice: as a typed `k8s_openapi` Pod, whose deserializer
//! reports type errors with their field path, and as a plain value checked against
//! `schema`. k8s-openapi drops fields it does not know, so without that check a
//! typo or an unsupported feature (a volume) would be ignored silently; here it is
//! an error naming its path. Fields that change nothing on one machine (image,
//! ports, labels) are accepted; `image` is noted, since processes run from the
//! host's file system.

mod container;
mod pod;
mod probe;
mod resources;
mod schema;
mod security;
#[cfg(test)]
mod tests;

pub use pod::{pod_manifest, pod_object, PIDS_ANNOTATION};

use crate::spec::PodSpec;
use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;
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
    schema::check_pod(&raw, &mut errors);
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    let pod: Pod = serde_yaml_ng::from_str(text).map_err(|e| {
        // serde_yaml_ng prefixes the path: "spec.containers[0].command: invalid type ..."
        let msg = e.to_string();
        ManifestError::Parse(msg.split(" at line ").next().unwrap_or(&msg).to_string())
    })?;
    pod::decode(&pod, backoff_scale)
}

/// A field of whole seconds, from `min` to 2^31-1 (the API server's range for
/// activeDeadlineSeconds; kept for every duration, so no time can overflow).
pub(crate) fn secs_field(
    v: Option<i64>,
    min: i64,
    path: &str,
) -> Result<Option<Duration>, ManifestError> {
    let max = crate::quantity::MAX_SECONDS as i64;
    match v {
        None => Ok(None),
        Some(s) if s < min => Err(field(path, format!("must be at least {min}"))),
        Some(s) if s > max => Err(field(path, format!("must be at most {max}"))),
        Some(s) => Ok(Some(Duration::from_secs(s as u64))),
    }
}
