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

/// One parsed record: (stream, full, message). Messages are bytes, as the
/// container wrote them.
pub fn parse(line: &[u8]) -> Option<(&[u8], bool, &[u8])> {
    let mut parts = line.splitn(4, |&b| b == b' ');
    let _ts = parts.next()?;
    let stream = parts.next()?;
    let full = match parts.next()? {
        b"F" => true,
        b"P" => false,
        _ => return None,
    };
    Some((stream, full, parts.next().unwrap_or_default()))
}

/// Copies the messages of every complete record in `reader` to `out`, joining
/// partial records; returns how many bytes of the file it consumed.
pub fn copy_messages(reader: &mut impl BufRead, out: &mut impl Write) -> io::Result<u64> {
    let mut used = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 || !line.ends_with(b"\n") {
            return Ok(used);
        }
        used += n as u64;
        if let Some((_, full, msg)) = parse(&line[..n - 1]) {
            out.write_all(msg)?;
            if full {
                out.write_all(b"\n")?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn messages_are_bytes() {
        let mut log = b"2026-01-01T00:00:00Z stdout F caf\xe9 \xff\n".to_vec();
        log.extend_from_slice(b"2026-01-01T00:00:01Z stdout F next\n");
        let mut out = Vec::new();
        copy_messages(&mut log.as_slice(), &mut out).unwrap();
        assert_eq!(out, b"caf\xe9 \xff\nnext\n");
    }
}
