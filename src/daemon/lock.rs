//! One watch daemon per project: an exclusive lock on `.lamb/daemon.lock`, which also holds
//! the owner's pid so a second daemon can say who has it.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another `lamb sync --watch` (pid {pid}) is already watching {}; stop it first (or use `lamb trigger` to poke it)",
        project.display()
    )]
    Held { pid: String, project: PathBuf },
    #[error("{}: cannot take the daemon lock: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// Held for the daemon's lifetime; released when dropped (or when the process dies).
pub struct DaemonLock {
    file: File,
    path: PathBuf,
}

impl DaemonLock {
    pub fn acquire(lamb_dir: &Path, project: &Path) -> Result<DaemonLock, LockError> {
        let path = lamb_dir.join("daemon.lock");
        let io = |source| LockError::Io { path: path.clone(), source };
        crate::state::create_private_dir(lamb_dir).map_err(io)?;
        let mut file = {
            use std::os::unix::fs::OpenOptionsExt;
            File::options().create(true).truncate(false).read(true).write(true).mode(0o600).open(&path).map_err(io)?
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(LockError::Held {
                    pid: if pid.is_empty() { "unknown".into() } else { pid.to_string() },
                    project: project.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(DaemonLock { file, path })
    }
}

impl Drop for DaemonLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
        tracing::debug!(path = %self.path.display(), "released the daemon lock");
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
