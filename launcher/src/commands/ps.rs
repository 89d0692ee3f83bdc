//! `launcher ps`: one line per pod, as `kubectl get pods` prints them.
//!
//! Pods are found in the state root and, for pods whose state was lost, in the
//! cgroup parent: a pod cgroup (one with a `_pause` leaf) without a readable record
//! is listed as Unknown (StateLost, or StateCorrupt for a record that does not parse),
//! and `down NAME` still removes it. STATUS shows the pod's reason when it has one,
//! as kubectl does (SupervisorGone, DeadlineExceeded, ...).

use super::{print, Opts, PodHandle, Usage};
use crate::cgroup::{PodCgroup, PAUSE_LEAF};
use crate::cli::{self, PsFormat};
use crate::state::StateError;
use anyhow::Result;
use serde_json::{json, Value};
use std::collections::BTreeSet;

pub fn ps(opts: &Opts, args: &cli::Ps) -> Result<i32> {
    let selector = args
        .selector
        .as_deref()
        .map(crate::selector::Selector::parse)
        .transpose()
        .map_err(|e| Usage::Invalid(format!("--selector: {e}")))?;
    let asked = super::pod_names(&args.names)?;
    let root = opts.open_root()?;
    let mut names: BTreeSet<String> = root.pods().into_iter().collect();
    if let Ok((_, parent)) = opts.cgroup_parent() {
        let cgroups = std::fs::read_dir(&parent).into_iter().flatten().flatten();
        names.extend(
            cgroups
                .filter(|e| e.path().join(PAUSE_LEAF).is_dir())
                .filter(|e| crate::sandbox::ours(&PodCgroup { dir: e.path() }, &root.dir))
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| crate::spec::validate_name("pod name", n).is_ok()),
        );
    }
    // Named pods: in the order asked, each that is not there kubectl's NotFound.
    let mut code = 0;
    let names: Vec<String> = match asked.is_empty() {
        true => names.into_iter().collect(),
        false => (asked.iter())
            .filter(|n| {
                let found = names.contains(*n);
                if !found {
                    super::warn_plain(&format!(
                        "Error from server (NotFound): pods {n:?} not found"
                    ));
                    code = 1;
                }
                found
            })
            .cloned()
            .collect(),
    };
    let pods: Vec<Value> = names
        .iter()
        .map(|n| {
            PodHandle::under(&root, n)
                .and_then(|h| h.object())
                .unwrap_or_else(|e| lost(n, &e))
        })
        .filter(|pod| {
            selector
                .as_ref()
                .map_or(true, |s| s.matches(&labels_of(pod)))
        })
        .collect();
    if let Some(format @ (PsFormat::Json | PsFormat::Yaml)) = args.output {
        // One pod asked for by name is the object itself, as kubectl prints it.
        let out = match (asked.len(), pods.as_slice()) {
            (1, [pod]) => pod.clone(),
            _ => {
                json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": pods})
            }
        };
        print(&match format {
            PsFormat::Yaml => crate::kube::to_yaml(&out)?,
            _ => serde_json::to_string_pretty(&out)? + "\n",
        })?;
        return Ok(code);
    }
    if let Some(PsFormat::Name) = args.output {
        let lines: String = (pods.iter())
            .map(|p| format!("pod/{}\n", p["metadata"]["name"].as_str().unwrap_or("?")))
            .collect();
        print(&lines)?;
        return Ok(code);
    }
    let wide = matches!(args.output, Some(PsFormat::Wide));
    let mut header = vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"];
    if wide {
        header.extend(["IP", "PAUSE-PID", "CGROUP"]);
    }
    if args.show_labels {
        header.push("LABELS");
    }
    if pods.is_empty() {
        // kubectl's words, on stderr, so that the output stays a table.
        if asked.is_empty() {
            super::warn("no pods found");
        }
        return Ok(code);
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    if !args.no_headers {
        rows.push(header.into_iter().map(String::from).collect());
    }
    rows.extend(pods.iter().map(|pod| {
        let mut r = row(pod, wide);
        if args.show_labels {
            let labels: Vec<String> = labels_of(pod)
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            r.push(if labels.is_empty() {
                "<none>".into()
            } else {
                labels.join(",")
            });
        }
        r
    }));
    print(&super::columns(&rows))?;
    Ok(code)
}

