//! State on disk under `.lamb/`: written atomically (temp file, fsync, rename) so a crash or a
//! kill at any moment leaves either the old file or the new one, never a torn one; and guarded by
//! a lock file so two lamb processes never build into the same directory at once.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{}: cannot write state: {source}; check free disk space and permissions", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("{}: cannot read state: {source}; check its permissions", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}: cannot lock: {source}", path.display())]
    Lock { path: PathBuf, source: io::Error },
    #[error(
        "{what} is still busy with another lamb{} after {} min; wait for it to finish, or stop it{}",
        holder.map(|p| format!(" (pid {p})")).unwrap_or_default(),
        waited.as_secs() / 60,
        holder.map(|p| format!(" (`kill {p}`)")).unwrap_or_default()
    )]
    Busy { what: String, holder: Option<u32>, waited: std::time::Duration },
}

/// Writes `bytes` to `path` atomically, owner-only (state can name accounts and buckets).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let err = |source| StateError::Write { path: path.to_path_buf(), source };
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir).map_err(err)?;
    let mut tmp = tempfile::Builder::new().prefix(".state-").suffix(".tmp").tempfile_in(dir).map_err(err)?;
    tmp.write_all(bytes).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    // The rename is durable only once the directory entry is.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Serialises `value` as pretty JSON and writes it atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StateError> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| StateError::Write { path: path.to_path_buf(), source: io::Error::other(e) })?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Reads JSON state. A missing file is `Ok(None)`; a file that no longer parses (written by
/// another lamb version, say) is treated as missing, since state is a cache of facts lamb can
/// always recompute.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, StateError> {
    match fs::read(path) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "ignoring unreadable state file; it will be rewritten");
                Ok(None)
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateError::Read { path: path.to_path_buf(), source }),
    }
}

/// Creates `dir` (and parents) with mode 0700 for the last component.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// An exclusive advisory lock on a file, released when dropped.
///
/// The lock is a `flock` on an open file description, so every process sharing that
/// description holds it: not only the process that took it but, for the moment between `fork`
/// and `exec`, a child it was starting (the file is close-on-exec, so the child lets go when it
/// execs). A holder killed in that moment leaves its child holding the lock for a few
/// milliseconds more, with the dead holder's pid still in the file; [`Holder`] tells the two
/// apart.
pub struct Lock {
    file: File,
}

/// Who has a lock that could not be taken, as far as its file and `/proc` say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// The process the file names: it is alive and has the file open.
    Process(u32),
    /// Nobody the file names: the file is empty (the lock is being taken or released this
    /// instant), or it names a process that has exited or no longer has the file open (a
    /// holder killed while a child it was starting still shared the lock). Such a lock is
    /// free again moments later.
    Lingering(Option<u32>),
}

impl Holder {
    /// The pid to show: only a process that really holds the lock.
    pub fn pid(self) -> Option<u32> {
        match self {
            Holder::Process(pid) => Some(pid),
            Holder::Lingering(_) => None,
        }
    }
}

impl Lock {
    /// Takes the lock, waiting for another holder if needed; `on_wait` is called once if so.
    pub fn acquire(path: &Path, on_wait: impl FnOnce()) -> Result<Lock, StateError> {
        let err = |source| StateError::Lock { path: path.to_path_buf(), source };
        let file = Self::open(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                on_wait();
                file.lock().map_err(err)?;
            }
            Err(fs::TryLockError::Error(e)) => return Err(err(e)),
        }
        Ok(Self::held(file))
    }

    /// Takes the lock if it is free; otherwise says who holds it.
    pub fn try_acquire(path: &Path) -> Result<Result<Lock, Holder>, StateError> {
        let file = Self::open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Ok(Self::held(file))),
            Err(fs::TryLockError::WouldBlock) => {
                let recorded = fs::read_to_string(path).ok().and_then(|s| s.trim().parse::<u32>().ok());
                Ok(Err(match recorded {
                    Some(pid) if has_open(pid, &file) => Holder::Process(pid),
                    other => Holder::Lingering(other),
                }))
            }
            Err(fs::TryLockError::Error(e)) => Err(StateError::Lock { path: path.to_path_buf(), source: e }),
        }
    }

    /// Processes that have the lock file at `path` open, with their command names (from
    /// `/proc`; empty where there is none): what to name when a lock lingers.
    pub fn openers(path: &Path) -> Vec<(u32, String)> {
        let Ok(file) = File::open(path) else { return Vec::new() };
        let me = std::process::id();
        let mut out: Vec<(u32, String)> = fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| *pid != me && has_open(*pid, &file))
            .map(|pid| {
                let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                (pid, comm.trim().to_string())
            })
            .collect();
        out.sort();
        out
    }

    fn open(path: &Path) -> Result<File, StateError> {
        use std::os::unix::fs::OpenOptionsExt;
        let err = |source| StateError::Lock { path: path.to_path_buf(), source };
        if let Some(dir) = path.parent() {
            create_private_dir(dir).map_err(err)?;
        }
        File::options().create(true).truncate(false).read(true).write(true).mode(0o600).open(path).map_err(err)
    }

    /// The lock is ours: the file says who holds it, for those who wait.
    fn held(mut file: File) -> Lock {
        let _ = file.set_len(0).and_then(|()| file.write_all(std::process::id().to_string().as_bytes()));
        Lock { file }
    }
}

