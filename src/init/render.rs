//! Cookiecutter templates, read and rendered as cookiecutter renders them: `cookiecutter.json`
//! gives the variables and their defaults (a list is a choice whose first item is the default;
//! a string may refer to the variables before it; `_`-prefixed keys are private and not
//! rendered, `__`-prefixed ones private and rendered), the one top-level directory whose name holds `{{cookiecutter.…}}` is the project,
//! and every path and text file under it is a Jinja template (strict about undefined
//! variables, trailing newlines kept). Binary files and paths matching `_copy_without_render`
//! are copied as they are. Hooks are not run.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use indexmap::IndexMap;
use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Map, Value};

use super::InitError;

/// A template's files, by `/`-separated path relative to its root.
#[derive(Debug, Clone, Default)]
pub(crate) struct Files {
    pub files: BTreeMap<String, File>,
}

/// One file: its bytes and whether it is executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct File {
    pub bytes: Vec<u8>,
    pub executable: bool,
}

impl Files {
    pub fn insert(&mut self, path: impl Into<String>, bytes: Vec<u8>, executable: bool) {
        self.files.insert(path.into(), File { bytes, executable });
    }
}

/// A rendered project: the directory name and the files under it.
#[derive(Debug, Clone)]
pub(crate) struct Rendered {
    pub name: String,
    pub files: Files,
}

/// What went wrong, for [`InitError::Render`]: the file and the problem.
fn render_error(location: &str, file: &str, e: &minijinja::Error) -> InitError {
    let mut problem = e.kind().to_string();
    if let Some(detail) = e.detail() {
        problem.push_str(": ");
        problem.push_str(detail);
    }
    let line = e.line().map(|l| format!(" line {l}")).unwrap_or_default();
    InitError::Render { location: location.to_string(), file: format!("{file}{line}"), problem }
}

/// The Jinja environment of cookiecutter: strict undefined, trailing newlines kept, Python's
/// string methods (`.lower()`, `.replace()`) and `{% include %}` of the template's own files.
fn environment(files: &Files) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Cookiecutter does not escape: a value goes into YAML, JSON or code as it is.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    let mut syntax = minijinja::syntax::SyntaxConfig::builder();
    syntax.keep_trailing_newline(true);
    if let Ok(s) = syntax.build() {
        env.set_syntax(s);
    }
    let texts: Arc<BTreeMap<String, String>> = Arc::new(
        files
            .files
            .iter()
            .filter_map(|(p, f)| String::from_utf8(f.bytes.clone()).ok().map(|t| (p.clone(), t)))
            .collect(),
    );
    env.set_loader(move |name| Ok(texts.get(name).cloned()));
    env
}

/// The variables of `cookiecutter.json`, in the file's order, with `overrides` applied and
/// every default rendered.
pub(crate) fn context(
    location: &str,
    files: &Files,
    overrides: &Map<String, Value>,
) -> Result<Map<String, Value>, InitError> {
    let file = files.files.get("cookiecutter.json").ok_or_else(|| InitError::NotATemplate {
        location: location.to_string(),
        missing: "cookiecutter.json (the template's variables) at its top".to_string(),
    })?;
    let vars: IndexMap<String, Value> = serde_json::from_slice(&file.bytes).map_err(|e| InitError::Render {
        location: location.to_string(),
        file: "cookiecutter.json".to_string(),
        problem: format!("not a JSON object of variables ({e}); fix it"),
    })?;
    let env = environment(files);
    let mut ctx = Map::new();
    for (key, default) in vars {
        let value = match overrides.get(&key) {
            Some(v) => {
                if let Value::Array(choices) = &default
                    && !choices.contains(v)
                    && !key.starts_with('_')
                {
                    let known: Vec<String> = choices.iter().map(Value::to_string).collect();
                    return Err(InitError::Choice { key, value: v.to_string(), known: known.join(", ") });
                }
                v.clone()
            }
            // `_x` is private and taken as written; `__x` is private but rendered (cookiecutter 2).
            None if key.starts_with('_') && !key.starts_with("__") => default,
            None => {
                let chosen = match default {
                    Value::Array(choices) => choices.into_iter().next().unwrap_or(Value::Null),
                    other => other,
                };
                match chosen {
                    Value::String(s) => {
                        let c = minijinja::Value::from(minijinja::value::Serde(
                            serde_json::json!({ "cookiecutter": &ctx }),
                        ));
                        Value::String(env.render_str(&s, c).map_err(|e| {
                            render_error(location, &format!("cookiecutter.json (variable `{key}`)"), &e)
                        })?)
                    }
                    other => other,
                }
            }
        };
        ctx.insert(key, value);
    }
    Ok(ctx)
}

