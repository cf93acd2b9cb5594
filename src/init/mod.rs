//! `lamb init`'s engine: a new project from a cookiecutter template — one of lamb's built-in
//! app templates ([`templates`]) or the user's (`--location DIR|ZIP`) — rendered in memory
//! ([`render`]) and written at once: into a temporary directory beside the target, then
//! renamed, so a failure leaves nothing half-written and an existing directory is never
//! touched. No network, no subprocess.

pub(crate) mod render;
pub(crate) mod templates;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

pub(crate) use templates::Choice;

#[derive(Debug, thiserror::Error)]
pub(crate) enum InitError {
    #[error("unknown runtime `{runtime}`{hint}; lamb init knows: {known}")]
    UnknownRuntime { runtime: String, hint: String, known: String },
    #[error("unknown app template `{app}` for {runtime}{hint}; the known ones: {known}")]
    UnknownApp { app: String, runtime: String, hint: String, known: String },
    #[error("--dependency-manager `{manager}` does not go with {runtime}; use one of: {known}")]
    UnknownManager { manager: String, runtime: String, known: String },
    #[error("runtime {runtime} is used by several languages; pass --dependency-manager: {known}")]
    ManagerNeeded { runtime: String, known: String },
    #[error("`{name}` cannot be the project's name: {why}")]
    BadName { name: String, why: String },
    #[error(
        "not on a terminal, so lamb init cannot ask; pass {missing} (with --no-interactive), or --location DIR|ZIP for your own template"
    )]
    MissingFlags { missing: String },
    #[error("--extra-context `{value}` is not a JSON object ({problem}); pass e.g. '{{\"project_name\": \"app\"}}'")]
    ExtraContext { value: String, problem: String },
    #[error("variable `{key}`: `{value}` is not one of the template's choices ({known})")]
    Choice { key: String, value: String, known: String },
    #[error("{location} is not a cookiecutter template: it has no {missing}")]
    NotATemplate { location: String, missing: String },
    #[error("--location {location} does not exist; give a template directory or a .zip of one")]
    NoLocation { location: String },
    #[error("{location}: {file}: {problem}")]
    Render { location: String, file: String, problem: String },
    #[error("{location} is not a readable zip ({problem}); give a template directory or a .zip of one")]
    BadZip { location: String, problem: String },
    #[error("{} already exists; lamb init does not overwrite: pick another --name or --output-dir, or remove it", path.display())]
    Exists { path: PathBuf },
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
}

impl InitError {
    /// Mistakes in the command line (exit 2), as opposed to a template or the disk (exit 1).
    pub(crate) fn is_usage(&self) -> bool {
        matches!(
            self,
            InitError::UnknownRuntime { .. }
                | InitError::UnknownApp { .. }
                | InitError::UnknownManager { .. }
                | InitError::ManagerNeeded { .. }
                | InitError::BadName { .. }
                | InitError::MissingFlags { .. }
                | InitError::ExtraContext { .. }
                | InitError::Choice { .. }
                | InitError::NoLocation { .. }
        )
    }
}

/// Where the template comes from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    BuiltIn(Choice),
    /// A directory or a zip holding a cookiecutter template.
    Location(PathBuf),
}

/// One `lamb init`, validated.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub source: Source,
    pub name: Option<String>,
    pub architecture: String,
    pub output_dir: PathBuf,
    /// `--extra-context`, over the template's defaults (and over `name`, runtime, architecture).
    pub extra_context: Map<String, Value>,
}

/// What was made.
#[derive(Debug, Clone)]
pub(crate) struct Created {
    pub dir: PathBuf,
    pub files: Vec<String>,
}

/// A project name lamb's templates take: it names the directory and the stack, so it must be
/// a CloudFormation stack name (a letter, then letters, digits and hyphens, at most 128).
pub(crate) fn check_name(name: &str) -> Result<(), InitError> {
    let bad = |why: &str| Err(InitError::BadName { name: name.to_string(), why: why.to_string() });
    let mut chars = name.chars();
    match chars.next() {
        None => return bad("it is empty"),
        Some(c) if !c.is_ascii_alphabetic() => return bad("it must start with a letter (it names the stack)"),
        _ => {}
    }
    if name.len() > 128 {
        return bad("it is longer than 128 characters, CloudFormation's limit for a stack name");
    }
    if let Some(c) = chars.find(|c| !c.is_ascii_alphanumeric() && *c != '-') {
        return bad(&format!(
            "`{c}` is not allowed: it names the directory and the stack, so only letters, digits and hyphens"
        ));
    }
    Ok(())
}

