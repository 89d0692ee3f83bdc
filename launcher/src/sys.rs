//! Raw Linux system calls that neither std nor nix wrap: clone3 with
//! CLONE_INTO_CGROUP, pidfds, setns on a pidfd, capability sets, close_range, and
//! bringing `lo` up. Every call's return code becomes a `Result` right here.
//!
//! Functions marked "child-safe" make no allocation and take no lock: they are the only
//! ones that may run between clone3 and execve.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `struct clone_args` of clone3(2), kernel ABI version 2 (with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

pub enum Forked {
    Child,
    Parent { pid: i32, pidfd: OwnedFd },
}

/// clone3(2) like fork, plus `extra` namespace flags, a pidfd for the child, and the
/// child born inside `cgroup` (CLONE_INTO_CGROUP, Linux >= 5.7), so it never runs a
/// single instruction anywhere else.
///
/// # Safety
/// In the child only child-safe calls may follow, ending in execve or _exit: the
/// address space is a copy of a process whose other threads and locks did not come along.
pub unsafe fn clone3(extra: libc::c_int, cgroup: Option<&File>) -> io::Result<Forked> {
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: (libc::CLONE_PIDFD | extra) as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(cg) = cgroup {
        args.flags |= 0x2_0000_0000; // CLONE_INTO_CGROUP
        args.cgroup = cg.as_raw_fd() as u64;
    }
    // SAFETY: args is a valid clone_args of the size passed; with no stack given the
    // child continues on a copy of this stack, like fork(2).
    let pid = check(unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    })?;
    if pid == 0 {
        return Ok(Forked::Child);
    }
    // SAFETY: the kernel stored a fresh pidfd that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok(Forked::Parent {
        pid: pid as i32,
        pidfd,
    })
}

pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain integer arguments; the result is a new fd we own.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: fd was just returned by the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Signals the process behind a pidfd: no pid-reuse race.
pub fn pidfd_send_signal(pidfd: &OwnedFd, sig: i32) -> io::Result<()> {
    // SAFETY: valid fd, null siginfo as documented.
    check(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<u8>(),
            0,
        )
    })
    .map(drop)
}

/// setns(2) with a pidfd and several CLONE_NEW* flags at once (Linux >= 5.8). Child-safe.
pub fn setns(fd: RawFd, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: plain integer arguments.
    check(unsafe { libc::setns(fd, flags) } as libc::c_long).map(drop)
}

/// Marks every fd from 3 up close-on-exec. Child-safe.
pub fn cloexec_from_3() -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: plain integer arguments.
    check(unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC) })
        .map(drop)
}

/// Closes every fd from 3 up but `keep` (sorted, each >= 3). Child-safe.
pub fn close_from_3_but(keep: [RawFd; 2]) {
    let mut from = 3u32;
    for fd in keep {
        let fd = fd as u32;
        if fd > from {
            // SAFETY: plain integer arguments.
            unsafe { libc::syscall(libc::SYS_close_range, from, fd - 1, 0u32) };
        }
        from = from.max(fd + 1);
    }
    // SAFETY: plain integer arguments.
    unsafe { libc::syscall(libc::SYS_close_range, from, u32::MAX, 0u32) };
}

pub fn dup2(from: RawFd, to: RawFd) -> io::Result<()> {
    // SAFETY: plain integer arguments. Child-safe.
    check(unsafe { libc::dup2(from, to) } as libc::c_long).map(drop)
}

/// Puts `fds[i]` at fd `first + i`, whatever numbers they have now. Each is first
/// copied above the targets (close-on-exec), so one placed early never overwrites
/// another still to be placed, and every target ends up without close-on-exec.
/// Child-safe.
pub fn place_fds<const N: usize>(fds: [RawFd; N], first: RawFd) -> io::Result<()> {
    let mut high = [0; N];
    for (h, fd) in high.iter_mut().zip(fds) {
        // SAFETY: plain integer arguments.
        *h = check(
            unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, first + N as RawFd) } as libc::c_long,
        )? as RawFd;
    }
    for (i, h) in high.into_iter().enumerate() {
        dup2(h, first + i as RawFd)?;
        // SAFETY: h is our own copy, no longer needed.
        unsafe { libc::close(h) };
    }
    Ok(())
}

pub fn chdir(dir: &CStr) -> io::Result<()> {
    // SAFETY: NUL-terminated path. Child-safe.
    check(unsafe { libc::chdir(dir.as_ptr()) } as libc::c_long).map(drop)
}

/// Unblocks every signal and restores default dispositions that survive execve
/// (SIG_IGN does: Rust ignores SIGPIPE). Child-safe.
pub fn reset_signals() {
    // SAFETY: sigemptyset initialises the set; the rest take plain arguments.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in 1..libc::SIGRTMIN() {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
}

/// Restricts the bounding, permitted and effective sets to `keep` and empties the
/// inheritable and ambient ones (as runc does since CVE-2022-24769: an inheritable
/// capability would come back through a file capability). Child-safe. `last_cap` is
/// /proc/sys/kernel/cap_last_cap.
pub fn restrict_capabilities(keep: u64, last_cap: u32) -> io::Result<()> {
    for cap in 0..=last_cap.min(63) {
        if keep & (1 << cap) == 0 {
            // SAFETY: plain integer arguments.
            let ret = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
            check(ret as libc::c_long)?;
        }
    }
    capset(Caps {
        effective: keep,
        permitted: keep,
        inheritable: 0,
    })?;
    // SAFETY: plain integer arguments.
    check(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    } as libc::c_long)
    .map(drop)
}

