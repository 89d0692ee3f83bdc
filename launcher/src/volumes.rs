//! A pod's volumes on the host, and what a container's main process needs to mount
//! them in its own mount namespace.
//!
//! - `emptyDir`: `<pod data dir>/volumes/<name>`, made at pod start (0777, as the
//!   kubelet makes it), kept across container restarts, gone with the pod; with
//!   `medium: Memory` a tmpfs mounted there (`sizeLimit`, else the pod's memory
//!   limit), charged to the memory of whoever writes it, unmounted at teardown.
//! - `hostPath`: the host's path, checked as its type says before anything of the pod
//!   exists (`DirectoryOrCreate`/`FileOrCreate` make it; `""` makes a missing
//!   directory, as containerd does).
//!
//! A `mountPath` missing in a container's view is made there by its main process (in
//! its writable layer: never on the host, but for a privileged pod, whose containers
//! have the host's file system as it is).
//!
//! A container's mounts are prepared by the supervisor, in the host's mount
//! namespace: each source (a subPath resolved beneath its volume, never through a
//! symlink that leads out) becomes a detached mount tree (open_tree), made read-only
//! if asked; the main process attaches them after it made its own mount namespace.

use crate::layout::PodPaths;
use crate::spec::{ContainerSpec, HostPathType, PodSpec, Resolved, VolumeMount, VolumeSource};
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("{at}: hostPath type check failed: {path} is not {what} (type {kind})")]
    HostPathType {
        at: String,
        path: String,
        what: &'static str,
        kind: &'static str,
    },
    #[error("{at}: cannot make {path} ({kind}): {source}")]
    HostPathCreate {
        at: String,
        path: String,
        kind: &'static str,
        source: io::Error,
    },
    #[error("failed to make volume {name:?} at {path}")]
    Make {
        name: String,
        path: PathBuf,
        source: io::Error,
    },
    #[error("failed to make the mount point {path} on the host")]
    MountPoint { path: PathBuf, source: io::Error },
    #[error("volume {volume:?}: subPath {sub:?} leads out of its volume")]
    Escapes { volume: String, sub: String },
    #[error("volume {volume:?} at {path}: {source}")]
    Source {
        volume: String,
        path: String,
        source: io::Error,
    },
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error("{at}: {path} holds the runtime's own state ({root}), every pod's: only a privileged pod may mount it")]
    RuntimeData {
        at: String,
        path: String,
        root: PathBuf,
    },
}

