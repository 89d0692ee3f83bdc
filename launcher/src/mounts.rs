//! What a pod's processes see of the machine's file systems, decided before clone and
//! carried out by the child with mount(2) and mount_setattr(2) only.
//!
//! The pod's mount namespace (pause's, made at its clone, mounts private) gets:
//! - the runtime's state root under an empty read-only tmpfs, for every pod: no pod
//!   reads or changes any pod's record, log or status; the pinned network namespaces
//!   below it are unmounted first;
//! - its own /dev/shm (POSIX shared memory is files there, not in the IPC namespace);
//! - unless the pod is privileged, what runc gives a non-privileged container: its own
//!   /dev (a tmpfs holding null, zero, full, random, urandom and tty bound from the
//!   host's, a new devpts instance with its ptmx, mqueue, and the usual symlinks; the
//!   kernel's device filter, `cgroup::devices`, refuses any other device anyway), a
//!   fresh read-only sysfs at /sys (the host's is writable by uid 0 and holds every cgroup
//!   hierarchy), the pod's own cgroup2 read-only at /sys/fs/cgroup (the cgroup
//!   namespace, rooted at the pod's cgroup, shows only the pod's subtree), runc's masked
//!   paths (an empty read-only tmpfs over a directory, /dev/null over a file) and its
//!   read-only paths (bound onto themselves, read-only).
//!
//! Each container's main process makes its own mount namespace from the pod's; its
//! other processes (exec, probes, hooks) join it. Unless the pod is privileged, its
//! root is an overlay of its own writable layer (`layer`) over the host's root file
//! system, with the pod's other mounts copied onto it read-only (but the pod's /proc
//! and /dev), its volumes attached, and everything read-only but the volumes, /dev and
//! /proc if `readOnlyRootFilesystem`. A privileged pod's containers keep the host's
//! file systems as they are, writable.

