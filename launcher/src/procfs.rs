//! What the runtime reads of /proc, parsed in one place: a process's stat line
//! (proc(5): state, parent, flags, start time) and the mount table
//! (/proc/self/mountinfo, with its octal escapes).

use std::io::{self, Read};
use std::path::PathBuf;

/// Fields of /proc/PID/stat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// R, S, D, Z, ...
    pub state: char,
    pub ppid: i32,
    /// The kernel's PF_* flags (PF_EXITING is 0x4).
    pub flags: u64,
    /// Clock ticks after boot: with the pid, it names one process.
    pub start_time: u64,
}

impl Stat {
    pub const PF_EXITING: u64 = 0x4;
}

/// Process `pid`'s stat line; None once it is gone.
pub fn stat(pid: i32) -> Option<Stat> {
    // One read: the line is at most 52 numbers and a 16-byte name.
    let mut buf = [0u8; 1024];
    let n = std::fs::File::open(format!("/proc/{pid}/stat"))
        .ok()?
        .read(&mut buf)
        .ok()?;
    parse_stat(std::str::from_utf8(&buf[..n]).ok()?)
}

/// A stat line. The command name may hold spaces and parentheses: the fields are
/// what follows its last ')'.
pub fn parse_stat(line: &str) -> Option<Stat> {
    let rest = line.get(line.rfind(')')? + 2..)?;
    // rest starts at field 3 (state).
    let f: Vec<&str> = rest.split(' ').collect();
    Some(Stat {
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        flags: f.get(6)?.parse().ok()?,
        start_time: f.get(19)?.parse().ok()?,
    })
}

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The mount's ID and its parent's (fields 1 and 2).
    pub id: u32,
    pub parent: u32,
    /// The root of the mount within its file system (field 4).
    pub root: PathBuf,
    /// Where it is mounted (field 5).
    pub point: PathBuf,
    pub fstype: String,
}

/// This process's mount table.
pub fn mounts() -> io::Result<Vec<Mount>> {
    Ok(parse_mountinfo(&read("/proc/self/mountinfo")?))
}

/// A file of /proc whole, in reads of 16 KiB: its size is 0 to stat(2), and
/// std's reads of such a file start at 32 bytes and double (a mount table of 22
/// lines took 8 reads, each a system call that formats its part again).
pub fn read(path: impl AsRef<std::path::Path>) -> io::Result<String> {
    let mut text = String::with_capacity(16 * 1024);
    std::fs::File::open(path)?.read_to_string(&mut text)?;
    Ok(text)
}

/// The lines of a mountinfo text; the file system type follows the " - " separator.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let mut fields = pre.split(' ');
            let id = fields.next()?.parse().ok()?;
            let parent = fields.next()?.parse().ok()?;
            let mut fields = fields.skip(1);
            let (root, point) = (fields.next()?, fields.next()?);
            Some(Mount {
                id,
                parent,
                root: unescape(root),
                point: unescape(point),
                fstype: post.split(' ').next()?.to_string(),
            })
        })
        .collect()
}

/// A mountinfo path: spaces, tabs, newlines and backslashes are octal escapes.
fn unescape(field: &str) -> PathBuf {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let n = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(n);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_whose_name_has_spaces_and_parentheses() {
        let line = "42 (a (b) c) S 7 42 42 0 -1 4194368 1 2 3 4 5 6 7 8 20 0 1 0 9876 1 2";
        let st = parse_stat(line).unwrap();
        assert_eq!(
            st,
            Stat {
                state: 'S',
                ppid: 7,
                flags: 4194368,
                start_time: 9876
            }
        );
        assert_eq!(parse_stat("42 (x"), None);
    }

    #[test]
    fn mountinfo_paths_are_unescaped() {
        let text = "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n\
                    50 22 0:40 /sub /mnt/with\\040space rw - tmpfs tmpfs rw\n";
        let m = parse_mountinfo(text);
        assert_eq!(m[0].fstype, "cgroup2");
        assert_eq!(m[1].point, PathBuf::from("/mnt/with space"));
        assert_eq!(m[1].root, PathBuf::from("/sub"));
    }
}
