//! When the daemon syncs what: a pure function of what happened (file events, triggers,
//! finished passes) and the clock it is handed. No I/O, no clock of its own, no randomness of
//! its own, so every decision is a unit test.
//!
//! The rules: each target (a function, a layer, or the infrastructure) waits for a quiet
//! window after its last event, so a burst of writes is one sync; at most one pass runs at a
//! time, and whatever falls due meanwhile waits for its end and goes in the next one; a pass
//! that failed for AWS's reasons (network, throttling, expired credentials) is tried again
//! after a jittered backoff that doubles per consecutive failure; a failure that is the user's
//! (a build error, a bad template) waits for their next save.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use crate::watch::{Debouncer, Target};

/// Backoff for retrying a target AWS failed: doubles from the first to the last.
pub const RETRY_FIRST: Duration = Duration::from_secs(1);
pub const RETRY_MAX: Duration = Duration::from_secs(30);

/// The targets that fell due together, before they become a numbered pass.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Due {
    pub ids: BTreeSet<String>,
    pub infra: bool,
    /// When the first event behind each id arrived (save-to-live times start there).
    pub first_event: HashMap<String, Instant>,
}

/// A pass the scheduler started.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// Passes are numbered from 1 in the order they start.
    pub seq: u64,
    pub ids: BTreeSet<String>,
    pub infra: bool,
    pub first_event: HashMap<String, Instant>,
}

/// How one function or layer came out of a pass, as far as scheduling cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemOutcome {
    pub id: String,
    pub result: ItemResult,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemResult {
    /// Synced, deployed, published or unchanged: in line with the disk.
    Done,
    /// Not attempted (not built, or left to CloudFormation): nothing to retry or clear.
    Skipped,
    /// Failed: `transient` when it may succeed later with nothing saved (AWS's trouble);
    /// `build_failed` when its build failed (the user's to fix, whatever the push said).
    Failed { transient: bool, build_failed: bool },
}

/// How a pass ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassResult {
    /// Nothing needed syncing (every build matched what Lambda runs, or nothing was wanted).
    Nothing,
    /// The pass ran: how each item came out.
    Items(Vec<ItemOutcome>),
    /// The pass as a whole failed; `transient` as for items.
    Failed { transient: bool },
}

/// What the scheduler knows: what is waiting, what runs, and what keeps failing.
#[derive(Debug, Default)]
pub struct Scheduler {
    waiting: Debouncer,
    /// Consecutive transient failures per target, for backoff.
    failures: HashMap<Target, u32>,
    /// The number of the last pass started.
    started: u64,
    running: Option<Planned>,
}

impl Scheduler {
    /// A file of `target` changed: it is due after `quiet` with no further change.
    pub fn changed(&mut self, target: Target, now: Instant, quiet: Duration) {
        self.waiting.event(target, now, quiet);
    }

    /// `target` is to sync at once (an editor's trigger, a reload).
    pub fn triggered(&mut self, target: Target, now: Instant) {
        self.waiting.now(target, now);
    }

    /// When the loop should wake up to start a pass: the earliest deadline, but only while
    /// no pass runs (a target that falls due during a pass waits for its end, and a deadline
    /// already past must not wake the loop over and over meanwhile).
    pub fn wake_at(&self) -> Option<Instant> {
        if self.running.is_some() { None } else { self.waiting.next() }
    }

    /// Takes what is due at `now`, unless a pass runs or nothing is due.
    pub fn due(&mut self, now: Instant) -> Option<Due> {
        if self.running.is_some() {
            return None;
        }
        let due = self.waiting.due(now);
        if due.is_empty() {
            return None;
        }
        let mut out = Due::default();
        for (t, first) in due {
            match t {
                Target::Unit(id) => {
                    out.first_event.insert(id.clone(), first);
                    out.ids.insert(id);
                }
                Target::Infra => out.infra = true,
            }
        }
        Some(out)
    }

