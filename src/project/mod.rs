//! The project model: which functions and layers a template declares, where their code lives on
//! disk, and how each is to be built. SAM (`AWS::Serverless::*`, with Globals) and plain
//! CloudFormation (`AWS::Lambda::*`) templates end up in the same model, and nested stacks with a
//! local template are loaded into it with their functions' ids prefixed by the stack's path.

mod duplicates;
pub mod globals;
pub mod intrinsics;
mod load;
pub mod params;
pub mod refs;
mod resource;
pub mod template;
mod unbuilt;
pub mod value;

use std::fmt;
use std::path::{Component, Path, PathBuf};

use indexmap::IndexMap;

use intrinsics::{ParamValue, Pseudo};
pub use load::load;
use template::TemplateFile;
use value::Value;

/// What can go wrong loading a project. Resource-level problems (a missing CodeUri, say) do not
/// fail the load; they are attached to the resource so the rest of the project still builds.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("{}: cannot read the template: {source}; check the path and its permissions", file.display())]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{}:{line}:{column}: {message}", file.display())]
    Syntax { file: PathBuf, line: usize, column: usize, message: String },
    #[error("{}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid { problems: Vec<Problem> },
}

impl ProjectError {
    fn invalid(file: &Path, line: Option<usize>, message: impl Into<String>) -> Self {
        ProjectError::Invalid { problems: vec![Problem { file: file.to_path_buf(), line, message: message.into() }] }
    }
}

/// One thing wrong with a template, located.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// Where a function's or layer's code comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Code {
    /// A local directory to build.
    Dir(PathBuf),
    /// A local, already packed zip file, used as is.
    Zip(PathBuf),
    /// A single local file that is not a zip (`CodeUri: src/function.js`): packed alone, at
    /// the zip's root, as `sam deploy` does for a function or layer.
    File(PathBuf),
    /// Code already in S3: nothing to build.
    S3(String),
    /// `InlineCode` / `Code.ZipFile`: lives in the template.
    Inline,
    /// `PackageType: Image`.
    Image,
    /// A local path that a build step lamb does not run makes (`target/app.jar`, `dist/`),
    /// not made yet: a warning in `validate`, an error where the code is needed. `why` names
    /// the path and the step.
    Unbuilt { path: PathBuf, why: String },
    /// The code location is wrong; the message says how to fix it.
    Invalid(String),
}

/// Instruction-set architecture of a function or layer build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Arch {
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
}

impl Arch {
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }
}

/// `Metadata` keys that steer the build.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildSpec {
    pub method: Option<String>,
    pub properties: Value,
    pub skip_build: bool,
}

/// Whether a resource came from a SAM type or a plain CloudFormation one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    Sam,
    Cfn,
}

/// A layer a function uses.
#[derive(Debug, Clone, PartialEq)]
pub enum LayerRef {
    /// A layer declared in the same stack (full id).
    Local(String),
    /// A published layer version ARN.
    Arn(String),
    /// Something only CloudFormation can resolve (e.g. an import).
    Unresolved(Value),
}

/// Fields shared by functions and layers.
#[derive(Debug, Clone)]
pub struct CodeResource {
    /// Full id: the logical id, prefixed by `Stack/` for resources in nested stacks.
    pub id: String,
    pub logical_id: String,
    pub resource_type: String,
    pub flavor: Flavor,
    /// Template file that declares it, and the line when found.
    pub template: PathBuf,
    pub line: Option<usize>,
    pub code: Code,
    pub architecture: Arch,
    pub build: BuildSpec,
    /// A problem that keeps this resource from building; the rest of the project still does.
    pub problem: Option<String>,
}

