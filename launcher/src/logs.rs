//! Container logs in the CRI format the kubelet reads:
//! `<RFC 3339 nano timestamp> <stdout|stderr> <P|F> <message>\n`. A line longer than
//! the buffer is cut into partial (`P`) records and ends with a full (`F`) one.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
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

pub struct LogFile {
    file: File,
}

impl LogFile {
    pub fn open(path: &Path) -> io::Result<LogFile> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        Ok(LogFile { file })
    }

    pub fn record(&mut self, stream: Stream, line: &[u8], full: bool) {
        let ts = humantime::format_rfc3339_nanos(SystemTime::now());
        let tag = if full { 'F' } else { 'P' };
        let mut rec = Vec::with_capacity(line.len() + 48);
        let _ = write!(rec, "{ts} {} {tag} ", stream.name());
        rec.extend_from_slice(line);
        rec.push(b'\n');
        // A full disk must not take the pod down; the record is lost.
        let _ = self.file.write_all(&rec);
    }
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
}
