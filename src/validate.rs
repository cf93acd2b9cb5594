//! `lamb validate`: the template's functions and layers, how each will be built, and every
//! problem found, without building anything.

use serde::Serialize;

use crate::Error;
use crate::build::{NotBuilt, Target};
use crate::output::{Format, emit};
use crate::project::{Code, LayerRef, Project, Unit};

#[derive(Serialize)]
struct Entry<'a> {
    id: &'a str,
    kind: &'static str,
    /// The resource type, and whether it is SAM's or plain CloudFormation's.
    #[serde(rename = "type")]
    resource_type: &'a str,
    flavor: crate::project::Flavor,
    #[serde(skip_serializing_if = "Option::is_none")]
    runtime: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    handler: Option<&'a str>,
    architecture: &'static str,
    code: String,
    /// How lamb builds it, or null when it is not built.
    build: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    layers: Vec<String>,
    /// The names of the function's environment variables (Globals merged); values may be
    /// secrets, so they are not shown.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    environment: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
    /// Code a build step lamb does not run makes, not made yet: a warning here.
    #[serde(skip_serializing_if = "Option::is_none")]
    not_built_yet: Option<String>,
    location: String,
}

#[derive(Serialize)]
struct Summary<'a> {
    template: String,
    sam: bool,
    stacks: usize,
    resources: usize,
    functions: Vec<Entry<'a>>,
    layers: Vec<Entry<'a>>,
    nested: Vec<serde_json::Value>,
    notes: Vec<String>,
    warnings: Vec<String>,
    valid: bool,
}

fn code(project: &Project, c: &Code) -> String {
    let rel = |p: &std::path::Path| {
        p.strip_prefix(&project.root).map_or_else(|_| p.display().to_string(), |r| r.display().to_string())
    };
    match c {
        Code::Dir(p) => format!("{}/", rel(p)),
        Code::Zip(p) | Code::File(p) | Code::Unbuilt { path: p, .. } => rel(p),
        Code::S3(uri) => uri.clone(),
        Code::Inline => "inline".into(),
        Code::Image => "image".into(),
        Code::Invalid(_) => "invalid".into(),
    }
}

fn entry<'a>(project: &Project, unit: Unit<'a>) -> Entry<'a> {
    let Unit { res, runtime, is_layer, .. } = unit;
    let (build, skipped, problem) = match Target::of(&unit) {
        Ok(t) => (Some(t.method.name().to_string()), None, None),
        Err(NotBuilt::Skip(why)) => (None, Some(why), None),
        Err(NotBuilt::Error(why)) => (None, None, Some(why)),
    };
    // Only when it is the resource's one problem: anything else wrong with it still fails.
    let not_built_yet = match &res.code {
        Code::Unbuilt { why, .. } if problem.as_ref() == Some(why) => problem.clone(),
        _ => None,
    };
    let problem = if not_built_yet.is_some() { None } else { problem };
    Entry {
        id: &res.id,
        kind: if is_layer { "layer" } else { "function" },
        resource_type: &res.resource_type,
        flavor: res.flavor,
        runtime,
        handler: None,
        architecture: res.architecture.as_str(),
        code: code(project, &res.code),
        build,
        layers: Vec::new(),
        environment: Vec::new(),
        skipped,
        problem,
        not_built_yet,
        location: res.location(),
    }
}

pub fn print(project: &Project, format: Format) -> Result<(), Error> {
    let functions: Vec<Entry> = project
        .functions
        .iter()
        .map(|f| {
            let unit = Unit {
                res: &f.res,
                runtime: f.runtime.as_deref(),
                handler: f.handler.as_deref(),
                is_layer: false,
                has_layers: !f.layers.is_empty(),
            };
            let mut e = entry(project, unit);
            e.handler = f.handler.as_deref();
            e.environment = f.environment.keys().map(String::as_str).collect();
            e.layers = f
                .layers
                .iter()
                .map(|l| match l {
                    LayerRef::Local(id) => id.clone(),
                    LayerRef::Arn(arn) => arn.clone(),
                    LayerRef::Unresolved(v) => serde_json::to_string(&v.to_json()).unwrap_or_default(),
                })
                .collect();
            e
        })
        .collect();
    let layers: Vec<Entry> = project
        .layers
        .iter()
        .map(|l| entry(project, Unit { res: &l.res, runtime: None, handler: None, is_layer: true, has_layers: false }))
        .collect();
    let root = project.root_stack();
    let problems: Vec<String> = functions
        .iter()
        .chain(&layers)
        .filter_map(|e| e.problem.as_ref().map(|p| format!("{}: resource `{}`: {p}", e.location, e.id)))
        .collect();
    // A parameter a code path needs is that resource's problem; the others only a deploy needs.
    let mut warnings: Vec<String> = project.parameter_warning().into_iter().collect();
    // Build, sync and deploy need that code; validate only checks the template.
    warnings.extend(functions.iter().chain(&layers).filter_map(|e| {
        e.not_built_yet
            .as_ref()
            .map(|w| format!("{}: resource `{}`: {w}; build, sync and deploy need it", e.location, e.id))
    }));
    let summary = Summary {
        template: root.file.path.display().to_string(),
        sam: root.sam,
        stacks: project.stacks.len(),
        resources: project.stacks.iter().map(|s| s.resource_count).sum(),
        nested: project
            .nested
            .iter()
            .map(|n| {
                serde_json::json!({
                    "id": n.id,
                    "type": n.resource_type,
                    "template": n.template.as_ref().map(|t| t.display().to_string()),
                    "remote": n.remote,
                })
            })
            .collect(),
        notes: project.notes.iter().map(ToString::to_string).collect(),
        valid: problems.is_empty(),
        warnings,
        functions,
        layers,
    };
    match format {
        Format::Json => {
            emit(&serde_json::to_string_pretty(&summary).unwrap_or_default());
        }
        Format::Human => {
            emit(&format!(
                "{}: {} template, {} resources in {} stack(s), {} functions, {} layers",
                summary.template,
                if summary.sam { "SAM" } else { "CloudFormation" },
                summary.resources,
                summary.stacks,
                summary.functions.len(),
                summary.layers.len()
            ));
            let width = summary.functions.iter().chain(&summary.layers).map(|e| e.id.len()).max().unwrap_or(0);
            for e in summary.functions.iter().chain(&summary.layers) {
                let how = e
                    .build
                    .clone()
                    .or_else(|| e.skipped.as_ref().map(|_| "not built".to_string()))
                    .or_else(|| e.not_built_yet.as_ref().map(|_| "not built yet".to_string()))
                    .unwrap_or_else(|| "INVALID".into());
                emit(&format!(
                    "  {:<8} {:<width$}  {:<16} {:<7} {:<24} {}",
                    e.kind,
                    e.id,
                    e.runtime.unwrap_or("-"),
                    e.architecture,
                    e.code,
                    how
                ));
            }
            for n in &summary.nested {
                let place = n["template"].as_str().or(n["remote"].as_str()).unwrap_or("?");
                emit(&format!("  nested   {}  {}", n["id"].as_str().unwrap_or("?"), place));
            }
            for e in summary.functions.iter().chain(&summary.layers) {
                if let Some(s) = &e.skipped {
                    emit(&format!("note: {}: {s}", e.id));
                }
            }
            for n in &summary.notes {
                emit(&format!("note: {n}"));
            }
            for w in &summary.warnings {
                emit(&format!("warning: {w}"));
            }
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(Error::Failed(problems.join("\n"))) }
}
