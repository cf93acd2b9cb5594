//! One watch daemon per project: an exclusive lock on `.lamb/daemon.lock`, which also holds
//! the owner's pid so a second daemon can say who has it.

use std::path::{Path, PathBuf};

use crate::state::{Lock, StateError};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another `lamb sync --watch` (pid {pid}) is already watching {}; stop it first (or use `lamb trigger` to poke it)",
        project.display()
    )]
    Held { pid: String, project: PathBuf },
    #[error(transparent)]
    State(#[from] StateError),
}

/// Held for the daemon's lifetime; released when dropped (or when the process dies).
pub struct DaemonLock {
    _lock: Lock,
}

impl DaemonLock {
    pub fn acquire(lamb_dir: &Path, project: &Path) -> Result<DaemonLock, LockError> {
        match Lock::try_acquire(&lamb_dir.join("daemon.lock"))? {
            Ok(lock) => Ok(DaemonLock { _lock: lock }),
            Err(holder) => Err(LockError::Held {
                pid: holder.map_or_else(|| "unknown".into(), |p| p.to_string()),
                project: project.to_path_buf(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_daemon_is_told_who_holds_the_project() {
        let d = tempfile::tempdir().unwrap();
        let first = DaemonLock::acquire(d.path(), Path::new("/p")).unwrap();
        let err = DaemonLock::acquire(d.path(), Path::new("/p")).err().unwrap();
        assert!(err.to_string().contains(&format!("pid {}", std::process::id())), "{err}");
        assert!(err.to_string().contains("already watching /p"), "{err}");
        drop(first);
        assert!(DaemonLock::acquire(d.path(), Path::new("/p")).is_ok());
    }
}
