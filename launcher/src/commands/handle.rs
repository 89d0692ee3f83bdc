//! One pod by name, as every command but `up` finds it: a validated name, its state
//! directory, its record and status, and whether its supervisor still runs.

use super::{Opts, Usage};
use crate::record::PodRecord;
use crate::state::{Root, StateError};
use crate::status::PodStatus;
use anyhow::Result;
use std::path::PathBuf;

pub struct PodHandle {
    pub name: String,
    pub root: Root,
}

impl PodHandle {
    /// Pod `name` under `opts.root`; a name that is not a DNS-1123 label is bad input.
    pub fn new(opts: &Opts, name: &str) -> Result<PodHandle> {
        Self::under(&opts.open_root()?, name)
    }

    /// Pod `name` under a root already open (`ps`, which looks at every pod).
    pub fn under(root: &Root, name: &str) -> Result<PodHandle> {
        crate::spec::validate_name("pod name", name).map_err(Usage::Spec)?;
        Ok(PodHandle {
            name: name.to_string(),
            root: root.clone(),
        })
    }

    pub fn dir(&self) -> PathBuf {
        self.root.pod_dir(&self.name)
    }

    pub fn record(&self) -> Result<PodRecord, StateError> {
        PodRecord::load(&self.root, &self.name)
    }

    pub fn status(&self) -> Option<PodStatus> {
        crate::state::read_json(&self.root.roots.status(&self.name)).ok()
    }

    /// The pod as a Kubernetes Pod object, status included.
    pub fn object(&self) -> Result<serde_json::Value> {
        let rec = self.record()?;
        let alive = supervisor_alive(&rec);
        Ok(crate::kube::pod_object(&rec, self.status().as_ref(), alive))
    }
}

/// Is the recorded supervisor still running?
pub fn supervisor_alive(rec: &PodRecord) -> bool {
    rec.supervisor.is_some_and(|s| s.alive())
}
