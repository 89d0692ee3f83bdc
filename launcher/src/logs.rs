//! Container logs in the CRI format the kubelet reads:
//! `<RFC 3339 nano timestamp> <stdout|stderr> <P|F> <message>\n`. A line longer than
//! the buffer is cut into partial (`P`) records and ends with a full (`F`) one.
//!
//! On disk, as the kubelet lays them out under /var/log/pods, one directory per
//! container and one file per instance, named by its restart count; rotated by size
//! (the kubelet's containerLogMaxSize, 10Mi, and containerLogMaxFiles, 5, counting
//! the live file) into `N.log.<UTC time>`, uncompressed:
//!
//! ```text
//! <pod data dir>/logs/<container>/0.log                      the first instance
//! <pod data dir>/logs/<container>/1.log.20261201-074501.123456789   rotated
//! <pod data dir>/logs/<container>/1.log                      the one running now
//! ```
//!
//! Only the current and the previous instance are kept (`logs -p` reads the latter).

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

const MAX_LINE: usize = 16 * 1024;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Splits one stream's bytes into CRI records; keeps an unfinished line until its end.
#[derive(Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Feeds `data` and calls `emit(line, full)` for every record it completes.
    pub fn feed(&mut self, data: &[u8], mut emit: impl FnMut(&[u8], bool)) {
        self.pending.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = self.pending[start..].iter().position(|&b| b == b'\n') {
            emit(&self.pending[start..start + nl], true);
            start += nl + 1;
        }
        while self.pending.len() - start > MAX_LINE {
            emit(&self.pending[start..start + MAX_LINE], false);
            start += MAX_LINE;
        }
        self.pending.drain(..start);
    }

    /// At EOF, whatever is left is a last, full record.
    pub fn finish(&mut self, emit: impl FnOnce(&[u8], bool)) {
        if !self.pending.is_empty() {
            emit(&self.pending, true);
            self.pending.clear();
        }
    }
}

/// When a container's log is rotated, and how much of it is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rotation {
    /// Bytes of the live file at which it is rotated.
    pub max_size: u64,
    /// Files kept per instance, the live one included (>= 2).
    pub max_files: u32,
}

impl Default for Rotation {
    /// The kubelet's defaults.
    fn default() -> Rotation {
        Rotation {
            max_size: 10 << 20,
            max_files: 5,
        }
    }
}

/// A log file of a container's directory, by what its name says.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    instance: u32,
    /// None for the live file, which comes after the rotated ones.
    rotated: Option<String>,
}

impl Key {
    fn of(name: &str) -> Option<Key> {
        let (n, rest) = name.split_once(".log")?;
        let instance = n.parse().ok()?;
        let rotated = match rest {
            "" => None,
            r => Some(r.strip_prefix('.')?.to_string()),
        };
        Some(Key { instance, rotated })
    }

    fn sort_key(&self) -> (u32, bool, &str) {
        (
            self.instance,
            self.rotated.is_none(),
            self.rotated.as_deref().unwrap_or(""),
        )
    }
}

/// The log files of `dir`, oldest first: by instance, rotated ones before the live one.
fn listing(dir: &Path) -> Vec<(Key, PathBuf)> {
    let mut files: Vec<(Key, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((Key::of(e.file_name().to_str()?)?, e.path())))
        .collect();
    files.sort_by(|a, b| a.0.sort_key().cmp(&b.0.sort_key()));
    files
}

/// The instances that have logs in `dir`, oldest first.
pub fn instances(dir: &Path) -> Vec<u32> {
    let mut all: Vec<u32> = listing(dir).iter().map(|(k, _)| k.instance).collect();
    all.dedup();
    all
}

/// The log of one instance of a container, as the supervisor writes it.
pub struct LogFile {
    dir: PathBuf,
    instance: u32,
    file: File,
    size: u64,
    rotation: Rotation,
    /// Bytes written since the file was last checked to still be the live one.
    unchecked: u64,
    /// Records lost since the last one written (a full disk), and why.
    lost: u64,
}

/// How much is written between checks that the live file is still there.
const CHECK_EVERY: u64 = 1 << 20;

/// What [`LogFile::record`] has to report.
#[derive(Debug, PartialEq)]
pub enum Recorded {
    Written,
    /// The first record a failing disk lost: why (later ones are lost quietly until a
    /// record is written again).
    LostFirst(String),
    Lost,
}

