//! Warm instances of one function: up to `max` processes at once, reused across requests
//! (more requests than that wait their turn), and replaced when the code changes — a request
//! that starts after a reload runs the new code, one already running finishes on the old.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::Semaphore;

use super::LocalError;
use super::instance::{Instance, Invoked, Launch, Sink};
use super::runtime_api::Invocation;

/// Who is calling, as the Runtime API passes it to the function.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
    pub trace_id: Option<String>,
}

struct Current {
    launch: Arc<Launch>,
    generation: u64,
}

/// The warm instances of one function.
pub struct Pool {
    current: Mutex<Current>,
    idle: Mutex<Vec<(u64, Instance)>>,
    slots: Semaphore,
    sink: Sink,
}

/// An X-Ray trace header for a request that brought none.
fn trace_id() -> String {
    let id = super::request_id().replace('-', "");
    format!("Root=1-{:08x}-{};Parent={};Sampled=0", super::now_ms() / 1000, &id[..24], &id[16..32])
}

impl Pool {
    /// A pool for `launch`, with up to `max` processes at once.
    pub fn new(launch: Launch, max: usize, sink: Sink) -> Pool {
        Pool {
            current: Mutex::new(Current { launch: Arc::new(launch), generation: 0 }),
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(max.max(1)),
            sink,
        }
    }

    /// What the pool starts processes with now.
    pub fn launch(&self) -> Arc<Launch> {
        self.current.lock().expect("pool poisoned").launch.clone()
    }

    /// New code or settings: a process of the new launch is started first, and only once it
    /// is ready (its handler imported, its bootstrap polling) does it take over — idle old
    /// processes are stopped, running ones once they finish. A launch that cannot start is
    /// refused with why, and the old one keeps serving.
    pub async fn replace(&self, launch: Launch) -> Result<(), String> {
        let mut fresh = Instance::spawn(&launch, self.sink.clone()).await.map_err(|e| e.to_string())?;
        if let Err(why) = fresh.warm_up().await {
            fresh.stop().await;
            return Err(why);
        }
        let generation = {
            let mut current = self.current.lock().expect("pool poisoned");
            current.launch = Arc::new(launch);
            current.generation += 1;
            current.generation
        };
        let stale = std::mem::replace(&mut *self.idle.lock().expect("pool poisoned"), vec![(generation, fresh)]);
        for (_, i) in stale {
            tokio::spawn(i.stop());
        }
        Ok(())
    }

    /// Runs one invocation on a warm process, or a new one. `on_start` gets the request id
    /// before the function runs (for the `START` line).
    pub async fn invoke(
        &self,
        event: Bytes,
        caller: &Caller,
        on_start: impl FnOnce(&str),
    ) -> Result<Invoked, LocalError> {
        let _slot = self.slots.acquire().await.expect("the pool's semaphore is never closed");
        let (launch, generation) = {
            let c = self.current.lock().expect("pool poisoned");
            (c.launch.clone(), c.generation)
        };
        let warm = {
            let mut idle = self.idle.lock().expect("pool poisoned");
            idle.iter().position(|(g, _)| *g == generation).map(|i| idle.swap_remove(i).1)
        };
        let mut instance = match warm {
            Some(i) => i,
            None => Instance::spawn(&launch, self.sink.clone()).await?,
        };
        let request_id = super::request_id();
        on_start(&request_id);
        let inv = Invocation {
            request_id,
            body: event,
            timeout: launch.timeout,
            function_arn: launch.arn.clone(),
            trace_id: caller.trace_id.clone().unwrap_or_else(trace_id),
            client_context: caller.client_context.clone(),
            cognito_identity: caller.cognito_identity.clone(),
        };
        let invoked = instance.invoke(inv).await;
        let still_current = self.current.lock().expect("pool poisoned").generation == generation;
        if instance.alive() && still_current {
            self.idle.lock().expect("pool poisoned").push((generation, instance));
        } else {
            tokio::spawn(instance.stop());
        }
        Ok(invoked)
    }

    /// Stops every idle process (the busy ones are stopped as their requests end or when the
    /// pool is dropped).
    pub async fn shutdown(&self) {
        let idle: Vec<(u64, Instance)> = std::mem::take(&mut *self.idle.lock().expect("pool poisoned"));
        for (_, i) in idle {
            i.stop().await;
        }
    }
}
