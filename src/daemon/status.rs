//! The daemon's board: per function and layer what `lamb status` shows, the CodeSha256 Lambda
//! was last seen running (the content gate), and which errors were already said (a failure
//! that persists across retries is one message, not one per retry).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use super::ipc::UnitStatus;
use super::pass::Outcome;
use super::ui::{DaemonUi, Done, Event};
use crate::push::SyncStatus;
use crate::state::StackState;

/// The key under which a pass-level error is remembered.
const PASS_KEY: &str = "<pass>";
const INFRA_SKIPPED_KEY: &str = "<infra skipped>";

#[derive(Default)]
pub struct Board {
    units: BTreeMap<String, UnitStatus>,
    /// CodeSha256 Lambda was last seen running, per id.
    last_live: HashMap<String, String>,
    /// The error last reported per id (or [`PASS_KEY`]).
    reported: HashMap<String, String>,
}

impl Board {
    /// Before the first pass: lamb's record of earlier syncs, everything pending.
    pub fn load(st: Option<&StackState>, units: BTreeSet<String>) -> Board {
        let mut board = Board::default();
        for id in units {
            let record = st.and_then(|s| s.functions.get(&id));
            board.units.insert(
                id.clone(),
                UnitStatus {
                    id,
                    last_sync: record.map(|r| r.synced_at),
                    code_sha256: record.map(|r| r.code_sha256.clone()),
                    duration_ms: record.map(|r| r.duration_ms),
                    pending: true,
                    ..Default::default()
                },
            );
        }
        board
    }

    /// The template now names `known`: new ids get a row, removed ones lose theirs.
    pub fn keep_only(&mut self, known: &BTreeSet<String>) {
        for id in known {
            self.units.entry(id.clone()).or_insert_with(|| UnitStatus { id: id.clone(), ..Default::default() });
        }
        self.units.retain(|id, _| known.contains(id));
    }

    pub fn set_pending(&mut self, id: &str) {
        if let Some(s) = self.units.get_mut(id) {
            s.pending = true;
        }
    }

    /// What Lambda was last seen running, for the content gate.
    pub fn last_live(&self) -> &HashMap<String, String> {
        &self.last_live
    }

    /// Why the last pass as a whole failed, until one succeeds.
    pub fn pass_error(&self) -> Option<&String> {
        self.reported.get(PASS_KEY)
    }

    /// The rows, with `pending` also set for the ids in `waiting`.
    pub fn rows(&self, waiting: &BTreeSet<String>) -> Vec<UnitStatus> {
        self.units.values().map(|s| UnitStatus { pending: s.pending || waiting.contains(&s.id), ..s.clone() }).collect()
    }

    /// A one-line summary of the last sync, for the ready line and systemd's status.
    pub fn last_sync(&self) -> Option<(&str, u64)> {
        self.units
            .values()
            // This daemon's syncs, and earlier ones with a duration (not a deploy's record).
            .filter(|s| s.last_sync.is_some() && s.duration_ms.is_some_and(|ms| ms > 0))
            .max_by_key(|s| s.last_sync)
            .map(|s| (s.id.as_str(), s.duration_ms.unwrap_or(0)))
    }

    /// Takes in a finished pass: updates the rows and the content gate, and says what happened
    /// (each error once until it changes).
    pub fn record(&mut self, o: &Outcome, now: Instant, ui: &DaemonUi) {
        for id in &o.unchanged {
            if let Some(s) = self.units.get_mut(id) {
                s.pending = false;
            }
        }
        match &o.result {
            Ok(Some(report)) => {
                self.reported.remove(PASS_KEY);
                for i in &report.items {
                    let entry = self
                        .units
                        .entry(i.id.clone())
                        .or_insert_with(|| UnitStatus { id: i.id.clone(), ..Default::default() });
                    entry.pending = false;
                    let latency = o.first_event.get(&i.id).map(|t| now.duration_since(*t).as_millis() as u64);
                    match i.status {
                        SyncStatus::Failed => {
                            let message = i.message.clone().unwrap_or_else(|| "failed".into());
                            entry.last_error = Some(message.clone());
                            let retry = i.transient && !o.build_failed.contains(&i.id);
                            self.report_error(&i.id, &message, retry, ui);
                        }
                        SyncStatus::Skipped => {}
                        status => {
                            if let Some(sha) = &i.code_sha256 {
                                self.last_live.insert(i.id.clone(), sha.clone());
                            }
                            entry.last_error = None;
                            let synced =
                                matches!(status, SyncStatus::Synced | SyncStatus::Published | SyncStatus::Deployed);
                            if synced {
                                entry.last_sync = Some(crate::state::now_secs());
                                entry.code_sha256 = i.code_sha256.clone();
                                entry.duration_ms = Some(i.duration_ms);
                                entry.save_to_live_ms = latency;
                            }
                            let recovered = self.reported.remove(&i.id).is_some();
                            if synced || recovered {
                                let done = Done {
                                    id: &i.id,
                                    bytes: i.bytes,
                                    code_sha256: i.code_sha256.as_deref(),
                                    duration_ms: i.duration_ms,
                                    save_to_live_ms: latency,
                                };
                                ui.emit(&Event::done(status, done));
                            }
                        }
                    }
                }
                if report.infra_skipped {
                    let reasons = report.infra_reasons.join("; ");
                    if self.reported.get(INFRA_SKIPPED_KEY) != Some(&reasons) {
                        ui.emit(&Event::InfraSkipped { reasons: &report.infra_reasons });
                        self.reported.insert(INFRA_SKIPPED_KEY.into(), reasons);
                    }
                } else if o.infra {
                    self.reported.remove(INFRA_SKIPPED_KEY);
                }
            }
            Ok(None) => {}
            Err(e) => {
                self.report_error(PASS_KEY, &e.message, e.transient, ui);
                if !e.transient {
                    for id in &o.covered {
                        if let Some(s) = self.units.get_mut(id) {
                            s.pending = false;
                            s.last_error = Some(e.message.clone());
                        }
                    }
                }
            }
        }
    }

    /// Reports an error once until it changes (a network outage is one message, not one per
    /// retry); `key` is an id or [`PASS_KEY`].
    fn report_error(&mut self, key: &str, message: &str, retry: bool, ui: &DaemonUi) {
        if self.reported.get(key).is_some_and(|m| m == message) {
            tracing::debug!(key, message, "the same error again");
            return;
        }
        self.reported.insert(key.to_string(), message.to_string());
        if key == PASS_KEY {
            ui.emit(&Event::Error { error: message, retry });
        } else {
            ui.emit(&Event::Failed { id: key, message, retry });
        }
    }
}