impl LogFile {
    /// Opens the log of instance `instance` in `dir` (made if missing), and removes
    /// the logs of every instance before the previous one.
    pub fn open(dir: &Path, instance: u32, rotation: Rotation) -> io::Result<LogFile> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        for (key, path) in listing(dir) {
            if key.instance.saturating_add(1) < instance {
                let _ = std::fs::remove_file(path);
            }
        }
        let file = Self::create(dir, instance)?;
        let size = file.metadata()?.len();
        Ok(LogFile {
            dir: dir.to_path_buf(),
            instance,
            file,
            size,
            rotation,
            unchecked: 0,
            lost: 0,
        })
    }

    pub fn instance(&self) -> u32 {
        self.instance
    }

    fn create(dir: &Path, instance: u32) -> io::Result<File> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(dir.join(format!("{instance}.log")))
    }

    /// Appends one CRI record. A full disk must not take the pod down: the record is
    /// lost, and the first of a run of losses is reported.
    pub fn record(&mut self, stream: Stream, line: &[u8], full: bool) -> Recorded {
        let ts = humantime::format_rfc3339_nanos(SystemTime::now());
        let tag = if full { 'F' } else { 'P' };
        let mut rec = Vec::with_capacity(line.len() + 48);
        let _ = write!(rec, "{ts} {} {tag} ", stream.name());
        rec.extend_from_slice(line);
        rec.push(b'\n');
        let recorded = match self.file.write_all(&rec) {
            Ok(()) => {
                self.size += rec.len() as u64;
                self.unchecked += rec.len() as u64;
                self.lost = 0;
                Recorded::Written
            }
            Err(e) => {
                self.lost += 1;
                match self.lost {
                    1 => Recorded::LostFirst(crate::sys::strerror(&e)),
                    _ => Recorded::Lost,
                }
            }
        };
        if self.unchecked >= CHECK_EVERY {
            self.unchecked = 0;
            self.reopen_if_gone();
        }
        if self.size >= self.rotation.max_size {
            // A log that cannot be rotated keeps growing rather than losing lines;
            // one removed under it is started again.
            if self.rotate().is_err() {
                self.reopen_if_gone();
            }
        }
        recorded
    }

    /// Opens the live file again if the one written is no longer it (removed, or
    /// replaced), as the kubelet's ReopenContainerLog does after a rotation: writing
    /// on into a removed file would fill the disk with what nobody can read.
    fn reopen_if_gone(&mut self) {
        use std::os::unix::fs::MetadataExt;
        let live = self.dir.join(format!("{}.log", self.instance));
        let same = match (self.file.metadata(), std::fs::symlink_metadata(&live)) {
            (Ok(open), Ok(there)) => open.ino() == there.ino() && open.dev() == there.dev(),
            _ => false,
        };
        if same {
            return;
        }
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir);
        if let Ok(file) = Self::create(&self.dir, self.instance) {
            self.size = file.metadata().map_or(0, |m| m.len());
            self.file = file;
        }
    }

    /// Renames the live file to `N.log.<time>`, starts a new one, and keeps at most
    /// `max_files - 1` rotated files.
    fn rotate(&mut self) -> io::Result<()> {
        let live = self.dir.join(format!("{}.log", self.instance));
        let stamp = rotation_stamp(SystemTime::now());
        std::fs::rename(
            &live,
            self.dir.join(format!("{}.log.{stamp}", self.instance)),
        )?;
        self.file = Self::create(&self.dir, self.instance)?;
        self.size = 0;
        let rotated: Vec<PathBuf> = listing(&self.dir)
            .into_iter()
            .filter(|(k, _)| k.instance == self.instance && k.rotated.is_some())
            .map(|(_, p)| p)
            .collect();
        let keep = self.rotation.max_files.saturating_sub(1) as usize;
        for path in &rotated[..rotated.len().saturating_sub(keep)] {
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }
}

/// `20261201-074501.123456789` (UTC): the kubelet's rotation suffix, with the
/// nanoseconds that keep two rotations in one second apart.
fn rotation_stamp(t: SystemTime) -> String {
    // 2026-12-01T07:45:01.123456789Z
    let s = humantime::format_rfc3339_nanos(t).to_string();
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    format!("{}-{}.{}", &digits[..8], &digits[8..14], &digits[14..])
}

