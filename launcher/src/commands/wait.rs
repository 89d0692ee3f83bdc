//! `launcher wait NAME --for=...`: until a pod meets a condition, as `kubectl wait`.
//!
//! It waits on events, never by polling: inotify on the state root (a pod's directory
//! appearing or going) and on the pod's directory (the supervisor renaming a new
//! status.json into place), and the supervisor's pidfd (its death freezes the pod's
//! status, which then reads Unknown). Each wake-up reads the pod again and judges it.

use super::{print, Opts, PodHandle, Usage};
use crate::cli;
use crate::state::StateError;
use anyhow::{bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use serde_json::Value;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

/// What `--for` asks.
#[derive(Debug, PartialEq)]
enum Target {
    /// A condition of status.conditions with this status (both matched without case).
    Condition {
        kind: String,
        status: String,
    },
    /// A field of the Pod object: present (no value), or printing as `value`.
    JsonPath {
        expr: String,
        path: Vec<Step>,
        value: Option<String>,
    },
    Delete,
    Create,
}

#[derive(Debug, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
}

/// What one look at the pod says.
enum Verdict {
    Met,
    NotYet,
    /// It cannot happen any more; why.
    Never(String),
}

pub fn wait(opts: &Opts, args: &cli::Wait) -> Result<i32> {
    let target = parse_for(&args.condition).map_err(Usage::Invalid)?;
    let timeout = crate::quantity::parse_duration(&args.timeout)
        .map_err(|e| Usage::Invalid(format!("--timeout: {e}")))?;
    let pod = PodHandle::new(opts, &args.name)?;
    let deadline = Instant::now() + timeout;
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
        .context("failed to watch the state root (inotify)")?;
    inotify
        .add_watch(
            &pod.root.dir,
            AddWatchFlags::IN_CREATE
                | AddWatchFlags::IN_MOVED_TO
                | AddWatchFlags::IN_DELETE
                | AddWatchFlags::IN_MOVED_FROM
                | AddWatchFlags::IN_ONLYDIR,
        )
        .with_context(|| format!("failed to watch {}", pod.root.dir.display()))?;
    let mut seen = false;
    loop {
        // Watch first, then look: a change after the look wakes the poll below.
        let _ = inotify.add_watch(
            &pod.dir(),
            AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_CLOSE_WRITE | AddWatchFlags::IN_ONLYDIR,
        );
        let (verdict, supervisor) = judge(&pod, &target, &mut seen)?;
        match verdict {
            Verdict::Met => {
                print(&format!("pod/{} condition met\n", args.name))?;
                return Ok(0);
            }
            Verdict::Never(why) => bail!("{why}"),
            Verdict::NotYet => {}
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("timed out waiting for the condition on pods/{}", args.name);
        }
        let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
        let mut fds = vec![PollFd::new(inotify.as_fd(), PollFlags::POLLIN)];
        if let Some(fd) = &supervisor {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e).context("failed to wait (poll)"),
        }
        // Only that something changed matters, not what.
        while inotify.read_events().is_ok_and(|e| !e.is_empty()) {}
    }
}

/// Looks at the pod once: the verdict, and a pidfd of its supervisor while it runs.
fn judge(pod: &PodHandle, target: &Target, seen: &mut bool) -> Result<(Verdict, Option<OwnedFd>)> {
    let gone = |e: &anyhow::Error| matches!(e.downcast_ref(), Some(StateError::NotFound(_)));
    let object = match pod.object() {
        Ok(o) => o,
        Err(e) if gone(&e) => {
            let verdict = match target {
                Target::Delete => Verdict::Met,
                Target::Create => Verdict::NotYet,
                _ if *seen => Verdict::Never(format!("pod {:?} was deleted", pod.name)),
                _ => return Err(e),
            };
            return Ok((verdict, None));
        }
        Err(e) => return Err(e),
    };
    *seen = true;
    let supervisor = pod
        .record()
        .ok()
        .and_then(|r| r.supervisor)
        .filter(|s| s.alive())
        .and_then(|s| crate::sys::pidfd_open(s.pid).ok());
    let met = match target {
        Target::Create => true,
        Target::Delete => false,
        Target::Condition { kind, status } => object["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| {
                c["type"]
                    .as_str()
                    .is_some_and(|t| t.eq_ignore_ascii_case(kind))
                    && c["status"]
                        .as_str()
                        .is_some_and(|s| s.eq_ignore_ascii_case(status))
            }),
        Target::JsonPath { path, value, .. } => match (lookup(&object, path), value) {
            (Some(found), Some(want)) => printed(found) == *want,
            (Some(_), None) => true,
            (None, _) => false,
        },
    };
    if met {
        return Ok((Verdict::Met, supervisor));
    }
    // Nothing changes a pod any more once it ended or nobody supervises it.
    let phase = object["status"]["phase"].as_str().unwrap_or("Unknown");
    let ended = matches!(phase, "Succeeded" | "Failed") || supervisor.is_none();
    if ended && !matches!(target, Target::Delete) {
        let why = object["status"]["reason"]
            .as_str()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        let wanted = match target {
            Target::Condition { kind, status } => format!("condition {kind}={status}"),
            Target::JsonPath { expr, value, .. } => match value {
                Some(v) => format!("{expr}={v}"),
                None => expr.clone(),
            },
            _ => String::new(),
        };
        let msg = format!(
            "pod/{} is {phase}{why} and will not change any more: {wanted} cannot be met",
            pod.name
        );
        return Ok((Verdict::Never(msg), supervisor));
    }
    Ok((Verdict::NotYet, supervisor))
}

