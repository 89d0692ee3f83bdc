//! Where everything of a pod lives, from the runtime's two roots, the pod's name and
//! its uid. Nothing else builds a path of a pod, and nothing turns a path back into
//! facts but [`Roots::leftovers`] (the one place that knows how a directory is named).
//!
//! ```text
//! <state root>/                      --root, /run/launcher (memory: gone at boot)
//!   <pod>/                           0700; flock(2) on it is the pod's lock
//!     pod.json                       the record: spec + what the runtime learned
//!     status.json  events.json       written by the supervisor
//!     stop                           the grace period `down` asks for
//!     attach                         the supervisor's socket for `attach` (0600)
//!     network.lock                   one CNI call at a time for the pod
//!     hosts  hostname  resolv.conf   the pod's /etc files (see `names`)
//!   .new-<pod>-<pid>/                a pod's directory while `up` makes it
//!   .netns/<pod>                     the pod's network namespace, pinned (CNI DEL)
//!   .ports.lock                      published ports are checked under it
//!   .masquerade-<network>            its masquerading is set up (see `network`)
//! <data root>/                       --data-root, /var/lib/launcher (disk)
//!   pods/<pod>_<uid>/                the pod's data, gone with the pod
//!     logs/<container>/<N>.log       one file per container instance (see `logs`)
//!     volumes/<volume>               emptyDirs, and the tmpfs of file volumes
//!   volumes/<claim>                  persistentVolumeClaims, kept after the pod
//! <cgroup parent>/<pod>/             the pod's cgroup (see `cgroup`)
//! ```
//!
//! The uid in the data directory's name is what makes it the pod's: a teardown
//! removes `pods/<pod>_<uid>` of the uid it was given, never a directory a record
//! names.

use std::path::{Path, PathBuf};

/// Where pod state lives unless `--root` says otherwise.
pub const DEFAULT_STATE_ROOT: &str = "/run/launcher";

/// Where pods' data lives unless `--data-root` says otherwise.
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/launcher";

/// A pod's record, in its state directory.
pub const RECORD: &str = "pod.json";
const STATUS: &str = "status.json";
const EVENTS: &str = "events.json";
const STOP: &str = "stop";
const ATTACH: &str = "attach";
const NETWORK_LOCK: &str = "network.lock";

/// The runtime's roots, as given (the caller has made them trusted: see
/// `state::trusted_dir`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    pub state: PathBuf,
    pub data: PathBuf,
}

impl Roots {
    /// The state directory of pod `name`, which exists before its uid is known to
    /// anyone but its record.
    pub fn state_dir(&self, name: &str) -> PathBuf {
        self.state.join(name)
    }

    /// Pod `name`'s status and events, which its state directory holds whatever its
    /// uid (readers that have no record, or do not need it).
    pub fn status(&self, name: &str) -> PathBuf {
        self.state_dir(name).join(STATUS)
    }

    pub fn events(&self, name: &str) -> PathBuf {
        self.state_dir(name).join(EVENTS)
    }

    pub fn stop_request(&self, name: &str) -> PathBuf {
        self.state_dir(name).join(STOP)
    }

    /// Where a supervisor leaves the phases of its stop for the `down` that asked for
    /// them (`LAUNCHER_TIMINGS`): beside the pod's state directory, which the stop
    /// removes.
    pub fn stop_timings(&self, name: &str) -> PathBuf {
        self.state.join(format!(".{name}.timings"))
    }

    pub fn attach_socket(&self, name: &str) -> PathBuf {
        self.state_dir(name).join(ATTACH)
    }

    pub fn network_lock(&self, name: &str) -> PathBuf {
        self.state_dir(name).join(NETWORK_LOCK)
    }

    /// Where pod `name`'s network namespace is pinned while it has a CNI network.
    pub fn netns_pin(&self, name: &str) -> PathBuf {
        self.netns_pins().join(name)
    }

    /// Where `up` makes pod `name`'s directory before renaming it into place.
    pub fn new_state_dir(&self, name: &str) -> PathBuf {
        self.state
            .join(format!(".new-{name}-{}", std::process::id()))
    }

    /// The lock published ports are checked under.
    /// Says network `name`'s masquerading is set up (since boot: the state root is
    /// in memory); `.lock` beside it while it is being.
    pub fn masquerade(&self, network: &str) -> PathBuf {
        self.state.join(format!(".masquerade-{network}"))
    }

    pub fn ports_lock(&self) -> PathBuf {
        self.state.join(".ports.lock")
    }

    /// The directory network namespaces are pinned in.
    pub fn netns_pins(&self) -> PathBuf {
        netns_pins(&self.state)
    }

    /// The named volumes (persistentVolumeClaims), kept across pods.
    pub fn claims(&self) -> PathBuf {
        self.data.join("volumes")
    }

    pub fn claim(&self, name: &str) -> PathBuf {
        self.claims().join(name)
    }

    fn pods_data(&self) -> PathBuf {
        self.data.join("pods")
    }

    /// Everything of pod `name` with uid `uid`.
    pub fn pod(&self, name: &str, uid: &str) -> PodPaths {
        PodPaths {
            name: name.to_string(),
            uid: uid.to_string(),
            state: self.state_dir(name),
            data: self.pods_data().join(format!("{name}_{uid}")),
            roots: self.clone(),
        }
    }

