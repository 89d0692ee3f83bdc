//! A pod's record (`pod.json`): what the user asked for (`PodSpec`), and what the
//! runtime learned making it (`Facts`: its uid, node and addresses; its cgroup, pause
//! and supervisor, its network). What was resolved for it (`Inputs`: ConfigMaps and
//! Secrets) is not here: the supervisor holds it in memory.
//! Written by `up` before anything of the pod exists, completed by the supervisor
//! once its sandbox stands; every other command reads it.

use crate::layout::{PodPaths, Roots};
use crate::spec::{Facts, PodSpec};
use crate::state::{self, ProcRef, Root, StateError};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodRecord {
    pub spec: PodSpec,
    pub facts: Facts,
    pub created: String,
    /// The pod's cgroup; none where cgroup2 is read-only (an unprivileged container):
    /// the pod then holds together by its PID namespace alone.
    pub cgroup: Option<PathBuf>,
    pub pause_binary: PathBuf,
    pub pause: Option<ProcRef>,
    pub supervisor: Option<ProcRef>,
    /// The supervisor's fd of a sealed memfd with the pod's inputs (its Secrets are
    /// never written to disk), for `exec` to give a command the container's
    /// environment.
    #[serde(default)]
    pub inputs_fd: Option<i32>,
    /// The pod's CNI network, for whoever takes the pod down to DEL.
    #[serde(default)]
    pub network: Option<crate::network::Attachment>,
    #[serde(default)]
    pub log_rotation: crate::logs::Rotation,
    /// How much shorter (or longer) the kubelet's back-off is: a knob for tests.
    #[serde(default = "one")]
    pub backoff_scale: f64,
}

fn one() -> f64 {
    1.0
}

impl PodRecord {
    /// The record `up` writes before anything of the pod exists.
    pub fn new(spec: PodSpec, cgroup: Option<PathBuf>, pause_binary: PathBuf) -> PodRecord {
        let uid = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        PodRecord {
            log_rotation: crate::logs::Rotation::default(),
            backoff_scale: 1.0,
            spec,
            facts: Facts {
                uid,
                ..Facts::default()
            },
            created: crate::status::now_rfc3339(),
            cgroup,
            pause_binary,
            pause: None,
            supervisor: None,
            inputs_fd: None,
            network: None,
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
        roots.pod(&self.spec.name, &self.facts.uid)
    }
}
