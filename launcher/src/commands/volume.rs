//! `launcher volume ls` and `launcher volume rm NAME`: the named volumes under the data
//! root that pods mount as persistentVolumeClaims (`claimName`), made on first use and
//! kept after the pods that used them, as `podman volume` keeps its own.

use super::{print, Opts, Usage};
use crate::record::PodRecord;
use crate::spec::VolumeSource;
use anyhow::{bail, Context, Result};

pub fn volume(opts: &Opts, args: &crate::cli::Volume) -> Result<i32> {
    let mut root = opts.open_root()?;
    root.data_root()?;
    let dir = root.roots.claims();
    match &args.command {
        crate::cli::VolumeCommand::Ls => {
            let mut names: Vec<String> = std::fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().into_string().ok())
                .collect();
            names.sort();
            if names.is_empty() {
                super::warn("no volumes found");
                return Ok(0);
            }
            let users = users(&root);
            let mut rows = vec![vec!["NAME".to_string(), "USED BY".to_string()]];
            for n in names {
                let by: Vec<&str> = users
                    .iter()
                    .filter(|(claim, _)| *claim == n)
                    .map(|(_, pod)| pod.as_str())
                    .collect();
                let by = if by.is_empty() {
                    "<none>".to_string()
                } else {
                    by.join(",")
                };
                rows.push(vec![n, by]);
            }
            print(&super::columns(&rows))?;
            Ok(0)
        }
        crate::cli::VolumeCommand::Rm { names } => {
            for name in names {
                crate::spec::validate_name("volume name", name).map_err(Usage::Spec)?;
            }
            let users = users(&root);
            for name in names {
                if let Some((_, pod)) = users.iter().find(|(claim, _)| claim == name) {
                    bail!("volume {name:?} is in use by pod {pod:?}. Hint: launcher down {pod}");
                }
                let path = root.roots.claim(name);
                if !path.is_dir() {
                    bail!("volume {name:?} not found");
                }
                std::fs::remove_dir_all(&path)
                    .with_context(|| format!("failed to remove {}", path.display()))?;
                print(&format!("{name}\n"))?;
            }
            Ok(0)
        }
    }
}

/// (claim, pod) for every pod under the state root (whose data is under its data
/// root).
fn users(root: &crate::state::Root) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for pod in root.pods() {
        let Ok(rec) = PodRecord::load(root, &pod) else {
            continue;
        };
        for v in &rec.spec.volumes {
            if let VolumeSource::Claim { name, .. } = &v.source {
                out.push((name.clone(), pod.clone()));
            }
        }
    }
    out
}
