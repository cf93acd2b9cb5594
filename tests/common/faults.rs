//! A fault-injecting HTTP proxy in front of an [`Emulator`] (tests/emulator/fault_proxy.py):
//! requests are forwarded untouched (SigV4 stays valid) unless a rule says to throttle,
//! conflict, fail (500/503), expire credentials, reset the connection (before or after the
//! request is applied), delay or rewrite the answer. Rules and the fault kinds' exact wire formats are documented at the top of
//! fault_proxy.py; tests/emulator/fault_proxy_test.py has a working example of each.
//!
//! ```ignore
//! let emu = Emulator::start();
//! let proxy = FaultProxy::start(&emu);
//! proxy.add(json!({"fault": "throttle", "service": "lambda", "action": "UpdateFunctionCode", "times": 2}));
//! let run = project.lamb_env(&["sync"], &proxy.env());
//! assert_eq!(proxy.injected("throttle"), 2);
//! ```
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::emulator::{Emulator, http_with_body, python_path};
use super::repo_root;

pub struct FaultProxy {
    pub port: u16,
    pub endpoint: String,
    /// The emulator's environment with AWS_ENDPOINT_URL pointing at the proxy.
    env: Vec<(&'static str, String)>,
    /// The proxy's stderr (`--verbose` is not set: only start-up and fatal errors).
    pub log: PathBuf,
    child: Mutex<Child>,
}

impl FaultProxy {
    /// Starts a proxy forwarding to `upstream`; it stops when dropped (or when the test
    /// binary exits: it watches its stdin).
    pub fn start(upstream: &Emulator) -> FaultProxy {
        let dir = tempfile::tempdir().unwrap().keep();
        let port_file = dir.join("port");
        let log = dir.join("fault_proxy.log");
        let mut child = Command::new(python_path())
            .arg(repo_root().join("tests/emulator/fault_proxy.py"))
            .args(["--upstream", &upstream.endpoint, "--port", "0", "--port-file"])
            .arg(&port_file)
            .arg("--exit-on-stdin-eof")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("start the fault proxy");
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file)
                && let Ok(p) = text.trim().parse::<u16>()
            {
                break p;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the fault proxy exited ({status}); see {}", log.display());
            }
            assert!(Instant::now() < deadline, "the fault proxy did not start; see {}", log.display());
            std::thread::sleep(Duration::from_millis(20));
        };
        let endpoint = format!("http://127.0.0.1:{port}");
        let env = upstream
            .env()
            .into_iter()
            .map(|(k, v)| if k == "AWS_ENDPOINT_URL" { (k, endpoint.clone()) } else { (k, v) })
            .collect();
        FaultProxy { port, endpoint, env, log, child: Mutex::new(child) }
    }

    /// Environment for a process (lamb) that talks to the emulator through the proxy.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        self.env.clone()
    }

    /// SDK config pointing at the proxy (the SDK's default retries: throttling and 5xx are
    /// retried, conflicts and expired credentials are not).
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_lambda::config::Credentials::new("testing", "testing", None, None, "tests"))
            .load()
            .await
    }

    /// Appends a rule, returning its id. Panics if the proxy rejects it.
    pub fn add(&self, rule: serde_json::Value) -> u64 {
        self.add_all(vec![rule])[0]
    }

    /// Appends rules in order, returning their ids.
    pub fn add_all(&self, rules: Vec<serde_json::Value>) -> Vec<u64> {
        let v = self.call("POST", "/_faults", &serde_json::json!({ "rules": rules }));
        v["ids"].as_array().unwrap().iter().map(|id| id.as_u64().unwrap()).collect()
    }

    /// Removes every rule and resets the stats.
    pub fn clear(&self) {
        self.call("DELETE", "/_faults", &serde_json::Value::Null);
    }

    /// `{"rules", "injected", "events", "requests", "max_in_flight", "upstream"}`.
    pub fn stats(&self) -> serde_json::Value {
        self.call("GET", "/_faults", &serde_json::Value::Null)
    }

    /// How many faults of `kind` were injected (`throttle`, ..., `upstream_down`).
    pub fn injected(&self, kind: &str) -> u64 {
        self.stats()["injected"][kind].as_u64().unwrap_or(0)
    }

    /// Requests the proxy received (forwarded or faulted), control calls excluded.
    pub fn requests(&self) -> u64 {
        self.stats()["requests"].as_u64().unwrap_or(0)
    }

    /// The most concurrent Lambda updates (code, configuration, version, alias: any kind)
    /// seen per function name.
    pub fn max_in_flight(&self) -> Vec<(String, u64)> {
        let stats = self.stats();
        let mut out: Vec<(String, u64)> = stats["max_in_flight"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect())
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Every request since the last [`clear`](Self::clear), in arrival order: `{"seq", "service",
    /// "action", "method", "path", "function", "fault", "replaced", "status", "start", "end"}`
    /// (times in UNIX seconds; `fault` the kind injected or null).
    pub fn request_log(&self) -> Vec<serde_json::Value> {
        self.call("GET", "/_requests", &serde_json::Value::Null).as_array().cloned().unwrap_or_default()
    }

    /// Forwards to another emulator (one a test restarted).
    pub fn repoint(&self, upstream: &Emulator) {
        self.repoint_port(upstream.port);
    }

    /// Forwards to 127.0.0.1:`port` (a dead port makes the upstream look down).
    pub fn repoint_port(&self, port: u16) {
        self.call("POST", "/_upstream", &serde_json::json!({ "url": format!("http://127.0.0.1:{port}") }));
    }

    fn call(&self, method: &str, path: &str, body: &serde_json::Value) -> serde_json::Value {
        let text = if body.is_null() { String::new() } else { body.to_string() };
        let (status, out) = http_with_body(self.port, method, path, &text);
        assert_eq!(status, 200, "fault proxy {method} {path} {text}: {out}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad answer from the fault proxy ({e}): {out}"))
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Ok(mut c) = self.child.lock() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
