//! `launcher logs NAME`: a container's output from its CRI log, with kubectl's
//! selection (`--tail`, `--since`, `--since-time`, `--limit-bytes`, `-p` for the
//! previous instance), decoration (`--timestamps`, `--prefix`) and `-f`, for one
//! container or all of them, across rotated files.

use super::{handle::supervisor_alive, ClosedStdout, Opts, PodHandle, Usage};
use crate::cli;
use crate::logs::{self, Follower, Line};
use anyhow::{Context, Result};
use std::io::Write;
use std::time::{Duration, SystemTime};

/// What of the lines is printed, and how.
struct Filter {
    tail: Option<usize>,
    since: Option<SystemTime>,
    timestamps: bool,
    /// Bytes still to print, if limited.
    limit: Option<u64>,
}

impl Filter {
    fn new(args: &cli::Logs) -> Result<Filter, Usage> {
        // kubectl's: all lines of one pod, the last 10 of each pod a selector picks.
        let default = if args.selector.is_some() { 10 } else { -1 };
        let tail = match args.tail.unwrap_or(default) {
            -1 => None,
            n => Some(usize::try_from(n).map_err(|_| {
                Usage::Invalid(format!(
                    "--tail must be -1 (all) or a count of lines, got {n}"
                ))
            })?),
        };
        let since = match (&args.since, &args.since_time) {
            (Some(d), _) => {
                let d = crate::quantity::parse_duration(d)
                    .map_err(|e| Usage::Invalid(format!("--since: {e}")))?;
                Some(
                    SystemTime::now()
                        .checked_sub(d)
                        .unwrap_or(SystemTime::UNIX_EPOCH),
                )
            }
            (None, Some(t)) => Some(humantime::parse_rfc3339_weak(t).map_err(|_| {
                Usage::Invalid(format!(
                    "--since-time {t:?} is not an RFC 3339 time (2026-11-23T10:00:00Z)"
                ))
            })?),
            (None, None) => None,
        };
        let limit = match args.limit_bytes {
            None => None,
            Some(n) if n > 0 => Some(n as u64),
            Some(n) => {
                return Err(Usage::Invalid(format!(
                    "--limit-bytes must be greater than 0, got {n}"
                )))
            }
        };
        Ok(Filter {
            tail,
            since,
            timestamps: args.timestamps,
            limit,
        })
    }

    fn shown(&self, line: &Line) -> bool {
        let Some(since) = self.since else {
            return true;
        };
        humantime::parse_rfc3339_weak(&line.time).is_ok_and(|t| t >= since)
    }
}

/// One container's log being read.
struct Source {
    prefix: Option<String>,
    /// Holds each file once opened: `down` removes the pod's directories, and the
    /// last lines are read after that.
    log: Follower,
    /// No line printed yet: `--tail` still applies.
    first: bool,
}

pub fn logs(opts: &Opts, args: &cli::Logs) -> Result<i32> {
    let mut filter = Filter::new(args)?;
    let root = opts.open_root()?;
    let names = match (&args.name, &args.selector) {
        // One name in, one out.
        (Some(name), _) => super::pod_names(std::slice::from_ref(name))?,
        (None, Some(selector)) => {
            let selector = crate::selector::Selector::parse(selector)
                .map_err(|e| Usage::Invalid(format!("--selector: {e}")))?;
            let names: Vec<String> = (root.pods().into_iter())
                .filter(|n| {
                    let labels = crate::record::PodRecord::load(&root, n).map(|r| r.spec.labels);
                    labels.is_ok_and(|l| selector.matches(&l))
                })
                .collect();
            if names.is_empty() {
                super::warn_plain("No resources found in default namespace.");
                return Ok(0);
            }
            names
        }
        (None, None) => return Err(Usage::Invalid("logs: a pod name or -l SELECTOR".into()).into()),
    };
    let container = args.container.as_deref().or(args.container_arg.as_deref());
    // The previous instance has ended: there is nothing to follow.
    let follow = args.follow && !args.previous;
    let mut sources = Vec::new();
    // The pods followed, each as it was when its logs were opened (its uid).
    let mut followed = Vec::new();
    for name in &names {
        let pod = PodHandle::under(&root, name)?;
        let rec = pod.record()?;
        let containers: Vec<&str> = if args.all_containers {
            rec.spec.all_containers().map(|c| c.name.as_str()).collect()
        } else {
            vec![super::pick_container(&rec.spec, name, container)?
                .name
                .as_str()]
        };
        for c in &containers {
            let dir = rec.paths(&pod.root.roots).logs(c);
            let instances = logs::instances(&dir);
            let instance = if args.previous {
                match instances.len().checked_sub(2) {
                    Some(i) => instances[i],
                    None => {
                        anyhow::bail!(
                            "previous terminated container {c:?} in pod {name:?} not found"
                        )
                    }
                }
            } else {
                instances.last().copied().unwrap_or(0)
            };
            sources.push(Source {
                prefix: args.prefix.then(|| format!("[pod/{name}/{c}] ")),
                log: Follower::new(&dir, instance, follow),
                first: true,
            });
        }
        followed.push((pod, rec.facts.uid.clone()));
    }
    let closed = |e: std::io::Error| -> anyhow::Error {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            ClosedStdout.into()
        } else {
            anyhow::Error::from(e).context("failed to write the log")
        }
    };
    let stdout = std::io::stdout();
    loop {
        // Follow while a pod's supervisor runs (not a pod made since under the same
        // name, whose log is another file); then one last read.
        let live = follow
            && (followed.iter()).any(|(pod, uid)| {
                pod.record()
                    .is_ok_and(|r| r.facts.uid == *uid && supervisor_alive(&r))
            });
        let mut out = stdout.lock();
        for src in &mut sources {
            let mut lines = src.log.read().context("failed to read the log")?;
            lines.retain(|l| filter.shown(l));
            if std::mem::take(&mut src.first) {
                if let Some(n) = filter.tail {
                    lines.drain(..lines.len().saturating_sub(n));
                }
            }
            for line in &lines {
                if !print(&mut out, src.prefix.as_deref(), line, &mut filter).map_err(closed)? {
                    out.flush().map_err(closed)?;
                    return Ok(0);
                }
            }
        }
        out.flush().map_err(closed)?;
        drop(out);
        if !live {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Prints one line as asked; false once `--limit-bytes` is used up.
fn print(
    out: &mut impl Write,
    prefix: Option<&str>,
    line: &Line,
    filter: &mut Filter,
) -> std::io::Result<bool> {
    let mut text = Vec::with_capacity(line.message.len() + 64);
    if let Some(p) = prefix {
        text.extend_from_slice(p.as_bytes());
    }
    if filter.timestamps {
        text.extend_from_slice(line.time.as_bytes());
        text.push(b' ');
    }
    text.extend_from_slice(&line.message);
    text.push(b'\n');
    match &mut filter.limit {
        None => out.write_all(&text).map(|()| true),
        Some(left) => {
            let n = (*left).min(text.len() as u64);
            out.write_all(&text[..n as usize])?;
            *left -= n;
            Ok(*left > 0)
        }
    }
}