use crate::sys;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// runc's default masked paths (and containerd's powercap).
const MASKED: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// runc's default read-only paths.
const READ_ONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The host's devices a non-privileged pod's /dev holds (runc's defaults).
const DEVICES: [&str; 6] = [
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
];

/// The symlinks of /dev: (link, where it points).
const DEV_LINKS: [(&str, &str); 5] = [
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
    ("/dev/ptmx", "pts/ptmx"),
];

const NOSUID_NODEV_NOEXEC: libc::c_ulong = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;

enum Step {
    /// mount(2); `optional`: a target that does not exist is skipped.
    Mount {
        source: CString,
        target: CString,
        fstype: Option<CString>,
        flags: libc::c_ulong,
        data: Option<CString>,
        optional: bool,
    },
    /// Bind `target` onto itself and make the bind read-only (all mounts below too).
    ReadOnly { target: CString, optional: bool },
    /// mount_setattr(2) on `target`: set or clear read-only, recursively or not.
    SetReadOnly {
        target: CString,
        read_only: bool,
        recursive: bool,
    },
    /// A mount namespace of its own (copied from the current one).
    Unshare,
    /// umount2(MNT_DETACH) of `target` and every mount below it, if it is a mount
    /// (nothing there, or no mount, is skipped).
    Unmount { target: CString },
    /// A detached copy of the mount at `source`, kept as `slot` (skipped if missing).
    Detach { source: CString, slot: usize },
    /// Detached mount `slot`, if any, attached at `target` (made as an empty file
    /// first if `make`).
    Attach {
        target: CString,
        slot: usize,
        make: bool,
    },
    /// A detached copy of `source` and every mount below it, read-only if asked,
    /// kept as `slot`.
    CloneTree {
        source: CString,
        slot: usize,
        read_only: bool,
    },
    /// The detached mount `fd` attached at `target`.
    Move {
        fd: std::os::fd::RawFd,
        target: CString,
    },
    /// `root` becomes the root directory; the old root leaves the mount namespace.
    Pivot { root: CString },
    /// A volume's detached mount tree attached at `target`, after making the missing
    /// directories of `make` (the target's ancestors and itself, outermost first; the
    /// target an empty file if `file`).
    AttachTree {
        tree: Tree,
        target: CString,
        make: Vec<CString>,
        file: bool,
        /// What it is, for an error: `volume "data"`.
        what: String,
    },
    /// `value` written to the existing file `target` (a sysctl).
    Write { target: CString, value: CString },
    /// A directory (with `mode`) or, given `to`, a symlink at `target`.
    Make {
        target: CString,
        mode: libc::mode_t,
        to: Option<CString>,
    },
}

/// A detached mount: one made before the child (a volume's), or one a step before
/// kept in a slot.
#[derive(Clone, Copy)]
enum Tree {
    Fd(std::os::fd::RawFd),
    Slot(usize),
}

/// The mount steps, in order, with every string allocated, and the slots that hold
/// detached mounts between steps.
pub struct Mounts {
    steps: Vec<Step>,
    slots: Vec<std::cell::Cell<std::os::fd::RawFd>>,
}

fn c(s: &str) -> CString {
    // Callers pass literals and paths already checked for NUL bytes.
    CString::new(s).unwrap_or_default()
}

impl Mounts {
    /// The pod's view, applied by pause's child in the pod's new mount, PID and cgroup
    /// namespaces, after it mounted the pod's /proc.
    pub fn pod(state_roots: &[&Path], privileged: bool, sysctls: &[(String, String)]) -> Mounts {
        // The pod's sysctls, while /proc/sys is still writable.
        let mut steps: Vec<Step> = (sysctls.iter())
            .map(|(name, value)| Step::Write {
                target: c(&crate::sysctl::proc_path(name)),
                value: c(value),
            })
            .collect();
        if !privileged {
            steps.extend(own_dev());
            steps.push(Step::Unmount { target: c("/sys") });
            steps.push(fresh("sysfs", c("/sys"), libc::MS_RDONLY, None, false));
            steps.push(fresh(
                "cgroup2",
                c("/sys/fs/cgroup"),
                libc::MS_RDONLY,
                None,
                false,
            ));
            for path in MASKED {
                // Decided on the host's /proc and /sys, which the pod's mirror.
                steps.push(mask(path.as_bytes(), Path::new(path).is_dir()));
            }
            for path in READ_ONLY {
                steps.push(Step::ReadOnly {
                    target: c(path),
                    optional: true,
                });
            }
        }
        // Every pod has its own /dev/shm, as the kubelet gives it (64 MiB).
        steps.push(fresh(
            "tmpfs",
            c("/dev/shm"),
            0,
            Some("mode=1777,size=65536k"),
            false,
        ));
        for root in state_roots {
            // The pods' pinned network namespaces go first, all in one: a copy of
            // the pin mounts here would keep other pods' namespaces alive.
            let pins = crate::layout::netns_pins(root);
            steps.push(Step::Unmount {
                target: c(&pins.to_string_lossy()),
            });
            steps.push(mask(root.as_os_str().as_bytes(), true));
        }
        Mounts::new(steps)
    }

    /// A container's own view, in a mount namespace of its own made from the pod's.
    /// With `own`: the pod's mounts on its root copied (read-only but its /proc and
    /// /dev), the layer attached at the staging directory, the overlay mounted in it
    /// with the copies on top, and a pivot into it. Then the volumes, each mount point
    /// made if missing (in the layer, or the host's file system for a privileged pod),
    /// and with `read_only_root` the root made read-only (every other mount but the
    /// volumes, /dev and /proc is already).
    pub fn container(
        own: Option<&crate::layer::Root>,
        read_only_root: bool,
        volumes: &[crate::volumes::Prepared],
        termination_log: &str,
        own_pid_namespace: bool,
    ) -> Mounts {
        use std::os::fd::AsRawFd;
        let mut steps = vec![Step::Unshare];
        // A PID namespace of its own shows in a /proc of its own (the pod's shows
        // pause's), masked as the pod's is unless privileged.
        let proc = match own_pid_namespace {
            true => own_proc(own.is_some()),
            false => Vec::new(),
        };
        match &own {
            Some(own) => {
                let staging = own.staging.as_os_str().as_bytes();
                let under = |rel: &[u8]| {
                    let mut p = staging.to_vec();
                    p.extend_from_slice(rel);
                    CString::new(p).unwrap_or_default()
                };
                steps.extend(
                    own.host
                        .iter()
                        .enumerate()
                        .map(|(slot, m)| Step::CloneTree {
                            source: m.point.clone(),
                            slot,
                            read_only: m.read_only,
                        }),
                );
                steps.push(Step::Move {
                    fd: own.layer.as_raw_fd(),
                    target: under(b""),
                });
                let mut data = b"lowerdir=/,upperdir=".to_vec();
                data.extend_from_slice(under(b"/upper").as_bytes());
                data.extend_from_slice(b",workdir=");
                data.extend_from_slice(under(b"/work").as_bytes());
                steps.push(Step::Mount {
                    source: c("overlay"),
                    target: under(b"/root"),
                    fstype: Some(c("overlay")),
                    flags: 0,
                    data: CString::new(data).ok(),
                    optional: false,
                });
                for (slot, m) in own.host.iter().enumerate() {
                    let mut rel = b"/root".to_vec();
                    rel.extend_from_slice(m.point.as_bytes());
                    steps.push(Step::Attach {
                        target: under(&rel),
                        slot,
                        make: false,
                    });
                }
                // The layer's termination log, kept for its place in the new root.
                steps.push(Step::Detach {
                    source: under(crate::layer::TERMINATION_LOG),
                    slot: own.host.len(),
                });
                steps.push(Step::Pivot {
                    root: under(b"/root"),
                });
                steps.extend(proc);
            }
            None if read_only_root => {
                steps.extend(proc);
                steps.extend([
                    Step::SetReadOnly {
                        target: c("/"),
                        read_only: true,
                        recursive: true,
                    },
                    // Devices and the pod's /proc stay as the pod has them (its
                    // read-only and masked paths are mounts of their own below /proc,
                    // left read-only).
                    Step::SetReadOnly {
                        target: c("/dev"),
                        read_only: false,
                        recursive: true,
                    },
                    Step::SetReadOnly {
                        target: c("/proc"),
                        read_only: false,
                        recursive: false,
                    },
                ]);
            }
            None => steps.extend(proc),
        }
        steps.extend(volumes.iter().map(|v| Step::AttachTree {
            tree: Tree::Fd(v.tree.as_raw_fd()),
            target: v.target.clone(),
            make: ancestors(&v.target),
            file: v.file,
            what: format!("volume {:?}", v.volume),
        }));
        // After the volumes, as the kubelet lists its mounts: one over a volume's
        // directory lands in the volume's view.
        if let Some(own) = own {
            let target = c(termination_log);
            steps.push(Step::AttachTree {
                tree: Tree::Slot(own.host.len()),
                make: ancestors(&target),
                target,
                file: true,
                what: "the termination log".into(),
            });
        }
        if own.is_some() && read_only_root {
            steps.push(Step::SetReadOnly {
                target: c("/"),
                read_only: true,
                recursive: false,
            });
        }
        let slots = own.map_or(0, |o| o.host.len() + 1);
        Mounts::new_with_slots(steps, slots)
    }

    fn new(steps: Vec<Step>) -> Mounts {
        Mounts::new_with_slots(steps, 0)
    }

    fn new_with_slots(steps: Vec<Step>, slots: usize) -> Mounts {
        let slots = (0..slots.max(DEVICES.len()))
            .map(|_| std::cell::Cell::new(-1))
            .collect();
        Mounts { steps, slots }
    }

    /// Carries the steps out. Child-safe: system calls only.
    pub fn apply(&self) -> Result<(), (usize, io::Error)> {
        let slots = &self.slots;
        for (i, step) in self.steps.iter().enumerate() {
            let res = match step {
                Step::Mount {
                    source,
                    target,
                    fstype,
                    flags,
                    data,
                    optional,
                } => skip_missing(
                    *optional,
                    sys::mount(source, target, fstype.as_deref(), *flags, data.as_deref()),
                ),
                Step::ReadOnly { target, optional } => {
                    match sys::mount(target, target, None, libc::MS_BIND | libc::MS_REC, None) {
                        Err(e) if *optional && e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
                        Err(e) => Err(e),
                        Ok(()) => sys::mount_setattr(target, true, true),
                    }
                }
                Step::SetReadOnly {
                    target,
                    read_only,
                    recursive,
                } => sys::mount_setattr(target, *read_only, *recursive),
                Step::Unshare => sys::unshare(libc::CLONE_NEWNS),
                Step::Detach { source, slot } => match sys::open_tree_clone(source) {
                    Ok(fd) => {
                        slots[*slot].set(fd);
                        Ok(())
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
                    Err(e) => Err(e),
                },
                Step::CloneTree {
                    source,
                    slot,
                    read_only,
                } => sys::open_tree_clone_all(source, *read_only).map(|fd| slots[*slot].set(fd)),
                Step::Move { fd, target } => sys::move_mount(*fd, target),
                Step::Pivot { root } => sys::pivot_root(root),
                Step::Unmount { target } => match sys::unmount(target) {
                    Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOENT)) => {
                        Ok(())
                    }
                    r => r,
                },
                Step::Attach { target, slot, make } if slots[*slot].get() >= 0 => {
                    let made = match make {
                        true => sys::make_node(target, sys::Node::File),
                        false => Ok(()),
                    };
                    made.and_then(|()| sys::move_mount(slots[*slot].get(), target))
                }
                Step::Attach { .. } => Ok(()),
                Step::AttachTree {
                    tree,
                    target,
                    make,
                    file,
                    ..
                } => {
                    let tree = match *tree {
                        Tree::Fd(fd) => fd,
                        Tree::Slot(slot) => slots[slot].get(),
                    };
                    let last = make.len().saturating_sub(1);
                    make.iter()
                        .enumerate()
                        .try_for_each(|(k, dir)| {
                            let node = match *file && k == last {
                                true => sys::Node::File,
                                false => sys::Node::Dir(0o755),
                            };
                            match sys::make_node(dir, node) {
                                Err(e) if e.raw_os_error() != Some(libc::EEXIST) => Err(e),
                                _ => Ok(()),
                            }
                        })
                        .and_then(|()| sys::move_mount(tree, target))
                }
                Step::Write { target, value } => sys::write_file(target, value.as_bytes()),
                Step::Make { target, mode, to } => match to {
                    Some(to) => sys::make_node(target, sys::Node::Symlink(to)),
                    None => sys::make_node(target, sys::Node::Dir(*mode)),
                },
            };
            res.map_err(|e| (i, e))?;
        }
        Ok(())
    }

    /// How many steps [`Mounts::apply`] takes.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// What step `i` of [`Mounts::apply`] does, for the error that names it.
    pub fn describe(&self, i: usize) -> String {
        let path = |c: &CString| c.to_string_lossy().into_owned();
        match self.steps.get(i) {
            Some(Step::AttachTree { target, what, .. }) => {
                format!("mount {what} at {}", path(target))
            }
            Some(Step::Mount { target, fstype, .. }) => match fstype {
                Some(t) => format!("mount {} at {}", t.to_string_lossy(), path(target)),
                None => format!("mount at {}", path(target)),
            },
            Some(Step::ReadOnly { target, .. } | Step::SetReadOnly { target, .. }) => {
                format!("make {} read-only", path(target))
            }
            Some(Step::Unshare) => "make a mount namespace".into(),
            Some(Step::Write { target, value }) => {
                let name = path(target);
                let name = name.trim_start_matches("/proc/sys/").replace('/', ".");
                format!("set sysctl {name}={}", value.to_string_lossy())
            }
            Some(Step::Unmount { target }) => format!("unmount {}", path(target)),
            Some(Step::Detach { source, .. }) => format!("copy the mount at {}", path(source)),
            Some(Step::Attach { target, .. }) => format!("mount at {}", path(target)),
            Some(Step::CloneTree { source, .. }) => {
                format!("copy the mounts at {}", path(source))
            }
            Some(Step::Move { target, .. }) => {
                format!("attach the writable layer at {}", path(target))
            }
            Some(Step::Pivot { root }) => format!("pivot_root to {}", path(root)),
            Some(Step::Make { target, .. }) => format!("make {}", path(target)),
            None => "set up mounts".into(),
        }
    }
}