/// Renders the template in `files` with `overrides` over its defaults (cookiecutter's
/// `extra_context`: keys the template does not declare are ignored, as cookiecutter does).
pub(crate) fn render(location: &str, files: &Files, overrides: &Map<String, Value>) -> Result<Rendered, InitError> {
    let ctx = context(location, files, overrides)?;
    let roots: std::collections::BTreeSet<&str> = files
        .files
        .keys()
        .filter_map(|p| p.split_once('/').map(|(top, _)| top))
        .filter(|top| top.contains("cookiecutter") && top.contains("{{"))
        .collect();
    let root = match roots.len() {
        1 => *roots.iter().next().expect("one root"),
        0 => {
            return Err(InitError::NotATemplate {
                location: location.to_string(),
                missing:
                    "top-level directory named with a cookiecutter variable, such as {{cookiecutter.project_name}}/"
                        .to_string(),
            });
        }
        _ => {
            return Err(InitError::Render {
                location: location.to_string(),
                file: roots.iter().copied().collect::<Vec<_>>().join(", "),
                problem: "more than one top-level project directory; a cookiecutter template has exactly one".into(),
            });
        }
    };
    let verbatim = copy_without_render(location, &ctx)?;
    let env = environment(files);
    let context = minijinja::Value::from(minijinja::value::Serde(serde_json::json!({ "cookiecutter": &ctx })));
    let render_path = |p: &str| -> Result<String, InitError> {
        env.render_str(p, &context).map_err(|e| render_error(location, p, &e))
    };
    let name = render_path(root)?;
    check_path_segment(location, root, &name)?;
    let mut out = Files::default();
    for (path, file) in &files.files {
        let Some(rel) = path.strip_prefix(root).and_then(|r| r.strip_prefix('/')) else { continue };
        let mut segments = Vec::new();
        for seg in rel.split('/') {
            let rendered = render_path(seg)?;
            // A path segment that renders empty drops the file (how lamb's own templates leave
            // out what one choice does not need; cookiecutter would fail on it).
            if rendered.is_empty() {
                segments.clear();
                break;
            }
            check_path_segment(location, path, &rendered)?;
            segments.push(rendered);
        }
        if segments.is_empty() {
            continue;
        }
        let target = segments.join("/");
        let bytes = match std::str::from_utf8(&file.bytes) {
            Ok(text) if !verbatim.is_match(rel) && !verbatim.is_match(&target) => {
                env.render_named_str(path, text, &context).map_err(|e| render_error(location, path, &e))?.into_bytes()
            }
            _ => file.bytes.clone(),
        };
        out.insert(target, bytes, file.executable);
    }
    Ok(Rendered { name, files: out })
}

/// `_copy_without_render`: globs of paths (relative to the project directory) copied as they are.
fn copy_without_render(location: &str, ctx: &Map<String, Value>) -> Result<globset::GlobSet, InitError> {
    let mut set = globset::GlobSetBuilder::new();
    if let Some(Value::Array(globs)) = ctx.get("_copy_without_render") {
        for g in globs.iter().filter_map(Value::as_str) {
            let glob = globset::Glob::new(g).map_err(|e| InitError::Render {
                location: location.to_string(),
                file: "cookiecutter.json".to_string(),
                problem: format!("_copy_without_render `{g}` is not a glob ({e})"),
            })?;
            set.add(glob);
        }
    }
    set.build().map_err(|e| InitError::Render {
        location: location.to_string(),
        file: "cookiecutter.json".to_string(),
        problem: format!("_copy_without_render: {e}"),
    })
}

