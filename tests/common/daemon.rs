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
