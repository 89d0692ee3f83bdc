//! `launcher top [NAME] [--containers]`: CPU and memory use of pods, as `kubectl top
//! pod` prints them, read from the pods' cgroups: CPU in millicores as the rate of
//! `usage_usec` over a short window, memory as the working set in Mi. A pod's figures
//! are the sums of its containers', as metrics-server counts them (pause is left out).

use super::{print, Opts, PodHandle, Usage};
use crate::cgroup::{cpu, memory, PodCgroup};
use crate::cli;
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// One container's cgroup leaf and what was read of it.
struct Sample {
    pod: String,
    container: String,
    leaf: PathBuf,
    cpu_before: u64,
    milli: u64,
    /// None where memory is not accounted.
    memory: Option<u64>,
}

pub fn top(opts: &Opts, args: &cli::Top) -> Result<i32> {
    let window = crate::quantity::parse_duration(&args.window)
        .ok()
        .filter(|d| !d.is_zero() && *d <= Duration::from_secs(60))
        .ok_or_else(|| {
            Usage::Invalid(format!(
                "--window {:?}: expected a duration from 1ms to 1m (500ms, 2s)",
                args.window
            ))
        })?;
    let root = opts.open_root()?;
    let names: Vec<String> = match &args.name {
        Some(n) => vec![n.clone()],
        None => root.pods(),
    };
    let mut samples = Vec::new();
    for name in &names {
        let pod = PodHandle::under(&root, name)?;
        let rec = match pod.record() {
            Ok(r) => r,
            Err(e) if args.name.is_some() => return Err(e.into()),
            Err(_) => continue,
        };
        let running = super::handle::supervisor_alive(&rec) && rec.pause.is_some_and(|p| p.alive());
        if !running {
            if args.name.is_some() {
                bail!("pod {name:?} is not running");
            }
            continue;
        }
        let Some(dir) = rec.cgroup.clone() else {
            if args.name.is_some() {
                bail!("pod {name:?} has no cgroup of its own (cgroup2 is read-only where it runs): there is nothing to measure");
            }
            continue;
        };
        let cg = PodCgroup { dir };
        for c in rec.spec.all_containers() {
            let leaf = cg.leaf(&c.name);
            let Some(cpu_before) = cpu::usage_usec(&leaf) else {
                continue;
            };
            samples.push(Sample {
                pod: name.clone(),
                container: c.name.clone(),
                leaf,
                cpu_before,
                milli: 0,
                memory: None,
            });
        }
    }
    if samples.is_empty() {
        super::warn("no pods found");
        return Ok(0);
    }
    // CPU time is accounted in every cgroup2; memory only with its controller.
    let memory_accounted = memory::working_set(&samples[0].leaf).is_some();
    if !memory_accounted {
        let pod_cgroup = samples[0].leaf.parent().unwrap_or(&samples[0].leaf);
        super::warn(&format!(
            "cgroup {} has no memory controller: memory use is not shown. Hint: {}",
            pod_cgroup.display(),
            crate::cgroup::HOW_TO_GET_CONTROLLERS
        ));
    }
    let start = Instant::now();
    std::thread::sleep(window);
    let elapsed = start.elapsed().as_micros().max(1) as u64;
    for s in &mut samples {
        let used = cpu::usage_usec(&s.leaf).unwrap_or(s.cpu_before);
        s.milli = used.saturating_sub(s.cpu_before) * 1000 / elapsed;
        s.memory = memory::working_set(&s.leaf);
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    if args.containers {
        rows.push(
            ["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]
                .map(String::from)
                .to_vec(),
        );
        for s in &samples {
            rows.push(vec![
                s.pod.clone(),
                s.container.clone(),
                format!("{}m", s.milli),
                mebibytes(s.memory),
            ]);
        }
    } else {
        rows.push(
            ["NAME", "CPU(cores)", "MEMORY(bytes)"]
                .map(String::from)
                .to_vec(),
        );
        let mut i = 0;
        while i < samples.len() {
            let pod = &samples[i].pod;
            let of_pod: Vec<&Sample> = samples[i..].iter().take_while(|s| &s.pod == pod).collect();
            let milli: u64 = of_pod.iter().map(|s| s.milli).sum();
            let bytes: Option<u64> = of_pod.iter().map(|s| s.memory).sum();
            rows.push(vec![pod.clone(), format!("{milli}m"), mebibytes(bytes)]);
            i += of_pod.len();
        }
    }
    print(&super::columns(&rows))?;
    Ok(0)
}

/// Bytes as kubectl top prints them: whole mebibytes, rounded down; `<unknown>`
/// where memory is not accounted (kubectl's word for a missing value).
fn mebibytes(bytes: Option<u64>) -> String {
    match bytes {
        Some(b) => format!("{}Mi", b >> 20),
        None => "<unknown>".into(),
    }
}
