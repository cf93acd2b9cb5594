//! Running the external tools builds need (pip, npm, make), with errors that show their output.

use std::process::{Command, Stdio};

use super::{BuildError, ToolRun};

/// How many lines of a failed command's output to show.
const TAIL_LINES: usize = 40;

/// Runs `cmd`, capturing its output. `tool` names the program for a missing-tool error and
/// `install` says how to get it.
pub fn run(cmd: &mut Command, tool: &str, install: &str) -> Result<String, BuildError> {
    let shown = display(cmd);
    tracing::debug!(command = %shown, "running");
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            BuildError::MissingTool { tool: tool.to_string(), install: install.to_string() }
        } else {
            BuildError::Io { what: format!("cannot run `{shown}`"), source: e }
        }
    })?;
    let mut text = strip_ansi(&String::from_utf8_lossy(&out.stdout));
    text.push_str(&strip_ansi(&String::from_utf8_lossy(&out.stderr)));
    if !out.status.success() {
        let status = out.status.code().map_or_else(|| "killed by a signal".to_string(), |c| format!("exit code {c}"));
        let run = ToolRun { command: shown, status, output: tail(&text, TAIL_LINES) };
        return Err(BuildError::ToolFailed { run: Box::new(run), fix: None });
    }
    Ok(text)
}

/// Drops terminal colour codes (`ESC [ ... m` and other CSI sequences), which some tools
/// (Maven 3.8, cargo) print even when their output is a pipe.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            // Parameters and intermediates, up to the final byte (`@` to `~`).
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn display(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// The first and last lines of a long output, where tools say what went wrong: the cause
/// first (npm follows it with its usage text), the final error last (pip, make, compilers).
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= n {
        return lines.join("\n");
    }
    let head = n / 4;
    let start = lines.len() - (n - head);
    format!("{}\n... ({} lines left out)\n{}", lines[..head].join("\n"), start - head, lines[start..].join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_command_shows_its_output_tail() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "for i in $(seq 1 50); do echo line$i; done; echo boom >&2; exit 3"]);
        let err = run(&mut cmd, "sh", "").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("exit code 3") && msg.contains("boom") && msg.contains("line50"), "{msg}");
        // The first lines (often the cause) and the last ones (the final error), not the middle.
        assert!(msg.contains("line1\n") && !msg.contains("line15\n") && msg.contains("lines left out"), "{msg}");
    }

    #[test]
    fn colour_codes_are_dropped_from_tool_output() {
        assert_eq!(strip_ansi("\u{1b}[0m[ERROR] boom\u{1b}[0m\u{1b}[1;31mred\u{1b}[0m"), "[ERROR] boomred");
        assert_eq!(strip_ansi("plain [text]"), "plain [text]");
    }

    #[test]
    fn missing_tool_says_how_to_install_it() {
        let err = run(&mut Command::new("lamb-no-such-tool"), "lamb-no-such-tool", "install it with apt").unwrap_err();
        assert!(matches!(err, BuildError::MissingTool { .. }));
        assert!(err.to_string().contains("install it with apt"), "{err}");
    }
}
