//! A pod's record (`pod.json`): what the user asked for, and what the runtime learned
//! making it (its uid, cgroup, pause and supervisor, its network and addresses).
//! Written by `up` before anything of the pod exists, completed by the supervisor
//! once its sandbox stands; every other command reads it.

use crate::layout::{PodPaths, Roots};
use crate::spec::PodSpec;
use crate::state::{self, ProcRef, Root, StateError};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodRecord {
    pub spec: PodSpec,
    pub uid: String,
    pub created: String,
    /// The pod's cgroup; none where cgroup2 is read-only (an unprivileged container):
    /// the pod then holds together by its PID namespace alone.
    pub cgroup: Option<PathBuf>,
    pub pause_binary: PathBuf,
    pub pause: Option<ProcRef>,
    pub supervisor: Option<ProcRef>,
    /// The supervisor's fd of a sealed memfd with the pod's Secrets (they are never
    /// written to disk), for `exec` to give a command the container's environment.
    #[serde(default)]
    pub secrets_fd: Option<i32>,
    /// The pod's CNI network, for whoever takes the pod down to DEL.
    #[serde(default)]
    pub network: Option<crate::network::Attachment>,
    /// status.podIPs and hostIPs, once the network is up.
    #[serde(default)]
    pub pod_ips: Vec<String>,
    #[serde(default)]
    pub host_ips: Vec<String>,
    #[serde(default)]
    pub log_rotation: crate::logs::Rotation,
}

impl PodRecord {
    /// The record `up` writes before anything of the pod exists.
    pub fn new(spec: PodSpec, cgroup: Option<PathBuf>, pause_binary: PathBuf) -> PodRecord {
        let uid = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        PodRecord {
            log_rotation: crate::logs::Rotation::default(),
            spec,
            uid,
            created: crate::status::now_rfc3339(),
            cgroup,
            pause_binary,
            pause: None,
            supervisor: None,
            secrets_fd: None,
            network: None,
            pod_ips: Vec::new(),
            host_ips: Vec::new(),
        }
    }

    /// Pod `name`'s record under `root`: one of that name, whose paths are its own.
    pub fn load(root: &Root, name: &str) -> Result<PodRecord, StateError> {
        let path = root.pod_dir(name).join(crate::layout::RECORD);
        let rec: PodRecord = match state::read_json(&path) {
            Err(StateError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Err(StateError::NotFound(name.into()))
            }
            r => r?,
        };
        if rec.spec.name != name {
            return Err(StateError::Misplaced {
                path,
                found: rec.spec.name,
            });
        }
        Ok(rec)
    }

    /// Every path of the pod under `roots`.
    pub fn paths(&self, roots: &Roots) -> PodPaths {
        roots.pod(&self.spec.name, &self.uid)
    }
}
