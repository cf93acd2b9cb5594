//! The project model: which functions and layers a template declares, where their code lives on
//! disk, and how each is to be built. SAM (`AWS::Serverless::*`, with Globals) and plain
//! CloudFormation (`AWS::Lambda::*`) templates end up in the same model, and nested stacks with a
//! local template are loaded into it with their functions' ids prefixed by the stack's path.

pub mod globals;
pub mod intrinsics;
pub mod params;
pub mod refs;
pub mod template;
pub mod value;

use std::fmt;
use std::path::{Component, Path, PathBuf};

use indexmap::{IndexMap, IndexSet};

use intrinsics::{ParamValue, Pseudo, Scope};
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
    /// Code already in S3: nothing to build.
    S3(String),
    /// `InlineCode` / `Code.ZipFile`: lives in the template.
    Inline,
    /// `PackageType: Image`.
    Image,
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

const SAM_TRANSFORM: &str = "AWS::Serverless-2016-10-31";

/// SAM resource types the translator knows.
const SAM_TYPES: &[&str] = &[
    "AWS::Serverless::Api",
    "AWS::Serverless::Application",
    "AWS::Serverless::CapacityProvider",
    "AWS::Serverless::Connector",
    "AWS::Serverless::Function",
    "AWS::Serverless::GraphQLApi",
    "AWS::Serverless::HttpApi",
    "AWS::Serverless::LayerVersion",
    "AWS::Serverless::SimpleTable",
    "AWS::Serverless::StateMachine",
    "AWS::Serverless::WebSocketApi",
];

/// Lambda resource types, checked because typos there are lamb's business.
const LAMBDA_TYPES: &[&str] = &[
    "AWS::Lambda::Alias",
    "AWS::Lambda::CapacityProvider",
    "AWS::Lambda::CodeSigningConfig",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::Lambda::EventSourceMapping",
    "AWS::Lambda::Function",
    "AWS::Lambda::LayerVersion",
    "AWS::Lambda::LayerVersionPermission",
    "AWS::Lambda::Permission",
    "AWS::Lambda::Url",
    "AWS::Lambda::Version",
];

/// Loads the template and, recursively, nested stacks with local templates.
pub fn load(opts: &LoadOptions) -> Result<Project, ProjectError> {
    let mut project = Project {
        root: opts.root.clone(),
        stacks: Vec::new(),
        functions: Vec::new(),
        layers: Vec::new(),
        nested: Vec::new(),
        definitions: Vec::new(),
        notes: Vec::new(),
        missing_parameters: Vec::new(),
    };
    let mut loading = Vec::new();
    load_stack(&mut project, opts, &opts.template, "", &opts.overrides, &IndexSet::new(), &mut loading)?;
    Ok(project)
}

