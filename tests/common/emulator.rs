//! The AWS emulator for integration tests: moto server with lamb's patches
//! (tests/emulator/lamb_emulator.py), started once per test binary on a free port on
//! 127.0.0.1 and stopped when the test binary exits (it watches its stdin).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::repo_root;

pub struct Emulator {
    pub port: u16,
    pub endpoint: String,
    _child: Mutex<Child>,
}

/// The venv's python, created (or reused) by tests/emulator/setup.sh.
fn python() -> PathBuf {
    let setup = repo_root().join("tests/emulator/setup.sh");
    let out = Command::new("bash").arg(&setup).stderr(Stdio::inherit()).output().expect("run tests/emulator/setup.sh");
    assert!(out.status.success(), "tests/emulator/setup.sh failed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(stdout.lines().last().expect("setup.sh prints the venv's python").trim())
}

/// The venv's python, set up on first use and cached (the fault proxy runs with it too).
pub fn python_path() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(python).clone()
}

/// The shared emulator, started on first use. Tests sharing it use their own stack names.
pub fn emulator() -> &'static Emulator {
    static EMU: OnceLock<Emulator> = OnceLock::new();
    EMU.get_or_init(Emulator::start)
}

impl Emulator {
    /// A private emulator, for tests that count every request it receives.
    pub fn start() -> Emulator {
        let python = python_path();
        let dir = tempfile::tempdir().unwrap().keep();
        let port_file = dir.join("port");
        let child = Command::new(python)
            .arg(repo_root().join("tests/emulator/lamb_emulator.py"))
            .args(["--port", "0", "--port-file"])
            .arg(&port_file)
            .arg("--exit-on-stdin-eof")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(dir.join("emulator.log")).unwrap()))
            .spawn()
            .expect("start the emulator");
        let deadline = Instant::now() + Duration::from_secs(120);
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file)
                && let Ok(p) = text.trim().parse::<u16>()
            {
                break p;
            }
            assert!(
                Instant::now() < deadline,
                "the emulator did not start; see {}",
                dir.join("emulator.log").display()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Emulator { port, endpoint: format!("http://127.0.0.1:{port}"), _child: Mutex::new(child) }
    }

    /// Environment for a process that talks to the emulator, with no real credentials or
    /// config files in reach.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_CONFIG_FILE", "/dev/null".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ]
    }

    /// SDK config pointing at the emulator, for tests to inspect what lamb did.
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_lambda::config::Credentials::new("testing", "testing", None, None, "tests"))
            .load()
            .await
    }

    /// Requests the emulator received since the last reset, as it logs them (method, service,
    /// action, path, status).
    pub fn raw_requests(&self) -> Vec<serde_json::Value> {
        let body = http_get(self.port, "/_lamb/requests");
        let v: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("bad /_lamb/requests ({e}): {body}"));
        v.as_array().cloned().unwrap_or_default()
    }

    /// Requests the emulator received since the last reset: (method, service, action).
    pub fn requests(&self) -> Vec<(String, String, String)> {
        self.raw_requests()
            .iter()
            .map(|r| {
                (
                    r["method"].as_str().unwrap_or_default().to_string(),
                    r["service"].as_str().unwrap_or_default().to_string(),
                    r["action"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Ok(mut c) = self._child.lock() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Emulator {
    /// Forgets everything: every stack, function, bucket (as an emulator restarted empty).
    pub fn reset(&self) {
        http(self.port, "POST", "/_lamb/reset");
    }

    /// Forgets the requests logged so far.
    pub fn clear_requests(&self) {
        http(self.port, "DELETE", "/_lamb/requests");
    }

    /// Requests that change something: every call but reads.
    pub fn writes(&self) -> Vec<(String, String, String)> {
        self.requests().into_iter().filter(|(method, service, action)| is_write(method, service, action)).collect()
    }
}

/// Whether a logged request changes state in the emulator.
pub fn is_write(method: &str, service: &str, action: &str) -> bool {
    match service {
        "cloudformation" | "sts" | "iam" => {
            !(action.starts_with("Describe")
                || action.starts_with("List")
                || action.starts_with("Get")
                || action.starts_with("Validate"))
        }
        _ => !matches!(method, "GET" | "HEAD"),
    }
}

fn http_get(port: u16, path: &str) -> String {
    http(port, "GET", path)
}

/// A tiny HTTP/1.1 client, enough for the emulator's own endpoints.
pub fn http(port: u16, method: &str, path: &str) -> String {
    http_with_body(port, method, path, "").1
}

/// The tiny client with a JSON request body: (status, response body).
pub fn http_with_body(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, response_body(&out))
}

fn response_body(out: &str) -> String {
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    // Chunked bodies: keep what is between the chunk-size lines.
    if out.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        let mut text = String::new();
        let mut rest = body.as_str();
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            text.push_str(&tail[..n]);
            rest = &tail[n + 2..];
        }
        return text;
    }
    body
}
