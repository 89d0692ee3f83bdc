//! The Kubernetes adapter: Pod objects in and out. Nothing else in the launcher
//! knows Kubernetes' wire format.
//!
//! One file per area, each decoding (a manifest into the runtime's `spec`, with the
//! field's path in every error) and encoding (back into k8s-openapi types): `pod`,
//! `container`, `probe` (probes and lifecycle handlers), `security`, `resources`,
//! `volume` (volumes and volumeMounts).
//! `schema` is the list of fields this runtime supports.
//!
//! A manifest is read twice: as a typed `k8s_openapi` Pod, whose deserializer
//! reports type errors with their field path, and as a plain value checked against
//! `schema`. k8s-openapi drops fields it does not know, so without that check a
//! typo or an unsupported feature (a configMap volume) would be ignored silently; here it is
//! an error naming its path. Fields that change nothing on one machine (image,
//! ports, labels) are accepted; `image` is noted, since processes run from the
//! host's file system.

pub mod admission;
mod container;
mod dns;
mod env;
mod objects;
mod pod;
mod probe;
mod resources;
mod schema;
mod security;
#[cfg(test)]
mod tests;
mod volume;
mod yaml;

pub use pod::{node_name, pod_manifest, pod_object, pod_of, PIDS_ANNOTATION};
pub use yaml::to_yaml;

use crate::spec::{Inputs, PodSpec};
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
    #[error("unknown field \"{path}\"{}", hint.as_ref().map(|h| format!(" (did you mean {h:?}?)")).unwrap_or_default())]
    Unknown { path: String, hint: Option<String> },
}

fn field(path: impl Into<String>, why: impl Into<String>) -> ManifestError {
    ManifestError::Field {
        path: path.into(),
        why: why.into(),
    }
}

/// Reads `file` (`-` for standard input).
pub fn read(file: &str) -> Result<String, ManifestError> {
    read_bounded(file).map_err(|why| ManifestError::Read {
        file: file.to_string(),
        why,
    })
}

/// The most a manifest may be: what the Kubernetes API server takes in one request.
pub const MAX_MANIFEST: u64 = 3 << 20;