fn load_stack(
    project: &mut Project,
    opts: &LoadOptions,
    path: &Path,
    stack_path: &str,
    overrides: &IndexMap<String, String>,
    unknowable: &IndexSet<String>,
    loading: &mut Vec<PathBuf>,
) -> Result<(), ProjectError> {
    let file = template::load(path)?;
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    if loading.contains(&canonical) {
        return Err(ProjectError::invalid(
            path,
            None,
            format!("nested stack `{stack_path}` includes its own parent template; break the cycle"),
        ));
    }
    loading.push(canonical);
    let doc = &file.doc;
    let mut problems = Vec::new();
    let mut problem =
        |line: Option<usize>, message: String| problems.push(Problem { file: path.to_path_buf(), line, message });

    let sam = match doc.get("Transform") {
        Some(Value::String(s)) => s == SAM_TRANSFORM,
        Some(Value::Seq(items)) => items.iter().any(|t| t.as_str() == Some(SAM_TRANSFORM)),
        _ => false,
    };

    let resources = match doc.get("Resources") {
        Some(Value::Map(m)) if !m.is_empty() => m.clone(),
        Some(Value::Map(_)) | None => {
            return Err(ProjectError::invalid(path, None, "the template has no Resources; add at least one resource"));
        }
        Some(other) => {
            return Err(ProjectError::invalid(path, None, format!("Resources must be a map, not {}", other.kind())));
        }
    };

    let decls = match params::declarations(doc.get("Parameters")) {
        Ok(d) => d,
        Err(msg) => return Err(ProjectError::invalid(path, None, msg)),
    };
    let resolved = params::resolve(&decls, overrides, unknowable);
    // Missing values only matter where they are used: a build needs the code paths, a deploy
    // needs them all (see `Project::check_parameters`).
    for name in &resolved.missing {
        project.missing_parameters.push((stack_path.to_string(), name.clone()));
    }
    for (name, value, allowed) in &resolved.disallowed {
        problem(
            None,
            format!(
                "parameter `{name}` is `{value}`, which is not one of its AllowedValues ({}); pass one of those",
                allowed.join(", ")
            ),
        );
    }
    if stack_path.is_empty() {
        for name in &resolved.unknown_overrides {
            project.notes.push(Note {
                resource: String::new(),
                message: format!(
                    "parameter override `{name}` matches no parameter in {}; it is ignored",
                    path.display()
                ),
            });
        }
    }

    let conditions = doc.get("Conditions").and_then(Value::as_map).cloned().unwrap_or_default();
    let mappings = doc.get("Mappings").and_then(Value::as_map).cloned().unwrap_or_default();
    let resource_names: IndexSet<String> = resources.keys().cloned().collect();
    let condition_names: IndexSet<String> = conditions.keys().cloned().collect();
    let names =
        refs::Names { parameters: &resolved.declared, resources: &resource_names, conditions: &condition_names, sam };
    let mut bad = Vec::new();
    for (id, r) in &resources {
        refs::check(r, &format!("Resources.{id}"), &names, &mut bad);
    }
    for (name, c) in &conditions {
        refs::check(c, &format!("Conditions.{name}"), &names, &mut bad);
    }
    if let Some(outputs) = doc.get("Outputs") {
        refs::check(outputs, "Outputs", &names, &mut bad);
    }
    for b in bad {
        let line = b.place.strip_prefix("Resources.").and_then(|id| file.line_of_resource(id));
        problem(line, format!("{}: {}", b.place, b.message));
    }

    for (id, r) in &resources {
        let line = file.line_of_resource(id);
        let Some(ty) = r.get("Type").and_then(Value::as_str) else {
            problem(line, format!("resource `{id}` has no Type; add one, e.g. `Type: AWS::Serverless::Function`"));
            continue;
        };
        if let Some(msg) = check_type(ty) {
            problem(line, format!("resource `{id}`: {msg}"));
        }
        if !sam && ty.starts_with("AWS::Serverless::") {
            problem(
                line,
                format!(
                    "resource `{id}` is `{ty}` but the template has no `Transform: {SAM_TRANSFORM}`; add the Transform line"
                ),
            );
        }
    }
    if let Some(globals) = doc.get("Globals") {
        check_globals(globals, &mut |msg| problem(None, msg));
    }

    if !problems.is_empty() {
        return Err(ProjectError::Invalid { problems });
    }

    let scope_pseudo = Pseudo {
        stack_name: if stack_path.is_empty() { opts.pseudo.stack_name.clone() } else { None },
        ..opts.pseudo.clone()
    };
    let scope = Scope::new(&resolved.values, &conditions, &mappings, &scope_pseudo).with_missing(&resolved.missing);
    let globals = doc.get("Globals");
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let prefix = if stack_path.is_empty() { String::new() } else { format!("{stack_path}/") };
    let mut nested_to_load = Vec::new();

    for (logical_id, r) in &resources {
        let ty = r.get("Type").and_then(Value::as_str).unwrap_or_default();
        let id = format!("{prefix}{logical_id}");
        if let Some(cond) = r.get("Condition").and_then(Value::as_str) {
            match scope.condition(cond) {
                Ok(Some(false)) => {
                    project.notes.push(Note {
                        resource: id,
                        message: format!("condition `{cond}` is false, so the resource is not created; skipped"),
                    });
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(ProjectError::invalid(
                        path,
                        file.line_of_resource(logical_id),
                        format!("resource `{logical_id}`: {e}"),
                    ));
                }
            }
        }
        let ctx = ResourceCtx {
            id: &id,
            logical_id,
            ty,
            resource: r,
            file: &file,
            dir: &dir,
            root: &opts.root,
            scope: &scope,
            globals,
            prefix: &prefix,
            resources: &resources,
        };
        match ty {
            "AWS::Serverless::Function" | "AWS::Lambda::Function" => project.functions.push(ctx.function()),
            "AWS::Serverless::Api" | "AWS::Serverless::HttpApi" | "AWS::Serverless::StateMachine" => {
                if let Some(def) = ctx.definition()? {
                    project.definitions.push(def);
                }
            }
            "AWS::Serverless::LayerVersion" | "AWS::Lambda::LayerVersion" => project.layers.push(ctx.layer()),
            "AWS::Serverless::Application" | "AWS::CloudFormation::Stack" => {
                let (nested, params) = ctx.nested()?;
                if let Some(t) = &nested.template {
                    nested_to_load.push((t.clone(), id.clone(), params));
                }
                project.nested.push(nested);
            }
            _ => {}
        }
    }

    project.stacks.push(Stack {
        path: stack_path.to_string(),
        file: file.clone(),
        parameters: resolved.values.clone(),
        sam,
        resource_count: resources.len(),
    });

    for (template, id, (values, unknowable)) in nested_to_load {
        load_stack(project, opts, &template, &id, &values, &unknowable, loading)?;
    }
    loading.pop();
    Ok(())
}

