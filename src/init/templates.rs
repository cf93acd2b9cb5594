//! lamb's built-in app templates: which runtimes, dependency managers and app templates there
//! are, and the cookiecutter files of each, embedded in the binary so `lamb init` works
//! offline. A built-in template is the files of `templates/_shared/` (cookiecutter.json,
//! samconfig.toml, README, .gitignore), `templates/_apps/<app>/` (template.yaml and what it
//! refers to) and `templates/<language>/<app>/` (the code and its tests), rendered as one cookiecutter template; its `events/event.json` comes from lamb's own sample
//! events (`lamb local generate-event`).

use std::collections::BTreeMap;

use include_dir::{Dir, include_dir};

use super::InitError;
use super::render::Files;

static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// A language lamb has templates for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Language {
    /// The directory under `templates/`.
    pub id: &'static str,
    pub label: &'static str,
    pub manager: &'static str,
    /// What `--app-template` names end with for it (TypeScript: `-typescript`, as SAM's do).
    pub suffix: &'static str,
}

pub(crate) const PYTHON: Language = Language { id: "python", label: "Python", manager: "pip", suffix: "" };
pub(crate) const JAVASCRIPT: Language = Language { id: "javascript", label: "JavaScript", manager: "npm", suffix: "" };
pub(crate) const TYPESCRIPT: Language =
    Language { id: "typescript", label: "TypeScript (esbuild)", manager: "npm", suffix: "-typescript" };
pub(crate) const RUST: Language = Language { id: "rust", label: "Rust (cargo-lambda)", manager: "cargo", suffix: "" };
pub(crate) const GO: Language = Language { id: "go", label: "Go", manager: "mod", suffix: "" };

/// The runtimes `lamb init` knows, newest first within each family (the first is the default).
pub(crate) const RUNTIMES: &[&str] = &[
    "python3.13",
    "python3.12",
    "python3.11",
    "python3.10",
    "python3.9",
    "nodejs22.x",
    "nodejs20.x",
    "nodejs18.x",
    "provided.al2023",
    "provided.al2",
];

/// The app templates, in the order they are offered, with what each makes.
pub(crate) const APPS: &[(&str, &str)] = &[
    ("hello-world", "Hello World: a function behind an API Gateway route"),
    ("sqs", "SQS: a function reading messages from a queue"),
    ("scheduled", "Scheduled: a function run by an EventBridge schedule"),
    ("step-functions", "Step Functions: a state machine (DefinitionUri) calling two functions"),
];

/// SAM's names for the same app templates (`sam init --app-template`), taken as well.
const SAM_NAMES: &[(&str, &str)] = &[
    ("quick-start-sqs", "sqs"),
    ("quick-start-cloudwatch-events", "scheduled"),
    ("step-functions-sample-app", "step-functions"),
];

/// The languages a runtime takes, with the dependency manager of each.
pub(crate) fn languages(runtime: &str) -> &'static [Language] {
    if runtime.starts_with("python") {
        &[PYTHON]
    } else if runtime.starts_with("nodejs") {
        &[JAVASCRIPT, TYPESCRIPT]
    } else {
        &[RUST, GO]
    }
}

/// A built-in template, chosen and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Choice {
    pub runtime: String,
    pub language: Language,
    /// The app without the language suffix: `hello-world`, `sqs`, `scheduled`, `step-functions`.
    pub app: &'static str,
}

/// Checks a runtime, app template and dependency manager against what lamb has.
pub(crate) fn choose(runtime: &str, app_template: &str, manager: Option<&str>) -> Result<Choice, InitError> {
    if !RUNTIMES.contains(&runtime) {
        let hint = crate::project::closest(runtime, RUNTIMES.iter().copied())
            .map(|c| format!(" (did you mean {c}?)"))
            .unwrap_or_default();
        return Err(InitError::UnknownRuntime { runtime: runtime.to_string(), hint, known: RUNTIMES.join(", ") });
    }
    let langs = languages(runtime);
    let managers: Vec<&str> = {
        let mut m: Vec<&str> = langs.iter().map(|l| l.manager).collect();
        m.dedup();
        m
    };
    if let Some(m) = manager
        && !managers.contains(&m)
    {
        return Err(InitError::UnknownManager {
            manager: m.to_string(),
            runtime: runtime.to_string(),
            known: managers.join(", "),
        });
    }
    let candidates: Vec<&Language> = langs.iter().filter(|l| manager.is_none_or(|m| l.manager == m)).collect();
    if managers.len() > 1 && manager.is_none() {
        let which: Vec<String> = langs.iter().map(|l| format!("{} ({})", l.manager, l.label)).collect();
        return Err(InitError::ManagerNeeded { runtime: runtime.to_string(), known: which.join(", ") });
    }
    let (base, suffix) = match app_template.strip_suffix("-typescript") {
        Some(base) => (base, "-typescript"),
        None => (app_template, ""),
    };
    let base = SAM_NAMES.iter().find(|(sam, _)| *sam == base).map_or(base, |(_, ours)| *ours);
    let app_template = format!("{base}{suffix}");
    for lang in &candidates {
        for (app, _) in APPS {
            if format!("{app}{}", lang.suffix) == app_template {
                return Ok(Choice { runtime: runtime.to_string(), language: **lang, app });
            }
        }
    }
    let known: Vec<String> =
        candidates.iter().flat_map(|l| APPS.iter().map(move |(app, _)| format!("{app}{}", l.suffix))).collect();
    let hint = crate::project::closest(&app_template, known.iter().map(String::as_str))
        .map(|c| format!(" (did you mean {c}?)"))
        .unwrap_or_default();
    Err(InitError::UnknownApp { app: app_template, runtime: runtime.to_string(), hint, known: known.join(", ") })
}

