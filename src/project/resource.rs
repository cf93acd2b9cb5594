//! What lamb models of one resource of a template: a function's or layer's code, runtime,
//! architecture, build metadata and layers; an API's or state machine's definition file; a
//! nested stack's template and parameters. A problem found here is attached to the resource,
//! so the rest of the project still builds.

use std::path::{Path, PathBuf};

use indexmap::{IndexMap, IndexSet};

use super::intrinsics::Scope;
use super::template::TemplateFile;
use super::value::Value;
use super::*;

/// Everything needed to read one resource.
pub(super) struct ResourceCtx<'a> {
    pub(super) id: &'a str,
    pub(super) logical_id: &'a str,
    pub(super) ty: &'a str,
    pub(super) resource: &'a Value,
    pub(super) file: &'a TemplateFile,
    pub(super) dir: &'a Path,
    pub(super) root: &'a Path,
    pub(super) scope: &'a Scope<'a>,
    pub(super) globals: Option<&'a Value>,
    pub(super) prefix: &'a str,
    pub(super) resources: &'a IndexMap<String, Value>,
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
            Err(msg) => {
                let path = normalize(&self.dir.join(raw));
                match super::unbuilt::step_making(self.dir, raw) {
                    Some(step) if path.starts_with(self.root) && !path.exists() => Code::Unbuilt {
                        why: format!("{key} `{raw}` is not built yet: run {step} first, which makes it"),
                        path,
                    },
                    _ => Code::Invalid(msg),
                }
            }
            Ok((path, m)) if m.is_dir() => Code::Dir(path),
            // A jar is a zip, and Lambda takes one as a Java function's code, as SAM does.
            Ok((path, _))
                if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("zip") || e.eq_ignore_ascii_case("jar")) =>
            {
                Code::Zip(path)
            }
            // A trailing slash says a directory was meant (and the OS agrees: `file/` is no file).
            Ok(_) if raw.ends_with('/') => Code::Invalid(format!(
                "{key} `{raw}` is a file, not a directory; point {key} at the directory holding the code, or drop the trailing `/` to pack that one file"
            )),
            // SAM's packager copies a lone file into an empty directory and zips that.
            Ok((path, _)) => Code::File(path),
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

    pub(super) fn function(&self) -> Function {
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
                // SAM's default (samcli `DEFAULT_CODEURI = "."`): the template's directory.
                (None, None) => self.local_code("CodeUri", "."),
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
        if is_zip && matches!(code, Code::Dir(_) | Code::Zip(_) | Code::File(_) | Code::Unbuilt { .. }) {
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
        let function_name = self.string(&props, "FunctionName", &mut problems);
        let mut number = |key: &str| {
            let text = self.string(&props, key, &mut problems)?;
            match text.trim().parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    problems.add(format!("{key} is `{text}`, not a whole number"));
                    None
                }
            }
        };
        let timeout = number("Timeout");
        let memory_size = number("MemorySize");
        let deployment_preference = props.get("DeploymentPreference").is_some_and(|v| !matches!(v, Value::Null));
        Function {
            res: self.base(code, architecture, build, problems),
            runtime,
            handler,
            layers,
            environment,
            auto_publish_alias,
            deployment_preference,
            function_name,
            timeout,
            memory_size,
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

    pub(super) fn layer(&self) -> Layer {
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
    pub(super) fn definition(&self) -> Result<Option<DefinitionFile>, ProjectError> {
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
    pub(super) fn nested(&self) -> Result<(NestedStack, (IndexMap<String, String>, IndexSet<String>)), ProjectError> {
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