/// Sets no_new_privs: no exec gains a privilege (setuid, file capabilities). Child-safe.
pub fn no_new_privs() -> io::Result<()> {
    // SAFETY: plain integer arguments.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } as libc::c_long).map(drop)
}

/// The three capability sets of a process, as 64-bit masks.
#[derive(Clone, Copy)]
struct Caps {
    effective: u64,
    permitted: u64,
    inheritable: u64,
}

/// `struct __user_cap_header_struct` and `__user_cap_data_struct` of capget(2).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;

/// This process's capability sets. Child-safe.
fn capget() -> io::Result<Caps> {
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and room for the two data structs capget(2) version 3 writes.
    check(unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut CapHeader,
            data.as_mut_ptr(),
        )
    })?;
    let join = |lo: u32, hi: u32| u64::from(lo) | u64::from(hi) << 32;
    Ok(Caps {
        effective: join(data[0].effective, data[1].effective),
        permitted: join(data[0].permitted, data[1].permitted),
        inheritable: join(data[0].inheritable, data[1].inheritable),
    })
}

/// Sets this process's capability sets. Child-safe.
fn capset(caps: Caps) -> io::Result<()> {
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let half = |shift: u32| CapData {
        effective: (caps.effective >> shift) as u32,
        permitted: (caps.permitted >> shift) as u32,
        inheritable: (caps.inheritable >> shift) as u32,
    };
    let data = [half(0), half(32)];
    // SAFETY: header and two data structs as capset(2) version 3 expects.
    check(unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    })
    .map(drop)
}

/// Becomes `uid`:`gid` with the supplementary `groups`, keeping the
/// capability sets so they can still be restricted afterwards; execve then clears
/// them for a non-root user (no ambient set), as container runtimes do. Child-safe.
pub fn switch_user(uid: u32, gid: u32, groups: &[u32]) -> io::Result<()> {
    // SAFETY: plain integer arguments; setgroups reads groups.len() gid_t's.
    unsafe {
        check(libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) as libc::c_long)?;
        check(libc::setgroups(groups.len(), groups.as_ptr()) as libc::c_long)?;
        check(libc::setresgid(gid, gid, gid) as libc::c_long)?;
        check(libc::setresuid(uid, uid, uid) as libc::c_long)?;
    }
    // Leaving uid 0 emptied the effective set; the permitted one was kept.
    let caps = capget()?;
    capset(Caps {
        effective: caps.permitted,
        ..caps
    })
}

/// Sets IFF_UP on `lo` of the current network namespace. Child-safe.
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: a socket we close below; ifreq is zeroed then filled with "lo".
    unsafe {
        let sock = check(
            libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) as libc::c_long,
        )? as RawFd;
        let mut req: libc::ifreq = std::mem::zeroed();
        req.ifr_name[0] = b'l' as libc::c_char;
        req.ifr_name[1] = b'o' as libc::c_char;
        let mut res = check(libc::ioctl(sock, libc::SIOCGIFFLAGS as _, &mut req) as libc::c_long);
        if res.is_ok() {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            res = check(libc::ioctl(sock, libc::SIOCSIFFLAGS as _, &mut req) as libc::c_long);
        }
        libc::close(sock);
        res.map(drop)
    }
}

/// Writes all of `buf` to `fd`, or gives up. Child-safe.
pub fn write_all(fd: RawFd, buf: &[u8]) {
    let mut at = 0;
    while at < buf.len() {
        // SAFETY: the slice is valid for its length.
        let n = unsafe { libc::write(fd, buf[at..].as_ptr().cast(), buf.len() - at) };
        if n <= 0 {
            if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        at += n as usize;
    }
}

/// A cloned child's report of the setup step that failed: (step, errno), written to
/// the close-on-exec pipe its parent reads (EOF there means it exec'd). Child-safe.
pub fn report_failure(fd: RawFd, step: u32, errno: i32) {
    let mut msg = [0u8; 8];
    msg[..4].copy_from_slice(&step.to_ne_bytes());
    msg[4..].copy_from_slice(&errno.to_ne_bytes());
    write_all(fd, &msg);
}

/// The parent's side of [`report_failure`]: None once the child exec'd.
pub fn read_failure(fd: RawFd) -> io::Result<Option<(u32, io::Error)>> {
    let mut msg = [0u8; 8];
    let mut got = 0;
    while got < msg.len() {
        match read(fd, &mut msg[got..])? {
            0 => break,
            n => got += n,
        }
    }
    if got < msg.len() {
        return Ok(None);
    }
    let step = u32::from_ne_bytes([msg[0], msg[1], msg[2], msg[3]]);
    let errno = i32::from_ne_bytes([msg[4], msg[5], msg[6], msg[7]]);
    Ok(Some((step, io::Error::from_raw_os_error(errno))))
}

/// Ends a cloned child without running any destructor. Child-safe.
pub fn exit_child(code: i32) -> ! {
    // SAFETY: _exit never returns.
    unsafe { libc::_exit(code) }
}

/// A pipe whose two ends are close-on-exec.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } as libc::c_long)?;
    // SAFETY: both fds are new and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A memfd holding `bytes`, sealed so that nobody, its maker included, can change
/// it (memfd_create(2), F_ADD_SEALS in fcntl(2)): memory only, never a file.
pub fn sealed_memfd(name: &CStr, bytes: &[u8]) -> io::Result<File> {
    use std::io::Write;
    // SAFETY: name is a valid C string; the flags are memfd_create's.
    let fd = check(unsafe {
        libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
    } as libc::c_long)?;
    // SAFETY: the fd is new and ours.
    let mut file = unsafe { File::from_raw_fd(fd as RawFd) };
    file.write_all(bytes)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS on a memfd made with MFD_ALLOW_SEALING.
    check(unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } as libc::c_long)?;
    Ok(file)
}

pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// Makes every mount below / private to this mount namespace, so what the pod
/// mounts never propagates to the host, then mounts a /proc for the current PID
/// namespace in place of the host's (detached, with what was mounted below it).
/// Child-safe.
pub fn private_proc() -> io::Result<()> {
    // SAFETY: NUL-terminated literals; null data is allowed for these mount types.
    unsafe {
        check(libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) as libc::c_long)?;
        // EINVAL: /proc was no mount point.
        let _ = libc::umount2(c"/proc".as_ptr(), libc::MNT_DETACH);
        check(libc::mount(
            c"proc".as_ptr(),
            c"/proc".as_ptr(),
            c"proc".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        ) as libc::c_long)
        .map(drop)
    }
}

/// mount(2). Child-safe.
pub fn mount(
    source: &CStr,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> io::Result<()> {
    let ptr = |s: Option<&CStr>| s.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: NUL-terminated strings or null where mount(2) allows it.
    check(unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            ptr(fstype),
            flags,
            ptr(data).cast(),
        )
    } as libc::c_long)
    .map(drop)
}

/// Sets or clears MOUNT_ATTR_RDONLY on the mount at `target` (and every mount below
/// it if `recursive`), with mount_setattr(2), Linux >= 5.12. Child-safe.
pub fn mount_setattr(target: &CStr, read_only: bool, recursive: bool) -> io::Result<()> {
    let flags = if recursive { libc::AT_RECURSIVE } else { 0 };
    mount_setattr_at(libc::AT_FDCWD, target, flags, read_only)
}

/// mount_setattr(2) read-only on the detached mount tree `fd` and everything in it.
pub fn set_read_only_tree(fd: &OwnedFd) -> io::Result<()> {
    mount_setattr_at(
        fd.as_raw_fd(),
        c"",
        libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
        true,
    )
}

fn mount_setattr_at(
    dirfd: RawFd,
    target: &CStr,
    flags: libc::c_int,
    read_only: bool,
) -> io::Result<()> {
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr {
        attr_set: if read_only { MOUNT_ATTR_RDONLY } else { 0 },
        attr_clr: if read_only { 0 } else { MOUNT_ATTR_RDONLY },
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: a NUL-terminated path and a mount_attr of the size passed.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            target.as_ptr(),
            flags as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map(drop)
}

/// unshare(2). Child-safe.
pub fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: plain integer argument.
    check(unsafe { libc::unshare(flags) } as libc::c_long).map(drop)
}

/// Child-safe.
pub fn sethostname(name: &CStr) -> io::Result<()> {
    // SAFETY: pointer and length of a valid buffer.
    check(unsafe { libc::sethostname(name.as_ptr(), name.to_bytes().len()) } as libc::c_long)
        .map(drop)
}

/// A new session: no controlling terminal, so a ^C at the launcher's terminal reaches
/// the launcher (which stops the pod gracefully) and not the containers. Child-safe.
pub fn setsid() {
    // SAFETY: no arguments; failure (already a group leader) is harmless here.
    unsafe { libc::setsid() };
}

/// execve(2); returns only on failure, with the errno. Child-safe.
pub fn execve(path: &CStr, argv: &[*const libc::c_char], envp: &[*const libc::c_char]) -> i32 {
    // SAFETY: argv and envp are NULL-terminated arrays of NUL-terminated strings.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EINVAL)
}

/// Writes what of `buf` the fd takes now, retrying on EINTR.
pub fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Reads up to `buf.len()` bytes, retrying on EINTR; 0 at EOF.
pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// An exclusive flock(2) on `file`; `wait`: block until it is free (retrying EINTR),
/// else fail with EWOULDBLOCK.
pub fn flock(file: &File, wait: bool) -> io::Result<()> {
    let op = libc::LOCK_EX | if wait { 0 } else { libc::LOCK_NB };
    loop {
        // SAFETY: a valid fd and a plain operation.
        match check(unsafe { libc::flock(file.as_raw_fd(), op) } as libc::c_long) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r.map(drop),
        }
    }
}

/// rename(2) that fails with EEXIST instead of replacing `to` (renameat2
/// RENAME_NOREPLACE, Linux >= 3.15).
pub fn rename_noreplace(from: &std::path::Path, to: &std::path::Path) -> io::Result<()> {
    let (from, to) = (cpath(from)?, cpath(to)?);
    const RENAME_NOREPLACE: libc::c_uint = 1;
    // SAFETY: NUL-terminated paths relative to the cwd, plain flags.
    check(unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            RENAME_NOREPLACE,
        )
    })
    .map(drop)
}