/// A name for a user's template: anything that is one directory name.
fn check_dir_name(name: &str) -> Result<(), InitError> {
    if name.trim().is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(InitError::BadName { name: name.to_string(), why: "it is not a directory name".to_string() });
    }
    Ok(())
}

/// Parses `--extra-context`.
pub(crate) fn extra_context(json: Option<&str>) -> Result<Map<String, Value>, InitError> {
    let Some(text) = json else { return Ok(Map::new()) };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => {
            Err(InitError::ExtraContext { value: text.to_string(), problem: format!("it is a {}", kind(&other)) })
        }
        Err(e) => Err(InitError::ExtraContext { value: text.to_string(), problem: e.to_string() }),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// Renders the template and writes the project under `output_dir`.
pub(crate) fn create(req: &Request) -> Result<Created, InitError> {
    let mut overrides = Map::new();
    if let Some(name) = &req.name {
        overrides.insert("project_name".into(), Value::String(name.clone()));
    }
    overrides.insert("architectures".into(), serde_json::json!({ "value": [req.architecture] }));
    let (location, files) = match &req.source {
        Source::BuiltIn(choice) => {
            if let Some(name) = &req.name {
                check_name(name)?;
            }
            overrides.insert("runtime".into(), Value::String(choice.runtime.clone()));
            overrides.insert("language".into(), Value::String(choice.language.id.into()));
            overrides.insert("app_template".into(), Value::String(choice.app.into()));
            overrides.insert("dependency_manager".into(), Value::String(choice.language.manager.into()));
            ("lamb's built-in template".to_string(), templates::files(choice))
        }
        Source::Location(path) => {
            if let Some(name) = &req.name {
                check_dir_name(name)?;
            }
            let location = path.display().to_string();
            let meta = std::fs::metadata(path).map_err(|_| InitError::NoLocation { location: location.clone() })?;
            let files = if meta.is_dir() { render::read_dir(path)? } else { render::read_zip(path)? };
            (location, files)
        }
    };
    overrides.extend(req.extra_context.clone());
    let mut rendered = render::render(&location, &files, &overrides)?;
    if let Source::BuiltIn(choice) = &req.source {
        check_name(&rendered.name)?;
        let event = serde_json::to_string_pretty(&templates::event(choice.app)).expect("JSON") + "\n";
        rendered.files.insert("events/event.json", event.into_bytes(), false);
    }
    let dir = req.output_dir.join(&rendered.name);
    write(&dir, &rendered.files)?;
    Ok(Created { dir, files: rendered.files.files.keys().cloned().collect() })
}

/// Writes `files` as the new directory `dir`: into a temporary directory beside it, renamed
/// into place once complete.
fn write(dir: &Path, files: &render::Files) -> Result<(), InitError> {
    use std::os::unix::fs::PermissionsExt;
    if dir.symlink_metadata().is_ok() {
        return Err(InitError::Exists { path: dir.to_path_buf() });
    }
    let parent = dir.parent().unwrap_or(Path::new("."));
    let io = |what: String| move |source| InitError::Io { what, source };
    std::fs::create_dir_all(parent).map_err(io(format!("cannot create {}", parent.display())))?;
    let tmp = tempfile::Builder::new()
        .prefix(".lamb-init-")
        .tempdir_in(parent)
        .map_err(io(format!("cannot write in {}", parent.display())))?;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))
        .map_err(io(format!("cannot set the mode of {}", tmp.path().display())))?;
    for (rel, file) in &files.files {
        let path = tmp.path().join(rel);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).map_err(io(format!("cannot create {}", p.display())))?;
        }
        std::fs::write(&path, &file.bytes).map_err(io(format!("cannot write {}", dir.join(rel).display())))?;
        if file.executable {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .map_err(io(format!("cannot make {} executable", dir.join(rel).display())))?;
        }
    }
    // Checked again: the directory may have appeared while the files were written.
    if dir.symlink_metadata().is_ok() {
        return Err(InitError::Exists { path: dir.to_path_buf() });
    }
    let tmp = tmp.keep();
    std::fs::rename(&tmp, dir).map_err(|source| {
        let _ = std::fs::remove_dir_all(&tmp);
        InitError::Io { what: format!("cannot create {}", dir.display()), source }
    })
}

#[cfg(test)]
mod tests;
