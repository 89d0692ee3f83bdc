//! pids controller: `pids.max` caps the number of tasks in the subtree, so a fork bomb
//! inside a pod fails with EAGAIN instead of exhausting the machine.

use super::{write, CgroupError};
use std::path::Path;

pub const CONTROLLER: &str = "pids";

pub fn set_max(dir: &Path, max: u64) -> Result<(), CgroupError> {
    write(dir, "pids.max", &max.to_string())
}