/// Checks a resource type's shape; `Some(message)` when it is wrong.
fn check_type(ty: &str) -> Option<String> {
    let parts: Vec<&str> = ty.split("::").collect();
    let well_formed = (parts.len() == 3 || (parts.len() == 4 && parts[3] == "MODULE"))
        && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric()))
        || (parts.len() == 2 && parts[0] == "Custom" && !parts[1].is_empty());
    if !well_formed {
        return Some(format!(
            "`{ty}` is not a resource type; types look like `AWS::Service::Resource` or `Custom::Name`"
        ));
    }
    let known: Option<&[&str]> = match ty {
        t if t.starts_with("AWS::Serverless::") => Some(SAM_TYPES),
        t if t.starts_with("AWS::Lambda::") => Some(LAMBDA_TYPES),
        _ => None,
    };
    match known {
        Some(list) if !list.contains(&ty) => {
            let close =
                closest(ty, list.iter().copied()).map(|k| format!(" (did you mean `{k}`?)")).unwrap_or_default();
            Some(format!("unknown resource type `{ty}`{close}; known types: {}", list.join(", ")))
        }
        _ => None,
    }
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

/// Reports Globals sections SAM would reject.
fn check_globals(globals: &Value, problem: &mut dyn FnMut(String)) {
    let Some(map) = globals.as_map() else {
        problem(format!("Globals must be a map of sections such as Function, not {}", globals.kind()));
        return;
    };
    for (section, v) in map {
        if !globals::SECTIONS.iter().any(|(s, _)| s == section) {
            let names: Vec<&str> = globals::SECTIONS.iter().map(|(s, _)| *s).collect();
            problem(format!("Globals section `{section}` is not supported by SAM; use one of {}", names.join(", ")));
        } else if v.as_map().is_none() {
            problem(format!("Globals.{section} must be a map of properties, not {}", v.kind()));
        }
    }
}

/// Everything needed to read one resource.
struct ResourceCtx<'a> {
    id: &'a str,
    logical_id: &'a str,
    ty: &'a str,
    resource: &'a Value,
    file: &'a TemplateFile,
    dir: &'a Path,
    root: &'a Path,
    scope: &'a Scope<'a>,
    globals: Option<&'a Value>,
    prefix: &'a str,
    resources: &'a IndexMap<String, Value>,
}

/// Collects the first problem found while reading a resource.
#[derive(Default)]
struct Problems(Option<String>);

impl Problems {
    fn add(&mut self, msg: String) {
        self.0.get_or_insert(msg);
    }
}