/// A /dev of the pod's own, as runc makes one: the host's device nodes it keeps are
/// cloned, the host's /dev is unmounted from the pod's mount namespace, and the clones
/// are attached onto a new tmpfs.
fn own_dev() -> Vec<Step> {
    let mut steps: Vec<Step> = DEVICES
        .iter()
        .enumerate()
        .map(|(slot, dev)| Step::Detach {
            source: c(dev),
            slot,
        })
        .collect();
    // The host's /dev and what is mounted below it leave the pod's mount table.
    steps.push(Step::Unmount { target: c("/dev") });
    steps.push(fresh(
        "tmpfs",
        c("/dev"),
        libc::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
        false,
    ));
    steps.extend(DEVICES.iter().enumerate().map(|(slot, dev)| Step::Attach {
        target: c(dev),
        slot,
        make: true,
    }));
    for dir in ["/dev/pts", "/dev/shm", "/dev/mqueue"] {
        steps.push(Step::Make {
            target: c(dir),
            mode: 0o755,
            to: None,
        });
    }
    // Not nodev: the pod's pseudo-terminals are devices on it.
    steps.push(Step::Mount {
        source: c("devpts"),
        target: c("/dev/pts"),
        fstype: Some(c("devpts")),
        flags: libc::MS_NOSUID | libc::MS_NOEXEC,
        data: Some(c("newinstance,ptmxmode=0666,mode=0620,gid=5")),
        optional: false,
    });
    steps.push(fresh("mqueue", c("/dev/mqueue"), 0, None, false));
    steps.extend(DEV_LINKS.iter().map(|(link, to)| Step::Make {
        target: c(link),
        mode: 0,
        to: Some(c(to)),
    }));
    steps
}

