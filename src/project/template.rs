//! Reading a template file into a [`Value`] tree, with errors that point at the line.

use std::path::{Path, PathBuf};

use super::ProjectError;
use super::value::Value;

/// The file names lamb looks for when no `--template-file` is given, in order.
pub const DEFAULT_NAMES: &[&str] = &["template.yaml", "template.yml", "template.json"];

/// A parsed template file.
#[derive(Debug, Clone)]
pub struct TemplateFile {
    pub path: PathBuf,
    pub text: String,
    pub doc: Value,
    /// Keys written twice in one map: the last value is used, as SAM does.
    pub duplicates: Vec<super::duplicates::Duplicate>,
}

/// Finds the template in `dir`.
pub fn find(dir: &Path) -> Option<PathBuf> {
    DEFAULT_NAMES.iter().map(|name| dir.join(name)).find(|p| p.is_file())
}

/// Reads and parses `path` (JSON when it ends in `.json`, YAML otherwise).
pub fn load(path: &Path) -> Result<TemplateFile, ProjectError> {
    let bytes = std::fs::read(path).map_err(|source| ProjectError::Read { file: path.to_path_buf(), source })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let (line, column) = line_col(&e.as_bytes()[..e.utf8_error().valid_up_to()]);
        ProjectError::Syntax {
            file: path.to_path_buf(),
            line,
            column,
            message: "the file is not valid UTF-8; save it as UTF-8".into(),
        }
    })?;
    let doc = parse(path, &text)?;
    if doc.as_map().is_none() {
        return Err(ProjectError::invalid(
            path,
            None,
            format!("the template must be a map with a Resources section, not {}", doc.kind()),
        ));
    }
    let duplicates = super::duplicates::find(&text);
    Ok(TemplateFile { path: path.to_path_buf(), text, doc, duplicates })
}

/// Parses template text; `path` names it in errors and, by its extension, picks JSON or YAML.
pub fn parse(path: &Path, text: &str) -> Result<Value, ProjectError> {
    let is_json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        return serde_json::from_str(text).map_err(|e| ProjectError::Syntax {
            file: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: format!("invalid JSON: {}; fix the syntax there", strip_location(&e.to_string())),
        });
    }
    serde_norway::from_str(text).map_err(|e| {
        let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        ProjectError::Syntax {
            file: path.to_path_buf(),
            line,
            column,
            message: format!("invalid YAML: {}; fix the syntax there", strip_location(&e.to_string())),
        }
    })
}

/// The parsers append " at line L column C"; lamb puts the location in front instead.
fn strip_location(msg: &str) -> &str {
    match msg.find(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    }
}

fn line_col(prefix: &[u8]) -> (usize, usize) {
    let line = prefix.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = prefix.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (line, column)
}

impl TemplateFile {
    /// The 1-based line where resource `id` is declared, found by scanning the text. Used only to
    /// point error messages at the right place, so a miss just drops the line number.
    pub fn line_of_resource(&self, id: &str) -> Option<usize> {
        let is_key = |text: &str| {
            let k = text.trim_start().trim_start_matches('"');
            k.starts_with(id) && k[id.len()..].trim_start_matches('"').trim_start().starts_with(':')
        };
        if self.text.trim_start().starts_with('{') {
            // JSON: the first `"Id":` after the `"Resources":` key.
            let lines: Vec<&str> = self.text.lines().collect();
            let start = lines.iter().position(|l| l.contains("\"Resources\""))?;
            for (i, line) in lines.iter().enumerate().skip(start) {
                // On the `"Resources"` line itself, look after the key (`{"Resources": {"Fn": ...`).
                let rest = if i == start {
                    line.split_once("\"Resources\"").map_or("", |(_, r)| r).trim_start().trim_start_matches(':')
                } else {
                    line
                };
                if is_key(rest.trim_start().trim_start_matches('{')) {
                    return Some(i + 1);
                }
            }
            return None;
        }
        let mut in_resources = false;
        for (i, line) in self.text.lines().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indented = trimmed.len() != line.len();
            if !indented {
                in_resources = trimmed.starts_with("Resources") || trimmed.starts_with("\"Resources\"");
            } else if in_resources && is_key(trimmed) {
                return Some(i + 1);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn yaml_syntax_error_has_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "template.yaml", "Resources:\n  Fn:\n    Type: [a, b\n  X: 1\n");
        let err = load(&p).unwrap_err();
        let ProjectError::Syntax { line, column, .. } = &err else { panic!("{err:?}") };
        assert_eq!((*line, *column), (4, 4));
        let msg = err.to_string();
        assert!(msg.starts_with(&format!("{}:4:4: invalid YAML", p.display())), "{msg}");
    }

    #[test]
    fn json_syntax_error_has_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "template.json", "{\n  \"Resources\": {\n    \"Fn\": ,\n  }\n}\n");
        let err = load(&p).unwrap_err();
        let ProjectError::Syntax { line, column, .. } = &err else { panic!("{err:?}") };
        assert_eq!((*line, *column), (3, 11));
        assert!(err.to_string().contains("invalid JSON"), "{err}");
    }

    #[test]
    fn non_map_template_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "template.yaml", "- a\n- b\n");
        assert!(load(&p).unwrap_err().to_string().contains("must be a map"));
    }

    #[test]
    fn finds_resource_lines_in_yaml_and_json() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "t.yaml",
            "Parameters:\n  Fn:\n    Type: String\nResources:\n  FnB:\n    Type: X\n  Fn:\n    Type: Y\n",
        );
        let t = load(&p).unwrap();
        assert_eq!(t.line_of_resource("Fn"), Some(7));
        let p = write(
            dir.path(),
            "t.json",
            "{\n  \"Parameters\": {\n    \"Fn\": {\"Type\": \"String\"}\n  },\n  \"Resources\": {\n    \"Fn\": {\"Type\": \"X\"}\n  }\n}\n",
        );
        assert_eq!(load(&p).unwrap().line_of_resource("Fn"), Some(6));
        let p = write(dir.path(), "one.json", "{\"Resources\": {\"Fn\": {\"Type\": \"X\"}}}");
        assert_eq!(load(&p).unwrap().line_of_resource("Fn"), Some(1));
    }
}