/// `path` with its existing part canonical (symlinks, `..`), the rest as written.
fn real_path(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut p = path;
    loop {
        if let Ok(real) = fs::canonicalize(p) {
            return rest.iter().rev().fold(real, |acc, c| acc.join(c));
        }
        match (p.parent(), p.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                p = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// The tmpfs of a configMap, secret, downwardAPI or projected volume: what the API
/// server takes in one object (a ConfigMap or Secret is at most 1 MiB), with room.
const FILES_TMPFS: u64 = 4 << 20;

/// Writes the files of the pod's configMap, secret, downwardAPI and projected volumes
/// into their tmpfs: each key (or item) a file of its mode (item, else defaultMode,
/// else 0644), labels and annotations as `key="value"` lines. Secrets go from the
/// supervisor's memory to the tmpfs only.
pub fn write_files(pod: Resolved, paths: &PodPaths) -> Result<(), VolumeError> {
    let spec = pod.spec;
    for v in &spec.volumes {
        let VolumeSource::Files {
            sources,
            default_mode,
            ..
        } = &v.source
        else {
            continue;
        };
        let dir = paths.volume(&v.name);
        let err = |path: &Path| {
            let name = v.name.clone();
            let path = path.to_path_buf();
            move |source| VolumeError::Make { name, path, source }
        };
        let mode = default_mode.unwrap_or(0o644);
        let mut files: Vec<(String, Vec<u8>, u32)> = Vec::new();
        for src in sources {
            match src {
                crate::spec::Projection::Object {
                    kind, name, items, ..
                } => {
                    let Some(data) = pod.inputs.get(*kind, name) else {
                        continue;
                    };
                    if items.is_empty() {
                        files.extend(data.iter().map(|(k, v)| (k.clone(), v.clone(), mode)));
                    }
                    for item in items {
                        if let Some(value) = data.get(&item.key) {
                            files.push((
                                item.path.clone(),
                                value.clone(),
                                item.mode.unwrap_or(mode),
                            ));
                        }
                    }
                }
                crate::spec::Projection::Downward(items) => {
                    for item in items {
                        let value = match &item.value {
                            crate::spec::DownwardValue::Field(path) => pod.field(path),
                            crate::spec::DownwardValue::Resource(r) => {
                                let c = r
                                    .container
                                    .as_deref()
                                    .and_then(|n| spec.all_containers().find(|c| c.name == n));
                                c.and_then(|c| pod.resource(c, r))
                            }
                        };
                        files.push((
                            item.path.clone(),
                            value.unwrap_or_default().into_bytes(),
                            item.mode.unwrap_or(mode),
                        ));
                    }
                }
            }
        }
        for (path, data, mode) in files {
            let file = dir.join(&path);
            if let Some(parent) = file.parent() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(parent)
                    .map_err(err(parent))?;
            }
            fs::write(&file, &data).map_err(err(&file))?;
            fs::set_permissions(&file, fs::Permissions::from_mode(mode)).map_err(err(&file))?;
        }
        // Readable as the mode says; the directory itself as the kubelet has it.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).map_err(err(&dir))?;
    }
    Ok(())
}

/// Checks every hostPath volume against its type, making those its type makes, and
/// refuses a non-privileged pod one that holds, or lies in, the runtime's `roots`
/// (its state and data: every pod's records, logs and volumes). The error names the
/// volume's field.
pub fn check_host_paths(spec: &PodSpec, roots: &[&Path]) -> Result<(), VolumeError> {
    for (i, v) in spec.volumes.iter().enumerate() {
        let VolumeSource::HostPath { path, kind } = &v.source else {
            continue;
        };
        let at = format!("spec.volumes[{i}].hostPath");
        if !spec.privileged {
            // By its one name: symlinks and `..` resolved as far as the path exists.
            let real = real_path(Path::new(path));
            if let Some(root) = runtime_root(&real, roots) {
                return Err(VolumeError::RuntimeData {
                    at: format!("{at}.path"),
                    path: path.clone(),
                    root: root.to_path_buf(),
                });
            }
        }
        let meta = fs::metadata(path);
        let wrong = |what| VolumeError::HostPathType {
            at: at.clone(),
            path: path.clone(),
            what,
            kind: kind.name(),
        };
        let create = |kind: &'static str, r: io::Result<()>| {
            r.map_err(|source| VolumeError::HostPathCreate {
                at: at.clone(),
                path: path.clone(),
                kind,
                source,
            })
        };
        match kind {
            HostPathType::Unset | HostPathType::DirectoryOrCreate if meta.is_err() => create(
                "a directory",
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(path),
            )?,
            HostPathType::FileOrCreate if meta.is_err() => create(
                "a file",
                fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o644)
                    .open(path)
                    .map(drop),
            )?,
            _ => {
                if let Some(what) = not_of_type(*kind, meta.as_ref().ok()) {
                    return Err(wrong(what));
                }
            }
        }
    }
    Ok(())
}

/// What hostPath volume `name` (`path`) opened as `fd` really is, checked as
/// [`check_host_paths`] checked it by path: the runtime's roots (in use, and the
/// defaults) are no non-privileged pod's, and the type is what it says.
fn check_host_fd(
    spec: &PodSpec,
    name: &str,
    path: &str,
    kind: HostPathType,
    fd: &OwnedFd,
    paths: &PodPaths,
) -> Result<(), VolumeError> {
    use std::os::fd::AsRawFd;
    let at = format!("volume {name:?}");
    let real = fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(|source| {
        VolumeError::Source {
            volume: name.to_string(),
            path: path.to_string(),
            source,
        }
    })?;
    if !spec.privileged {
        let roots = [
            paths.roots.state.clone(),
            paths.roots.data.clone(),
            PathBuf::from(crate::layout::DEFAULT_STATE_ROOT),
            PathBuf::from(crate::layout::DEFAULT_DATA_ROOT),
        ];
        if let Some(root) = runtime_root(&real, &roots) {
            return Err(VolumeError::RuntimeData {
                at,
                path: path.to_string(),
                root: root.to_path_buf(),
            });
        }
    }
    let meta = fs::File::from(fd.try_clone().map_err(|source| VolumeError::Source {
        volume: name.to_string(),
        path: path.to_string(),
        source,
    })?)
    .metadata()
    .ok();
    match not_of_type(kind, meta.as_ref()) {
        Some(what) => Err(VolumeError::HostPathType {
            at,
            path: path.to_string(),
            what,
            kind: kind.name(),
        }),
        None => Ok(()),
    }
}

