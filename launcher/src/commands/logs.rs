//! `launcher logs NAME [-c C] [-f]`: a container's output from its CRI log.

use super::{handle::supervisor_alive, ClosedStdout, Opts, PodHandle};
use crate::cli;
use anyhow::{Context, Result};
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom, Write};
use std::time::Duration;

pub fn logs(opts: &Opts, args: &cli::Logs) -> Result<i32> {
    let pod = PodHandle::new(opts, &args.name)?;
    let rec = pod.record()?;
    let container = rec
        .spec
        .container(args.container.as_deref())
        .with_context(|| {
            let name = args.container.as_deref().unwrap_or("");
            format!("pod {:?} has no container {name:?}", args.name)
        })?;
    let path = pod.log_path(&container.name);
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("failed to open {}", path.display())),
    };
    let stdout = std::io::stdout();
    let mut pos = 0u64;
    let closed = |e: std::io::Error| -> anyhow::Error {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            ClosedStdout.into()
        } else {
            anyhow::Error::from(e).context("failed to write the log")
        }
    };
    loop {
        // Follow while this pod's supervisor runs (not a pod made since under the same
        // name, whose log is another file); then one last read.
        let live = args.follow
            && pod
                .record()
                .is_ok_and(|r| r.uid == rec.uid && supervisor_alive(&r));
        file.seek(SeekFrom::Start(pos))?;
        let mut out = stdout.lock();
        pos += crate::logs::copy_messages(&mut BufReader::new(&file), &mut out).map_err(closed)?;
        out.flush().map_err(closed)?;
        drop(out);
        if !live {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
