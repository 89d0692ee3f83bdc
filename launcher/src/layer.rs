//! A container's root file system when its pod is not privileged: the host's file
//! systems, read-only, under a writable layer of the container's own.
//!
//! The supervisor makes a layer for each container instance, so that a restart starts
//! clean: a tmpfs, detached (fsmount), holding overlayfs's `upper/` and `work/` and
//! `root/`, where the container's main process mounts the merged view (lower: the
//! host's root file system) and pivots into it ([`crate::mounts::Mounts::container`]).
//! Its size bounds what the container writes: its `ephemeral-storage` limit and a MiB
//! more (use past the limit is then seen, and evicts the pod as the kubelet does), else
//! the pod's memory limit or the machine's memory. Its pages are charged to the memory
//! of whoever writes them, as a memory-backed emptyDir's are. The supervisor keeps the
//! layer's fd to read its use with fstatfs.
//!
//! `upper/` starts with /tmp, /var/tmp and /run as opaque directories with the host's
//! owner and mode: the container has them empty and its own, and the host's sockets
//! there (systemd's, D-Bus's, a terminal multiplexer's) are out of its sight. Its /etc
//! holds the pod's hosts, hostname and resolv.conf (`names`), the container's to change.
//!
//! The host's mounts other than the root (/proc, /sys, /dev, /boot, bind mounts ...)
//! are not in an overlay: each mount the pod's view has on its root is copied with
//! everything below it to the same place, read-only, but the pod's own /proc and /dev.

use crate::procfs::Mount;
use crate::sys;
use std::ffi::CString;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Directories a container has of its own, empty, in its layer.
pub const SCRATCH: [&str; 3] = ["/tmp", "/var/tmp", "/run"];

/// Mounts of the pod's that stay writable in a container's view: its own.
const POD_OWN: [&str; 2] = ["/proc", "/dev"];

/// The container's termination log, at the layer's top (out of the merged view): the
/// main process binds it at terminationMessagePath, the supervisor reads it at the end.
pub const TERMINATION_LOG: &[u8] = b"/termination-log";

/// What the use of a layer may exceed its limit by before writes fail.
pub const HEADROOM: u64 = 1 << 20;

/// A container instance's writable layer.
pub struct Layer {
    /// The tmpfs, detached until the main process attaches it.
    pub fd: OwnedFd,
}

impl Layer {
    /// A new layer of at most `size` bytes, with the pod's `files` in its /etc.
    pub fn new(size: u64, files: &[EtcFile]) -> io::Result<Layer> {
        let fd = sys::detached_tmpfs(size)?;
        for dir in ["upper", "work", "root"] {
            make_dir(&fd, Path::new(dir), 0o755, None)?;
        }
        // Writable by whatever user the container runs as, as the kubelet makes it.
        sys::write_file_at(&fd, c"termination-log", 0o666, b"")?;
        for path in SCRATCH {
            if let Some(dir) = host_dirs(&fd, Path::new(path))? {
                sys::set_xattr_fd(&dir, c"trusted.overlay.opaque", b"y")?;
            }
        }
        if !files.is_empty() {
            host_dirs(&fd, Path::new("/etc"))?;
        }
        for f in files {
            let mut rel = b"upper/etc/".to_vec();
            rel.extend_from_slice(f.name.as_bytes());
            let rel = CString::new(rel).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
            sys::write_file_at(&fd, &rel, 0o644, &f.bytes)?;
        }
        Ok(Layer { fd })
    }

    /// Bytes the container has written to it.
    pub fn used(&self) -> u64 {
        sys::used_bytes(&self.fd).unwrap_or(0)
    }

    /// The last `max` bytes of the container's termination log.
    pub fn termination_log(&self, max: u64) -> io::Result<Vec<u8>> {
        use std::io::{Read, Seek};
        let mut file = std::fs::File::from(sys::open_file_at(&self.fd, c"termination-log")?);
        let len = file.metadata()?.len();
        file.seek(io::SeekFrom::Start(len.saturating_sub(max)))?;
        let mut bytes = Vec::new();
        file.take(max).read_to_end(&mut bytes)?;
        Ok(bytes)
    }
}

/// A file of the pod's own in every container's /etc (`names`): its name there and
/// what it holds.
pub struct EtcFile {
    pub name: CString,
    pub bytes: Vec<u8>,
}

/// Makes the host's directory `path` in the upper layer, with its parents, each with
/// the host's owner and mode (a directory of the upper layer shows its own in the
/// merged view); returns it open if it made it, None if the host has no such
/// directory.
fn host_dirs(fd: &OwnedFd, path: &Path) -> io::Result<Option<OwnedFd>> {
    if !path.is_dir() {
        return Ok(None);
    }
    let (mut rel, mut host) = (PathBuf::from("upper"), PathBuf::from("/"));
    let mut made = None;
    for part in path.components().skip(1) {
        rel.push(part);
        host.push(part);
        let meta = std::fs::metadata(&host)?;
        made = make_dir(fd, &rel, meta.mode(), Some(&meta))?;
    }
    Ok(made)
}

