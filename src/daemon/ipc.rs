//! The control socket: a Unix socket, owner-only, speaking newline-delimited JSON. Editors'
//! save hooks (`lamb trigger`) and `lamb status` use it. Every message carries the protocol
//! version; a daemon answers a version it does not speak with an error naming both.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use crate::push::ItemReport;

/// The protocol version this lamb speaks.
pub const VERSION: u32 = 1;

/// A request from a client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub v: u32,
    #[serde(flatten)]
    pub cmd: Command,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Command {
    /// Files were saved: sync what they belong to now. No paths: everything.
    Trigger {
        #[serde(default)]
        paths: Vec<PathBuf>,
        #[serde(default)]
        wait: bool,
    },
    Status,
    Ping,
}

/// The daemon's answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Response {
    pub v: u32,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Trigger: the functions and layers the paths belong to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted: Vec<String>,
    /// Trigger with wait: what the passes that carried the change did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<PassResult>,
    /// Status: the status document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

impl Response {
    pub fn error(msg: impl Into<String>) -> Self {
        Response { v: VERSION, ok: false, error: Some(msg.into()), ..Default::default() }
    }

    /// A success from this daemon.
    pub fn ok() -> Self {
        Response { v: VERSION, ok: true, pid: Some(std::process::id()), ..Default::default() }
    }
}

/// What `lamb trigger --wait` gets back: every item the passes carrying its change reported.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PassResult {
    pub items: Vec<ItemReport>,
    pub duration_ms: u64,
}

/// What `lamb status` shows: the daemon (none when lamb's record answers instead), the stack,
/// and each function and layer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusDoc {
    pub daemon: Option<DaemonStatus>,
    pub stack: StackStatus,
    pub functions: Vec<UnitStatus>,
}

/// The daemon itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaemonStatus {
    pub pid: u32,
    pub project: PathBuf,
    /// Passes finished, including those that found nothing to sync.
    pub passes: u64,
    /// The initial pass is done.
    pub ready: bool,
    pub running: bool,
    pub infra_pending: bool,
    /// Why the last pass as a whole failed, until one succeeds.
    pub last_error: Option<String>,
}

/// The stack a project syncs to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StackStatus {
    pub name: String,
    pub region: String,
    /// Seconds since the epoch of lamb's last CloudFormation deploy.
    pub last_infra_deploy: Option<u64>,
}

/// Per function and layer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UnitStatus {
    pub id: String,
    pub last_sync: Option<u64>,
    pub code_sha256: Option<String>,
    pub duration_ms: Option<u64>,
    /// Time from the first file event of the change to the code being live.
    pub save_to_live_ms: Option<u64>,
    pub last_error: Option<String>,
    pub pending: bool,
}

/// A request handed to the daemon's event loop, with where to send the answer.
pub type Incoming = (Command, oneshot::Sender<Response>);

/// A short stable id for a project: its directory name plus a hash of its path.
pub fn project_id(root: &Path) -> String {
    let name: String = root
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
                .collect()
        })
        .unwrap_or_else(|| "project".into());
    let hash = crate::fingerprint::hex(&Sha256::digest(root.as_os_str().as_encoded_bytes()));
    format!("{name}-{}", &hash[..12])
}

/// Where a project's socket lives: `$XDG_RUNTIME_DIR/lamb/<id>.sock`, or `/tmp/lamb-<uid>/`
/// when there is no runtime directory.
pub fn socket_path(root: &Path, configured: Option<&Path>, xdg_runtime_dir: Option<&str>) -> PathBuf {
    if let Some(p) = configured {
        return p.to_path_buf();
    }
    let dir = match xdg_runtime_dir.filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("lamb"),
        // SAFETY: getuid cannot fail.
        None => PathBuf::from(format!("/tmp/lamb-{}", unsafe { libc::getuid() })),
    };
    dir.join(format!("{}.sock", project_id(root)))
}

/// The socket path for a project directory, as the daemon, `lamb trigger` and `lamb status`
/// find it (`XDG_RUNTIME_DIR` from the environment).
pub fn socket_for(root: &Path, configured: Option<&Path>) -> PathBuf {
    socket_path(root, configured, std::env::var("XDG_RUNTIME_DIR").ok().as_deref())
}