/// Waits up to `limit` for the process behind `pidfd` to exit (the pidfd turns
/// readable, pidfd_open(2)); true if it did.
pub fn pidfd_wait(pidfd: &OwnedFd, limit: std::time::Duration) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(
            std::os::fd::AsFd::as_fd(pidfd),
            PollFlags::POLLIN,
        )];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(n) if n > 0 => return true,
            Err(nix::errno::Errno::EINTR) => continue,
            _ if left.is_zero() => return false,
            _ => {}
        }
    }
}

/// A detached copy of the mount at `path` (open_tree(2) OPEN_TREE_CLONE, Linux >= 5.2),
/// to be attached elsewhere with [`move_mount`] once `path` is hidden. Child-safe.
pub fn open_tree_clone(path: &CStr) -> io::Result<RawFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    // SAFETY: a NUL-terminated path and plain flags.
    check(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    })
    .map(|fd| fd as RawFd)
}

/// A detached copy of the mount tree at `path`, every mount below it included
/// (open_tree(2) OPEN_TREE_CLONE | AT_RECURSIVE), read-only throughout if asked.
/// Child-safe.
pub fn open_tree_clone_all(path: &CStr, read_only: bool) -> io::Result<RawFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    let flags =
        OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_RECURSIVE as libc::c_uint;
    // SAFETY: a NUL-terminated path and plain flags.
    let fd =
        check(unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) })?
            as RawFd;
    if read_only {
        let flags = libc::AT_EMPTY_PATH | libc::AT_RECURSIVE;
        if let Err(e) = mount_setattr_at(fd, c"", flags, true) {
            close(fd);
            return Err(e);
        }
    }
    Ok(fd)
}

/// A new tmpfs as a detached mount (fsopen(2), fsconfig(2), fsmount(2); Linux >= 5.2),
/// of `size` bytes, its root directory 0755, nosuid and nodev.
pub fn detached_tmpfs(size: u64) -> io::Result<OwnedFd> {
    const FSCONFIG_SET_STRING: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const MOUNT_ATTR_NOSUID: libc::c_uint = 0x2;
    const MOUNT_ATTR_NODEV: libc::c_uint = 0x4;
    // FSOPEN_CLOEXEC is the same bit.
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    // SAFETY: a NUL-terminated name and a plain flag.
    let fs = check(unsafe { libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), FSMOUNT_CLOEXEC) })?;
    // SAFETY: the fs context just opened, owned from here on.
    let fs = unsafe { OwnedFd::from_raw_fd(fs as RawFd) };
    let size =
        CString::new(size.to_string()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let set = |key: &CStr, value: &CStr| {
        // SAFETY: an fs context fd and NUL-terminated strings.
        check(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                FSCONFIG_SET_STRING,
                key.as_ptr(),
                value.as_ptr(),
                0,
            )
        })
    };
    set(c"size", &size)?;
    set(c"mode", c"0755")?;
    // SAFETY: plain arguments on the fs context.
    check(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    })?;
    // SAFETY: plain arguments on the fs context.
    let mnt = check(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        )
    })?;
    // SAFETY: a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(mnt as RawFd) })
}

/// Bytes in use on the file system of `fd` (fstatfs(2): blocks less free blocks).
pub fn used_bytes(fd: &OwnedFd) -> io::Result<u64> {
    // SAFETY: statfs is plain old data, filled in by the kernel.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: an fd of ours and a statfs to fill.
    check(unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) } as libc::c_long)?;
    Ok((st.f_blocks - st.f_bfree) as u64 * st.f_bsize as u64)
}

/// Makes `dir` the root (pivot_root(2) with the old root stacked under the new one,
/// then detached, as runc does) and the working directory. Child-safe.
pub fn pivot_root(dir: &CStr) -> io::Result<()> {
    chdir(dir)?;
    // SAFETY: NUL-terminated paths.
    check(unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) })?;
    unmount(c".")?;
    chdir(c"/")
}

/// Attaches the detached mount `fd` at `target` (move_mount(2)) and closes `fd`.
/// Child-safe.
pub fn move_mount(fd: RawFd, target: &CStr) -> io::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;
    // SAFETY: a mount fd, an empty path as the flag asks, a NUL-terminated target.
    let res = check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            fd,
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    });
    close(fd);
    res.map(drop)
}

/// umount2(2) with MNT_DETACH: `target` and the mounts below it leave this mount
/// namespace. Child-safe.
pub fn unmount(target: &CStr) -> io::Result<()> {
    // SAFETY: a NUL-terminated path and a plain flag.
    check(unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) } as libc::c_long).map(drop)
}

/// close(2), ignoring errors. Child-safe.
pub fn close(fd: RawFd) {
    // SAFETY: closes an fd this process owns and no longer uses.
    unsafe { libc::close(fd) };
}

/// Makes a node at `path`: a directory, an empty regular file, or a symlink to
/// `link`. Child-safe.
pub fn make_node(path: &CStr, kind: Node<'_>) -> io::Result<()> {
    // SAFETY: NUL-terminated paths, plain modes.
    let ret = unsafe {
        match kind {
            Node::Dir(mode) => libc::mkdir(path.as_ptr(), mode),
            Node::File => libc::mknod(path.as_ptr(), libc::S_IFREG | 0o644, 0),
            Node::Symlink(to) => libc::symlink(to.as_ptr(), path.as_ptr()),
        }
    };
    check(ret as libc::c_long).map(drop)
}

pub enum Node<'a> {
    Dir(libc::mode_t),
    File,
    Symlink(&'a CStr),
}

