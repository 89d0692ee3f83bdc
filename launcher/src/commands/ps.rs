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
    let (pods, code) = listing(opts, &root, &asked, selector.as_ref(), true);
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
        if args.watch {
            watch(opts, &root, args, &asked, selector.as_ref(), &pods, wide)?;
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
    if args.watch {
        watch(opts, &root, args, &asked, selector.as_ref(), &pods, wide)?;
    }
    Ok(code)
}

/// `-w`: a row for each pod each time its row changes (AGE aside), as kubectl get
/// -w prints them, woken by inotify when a pod's status is written or a pod comes or
/// goes; until interrupted.
fn watch(
    opts: &Opts,
    root: &crate::state::Root,
    args: &cli::Ps,
    asked: &[String],
    selector: Option<&crate::selector::Selector>,
    shown: &[Value],
    wide: bool,
) -> Result<()> {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    use std::os::fd::AsFd;
    let key = |pod: &Value| {
        let mut r = row(pod, wide);
        r.remove(4); // AGE changes by itself
        r
    };
    let mut last: std::collections::HashMap<String, Vec<String>> =
        (shown.iter()).map(|p| (name_of(p), key(p))).collect();
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
        .map_err(|e| anyhow::anyhow!("failed to watch the state root (inotify): {e}"))?;
    let watch_flags = AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_ONLYDIR;
    inotify
        .add_watch(&root.dir, watch_flags)
        .map_err(|e| anyhow::anyhow!("failed to watch {}: {e}", root.dir.display()))?;
    loop {
        for n in root.pods() {
            let _ = inotify.add_watch(&root.pod_dir(&n), AddWatchFlags::IN_MOVED_TO);
        }
        let mut fds = [nix::poll::PollFd::new(
            inotify.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => anyhow::bail!("failed to wait (poll): {e}"),
        }
        while inotify.read_events().is_ok_and(|e| !e.is_empty()) {}
        let (pods, _) = listing(opts, root, asked, selector, false);
        let mut rows = Vec::new();
        for pod in &pods {
            let k = key(pod);
            if last.get(&name_of(pod)) != Some(&k) {
                last.insert(name_of(pod), k);
                let mut r = row(pod, wide);
                if args.show_labels {
                    let labels: Vec<String> = (labels_of(pod).iter())
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    r.push(labels.join(","));
                }
                rows.push(r);
            }
        }
        if !rows.is_empty() {
            print(&super::columns(&rows))?;
        }
    }
}

fn name_of(pod: &Value) -> String {
    pod["metadata"]["name"].as_str().unwrap_or("?").to_string()
}

/// The pods `ps` shows: every pod (those with a record, and pod cgroups whose state
/// was lost), or the ones asked for in that order (`say`: each that is not there is
/// kubectl's NotFound, and the code 1), those the selector picks.
fn listing(
    opts: &Opts,
    root: &crate::state::Root,
    asked: &[String],
    selector: Option<&crate::selector::Selector>,
    say: bool,
) -> (Vec<Value>, i32) {
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
                    if say {
                        super::warn_plain(&format!(
                            "Error from server (NotFound): pods {n:?} not found"
                        ));
                    }
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
            PodHandle::under(root, n)
                .and_then(|h| h.object())
                .unwrap_or_else(|e| lost(n, &e))
        })
        .filter(|pod| selector.map_or(true, |s| s.matches(&labels_of(pod))))
        .collect();
    (pods, code)
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
    let (status, restarts) = status_column(pod, std::time::SystemTime::now());
    let mut row = vec![
        pod["metadata"]["name"].as_str().unwrap_or("?").to_string(),
        format!("{ready}/{total}"),
        status,
        restarts,
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

/// The STATUS and RESTARTS columns as kubectl's printPod computes them: the phase,
/// or the pod's reason; during the init sequence the first unfinished init
/// container's (`Init:N/M`, `Init:CrashLoopBackOff`, `Init:Error`); then the app
/// containers' waiting or terminated reasons (`ContainerCreating`,
/// `CrashLoopBackOff`, `Completed`, `Error`, `OOMKilled`), `Running` again while one
/// still runs; `Terminating` once a stop was asked for. Restarts count with the time
/// since the last one: `3 (2s ago)`.
fn status_column(pod: &Value, now: std::time::SystemTime) -> (String, String) {
    let list = |key: &str| pod["status"][key].as_array().cloned().unwrap_or_default();
    let str_of = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut reason = match pod["status"]["reason"].as_str() {
        Some(r) => r.to_string(),
        None => str_of(&pod["status"]["phase"]),
    };
    let sidecars = sidecars(pod);
    let mut restarts = 0;
    let mut last_restart: Option<std::time::SystemTime> = None;
    let mut note_restarts = |c: &Value| {
        restarts += c["restartCount"].as_u64().unwrap_or(0);
        let finished = c["lastState"]["terminated"]["finishedAt"].as_str();
        if let Some(t) = finished.and_then(|t| humantime::parse_rfc3339(t).ok()) {
            last_restart = Some(last_restart.map_or(t, |l| l.max(t)));
        }
    };
    let inits = list("initContainerStatuses");
    let mut initializing = false;
    for (i, c) in inits.iter().enumerate() {
        note_restarts(c);
        let terminated = &c["state"]["terminated"];
        let waiting = c["state"]["waiting"]["reason"].as_str().unwrap_or_default();
        let sidecar = c["name"].as_str().is_some_and(|n| sidecars.contains(&n));
        if terminated["exitCode"] == 0 || (sidecar && c["started"] == true) {
            continue;
        }
        initializing = true;
        reason = if terminated.is_object() {
            match terminated["reason"].as_str() {
                Some(r) if !r.is_empty() => format!("Init:{r}"),
                _ => match terminated["signal"].as_i64() {
                    Some(sig) if sig != 0 => format!("Init:Signal:{sig}"),
                    _ => format!("Init:ExitCode:{}", terminated["exitCode"]),
                },
            }
        } else if !waiting.is_empty() && waiting != "PodInitializing" {
            format!("Init:{waiting}")
        } else {
            format!("Init:{i}/{}", inits.len())
        };
        break;
    }
    let initialized = (pod["status"]["conditions"].as_array().into_iter().flatten())
        .any(|c| c["type"] == "Initialized" && c["status"] == "True");
    if !initializing || initialized {
        restarts = 0;
        last_restart = None;
        let mut has_running = false;
        for c in list("containerStatuses").iter().rev() {
            restarts += c["restartCount"].as_u64().unwrap_or(0);
            let finished = c["lastState"]["terminated"]["finishedAt"].as_str();
            if let Some(t) = finished.and_then(|t| humantime::parse_rfc3339(t).ok()) {
                last_restart = Some(last_restart.map_or(t, |l| l.max(t)));
            }
            let state = &c["state"];
            let waiting = state["waiting"]["reason"].as_str().unwrap_or_default();
            let terminated = &state["terminated"];
            if !waiting.is_empty() {
                reason = waiting.to_string();
            } else if let Some(r) = terminated["reason"].as_str().filter(|r| !r.is_empty()) {
                reason = r.to_string();
            } else if terminated.is_object() {
                reason = match terminated["signal"].as_i64() {
                    Some(sig) if sig != 0 => format!("Signal:{sig}"),
                    _ => format!("ExitCode:{}", terminated["exitCode"]),
                };
            } else if c["ready"] == true && state["running"].is_object() {
                has_running = true;
            }
        }
        if reason == "Completed" && has_running {
            let ready = (pod["status"]["conditions"].as_array().into_iter().flatten())
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            reason = if ready { "Running" } else { "NotReady" }.to_string();
        }
    }
    let terminal = matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    );
    if pod["metadata"]["deletionTimestamp"].is_string() && !terminal {
        reason = "Terminating".to_string();
    }
    let restarts = match (restarts, last_restart) {
        (0, _) | (_, None) => restarts.to_string(),
        (n, Some(t)) => {
            let ago = super::age(&humantime::format_rfc3339_seconds(t).to_string(), now);
            format!("{n} ({ago} ago)")
        }
    };
    (reason, restarts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(t: &str) -> std::time::SystemTime {
        humantime::parse_rfc3339(t).unwrap()
    }

    fn pod(phase: &str, inits: Value, apps: Value, initialized: bool) -> Value {
        json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}]},
            "status": {
                "phase": phase,
                "conditions": [
                    {"type": "Initialized", "status": if initialized { "True" } else { "False" }},
                    {"type": "Ready", "status": "True"}
                ],
                "initContainerStatuses": inits,
                "containerStatuses": apps,
            }
        })
    }

    #[test]
    fn the_status_column_is_kubectls() {
        let now = at("2026-12-01T10:00:10Z");
        let running =
            json!({"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}});
        let col = |p: &Value| status_column(p, now);
        assert_eq!(
            col(&pod("Running", json!([]), json!([running]), true)),
            ("Running".into(), "0".into())
        );
        let crashing = json!({"name": "a", "ready": false, "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2026-12-01T10:00:08Z"}}});
        assert_eq!(
            col(&pod("Running", json!([]), json!([crashing]), true)),
            ("CrashLoopBackOff".into(), "3 (2s ago)".into())
        );
        let creating = json!({"name": "a", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}});
        let init_running = json!({"name": "i", "restartCount": 0, "state": {"running": {}}});
        assert_eq!(
            col(&pod(
                "Pending",
                json!([init_running]),
                json!([creating.clone()]),
                false
            ))
            .0,
            "Init:0/1"
        );
        let init_failed = json!({"name": "i", "restartCount": 0, "state": {"terminated": {"exitCode": 2, "reason": "Error"}}});
        assert_eq!(
            col(&pod(
                "Failed",
                json!([init_failed]),
                json!([creating]),
                false
            ))
            .0,
            "Init:Error"
        );
        let done = json!({"name": "a", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
        assert_eq!(
            col(&pod("Succeeded", json!([]), json!([done.clone()]), true)).0,
            "Completed"
        );
        // A container still running beside a completed one: Running.
        assert_eq!(
            col(&pod(
                "Running",
                json!([]),
                json!([done, running.clone()]),
                true
            ))
            .0,
            "Running"
        );
        let failed = json!({"name": "a", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}});
        assert_eq!(
            col(&pod("Failed", json!([]), json!([failed]), true)).0,
            "OOMKilled"
        );
        let mut stopping = pod("Running", json!([]), json!([running]), true);
        stopping["metadata"]["deletionTimestamp"] = json!("2026-12-01T10:00:40Z");
        assert_eq!(col(&stopping).0, "Terminating");
    }
}