/// A rendered name must stay one path segment inside the project.
fn check_path_segment(location: &str, template_path: &str, rendered: &str) -> Result<(), InitError> {
    if rendered.contains('/')
        || rendered.contains('\\')
        || rendered == "."
        || rendered == ".."
        || rendered.contains('\0')
    {
        return Err(InitError::Render {
            location: location.to_string(),
            file: template_path.to_string(),
            problem: format!("renders to `{rendered}`, which is not a file or directory name"),
        });
    }
    Ok(())
}

/// Reads a template from a directory (or a directory in it holding `cookiecutter.json`).
pub(crate) fn read_dir(dir: &Path) -> Result<Files, InitError> {
    let mut files = Files::default();
    walk(dir, dir, &mut files)?;
    Ok(unwrap_single_top(files))
}

fn walk(root: &Path, dir: &Path, files: &mut Files) -> Result<(), InitError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |path: &Path, source| InitError::Io { what: format!("cannot read {}", path.display()), source };
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).map_err(|e| io(dir, e))?.collect::<Result<_, _>>().map_err(|e| io(dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        if e.file_name() == ".git" {
            continue;
        }
        let meta = std::fs::metadata(&path).map_err(|err| io(&path, err))?;
        if meta.is_dir() {
            walk(root, &path, files)?;
        } else {
            let rel = path.strip_prefix(root).expect("under the root");
            let rel = rel.to_str().ok_or_else(|| InitError::Render {
                location: root.display().to_string(),
                file: rel.display().to_string(),
                problem: "the file name is not UTF-8".into(),
            })?;
            let bytes = std::fs::read(&path).map_err(|err| io(&path, err))?;
            files.insert(rel.to_string(), bytes, meta.permissions().mode() & 0o111 != 0);
        }
    }
    Ok(())
}

/// Reads a template from a zip: its files at the top, or under one top directory.
pub(crate) fn read_zip(path: &Path) -> Result<Files, InitError> {
    let location = path.display().to_string();
    let bad = |problem: String| InitError::BadZip { location: location.clone(), problem };
    let file = std::fs::File::open(path)
        .map_err(|source| InitError::Io { what: format!("cannot open {location}"), source })?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(format!("not a readable zip ({e})")))?;
    let mut files = Files::default();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| bad(format!("cannot read entry {i} ({e})")))?;
        if entry.is_dir() {
            continue;
        }
        let Some(name) = entry.enclosed_name().and_then(|p| p.to_str().map(str::to_string)) else {
            return Err(bad(format!("entry `{}` has a path outside the archive", entry.name().unwrap_or("?".into()))));
        };
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).map_err(|e| bad(format!("cannot read `{name}` ({e})")))?;
        let executable = entry.unix_mode().is_some_and(|m| m & 0o111 != 0);
        files.insert(name, bytes, executable);
    }
    Ok(unwrap_single_top(files))
}

/// A template packed with its directory (`template/cookiecutter.json`) is that directory.
fn unwrap_single_top(files: Files) -> Files {
    if files.files.contains_key("cookiecutter.json") {
        return files;
    }
    let tops: std::collections::BTreeSet<&str> =
        files.files.keys().filter_map(|p| p.split_once('/').map(|(t, _)| t)).collect();
    let [top] = tops.into_iter().collect::<Vec<_>>()[..] else { return files };
    let prefix = format!("{top}/");
    if !files.files.contains_key(&format!("{prefix}cookiecutter.json")) {
        return files;
    }
    let mut out = Files::default();
    for (p, f) in files.files {
        if let Some(rel) = p.strip_prefix(&prefix) {
            out.files.insert(rel.to_string(), f);
        }
    }
    out
}

#[cfg(test)]
mod tests;