impl CodeResource {
    /// Where to point a user at: `template.yaml:12`.
    pub fn location(&self) -> String {
        match self.line {
            Some(l) => format!("{}:{l}", self.template.display()),
            None => self.template.display().to_string(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Function {
    pub res: CodeResource,
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub layers: Vec<LayerRef>,
    pub environment: IndexMap<String, Value>,
    /// `AutoPublishAlias`: a code sync also publishes a version and moves this alias to it.
    pub auto_publish_alias: Option<String>,
    /// `DeploymentPreference`: code changes must go through CloudFormation (CodeDeploy).
    pub deployment_preference: bool,
    /// `FunctionName`, when the template names the function.
    pub function_name: Option<String>,
    /// `Timeout` in seconds and `MemorySize` in MB (Globals merged); Lambda's defaults are 3
    /// and 128.
    pub timeout: Option<u64>,
    pub memory_size: Option<u64>,
}

/// A local file a resource's infrastructure is defined by (`DefinitionUri` of an Api, HttpApi
/// or StateMachine): part of the infrastructure fingerprint, watched, packaged to S3.
#[derive(Debug, Clone, PartialEq)]
pub struct DefinitionFile {
    /// Full id of the resource.
    pub id: String,
    pub logical_id: String,
    /// The stack the resource is in ("" for the root).
    pub stack: String,
    pub key: String,
    pub path: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Layer {
    pub res: CodeResource,
    pub compatible_runtimes: Vec<String>,
}

/// A function or layer seen the same way: its code, and the runtime that picks its build.
#[derive(Debug, Clone, Copy)]
pub struct Unit<'a> {
    pub res: &'a CodeResource,
    /// A function's Runtime; layers are built by their BuildMethod.
    pub runtime: Option<&'a str>,
    /// A function's Handler (esbuild takes its entry from it when told no EntryPoints).
    pub handler: Option<&'a str>,
    pub is_layer: bool,
    /// A function with layers: one of them may bring its custom runtime's `bootstrap`.
    pub has_layers: bool,
}

/// A nested stack or application.
#[derive(Debug, Clone)]
pub struct NestedStack {
    pub id: String,
    pub resource_type: String,
    /// The local template, when it is one (loaded into the project).
    pub template: Option<PathBuf>,
    /// A remote location (URL or serverless application id), not loaded.
    pub remote: Option<String>,
}

/// A template loaded into the project.
#[derive(Debug, Clone)]
pub struct Stack {
    /// "" for the root stack, `Child` or `Child/Grandchild` for nested ones.
    pub path: String,
    pub file: TemplateFile,
    pub parameters: IndexMap<String, ParamValue>,
    pub sam: bool,
    pub resource_count: usize,
}

/// Something worth telling the user that is not an error.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub resource: String,
    pub message: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.resource.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.resource, self.message)
        }
    }
}

/// Everything lamb knows about a project.
#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
    pub stacks: Vec<Stack>,
    pub functions: Vec<Function>,
    pub layers: Vec<Layer>,
    pub nested: Vec<NestedStack>,
    pub definitions: Vec<DefinitionFile>,
    pub notes: Vec<Note>,
    /// Parameters with neither a default nor an override: (stack path, name).
    pub missing_parameters: Vec<(String, String)>,
}

/// Inputs to [`load`].
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The template file (absolute).
    pub template: PathBuf,
    /// The project directory: code must live inside it (absolute, canonical).
    pub root: PathBuf,
    pub overrides: IndexMap<String, String>,
    pub pseudo: Pseudo,
}

