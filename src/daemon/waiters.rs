//! Clients waiting for their trigger's sync (`lamb trigger --wait`): each is answered once
//! every function it named (and the infrastructure, when it named a template or config file)
//! has been through a pass that started after the trigger came.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::sync::oneshot;

use super::ipc::{PassResult, Response};
use super::pass::Outcome;
use crate::engine::Kind;
use crate::push::{ItemReport, SyncStatus};

/// One client waiting.
pub struct Waiter {
    pub ids: BTreeSet<String>,
    /// The trigger named a template or config file: it waits for an infrastructure pass.
    pub infra: bool,
    /// The last pass started when the trigger came: only later passes can carry its change.
    pub after: u64,
    pub reply: oneshot::Sender<Response>,
    pub accepted: Vec<String>,
    items: Vec<ItemReport>,
    failed: bool,
}

impl Waiter {
    pub fn new(
        ids: BTreeSet<String>,
        infra: bool,
        after: u64,
        reply: oneshot::Sender<Response>,
        accepted: Vec<String>,
    ) -> Waiter {
        Waiter { ids, infra, after, reply, accepted, items: Vec::new(), failed: false }
    }

    fn answer(self, error: Option<String>, elapsed: Duration) {
        let response = Response {
            ok: !self.failed && error.is_none(),
            error,
            accepted: self.accepted,
            result: Some(PassResult { items: self.items, duration_ms: elapsed.as_millis() as u64 }),
            ..Response::ok()
        };
        let _ = self.reply.send(response);
    }
}

/// Everyone waiting.
#[derive(Default)]
pub struct Waiters(Vec<Waiter>);

impl Waiters {
    pub fn push(&mut self, w: Waiter) {
        self.0.push(w);
    }

    /// Answers the clients waiting for what `o` carried: passes started before a trigger
    /// came cannot carry its change, so they answer nobody who triggered after them.
    /// `kind` tells a layer from a function.
    pub fn pass_done(&mut self, o: &Outcome, kind: &dyn Fn(&str) -> Kind) {
        let items = match &o.result {
            Ok(Some(report)) => report.items.as_slice(),
            _ => &[],
        };
        let mut still = Vec::new();
        for mut w in std::mem::take(&mut self.0) {
            let touched = w.ids.iter().any(|id| o.covered.contains(id)) || (w.infra && o.infra);
            if o.seq <= w.after || !touched {
                still.push(w);
                continue;
            }
            let everything = w.infra && o.infra;
            let mine: Vec<ItemReport> = items.iter().filter(|i| everything || w.ids.contains(&i.id)).cloned().collect();
            w.failed |= mine.iter().any(|i| i.status == SyncStatus::Failed);
            w.items.extend(mine);
            for id in o.unchanged.iter().filter(|id| w.ids.contains(*id)) {
                w.items.push(ItemReport::new(id, kind(id), SyncStatus::Unchanged));
            }
            w.ids.retain(|id| !o.covered.contains(id));
            if o.infra {
                w.infra = false;
            }
            match &o.result {
                Err(e) => w.answer(Some(e.message.clone()), o.elapsed),
                Ok(_) if w.ids.is_empty() && !w.infra => w.answer(None, o.elapsed),
                Ok(_) => still.push(w),
            }
        }
        self.0 = still;
    }

    /// The template did not load: clients waiting for an infrastructure pass get that error.
    pub fn infra_failed(&mut self, error: &str) {
        let (infra, rest): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.0).into_iter().partition(|w| w.infra);
        self.0 = rest;
        for w in infra {
            w.answer(Some(error.to_string()), Duration::ZERO);
        }
    }

    /// The daemon stops: everyone still waiting is told.
    pub fn stopping(&mut self) {
        for w in self.0.drain(..) {
            w.answer(Some("the daemon stopped before this change was synced".into()), Duration::ZERO);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::daemon::pass::PassError;
    use crate::sync::SyncReport;

    fn outcome(seq: u64, ids: &[&str], infra: bool, result: Result<Option<SyncReport>, PassError>) -> Outcome {
        let ids: BTreeSet<String> = ids.iter().map(|s| s.to_string()).collect();
        Outcome {
            seq,
            covered: ids,
            infra,
            first_event: HashMap::new(),
            unchanged: Vec::new(),
            result,
            build_failed: BTreeSet::new(),
            elapsed: Duration::from_millis(5),
        }
    }

    fn report(items: Vec<ItemReport>) -> SyncReport {
        SyncReport {
            stack: "s".into(),
            mode: "code",
            infra_reasons: Vec::new(),
            infra_skipped: false,
            deploy: None,
            items,
            duration_ms: 1,
            known: None,
            used_known: false,
        }
    }

    fn function(_: &str) -> Kind {
        Kind::Function
    }

    #[test]
    fn a_waiter_is_answered_by_the_first_later_pass_that_carries_all_its_ids() {
        let mut ws = Waiters::default();
        let (tx, mut rx) = oneshot::channel();
        let ids = ["A", "B"].iter().map(|s| s.to_string()).collect();
        ws.push(Waiter::new(ids, false, 3, tx, vec!["A".into(), "B".into()]));
        // Pass 3 started before the trigger: it cannot carry the change.
        ws.pass_done(&outcome(3, &["A", "B"], false, Ok(None)), &function);
        assert!(rx.try_recv().is_err());
        let synced = ItemReport::new("A", Kind::Function, SyncStatus::Synced);
        ws.pass_done(&outcome(4, &["A"], false, Ok(Some(report(vec![synced])))), &function);
        assert!(rx.try_recv().is_err(), "B is still to come");
        let mut o = outcome(5, &["B"], false, Ok(None));
        o.unchanged = vec!["B".into()];
        ws.pass_done(&o, &function);
        let answer = rx.try_recv().expect("answered");
        assert!(answer.ok, "{answer:?}");
        let items: Vec<(String, SyncStatus)> =
            answer.result.unwrap().items.into_iter().map(|i| (i.id, i.status)).collect();
        assert_eq!(items, [("A".into(), SyncStatus::Synced), ("B".into(), SyncStatus::Unchanged)]);
    }

    #[test]
    fn a_failed_pass_or_template_answers_with_its_error() {
        let mut ws = Waiters::default();
        let (tx, mut rx) = oneshot::channel();
        ws.push(Waiter::new(["A".to_string()].into(), false, 0, tx, Vec::new()));
        let (itx, mut irx) = oneshot::channel();
        ws.push(Waiter::new(BTreeSet::new(), true, 0, itx, Vec::new()));
        ws.infra_failed("template.yaml:3: bad");
        let infra = irx.try_recv().unwrap();
        assert_eq!((infra.ok, infra.error.as_deref()), (false, Some("template.yaml:3: bad")));
        assert!(rx.try_recv().is_err(), "a code waiter does not wait for the template");
        let err = PassError { message: "throttled".into(), transient: true };
        ws.pass_done(&outcome(1, &["A"], false, Err(err)), &function);
        let a = rx.try_recv().unwrap();
        assert_eq!((a.ok, a.error.as_deref()), (false, Some("throttled")));
    }
}