const BPF_CGROUP_DEVICE: u32 = 6;

/// Loads a BPF_PROG_TYPE_CGROUP_DEVICE program (bpf(2) BPF_PROG_LOAD), for
/// [`attach_device_filter`].
pub fn load_device_filter(insns: &[u64]) -> io::Result<OwnedFd> {
    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
    #[repr(C)]
    #[derive(Default)]
    struct ProgLoad {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
        prog_name: [u8; 16],
        prog_ifindex: u32,
        expected_attach_type: u32,
    }
    let mut name = [0u8; 16];
    name[..7].copy_from_slice(b"devices");
    let load = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: c"GPL".as_ptr() as u64,
        prog_name: name,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    // SAFETY: a bpf_attr of the size passed, pointing at live instructions and a
    // NUL-terminated licence.
    let prog = check(unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &load as *const ProgLoad,
            std::mem::size_of::<ProgLoad>(),
        )
    })?;
    // SAFETY: the kernel just returned this fd to us.
    Ok(unsafe { OwnedFd::from_raw_fd(prog as RawFd) })
}

/// Attaches a program of [`load_device_filter`] to the cgroup `dir` with
/// BPF_F_ALLOW_MULTI, so it runs along with any program an ancestor has (access needs
/// all of them to allow). The cgroup holds the program from then on; it goes when the
/// cgroup is removed.
pub fn attach_device_filter(dir: &File, prog: &OwnedFd) -> io::Result<()> {
    const BPF_PROG_ATTACH: libc::c_long = 8;
    const BPF_F_ALLOW_MULTI: u32 = 2;
    #[repr(C)]
    struct ProgAttach {
        target_fd: u32,
        attach_bpf_fd: u32,
        attach_type: u32,
        attach_flags: u32,
    }
    let attach = ProgAttach {
        target_fd: dir.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    // SAFETY: a bpf_attr of the size passed with two valid fds.
    check(unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attach as *const ProgAttach,
            std::mem::size_of::<ProgAttach>(),
        )
    })
    .map(drop)
}

fn cpath(path: &std::path::Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))
}

/// Installs the seccomp filter `program` (seccomp(2) SECCOMP_SET_MODE_FILTER): this
/// process, and all it starts, run under it from here. Needs no_new_privs or
/// CAP_SYS_ADMIN. Child-safe.
pub fn install_filter(program: &[libc::sock_filter]) -> io::Result<()> {
    let fprog = libc::sock_fprog {
        len: program.len() as libc::c_ushort,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: the kernel copies the program it is pointed at, valid for `len`.
    check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &fprog as *const libc::sock_fprog,
        )
    })
    .map(drop)
}

/// An error as strerror(3) words its errno, without Rust's " (os error N)".
pub fn strerror(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Makes the process `cmd` starts get SIGKILL when the thread that started it ends
/// (prctl PR_SET_PDEATHSIG): a CNI plugin does not outlive a supervisor killed under it.
pub fn die_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(|| {
            check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) as libc::c_long)
                .map(drop)
        });
    }
}

/// How [`output_within`] ended.
pub enum Finished {
    Done(std::process::Output),
    /// The time ran out.
    TimedOut,
    /// `cancel` turned readable.
    Cancelled,
}