/// An empty read-only tmpfs over a directory, /dev/null over a file.
/// A fresh procfs at /proc, of the mounting process's PID namespace, with runc's
/// masked and read-only paths below it if `masked`.
fn own_proc(masked: bool) -> Vec<Step> {
    let mut steps = vec![fresh("proc", c("/proc"), 0, None, false)];
    if masked {
        for path in MASKED.iter().filter(|p| p.starts_with("/proc/")) {
            steps.push(mask(path.as_bytes(), Path::new(path).is_dir()));
        }
        steps.extend(READ_ONLY.iter().map(|path| Step::ReadOnly {
            target: c(path),
            optional: true,
        }));
    }
    steps
}

fn mask(path: &[u8], dir: bool) -> Step {
    let target = CString::new(path).unwrap_or_default();
    if dir {
        fresh(
            "tmpfs",
            target,
            libc::MS_RDONLY,
            Some("size=4k,mode=0755"),
            true,
        )
    } else {
        Step::Mount {
            source: c("/dev/null"),
            target,
            fstype: None,
            flags: libc::MS_BIND,
            data: None,
            optional: true,
        }
    }
}

/// A new instance of file system `fstype` at `target`, nosuid, nodev, noexec and
/// `flags`.
fn fresh(
    fstype: &str,
    target: CString,
    flags: libc::c_ulong,
    data: Option<&str>,
    optional: bool,
) -> Step {
    Step::Mount {
        source: c(fstype),
        target,
        fstype: Some(c(fstype)),
        flags: NOSUID_NODEV_NOEXEC | flags,
        data: data.map(c),
        optional,
    }
}

fn skip_missing(optional: bool, res: io::Result<()>) -> io::Result<()> {
    match res {
        Err(e) if optional && e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        r => r,
    }
}

/// The directories from the root down to `target`, `target` last ("/a/b": "/a", "/a/b").
fn ancestors(target: &CString) -> Vec<CString> {
    let bytes = target.as_bytes();
    (1..=bytes.len())
        .filter(|&end| end == bytes.len() || bytes[end] == b'/')
        .filter(|&end| end > 1)
        .filter_map(|end| CString::new(&bytes[..end]).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mount_points_directories_outermost_first() {
        let got = ancestors(&c("/a/bc/d"));
        assert_eq!(got, [c("/a"), c("/a/bc"), c("/a/bc/d")]);
        assert_eq!(ancestors(&c("/x")), [c("/x")]);
    }
}