/// The root of the runtime's that `real` is, holds, or lies in.
fn runtime_root<'a, P: AsRef<Path>>(real: &Path, roots: &'a [P]) -> Option<&'a Path> {
    roots
        .iter()
        .map(AsRef::as_ref)
        .find(|r| real.starts_with(r) || r.starts_with(real))
}

/// What a hostPath of type `kind` should be and `meta` is not; None if it is.
fn not_of_type(kind: HostPathType, meta: Option<&fs::Metadata>) -> Option<&'static str> {
    let is = |f: fn(&fs::Metadata) -> bool| meta.is_some_and(f);
    match kind {
        HostPathType::Unset => None,
        HostPathType::DirectoryOrCreate | HostPathType::Directory => {
            (!is(|m| m.is_dir())).then_some("a directory")
        }
        HostPathType::FileOrCreate | HostPathType::File => {
            (!is(|m| m.is_file())).then_some("a file")
        }
        HostPathType::Socket => (!is(|m| m.file_type().is_socket())).then_some("a socket file"),
        HostPathType::CharDevice => {
            (!is(|m| m.file_type().is_char_device())).then_some("a character device")
        }
        HostPathType::BlockDevice => {
            (!is(|m| m.file_type().is_block_device())).then_some("a block device")
        }
    }
}

/// The sandbox's volume step: every emptyDir (a tmpfs for `medium: Memory`), and the
/// mount points the containers need on the host. Undone by [`teardown`].
pub fn setup(spec: &PodSpec, paths: &PodPaths) -> Result<(), VolumeError> {
    for v in &spec.volumes {
        if let VolumeSource::Claim { name, .. } = &v.source {
            let dir = paths.claim(name);
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o777)
                .create(&dir)
                .map_err(|source| VolumeError::Make {
                    name: v.name.clone(),
                    path: dir.clone(),
                    source,
                })?;
            continue;
        }
        let (memory, size_limit, mode) = match &v.source {
            VolumeSource::EmptyDir {
                memory,
                size_limit,
                mode,
            } => (*memory, *size_limit, mode.unwrap_or(0o777)),
            // Written by `write_files` once the pod's addresses are known.
            VolumeSource::Files { .. } => (true, Some(FILES_TMPFS), 0o777),
            _ => continue,
        };
        let dir = paths.volume(&v.name);
        let err = |source| VolumeError::Make {
            name: v.name.clone(),
            path: dir.clone(),
            source,
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&dir)
            .map_err(err)?;
        if memory {
            // As the kubelet sizes a memory-backed emptyDir: its sizeLimit, at most the
            // pod's memory limit, or else the machine's memory (a tmpfs left unsized
            // would take half of it; one of 1Ei would take it all).
            let cap = spec
                .limits
                .memory
                .or_else(crate::cgroup::memory::machine_total);
            let size = match (size_limit, cap) {
                (Some(limit), Some(cap)) => Some(limit.min(cap)),
                (limit, cap) => limit.or(cap),
            };
            let data = match size {
                Some(bytes) => format!("mode={mode:o},size={bytes}"),
                None => format!("mode={mode:o}"),
            };
            let c =
                |s: &str| CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL));
            let target = c(&dir.to_string_lossy()).map_err(err)?;
            let data = c(&data).map_err(err)?;
            crate::sys::mount(
                c"tmpfs",
                &target,
                Some(c"tmpfs"),
                libc::MS_NOSUID | libc::MS_NODEV,
                Some(&data),
            )
            .map_err(err)?;
        } else {
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).map_err(err)?;
        }
    }
    Ok(())
}