/// Like `Child::wait_with_output`, within `limit` and until `cancel` (an fd that
/// turns readable when the wait should stop) says so. Unless Done, the child's process
/// group (it leads one: `process_group(0)`) has been SIGKILLed and the child reaped.
pub fn output_within(
    mut child: std::process::Child,
    limit: std::time::Duration,
    cancel: Option<std::os::fd::BorrowedFd>,
) -> io::Result<Finished> {
    use nix::poll::{PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let deadline = std::time::Instant::now() + limit;
    let left = || deadline.saturating_duration_since(std::time::Instant::now());
    let mut pipes = [
        child.stdout.take().map(OwnedFd::from),
        child.stderr.take().map(OwnedFd::from),
    ];
    for fd in pipes.iter().flatten() {
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )?;
    }
    let mut got = [Vec::new(), Vec::new()];
    let pidfd = pidfd_open(child.id() as i32)?;
    let mut status = None;
    let kill = |child: &mut std::process::Child, why: Finished| -> io::Result<Finished> {
        // SAFETY: kill(2) of the group the child leads.
        unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
        child.wait()?;
        Ok(why)
    };
    while status.is_none() || pipes.iter().any(Option::is_some) {
        if left().is_zero() {
            return kill(&mut child, Finished::TimedOut);
        }
        let mut fds: Vec<PollFd> = pipes
            .iter()
            .flatten()
            .map(|p| PollFd::new(p.as_fd(), PollFlags::POLLIN))
            .collect();
        if status.is_none() {
            fds.push(PollFd::new(pidfd.as_fd(), PollFlags::POLLIN));
        }
        if let Some(fd) = cancel {
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        let ms = u16::try_from(left().as_millis().max(1)).unwrap_or(u16::MAX);
        match nix::poll::poll(&mut fds, PollTimeout::from(ms)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let cancelled = cancel.is_some()
            && fds
                .last()
                .and_then(PollFd::revents)
                .is_some_and(|r| !r.is_empty());
        drop(fds);
        if cancelled {
            return kill(&mut child, Finished::Cancelled);
        }
        for (pipe, buf) in pipes.iter_mut().zip(got.iter_mut()) {
            let Some(fd) = pipe else { continue };
            let mut chunk = [0u8; 8192];
            match read(fd.as_raw_fd(), &mut chunk) {
                Ok(0) => *pipe = None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => *pipe = None,
            }
        }
        if status.is_none() {
            status = child.try_wait()?;
        }
    }
    let [stdout, stderr] = got;
    Ok(match status {
        Some(status) => Finished::Done(std::process::Output {
            status,
            stdout,
            stderr,
        }),
        None => Finished::TimedOut,
    })
}

/// Sets extended attribute `name` of `path` (not following a symlink) to `value`.
pub fn set_xattr(path: &std::path::Path, name: &CStr, value: &[u8]) -> io::Result<()> {
    let p = cpath(path)?;
    // SAFETY: both strings are NUL-terminated; value is valid for its length.
    check(unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    } as libc::c_long)
    .map(drop)
}

/// Extended attribute `name` of `path` (not following a symlink), up to 4 KiB.
/// Is the file `fd` (an O_PATH fd will do) a directory?
pub fn is_dir_fd(fd: &OwnedFd) -> io::Result<bool> {
    // SAFETY: stat is plain old data, filled in by the kernel.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: an fd of ours and a stat to fill.
    check(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } as libc::c_long)?;
    Ok(st.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

/// Makes directory `rel` below the directory `root` with `mode` (not masked) and
/// `owner`; returns it open, or None if something was there already.
pub fn make_dir_at(
    root: &OwnedFd,
    rel: &CStr,
    mode: u32,
    owner: Option<(u32, u32)>,
) -> io::Result<Option<OwnedFd>> {
    // SAFETY: an fd of ours and a NUL-terminated path.
    let made = unsafe { libc::mkdirat(root.as_raw_fd(), rel.as_ptr(), 0o700) };
    if let Err(e) = check(made as libc::c_long) {
        return match e.raw_os_error() {
            Some(libc::EEXIST) => Ok(None),
            _ => Err(e),
        };
    }
    let flags = libc::O_DIRECTORY | libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: as above.
    let fd = check(unsafe { libc::openat(root.as_raw_fd(), rel.as_ptr(), flags) } as libc::c_long)?;
    // SAFETY: a new fd that nothing else owns.
    let dir = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    if let Some((uid, gid)) = owner {
        // SAFETY: an fd of ours, plain ids.
        check(unsafe { libc::fchown(dir.as_raw_fd(), uid, gid) } as libc::c_long)?;
    }
    // SAFETY: an fd of ours, a plain mode.
    check(unsafe { libc::fchmod(dir.as_raw_fd(), mode & 0o7777) } as libc::c_long)?;
    Ok(Some(dir))
}

/// SIGKILL to child `pid`, and its exit waited for.
/// Waits for the child `pidfd` refers to and reaps it (nothing if it was reaped).
pub fn wait_pidfd(pidfd: &OwnedFd) {
    // SAFETY: a zeroed siginfo_t is valid; waitid writes into it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: P_PIDFD with a pidfd of ours; info is valid.
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED,
            )
        };
        if r == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

pub fn kill_and_reap(pid: libc::pid_t) {
    // SAFETY: plain syscalls on a child of ours.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
}

/// Writes `value` to this process's /proc/self/oom_score_adj. Child-safe.
pub fn set_oom_score_adj(value: &CStr) -> io::Result<()> {
    write_file(c"/proc/self/oom_score_adj", value.to_bytes())
}

/// Writes `bytes` to the existing file `path` in one write(2). Child-safe.
pub fn write_file(path: &CStr, bytes: &[u8]) -> io::Result<()> {
    // SAFETY: a NUL-terminated path and plain flags.
    let fd = check(
        unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) } as libc::c_long,
    )?;
    // SAFETY: an fd of ours and a buffer of the length given.
    let written = check(
        unsafe { libc::write(fd as RawFd, bytes.as_ptr().cast(), bytes.len()) } as libc::c_long,
    );
    // SAFETY: the fd opened above, closed once.
    unsafe { libc::close(fd as RawFd) };
    written.map(drop)
}

/// Opens the regular file `rel` below the directory `root` for reading, following no
/// symlink at its end.
pub fn open_file_at(root: &OwnedFd, rel: &CStr) -> io::Result<OwnedFd> {
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
    // SAFETY: an fd of ours and a NUL-terminated path.
    let fd = check(unsafe { libc::openat(root.as_raw_fd(), rel.as_ptr(), flags) } as libc::c_long)?;
    // SAFETY: a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Writes a new file `rel` below the directory `root`, with `mode`, holding `bytes`.
pub fn write_file_at(root: &OwnedFd, rel: &CStr, mode: u32, bytes: &[u8]) -> io::Result<()> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: an fd of ours and a NUL-terminated path.
    let fd = check(
        unsafe { libc::openat(root.as_raw_fd(), rel.as_ptr(), flags, mode) } as libc::c_long,
    )?;
    // SAFETY: a new fd that nothing else owns.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
    // The umask does not apply to fchmod.
    // SAFETY: an fd of ours, a plain mode.
    check(unsafe { libc::fchmod(file.as_raw_fd(), mode) } as libc::c_long)?;
    std::io::Write::write_all(&mut file, bytes)
}

/// Sets extended attribute `name` of the open file `fd` to `value`.
pub fn set_xattr_fd(fd: &OwnedFd, name: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: an fd of ours, a NUL-terminated name, a buffer of the length given.
    check(unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    } as libc::c_long)
    .map(drop)
}

