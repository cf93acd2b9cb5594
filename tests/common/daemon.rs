//! A `lamb sync --watch` under test: started with its output captured and a systemd notify
//! socket to wait on.
#![allow(dead_code)]

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Project, Run, lamb_bin};

/// A running `lamb sync --watch` with its output captured and a notify socket listening.
pub struct Daemon {
    pub child: Child,
    out: PathBuf,
    err: PathBuf,
    notify: UnixDatagram,
    pub runtime_dir: tempfile::TempDir,
    project: PathBuf,
    _logs: tempfile::TempDir,
}

impl Daemon {
    pub fn start(
        p: &Project,
        aws: &[(&'static str, String)],
        stack: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let mut d = Daemon::spawn(p, aws, stack, extra, env);
        d.expect_notify("READY=1", Duration::from_secs(90));
        d
    }

    /// Starts a daemon without waiting for its initial pass.
    pub fn spawn(
        p: &Project,
        aws: &[(&'static str, String)],
        stack: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let logs = tempfile::tempdir().unwrap();
        let runtime_dir = tempfile::tempdir().unwrap();
        let notify_path = logs.path().join("notify");
        let notify = UnixDatagram::bind(&notify_path).unwrap();
        notify.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let (out, err) = (logs.path().join("out"), logs.path().join("err"));
        let mut cmd = Command::new(lamb_bin());
        cmd.args(["sync", "--watch", "--yes", "--stack-name", stack])
            .args(extra)
            .current_dir(p.path())
            .env("NO_COLOR", "1")
            .env("XDG_RUNTIME_DIR", runtime_dir.path())
            .env("NOTIFY_SOCKET", &notify_path)
            .env_remove("LAMB_LOG")
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap());
        for (k, v) in aws {
            cmd.env(k, v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        Daemon { child, out, err, notify, runtime_dir, project: p.path().to_path_buf(), _logs: logs }
    }

    pub fn output(&self) -> String {
        format!(
            "{}{}",
            fs::read_to_string(&self.out).unwrap_or_default(),
            fs::read_to_string(&self.err).unwrap_or_default()
        )
    }

    /// Waits for a notify message starting with `prefix`; returns it.
    pub fn expect_notify(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        loop {
            if let Ok(n) = self.notify.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                if msg.starts_with(prefix) {
                    return msg;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the daemon exited ({status}) before {prefix}: {}{}",
                    self.output(),
                    lock_holders(&self.project)
                );
            }
            assert!(Instant::now() < deadline, "no {prefix} within {timeout:?}: {}", self.output());
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(self.pid(), sig) };
    }

    pub fn lamb(&self, p: &Project, args: &[&str]) -> Run {
        let rd = self.runtime_dir.path().display().to_string();
        p.lamb_env(args, &[("XDG_RUNTIME_DIR", rd)])
    }

    /// What `lamb status -o json` says: the daemon's own document while it answers (with
    /// `daemon.passes`, `daemon.running`, `daemon.infra_pending` and each function's `pending`).
    pub fn status(&self) -> serde_json::Value {
        let out = Command::new(lamb_bin())
            .args(["status", "-o", "json"])
            .current_dir(&self.project)
            .env("NO_COLOR", "1")
            .env("XDG_RUNTIME_DIR", self.runtime_dir.path())
            .env_remove("LAMB_LOG")
            .output()
            .unwrap();
        let run = Run::from(out);
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("lamb status: {e}: {}", run.all()))
    }

    /// Waits until more than `after` passes have finished and the daemon is idle: no pass
    /// running and nothing waiting for its quiet window or a retry (no function pending, no
    /// infrastructure change pending). Every change made before the pass that moved the count
    /// past `after` started has then been dealt with. Returns the count.
    pub fn wait_idle_after(&self, after: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.status();
            if let Some(passes) = v["daemon"]["passes"].as_u64()
                && passes > after
                && idle(&v)
            {
                return passes;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon was not idle after pass {after} within {timeout:?}: {v}\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the daemon is idle (see [`wait_idle_after`](Self::wait_idle_after)) and
    /// returns its count of finished passes.
    pub fn wait_idle(&self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.status();
            if idle(&v)
                && let Some(n) = v["daemon"]["passes"].as_u64()
            {
                return n;
            }
            assert!(Instant::now() < deadline, "the daemon was not idle within {timeout:?}: {v}\n{}", self.output());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The watched paths the daemon's event loop mapped to a function, layer or the
    /// infrastructure, in the order it took them in: its `change` trace lines, logged when it
    /// runs with [`EVENT_LOG`].
    pub fn changes(&self) -> Vec<String> {
        self.output()
            .lines()
            .filter(|l| l.contains(" change ") || l.contains(" change:"))
            .filter_map(|l| {
                l.split_once("path=").map(|(_, rest)| rest.split(' ').next().unwrap_or_default().to_string())
            })
            .collect()
    }

    /// Waits until the event loop has taken in a change to `path` (see [`changes`](Self::changes)):
    /// every file event queued before that one has then been taken in too (one inotify queue,
    /// read in order into one channel).
    pub fn wait_change(&self, path: &std::path::Path, timeout: Duration) {
        // The daemon names paths under the project's canonical root.
        let dir = path.parent().and_then(|d| d.canonicalize().ok()).unwrap_or_default();
        let want = dir.join(path.file_name().unwrap_or_default()).display().to_string();
        wait_until(&format!("the daemon to take in a change to {want}"), timeout, || self.changes().contains(&want));
    }

    /// Waits until a process below the daemon (a build tool it started, or that tool's
    /// child) runs a command line starting with `argv`; returns its pid.
    pub fn wait_child(&self, argv: &[&str], timeout: Duration) -> u32 {
        let want: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
        let mut found = 0;
        wait_until(&format!("the daemon to run {argv:?}"), timeout, || {
            found = super::descendants(self.child.id())
                .into_iter()
                .find(|c| fs::read(format!("/proc/{c}/cmdline")).is_ok_and(|cmd| cmd.starts_with(&want)))
                .unwrap_or(0);
            found != 0
        });
        found
    }
}

/// `LAMB_LOG` for a daemon under test whose event loop logs every watched path it maps to a
/// target (a `change` line at trace level): [`Daemon::changes`] reads them.
pub const EVENT_LOG: (&str, &str) = ("LAMB_LOG", "info,lamb::daemon=trace");

/// Idle: no pass running, nothing pending (a quiet window or a retry's backoff).
fn idle(status: &serde_json::Value) -> bool {
    let d = &status["daemon"];
    d["running"] == false
        && d["infra_pending"] == false
        && status["functions"].as_array().is_some_and(|fs| fs.iter().all(|f| f["pending"] == false))
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Which processes have the project's daemon lock file open, for a failure message: a
/// second daemon refused by a lock nobody should hold any more needs this to be explained.
fn lock_holders(project: &std::path::Path) -> String {
    let lock = project.join(".lamb/daemon.lock").canonicalize().unwrap_or_default();
    let mut out = String::new();
    for proc_dir in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(fds) = fs::read_dir(proc_dir.path().join("fd")) else { continue };
        if fds.flatten().any(|fd| fs::read_link(fd.path()).is_ok_and(|t| t == lock)) {
            let cmd = fs::read_to_string(proc_dir.path().join("cmdline")).unwrap_or_default().replace('\0', " ");
            let state = fs::read_to_string(proc_dir.path().join("status"))
                .unwrap_or_default()
                .lines()
                .find(|l| l.starts_with("State:"))
                .unwrap_or_default()
                .to_string();
            out.push_str(&format!(
                "\n  lock held open by pid {}: {cmd} ({state})",
                proc_dir.file_name().to_string_lossy()
            ));
        }
    }
    out
}

pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