/// securityContext.fsGroup on the pod's volumes that can take it (emptyDirs, the file
/// volumes, claims; never a hostPath), as the kubelet's SetVolumeOwnership: each file
/// and directory the group's, with the group's read and write (read alone on a
/// read-only volume) added, and on directories its search and the setgid bit, so that
/// what is made there is the group's too; other files (symlinks, fifos) only change
/// group. With OnRootMismatch, a volume whose root is already so is left as it is.
/// Every file is opened beneath the volume, following no symlink and leaving no mount:
/// a link swapped in by a pod leads nowhere.
pub fn apply_fs_group(spec: &PodSpec, paths: &PodPaths) -> Result<(), VolumeError> {
    let Some(fs_group) = spec.fs_group else {
        return Ok(());
    };
    for v in &spec.volumes {
        let (dir, read_only) = match &v.source {
            VolumeSource::EmptyDir { .. } => (paths.volume(&v.name), false),
            VolumeSource::Files { .. } => (paths.volume(&v.name), true),
            VolumeSource::Claim { name, read_only } => (paths.claim(name), *read_only),
            VolumeSource::HostPath { .. } => continue,
        };
        group_tree(&dir, fs_group, read_only).map_err(|source| VolumeError::Make {
            name: v.name.clone(),
            path: dir.clone(),
            source,
        })?;
    }
    Ok(())
}

fn group_tree(dir: &Path, fs_group: crate::spec::FsGroup, read_only: bool) -> io::Result<()> {
    use nix::fcntl::{AtFlags, OFlag};
    use nix::sys::stat::{fstat, fstatat, Mode, SFlag};
    use std::os::unix::ffi::OsStrExt;
    let gid = nix::unistd::Gid::from_raw(fs_group.gid);
    let add = if read_only { 0o440 } else { 0o660 };
    let dir_add = add | 0o110 | libc::S_ISGID;
    let own = |fd: &OwnedFd, add: u32| -> nix::Result<()> {
        let st = fstat(fd)?;
        nix::unistd::fchown(fd, None, Some(gid))?;
        let mode = Mode::from_bits_truncate((st.st_mode & 0o7777) | add);
        nix::sys::stat::fchmod(fd, mode)
    };
    let root = crate::sys::open_dir_beneath(&crate::sys::open_path(dir)?, Path::new(""))?;
    if fs_group.on_root_mismatch {
        let st = fstat(&root)?;
        let right = st.st_gid == fs_group.gid && st.st_mode & dir_add == dir_add;
        if right {
            return Ok(());
        }
    }
    own(&root, dir_add)?;
    let mut pending = vec![std::path::PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let fd = crate::sys::open_dir_beneath(&root, &rel)?;
        let names: Vec<std::ffi::CString> = nix::dir::Dir::from_fd(fd.try_clone()?)?
            .iter()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_owned())
            .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
            .collect();
        for name in names {
            let st = fstatat(&fd, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW)?;
            let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
            let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
            if kind == SFlag::S_IFDIR {
                let sub = nix::fcntl::openat(
                    &fd,
                    name.as_c_str(),
                    flags | OFlag::O_DIRECTORY,
                    Mode::empty(),
                )?;
                own(&sub, dir_add)?;
                pending.push(rel.join(std::ffi::OsStr::from_bytes(name.as_bytes())));
            } else if kind == SFlag::S_IFREG {
                let file = nix::fcntl::openat(&fd, name.as_c_str(), flags, Mode::empty())?;
                own(&file, add)?;
            } else {
                let flag = AtFlags::AT_SYMLINK_NOFOLLOW;
                nix::unistd::fchownat(&fd, name.as_c_str(), None, Some(gid), flag)?;
            }
        }
    }
    Ok(())
}

/// Undoes [`setup`]: the pod's tmpfs volumes are unmounted (the data directory
/// itself goes with the pod's state).
pub fn teardown(paths: &PodPaths) {
    unmount_below(&paths.data);
}

/// Bytes of disk the files below `dir` take (blocks, as du counts them), not
/// following symlinks nor crossing into other file systems.
pub fn disk_usage(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(top) = fs::symlink_metadata(dir) else {
        return 0;
    };
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.dev() != top.dev() {
                continue;
            }
            total += m.blocks() * 512;
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    total
}