/// Whether process `pid` is alive and has `file` open (any descriptor to the same inode).
/// Where `/proc` cannot tell (another user's process, no `/proc`), a live process counts.
fn has_open(pid: u32, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(pid_t) = libc::pid_t::try_from(pid) else { return false };
    if pid_t <= 0 {
        return false;
    }
    // SAFETY: signal 0 sends nothing; it only asks whether the process exists.
    let alive = unsafe { libc::kill(pid_t, 0) } == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    if !alive {
        return false;
    }
    let (Ok(me), Ok(fds)) = (file.metadata(), fs::read_dir(format!("/proc/{pid}/fd"))) else { return true };
    // A zombie lists no descriptors: its files are closed, the lock is not its any more.
    fds.flatten().any(|fd| fs::metadata(fd.path()).is_ok_and(|m| m.dev() == me.dev() && m.ino() == me.ino()))
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Nobody holds it any more: a later waiter must not name this process. (Cleared before
        // the unlock: a waiter that finds the file empty and the lock still held retries.)
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state/x.json");
        write_json(&p, &serde_json::json!({"a": 1})).unwrap();
        write_json(&p, &serde_json::json!({"a": 2})).unwrap();
        let v: serde_json::Value = read_json(&p).unwrap().unwrap();
        assert_eq!(v["a"], 2);
        let names: Vec<String> = fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["x.json"]);
        assert_eq!(fs::metadata(p.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn missing_or_corrupt_state_reads_as_none() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.json");
        assert!(read_json::<serde_json::Value>(&p).unwrap().is_none());
        fs::write(&p, "{ torn").unwrap();
        assert!(read_json::<serde_json::Value>(&p).unwrap().is_none());
    }

    #[tokio::test]
    async fn a_stack_lock_held_too_long_names_its_holder_and_gives_up() {
        let d = tempfile::tempdir().unwrap();
        let first = StackState::lock(d.path(), "app", "eu-west-1").await.unwrap();
        let started = std::time::Instant::now();
        let err = StackState::lock_within(d.path(), "app", "eu-west-1", std::time::Duration::from_millis(300))
            .await
            .err()
            .expect("the second lock must not be taken while the first is held");
        assert!(started.elapsed() >= std::time::Duration::from_millis(300));
        let me = std::process::id();
        assert!(matches!(err, StateError::Busy { holder: Some(p), .. } if p == me), "{err}");
        assert!(err.to_string().contains(&format!("stack app is still busy with another lamb (pid {me})")), "{err}");
        assert!(err.to_string().contains(&format!("`kill {me}`")), "{err}");
        // Released: the next taker gets it at once.
        drop(first);
        StackState::lock_within(d.path(), "app", "eu-west-1", std::time::Duration::ZERO).await.unwrap();
    }

    #[test]
    fn second_lock_waits_for_the_first() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("build.lock");
        let first = Lock::acquire(&p, || panic!("the first lock must not wait")).unwrap();
        let waiting = std::sync::Arc::new(AtomicBool::new(false));
        let acquired = std::sync::Arc::new(AtomicBool::new(false));
        let (w, a, p2) = (waiting.clone(), acquired.clone(), p.clone());
        let t = std::thread::spawn(move || {
            let _second = Lock::acquire(&p2, || w.store(true, Ordering::SeqCst)).unwrap();
            a.store(true, Ordering::SeqCst);
        });
        // The second taker reports that it waits, and does not get the lock while we hold it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !waiting.load(Ordering::SeqCst) {
            assert!(std::time::Instant::now() < deadline, "the second lock never reported waiting");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!acquired.load(Ordering::SeqCst));
        drop(first);
        t.join().unwrap();
        assert!(acquired.load(Ordering::SeqCst));
    }
}

/// What the last builds produced, per resource (`.lamb/build.json`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BuildState {
    pub version: u32,
    pub resources: std::collections::BTreeMap<String, BuildRecord>,
}

/// The last successful build of one resource.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BuildRecord {
    pub key: String,
    pub method: String,
    pub artifact: PathBuf,
    pub code_sha256: String,
    pub size: u64,
    pub unzipped_size: u64,
    /// Dependency cache entry the artifact includes, if any.
    pub deps: Option<String>,
    /// Seconds since the Unix epoch.
    pub built_at: u64,
    pub duration_ms: u64,
}