pub fn get_xattr(path: &std::path::Path, name: &CStr) -> io::Result<Vec<u8>> {
    let p = cpath(path)?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: both strings are NUL-terminated; buf is valid for its length.
    let n = check(unsafe {
        libc::lgetxattr(
            p.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    } as libc::c_long)?;
    buf.truncate(n as usize);
    Ok(buf)
}

/// Is `path` the root of a mount (statx's STATX_ATTR_MOUNT_ROOT, Linux >= 5.8)?
pub fn is_mount_root(path: &std::path::Path) -> io::Result<bool> {
    let p = cpath(path)?;
    // SAFETY: statx is plain old data, for which all zeroes is a valid value.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: statx fills the struct; the path is NUL-terminated.
    check(unsafe {
        libc::statx(
            libc::AT_FDCWD,
            p.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            0,
            &mut stx,
        )
    } as libc::c_long)?;
    let known = stx.stx_attributes_mask & libc::STATX_ATTR_MOUNT_ROOT as u64 != 0;
    if !known {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "statx knows no STATX_ATTR_MOUNT_ROOT (Linux < 5.8)",
        ));
    }
    Ok(stx.stx_attributes & libc::STATX_ATTR_MOUNT_ROOT as u64 != 0)
}

/// Binds `source` onto `target` (not recursively).
pub fn bind(source: &std::path::Path, target: &std::path::Path) -> io::Result<()> {
    mount(&cpath(source)?, &cpath(target)?, None, libc::MS_BIND, None)
}

/// Makes directory `dir` a mount of its own (bound onto itself) in a peer group of
/// its own: what it holds propagates to the mount namespaces copied from this one,
/// and so do its unmounts.
pub fn bind_shared(dir: &std::path::Path) -> io::Result<()> {
    let d = cpath(dir)?;
    mount(&d, &d, None, libc::MS_BIND, None)?;
    let none = c"none";
    mount(none, &d, None, libc::MS_PRIVATE, None)?;
    mount(none, &d, None, libc::MS_SHARED, None)
}

/// umount2(MNT_DETACH) of `path`; nothing there, or no mount there, is no error.
pub fn unmount_path(path: &std::path::Path) -> io::Result<()> {
    match unmount(&cpath(path)?) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOENT)) => Ok(()),
        r => r,
    }
}

/// Four random bytes (getrandom(2)).
pub fn random_u32() -> io::Result<u32> {
    let mut b = [0u8; 4];
    // SAFETY: a valid buffer of its length.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    match n {
        4 => Ok(u32::from_ne_bytes(b)),
        _ => Err(io::Error::last_os_error()),
    }
}

/// The CPUs online (at least 1).
pub fn online_cpus() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    u64::try_from(n).unwrap_or(1).max(1)
}

/// prctl(PR_SET_CHILD_SUBREAPER): orphaned descendants are reparented to this process.
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: plain integer arguments.
    check(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } as libc::c_long)
        .map(drop)
}

/// Makes this thread, and the children it makes from now on, the host's again after
/// it joined a pod's namespaces: the network namespace `netns` (held from before),
/// and the PID namespace this process itself is in (joining one's own active PID
/// namespace is allowed, pid_namespaces(7)).
pub fn leave_pod(netns: &File) -> io::Result<()> {
    setns(netns.as_raw_fd(), libc::CLONE_NEWNET)?;
    let own = File::open("/proc/self/ns/pid")?;
    setns(own.as_raw_fd(), libc::CLONE_NEWPID)
}

/// openat2(2): `path` below `dirfd` opened with `flags`, resolved as `resolve` says.
fn openat2(dirfd: RawFd, path: &CStr, flags: libc::c_int, resolve: u64) -> io::Result<OwnedFd> {
    // SAFETY: open_how is plain old data, for which all zeroes is the default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = resolve;
    // SAFETY: a directory fd (or AT_FDCWD), a NUL-terminated path and an open_how of
    // the size given.
    let fd = check(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    })?;
    // SAFETY: openat2 returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Opens the pseudo-terminal multiplexer `dev/ptmx` of the file system whose root is
/// `root` (a pod's, through /proc/PID/root), resolving every symlink inside that root
/// (openat2(2) RESOLVE_IN_ROOT, Linux >= 5.6): a pod that made its /dev/ptmx a link
/// to a host path cannot have the runtime open that path. What opens must be a ptmx
/// (character device 5:2), unlocked for its peer.
pub fn open_ptmx_in(root: &File) -> io::Result<OwnedFd> {
    const PTMX: (u32, u32) = (5, 2);
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK;
    let resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    let fd = openat2(root.as_raw_fd(), c"dev/ptmx", flags, resolve)?;
    let st = nix::sys::stat::fstat(&fd).map_err(io::Error::from)?;
    let is_ptmx = st.st_mode & libc::S_IFMT == libc::S_IFCHR
        && (libc::major(st.st_rdev), libc::minor(st.st_rdev)) == PTMX;
    if !is_ptmx {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "/dev/ptmx is not the pseudo-terminal multiplexer",
        ));
    }
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } as libc::c_long)?;
    Ok(fd)
}

