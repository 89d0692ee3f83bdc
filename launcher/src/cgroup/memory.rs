//! memory controller: `memory.max` is the limit in bytes; `memory.oom.group = 1` on a
//! container's leaf makes an OOM kill take the whole container, not one process of it.
//! OOM kills are counted by `oom_kill` in `memory.events` (`oom` counts events that
//! may not have killed anything).

use super::{read, write, CgroupError};
use std::path::Path;

pub const CONTROLLER: &str = "memory";

pub fn set_max(dir: &Path, bytes: u64) -> Result<(), CgroupError> {
    write(dir, "memory.max", &bytes.to_string())
}

pub fn set_oom_group(dir: &Path) -> Result<(), CgroupError> {
    write(dir, "memory.oom.group", "1")
}

/// `oom_kill` from memory.events; 0 when the controller is not enabled here.
pub fn oom_kills(dir: &Path) -> u64 {
    read(dir, "memory.events")
        .ok()
        .and_then(|e| {
            e.lines()
                .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The working set, as the kubelet and `kubectl top` count it: `memory.current`
/// less `inactive_file` of memory.stat (page cache the kernel may take back first).
/// None where the memory controller is not enabled.
pub fn working_set(dir: &Path) -> Option<u64> {
    let current: u64 = read(dir, "memory.current").ok()?.trim().parse().ok()?;
    let inactive: u64 = read(dir, "memory.stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("inactive_file ")?.trim().parse().ok())
        .unwrap_or(0);
    Some(current.saturating_sub(inactive))
}

/// The machine's memory in bytes (MemTotal of /proc/meminfo): what a container without
/// a memory limit may use.
pub fn machine_total() -> Option<u64> {
    crate::procfs::read("/proc/meminfo")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()
        .map(|kib| kib * 1024)
}
