//! The functions a local server runs: one pool of warm processes per function, prepared from
//! the project's build, and updated in place when a rebuild changes what a function runs. A
//! function that cannot run (its build failed, no interpreter) is kept with the reason, so a
//! request to it says why; after a failed rebuild the last good code keeps serving.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use super::env::EnvContext;
use super::instance::Sink;
use super::pool::Pool;
use super::prepare::{Builds, prepare};
use crate::project::{LayerRef, Project};

/// What every function's pool is made with.
#[derive(Clone)]
pub struct Settings {
    pub ctx: EnvContext,
    pub lamb_dir: PathBuf,
    /// Processes per function at most.
    pub warm: usize,
    pub sink: Sink,
}

struct Inner {
    project: Arc<Project>,
    pools: HashMap<String, Arc<Pool>>,
    /// Why a function cannot run, for those that cannot.
    broken: HashMap<String, String>,
}

/// The local functions of a project.
pub struct Functions {
    inner: RwLock<Inner>,
    settings: Settings,
}

/// What an update did, for the server's log.
#[derive(Debug, Default, PartialEq)]
pub struct Updated {
    /// Functions that run new code or settings from now on.
    pub reloaded: Vec<String>,
    /// Functions that cannot run, with why (the last good code keeps serving when there is one).
    pub failed: Vec<(String, String)>,
    pub warnings: Vec<String>,
}

impl Functions {
    /// Prepares every function of `project` from `builds`.
    pub async fn new(project: Arc<Project>, builds: &Builds, settings: Settings) -> (Functions, Updated) {
        let f = Functions {
            inner: RwLock::new(Inner { project: project.clone(), pools: HashMap::new(), broken: HashMap::new() }),
            settings,
        };
        let updated = f.update(project, builds, None).await;
        (f, updated)
    }

    pub fn project(&self) -> Arc<Project> {
        self.inner.read().expect("functions poisoned").project.clone()
    }

    /// The pool of function `id`, or why it cannot run.
    pub fn pool(&self, id: &str) -> Result<Arc<Pool>, String> {
        let inner = self.inner.read().expect("functions poisoned");
        if let Some(p) = inner.pools.get(id) {
            return Ok(p.clone());
        }
        Err(inner.broken.get(id).cloned().unwrap_or_else(|| format!("no function {id} in the template")))
    }

    /// The function a caller names: its logical id, full id, `FunctionName`, or an ARN ending
    /// in one of those (`...:function:NAME`, with or without `:$LATEST`).
    pub fn find(&self, name: &str) -> Option<String> {
        let name = name.strip_suffix(":$LATEST").unwrap_or(name);
        let name = name.rsplit_once(":function:").map_or(name, |(_, n)| n);
        let project = self.project();
        project
            .functions
            .iter()
            .find(|f| f.res.id == name || f.res.logical_id == name || f.function_name.as_deref() == Some(name))
            .map(|f| f.res.id.clone())
    }

    /// Takes in `project` built into `builds`: the functions among `only` (all when `None`)
    /// whose process would start differently get it, once a process of the new code has
    /// started; the others, and those whose new code does not start, keep running as they are.
    pub async fn update(&self, project: Arc<Project>, builds: &Builds, only: Option<&BTreeSet<String>>) -> Updated {
        let mut updated = Updated::default();
        let mut replace = Vec::new();
        {
            let mut inner = self.inner.write().expect("functions poisoned");
            let known: BTreeSet<&str> = project.functions.iter().map(|f| f.res.id.as_str()).collect();
            inner.pools.retain(|id, _| known.contains(id.as_str()));
            inner.broken.retain(|id, _| known.contains(id.as_str()));
            for f in &project.functions {
                let id = &f.res.id;
                if only.is_some_and(|o| !o.contains(id)) {
                    continue;
                }
                match prepare(&project, id, builds, &self.settings.ctx, &self.settings.lamb_dir) {
                    Ok(prepared) => {
                        updated.warnings.extend(prepared.warnings);
                        inner.broken.remove(id);
                        match inner.pools.get(id) {
                            Some(pool) if *pool.launch() == prepared.launch => {}
                            Some(pool) => replace.push((id.clone(), pool.clone(), prepared.launch)),
                            None => {
                                let pool = Pool::new(prepared.launch, self.settings.warm, self.settings.sink.clone());
                                inner.pools.insert(id.clone(), Arc::new(pool));
                            }
                        }
                    }
                    Err(e) => {
                        updated.failed.push((id.clone(), e.to_string()));
                        if !inner.pools.contains_key(id) {
                            inner.broken.insert(id.clone(), e.to_string());
                        }
                    }
                }
            }
            inner.project = project;
        }
        for (id, pool, launch) in replace {
            match pool.replace(launch).await {
                Ok(()) => updated.reloaded.push(id),
                Err(why) => updated.failed.push((id, why)),
            }
        }
        updated
    }

    /// The functions a change to the units `changed` (functions and layers) affects.
    pub fn affected(&self, changed: &BTreeSet<String>) -> BTreeSet<String> {
        let project = self.project();
        project
            .functions
            .iter()
            .filter(|f| {
                changed.contains(&f.res.id)
                    || f.layers.iter().any(|l| matches!(l, LayerRef::Local(id) if changed.contains(id)))
            })
            .map(|f| f.res.id.clone())
            .collect()
    }

    /// Stops every idle process.
    pub async fn shutdown(&self) {
        let pools: Vec<Arc<Pool>> = self.inner.read().expect("functions poisoned").pools.values().cloned().collect();
        for p in pools {
            p.shutdown().await;
        }
    }
}