/// The terminal end of the pseudo-terminal `master` (ioctl TIOCGPTPEER, Linux >=
/// 4.13): opened through the master itself, never by a path a pod could swap.
pub fn pty_peer(master: &OwnedFd) -> io::Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes the open flags as its argument and returns a new fd.
    let fd = check(
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) } as libc::c_long,
    )? as RawFd;
    // SAFETY: a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes the terminal on fd 0 this session's controlling terminal (after setsid).
/// Child-safe.
pub fn take_controlling_terminal() -> io::Result<()> {
    // SAFETY: TIOCSCTTY with 0: do not steal it from another session.
    check(unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } as libc::c_long).map(drop)
}

/// The window size of the terminal `fd`.
pub fn window_size(fd: RawFd) -> io::Result<libc::winsize> {
    // SAFETY: winsize is plain old data.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ fills the winsize it is given.
    check(unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } as libc::c_long)?;
    Ok(ws)
}

/// Sets the window size of the terminal `fd` (its foreground process group gets
/// SIGWINCH when it changes).
pub fn set_window_size(fd: RawFd, ws: &libc::winsize) -> io::Result<()> {
    // SAFETY: TIOCSWINSZ reads the winsize it is given.
    check(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, ws) } as libc::c_long).map(drop)
}

/// A detached copy of the mount tree at the file `fd` refers to (open_tree(2)
/// OPEN_TREE_CLONE | AT_RECURSIVE on an O_PATH fd): a bind mount to attach elsewhere,
/// in another mount namespace, with [`move_mount`].
pub fn clone_tree(fd: &OwnedFd) -> io::Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    let flags = OPEN_TREE_CLONE
        | libc::O_CLOEXEC as libc::c_uint
        | libc::AT_EMPTY_PATH as libc::c_uint
        | libc::AT_RECURSIVE as libc::c_uint;
    // SAFETY: an fd of ours, an empty path as AT_EMPTY_PATH asks, plain flags.
    let tree =
        check(unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), c"".as_ptr(), flags) })?;
    // SAFETY: a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(tree as RawFd) })
}

/// Opens `path` as an O_PATH fd, symlinks followed but no magic link of /proc
/// (openat2 RESOLVE_NO_MAGICLINKS): the one lookup whose result is checked and used.
pub fn open_path(path: &std::path::Path) -> io::Result<OwnedFd> {
    openat2(
        libc::AT_FDCWD,
        &cpath(path)?,
        libc::O_PATH,
        libc::RESOLVE_NO_MAGICLINKS,
    )
}

/// Opens the directory `rel` below the directory `root` for reading, resolved without
/// leaving `root`, following no symlink and crossing no mount (openat2 RESOLVE_BENEATH,
/// RESOLVE_NO_SYMLINKS, RESOLVE_NO_XDEV).
pub fn open_dir_beneath(root: &OwnedFd, rel: &std::path::Path) -> io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let rel = match rel.as_os_str().is_empty() {
        true => std::ffi::OsStr::new("."),
        false => rel.as_os_str(),
    };
    let p = CString::new(rel.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    let resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_XDEV;
    openat2(root.as_raw_fd(), &p, flags, resolve)
}

/// Opens `rel` below the directory `root` as an O_PATH fd, every component, symlinks
/// included, resolved without leaving `root` (openat2 RESOLVE_BENEATH: EXDEV if it
/// would). With `make_dirs`, missing components are made as directories (0755) in
/// their parent, itself resolved beneath `root`.
pub fn open_beneath(root: &OwnedFd, rel: &str, make_dirs: bool) -> io::Result<OwnedFd> {
    let open = |path: &str| -> io::Result<OwnedFd> {
        let p = CString::new(if path.is_empty() { "." } else { path })
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
        openat2(root.as_raw_fd(), &p, libc::O_PATH, resolve)
    };
    match open(rel) {
        Err(e) if make_dirs && e.raw_os_error() == Some(libc::ENOENT) => {}
        r => return r,
    }
    let mut done = String::new();
    for comp in rel.split('/').filter(|c| !c.is_empty() && *c != ".") {
        let parent = open(&done)?;
        let next = if done.is_empty() {
            comp.to_string()
        } else {
            format!("{done}/{comp}")
        };
        if let Err(e) = open(&next) {
            if e.raw_os_error() != Some(libc::ENOENT) {
                return Err(e);
            }
            let c = CString::new(comp).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
            // SAFETY: a directory fd (O_PATH is enough for mkdirat) and a NUL-terminated name.
            let rc = unsafe { libc::mkdirat(parent.as_raw_fd(), c.as_ptr(), 0o755) };
            if rc != 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST) {
                return Err(io::Error::last_os_error());
            }
        }
        done = next;
    }
    open(rel)
}

/// Unmaps this process's read-only pages of its own executable (text, rodata) with
/// madvise(MADV_DONTNEED): they come back from the page cache as they are used, so
/// what stays resident is what runs from now on, not what ran once before (argument
/// parsing, setup). Never a writable mapping: there MADV_DONTNEED would lose data.
pub fn shed_executable_pages() {
    let (Ok(maps), Ok(exe)) = (
        crate::procfs::read("/proc/self/maps"),
        std::fs::read_link("/proc/self/exe"),
    ) else {
        return;
    };
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            continue;
        };
        if perms.contains('w') || f.nth(3).map(std::path::Path::new) != Some(exe.as_path()) {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
        ) else {
            continue;
        };
        // SAFETY: a page-aligned range of a read-only, file-backed mapping of this
        // process's executable; its pages are refaulted unchanged from the file.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    }
}
