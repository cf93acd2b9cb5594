//! What the daemon tells its user: one line per event on stdout, as text for a terminal or as
//! a JSON object per line for machines (`--log-format json`), and deploy progress in the log.

use std::path::Path;

use serde::Serialize;

use crate::aws::cloudformation::{Change, Event as StackEvent};
use crate::deploy::DeployUi;
use crate::push::SyncStatus;

/// A function or layer brought in line with the disk.
#[derive(Debug, Serialize)]
pub struct Done<'a> {
    pub id: &'a str,
    pub bytes: u64,
    pub code_sha256: Option<&'a str>,
    pub duration_ms: u64,
    pub save_to_live_ms: Option<u64>,
}

/// One line of the daemon's output; its JSON form is tagged by `event`.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event<'a> {
    /// The initial pass is done.
    Ready {
        summary: &'a str,
        socket: &'a Path,
    },
    /// A pass as a whole failed.
    Error {
        error: &'a str,
        retry: bool,
    },
    /// One function or layer failed.
    Failed {
        id: &'a str,
        message: &'a str,
        retry: bool,
    },
    Synced(Done<'a>),
    Published(Done<'a>),
    Deployed(Done<'a>),
    /// Recovered from a failure without a change (what Lambda runs was right all along).
    Unchanged(Done<'a>),
    /// `--code`: the template changed, and is not deployed.
    InfraSkipped {
        reasons: &'a [String],
    },
    /// The template no longer loads; the last good one stays in use.
    TemplateError {
        error: &'a str,
    },
}

impl<'a> Event<'a> {
    /// The event for an item that ended `status` (not failed or skipped).
    pub fn done(status: SyncStatus, done: Done<'a>) -> Event<'a> {
        match status {
            SyncStatus::Synced => Event::Synced(done),
            SyncStatus::Published => Event::Published(done),
            SyncStatus::Deployed => Event::Deployed(done),
            _ => Event::Unchanged(done),
        }
    }

    /// The line a person reads.
    fn text(&self) -> String {
        let next = |retry: bool| if retry { "retrying" } else { "save again or run lamb trigger to retry" };
        match self {
            Event::Ready { summary, socket } => {
                format!("{summary}; Ctrl-C to stop (control socket {})", socket.display())
            }
            Event::Error { error, retry } => format!("error: {error} (changes stay pending; {})", next(*retry)),
            Event::Failed { id, message, retry } => format!("failed    {id}: {message} ({})", next(*retry)),
            Event::Synced(d) | Event::Published(d) | Event::Deployed(d) | Event::Unchanged(d) => {
                let status = match self {
                    Event::Synced(_) => "synced",
                    Event::Published(_) => "published",
                    Event::Deployed(_) => "deployed",
                    _ => "unchanged",
                };
                let live = d.save_to_live_ms.map(|l| format!("  save→live {l} ms")).unwrap_or_default();
                format!("{status:<9} {}  {}{live}", d.id, crate::output::bytes(d.bytes))
            }
            Event::InfraSkipped { reasons } => {
                format!("note: infrastructure changes not deployed (--code): {}", reasons.join("; "))
            }
            Event::TemplateError { error } => {
                format!("error: {error}\n  (still watching with the last good template; fix it and save)")
            }
        }
    }
}

/// Prints the daemon's events, and logs deploy progress.
pub struct DaemonUi {
    pub json: bool,
}

impl DaemonUi {
    pub fn emit(&self, event: &Event<'_>) {
        if self.json {
            crate::output::emit(&serde_json::to_string(event).unwrap_or_default());
        } else {
            crate::output::emit(&event.text());
        }
    }
}

impl DeployUi for DaemonUi {
    fn step(&self, message: &str) {
        tracing::info!("{message}");
    }

    fn changes(&self, stack: &str, changes: &[Change]) {
        for c in changes {
            tracing::info!(stack, action = %c.action, resource = %c.logical_id, r#type = %c.resource_type, "change");
        }
    }

    fn event(&self, e: &StackEvent) {
        if e.status.ends_with("_FAILED") {
            tracing::warn!(resource = %e.logical_id, status = %e.status, reason = e.reason.as_deref().unwrap_or(""), "stack event");
        } else {
            tracing::info!(resource = %e.logical_id, status = %e.status, "stack event");
        }
    }

    fn confirm(&self, _question: &str) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_as_lines_and_as_tagged_json() {
        let done =
            Done { id: "Fn", bytes: 2048, code_sha256: Some("abc="), duration_ms: 12, save_to_live_ms: Some(40) };
        let e = Event::done(SyncStatus::Synced, done);
        assert_eq!(e.text(), "synced    Fn  2.0 KiB  save→live 40 ms");
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"event": "synced", "id": "Fn", "bytes": 2048, "code_sha256": "abc=", "duration_ms": 12, "save_to_live_ms": 40})
        );
        let f = Event::Failed { id: "Fn", message: "boom", retry: false };
        assert_eq!(f.text(), "failed    Fn: boom (save again or run lamb trigger to retry)");
        assert_eq!(serde_json::to_value(&f).unwrap()["event"], "failed");
        let t = Event::TemplateError { error: "bad" };
        assert_eq!(serde_json::to_value(&t).unwrap(), serde_json::json!({"event": "template_error", "error": "bad"}));
        let r = Event::InfraSkipped { reasons: &["a".into(), "b".into()] };
        assert_eq!(r.text(), "note: infrastructure changes not deployed (--code): a; b");
    }
}
