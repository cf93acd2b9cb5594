//! One function instance: a real process (the function's `bootstrap`, or lamb's runtime client
//! under the machine's python or node) talking to its own [`RuntimeApi`], kept warm between
//! invocations. An instance that timed out, crashed or failed to start is finished: the next
//! invocation gets a new one (a cold start), as on Lambda.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use super::LocalError;
use super::runtime_api::{Invocation, Reply, RuntimeApi};

/// How to start a function's process.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    /// The function's full id (for messages).
    pub id: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The process can start as a spare and take this launch over later ([`Instance::spare`]).
    pub spare: bool,
    /// The function's code: `LAMBDA_TASK_ROOT` and the working directory.
    pub task_root: PathBuf,
    /// The whole environment (nothing is inherited).
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    pub memory_mb: u64,
    /// The ARN the function sees as invoked (`context.invoked_function_arn`).
    pub arn: String,
}

/// Where a function's output lines go.
pub type Sink = Arc<dyn Fn(&str) + Send + Sync>;

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The function's response document.
    Response(Bytes),
    /// The function (or its runtime) reported an error: the error document Lambda returns.
    Error { error_type: String, body: Bytes },
}

impl Outcome {
    /// Whether Lambda would set `X-Amz-Function-Error`.
    pub fn is_error(&self) -> bool {
        matches!(self, Outcome::Error { .. })
    }

    /// The document Lambda returns to the caller.
    pub fn body(&self) -> &Bytes {
        match self {
            Outcome::Response(b) | Outcome::Error { body: b, .. } => b,
        }
    }
}

/// An invocation's result and its report line's figures.
#[derive(Debug, Clone)]
pub struct Invoked {
    pub request_id: String,
    pub outcome: Outcome,
    pub duration: Duration,
    /// Set on a cold start: from spawning the process to its first request for work.
    pub init_duration: Option<Duration>,
    /// Peak resident memory of the process so far, in MB.
    pub max_memory_mb: u64,
    /// The output lines the function printed during the invocation.
    pub log: String,
}

impl Invoked {
    /// Lambda's `END` and `REPORT` lines for this invocation, for a function of `memory_mb`.
    pub fn report(&self, memory_mb: u64) -> String {
        let ms = self.duration.as_secs_f64() * 1000.0;
        let init = self
            .init_duration
            .map(|d| format!("\tInit Duration: {:.2} ms", d.as_secs_f64() * 1000.0))
            .unwrap_or_default();
        format!(
            "END RequestId: {id}\nREPORT RequestId: {id}\tDuration: {ms:.2} ms\tBilled Duration: {billed} ms\tMemory Size: {memory_mb} MB\tMax Memory Used: {used} MB{init}",
            id = self.request_id,
            billed = ms.ceil().max(1.0) as u64,
            used = self.max_memory_mb,
        )
    }
}

/// A running function process with its Runtime API.
pub struct Instance {
    api: RuntimeApi,
    child: Child,
    pid: u32,
    spawned: Instant,
    cold: bool,
    /// The instance can take another invocation.
    alive: bool,
    capture: Arc<Mutex<Option<String>>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    /// The read ends of the process's stdout and stderr pipes (owned by the readers).
    pipes: Vec<std::os::fd::RawFd>,
    /// Lines read from the pipes so far, all readers together.
    lines_read: Arc<std::sync::atomic::AtomicU64>,
    launch: Launch,
    /// A spare's stdin, where it is told the code it takes over.
    order: Option<ChildStdin>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        kill_group(self.pid);
    }
}

/// Kills the process group a function process leads (its own children too: a shell
/// `bootstrap` that started a server).
fn kill_group(pid: u32) {
    // SAFETY: signalling a process group lamb created; a group that is gone is ESRCH.
    unsafe {
        libc::killpg(pid as libc::pid_t, libc::SIGKILL);
    }
}

/// How long a process may take to start before its first invocation fails (Lambda's init limit).
const INIT_LIMIT: Duration = Duration::from_secs(10);

/// A Lambda-style error document for a failure lamb itself sees (a timeout, a crash).
pub fn error_doc(error_type: &str, message: String) -> Outcome {
    let body = serde_json::json!({"errorType": error_type, "errorMessage": message}).to_string();
    Outcome::Error { error_type: error_type.to_string(), body: Bytes::from(body) }
}

impl Instance {
    /// Starts the process. Its output goes to `sink` (and into the invocation's log).
    pub async fn spawn(launch: &Launch, sink: Sink) -> Result<Instance, LocalError> {
        Instance::start(launch, sink, false).await
    }

    /// Starts a spare for a launch like `launch` (which must allow it): an interpreter that
    /// has started and loaded lamb's runtime client, waiting on its stdin for the code it is
    /// to run ([`Instance::take_over`]). A reload then costs the handler's import, not an
    /// interpreter's start.
    pub async fn spare(launch: &Launch, sink: Sink) -> Result<Instance, LocalError> {
        Instance::start(launch, sink, true).await
    }