/// Reads a container's log across its files: those of one instance, or, following,
/// of that instance and every later one, through rotations. A file held open is read
/// to its end even after it was rotated away or removed.
pub struct Follower {
    dir: PathBuf,
    /// The first instance read, and whether later ones are read too.
    instance: u32,
    follow: bool,
    /// The file being read: its inode, name key, and handle.
    current: Option<(u64, Key, File)>,
    reader: Reader,
}

impl Follower {
    pub fn new(dir: &Path, instance: u32, follow: bool) -> Follower {
        Follower {
            dir: dir.to_path_buf(),
            instance,
            follow,
            current: None,
            reader: Reader::default(),
        }
    }

    /// Every complete line written since the last call.
    pub fn read(&mut self) -> io::Result<Vec<Line>> {
        let mut lines = Vec::new();
        loop {
            if let Some((_, _, file)) = &mut self.current {
                use std::io::Seek;
                file.seek(io::SeekFrom::Start(self.reader.pos))?;
                lines.extend(self.reader.read(&mut io::BufReader::new(&*file))?);
            }
            let Some((key, path)) = self.next_file() else {
                return Ok(lines);
            };
            let file = match File::open(&path) {
                Ok(f) => f,
                // Rotated or pruned between listing and opening: list again.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let ino = file.metadata()?.ino();
            self.current = Some((ino, key, file));
            self.reader.pos = 0;
        }
    }

    /// The file after the one being read, if there is one yet.
    fn next_file(&self) -> Option<(Key, PathBuf)> {
        let files: Vec<(Key, PathBuf)> = listing(&self.dir)
            .into_iter()
            .filter(|(k, _)| {
                k.instance == self.instance || (self.follow && k.instance > self.instance)
            })
            .collect();
        let Some((ino, key, _)) = &self.current else {
            return files.into_iter().next();
        };
        // Where the file being read is now (its name changes when it is rotated).
        let at = files
            .iter()
            .position(|(_, p)| std::fs::metadata(p).is_ok_and(|m| m.ino() == *ino));
        match at {
            Some(i) => files.into_iter().nth(i + 1),
            // Gone, pruned: files are pruned oldest first, so every file left of its
            // instance or a later one is newer.
            None => files.into_iter().find(|(k, _)| k.instance >= key.instance),
        }
    }
}

/// The end of instance `instance`'s log in `dir` as the kubelet reads it for a
/// termination message: its last `lines` lines (from the file's last 64 KiB), each
/// ending in a newline, and of those the last `max` bytes.
pub fn tail(dir: &Path, instance: u32, lines: usize, max: usize) -> Vec<u8> {
    use std::io::{Read, Seek};
    const WINDOW: u64 = 64 << 10;
    let Ok(mut file) = File::open(dir.join(format!("{instance}.log"))) else {
        return Vec::new();
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let start = len.saturating_sub(WINDOW);
    let mut raw = Vec::new();
    if file.seek(io::SeekFrom::Start(start)).is_err() || file.read_to_end(&mut raw).is_err() {
        return Vec::new();
    }
    // A record cut by the window is not one.
    let whole = match start {
        0 => &raw[..],
        _ => raw
            .iter()
            .position(|&b| b == b'\n')
            .map_or(&[][..], |i| &raw[i + 1..]),
    };
    let read = Reader::default().read(&mut io::BufReader::new(whole));
    let all = read.unwrap_or_default();
    let mut out = Vec::new();
    for line in &all[all.len().saturating_sub(lines)..] {
        out.extend_from_slice(&line.message);
        out.push(b'\n');
    }
    out.split_off(out.len().saturating_sub(max))
}

/// One record of the log. Messages are bytes, as the container wrote them.
pub struct Record<'a> {
    pub time: &'a [u8],
    /// The last (or only) record of its line.
    pub full: bool,
    pub message: &'a [u8],
}

pub fn parse(line: &[u8]) -> Option<Record<'_>> {
    let mut parts = line.splitn(4, |&b| b == b' ');
    let time = parts.next()?;
    let _stream = parts.next()?;
    let full = match parts.next()? {
        b"F" => true,
        b"P" => false,
        _ => return None,
    };
    Some(Record {
        time,
        full,
        message: parts.next().unwrap_or_default(),
    })
}

/// A line as the container wrote it, partial records joined, with the time of its
/// first record (RFC 3339, nanoseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub time: String,
    pub message: Vec<u8>,
}

/// Reads a CRI log from where the last call stopped: every line whose last record is
/// complete in the file. A line still being written (partial records, or a record
/// without its newline yet) is kept for the next call.
#[derive(Default)]
pub struct Reader {
    /// Bytes of the file consumed so far.
    pub pos: u64,
    pending: Option<Line>,
}