/// Binds the socket, owner-only (0600). The directory lamb picks (`$XDG_RUNTIME_DIR/lamb`,
/// `/tmp/lamb-<uid>`) is created 0700 and refused when it is a symlink or another user's:
/// in /tmp anyone could have made it first. A `configured` socket's directory belongs to the
/// user: it must exist and is left as it is. A stale socket (no daemon behind it) is replaced;
/// any other file in the way is refused.
pub async fn bind(path: &Path, configured: bool) -> std::io::Result<UnixListener> {
    use std::io::{Error, ErrorKind};
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !configured {
        match std::fs::symlink_metadata(dir) {
            Err(e) if e.kind() == ErrorKind::NotFound => crate::state::create_private_dir(dir)?,
            Err(e) => return Err(e),
            Ok(m) if m.file_type().is_symlink() || !m.is_dir() => {
                return Err(Error::other(format!(
                    "{} is a symlink or a file, not the directory lamb makes for its sockets; remove it",
                    dir.display()
                )));
            }
            // SAFETY: getuid cannot fail.
            Ok(m) if m.uid() != unsafe { libc::getuid() } => {
                return Err(Error::new(
                    ErrorKind::PermissionDenied,
                    format!(
                        "{} belongs to another user; remove it, or choose a socket with LAMB_SOCKET or [daemon] socket in lamb.toml",
                        dir.display()
                    ),
                ));
            }
            Ok(_) => {}
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if !m.file_type().is_socket() {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket; remove it or choose another socket path", path.display()),
            ));
        }
        if UnixStream::connect(path).await.is_ok() {
            return Err(Error::new(ErrorKind::AddrInUse, format!("{} is in use by another daemon", path.display())));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// The user id of the process at the other end of `stream`.
fn peer_uid(stream: &UnixStream) -> Option<u32> {
    stream.peer_cred().ok().map(|c| c.uid())
}

/// Accepts connections forever, forwarding each request to `tx`. Peers running as another
/// user are refused (the socket's mode already keeps them out; this checks again).
pub async fn serve(listener: UnixListener, tx: mpsc::Sender<Incoming>) {
    // SAFETY: getuid cannot fail.
    let me = unsafe { libc::getuid() };
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        if peer_uid(&stream) != Some(me) {
            tracing::warn!(peer = ?peer_uid(&stream), "refused a control connection from another user");
            continue;
        }
        let tx = tx.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let response = match serde_json::from_str::<serde_json::Value>(&line) {
                    Err(e) => Response::error(format!("not JSON: {e}")),
                    Ok(v) if v.get("v").and_then(|v| v.as_u64()) != Some(u64::from(VERSION)) => {
                        Response::error(format!(
                            "protocol version {} is not supported; this daemon speaks version {VERSION}",
                            v.get("v").map_or("(none)".to_string(), |v| v.to_string())
                        ))
                    }
                    Ok(v) => match serde_json::from_value::<Request>(v) {
                        Err(e) => Response::error(format!("bad request: {e}")),
                        Ok(req) => {
                            let (reply, answer) = oneshot::channel();
                            if tx.send((req.cmd, reply)).await.is_err() {
                                Response::error("the daemon is shutting down")
                            } else {
                                answer.await.unwrap_or_else(|_| Response::error("the daemon is shutting down"))
                            }
                        }
                    },
                };
                let mut out = serde_json::to_vec(&response).unwrap_or_default();
                out.push(b'\n');
                if write.write_all(&out).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// Sends one request to the daemon at `path`. `Ok(None)` when no daemon is listening.
pub async fn call(path: &Path, cmd: Command) -> std::io::Result<Option<Response>> {
    let stream = match UnixStream::connect(path).await {
        Ok(s) => s,
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused) => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(&Request { v: VERSION, cmd }).map_err(std::io::Error::other)?;
    line.push(b'\n');
    write.write_all(&line).await?;
    let mut lines = BufReader::new(read).lines();
    let Some(answer) = lines.next_line().await? else {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the daemon closed the connection"));
    };
    let response: Response = serde_json::from_str(&answer).map_err(std::io::Error::other)?;
    if response.v != VERSION {
        return Err(std::io::Error::other(format!(
            "the daemon speaks protocol version {}, this lamb speaks {VERSION}; restart the daemon with this lamb",
            response.v
        )));
    }
    Ok(Some(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_path_prefers_configuration_then_runtime_dir() {
        let root = Path::new("/home/me/my app");
        let id = project_id(root);
        assert!(id.starts_with("my_app-") && id.len() == "my_app-".len() + 12, "{id}");
        assert_eq!(
            socket_path(root, None, Some("/run/user/1000")),
            PathBuf::from(format!("/run/user/1000/lamb/{id}.sock"))
        );
        let uid = unsafe { libc::getuid() };
        assert_eq!(socket_path(root, None, None), PathBuf::from(format!("/tmp/lamb-{uid}/{id}.sock")));
        assert_eq!(socket_path(root, Some(Path::new("/x.sock")), Some("/run")), PathBuf::from("/x.sock"));
        assert_ne!(project_id(Path::new("/a/app")), project_id(Path::new("/b/app")));
    }

    #[tokio::test]
    async fn requests_round_trip_and_versions_are_checked() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("run/lamb/p.sock");
        let listener = bind(&path, false).await.unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        let (tx, mut rx) = mpsc::channel::<Incoming>(4);
        tokio::spawn(serve(listener, tx));
        tokio::spawn(async move {
            while let Some((cmd, reply)) = rx.recv().await {
                let accepted = match cmd {
                    Command::Trigger { paths, .. } => paths.iter().map(|p| p.display().to_string()).collect(),
                    _ => Vec::new(),
                };
                let _ = reply.send(Response { v: VERSION, ok: true, accepted, pid: Some(7), ..Default::default() });
            }
        });
        let r = call(&path, Command::Trigger { paths: vec!["/p/a.py".into()], wait: false }).await.unwrap().unwrap();
        assert!(r.ok);
        assert_eq!(r.accepted, ["/p/a.py"]);
        // A client speaking another version gets an error naming both.
        let mut s = UnixStream::connect(&path).await.unwrap();
        s.write_all(b"{\"v\": 9, \"cmd\": \"ping\"}\n").await.unwrap();
        let mut lines = BufReader::new(s).lines();
        let answer: Response = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        assert!(!answer.ok && answer.error.unwrap().contains("protocol version 9 is not supported"));
        // A second daemon cannot take the socket while the first listens.
        assert_eq!(bind(&path, false).await.unwrap_err().kind(), std::io::ErrorKind::AddrInUse);
    }

    #[tokio::test]
    async fn unsafe_socket_places_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        // A symlink where lamb's socket directory should be (someone else's trap in /tmp).
        std::fs::create_dir(d.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(d.path().join("elsewhere"), d.path().join("lamb")).unwrap();
        let e = bind(&d.path().join("lamb/p.sock"), false).await.unwrap_err();
        assert!(e.to_string().contains("is a symlink or a file"), "{e}");
        // A file in the socket's place is not removed.
        std::fs::create_dir(d.path().join("own")).unwrap();
        std::fs::write(d.path().join("own/p.sock"), "keep").unwrap();
        let e = bind(&d.path().join("own/p.sock"), false).await.unwrap_err();
        assert!(e.to_string().contains("is not a socket"), "{e}");
        assert_eq!(std::fs::read_to_string(d.path().join("own/p.sock")).unwrap(), "keep");
        // A configured socket's directory keeps its mode; lamb's own is made private.
        let shared = d.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
        let l = bind(&shared.join("p.sock"), true).await.unwrap();
        assert_eq!(std::fs::metadata(&shared).unwrap().permissions().mode() & 0o777, 0o755);
        drop(l);
        // Its socket file is stale now (nobody listens): a new daemon replaces it.
        let l = bind(&shared.join("p.sock"), true).await.unwrap();
        drop(l);
        let l = bind(&shared.join("p.sock"), false).await.unwrap();
        assert_eq!(std::fs::metadata(&shared).unwrap().permissions().mode() & 0o777, 0o700);
        drop(l);
    }

    /// The socket's mode keeps other users out; if it were loosened (a shared directory, a
    /// umask), the peer-credential check still refuses them. Needs root to be another user.
    #[tokio::test]
    async fn peers_of_another_user_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        // SAFETY: getuid cannot fail.
        if unsafe { libc::getuid() } != 0 {
            eprintln!("skipped: acting as another user needs root (CI runs as root)");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = d.path().join("open.sock");
        let listener = bind(&path, true).await.unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let (tx, mut rx) = mpsc::channel::<Incoming>(4);
        tokio::spawn(serve(listener, tx));
        tokio::spawn(async move {
            while let Some((_, reply)) = rx.recv().await {
                let _ = reply.send(Response { v: VERSION, ok: true, pid: Some(7), ..Default::default() });
            }
        });
        let client = |uid: Option<u32>| {
            let path = path.clone();
            async move {
                let script = "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\ntry:\n s.sendall(b'{\"v\":1,\"cmd\":\"ping\"}\\n')\n print(repr(s.recv(4096)))\nexcept (ConnectionResetError, BrokenPipeError):\n print('closed')";
                let mut cmd = std::process::Command::new("python3");
                cmd.args(["-c", script]).arg(&path);
                if let Some(uid) = uid {
                    cmd.uid(uid).gid(uid);
                }
                let out = tokio::task::spawn_blocking(move || cmd.output()).await.unwrap().expect("python3 runs");
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                String::from_utf8_lossy(&out.stdout).trim().to_string()
            }
        };
        assert!(client(None).await.contains("\"ok\":true"), "the owner is answered");
        let other = client(Some(65534)).await;
        assert!(other == "b''" || other == "closed", "another user gets nothing but a closed connection: {other}");
    }

    #[tokio::test]
    async fn no_daemon_is_none() {
        let d = tempfile::tempdir().unwrap();
        assert!(call(&d.path().join("none.sock"), Command::Ping).await.unwrap().is_none());
    }
}
