//! A `lamb local start-api` or `start-lambda` under test: started on a free port, its log
//! captured, stopped (and checked to leave no function process behind) at the end.
#![allow(dead_code)]

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::daemon::wait_until;
use super::{Project, lamb_bin};

pub struct Server {
    pub child: Child,
    log: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Runs `lamb local <args> --port 0` in `p` and waits until it says where it listens.
    pub fn start(p: &Project, args: &[&str], env: &[(&str, String)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let mut cmd = Command::new(lamb_bin());
        cmd.arg("local").args(args).args(["--port", "0"]).current_dir(p.path());
        cmd.env_remove("LAMB_LOG").env_remove("AWS_PROFILE").env("NO_COLOR", "1");
        cmd.env("AWS_CONFIG_FILE", "/dev/null").env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null()).stdout(fs::File::create(dir.path().join("out")).unwrap());
        cmd.stderr(fs::File::create(&log).unwrap());
        let mut child = cmd.spawn().unwrap();
        let mut url = String::new();
        wait_until("the server to listen", Duration::from_secs(120), || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("lamb local exited ({status}): {}", fs::read_to_string(&log).unwrap_or_default());
            }
            let text = fs::read_to_string(&log).unwrap_or_default();
            // Whole lines only: a line may be read half written.
            let text = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
            match text.split("http://").nth(1) {
                Some(rest) => {
                    let addr: String =
                        rest.chars().take_while(|c| !c.is_whitespace() && !matches!(c, ';' | '/' | ')')).collect();
                    url = format!("http://{addr}");
                    true
                }
                None => false,
            }
        });
        Server { child, log, url, _dir: dir }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log has `text` `count` times.
    pub fn wait_for_log(&self, text: &str, count: usize) {
        wait_until(&format!("{count} × `{text}` in the server log"), Duration::from_secs(60), || {
            self.log().matches(text).count() >= count
        });
    }

    /// SIGINT, as Ctrl-C does; returns the exit code.
    pub fn interrupt(mut self) -> Option<i32> {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait().unwrap();
        status.code()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether process `pid` still runs (a zombie does not count).
pub fn running(pid: &str) -> bool {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| s.lines().any(|l| l.starts_with("State:") && !l.contains("zombie")))
        .unwrap_or(false)
}