    /// Tells a spare to run `launch` (whose program, arguments and environment must fit the
    /// spare's: see `pool::spare_fits`); [`Instance::warm_up`] then waits for it to be ready.
    /// Its init is counted from here.
    pub async fn take_over(&mut self, launch: &Launch) -> Result<(), String> {
        let mut stdin = self.order.take().ok_or("the process is not a spare")?;
        let mut env: serde_json::Map<String, serde_json::Value> =
            launch.env.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        env.insert("AWS_LAMBDA_RUNTIME_API".into(), self.api.address().into());
        let order = serde_json::json!({"cwd": launch.task_root, "env": env});
        let mut line = order.to_string().into_bytes();
        line.push(b'\n');
        stdin.write_all(&line).await.map_err(|e| format!("the spare process did not take its order: {e}"))?;
        self.launch = launch.clone();
        self.spawned = Instant::now();
        self.cold = true;
        Ok(())
    }

    async fn start(launch: &Launch, sink: Sink, spare: bool) -> Result<Instance, LocalError> {
        let api = RuntimeApi::start().await.map_err(|source| LocalError::Io {
            what: "cannot listen for the Runtime API on 127.0.0.1".into(),
            source,
        })?;
        let mut cmd = Command::new(&launch.program);
        cmd.args(&launch.args)
            .current_dir(&launch.task_root)
            .env_clear()
            .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .stdin(if spare { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; it only sets this child's parent-death signal,
        // so a function process dies with lamb even when lamb is killed outright (its own
        // process group keeps it from Ctrl-C, which lamb handles by stopping it).
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        if spare {
            cmd.env("_LAMB_DEFER", "1");
        }
        let spawned = Instant::now();
        let mut child = cmd.spawn().map_err(|source| LocalError::Spawn {
            id: launch.id.clone(),
            program: launch.program.clone(),
            source,
        })?;
        let pid = child.id().unwrap_or_default();
        let capture: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let mut readers = Vec::new();
        use std::os::fd::AsRawFd;
        let pipes: Vec<std::os::fd::RawFd> =
            [child.stdout.as_ref().map(|s| s.as_raw_fd()), child.stderr.as_ref().map(|s| s.as_raw_fd())]
                .into_iter()
                .flatten()
                .collect();
        let lines_read = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let outputs: [Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>; 2] = [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child.stderr.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ];
        for out in outputs.into_iter().flatten() {
            let (sink, capture, lines_read) = (sink.clone(), capture.clone(), lines_read.clone());
            readers.push(tokio::spawn(async move {
                let mut lines = BufReader::new(out);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match lines.read_until(b'\n', &mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let line = String::from_utf8_lossy(&buf);
                            let line = line.trim_end_matches(['\n', '\r']);
                            sink(line);
                            if let Some(log) = capture.lock().expect("log capture poisoned").as_mut() {
                                log.push_str(line);
                                log.push('\n');
                            }
                            lines_read.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                }
            }));
        }
        let order = child.stdin.take();
        Ok(Instance {
            api,
            child,
            pid,
            spawned,
            cold: true,
            alive: true,
            capture,
            readers,
            pipes,
            lines_read,
            launch: launch.clone(),
            order,
        })
    }

    /// Waits until the process is ready for work (its init done), or says why it will not be:
    /// its init error, its exit, or an init past Lambda's limit (the process is then stopped).
    pub async fn warm_up(&mut self) -> Result<(), String> {
        let why = tokio::select! {
            _ = self.api.polled() => return Ok(()),
            r = self.api.init_failed() => match r {
                Reply::Error { error_type, body } => format!(
                    "{}: {}",
                    error_type.unwrap_or_else(|| "Runtime.Unknown".into()),
                    serde_json::from_slice::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["errorMessage"].as_str().map(str::to_string))
                        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned())
                ),
                Reply::Response(_) => "the runtime reported its init as a response".into(),
            },
            s = self.child.wait() => format!("its runtime exited while starting ({})", s.map_or_else(|e| e.to_string(), |s| s.to_string())),
            _ = tokio::time::sleep(INIT_LIMIT) => format!("it did not start within {} s", INIT_LIMIT.as_secs()),
        };
        self.alive = false;
        kill_group(self.pid);
        Err(why)
    }

    /// What the process was started with (or took over).
    pub fn launch(&self) -> &Launch {
        &self.launch
    }

    /// Whether the instance can take another invocation.
    pub fn alive(&self) -> bool {
        self.alive
    }

