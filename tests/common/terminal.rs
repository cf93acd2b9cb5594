//! Driving lamb on a pseudo-terminal, as a user at a keyboard would.

use super::Project;

/// Runs `lamb ARGS` in `p` on a terminal (`script`), typing each step's text once the terminal
/// shows its marker ("" types at once; the terminal keeps it until lamb reads); returns the
/// exit code and everything the terminal showed.
pub fn on_terminal(p: &Project, args: &str, env: &[(&str, String)], steps: &[(&str, &str)]) -> (Option<i32>, String) {
    use std::io::{Read as _, Write as _};
    use std::sync::{Arc, Condvar, Mutex};
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &format!("{} {args}", super::lamb_bin()), "/dev/null"])
        .current_dir(p.path())
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let shown = Arc::new((Mutex::new(String::new()), Condvar::new()));
    let reader = {
        let shown = shown.clone();
        let mut out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                shown.0.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
                shown.1.notify_all();
            }
        })
    };
    let mut stdin = child.stdin.take().unwrap();
    for (prompt, text) in steps {
        let (lock, cvar) = &*shown;
        let (guard, timeout) = cvar
            .wait_timeout_while(lock.lock().unwrap(), std::time::Duration::from_secs(60), |s| !s.contains(prompt))
            .unwrap();
        assert!(!timeout.timed_out(), "no `{prompt}` on the terminal:\n{}", *guard);
        drop(guard);
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
    drop(stdin);
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let text = shown.0.lock().unwrap().clone();
    (status.code(), text)
}
