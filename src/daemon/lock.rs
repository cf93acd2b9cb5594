//! One watch daemon per project: an exclusive lock on `.lamb/daemon.lock`, which also holds
//! the owner's pid so a second daemon can say who has it.
//!
//! A daemon killed (SIGKILL, OOM) while it was starting a build tool can leave the lock held
//! for a few milliseconds after it is gone: the tool, between `fork` and `exec`, shares the
//! lock's open file (see [`crate::state::Lock`]). A daemon started again at once, as a service
//! manager or a test does, waits that out instead of refusing to start.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::state::{Holder, Lock, StateError};

/// How long a start waits for a lock that only lingers (its recorded holder is gone).
const LINGER_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another `lamb sync --watch` (pid {pid}) is already watching {}; stop it first (or use `lamb trigger` to poke it)",
        project.display()
    )]
    Held { pid: u32, project: PathBuf },
    #[error(
        "{}: the daemon lock of {} is still held {} s after {}{}; stop {}, then start again",
        path.display(),
        project.display(),
        waited.as_secs(),
        recorded.map_or_else(|| "its holder let go".to_string(), |p| format!("the daemon that took it (pid {p}) exited")),
        if openers.is_empty() { String::new() } else { format!(": it is open in {}", list(openers)) },
        if openers.is_empty() { "whatever has it open (`fuser -v` on it names them)".to_string() } else { "them".to_string() }
    )]
    Lingering { path: PathBuf, project: PathBuf, recorded: Option<u32>, openers: Vec<(u32, String)>, waited: Duration },
    #[error(transparent)]
    State(#[from] StateError),
}

fn list(openers: &[(u32, String)]) -> String {
    openers.iter().map(|(pid, comm)| format!("pid {pid} ({comm})")).collect::<Vec<_>>().join(", ")
}

/// Held for the daemon's lifetime; released when dropped (or when the process dies).
pub struct DaemonLock {
    _lock: Lock,
}

impl DaemonLock {
    pub fn acquire(lamb_dir: &Path, project: &Path) -> Result<DaemonLock, LockError> {
        Self::acquire_within(lamb_dir, project, LINGER_WAIT)
    }

    /// Takes the lock, or refuses at once if a live daemon has it; a lock that only lingers
    /// is tried again for up to `wait`.
    fn acquire_within(lamb_dir: &Path, project: &Path, wait: Duration) -> Result<DaemonLock, LockError> {
        let path = lamb_dir.join("daemon.lock");
        let started = Instant::now();
        loop {
            match Lock::try_acquire(&path)? {
                Ok(lock) => return Ok(DaemonLock { _lock: lock }),
                Err(Holder::Process(pid)) => return Err(LockError::Held { pid, project: project.to_path_buf() }),
                Err(Holder::Lingering(recorded)) if started.elapsed() >= wait => {
                    return Err(LockError::Lingering {
                        openers: Lock::openers(&path),
                        path,
                        project: project.to_path_buf(),
                        recorded,
                        waited: wait,
                    });
                }
                Err(Holder::Lingering(recorded)) => {
                    tracing::debug!(?recorded, "the daemon lock lingers after its holder; trying again");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    #[test]
    fn a_second_daemon_is_told_who_holds_the_project() {
        let d = tempfile::tempdir().unwrap();
        let first = DaemonLock::acquire(d.path(), Path::new("/p")).unwrap();
        let err = DaemonLock::acquire(d.path(), Path::new("/p")).err().unwrap();
        // A live holder is reported at once, not waited for as a lingering lock would be.
        assert!(matches!(err, LockError::Held { pid, .. } if pid == std::process::id()), "{err}");
        assert!(err.to_string().contains(&format!("pid {}", std::process::id())), "{err}");
        assert!(err.to_string().contains("already watching /p"), "{err}");
        drop(first);
        assert!(DaemonLock::acquire(d.path(), Path::new("/p")).is_ok());
    }

    /// The pid of a process that has exited (and been reaped).
    fn gone_pid() -> u32 {
        let mut c = Command::new("true").spawn().unwrap();
        c.wait().unwrap();
        c.id()
    }

    /// The lock as a daemon killed mid-spawn leaves it: taken and naming `recorded`, and
    /// still held by a child (`sh -c script`) that shares the open file, until it exits.
    fn lingering(lamb_dir: &Path, recorded: u32, script: &str) -> std::process::Child {
        std::fs::create_dir_all(lamb_dir).unwrap();
        let path = lamb_dir.join("daemon.lock");
        let mut file =
            std::fs::File::options().create(true).truncate(false).read(true).write(true).open(&path).unwrap();
        file.lock().unwrap();
        write!(file, "{recorded}").unwrap();
        // The child's stdin is the same open file: it holds the lock as long as it runs.
        let child = Command::new("sh").args(["-c", script]).stdin(Stdio::from(file)).spawn().unwrap();
        match Lock::try_acquire(&path).unwrap() {
            Err(Holder::Lingering(Some(pid))) => assert_eq!(pid, recorded),
            Err(other) => panic!("the lock should linger, naming {recorded}: {other:?}"),
            Ok(_) => panic!("the child should still hold the lock"),
        }
        child
    }

    #[test]
    fn a_start_takes_over_a_lock_whose_recorded_pid_is_gone() {
        let d = tempfile::tempdir().unwrap();
        let mut child = lingering(d.path(), gone_pid(), "sleep 0.3");
        let lock = DaemonLock::acquire(d.path(), Path::new("/p")).expect("the start waits the lingering lock out");
        child.wait().unwrap();
        let recorded = std::fs::read_to_string(d.path().join("daemon.lock")).unwrap();
        assert_eq!(recorded, std::process::id().to_string(), "the new holder is on record");
        // And it is a real lock: a third start is refused, naming this process.
        let err = DaemonLock::acquire(d.path(), Path::new("/p")).err().unwrap();
        assert!(matches!(err, LockError::Held { pid, .. } if pid == std::process::id()), "{err}");
        drop(lock);
        assert_eq!(std::fs::read_to_string(d.path().join("daemon.lock")).unwrap(), "", "released: nobody on record");
    }

    #[test]
    fn a_lock_that_lingers_too_long_names_who_has_it_open() {
        let d = tempfile::tempdir().unwrap();
        let gone = gone_pid();
        let mut child = lingering(d.path(), gone, "exec sleep 30");
        let err = DaemonLock::acquire_within(d.path(), Path::new("/p"), Duration::from_millis(200)).err().unwrap();
        let _ = child.kill();
        let _ = child.wait();
        let text = err.to_string();
        assert!(matches!(err, LockError::Lingering { recorded: Some(p), .. } if p == gone), "{text}");
        assert!(text.contains(&format!("the daemon that took it (pid {gone}) exited")), "{text}");
        assert!(text.contains(&format!("pid {} (sleep)", child.id())), "{text}");
    }

    #[test]
    fn a_pid_reused_by_a_process_without_the_lock_is_not_its_holder() {
        // The recorded pid is alive but is not the one holding the file (pid reuse): the
        // lock lingers, it is not another daemon.
        let d = tempfile::tempdir().unwrap();
        let mut bystander = Command::new("sleep").arg("30").spawn().unwrap();
        let mut child = lingering(d.path(), bystander.id(), "sleep 0.2");
        assert!(DaemonLock::acquire(d.path(), Path::new("/p")).is_ok());
        let _ = child.wait();
        let _ = bystander.kill();
        let _ = bystander.wait();
    }
}