/// The files of a built-in template: the shared layer, then the app's own.
pub(crate) fn files(choice: &Choice) -> Files {
    let mut files = Files::default();
    let app = format!("_apps/{}", choice.app);
    let code = format!("{}/{}", choice.language.id, choice.app);
    for layer in ["_shared", app.as_str(), code.as_str()] {
        let dir = TEMPLATES.get_dir(layer).unwrap_or_else(|| panic!("built-in template layer {layer} is embedded"));
        add(dir, layer, &mut files);
    }
    // Snippets that the templates include (`_apps/_function.yaml`, `go/_runtime.go`): outside
    // the project directory, so not written themselves.
    for dir in ["_apps", choice.language.id] {
        let snippets = TEMPLATES.get_dir(dir).into_iter().flat_map(|d| d.files());
        for f in snippets.filter(|f| f.path().file_name().is_some_and(|n| n.to_string_lossy().starts_with('_'))) {
            let path = f.path().to_str().expect("UTF-8 names in lamb's templates");
            files.insert(path, f.contents().to_vec(), false);
        }
    }
    files
}

fn add(dir: &Dir<'static>, layer: &str, files: &mut Files) {
    for f in dir.files() {
        let rel = f.path().strip_prefix(layer).expect("inside its layer");
        let rel = rel.to_str().expect("UTF-8 names in lamb's templates");
        files.insert(rel, f.contents().to_vec(), rel.ends_with(".sh"));
    }
    for d in dir.dirs() {
        add(d, layer, files);
    }
}

/// `events/event.json` of an app: lamb's sample event of its trigger.
pub(crate) fn event(app: &str) -> serde_json::Value {
    let overrides = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    let generated = match app {
        "hello-world" => crate::local::events::generate(
            "apigateway",
            "aws-proxy",
            &overrides(&[("path", "hello"), ("method", "GET"), ("resource", "/hello"), ("body", "")]),
        ),
        "sqs" => crate::local::events::generate("sqs", "receive-message", &overrides(&[("body", "Hello from SQS!")])),
        _ => crate::local::events::generate("cloudwatch", "scheduled-event", &BTreeMap::new()),
    };
    generated.expect("lamb's sample events take these keys")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_app_embedded() {
        for lang in [PYTHON, JAVASCRIPT, TYPESCRIPT, RUST, GO] {
            for (app, _) in APPS {
                let dir = format!("{}/{app}", lang.id);
                assert!(TEMPLATES.get_dir(&dir).is_some(), "templates/{dir} is missing");
            }
        }
    }

    #[test]
    fn provided_runtimes_need_a_dependency_manager_naming_both() {
        let e = choose("provided.al2023", "hello-world", None).unwrap_err().to_string();
        assert!(e.contains("cargo (Rust") && e.contains("mod (Go)"), "{e}");
        let go = choose("provided.al2023", "hello-world", Some("mod")).unwrap();
        assert_eq!(go.language, GO);
        let rust = choose("provided.al2023", "sqs", Some("cargo")).unwrap();
        assert_eq!((rust.language, rust.app), (RUST, "sqs"));
    }

    #[test]
    fn typescript_is_chosen_by_its_app_template_name() {
        let ts = choose("nodejs22.x", "step-functions-typescript", None).unwrap();
        assert_eq!((ts.language, ts.app), (TYPESCRIPT, "step-functions"));
        assert_eq!(choose("nodejs22.x", "hello-world", Some("npm")).unwrap().language, JAVASCRIPT);
    }

    #[test]
    fn sams_app_template_names_are_taken_too() {
        for (sam, ours) in [("quick-start-sqs", "sqs"), ("quick-start-cloudwatch-events", "scheduled")] {
            assert_eq!(choose("python3.13", sam, None).unwrap().app, ours);
        }
        let sf = choose("nodejs22.x", "step-functions-sample-app-typescript", None).unwrap();
        assert_eq!((sf.language, sf.app), (TYPESCRIPT, "step-functions"));
        assert_eq!(choose("nodejs22.x", "hello-world-typescript", None).unwrap().language, TYPESCRIPT);
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let e = choose("python3.31", "hello-world", None).unwrap_err().to_string();
        assert!(e.contains("python3.13") && e.contains("nodejs22.x") && e.contains("did you mean"), "{e}");
        let e = choose("python3.13", "hello-wrld", None).unwrap_err().to_string();
        assert!(e.contains("did you mean hello-world") && e.contains("step-functions"), "{e}");
        let e = choose("python3.13", "hello-world", Some("npm")).unwrap_err().to_string();
        assert!(e.contains("`npm`") && e.contains("pip"), "{e}");
    }

    #[test]
    fn events_are_the_triggers_samples() {
        let api = event("hello-world");
        assert_eq!((api["httpMethod"].as_str(), api["path"].as_str()), (Some("GET"), Some("/hello")));
        assert!(event("sqs")["Records"][0]["body"].is_string());
        assert_eq!(event("scheduled")["detail-type"], "Scheduled Event");
    }
}