    /// Starts a pass for `due` (which the caller may have trimmed, e.g. an infrastructure
    /// change whose template does not load): numbered, and marked running. Nothing to do
    /// starts nothing.
    pub fn start(&mut self, due: Due) -> Option<Planned> {
        if due.ids.is_empty() && !due.infra {
            return None;
        }
        self.started += 1;
        let planned = Planned { seq: self.started, ids: due.ids, infra: due.infra, first_event: due.first_event };
        self.running = Some(planned.clone());
        Some(planned)
    }

    /// The pass in flight.
    pub fn running(&self) -> Option<&Planned> {
        self.running.as_ref()
    }

    /// The number of the last pass started (0 before the first).
    pub fn last_started(&self) -> u64 {
        self.started
    }

    /// Targets waiting for their quiet window or a retry.
    pub fn pending(&self) -> BTreeSet<Target> {
        self.waiting.pending()
    }

    /// Takes in pass `seq`'s end: what AWS failed is requeued after a backoff (each retry's
    /// jitter from `random`), what succeeded or failed for the user's reasons has its failure
    /// count cleared. Returns the targets requeued.
    pub fn finished(
        &mut self,
        seq: u64,
        result: &PassResult,
        now: Instant,
        random: &mut dyn FnMut() -> u64,
    ) -> Vec<Target> {
        let Some(pass) = self.running.take_if(|p| p.seq == seq) else {
            return Vec::new();
        };
        let mut requeued = Vec::new();
        match result {
            PassResult::Nothing => {}
            PassResult::Items(items) => {
                if pass.infra {
                    self.failures.remove(&Target::Infra);
                }
                for item in items {
                    let target = Target::Unit(item.id.clone());
                    match item.result {
                        ItemResult::Failed { transient: true, build_failed: false } => {
                            self.requeue(&target, now, random);
                            requeued.push(target);
                        }
                        ItemResult::Failed { .. } | ItemResult::Done => {
                            self.failures.remove(&target);
                        }
                        ItemResult::Skipped => {}
                    }
                }
            }
            PassResult::Failed { transient: true } => {
                let targets = pass.ids.iter().map(|id| Target::Unit(id.clone()));
                for target in targets.chain(pass.infra.then_some(Target::Infra)) {
                    self.requeue(&target, now, random);
                    requeued.push(target);
                }
            }
            PassResult::Failed { transient: false } => {}
        }
        requeued
    }

    /// The functions and layers the template names now: anything waiting or failing for one
    /// that is gone is dropped. Returns the ids dropped.
    pub fn keep_only(&mut self, known: &BTreeSet<String>) -> Vec<String> {
        let gone = |t: &Target| matches!(t, Target::Unit(id) if !known.contains(id));
        let mut dropped: Vec<String> = Vec::new();
        for t in self.waiting.pending().iter().filter(|t| gone(t)) {
            self.waiting.forget(t);
            if let Target::Unit(id) = t {
                dropped.push(id.clone());
            }
        }
        self.failures.retain(|t, _| !gone(t));
        dropped
    }

    /// How long to wait before retrying `target` after its `n`th consecutive failure: the
    /// backoff doubles from [`RETRY_FIRST`] to [`RETRY_MAX`]; jitter of up to a quarter of it
    /// (at least 250 ms of range) keeps targets that failed together from retrying in lockstep.
    pub fn backoff(n: u32, random: u64) -> Duration {
        let backoff = RETRY_FIRST.saturating_mul(2u32.saturating_pow(n.saturating_sub(1).min(16))).min(RETRY_MAX);
        let span = 250 + backoff.as_millis() as u64 / 4;
        backoff + Duration::from_millis(random % span)
    }