impl ResourceCtx<'_> {
    fn sam(&self) -> bool {
        self.ty.starts_with("AWS::Serverless::")
    }

    /// The resource's Properties with the matching Globals section merged in.
    fn properties(&self, section: &str) -> Value {
        let props = self.resource.get("Properties").cloned().unwrap_or(Value::Map(IndexMap::new()));
        if !self.sam() {
            return props;
        }
        let section = self.globals.and_then(|g| g.get(section));
        globals::apply(section, &props, self.resource.get("IgnoreGlobals"))
    }

    /// Evaluates a property to a string. A value known only at deploy time is reported.
    fn string(&self, props: &Value, key: &str, problems: &mut Problems) -> Option<String> {
        let v = props.get(key)?;
        match self.scope.eval(v) {
            Ok(None) => None,
            Ok(Some(v)) => match v.scalar_string() {
                Some(s) => Some(s),
                None => {
                    problems.add(format!(
                        "{key} is {} that lamb cannot resolve before deploy; use a plain value or a parameter",
                        describe(&v)
                    ));
                    None
                }
            },
            Err(e) => {
                problems.add(format!("{key}: {e}"));
                None
            }
        }
    }

    fn metadata(&self, problems: &mut Problems) -> BuildSpec {
        let Some(meta) = self.resource.get("Metadata") else {
            return BuildSpec::default();
        };
        let method = self.string(meta, "BuildMethod", problems);
        let properties = meta.get("BuildProperties").cloned().unwrap_or(Value::Map(IndexMap::new()));
        let properties = match self.scope.eval(&properties) {
            Ok(Some(p)) => p,
            Ok(None) => Value::Map(IndexMap::new()),
            Err(e) => {
                problems.add(format!("Metadata.BuildProperties: {e}"));
                Value::Map(IndexMap::new())
            }
        };
        let skip_build = matches!(meta.get("SkipBuild"), Some(Value::Bool(true)))
            || meta.get("SkipBuild").and_then(Value::as_str).is_some_and(|s| s.eq_ignore_ascii_case("true"));
        BuildSpec { method, properties, skip_build }
    }

    fn architecture(&self, props: &Value, key: &str, problems: &mut Problems) -> Arch {
        let Some(v) = props.get(key) else { return Arch::X86_64 };
        let v = match self.scope.eval(v) {
            Ok(Some(v)) => v,
            Ok(None) => return Arch::X86_64,
            Err(e) => {
                problems.add(format!("{key}: {e}"));
                return Arch::X86_64;
            }
        };
        let first = match &v {
            Value::Seq(items) if items.len() > 1 => {
                let all: Vec<String> = items.iter().filter_map(Value::scalar_string).collect();
                problems.add(format!(
                    "{key} has {} entries ({}) but Lambda takes one; Globals lists are added to the resource's own, so set {key} in one place only",
                    items.len(),
                    all.join(", ")
                ));
                items.first().and_then(Value::scalar_string)
            }
            Value::Seq(items) => items.first().and_then(Value::scalar_string),
            other => other.scalar_string(),
        };
        match first.as_deref() {
            None => Arch::X86_64,
            Some("x86_64") => Arch::X86_64,
            Some("arm64") => Arch::Arm64,
            Some(other) => {
                problems.add(format!("{key} has `{other}`; Lambda supports `x86_64` and `arm64`"));
                Arch::X86_64
            }
        }
    }

    /// Resolves a local path property against the template's directory and checks that it
    /// exists inside the project.
    fn resolve_local(&self, key: &str, raw: &str) -> Result<(PathBuf, std::fs::Metadata), String> {
        let joined = normalize(&self.dir.join(raw));
        let path = joined.canonicalize().unwrap_or(joined);
        if !path.starts_with(self.root) {
            return Err(format!(
                "{key} `{raw}` is outside the project directory {}; move it inside, or run lamb with --project-dir set to a directory that contains both",
                self.root.display()
            ));
        }
        match std::fs::metadata(&path) {
            Ok(m) => Ok((path, m)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(format!("{key} `{raw}` does not exist ({}); create it or fix {key}", path.display()))
            }
            Err(e) => Err(format!("{key} `{raw}` cannot be read: {e}; check its permissions")),
        }
    }

    /// Resolves a local code path (CodeUri, ContentUri, Code).
    fn local_code(&self, key: &str, raw: &str) -> Code {
        if raw.starts_with("s3://") || raw.starts_with("https://") || raw.starts_with("http://") {
            return Code::S3(raw.to_string());
        }
        match self.resolve_local(key, raw) {
            Err(msg) => Code::Invalid(msg),
            Ok((path, m)) if m.is_dir() => Code::Dir(path),
            // A jar is a zip, and Lambda takes one as a Java function's code, as SAM does.
            Ok((path, _))
                if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("zip") || e.eq_ignore_ascii_case("jar")) =>
            {
                Code::Zip(path)
            }
            Ok(_) => Code::Invalid(format!(
                "{key} `{raw}` is a file, not a directory; point {key} at the directory holding the code (or at a .zip or .jar)"
            )),
        }
    }

    /// Reads a code location written as a string path or an S3 map.
    fn code_location(&self, props: &Value, key: &str, problems: &mut Problems) -> Option<Code> {
        let raw = props.get(key)?;
        match self.scope.eval(raw) {
            Ok(None) => Some(Code::Invalid(format!(
                "{key} comes to nothing (AWS::NoValue) with these parameters and conditions; give it a path for every case"
            ))),
            Ok(Some(Value::Map(m))) if m.contains_key("Bucket") || m.contains_key("S3Bucket") => {
                let bucket =
                    m.get("Bucket").or_else(|| m.get("S3Bucket")).and_then(Value::scalar_string).unwrap_or_default();
                let key = m.get("Key").or_else(|| m.get("S3Key")).and_then(Value::scalar_string).unwrap_or_default();
                Some(Code::S3(format!("s3://{bucket}/{key}")))
            }
            Ok(Some(v)) => match v.scalar_string() {
                Some(s) => Some(self.local_code(key, &s)),
                None => {
                    problems.add(format!(
                        "{key} is {} that lamb cannot resolve before deploy; use a path or a parameter",
                        describe(&v)
                    ));
                    None
                }
            },
            Err(e) => {
                problems.add(format!("{key}: {e}"));
                None
            }
        }
    }

    fn base(&self, code: Code, architecture: Arch, build: BuildSpec, problems: Problems) -> CodeResource {
        let problem = match (&code, problems.0) {
            (_, Some(p)) => Some(p),
            (Code::Invalid(msg), None) => Some(msg.clone()),
            _ => None,
        };
        CodeResource {
            id: self.id.to_string(),
            logical_id: self.logical_id.to_string(),
            resource_type: self.ty.to_string(),
            flavor: if self.sam() { Flavor::Sam } else { Flavor::Cfn },
            template: self.file.path.clone(),
            line: self.file.line_of_resource(self.logical_id),
            code,
            architecture,
            build,
            problem,
        }
    }

    fn function(&self) -> Function {
        let props = self.properties("Function");
        let mut problems = Problems::default();
        let package_type = self.string(&props, "PackageType", &mut problems);
        let runtime = self.string(&props, "Runtime", &mut problems);
        let handler = self.string(&props, "Handler", &mut problems);
        let build = self.metadata(&mut problems);
        let architecture = self.architecture(&props, "Architectures", &mut problems);

        let code = if package_type.as_deref() == Some("Image") {
            Code::Image
        } else if self.sam() {
            match (props.get("InlineCode"), self.code_location(&props, "CodeUri", &mut problems)) {
                (Some(_), None) => Code::Inline,
                (Some(_), Some(_)) => Code::Invalid("both InlineCode and CodeUri are set; keep one".into()),
                (None, Some(code)) => code,
                (None, None) => Code::Invalid(
                    "no CodeUri; set CodeUri to the directory holding the function's code (or use InlineCode)".into(),
                ),
            }
        } else {
            match props.get("Code") {
                Some(Value::Map(m)) if m.contains_key("ZipFile") => Code::Inline,
                Some(Value::Map(m)) if m.contains_key("ImageUri") => Code::Image,
                Some(_) => self.code_location(&props, "Code", &mut problems).unwrap_or_else(|| {
                    Code::Invalid("Code resolves to nothing; set Code to a local directory or an S3 location".into())
                }),
                None => Code::Invalid("no Code; set Code to the directory holding the function's code".into()),
            }
        };

        let is_zip = !matches!(code, Code::Image);
        if is_zip && matches!(code, Code::Dir(_) | Code::Zip(_)) {
            let provided = runtime.as_deref().is_some_and(|r| r.starts_with("provided"));
            if runtime.is_none() && build.method.is_none() {
                problems.add("no Runtime; set Runtime (e.g. python3.12, nodejs20.x, provided.al2023)".into());
            } else if handler.is_none() && !provided {
                problems.add(format!(
                    "no Handler; set Handler to the entry point (e.g. `app.handler`) for runtime {}",
                    runtime.as_deref().unwrap_or("?")
                ));
            }
        }

        let layers = self.layer_refs(&props, &mut problems);
        let environment = props
            .get("Environment")
            .and_then(|e| e.get("Variables"))
            .and_then(|v| self.scope.eval(v).ok().flatten())
            .and_then(|v| v.as_map().cloned())
            .unwrap_or_default();
        let auto_publish_alias = self.string(&props, "AutoPublishAlias", &mut problems);
        let deployment_preference = props.get("DeploymentPreference").is_some_and(|v| !matches!(v, Value::Null));
        Function {
            res: self.base(code, architecture, build, problems),
            runtime,
            handler,
            layers,
            environment,
            auto_publish_alias,
            deployment_preference,
        }
    }

    fn layer_refs(&self, props: &Value, problems: &mut Problems) -> Vec<LayerRef> {
        let Some(layers) = props.get("Layers") else { return Vec::new() };
        let Some(items) = layers.as_seq() else {
            problems.add(format!("Layers must be a list, not {}", layers.kind()));
            return Vec::new();
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            // A `!Ref` to a layer in this stack names the layer, not a value to evaluate.
            if let Some(("Ref", Value::String(target))) = item.as_intrinsic()
                && self.resources.contains_key(target)
            {
                out.push(LayerRef::Local(format!("{}{target}", self.prefix)));
                continue;
            }
            match self.scope.eval(item) {
                Ok(None) => {}
                Ok(Some(Value::String(arn))) => out.push(LayerRef::Arn(arn)),
                // What a condition chose (`!If [C, !Ref Layer, !Ref AWS::NoValue]`) can be a
                // layer of this stack too.
                Ok(Some(v)) => match v.as_intrinsic() {
                    Some(("Ref", Value::String(target))) if self.resources.contains_key(target) => {
                        out.push(LayerRef::Local(format!("{}{target}", self.prefix)));
                    }
                    _ => out.push(LayerRef::Unresolved(v)),
                },
                Err(e) => problems.add(format!("Layers: {e}")),
            }
        }
        out
    }

    fn layer(&self) -> Layer {
        let props = self.properties("LayerVersion");
        let mut problems = Problems::default();
        let key = if self.sam() { "ContentUri" } else { "Content" };
        let code = self.code_location(&props, key, &mut problems).unwrap_or_else(|| {
            Code::Invalid(format!("no {key}; set {key} to the directory holding the layer's content"))
        });
        let build = self.metadata(&mut problems);
        let compatible_runtimes = props
            .get("CompatibleRuntimes")
            .and_then(|v| self.scope.eval(v).ok().flatten())
            .and_then(|v| v.as_seq().map(|s| s.iter().filter_map(Value::scalar_string).collect()))
            .unwrap_or_default();
        // A layer's build architecture: Metadata.BuildArchitecture, else the first compatible one.
        let meta = self.resource.get("Metadata").cloned().unwrap_or(Value::Null);
        let architecture = if meta.get("BuildArchitecture").is_some() {
            self.architecture(&meta, "BuildArchitecture", &mut problems)
        } else {
            // A layer may serve both architectures; SAM builds it for x86_64 unless told.
            let compatible = props
                .get("CompatibleArchitectures")
                .and_then(|v| self.scope.eval(v).ok().flatten())
                .and_then(|v| v.as_seq().map(|s| s.iter().filter_map(Value::scalar_string).collect::<Vec<_>>()))
                .unwrap_or_default();
            match compatible.first().map(String::as_str) {
                Some("arm64") if !compatible.iter().any(|a| a == "x86_64") => Arch::Arm64,
                _ => Arch::X86_64,
            }
        };
        Layer { res: self.base(code, architecture, build, problems), compatible_runtimes }
    }

    /// A local `DefinitionUri` file of an Api, HttpApi or StateMachine.
    fn definition(&self) -> Result<Option<DefinitionFile>, ProjectError> {
        let section = match self.ty {
            "AWS::Serverless::Api" => "Api",
            "AWS::Serverless::HttpApi" => "HttpApi",
            _ => "StateMachine",
        };
        let props = self.properties(section);
        let Some(raw) = props.get("DefinitionUri") else { return Ok(None) };
        let value = self.scope.eval(raw).map_err(|e| self.error(format!("DefinitionUri: {e}")))?;
        let Some(Value::String(s)) = value else { return Ok(None) };
        if s.starts_with("s3://") || s.starts_with("https://") {
            return Ok(None);
        }
        match self.resolve_local("DefinitionUri", &s) {
            Err(msg) => Err(self.error(msg)),
            Ok((p, m)) if m.is_dir() => Err(self.error(format!(
                "DefinitionUri `{s}` is a directory ({}); point it at the definition file",
                p.display()
            ))),
            Ok((path, _)) => Ok(Some(DefinitionFile {
                id: self.id.to_string(),
                logical_id: self.logical_id.to_string(),
                stack: self.prefix.trim_end_matches('/').to_string(),
                key: "DefinitionUri".into(),
                path,
            })),
        }
    }

    /// Reads a nested stack: its location and the parameters it passes.
    #[allow(clippy::type_complexity)]
    fn nested(&self) -> Result<(NestedStack, (IndexMap<String, String>, IndexSet<String>)), ProjectError> {
        let props = self.properties("Application");
        let key = if self.sam() { "Location" } else { "TemplateURL" };
        let mut nested =
            NestedStack { id: self.id.to_string(), resource_type: self.ty.to_string(), template: None, remote: None };
        let location = props
            .get(key)
            .map(|v| self.scope.eval(v))
            .transpose()
            .map_err(|e| self.error(format!("{key}: {e}")))?
            .flatten();
        match location {
            Some(Value::String(s))
                if s.starts_with("https://") || s.starts_with("http://") || s.starts_with("s3://") =>
            {
                nested.remote = Some(s);
            }
            Some(Value::String(s)) => match self.resolve_local(key, &s) {
                Err(msg) => return Err(self.error(msg)),
                Ok((p, m)) if m.is_dir() => {
                    return Err(self.error(format!(
                        "{key} `{s}` is a directory ({}); point it at the template file",
                        p.display()
                    )));
                }
                Ok((p, _)) => nested.template = Some(p),
            },
            Some(Value::Map(m)) => {
                let app = m.get("ApplicationId").and_then(Value::scalar_string).unwrap_or_default();
                nested.remote = Some(app);
            }
            Some(other) => nested.remote = Some(describe(&other)),
            None => return Err(self.error(format!("no {key}; set it to the nested template's path or URL"))),
        }
        let mut values = IndexMap::new();
        let mut unknowable = IndexSet::new();
        if let Some(Value::Map(m)) = props.get("Parameters") {
            for (k, v) in m {
                match self.scope.eval(v) {
                    Ok(Some(v)) => match v.scalar_string() {
                        Some(s) => {
                            values.insert(k.clone(), s);
                        }
                        None => match v.as_seq() {
                            Some(items) if items.iter().all(|i| i.scalar_string().is_some()) => {
                                let joined: Vec<String> = items.iter().filter_map(Value::scalar_string).collect();
                                values.insert(k.clone(), joined.join(","));
                            }
                            _ => {
                                unknowable.insert(k.clone());
                            }
                        },
                    },
                    Ok(None) => {}
                    Err(e) => return Err(self.error(format!("Parameters.{k}: {e}"))),
                }
            }
        }
        Ok((nested, (values, unknowable)))
    }

    fn error(&self, msg: String) -> ProjectError {
        ProjectError::invalid(
            &self.file.path,
            self.file.line_of_resource(self.logical_id),
            format!("resource `{}`: {msg}", self.logical_id),
        )
    }
}

/// Renders a value for an error message: `!GetAtt X.Arn` rather than a JSON blob.
fn describe(v: &Value) -> String {
    match v.as_intrinsic() {
        Some((name, _)) => format!(
            "`{}` ({})",
            name.trim_start_matches("Fn::"),
            serde_json::to_string(&v.to_json()).unwrap_or_default()
        ),
        None => v.kind().to_string(),
    }
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
            is_layer: false,
            has_layers: !f.layers.is_empty(),
        });
        functions.chain(self.layers.iter().map(|l| Unit {
            res: &l.res,
            runtime: None,
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
