//! The `launcher` commands, one per file, and what they share: the options every
//! command takes, the checks before touching the machine, and quiet output.

mod attach;
pub mod complete;
mod describe;
mod docs;
mod down;
mod events;
mod exec;
mod handle;
mod logs;
mod ps;
mod status;
mod supervise;
mod top;
mod up;
mod volume;
mod wait;

pub use attach::attach;
pub use describe::describe;
pub use docs::{completion, man};
pub use down::down;
pub use events::events;
pub use exec::exec;
pub use handle::PodHandle;
pub use logs::logs;
pub use ps::ps;
pub use status::status;
pub use supervise::{inputs_of, supervise, supervise_detached};
pub use top::top;
pub use up::up;
pub use volume::volume;
pub use wait::wait;

use crate::cgroup;
use crate::sys;
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Bad input: reported with exit status 2 and nothing started.
#[derive(Debug, thiserror::Error)]
pub enum Usage {
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error(transparent)]
    Manifest(#[from] crate::kube::ManifestError),
    /// A hostPath the pod may not have, or whose type does not match.
    #[error(transparent)]
    Volume(#[from] crate::volumes::VolumeError),
    /// A network or port the pod cannot have (`NetError::is_usage`).
    #[error(transparent)]
    Network(crate::network::NetError),
    #[error("{0}")]
    Invalid(String),
}

/// Standard output is closed (`launcher ps | head -1`): the command ends quietly
/// with 141, as a process killed by SIGPIPE would.
#[derive(Debug, thiserror::Error)]
#[error("standard output is closed")]
pub struct ClosedStdout;

/// Writes `text` to standard output; a reader that is gone is [`ClosedStdout`].
pub fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(ClosedStdout.into()),
        Err(e) => Err(e).context("failed to write to standard output"),
    }
}

/// The container `name` of `spec`'s pod `pod`, or its default one (with kubectl's
/// notice on stderr when it had to choose among several).
pub fn pick_container<'a>(
    spec: &'a crate::spec::PodSpec,
    pod: &str,
    name: Option<&str>,
) -> Result<&'a crate::spec::ContainerSpec> {
    let c = spec
        .container(name)
        .with_context(|| format!("pod {pod:?} has no container {:?}", name.unwrap_or("")))?;
    if name.is_none() {
        if let Some(notice) = spec.defaulted_notice() {
            warn_plain(&notice);
        }
    }
    Ok(c)
}

/// Rows as kubectl prints a table: columns left-aligned, three spaces apart.
pub fn columns(rows: &[Vec<String>]) -> String {
    let n = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..n)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut text = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        text += line.join("   ").trim_end();
        text.push('\n');
    }
    text
}

/// A line on standard error, as is (kubectl's notices carry no program name).
pub fn warn_plain(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// A line on standard error that never fails the command.
pub fn warn(text: &str) {
    let _ = writeln!(std::io::stderr(), "launcher: {text}");
}

pub struct Opts {
    pub root: PathBuf,
    pub data_root: PathBuf,
    pub cgroup_parent: Option<PathBuf>,
    pub pause: Option<PathBuf>,
}

impl Opts {
    /// The state root, with the data root pods made from here keep their data in.
    pub fn open_root(&self) -> Result<crate::state::Root, crate::state::StateError> {
        crate::state::Root::open(&self.root, &self.data_root)
    }

    /// The cgroup2 mount and the directory pod cgroups are made under.
    pub fn cgroup_parent(&self) -> Result<(PathBuf, PathBuf)> {
        let mount = cgroup::cgroup2_mount()?;
        let parent = match &self.cgroup_parent {
            Some(p) if p.components().any(|c| c == std::path::Component::ParentDir) => {
                return Err(Usage::Invalid(format!(
                    "--cgroup-parent {} may not contain \"..\"",
                    p.display()
                ))
                .into())
            }
            Some(p) if p.is_absolute() => p.components().collect(),
            Some(p) => mount.join(p),
            None => mount.join("launcher"),
        };
        if !parent.starts_with(&mount) {
            bail!(
                "--cgroup-parent {} is not under the cgroup2 mount {}",
                parent.display(),
                mount.display()
            );
        }
        Ok((mount, parent))
    }

    fn find_pause(&self) -> Result<PathBuf> {
        if let Some(p) = &self.pause {
            if !p.is_file() {
                bail!("pause binary {} not found", p.display());
            }
            return Ok(p.clone());
        }
        let exe = std::env::current_exe().context("cannot locate the launcher binary")?;
        let beside = exe.with_file_name("pause");
        if beside.is_file() {
            return Ok(beside);
        }
        let path = std::env::var("PATH").unwrap_or_default();
        path.split(':')
            .map(|d| Path::new(d).join("pause"))
            .find(|p| p.is_file())
            .with_context(|| {
                format!(
                    "cannot find the pause binary next to {} or in $PATH. Hint: --pause PATH",
                    exe.display()
                )
            })
    }
}

/// Root, and the capabilities namespaces, cgroups and setns need.
fn preflight() -> Result<()> {
    if sys::euid() != 0 {
        bail!("must run as root: creating namespaces and cgroups needs CAP_SYS_ADMIN");
    }
    use caps::Capability::*;
    let have = caps::read(None, caps::CapSet::Effective).unwrap_or_default();
    for (cap, why) in [
        (
            CAP_SYS_ADMIN,
            "to create namespaces and mount the pod's /proc",
        ),
        (
            CAP_NET_ADMIN,
            "to bring up lo in the pod's network namespace",
        ),
        (CAP_SYS_CHROOT, "to join the pod's mount namespace"),
        (CAP_SETPCAP, "to drop capabilities from containers"),
        (CAP_KILL, "to signal the pod's processes"),
    ] {
        if !have.contains(&cap) {
            bail!("missing capability {cap}, needed {why}");
        }
    }
    Ok(())
}

/// How long ago `t` (RFC 3339) was: `36s`, `5m2s`, `3h`, `2d`, as kubectl says it
/// (its HumanDuration: AGE in `ps`, ages in `describe` and `events`).
pub fn age(t: &str, now: std::time::SystemTime) -> String {
    let Ok(at) = humantime::parse_rfc3339(t) else {
        return "<unknown>".into();
    };
    let s = now.duration_since(at).map(|d| d.as_secs()).unwrap_or(0);
    match s {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 8 * 3600 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// Pod names as kubectl takes them (NAME, or pod/NAME, pods/NAME, po/NAME), each once,
/// in the order given; another TYPE/ is a usage error.
pub(crate) fn pod_names(args: &[String]) -> Result<Vec<String>, Usage> {
    let mut names: Vec<String> = Vec::new();
    for n in args {
        let name = match n.split_once('/') {
            Some(("pod" | "pods" | "po", name)) => name,
            Some((kind, _)) => {
                return Err(Usage::Invalid(format!(
                    "{n:?}: launcher has pods only, not {kind}"
                )))
            }
            None => n.as_str(),
        };
        if !names.iter().any(|m| m == name) {
            names.push(name.to_string());
        }
    }
    Ok(names)
}
