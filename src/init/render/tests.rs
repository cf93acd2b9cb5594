use serde_json::json;

use super::*;

fn template(entries: &[(&str, &str)]) -> Files {
    let mut f = Files::default();
    for (p, text) in entries {
        f.insert(*p, text.as_bytes().to_vec(), false);
    }
    f
}

fn text(r: &Rendered, path: &str) -> String {
    String::from_utf8(
        r.files.files.get(path).unwrap_or_else(|| panic!("no {path} in {:?}", r.files.files.keys())).bytes.clone(),
    )
    .unwrap()
}

fn overrides(v: serde_json::Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn defaults_are_rendered_in_order_choices_take_their_first_item_and_private_keys_stay_raw() {
    let t = template(&[(
        "cookiecutter.json",
        r#"{"project_name": "My App", "slug": "{{ cookiecutter.project_name.lower().replace(' ', '-') }}", "runtime": ["python3.13", "nodejs22.x"], "_copy_without_render": ["*.html"], "_private": "{{ not rendered }}"}"#,
    )]);
    let ctx = context("t", &t, &Map::new()).unwrap();
    assert_eq!(ctx["slug"], "my-app");
    assert_eq!(ctx["runtime"], "python3.13");
    assert_eq!(ctx["_private"], "{{ not rendered }}");
    assert_eq!(ctx.keys().collect::<Vec<_>>(), ["project_name", "slug", "runtime", "_copy_without_render", "_private"]);

    let ctx = context("t", &t, &overrides(json!({"project_name": "Other Thing", "runtime": "nodejs22.x"}))).unwrap();
    assert_eq!((ctx["slug"].as_str(), ctx["runtime"].as_str()), (Some("other-thing"), Some("nodejs22.x")));

    let e = context("t", &t, &overrides(json!({"runtime": "java21"}))).unwrap_err().to_string();
    assert!(e.contains("`\"java21\"` is not one of the template's choices") && e.contains("nodejs22.x"), "{e}");
}

#[test]
fn paths_and_contents_are_rendered_and_verbatim_files_are_copied_as_they_are() {
    let mut t = template(&[
        ("cookiecutter.json", r#"{"project_name": "app", "module": "core", "_copy_without_render": ["static/*"]}"#),
        ("{{cookiecutter.project_name}}/{{cookiecutter.module}}/main.py", "NAME = '{{ cookiecutter.project_name }}'\n"),
        ("{{cookiecutter.project_name}}/static/page.html", "{{ left alone }}"),
        ("{{cookiecutter.project_name}}/template.yaml", "Description: {{ cookiecutter.project_name }} \"quoted\"\n"),
        ("hooks/post_gen_project.py", "print('not run')"),
    ]);
    t.insert("{{cookiecutter.project_name}}/logo.png", vec![0x89, b'P', b'N', b'G', 0xff, b'{', b'{'], false);
    t.insert("{{cookiecutter.project_name}}/run.sh", b"echo {{ cookiecutter.module }}\n".to_vec(), true);
    let r = render("t", &t, &overrides(json!({"project_name": "shop"}))).unwrap();
    assert_eq!(r.name, "shop");
    assert_eq!(text(&r, "core/main.py"), "NAME = 'shop'\n", "rendered, trailing newline kept");
    assert_eq!(text(&r, "static/page.html"), "{{ left alone }}");
    assert_eq!(text(&r, "template.yaml"), "Description: shop \"quoted\"\n", "no escaping in YAML");
    assert_eq!(r.files.files["logo.png"].bytes, [0x89, b'P', b'N', b'G', 0xff, b'{', b'{']);
    assert!(r.files.files["run.sh"].executable);
    assert_eq!(text(&r, "run.sh"), "echo core\n");
    assert_eq!(r.files.files.len(), 5, "hooks are not part of the project: {:?}", r.files.files.keys());
}

#[test]
fn a_path_segment_that_renders_empty_leaves_the_file_out() {
    let t = template(&[
        ("cookiecutter.json", r#"{"project_name": "app", "tests": "no"}"#),
        ("{{cookiecutter.project_name}}/{% if cookiecutter.tests == 'yes' %}tests{% endif %}/test.py", "x"),
        ("{{cookiecutter.project_name}}/app.py", "y"),
    ]);
    let r = render("t", &t, &Map::new()).unwrap();
    assert_eq!(r.files.files.keys().collect::<Vec<_>>(), ["app.py"]);
    let r = render("t", &t, &overrides(json!({"tests": "yes"}))).unwrap();
    assert_eq!(r.files.files.keys().collect::<Vec<_>>(), ["app.py", "tests/test.py"]);
}

#[test]
fn an_undefined_variable_names_the_file_and_line() {
    let t = template(&[
        ("cookiecutter.json", r#"{"project_name": "app"}"#),
        ("{{cookiecutter.project_name}}/README.md", "# title\n\n{{ cookiecutter.missing }}\n"),
    ]);
    let e = render("tpl", &t, &Map::new()).unwrap_err().to_string();
    assert!(e.starts_with("tpl: {{cookiecutter.project_name}}/README.md line 3: undefined"), "{e}");
}

#[test]
fn what_is_not_a_cookiecutter_template_says_what_is_missing() {
    let e = render("dir", &template(&[("README.md", "hi")]), &Map::new()).unwrap_err().to_string();
    assert_eq!(
        e,
        "dir is not a cookiecutter template: it has no cookiecutter.json (the template's variables) at its top"
    );
    let e = render("dir", &template(&[("cookiecutter.json", "{}"), ("app/x.py", "")]), &Map::new()).unwrap_err();
    assert!(e.to_string().contains("no top-level directory named with a cookiecutter variable"), "{e}");
    let e = render("dir", &template(&[("cookiecutter.json", "[1]")]), &Map::new()).unwrap_err().to_string();
    assert!(e.contains("cookiecutter.json: not a JSON object of variables"), "{e}");
}

#[test]
fn a_name_that_would_leave_the_project_directory_is_refused() {
    let t = template(&[
        ("cookiecutter.json", r#"{"project_name": "app", "file": "x"}"#),
        ("{{cookiecutter.project_name}}/{{cookiecutter.file}}", ""),
    ]);
    let e = render("t", &t, &overrides(json!({"file": "../../etc/passwd"}))).unwrap_err().to_string();
    assert!(e.contains("renders to `../../etc/passwd`, which is not a file or directory name"), "{e}");
    let e = render("t", &t, &overrides(json!({"project_name": ".."}))).unwrap_err().to_string();
    assert!(e.contains("renders to `..`"), "{e}");
}

#[test]
fn a_zip_with_the_template_in_one_top_directory_is_read_as_that_directory() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.zip");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let opts = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
    for (name, body) in [
        ("tpl/cookiecutter.json", r#"{"project_name": "z"}"#),
        ("tpl/{{cookiecutter.project_name}}/bootstrap", "#!/bin/sh\n"),
    ] {
        z.start_file(name, opts).unwrap();
        z.write_all(body.as_bytes()).unwrap();
    }
    z.finish().unwrap();
    let files = read_zip(&path).unwrap();
    let e = read_zip(&dir.path().join("missing.zip")).unwrap_err().to_string();
    assert!(e.starts_with("cannot open"), "{e}");
    std::fs::write(dir.path().join("notes.txt"), "plain text").unwrap();
    let e = read_zip(&dir.path().join("notes.txt")).unwrap_err().to_string();
    assert!(e.contains("notes.txt is not a readable zip (") && e.contains("give a template directory"), "{e}");
    let r = render("t.zip", &files, &Map::new()).unwrap();
    assert_eq!(r.name, "z");
    assert!(r.files.files["bootstrap"].executable);
}

/// The shape of SAM's own app templates: a choice-less `architectures` object that `--architecture`
/// replaces, a rendered private `__stack_name`, and `{%- if ... != [] %}` around a loop.
#[test]
fn a_sam_style_template_renders_with_sams_extra_context() {
    let t = template(&[
        (
            "cookiecutter.json",
            r#"{"project_name": "Name of the project", "runtime": "python3.13", "architectures": {"value": ["x86_64", "arm64"]}, "_copy_without_render": [".gitignore"], "__stack_name": "{{ cookiecutter.project_name.lower().replace(' ', '-') }}"}"#,
        ),
        (
            "{{cookiecutter.project_name}}/template.yaml",
            "Runtime: {{ cookiecutter.runtime }}\n{%- if cookiecutter.architectures.value != [] %}\nArchitectures:\n{%- for arch in cookiecutter.architectures.value %}\n  - {{arch}}\n{%- endfor %}\n{%- endif %}\nStack: {{ cookiecutter.__stack_name }}\n",
        ),
        ("{{cookiecutter.project_name}}/.gitignore", "{{ not jinja }}\n"),
    ]);
    let r = render("sam", &t, &overrides(json!({"project_name": "My Shop", "architectures": {"value": ["arm64"]}})))
        .unwrap();
    assert_eq!(r.name, "My Shop");
    assert_eq!(text(&r, "template.yaml"), "Runtime: python3.13\nArchitectures:\n  - arm64\nStack: my-shop\n");
    assert_eq!(text(&r, ".gitignore"), "{{ not jinja }}\n");
}