impl Reader {
    pub fn read(&mut self, reader: &mut impl BufRead) -> io::Result<Vec<Line>> {
        let mut lines = Vec::new();
        let mut raw = Vec::new();
        loop {
            raw.clear();
            let n = reader.read_until(b'\n', &mut raw)?;
            if n == 0 || !raw.ends_with(b"\n") {
                return Ok(lines);
            }
            self.pos += n as u64;
            let Some(rec) = parse(&raw[..n - 1]) else {
                continue;
            };
            let line = self.pending.get_or_insert_with(|| Line {
                time: String::from_utf8_lossy(rec.time).into_owned(),
                message: Vec::new(),
            });
            line.message.extend_from_slice(rec.message);
            if rec.full {
                lines.extend(self.pending.take());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Copies the messages of every complete line in `reader` to `out`; returns how many
    /// bytes of the file it consumed.
    fn copy_messages(reader: &mut impl BufRead, out: &mut impl Write) -> io::Result<u64> {
        let mut r = Reader::default();
        for line in r.read(reader)? {
            out.write_all(&line.message)?;
            out.write_all(b"\n")?;
        }
        Ok(r.pos)
    }

    #[test]
    fn splits_lines_and_long_partials() {
        let mut s = LineSplitter::default();
        let mut got: Vec<(String, bool)> = Vec::new();
        s.feed(b"one\ntw", |l, f| {
            got.push((String::from_utf8_lossy(l).into(), f))
        });
        s.feed(b"o\n", |l, f| {
            got.push((String::from_utf8_lossy(l).into(), f))
        });
        assert_eq!(got, [("one".to_string(), true), ("two".to_string(), true)]);
        got.clear();
        let long = vec![b'x'; MAX_LINE + 10];
        s.feed(&long, |l, f| got.push((l.len().to_string(), f)));
        s.finish(|l, f| got.push((l.len().to_string(), f)));
        assert_eq!(
            got,
            [(MAX_LINE.to_string(), false), ("10".to_string(), true)]
        );
    }

    #[test]
    fn parses_and_joins_records() {
        let text = "2026-01-01T00:00:00.000000001Z stdout P hel\n2026-01-01T00:00:00.000000002Z stdout F lo world\n2026-01-01T00:00:00.3Z stderr F oops\nhalf";
        let mut out = Vec::new();
        let used = copy_messages(&mut text.as_bytes(), &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "hello world\noops\n");
        assert_eq!(used as usize, text.len() - 4);
    }

    #[test]
    fn a_line_still_being_written_waits_for_the_next_read() {
        let mut r = Reader::default();
        let first = "2026-01-01T00:00:01Z stdout P hel\n2026-01-01T00:00:02Z stdout F l";
        let lines = r.read(&mut first.as_bytes()).unwrap();
        assert!(lines.is_empty());
        assert_eq!(r.pos, 34, "the unfinished record is read again");
        let rest = "2026-01-01T00:00:02Z stdout F lo\n2026-01-01T00:00:03Z stderr F x\n";
        let lines = r.read(&mut rest.as_bytes()).unwrap();
        assert_eq!(
            lines,
            [
                Line {
                    time: "2026-01-01T00:00:01Z".into(),
                    message: b"hello".to_vec()
                },
                Line {
                    time: "2026-01-01T00:00:03Z".into(),
                    message: b"x".to_vec()
                }
            ]
        );
    }

    #[test]
    fn messages_are_bytes() {
        let mut log = b"2026-01-01T00:00:00Z stdout F caf\xe9 \xff\n".to_vec();
        log.extend_from_slice(b"2026-01-01T00:00:01Z stdout F next\n");
        let mut out = Vec::new();
        copy_messages(&mut log.as_slice(), &mut out).unwrap();
        assert_eq!(out, b"caf\xe9 \xff\nnext\n");
    }

    fn temp_dir(tag: &str) -> crate::testing::TempDir {
        crate::testing::TempDir::new(&format!("logs-unit-{tag}"))
    }

    #[test]
    fn the_tail_is_the_last_lines_then_the_last_bytes_partial_records_joined() {
        let dir = temp_dir("tail");
        let mut log = LogFile::open(&dir, 2, Rotation::default()).unwrap();
        for i in 1..=100 {
            log.record(Stream::Stdout, format!("line {i}").as_bytes(), true);
        }
        log.record(Stream::Stderr, b"split ", false);
        log.record(Stream::Stderr, b"in two", true);
        let want: String = (22..=100).map(|i| format!("line {i}\n")).collect();
        assert_eq!(
            String::from_utf8(tail(&dir, 2, 80, 2048)).unwrap(),
            want + "split in two\n"
        );
        assert_eq!(tail(&dir, 2, 80, 9), b"t in two\n");
        assert!(tail(&dir, 3, 80, 2048).is_empty(), "no such instance");
    }

    #[test]
    fn rotation_names_sort_by_instance_then_time_then_live() {
        assert_eq!(
            rotation_stamp(humantime::parse_rfc3339("2026-12-01T07:45:01.000000123Z").unwrap()),
            "20261201-074501.000000123"
        );
        let mut keys: Vec<Key> = [
            "1.log",
            "0.log",
            "1.log.20261201-074502.1",
            "1.log.20261201-074501.9",
        ]
        .iter()
        .map(|n| Key::of(n).unwrap())
        .collect();
        keys.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        let names: Vec<String> = keys
            .iter()
            .map(|k| match &k.rotated {
                None => format!("{}.log", k.instance),
                Some(r) => format!("{}.log.{r}", k.instance),
            })
            .collect();
        assert_eq!(
            names,
            [
                "0.log",
                "1.log.20261201-074501.9",
                "1.log.20261201-074502.1",
                "1.log"
            ]
        );
        assert!(Key::of("x.log").is_none() && Key::of("1.txt").is_none());
    }

    #[test]
    fn a_follower_reads_on_across_rotations_and_instances() {
        let dir = temp_dir("follow");
        let small = Rotation {
            max_size: 200,
            max_files: 3,
        };
        let mut log = LogFile::open(&dir, 0, small).unwrap();
        let mut f = Follower::new(&dir, 0, true);
        let mut seen = Vec::new();
        for i in 0..40 {
            log.record(Stream::Stdout, format!("line {i}").as_bytes(), true);
            if i % 3 == 0 {
                seen.extend(f.read().unwrap());
            }
        }
        seen.extend(f.read().unwrap());
        let files = listing(&dir);
        assert!(files.len() <= 3, "{files:?}");
        let numbers: Vec<u32> = seen
            .iter()
            .map(|l| String::from_utf8_lossy(&l.message)[5..].parse().unwrap())
            .collect();
        assert_eq!(
            numbers,
            (0..40).collect::<Vec<_>>(),
            "every line once, in order"
        );
        // The next instance: followed into; the one before the previous is removed.
        let mut next = LogFile::open(&dir, 1, small).unwrap();
        next.record(Stream::Stderr, b"second", true);
        assert_eq!(f.read().unwrap()[0].message, b"second");
        drop(LogFile::open(&dir, 2, small).unwrap());
        assert_eq!(instances(&dir), [1, 2]);
        // Not following: one instance only.
        let mut one = Follower::new(&dir, 1, false);
        assert_eq!(one.read().unwrap().len(), 1);
    }

    #[test]
    fn a_log_removed_under_the_writer_is_started_again() {
        let dir = temp_dir("removed");
        let rotation = Rotation::default();
        let mut log = LogFile::open(&dir, 0, rotation).unwrap();
        let line = vec![b'x'; 1000];
        assert_eq!(log.record(Stream::Stdout, &line, true), Recorded::Written);
        std::fs::remove_dir_all(&dir).unwrap();
        // Within a megabyte more, the writer notices and starts a new live file.
        for _ in 0..1100 {
            log.record(Stream::Stdout, &line, true);
        }
        let live = dir.join("0.log");
        let size = std::fs::metadata(&live).unwrap().len();
        assert!(size > 0 && size < 1 << 20, "{size}");
    }

    #[test]
    fn a_full_disk_loses_records_and_says_so_once() {
        let dir = temp_dir("full");
        let mut log = LogFile::open(&dir, 0, Rotation::default()).unwrap();
        // /dev/full fails every write with ENOSPC, as a full data root does.
        log.file = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        assert_eq!(
            log.record(Stream::Stdout, b"a", true),
            Recorded::LostFirst("No space left on device".into())
        );
        assert_eq!(log.record(Stream::Stdout, b"b", true), Recorded::Lost);
        log.file = LogFile::create(&dir, 0).unwrap();
        assert_eq!(log.record(Stream::Stdout, b"c", true), Recorded::Written);
    }
}