/// The candidate closest to `wanted` by edit distance, if it is close enough to be a typo.
pub fn closest<'a>(wanted: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let wanted_lower = wanted.to_ascii_lowercase();
    candidates
        .map(|c| (edit_distance(&wanted_lower, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 8))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Removes `.` and resolves `..` lexically (the path may not exist yet).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

impl Project {
    /// The root stack.
    pub fn root_stack(&self) -> &Stack {
        self.stacks.iter().find(|s| s.path.is_empty()).expect("the root stack is always loaded")
    }

    /// All code resources, functions first, in template order.
    pub fn code_resources(&self) -> impl Iterator<Item = &CodeResource> {
        self.units().map(|u| u.res)
    }

    /// All code resources with what their build depends on, functions first, in template order.
    pub fn units(&self) -> impl Iterator<Item = Unit<'_>> {
        let functions = self.functions.iter().map(|f| Unit {
            res: &f.res,
            runtime: f.runtime.as_deref(),
            handler: f.handler.as_deref(),
            is_layer: false,
            has_layers: !f.layers.is_empty(),
        });
        functions.chain(self.layers.iter().map(|l| Unit {
            res: &l.res,
            runtime: None,
            handler: None,
            is_layer: true,
            has_layers: false,
        }))
    }

    pub fn function(&self, id: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.res.id == id)
    }

    pub fn layer(&self, id: &str) -> Option<&Layer> {
        self.layers.iter().find(|l| l.res.id == id)
    }

    /// The code directories of function `id`'s own local layers that lie inside `dir` (its
    /// code), relative to it: a function's zip never carries its layers, which Lambda mounts
    /// under /opt on their own.
    pub fn layer_dirs_under(&self, id: &str, dir: &Path) -> Vec<String> {
        let Some(f) = self.function(id) else { return Vec::new() };
        f.layers
            .iter()
            .filter_map(|l| match l {
                LayerRef::Local(layer) => self.layer(layer),
                _ => None,
            })
            .filter_map(|l| match &l.res.code {
                Code::Dir(p) => p.strip_prefix(dir).ok(),
                _ => None,
            })
            .filter(|rel| !rel.as_os_str().is_empty())
            .filter_map(|rel| rel.to_str().map(str::to_string))
            .collect()
    }

    /// The templates and definition files lying inside `dir` (code rooted at the project
    /// directory, as with no CodeUri), relative to it. They are the stack's, packaged on their
    /// own: left out of the code, a template edit is an infrastructure change only, not also a
    /// code change of every function rooted next to it. Everything else in the directory is
    /// packed, as SAM packs the whole directory (other functions' code included: SAM's
    /// `CodeUri: .` zips it all, and a function may import from a sibling directory).
    pub fn infra_files_under(&self, dir: &Path) -> Vec<String> {
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let files = self.stacks.iter().map(|s| &s.file.path).chain(self.definitions.iter().map(|d| &d.path));
        files
            .filter_map(|f| f.canonicalize().ok())
            .filter_map(|f| f.strip_prefix(&dir).ok().and_then(|r| r.to_str()).map(str::to_string))
            .filter(|rel| !rel.is_empty())
            .collect()
    }

    /// `ids` plus the local layers the functions among them use, since building a function
    /// without its layers leaves it half-built (`sam build Fn` builds them too).
    pub fn with_layers_of(&self, ids: &[String]) -> Vec<String> {
        let mut out = ids.to_vec();
        for f in self.functions.iter().filter(|f| ids.contains(&f.res.id)) {
            for l in &f.layers {
                if let LayerRef::Local(layer) = l
                    && !out.contains(layer)
                {
                    out.push(layer.clone());
                }
            }
        }
        out
    }

    /// Every parameter must have a value before the template can be deployed: lists each one
    /// missing, with how to give it.
    pub fn check_parameters(&self) -> Result<(), ProjectError> {
        if self.missing_parameters.is_empty() {
            return Ok(());
        }
        let mut problems = Vec::new();
        for stack in &self.stacks {
            let names: Vec<&str> =
                self.missing_parameters.iter().filter(|(s, _)| *s == stack.path).map(|(_, n)| n.as_str()).collect();
            if names.is_empty() {
                continue;
            }
            let how = if stack.path.is_empty() {
                let pairs: Vec<String> = names.iter().map(|p| format!("{p}=...")).collect();
                format!("pass --parameter-overrides {} or set parameter_overrides in samconfig.toml", pairs.join(" "))
            } else {
                format!("pass them in the Parameters of nested stack `{}` in its parent template", stack.path)
            };
            problems.push(Problem {
                file: stack.file.path.clone(),
                line: None,
                message: format!("parameters without a value: {}; give them a Default, or {how}", names.join(", ")),
            });
        }
        Err(ProjectError::Invalid { problems })
    }

    /// Parameters without a value that no code path uses (those that one does make that
    /// resource's problem): a build and `validate` go on, and this says once how to give them
    /// before a deploy, which needs them all.
    pub fn parameter_warning(&self) -> Option<String> {
        let used = |name: &str| {
            let needle = format!("parameter `{name}` has no value");
            self.code_resources().any(|r| r.problem.as_deref().is_some_and(|p| p.contains(&needle)))
        };
        let names: Vec<&str> = self
            .missing_parameters
            .iter()
            .filter(|(stack, name)| stack.is_empty() && !used(name))
            .map(|(_, n)| n.as_str())
            .collect();
        if names.is_empty() {
            return None;
        }
        let pairs: Vec<String> = names.iter().map(|p| format!("{p}=...")).collect();
        Some(format!(
            "parameters without a value: {}; a build does not need them, a deploy does: pass --parameter-overrides {} or set parameter_overrides in samconfig.toml",
            names.join(", "),
            pairs.join(" ")
        ))
    }

    /// Resolves a user-given id: a full id, or a logical id that is unique across stacks.
    pub fn resolve_id(&self, wanted: &str) -> Result<String, String> {
        let all: Vec<&CodeResource> = self.code_resources().collect();
        if all.iter().any(|r| r.id == wanted) {
            return Ok(wanted.to_string());
        }
        let by_logical: Vec<&&CodeResource> = all.iter().filter(|r| r.logical_id == wanted).collect();
        match by_logical.as_slice() {
            [one] => Ok(one.id.clone()),
            [] => {
                let ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
                let hint =
                    closest(wanted, ids.iter().copied()).map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default();
                Err(format!("no function or layer `{wanted}` in the template{hint}; known ids: {}", ids.join(", ")))
            }
            many => {
                let ids: Vec<&str> = many.iter().map(|r| r.id.as_str()).collect();
                Err(format!("`{wanted}` is ambiguous: it names {}; use the full id", ids.join(" and ")))
            }
        }
    }
}

#[cfg(test)]
mod tests;
