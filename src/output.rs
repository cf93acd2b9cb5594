//! What the user sees: result lines (human or JSON) on stdout, and on a terminal a live status
//! line on stderr saying what is building right now.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Instant;

use crate::engine::{BuildReport, Progress, ResourceReport, Status};

/// Writes a line to stdout. A closed pipe (`lamb build | head`) is not an error worth dying
/// for in the middle of a build: the output is dropped and the work goes on.
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
}

/// Asks a yes/no question on the terminal (the question on stderr, the answer from stdin);
/// false when stdin is not a terminal, so nobody can answer.
pub fn confirm(question: &str) -> bool {
    use std::io::BufRead;
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
}

pub use crate::cli::Format;

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Formats a byte count for people: `1.2 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[unit]) }
}

/// Formats a duration in milliseconds: `43 ms`, `1.24 s`.
pub fn duration(ms: u64) -> String {
    if ms < 1000 { format!("{ms} ms") } else { format!("{:.2} s", ms as f64 / 1000.0) }
}

/// Styling for result lines.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, s: &str, code: &str) -> String {
        if self.color { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_string() }
    }

    fn status(&self, status: Status) -> String {
        let text = format!("{:<7}", status.as_str());
        match status {
            Status::Built => self.paint(&text, "32"),
            Status::Cached => self.paint(&text, "2"),
            Status::Changed => self.paint(&text, "36"),
            Status::Failed => self.paint(&text, "1;31"),
            Status::Skipped => self.paint(&text, "33"),
        }
    }
}

/// One human-readable result line (plus indented detail for failures).
pub fn resource_line(r: &ResourceReport, width: usize, style: Style) -> String {
    let mut line = format!("{} {:<width$}  {:<15}", style.status(r.status), r.id, r.method.as_deref().unwrap_or("-"));
    match (&r.artifact, r.status) {
        (Some(a), _) => {
            line.push_str(&format!(
                " {:>8}  {:>10}  CodeSha256 {}",
                duration(r.duration_ms),
                bytes(a.size),
                a.code_sha256
            ));
            if let Some(d) = r.deps {
                line.push_str(&format!("  deps {d}"));
            }
            if let Some(s) = &r.shared_with {
                line.push_str(&format!("  (shares {s}'s build)"));
            }
        }
        (None, Status::Changed) => line.push_str(&format!(" {:>8}  would be built", duration(r.duration_ms))),
        (None, Status::Failed) => {
            line.push_str(&format!(" {:>8}", duration(r.duration_ms)));
            let msg = r.message.as_deref().unwrap_or("failed");
            line.push_str(&format!("\n    {}: {}", r.location, msg.replace('\n', "\n    ")));
        }
        (None, _) => {
            if let Some(m) = &r.message {
                line.push_str(&format!(" {m}"));
            }
        }
    }
    line
}

/// The summary line.
pub fn summary(report: &BuildReport) -> String {
    let changed = report.count(Status::Changed);
    if changed > 0 {
        return format!(
            "dry run: {changed} to build, cached {}, failed {}, skipped {} in {}",
            report.count(Status::Cached),
            report.count(Status::Failed),
            report.count(Status::Skipped),
            duration(report.duration_ms)
        );
    }
    format!(
        "built {}, cached {}, failed {}, skipped {} in {}",
        report.count(Status::Built),
        report.count(Status::Cached),
        report.count(Status::Failed),
        report.count(Status::Skipped),
        duration(report.duration_ms)
    )
}

/// Prints results as they finish. On a terminal, also keeps a status line at the bottom of
/// stderr listing what is in progress; elsewhere, plain lines only.
pub struct Printer {
    format: Format,
    style: Style,
    live: bool,
    quiet: bool,
    width: usize,
    inner: Mutex<Live>,
}

struct Live {
    active: Vec<(String, Instant)>,
    status_shown: bool,
}

impl Printer {
    pub fn new(format: Format, color: bool, quiet: bool, width: usize) -> Self {
        let live = format == Format::Human && !quiet && std::io::stderr().is_terminal();
        Printer {
            format,
            style: Style { color },
            live,
            quiet,
            width,
            inner: Mutex::new(Live { active: Vec::new(), status_shown: false }),
        }
    }

    fn clear_status(&self, live: &mut Live) {
        if live.status_shown {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
            live.status_shown = false;
        }
    }

    fn draw_status(&self, live: &mut Live) {
        if live.active.is_empty() {
            return;
        }
        let names: Vec<String> =
            live.active.iter().map(|(id, t)| format!("{id} ({:.1}s)", t.elapsed().as_secs_f64())).collect();
        let _ = write!(std::io::stderr(), "\x1b[2K  building {}", names.join(", "));
        let _ = std::io::stderr().flush();
        live.status_shown = true;
    }

    /// Prints the end of the pass: JSON document, or the summary and notes.
    pub fn finish(&self, report: &BuildReport) {
        let mut live = self.inner.lock().expect("printer lock poisoned");
        self.clear_status(&mut live);
        match self.format {
            Format::Json => {
                emit(&serde_json::to_string_pretty(report).unwrap_or_default());
            }
            Format::Human if self.quiet => {}
            Format::Human => {
                for n in &report.notes {
                    eprintln!("note: {n}");
                }
                emit(&summary(report));
            }
        }
    }
}

impl Progress for Printer {
    fn started(&self, id: &str, _action: &str) {
        if !self.live {
            return;
        }
        let mut live = self.inner.lock().expect("printer lock poisoned");
        live.active.push((id.to_string(), Instant::now()));
        self.clear_status(&mut live);
        self.draw_status(&mut live);
    }

    fn finished(&self, r: &ResourceReport) {
        let mut live = self.inner.lock().expect("printer lock poisoned");
        live.active.retain(|(id, _)| id != &r.id);
        self.clear_status(&mut live);
        // `-q`: only failures.
        if self.format == Format::Human && (!self.quiet || r.status == Status::Failed) {
            emit(&resource_line(r, self.width, self.style));
        }
        if self.live {
            self.draw_status(&mut live);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(duration(43), "43 ms");
        assert_eq!(duration(1240), "1.24 s");
    }
}
