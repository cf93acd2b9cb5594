use std::collections::BTreeSet;

use super::templates::{APPS, GO, JAVASCRIPT, Language, PYTHON, RUST, TYPESCRIPT};
use super::*;

fn request(choice: Choice, name: &str, out: &Path) -> Request {
    Request {
        source: Source::BuiltIn(choice),
        name: Some(name.to_string()),
        architecture: "x86_64".into(),
        output_dir: out.to_path_buf(),
        extra_context: Map::new(),
    }
}

fn runtime_of(lang: Language) -> (&'static str, &'static str) {
    match lang.id {
        "python" => ("python3.13", "pip"),
        "javascript" | "typescript" => ("nodejs22.x", "npm"),
        "rust" => ("provided.al2023", "cargo"),
        _ => ("provided.al2023", "mod"),
    }
}

#[test]
fn names_must_be_stack_names() {
    assert!(check_name("my-app2").is_ok());
    for (bad, why) in [
        ("", "empty"),
        ("2app", "start with a letter"),
        ("my_app", "`_` is not allowed"),
        ("a/b", "`/` is not allowed"),
        ("..", "start with a letter"),
    ] {
        let e = check_name(bad).unwrap_err().to_string();
        assert!(e.contains(why), "{bad}: {e}");
    }
    assert!(check_name(&"a".repeat(129)).unwrap_err().to_string().contains("128"));
}

#[test]
fn extra_context_must_be_a_json_object() {
    assert_eq!(extra_context(Some(r#"{"a": 1}"#)).unwrap()["a"], 1);
    assert!(extra_context(Some("[1]")).unwrap_err().to_string().contains("it is a list"));
    assert!(extra_context(Some("{")).unwrap_err().is_usage());
}

/// Every built-in template × language makes a project lamb loads: each function's code
/// directory exists, the runtime and build method are the language's, the samconfig names the
/// stack, and no template syntax is left over anywhere.
#[test]
fn every_built_in_template_makes_a_project_lamb_loads() {
    let out = tempfile::tempdir().unwrap();
    for lang in [PYTHON, JAVASCRIPT, TYPESCRIPT, RUST, GO] {
        let (runtime, manager) = runtime_of(lang);
        for (app, _) in APPS {
            let choice = templates::choose(runtime, &format!("{app}{}", lang.suffix), Some(manager)).unwrap();
            let name = format!("{}-{app}", lang.id);
            let created = create(&request(choice, &name, out.path())).unwrap();
            let dir = created.dir.canonicalize().unwrap();
            let project = crate::project::load(&crate::project::LoadOptions {
                template: dir.join("template.yaml"),
                root: dir.clone(),
                ..Default::default()
            })
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            let fns: Vec<&crate::project::CodeResource> = project.code_resources().collect();
            assert_eq!(fns.len(), if *app == "step-functions" { 2 } else { 1 }, "{name}");
            for f in &fns {
                assert!(f.problem.is_none(), "{name}: {}: {:?}", f.id, f.problem);
            }
            let samconfig = std::fs::read_to_string(dir.join("samconfig.toml")).unwrap();
            assert!(samconfig.contains(&format!("stack_name = \"{name}\"")), "{name}: {samconfig}");
            for f in &created.files {
                let text = std::fs::read_to_string(dir.join(f)).unwrap();
                assert!(!text.contains("{{") && !text.contains("{%"), "{name}/{f} has template syntax left");
            }
            let names: BTreeSet<&str> = created.files.iter().map(String::as_str).collect();
            for needed in ["template.yaml", "samconfig.toml", "events/event.json", ".gitignore", "README.md"] {
                assert!(names.contains(needed), "{name} has no {needed}: {names:?}");
            }
            let event: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("events/event.json")).unwrap()).unwrap();
            assert_eq!(event, templates::event(app), "{name}");
        }
    }
}

#[test]
fn the_architecture_goes_into_the_template() {
    let out = tempfile::tempdir().unwrap();
    let choice = templates::choose("python3.12", "hello-world", None).unwrap();
    let mut req = request(choice, "arm", out.path());
    req.architecture = "arm64".into();
    let created = create(&req).unwrap();
    let t = std::fs::read_to_string(created.dir.join("template.yaml")).unwrap();
    assert!(t.contains("Runtime: python3.12\n      Architectures:\n        - arm64\n"), "{t}");
}

#[test]
fn an_existing_directory_is_refused_and_left_as_it_was() {
    let out = tempfile::tempdir().unwrap();
    std::fs::create_dir(out.path().join("taken")).unwrap();
    std::fs::write(out.path().join("taken/mine.txt"), "keep").unwrap();
    let choice = templates::choose("nodejs22.x", "sqs", None).unwrap();
    let e = create(&request(choice, "taken", out.path())).unwrap_err();
    assert!(matches!(e, InitError::Exists { .. }) && !e.is_usage(), "{e}");
    assert!(e.to_string().contains("already exists; lamb init does not overwrite"), "{e}");
    let left: Vec<_> = std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["taken"], "no temporary directory left behind");
    assert_eq!(std::fs::read_dir(out.path().join("taken")).unwrap().count(), 1);
}

#[test]
fn a_user_template_directory_is_rendered_with_the_name_and_extra_context() {
    let tpl = tempfile::tempdir().unwrap();
    std::fs::write(tpl.path().join("cookiecutter.json"), r#"{"project_name": "x", "greeting": "hi"}"#).unwrap();
    std::fs::create_dir(tpl.path().join("{{cookiecutter.project_name}}")).unwrap();
    std::fs::write(tpl.path().join("{{cookiecutter.project_name}}/hello.txt"), "{{ cookiecutter.greeting }}\n")
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let req = Request {
        source: Source::Location(tpl.path().to_path_buf()),
        name: Some("Mine".into()),
        architecture: "x86_64".into(),
        output_dir: out.path().join("new/dir"),
        extra_context: extra_context(Some(r#"{"greeting": "hello", "unknown": 1}"#)).unwrap(),
    };
    let created = create(&req).unwrap();
    assert_eq!(created.dir, out.path().join("new/dir/Mine"));
    assert_eq!(std::fs::read_to_string(created.dir.join("hello.txt")).unwrap(), "hello\n");

    let missing = Request { source: Source::Location(out.path().join("nope")), ..req.clone() };
    let e = create(&missing).unwrap_err();
    assert!(e.is_usage() && e.to_string().contains("does not exist"), "{e}");
    let not_tpl = Request { source: Source::Location(out.path().join("new")), ..req };
    let e = create(&not_tpl).unwrap_err().to_string();
    assert!(e.contains("is not a cookiecutter template: it has no cookiecutter.json"), "{e}");
}
