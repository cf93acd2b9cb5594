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
    /// A started interpreter waiting to take the next reload over (see [`Instance::spare`]);
    /// kept once the function has been reloaded, for the reload after.
    spare: tokio::sync::Mutex<Option<Instance>>,
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
            spare: tokio::sync::Mutex::new(None),
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
    ///
    /// The new process is the spare started after the last reload when it fits the launch,
    /// else a new one; either way a spare for the next reload is started afterwards.
    pub async fn replace(&self, launch: Launch) -> Result<(), String> {
        let mut spare = self.spare.lock().await;
        let mut taken = spare.take();
        if let Some(unfit) = taken.take_if(|s| !spare_fits(s.launch(), &launch)) {
            unfit.stop().await;
        }
        let fresh = match taken {
            // A failure to start here is the new code's own (a syntax error): a new process
            // would fail the same way.
            Some(mut s) => match s.take_over(&launch).await {
                Ok(()) => ready(s).await,
                Err(_) => {
                    s.stop().await;
                    self.start(&launch).await
                }
            },
            None => self.start(&launch).await,
        };
        if launch.spare {
            *spare = Instance::spare(&launch, self.sink.clone()).await.ok();
        }
        drop(spare);
        let fresh = fresh?;
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

    /// A new process of `launch`, ready for work.
    async fn start(&self, launch: &Launch) -> Result<Instance, String> {
        ready(Instance::spawn(launch, self.sink.clone()).await.map_err(|e| e.to_string())?).await
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
        if let Some(spare) = self.spare.lock().await.take() {
            spare.stop().await;
        }
    }
}

/// `instance` once it is ready for work, or why it will not be (it is stopped then).
async fn ready(mut instance: Instance) -> Result<Instance, String> {
    match instance.warm_up().await {
        Ok(()) => Ok(instance),
        Err(why) => {
            instance.stop().await;
            Err(why)
        }
    }
}

/// Whether a spare started for `spare` can take `new` over: the same interpreter and client,
/// an environment that differs only in where the code is (the spare's task root read as the
/// new one; `PYTHONPATH` the client sets itself), and no `lib/` in either task root, since the
/// dynamic loader reads `LD_LIBRARY_PATH` only when a process starts.
fn spare_fits(spare: &Launch, new: &Launch) -> bool {
    if !(spare.spare && new.spare && spare.program == new.program && spare.args == new.args) {
        return false;
    }
    if spare.task_root.join("lib").exists() || new.task_root.join("lib").exists() {
        return false;
    }
    let (old_root, new_root) = (spare.task_root.to_string_lossy(), new.task_root.to_string_lossy());
    let moved = |env: &[(String, String)], from: Option<(&str, &str)>| {
        env.iter()
            .filter(|(k, _)| k != "PYTHONPATH")
            .map(|(k, v)| (k.clone(), from.map_or_else(|| v.clone(), |(a, b)| v.replace(a, b))))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    moved(&spare.env, Some((&old_root, &new_root))) == moved(&new.env, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::Duration;

    fn launch(root: &str, env: &[(&str, &str)]) -> Launch {
        Launch {
            id: "Fn".into(),
            program: PathBuf::from("/usr/bin/python3"),
            args: vec!["-u".into(), "/x/lamb_runtime.py".into()],
            spare: true,
            task_root: PathBuf::from(root),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            timeout: Duration::from_secs(3),
            memory_mb: 128,
            arn: "arn:aws:lambda:us-east-1:123456789012:function:Fn".into(),
        }
    }

    #[test]
    fn a_spare_takes_over_new_code_of_the_same_function() {
        let old = launch("/c/aaa", &[("LAMBDA_TASK_ROOT", "/c/aaa"), ("PYTHONPATH", "/c/aaa"), ("A", "1")]);
        let new = launch("/c/bbb", &[("LAMBDA_TASK_ROOT", "/c/bbb"), ("PYTHONPATH", "/c/bbb:/l/python"), ("A", "1")]);
        assert!(spare_fits(&old, &new));
    }

    #[test]
    fn a_spare_does_not_take_over_other_settings_or_interpreters() {
        let old = launch("/c/aaa", &[("LAMBDA_TASK_ROOT", "/c/aaa"), ("A", "1")]);
        let changed = launch("/c/bbb", &[("LAMBDA_TASK_ROOT", "/c/bbb"), ("A", "2")]);
        assert!(!spare_fits(&old, &changed), "an environment variable changed");
        let added = launch("/c/bbb", &[("LAMBDA_TASK_ROOT", "/c/bbb"), ("A", "1"), ("B", "1")]);
        assert!(!spare_fits(&old, &added), "a variable was added");
        let mut other = launch("/c/bbb", &[("LAMBDA_TASK_ROOT", "/c/bbb"), ("A", "1")]);
        other.program = PathBuf::from("/usr/bin/python3.12");
        assert!(!spare_fits(&old, &other), "another interpreter");
        let mut binary = launch("/c/bbb", &[("LAMBDA_TASK_ROOT", "/c/bbb"), ("A", "1")]);
        binary.spare = false;
        assert!(!spare_fits(&old, &binary), "a runtime without a spare mode");
    }

    #[test]
    fn code_with_native_libraries_needs_a_new_process() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(b.join("lib")).unwrap();
        std::fs::create_dir_all(&a).unwrap();
        let old = launch(a.to_str().unwrap(), &[]);
        let new = launch(b.to_str().unwrap(), &[]);
        assert!(!spare_fits(&old, &new));
        std::fs::remove_dir(b.join("lib")).unwrap();
        assert!(spare_fits(&old, &new));
    }
}