    fn requeue(&mut self, target: &Target, now: Instant, random: &mut dyn FnMut() -> u64) {
        let n = self.failures.entry(target.clone()).or_insert(0);
        *n = n.saturating_add(1);
        let wait = Self::backoff(*n, random());
        self.waiting.event(target.clone(), now, wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUIET: Duration = Duration::from_millis(20);

    fn unit(id: &str) -> Target {
        Target::Unit(id.into())
    }

    fn ids(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn no_jitter() -> u64 {
        0
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn failed(id: &str, transient: bool, build_failed: bool) -> ItemOutcome {
        ItemOutcome { id: id.into(), result: ItemResult::Failed { transient, build_failed } }
    }

    fn done(id: &str) -> ItemOutcome {
        ItemOutcome { id: id.into(), result: ItemResult::Done }
    }

    /// Starts whatever is due at `now`.
    fn start(s: &mut Scheduler, now: Instant) -> Option<Planned> {
        s.due(now).and_then(|d| s.start(d))
    }

    /// Starts whatever is due when the loop would next wake up.
    fn start_at_wake(s: &mut Scheduler) -> Option<Planned> {
        let wake = s.wake_at()?;
        start(s, wake)
    }

    #[test]
    fn a_burst_of_events_is_one_pass_after_the_quiet_window() {
        let mut s = Scheduler::default();
        let t0 = Instant::now();
        for i in 0..100 {
            s.changed(unit("A"), t0 + ms(i), QUIET);
        }
        assert!(start(&mut s, t0 + ms(110)).is_none(), "still inside the quiet window of the last event");
        assert_eq!(s.wake_at(), Some(t0 + ms(119)));
        let p = start(&mut s, t0 + ms(119)).expect("due");
        assert_eq!((p.seq, p.ids, p.infra), (1, ids(&["A"]), false));
        assert_eq!(p.first_event.get("A"), Some(&t0), "save-to-live counts from the first event of the burst");
    }

    #[test]
    fn targets_due_together_share_one_pass() {
        let mut s = Scheduler::default();
        let t0 = Instant::now();
        s.changed(unit("A"), t0, QUIET);
        s.changed(unit("B"), t0 + ms(5), QUIET);
        s.changed(Target::Infra, t0 + ms(5), QUIET);
        let p = start(&mut s, t0 + ms(30)).unwrap();
        assert_eq!((p.ids, p.infra), (ids(&["A", "B"]), true));
        assert!(s.pending().is_empty());
    }

    #[test]
    fn a_change_during_a_pass_waits_for_its_end_and_gets_the_next_pass() {
        let mut s = Scheduler::default();
        let t0 = Instant::now();
        s.changed(unit("A"), t0, QUIET);
        let first = start(&mut s, t0 + ms(20)).unwrap();
        s.changed(unit("A"), t0 + ms(30), QUIET);
        s.triggered(unit("B"), t0 + ms(31));
        assert_eq!(s.wake_at(), None, "nothing wakes the loop while a pass runs");
        assert!(start(&mut s, t0 + ms(100)).is_none(), "one pass at a time");
        assert_eq!(s.pending(), [unit("A"), unit("B")].into_iter().collect());
        s.finished(first.seq, &PassResult::Items(vec![done("A")]), t0 + ms(200), &mut no_jitter);
        let second = start(&mut s, t0 + ms(200)).expect("the change made during the pass");
        assert_eq!((second.seq, second.ids), (2, ids(&["A", "B"])));
    }

    #[test]
    fn an_editor_trigger_is_due_at_once_and_cuts_a_quiet_window_short() {
        let mut s = Scheduler::default();
        let t0 = Instant::now();
        s.changed(unit("A"), t0, Duration::from_secs(10));
        s.triggered(unit("A"), t0 + ms(1));
        let p = start(&mut s, t0 + ms(1)).unwrap();
        assert_eq!(p.ids, ids(&["A"]));
        assert_eq!(p.first_event.get("A"), Some(&t0));
    }

    #[test]
    fn infrastructure_and_code_are_told_apart() {
        let mut s = Scheduler::default();
        let t0 = Instant::now();
        s.changed(Target::Infra, t0, QUIET);
        let p = start(&mut s, t0 + ms(20)).unwrap();
        assert!(p.infra && p.ids.is_empty(), "{p:?}");
        s.finished(p.seq, &PassResult::Items(vec![]), t0 + ms(30), &mut no_jitter);
        s.changed(unit("A"), t0 + ms(40), QUIET);
        let p = start(&mut s, t0 + ms(60)).unwrap();
        assert!(!p.infra && p.ids == ids(&["A"]), "{p:?}");
    }

    #[test]
    fn a_due_pass_trimmed_to_nothing_starts_nothing() {
        let mut s = Scheduler::default();
        let t0 = Instant::now();
        s.changed(Target::Infra, t0, QUIET);
        let mut due = s.due(t0 + ms(20)).unwrap();
        due.infra = false; // the template no longer loads
        assert!(s.start(due).is_none());
        assert_eq!(s.last_started(), 0);
        assert!(s.running().is_none(), "nothing runs, so the next change can start at once");
    }

    #[test]
    fn aws_failures_retry_with_a_doubling_jittered_backoff() {
        let mut s = Scheduler::default();
        let t0 = Instant::now();
        s.changed(unit("A"), t0, QUIET);
        let mut now = t0 + ms(20);
        let mut waits = Vec::new();
        for _ in 0..7 {
            let p = start(&mut s, now).expect("retried");
            let requeued = s.finished(p.seq, &PassResult::Items(vec![failed("A", true, false)]), now, &mut no_jitter);
            assert_eq!(requeued, [unit("A")]);
            let next = s.wake_at().unwrap();
            waits.push(next - now);
            now = next;
        }
        let secs: Vec<u64> = waits.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30], "doubling from 1 s, capped at 30 s");
        // Jitter: random, up to a quarter of the backoff with at least 250 ms of range.
        assert_eq!(Scheduler::backoff(1, 249), ms(1249));
        assert_eq!(Scheduler::backoff(1, 500), ms(1000), "500 % (250 + 250) = 0");
        assert_eq!(Scheduler::backoff(6, 7_749), ms(30_000 + 7_749));
        assert_eq!(Scheduler::backoff(6, 7_750), ms(30_000), "the range for 30 s is 250 + 7500 ms");
    }

    #[test]
    fn success_resets_the_backoff() {
        let mut s = Scheduler::default();
        let t0 = Instant::now();
        s.changed(unit("A"), t0, QUIET);
        let p = start(&mut s, t0 + ms(20)).unwrap();
        s.finished(p.seq, &PassResult::Items(vec![failed("A", true, false)]), t0 + ms(20), &mut no_jitter);
        let p = start_at_wake(&mut s).unwrap();
        let t1 = t0 + Duration::from_secs(2);
        s.finished(p.seq, &PassResult::Items(vec![failed("A", true, false)]), t1, &mut no_jitter);
        assert_eq!(s.wake_at().unwrap() - t1, Duration::from_secs(2), "second failure: 2 s");
        let p = start_at_wake(&mut s).unwrap();
        s.finished(p.seq, &PassResult::Items(vec![done("A")]), t1 + ms(2100), &mut no_jitter);
        s.changed(unit("A"), t1 + ms(3000), QUIET);
        let p = start(&mut s, t1 + ms(3020)).unwrap();
        let t2 = t1 + ms(3020);
        s.finished(p.seq, &PassResult::Items(vec![failed("A", true, false)]), t2, &mut no_jitter);
        assert_eq!(s.wake_at().unwrap() - t2, Duration::from_secs(1), "a success started the count again");
    }

    #[test]
    fn a_build_failure_waits_for_the_next_save() {
        let mut s = Scheduler::default();
        let t0 = Instant::now();
        s.changed(unit("A"), t0, QUIET);
        let p = start(&mut s, t0 + ms(20)).unwrap();
        // Even when the push reported it as transient, a failed build is the user's to fix.
        let result = PassResult::Items(vec![failed("A", true, true), failed("B", false, false)]);
        assert!(s.finished(p.seq, &result, t0 + ms(30), &mut no_jitter).is_empty());
        assert_eq!(s.wake_at(), None, "nothing is retried");
        s.changed(unit("A"), t0 + ms(500), QUIET);
        assert_eq!(start(&mut s, t0 + ms(520)).unwrap().ids, ids(&["A"]), "the save is");
    }

    #[test]
    fn a_failed_pass_retries_everything_it_carried_only_when_aws_failed_it() {
        let mut s = Scheduler::default();
        let t0 = Instant::now();
        s.changed(unit("A"), t0, QUIET);
        s.changed(Target::Infra, t0, QUIET);
        let p = start(&mut s, t0 + ms(20)).unwrap();
        let requeued = s.finished(p.seq, &PassResult::Failed { transient: true }, t0 + ms(30), &mut no_jitter);
        assert_eq!(requeued, [unit("A"), Target::Infra]);
        let p = start_at_wake(&mut s).unwrap();
        assert!(p.infra && p.ids == ids(&["A"]));
        let t1 = t0 + Duration::from_secs(2);
        assert!(s.finished(p.seq, &PassResult::Failed { transient: false }, t1, &mut no_jitter).is_empty());
        assert!(s.pending().is_empty(), "a template the user must fix is not retried");
    }

    #[test]
    fn only_failed_items_are_retried_and_an_infra_pass_clears_infra_failures() {
        let mut s = Scheduler::default();
        let t0 = Instant::now();
        s.changed(Target::Infra, t0, QUIET);
        let p = start(&mut s, t0 + ms(20)).unwrap();
        s.finished(p.seq, &PassResult::Failed { transient: true }, t0 + ms(20), &mut no_jitter);
        let p = start_at_wake(&mut s).unwrap();
        let items =
            vec![done("A"), failed("B", true, false), ItemOutcome { id: "C".into(), result: ItemResult::Skipped }];
        let requeued = s.finished(p.seq, &PassResult::Items(items), t0 + ms(1300), &mut no_jitter);
        assert_eq!(requeued, [unit("B")]);
        // The infrastructure succeeded: its next failure starts the backoff again at 1 s.
        s.triggered(Target::Infra, t0 + Duration::from_secs(5));
        let p = start(&mut s, t0 + Duration::from_secs(5)).unwrap();
        assert!(p.infra && p.ids == ids(&["B"]), "the due retry rides along: {p:?}");
        let t1 = t0 + Duration::from_secs(6);
        s.finished(p.seq, &PassResult::Failed { transient: true }, t1, &mut no_jitter);
        assert_eq!(s.wake_at().unwrap() - t1, Duration::from_secs(1));
    }

    #[test]
    fn a_stale_or_unknown_pass_end_changes_nothing() {
        let mut s = Scheduler::default();
        let t0 = Instant::now();
        s.changed(unit("A"), t0, QUIET);
        let p = start(&mut s, t0 + ms(20)).unwrap();
        assert!(s.finished(p.seq + 1, &PassResult::Failed { transient: true }, t0, &mut no_jitter).is_empty());
        assert_eq!(s.running().map(|r| r.seq), Some(p.seq), "still running");
        s.finished(p.seq, &PassResult::Nothing, t0 + ms(30), &mut no_jitter);
        assert!(s.running().is_none() && s.pending().is_empty());
    }

    #[test]
    fn a_function_taken_out_of_the_template_is_forgotten() {
        let mut s = Scheduler::default();
        let t0 = Instant::now();
        s.changed(unit("A"), t0, QUIET);
        let p = start(&mut s, t0 + ms(20)).unwrap();
        s.finished(p.seq, &PassResult::Items(vec![failed("A", true, false)]), t0 + ms(20), &mut no_jitter);
        s.changed(unit("B"), t0 + ms(30), QUIET);
        s.changed(Target::Infra, t0 + ms(30), QUIET);
        assert_eq!(s.keep_only(&ids(&["B"])), ["A"]);
        assert_eq!(s.pending(), [unit("B"), Target::Infra].into_iter().collect(), "A's retry is gone");
        assert!(s.failures.is_empty(), "and so is its failure count");
    }
}
