//! `launcher status NAME`: the pod as a Kubernetes Pod object, in JSON or YAML.

use super::{print, Opts, PodHandle};
use crate::cli::{self, StatusFormat};
use anyhow::Result;

pub fn status(opts: &Opts, args: &cli::Status) -> Result<i32> {
    let pod = PodHandle::new(opts, &args.name)?.object()?;
    print(&match args.output {
        StatusFormat::Json => serde_json::to_string_pretty(&pod)? + "\n",
        StatusFormat::Yaml => crate::kube::to_yaml(&pod)?,
    })?;
    Ok(0)
}