    /// Runs one invocation: waits for the process to ask for it, hands it over, and waits for
    /// its answer, its exit, or the timeout (which kills it).
    pub async fn invoke(&mut self, inv: Invocation) -> Invoked {
        let request_id = inv.request_id.clone();
        *self.capture.lock().expect("log capture poisoned") = Some(String::new());
        let cold = std::mem::replace(&mut self.cold, false);
        let timeout = self.launch.timeout;
        let (outcome, taken_at) = {
            let mut taken_at = None;
            let tickets = self.api.submit(inv).await;
            let (mut taken, reply) = (tickets.taken, tickets.reply);
            let init_failed = self.api.init_failed();
            let exited = self.child.wait();
            tokio::pin!(reply, init_failed, exited);
            // Until the process takes the invocation it is starting (Lambda allows an init
            // 10 s); from then on the function's Timeout counts.
            let deadline = tokio::time::sleep(timeout.max(INIT_LIMIT));
            tokio::pin!(deadline);
            let outcome = loop {
                tokio::select! {
                    r = &mut reply => break match r {
                        Ok(Reply::Response(body)) => Outcome::Response(body),
                        Ok(Reply::Error { error_type, body }) => Outcome::Error {
                            error_type: error_type.unwrap_or_else(|| "Unhandled".into()),
                            body,
                        },
                        Err(_) => {
                            self.alive = false;
                            error_doc("Runtime.ExitError", format!("RequestId: {request_id} Error: the function's runtime stopped answering"))
                        }
                    },
                    t = &mut taken, if taken_at.is_none() => {
                        if let Ok(t) = t {
                            taken_at = Some(t);
                            deadline.as_mut().reset((t + timeout).into());
                        }
                    }
                    r = &mut init_failed => {
                        self.alive = false;
                        let Reply::Error { error_type, body } = r else { unreachable!("init errors are errors") };
                        break Outcome::Error { error_type: error_type.unwrap_or_else(|| "Runtime.Unknown".into()), body };
                    }
                    status = &mut exited => {
                        self.alive = false;
                        let why = match status {
                            Ok(s) if s.success() => "Runtime exited without providing a reason".to_string(),
                            Ok(s) => match s.code() {
                                Some(c) => format!("Runtime exited with error: exit status {c}"),
                                None => format!("Runtime exited with error: {s}"),
                            },
                            Err(e) => format!("Runtime exited: {e}"),
                        };
                        break error_doc("Runtime.ExitError", format!("RequestId: {request_id} Error: {why}"));
                    }
                    _ = &mut deadline => {
                        self.alive = false;
                        kill_group(self.pid);
                        break error_doc(
                            "Sandbox.Timedout",
                            format!("RequestId: {request_id} Error: Task timed out after {}.00 seconds", timeout.as_secs()),
                        );
                    }
                }
            };
            // Taken and answered at once: the answer may have won the race to be seen.
            (outcome, taken_at.or_else(|| taken.try_recv().ok()))
        };
        let duration = taken_at.map_or(Duration::ZERO, |t| t.elapsed());
        let init_duration = if cold { taken_at.map(|t| t.duration_since(self.spawned)) } else { None };
        let max_memory_mb = peak_rss_mb(self.pid);
        if !self.alive {
            kill_group(self.pid);
            // The pipes close with the process: the readers have every line then.
            for r in self.readers.drain(..) {
                let _ = r.await;
            }
        }
        if self.alive {
            self.drain_output().await;
        }
        let log = self.capture.lock().expect("log capture poisoned").take().unwrap_or_default();
        Invoked { request_id, outcome, duration, init_duration, max_memory_mb, log }
    }

    /// Waits (briefly) until what the process printed before it answered has been read: its
    /// runtime prints, then posts the answer, so those lines are in the pipes by now. Done
    /// when the pipes are empty and the readers have stopped taking lines.
    async fn drain_output(&self) {
        let queued = |fd: std::os::fd::RawFd| {
            let mut n: libc::c_int = 0;
            // SAFETY: FIONREAD on a pipe fd the readers keep open; it only writes `n`.
            let ok = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) } == 0;
            ok && n > 0
        };
        let deadline = Instant::now() + Duration::from_millis(50);
        let mut seen = self.lines_read.load(std::sync::atomic::Ordering::SeqCst);
        while Instant::now() < deadline {
            tokio::task::yield_now().await;
            let now = self.lines_read.load(std::sync::atomic::Ordering::SeqCst);
            if !self.pipes.iter().any(|fd| queued(*fd)) && now == seen {
                break;
            }
            seen = now;
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }

    /// Stops the process and waits for its last output lines.
    pub async fn stop(mut self) {
        kill_group(self.pid);
        let _ = self.child.wait().await;
        for r in self.readers.drain(..) {
            let _ = r.await;
        }
    }
}

/// The process's peak resident set (VmHWM), in MB, rounded up; 0 when unknown.
fn peak_rss_mb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb.div_ceil(1024))
}