/// A pod whose cgroup exists but whose state is gone, unreadable or tampered with:
/// phase Unknown, with the reason (and on stderr, what is wrong with the file).
fn lost(name: &str, error: &anyhow::Error) -> Value {
    let corrupt = error
        .downcast_ref::<StateError>()
        .filter(|e| e.is_corrupt());
    let (reason, what) = match corrupt {
        Some(e) => {
            eprintln!("launcher: warning: pod {name}: {e}");
            (
                "StateCorrupt",
                "was changed by someone other than the runtime",
            )
        }
        None => ("StateLost", "is missing or unreadable"),
    };
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": []},
        "status": {
            "phase": "Unknown",
            "reason": reason,
            "message": format!("the pod's state {what}; `launcher down {name}` removes the pod"),
        },
    })
}

fn labels_of(pod: &Value) -> std::collections::BTreeMap<String, String> {
    pod["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

/// Names of the pod's sidecars: init containers with restartPolicy Always.
fn sidecars(pod: &Value) -> Vec<&str> {
    pod["spec"]["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["restartPolicy"] == "Always")
        .filter_map(|c| c["name"].as_str())
        .collect()
}

fn row(pod: &Value, wide: bool) -> Vec<String> {
    let statuses = |key: &str| pod["status"][key].as_array().cloned().unwrap_or_default();
    let cs = statuses("containerStatuses");
    let inits = statuses("initContainerStatuses");
    // As kubectl counts them: sidecars are in READY beside the app containers.
    let sidecars = sidecars(pod);
    let sidecar = |c: &Value| c["name"].as_str().is_some_and(|n| sidecars.contains(&n));
    let ready = cs.iter().filter(|c| c["ready"] == true).count()
        + inits
            .iter()
            .filter(|c| sidecar(c) && c["ready"] == true)
            .count();
    let total = pod["spec"]["containers"].as_array().map_or(0, Vec::len) + sidecars.len();
    let restarts: u64 = cs
        .iter()
        .chain(&inits)
        .filter_map(|c| c["restartCount"].as_u64())
        .sum();
    let waiting = cs.iter().find_map(|c| {
        c["state"]["waiting"]["reason"]
            .as_str()
            .filter(|r| *r == "CrashLoopBackOff")
    });
    // As kubectl: the pod's reason, if it has one, stands for its phase.
    let phase = pod["status"]["phase"].as_str().unwrap_or("Unknown");
    let status = match pod["status"]["reason"].as_str() {
        Some(reason) => reason.to_string(),
        None => init_progress(pod).unwrap_or_else(|| waiting.unwrap_or(phase).to_string()),
    };
    let mut row = vec![
        pod["metadata"]["name"].as_str().unwrap_or("?").to_string(),
        format!("{ready}/{total}"),
        status,
        restarts.to_string(),
        super::age(
            pod["metadata"]["creationTimestamp"].as_str().unwrap_or(""),
            std::time::SystemTime::now(),
        ),
    ];
    if wide {
        row.push(
            pod["status"]["podIP"]
                .as_str()
                .unwrap_or("<none>")
                .to_string(),
        );
        let ann = &pod["metadata"]["annotations"];
        for key in ["launcher/pause-pid", "launcher/cgroup"] {
            row.push(ann[key].as_str().unwrap_or("-").to_string());
        }
    }
    row
}

/// `Init:N/M` while init containers run, as kubectl shows it: a sidecar counts
/// once it has started.
fn init_progress(pod: &Value) -> Option<String> {
    // Past the init sequence (a sidecar may restart later on: that is no init).
    if matches!(
        pod["status"]["phase"].as_str(),
        Some("Running" | "Succeeded")
    ) {
        return None;
    }
    let inits = pod["status"]["initContainerStatuses"].as_array()?;
    let sidecars = sidecars(pod);
    let done = inits
        .iter()
        .filter(|c| {
            let sidecar = c["name"].as_str().is_some_and(|n| sidecars.contains(&n));
            if sidecar {
                c["started"] == true
            } else {
                c["state"]["terminated"]["exitCode"] == 0
            }
        })
        .count();
    (done < inits.len()).then(|| match pod["status"]["phase"].as_str() {
        Some("Failed") => "Init:Error".to_string(),
        _ => format!("Init:{done}/{}", inits.len()),
    })
}