/// The size of container `c`'s layer: its ephemeral-storage limit and the headroom,
/// else the pod's memory limit or the machine's memory (`machine`, as `up` read it; 0
/// if it could not: 1 GiB then).
pub fn size(spec: &crate::spec::PodSpec, c: &crate::spec::ContainerSpec, machine: u64) -> u64 {
    let fallback = || {
        let machine = Some(machine).filter(|&m| m > 0);
        spec.limits.memory.or(machine).unwrap_or(1 << 30)
    };
    match c.limits.ephemeral_storage {
        Some(limit) => limit.saturating_add(HEADROOM),
        None if c.read_only_root => HEADROOM,
        None => fallback(),
    }
}

/// Makes directory `rel` of the layer `root` with `mode` (and the owner of `like`),
/// unless it is there; returns it open if it made it.
fn make_dir(
    root: &OwnedFd,
    rel: &Path,
    mode: u32,
    like: Option<&std::fs::Metadata>,
) -> io::Result<Option<OwnedFd>> {
    let c = CString::new(rel.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    sys::make_dir_at(root, &c, mode, like.map(|m| (m.uid(), m.gid())))
}

/// What a container's main process needs to make its root over its layer.
pub struct Root {
    /// The layer's tmpfs, detached (the supervisor keeps a copy of the fd).
    pub layer: OwnedFd,
    /// A directory of the pod's view where the layer is attached before the pivot: one
    /// under a mask, out of the pod's sight.
    pub staging: PathBuf,
    /// The pod's mounts on its root, to copy into the container's view.
    pub host: std::rc::Rc<[HostMount]>,
}

/// One of the host's mounts as a container sees it: `point` and everything below it,
/// read-only unless it is the pod's own.
pub struct HostMount {
    pub point: CString,
    pub read_only: bool,
}

/// The mounts on the root of the mount table `table` (the pod's), outside the
/// container's own scratch directories.
pub fn host_mounts(table: &[Mount]) -> Vec<HostMount> {
    // The root: the last mount at "/" (one stacked there comes after what it hides).
    let Some(root) = table
        .iter()
        .rfind(|m| m.point == Path::new("/"))
        .map(|m| m.id)
    else {
        return Vec::new();
    };
    let mut seen: Vec<&PathBuf> = Vec::new();
    let children: Vec<(usize, &Mount)> = (table.iter().enumerate())
        .filter(|(_, m)| m.parent == root && m.id != root)
        .collect();
    // One mounted later over an ancestor of its point hides it: the masks over the
    // runtime's roots hide the pods' volumes mounted below them.
    let hidden = |i: usize, m: &Mount| {
        (children.iter())
            .any(|&(j, k)| j > i && k.point != m.point && m.point.starts_with(&k.point))
    };
    children
        .iter()
        .filter(|&&(i, m)| !hidden(i, m))
        .map(|&(_, m)| m)
        .filter(|m| !SCRATCH.iter().any(|s| m.point.starts_with(s)))
        // The pod's own are in the layer (a container host binds the host's there).
        .filter(|m| {
            !crate::names::FILES
                .iter()
                .any(|f| m.point == Path::new("/etc").join(f))
        })
        .filter(|m| {
            // Stacked mounts at one point: the first (the rest are below it in its tree).
            let first = !seen.contains(&&m.point);
            seen.push(&m.point);
            first
        })
        .filter_map(|m| {
            Some(HostMount {
                point: CString::new(m.point.as_os_str().as_bytes()).ok()?,
                read_only: !POD_OWN.iter().any(|p| m.point == Path::new(p)),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_mounts_children_outside_scratch() {
        let table = crate::procfs::parse_mountinfo(
            "20 1 8:1 / / rw - ext4 /dev/vda rw\n\
             21 20 0:5 / /proc rw - proc proc rw\n\
             22 21 0:5 /sys /proc/sys ro - proc proc rw\n\
             23 20 0:6 / /dev rw - tmpfs tmpfs rw\n\
             24 20 0:7 / /run rw - tmpfs tmpfs rw\n\
             25 24 0:8 / /run/launcher ro - tmpfs tmpfs rw\n\
             26 20 0:9 / /run/user/0 rw - tmpfs tmpfs rw\n\
             27 20 0:10 / /boot rw - ext4 /dev/vda1 rw\n\
             29 20 8:1 /docker/hosts /etc/hosts rw - ext4 /dev/vda rw\n\
             30 20 0:12 / /var/lib/launcher/pods/p/volumes/b rw - tmpfs tmpfs rw\n\
             31 20 0:13 / /var/lib/launcher ro - tmpfs tmpfs ro\n\
             28 20 0:11 / /var/lib/x ro - tmpfs tmpfs rw\n",
        );
        let got: Vec<(String, bool)> = host_mounts(&table)
            .iter()
            .map(|m| (m.point.to_string_lossy().into_owned(), m.read_only))
            .collect();
        assert_eq!(
            got,
            [
                ("/proc".to_string(), false),
                ("/dev".to_string(), false),
                ("/boot".to_string(), true),
                // The mask, not the volume below it.
                ("/var/lib/launcher".to_string(), true),
                ("/var/lib/x".to_string(), true),
            ]
        );
    }
}
