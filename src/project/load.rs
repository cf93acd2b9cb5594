//! Loading a project: the template (and, recursively, nested stacks with local templates)
//! parsed, its types and Globals checked, its parameters resolved, and each resource handed to
//! [`super::resource`] for what lamb models of it.

use std::path::{Path, PathBuf};

use indexmap::{IndexMap, IndexSet};

use super::intrinsics::{Pseudo, Scope};
use super::resource::ResourceCtx;
use super::value::Value;
use super::*;

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
    for d in &file.duplicates {
        let message = format!(
            "{}: key `{}` is written twice in one map (lines {} and {}); the value at line {} is used, as SAM does; remove one",
            path.display(),
            d.key,
            d.first,
            d.second,
            d.second
        );
        tracing::warn!("{message}");
        project.notes.push(Note { resource: String::new(), message });
    }
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
    // A type lamb does not model goes to CloudFormation untouched (`AWS::Lambda::EventInvokeConfig`,
    // `AWS::Foo::Bar`, a type newer than lamb): CloudFormation is the judge of those. Only a
    // near miss of a SAM or Lambda type is refused here, since it would otherwise pass silently
    // and leave the function unbuilt.
    if SAM_TYPES.contains(&ty) || LAMBDA_TYPES.contains(&ty) {
        return None;
    }
    let close = closest(ty, SAM_TYPES.iter().chain(LAMBDA_TYPES).copied())?;
    Some(format!("unknown resource type `{ty}` (did you mean `{close}`?); fix the spelling of Type"))
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
