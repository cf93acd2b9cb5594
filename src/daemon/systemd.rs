//! systemd integration: `sd_notify` messages (READY, STATUS, WATCHDOG, RELOADING) on
//! `$NOTIFY_SOCKET`, and installing the `lamb@.service` user unit for a project.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The unit template, with `@LAMB@` standing for the lamb binary.
pub const UNIT_TEMPLATE: &str = include_str!("../../systemd/lamb@.service");

/// Sends notifications to systemd when lamb runs under it (`NOTIFY_SOCKET` set).
pub struct Notifier {
    socket: Option<(UnixDatagram, String)>,
}

impl Notifier {
    pub fn from_env() -> Notifier {
        Notifier::to(std::env::var("NOTIFY_SOCKET").ok().filter(|s| !s.is_empty()))
    }

    /// A notifier for the socket at `path` (`@name` for an abstract one).
    fn to(path: Option<String>) -> Notifier {
        let socket = path.and_then(|path| {
            let sock = UnixDatagram::unbound().ok()?;
            // A reader that stopped reading must never stall the daemon: a full queue drops
            // the message instead of blocking the event loop.
            sock.set_nonblocking(true).ok()?;
            Some((sock, path))
        });
        Notifier { socket }
    }

    /// Sends `state` (`READY=1`, `STATUS=...`) without waiting; failures (a full queue
    /// included) are ignored, as sd_notify does.
    pub fn notify(&self, state: &str) {
        let Some((sock, path)) = &self.socket else { return };
        let result = if let Some(name) = path.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
        } else {
            sock.send_to(state.as_bytes(), path)
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "sd_notify failed");
        }
    }

    pub fn ready(&self, status: &str) {
        self.notify(&format!("READY=1\nSTATUS={status}"));
    }

    pub fn status(&self, status: &str) {
        self.notify(&format!("STATUS={status}"));
    }

    /// `RELOADING=1` with the monotonic timestamp systemd wants alongside it.
    pub fn reloading(&self) {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: ts is a valid timespec to write into.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        let usec = ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000;
        self.notify(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
    }

    pub fn stopping(&self) {
        self.notify("STOPPING=1");
    }
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, when it is meant for this process.
pub fn watchdog_interval(usec: Option<&str>, pid: Option<&str>) -> Option<Duration> {
    let usec: u64 = usec?.parse().ok()?;
    if let Some(pid) = pid
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// `systemd-escape --path`: the unit instance name for a path.
pub fn escape_path(path: &Path) -> String {
    let s = path.to_string_lossy();
    let trimmed = s.trim_matches('/');
    if trimmed.is_empty() {
        return "-".into();
    }
    let mut out = String::new();
    for (i, b) in trimmed.bytes().enumerate() {
        match b {
            b'/' => out.push('-'),
            b'.' if i == 0 => out.push_str("\\x2e"),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b':' | b'_' | b'.' => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// The unit file for this lamb binary.
pub fn unit_file(lamb: &Path) -> String {
    UNIT_TEMPLATE.replace("@LAMB@", &lamb.display().to_string())
}

/// Where user units live.
pub fn unit_dir(home: &Path, xdg_config_home: Option<&str>) -> PathBuf {
    match xdg_config_home.filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("systemd/user"),
        None => home.join(".config/systemd/user"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_paths_like_systemd_escape() {
        assert_eq!(escape_path(Path::new("/home/me/app")), "home-me-app");
        assert_eq!(escape_path(Path::new("/home/me/my-app")), "home-me-my\\x2dapp");
        assert_eq!(escape_path(Path::new("/home/me/my app/")), "home-me-my\\x20app");
        assert_eq!(escape_path(Path::new("/.hidden/x")), "\\x2ehidden-x");
        assert_eq!(escape_path(Path::new("/")), "-");
    }

    #[test]
    fn watchdog_interval_is_half_and_only_for_us() {
        let me = std::process::id().to_string();
        assert_eq!(watchdog_interval(Some("30000000"), None), Some(Duration::from_secs(15)));
        assert_eq!(watchdog_interval(Some("30000000"), Some(&me)), Some(Duration::from_secs(15)));
        assert_eq!(watchdog_interval(Some("30000000"), Some("1")), None);
        assert_eq!(watchdog_interval(None, None), None);
    }

    #[test]
    fn notifications_reach_the_socket() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::to(Some(path.display().to_string()));
        n.ready("watching 3 functions");
        let mut buf = [0u8; 256];
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(std::str::from_utf8(&buf[..len]).unwrap(), "READY=1\nSTATUS=watching 3 functions");
        n.reloading();
        let len = server.recv(&mut buf).unwrap();
        assert!(std::str::from_utf8(&buf[..len]).unwrap().starts_with("RELOADING=1\nMONOTONIC_USEC="));
    }

    #[test]
    fn unit_file_names_the_binary_and_is_type_notify() {
        let u = unit_file(Path::new("/usr/local/bin/lamb"));
        assert!(u.contains("ExecStart=/usr/local/bin/lamb sync --watch --yes --project-dir %f"));
        assert!(
            u.contains("Type=notify") && u.contains("WatchdogSec=") && u.contains("ExecReload=/bin/kill -HUP $MAINPID")
        );
    }

    #[test]
    fn a_reader_that_stopped_reading_never_blocks_the_daemon() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("notify");
        let _server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::to(Some(path.display().to_string()));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Far more than a datagram queue holds.
            for i in 0..20_000 {
                n.status(&format!("watching, message {i}"));
            }
            tx.send(()).unwrap();
        });
        rx.recv_timeout(Duration::from_secs(10)).expect("notify blocked on a full queue");
    }
}
