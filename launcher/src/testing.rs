//! What the unit tests share.

use std::path::{Path, PathBuf};

/// A directory of a test's own under the system's temporary directory, empty at first
/// and removed when dropped, so that a failing test leaves nothing behind either.
pub struct TempDir(PathBuf);

impl TempDir {
    /// `<tmp>/<tag>-<pid>`, emptied.
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