    /// The pods named `name` that left data behind, by the uid their data
    /// directory's name carries: for a `down` whose pod's record is lost.
    pub fn leftovers(&self, name: &str) -> Vec<PodPaths> {
        let prefix = format!("{name}_");
        let mut found: Vec<PodPaths> = std::fs::read_dir(self.pods_data())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let file = e.file_name().into_string().ok()?;
                let uid = file.strip_prefix(&prefix)?;
                valid_uid(uid).then(|| self.pod(name, uid))
            })
            .collect();
        found.sort_by(|a, b| a.uid.cmp(&b.uid));
        found
    }
}

/// A uid as the runtime makes them (a UUID: hex digits and dashes), so that
/// `<name>_<uid>` names one pod and no path can hide in it.
pub fn valid_uid(uid: &str) -> bool {
    !uid.is_empty() && uid.len() <= 64 && uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// The paths of one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodPaths {
    pub name: String,
    pub uid: String,
    /// `<state root>/<pod>`.
    pub state: PathBuf,
    /// `<data root>/pods/<pod>_<uid>`.
    pub data: PathBuf,
    /// The roots the pod is under.
    pub roots: Roots,
}

impl PodPaths {
    pub fn record(&self) -> PathBuf {
        self.state.join(RECORD)
    }

    pub fn status(&self) -> PathBuf {
        self.roots.status(&self.name)
    }

    pub fn events(&self) -> PathBuf {
        self.roots.events(&self.name)
    }

    pub fn stop_request(&self) -> PathBuf {
        self.roots.stop_request(&self.name)
    }

    pub fn stop_timings(&self) -> PathBuf {
        self.roots.stop_timings(&self.name)
    }

    pub fn attach_socket(&self) -> PathBuf {
        self.roots.attach_socket(&self.name)
    }

    pub fn network_lock(&self) -> PathBuf {
        self.roots.network_lock(&self.name)
    }

    /// Where the pod's network namespace is pinned while it has a CNI network.
    pub fn netns_pin(&self) -> PathBuf {
        self.roots.netns_pin(&self.name)
    }

    /// The directory of container `container`'s logs.
    pub fn logs(&self, container: &str) -> PathBuf {
        self.data.join("logs").join(container)
    }

    /// Where persistentVolumeClaim `claim` lives (kept after the pod).
    pub fn claim(&self, claim: &str) -> PathBuf {
        self.roots.claim(claim)
    }

    /// Where emptyDir (or file volume) `volume` lives.
    pub fn volume(&self, volume: &str) -> PathBuf {
        self.data.join("volumes").join(volume)
    }
}

/// The directory the network namespaces of pods under `state_root` are pinned in.
pub fn netns_pins(state_root: &Path) -> PathBuf {
    state_root.join(".netns")
}

/// What a pod's cgroup says of its owner: the state root its record is under, and its
/// uid. A root's commands touch no cgroup that names another owner.
pub fn cgroup_owner(state_root: &Path, uid: &str) -> String {
    format!("{uid} {}", state_root.display())
}

/// Whether `owner` (a cgroup's, from [`cgroup_owner`]) is a pod of `state_root`.
pub fn owned_by(owner: &str, state_root: &Path) -> bool {
    owner
        .split_once(' ')
        .is_some_and(|(_, root)| Path::new(root) == state_root)
}

/// The cgroup of pod `name` under `parent`.
pub fn cgroup(parent: &Path, name: &str) -> PathBuf {
    parent.join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots() -> Roots {
        Roots {
            state: "/run/l".into(),
            data: "/var/lib/l".into(),
        }
    }

    #[test]
    fn every_path_of_a_pod_comes_from_the_roots_its_name_and_uid() {
        let p = roots().pod("web", "0a-1b");
        assert_eq!(p.state, Path::new("/run/l/web"));
        assert_eq!(p.record(), Path::new("/run/l/web/pod.json"));
        assert_eq!(p.data, Path::new("/var/lib/l/pods/web_0a-1b"));
        assert_eq!(p.logs("a"), Path::new("/var/lib/l/pods/web_0a-1b/logs/a"));
        assert_eq!(
            p.volume("cache"),
            Path::new("/var/lib/l/pods/web_0a-1b/volumes/cache")
        );
        assert_eq!(p.netns_pin(), Path::new("/run/l/.netns/web"));
        assert_eq!(roots().claim("db"), Path::new("/var/lib/l/volumes/db"));
        assert_eq!(p.claim("db"), roots().claim("db"));
    }

    #[test]
    fn only_a_uid_as_the_runtime_makes_them_names_a_pods_data() {
        assert!(valid_uid("6f1c2a3e-0000-4b5c-9d8e-0123456789ab"));
        for bad in ["", "..", "a/b", "x", "../../etc"] {
            assert!(!valid_uid(bad), "{bad}");
        }
    }

    #[test]
    fn leftovers_are_found_by_name_and_uid() {
        let dir = crate::testing::TempDir::new("layout");
        let r = Roots {
            state: dir.join("state"),
            data: dir.join("data"),
        };
        for d in ["web_ab12", "web_cd-34", "web-2_ef56", "web_../x", "webx_ab"] {
            let _ = std::fs::create_dir_all(dir.join("data/pods").join(d));
        }
        let uids: Vec<String> = r.leftovers("web").into_iter().map(|p| p.uid).collect();
        assert_eq!(uids, ["ab12", "cd-34"]);
    }
}
