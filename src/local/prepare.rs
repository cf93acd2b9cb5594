//! From a project and its build to what starts a function's process: its code and layers
//! unpacked, the program that runs it, and its environment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::LocalError;
use super::code::unpacked;
use super::env::{self, EnvContext, LOCAL_ACCOUNT};
use super::instance::Launch;
use super::runtimes::runner;
use crate::engine::BuildReport;
use crate::project::{Code, LayerRef, Project};
use crate::state::BuildState;

/// A function's or layer's built zip.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    pub zip: PathBuf,
    pub code_sha256: String,
}

/// What a build made (or why it made nothing), per id.
pub type Builds = HashMap<String, Result<Built, String>>;

/// The builds of a build pass.
pub fn from_report(report: &BuildReport) -> Builds {
    report
        .resources
        .iter()
        .map(|r| {
            let built = match &r.artifact {
                Some(a) => Ok(Built { zip: a.path.clone(), code_sha256: a.code_sha256.clone() }),
                None => Err(r.message.clone().unwrap_or_else(|| format!("{:?}", r.status).to_lowercase())),
            };
            (r.id.clone(), built)
        })
        .collect()
}

/// The last builds lamb recorded (`--no-build`).
pub fn from_record(lamb_dir: &Path) -> Builds {
    let state = BuildState::load(&lamb_dir.join("build.json")).unwrap_or_default();
    state.resources.into_iter().map(|(id, r)| (id, Ok(Built { zip: r.artifact, code_sha256: r.code_sha256 }))).collect()
}

/// A function ready to start, and what the user should be told about it.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub launch: Launch,
    pub warnings: Vec<String>,
}

/// A directory name for a CodeSha256 (base64 has `/` and `+`).
fn dir_name(code_sha256: &str) -> String {
    code_sha256.replace('/', "_").replace('+', "-").trim_end_matches('=').to_string()
}

fn code_of<'a>(builds: &'a Builds, id: &str, what: &str) -> Result<&'a Built, LocalError> {
    match builds.get(id) {
        Some(Ok(b)) => Ok(b),
        Some(Err(message)) => Err(LocalError::NotBuilt { id: id.to_string(), message: message.clone() }),
        None => Err(LocalError::NotBuilt {
            id: id.to_string(),
            message: format!("the {what} has no build yet; run `lamb build` (or leave out --no-build)"),
        }),
    }
}

/// Everything to start function `id`'s process. Code and layers are unpacked under
/// `lamb_dir/local/code`; lamb's runtime clients live in `lamb_dir/local/runtime`.
pub fn prepare(
    project: &Project,
    id: &str,
    builds: &Builds,
    ctx: &EnvContext,
    lamb_dir: &Path,
) -> Result<Prepared, LocalError> {
    let f = project.function(id).ok_or_else(|| LocalError::NotBuilt {
        id: id.to_string(),
        message: "no such function in the template".into(),
    })?;
    match &f.res.code {
        Code::Inline => {
            return Err(LocalError::NoLocalCode { id: id.into(), what: "inline code (InlineCode, ZipFile)" });
        }
        Code::Image => {
            return Err(LocalError::NoLocalCode { id: id.into(), what: "a container image (PackageType: Image)" });
        }
        Code::S3(_) => return Err(LocalError::NoLocalCode { id: id.into(), what: "its code in S3" }),
        _ => {}
    }
    let cache = lamb_dir.join("local/code");
    let built = code_of(builds, id, "function")?;
    let task_root = unpacked(&built.zip, &dir_name(&built.code_sha256), &cache)?;
    let mut warnings = Vec::new();
    let mut layers = Vec::new();
    for l in &f.layers {
        match l {
            LayerRef::Local(layer) => {
                let b = code_of(builds, layer, "layer")?;
                layers.push(unpacked(&b.zip, &dir_name(&b.code_sha256), &cache)?);
            }
            LayerRef::Arn(arn) => warnings.push(format!(
                "{id} uses the published layer {arn}; lamb runs functions with local layers only, so its content is missing here"
            )),
            LayerRef::Unresolved(_) => warnings.push(format!(
                "{id} uses a layer only CloudFormation can resolve; its content is missing here"
            )),
        }
    }
    let run =
        runner(id, f.runtime.as_deref(), f.res.architecture, &task_root, &layers, &lamb_dir.join("local/runtime"))?;
    warnings.extend(run.warnings.iter().cloned());
    let handler = f.handler.clone().unwrap_or_default();
    let mut unresolved = Vec::new();
    let mut path = ctx.clone();
    let bins: Vec<String> = layers.iter().map(|l| l.join("bin").display().to_string()).collect();
    if !bins.is_empty() {
        path.path = format!("{}:{}", bins.join(":"), ctx.path);
    }
    let environment = env::environment(f, &handler, &task_root, &path, &run.env, &mut unresolved);
    unresolved.sort();
    unresolved.dedup();
    for name in unresolved {
        warnings.push(format!(
            "{id}: an environment variable refers to resource {name}, which exists only once deployed; it is `{name}` here"
        ));
    }
    let undeclared = env::undeclared_overrides(f, &ctx.overrides);
    if !undeclared.is_empty() {
        warnings.push(format!(
            "--env-vars sets {} for {id}, which its template does not declare; lamb passes them (SAM would not)",
            undeclared.join(", ")
        ));
    }
    let name = f.function_name.clone().unwrap_or_else(|| f.res.logical_id.clone());
    Ok(Prepared {
        launch: Launch {
            id: id.to_string(),
            program: run.program,
            args: run.args,
            spare: run.spare,
            task_root,
            env: environment,
            timeout: Duration::from_secs(f.timeout.unwrap_or(env::DEFAULT_TIMEOUT_SECS)),
            memory_mb: f.memory_size.unwrap_or(env::DEFAULT_MEMORY_MB),
            arn: format!("arn:aws:lambda:{}:{LOCAL_ACCOUNT}:function:{name}", ctx.region),
        },
        warnings,
    })
}