/// Reads a manifest from a regular file, a pipe or socket, or a terminal (`-`), and
/// no more than MAX_MANIFEST bytes of it: never from a device that never ends.
fn read_bounded(file: &str) -> Result<String, String> {
    use std::io::{IsTerminal, Read};
    use std::os::unix::fs::FileTypeExt;
    // Standard input as a file of its own: fstat of fd 0 itself (no /dev/stdin on a
    // bare devtmpfs), and one open of a named file, judged and read as the same file.
    let input = if file == "-" {
        std::os::fd::AsFd::as_fd(&std::io::stdin())
            .try_clone_to_owned()
            .map(std::fs::File::from)
    } else {
        std::fs::File::open(file)
    }
    .map_err(|e| e.to_string())?;
    let kind = input.metadata().map_err(|e| e.to_string())?.file_type();
    if kind.is_dir() {
        return Err("is a directory".into());
    }
    if !(kind.is_file() || kind.is_fifo() || kind.is_socket() || input.is_terminal()) {
        return Err("not a regular file or a pipe".into());
    }
    let mut bytes = Vec::new();
    input
        .take(MAX_MANIFEST + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_MANIFEST {
        return Err(format!(
            "larger than {} MiB, the most a manifest may be",
            MAX_MANIFEST >> 20
        ));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".into())
}

/// Parses and validates a manifest into the pod to run, plus warnings for the user.
pub fn parse(text: &str) -> Result<(PodSpec, Vec<String>), ManifestError> {
    parse_all(&[text.to_string()]).map(|m| (m.spec, m.warnings))
}

/// A manifest, read: the pod to run, what it was given, what to tell the user, and
/// the Pod object as written (the admission checks read it).
pub struct Manifest {
    pub spec: PodSpec,
    pub inputs: Inputs,
    pub warnings: Vec<String>,
    pub pod: Box<Pod>,
}

/// Parses the documents of every text (YAML streams, `---` between documents): one
/// Pod and any number of ConfigMaps and Secrets for it (the pod's inputs), whose
/// references are checked.
pub fn parse_all(texts: &[String]) -> Result<Manifest, ManifestError> {
    use serde::Deserialize;
    let mut pod: Option<(Box<Pod>, Value)> = None;
    let mut inputs = Inputs::default();
    for (t, text) in texts.iter().enumerate() {
        for (d, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
            let mut raw = Value::deserialize(doc)
                .map_err(|e| ManifestError::Parse(format!("invalid manifest: {e}")))?;
            octal_modes(&mut raw);
            if raw.is_null() {
                continue;
            }
            // Where a document is, for errors about a ConfigMap or Secret.
            let at = match (texts.len(), d) {
                (1, 0) => "document 1".to_string(),
                (1, d) => format!("document {}", d + 1),
                (_, d) => format!("file {} document {}", t + 1, d + 1),
            };
            // One document's own text, so that errors name paths inside it.
            let own = serde_yaml_ng::to_string(&raw)
                .map_err(|e| ManifestError::Parse(format!("invalid manifest: {e}")))?;
            if !raw.is_object() {
                return Err(ManifestError::Parse(
                    "invalid manifest: expected a Pod object".into(),
                ));
            }
            match (raw["apiVersion"].as_str(), raw["kind"].as_str()) {
                (Some("v1"), Some("Pod")) => {
                    if pod.is_some() {
                        return Err(field(
                            "kind",
                            format!("{at}: a second Pod: one pod is started at a time"),
                        ));
                    }
                    let typed: Pod = serde_yaml_ng::from_str(&own).map_err(|e| {
                        // serde_yaml_ng prefixes the path: "spec.containers[0].command: invalid type ..."
                        let msg = e.to_string();
                        ManifestError::Parse(
                            msg.split(" at line ").next().unwrap_or(&msg).to_string(),
                        )
                    })?;
                    let known = serde_json::to_value(&typed)
                        .map_err(|e| ManifestError::Parse(format!("invalid manifest: {e}")))?;
                    let mut errors = Vec::new();
                    schema::check_pod(&raw, &known, &mut errors);
                    if let Some(e) = errors.into_iter().next() {
                        return Err(e);
                    }
                    pod = Some((Box::new(typed), raw));
                }
                (Some("v1"), Some("ConfigMap")) => {
                    objects::add(&own, crate::spec::ObjectKind::ConfigMap, &at, &mut inputs)?
                }
                (Some("v1"), Some("Secret")) => {
                    objects::add(&own, crate::spec::ObjectKind::Secret, &at, &mut inputs)?
                }
                (v, k) => {
                    return Err(field(
                        "kind",
                        format!(
                            "expected apiVersion v1 and kind Pod (or ConfigMap, Secret), got {} {}",
                            v.unwrap_or("(none)"),
                            k.unwrap_or("(none)")
                        ),
                    ))
                }
            }
        }
    }
    let Some((pod, raw)) = pod else {
        return Err(field("kind", "no Pod in the manifest"));
    };
    let (mut spec, warnings) = pod::decode(&pod)?;
    volume::set_empty_dir_modes(&raw, &mut spec.volumes)?;
    objects::check_references(&spec, &inputs)?;
    Ok(Manifest {
        spec,
        inputs,
        warnings,
        pod,
    })
}

/// File modes as Kubernetes reads them: its YAML is 1.1, where `0400` is octal (256),
/// the way the documentation writes `defaultMode: 0400`; YAML 1.2 has no such number.
fn octal_modes(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let octal = match v {
                    Value::String(s) if k == "mode" || k == "defaultMode" => s
                        .strip_prefix('0')
                        .filter(|d| !d.is_empty() && d.bytes().all(|b| (b'0'..=b'7').contains(&b)))
                        .and_then(|d| i64::from_str_radix(d, 8).ok()),
                    _ => None,
                };
                match octal {
                    Some(n) => *v = Value::from(n),
                    None => octal_modes(v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(octal_modes),
        _ => {}
    }
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