/// Unmounts (detached) every mount at or below `dir` in this mount namespace.
pub fn unmount_below(dir: &Path) {
    if dir.as_os_str().is_empty() {
        return;
    }
    let Ok(mounts) = crate::procfs::mounts() else {
        return;
    };
    let mut points: Vec<PathBuf> = mounts
        .into_iter()
        .map(|m| m.point)
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        let _ = crate::sys::unmount_path(&p);
    }
}

/// `c`'s mounts, parents before children.
fn ordered(c: &ContainerSpec) -> Vec<&VolumeMount> {
    let mut mounts: Vec<&VolumeMount> = c.volume_mounts.iter().collect();
    mounts.sort_by_key(|m| Path::new(&m.mount_path).components().count());
    mounts
}

/// One volume ready to be attached by a container's main process.
pub struct Prepared {
    /// A detached mount tree (open_tree), read-only if the mount is.
    pub tree: OwnedFd,
    pub target: CString,
    /// It is a file (its mount point, if missing, is made as one).
    pub file: bool,
    /// The volume's name, for an error that names it (or what else it is).
    pub volume: String,
}

/// Container `c`'s volumeMounts as detached trees, parents first. `env` is its
/// environment, for subPathExpr.
pub fn prepare(
    spec: &PodSpec,
    c: &ContainerSpec,
    paths: &PodPaths,
    env: &[(String, String)],
) -> Result<Vec<Prepared>, VolumeError> {
    let mut out = Vec::new();
    for m in ordered(c) {
        let Some(v) = spec.volumes.iter().find(|v| v.name == m.name) else {
            continue;
        };
        let (base, read_only) = match &v.source {
            VolumeSource::EmptyDir { .. } => (paths.volume(&v.name), m.read_only),
            VolumeSource::HostPath { path, .. } => (PathBuf::from(path), m.read_only),
            // Read-only whatever the mount says, as the kubelet mounts them.
            VolumeSource::Files { .. } => (paths.volume(&v.name), true),
            VolumeSource::Claim { name, read_only } => {
                (paths.claim(name), *read_only || m.read_only)
            }
        };
        let source_err = |path: &Path| {
            let volume = v.name.clone();
            let path = path.display().to_string();
            move |source| VolumeError::Source {
                volume,
                path,
                source,
            }
        };
        // Resolved once: what is checked is the descriptor that is mounted, so no
        // symlink swapped in after the check can redirect the mount.
        let root = crate::sys::open_path(&base).map_err(source_err(&base))?;
        if let VolumeSource::HostPath { path, kind } = &v.source {
            check_host_fd(spec, &v.name, path, *kind, &root, paths)?;
        }
        let sub = match (&m.sub_path, &m.sub_path_expr) {
            (Some(s), _) => Some(s.clone()),
            (None, Some(expr)) => Some(crate::spec::expand(expr, |name| {
                env.iter()
                    .rev()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            })),
            (None, None) => None,
        };
        let source = match sub.as_deref().filter(|s| !s.is_empty()) {
            None => root,
            Some(sub) => {
                let escapes = || VolumeError::Escapes {
                    volume: v.name.clone(),
                    sub: sub.to_string(),
                };
                if crate::spec::check_sub_path(sub).is_err() {
                    return Err(escapes());
                }
                // The kubelet makes a missing subPath as a directory of the volume.
                match crate::sys::open_beneath(&root, sub, true) {
                    Ok(fd) => fd,
                    Err(e) if e.raw_os_error() == Some(libc::EXDEV) => return Err(escapes()),
                    Err(e) => return Err(source_err(&base.join(sub))(e)),
                }
            }
        };
        let tree = crate::sys::clone_tree(&source).map_err(source_err(&base))?;
        if read_only {
            crate::sys::set_read_only_tree(&tree).map_err(source_err(&base))?;
        }
        let target = CString::new(m.mount_path.as_str())
            .map_err(|_| source_err(&base)(io::Error::from_raw_os_error(libc::EINVAL)))?;
        let file = crate::sys::is_dir_fd(&source)
            .map(|dir| !dir)
            .map_err(source_err(&base))?;
        out.push(Prepared {
            tree,
            target,
            file,
            volume: v.name.clone(),
        });
    }
    Ok(out)
}