impl BuildState {
    pub const VERSION: u32 = 1;

    pub fn load(path: &Path) -> Result<BuildState, StateError> {
        Ok(read_json::<BuildState>(path)?
            .filter(|s| s.version == Self::VERSION)
            .unwrap_or(BuildState { version: Self::VERSION, resources: Default::default() }))
    }
}

/// What lamb last did to one stack (`.lamb/stacks/<stack>.json`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StackState {
    pub version: u32,
    pub stack_name: String,
    pub region: String,
    /// The AWS account the stack lives in (from its ARN): state of a same-named stack in another
    /// account is not this stack's.
    #[serde(default)]
    pub account: Option<String>,
    /// The infrastructure as last deployed (or found unchanged) by lamb.
    pub infra: Option<InfraRecord>,
    /// The user agreed that `lamb sync` may update code outside CloudFormation.
    pub sync_confirmed: bool,
    /// The artifact bucket used for this stack.
    pub bucket: Option<String>,
    pub functions: std::collections::BTreeMap<String, FunctionRecord>,
    pub layers: std::collections::BTreeMap<String, LayerRecord>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InfraRecord {
    /// [`crate::infra::fingerprint`] of the project when it was deployed.
    pub fingerprint: String,
    /// The stack's last-updated time then: if it moved, someone else deployed.
    pub stack_updated: String,
    /// Seconds since the Unix epoch.
    pub deployed_at: u64,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FunctionRecord {
    pub physical: String,
    pub code_sha256: String,
    /// `deploy` or `sync`.
    pub via: String,
    pub synced_at: u64,
    pub duration_ms: u64,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerRecord {
    pub version_arn: String,
    pub code_sha256: String,
    pub published_at: u64,
}

impl StackState {
    pub const VERSION: u32 = 1;

    /// Where a stack's state lives in `lamb_dir`.
    pub fn path(lamb_dir: &Path, stack: &str, region: &str) -> PathBuf {
        lamb_dir.join("stacks").join(format!("{region}--{stack}.json"))
    }

    pub fn load(lamb_dir: &Path, stack: &str, region: &str) -> Result<StackState, StateError> {
        let fresh = StackState {
            version: Self::VERSION,
            stack_name: stack.to_string(),
            region: region.to_string(),
            ..Default::default()
        };
        Ok(read_json::<StackState>(&Self::path(lamb_dir, stack, region))?
            .filter(|s| s.version == Self::VERSION)
            .unwrap_or(fresh))
    }

    pub fn save(&self, lamb_dir: &Path) -> Result<(), StateError> {
        write_json(&Self::path(lamb_dir, &self.stack_name, &self.region), self)
    }

    /// Takes the stack's lock, waiting (up to [`STACK_LOCK_WAIT`]) for another lamb deploying
    /// or syncing it: the watch daemon in the middle of a deploy, say.
    pub async fn lock(lamb_dir: &Path, stack: &str, region: &str) -> Result<Lock, StateError> {
        Self::lock_within(lamb_dir, stack, region, STACK_LOCK_WAIT).await
    }

    pub async fn lock_within(
        lamb_dir: &Path,
        stack: &str,
        region: &str,
        limit: std::time::Duration,
    ) -> Result<Lock, StateError> {
        let path = lamb_dir.join("stacks").join(format!("{region}--{stack}.lock"));
        let started = tokio::time::Instant::now();
        let mut told = false;
        loop {
            let holder = match Lock::try_acquire(&path)? {
                Ok(lock) => return Ok(lock),
                Err(holder) => holder.pid(),
            };
            if !told {
                told = true;
                let pid = holder.map(|p| p.to_string()).unwrap_or_else(|| "?".into());
                tracing::warn!(stack, pid, "waiting for another lamb deploying or syncing this stack");
            }
            if started.elapsed() >= limit {
                return Err(StateError::Busy { what: format!("stack {stack}"), holder, waited: limit });
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Forgets everything recorded for another account's stack of the same name.
    pub fn for_account(self, account: Option<&str>) -> StackState {
        match (&self.account, account) {
            (Some(mine), Some(now)) if mine != now => {
                tracing::warn!(stack = %self.stack_name, recorded = %mine, now = %now, "the stack belongs to another AWS account now; lamb's record of it is discarded");
                StackState {
                    version: Self::VERSION,
                    stack_name: self.stack_name,
                    region: self.region,
                    account: Some(now.to_string()),
                    ..Default::default()
                }
            }
            (_, Some(now)) => StackState { account: Some(now.to_string()), ..self },
            _ => self,
        }
    }
}

/// How long a command waits for another lamb working on the same stack: longer than most
/// CloudFormation deploys take.
pub const STACK_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(20 * 60);

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