/// A value as kubectl's jsonpath prints it: strings bare, the rest as JSON.
fn printed(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn lookup<'a>(mut v: &'a Value, path: &[Step]) -> Option<&'a Value> {
    for step in path {
        v = match step {
            Step::Field(f) => v.get(f)?,
            Step::Index(i) => v.get(i)?,
        };
    }
    (!v.is_null()).then_some(v)
}

/// `--for`, as kubectl takes it.
fn parse_for(s: &str) -> Result<Target, String> {
    let bad = |why: &str| format!("--for {s:?}: {why}");
    if s.eq_ignore_ascii_case("delete") {
        return Ok(Target::Delete);
    }
    if s.eq_ignore_ascii_case("create") {
        return Ok(Target::Create);
    }
    if let Some(rest) = s.strip_prefix("condition=") {
        let (kind, status) = rest.split_once('=').unwrap_or((rest, "True"));
        if kind.is_empty() || status.is_empty() {
            return Err(bad("expected condition=NAME or condition=NAME=VALUE"));
        }
        return Ok(Target::Condition {
            kind: kind.into(),
            status: status.into(),
        });
    }
    if let Some(rest) = s.strip_prefix("jsonpath=") {
        // The expression is braced; a value, if any, follows the closing brace.
        let rest = rest.trim_matches('\'');
        let (expr, value) = match rest.find('}') {
            Some(end) => (&rest[..=end], rest[end + 1..].strip_prefix('=')),
            None => {
                return Err(bad(
                    "expected jsonpath='{.FIELD}' or jsonpath='{.FIELD}'=VALUE",
                ))
            }
        };
        let value = value.map(|v| v.trim_matches('\'').to_string());
        if rest.len() > expr.len() && value.is_none() {
            return Err(bad("expected '=' after the expression"));
        }
        let path = parse_path(expr).map_err(|why| bad(&why))?;
        return Ok(Target::JsonPath {
            expr: expr.into(),
            path,
            value,
        });
    }
    Err(bad(
        "expected condition=NAME[=VALUE], jsonpath='{.FIELD}'[=VALUE], delete or create",
    ))
}

/// `{.a.b[0].c}`: fields and indexes, the part of JSONPath a pod's status needs.
fn parse_path(expr: &str) -> Result<Vec<Step>, String> {
    let inner = expr
        .strip_prefix('{')
        .and_then(|e| e.strip_suffix('}'))
        .filter(|e| e.starts_with('.') && e.len() > 1)
        .ok_or("the expression must look like {.status.phase}")?;
    let mut steps = Vec::new();
    for part in inner[1..].split('.') {
        let (field, mut idx) = part.split_once('[').map_or((part, ""), |(f, i)| (f, i));
        if field.is_empty() || !field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "unsupported path element {part:?}: fields and [N] indexes only"
            ));
        }
        steps.push(Step::Field(field.into()));
        while !idx.is_empty() {
            let (n, after) = idx
                .split_once(']')
                .ok_or_else(|| format!("unclosed '[' in {part:?}"))?;
            let n = n
                .parse()
                .map_err(|_| format!("unsupported index [{n}]: a number only"))?;
            steps.push(Step::Index(n));
            idx = after.strip_prefix('[').unwrap_or(after);
            if !after.is_empty() && !after.starts_with('[') {
                return Err(format!("unsupported path element {part:?}"));
            }
        }
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn for_is_read_as_kubectl_reads_it() {
        assert_eq!(parse_for("delete"), Ok(Target::Delete));
        assert_eq!(
            parse_for("condition=Ready"),
            Ok(Target::Condition {
                kind: "Ready".into(),
                status: "True".into()
            })
        );
        assert_eq!(
            parse_for("condition=ContainersReady=false"),
            Ok(Target::Condition {
                kind: "ContainersReady".into(),
                status: "false".into()
            })
        );
        assert_eq!(
            parse_for("jsonpath={.status.phase}=Succeeded"),
            Ok(Target::JsonPath {
                expr: "{.status.phase}".into(),
                path: vec![Step::Field("status".into()), Step::Field("phase".into())],
                value: Some("Succeeded".into()),
            })
        );
        let Ok(Target::JsonPath { path, value, .. }) =
            parse_for("jsonpath='{.status.containerStatuses[1].restartCount}'")
        else {
            panic!("not parsed");
        };
        assert_eq!(value, None);
        assert_eq!(
            path[1..],
            [
                Step::Field("containerStatuses".into()),
                Step::Index(1),
                Step::Field("restartCount".into())
            ]
        );
        for bad in [
            "ready",
            "condition=",
            "jsonpath=.status.phase",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}=True",
            "jsonpath={.status.phase}Running",
            "jsonpath={}",
        ] {
            assert!(parse_for(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_print_as_kubectl_prints_them() {
        let pod: Value = serde_json::json!({"status": {"phase": "Running", "containerStatuses": [{"restartCount": 2, "ready": true}]}});
        let Ok(Target::JsonPath { path, .. }) =
            parse_for("jsonpath={.status.containerStatuses[0].restartCount}")
        else {
            panic!();
        };
        assert_eq!(lookup(&pod, &path).map(printed), Some("2".into()));
        let Ok(Target::JsonPath { path, .. }) = parse_for("jsonpath={.status.podIP}") else {
            panic!();
        };
        assert_eq!(lookup(&pod, &path), None);
    }
}
