//! Functions a route or URL names (`!GetAtt Fn.Arn`, `!Ref Fn`, a name), function URLs
//! (`FunctionUrlConfig` and `AWS::Lambda::Url`), and routes declared twice.

use super::*;

impl Reader<'_> {
    /// The function a `FunctionArn` / `TargetFunctionArn` names, when it is one of the root
    /// stack's: `!GetAtt Fn.Arn`, `!Sub ${Fn.Arn}`, `!Ref Fn`, or an ARN ending in its name.
    pub(super) fn function_ref(&self, v: &Value) -> Option<String> {
        let logical = match v.as_intrinsic() {
            Some(("Fn::GetAtt", Value::Seq(args))) if args.len() == 2 => args[0].as_str().map(str::to_string),
            Some(("Fn::Sub", Value::String(s))) => {
                s.strip_prefix("${").and_then(|s| s.strip_suffix(".Arn}")).map(str::to_string)
            }
            Some(("Ref", Value::String(s))) => Some(s.clone()),
            None => v.as_str().and_then(|arn| {
                let name = arn.rsplit_once(":function:")?.1;
                let name = name.split(':').next()?;
                self.function_named(name)
            }),
            _ => None,
        }?;
        let f = self.project.function(&logical)?;
        Some(f.res.id.clone())
    }

    /// The root-stack function whose logical id or FunctionName is `name`.
    pub(super) fn function_named(&self, name: &str) -> Option<String> {
        if self.project.function(name).is_some() {
            return Some(name.to_string());
        }
        self.resources.iter().find_map(|(id, r)| {
            let fname = r.get("Properties").and_then(|p| p.get("FunctionName")).and_then(Value::as_str)?;
            (fname == name).then(|| id.clone())
        })
    }

    /// A function URL's two routes: its prefix, and everything under it.
    pub(super) fn function_url(&mut self, resource: &str, function: &str, config: &Value, routes: &mut Vec<Route>) {
        if routes.iter().any(|r| r.kind == RouteKind::FunctionUrl && r.function == function) {
            self.note(resource, format!("function `{function}` has more than one function URL; the first is served"));
            return;
        }
        match config.get("AuthType").and_then(Value::as_str) {
            Some("AWS_IAM") => self.note(
                resource,
                "the function URL's AuthType AWS_IAM is not checked locally; it is served without authentication"
                    .into(),
            ),
            Some("NONE") | None => {}
            Some(other) => self.note(
                resource,
                format!("function URL AuthType `{other}` is not NONE or AWS_IAM; served without authentication"),
            ),
        }
        if config.get("InvokeMode").and_then(Value::as_str) == Some("RESPONSE_STREAM") {
            self.note(
                resource,
                "the function URL streams its response once deployed; locally the answer is sent whole".into(),
            );
        }
        let cors = match config.get("Cors") {
            Some(c) => match self.http_cors(resource, "Cors", c) {
                Ok(c) => c,
                Err(e) => {
                    self.note(resource, format!("function URL {e}; CORS is off locally"));
                    None
                }
            },
            None => None,
        };
        for path in [format!("/{function}"), format!("/{function}/{{proxy+}}")] {
            let segments = parse_path(&path).unwrap_or_default();
            routes.push(Route {
                api: function.to_string(),
                kind: RouteKind::FunctionUrl,
                method: "ANY".into(),
                path,
                segments,
                function: function.to_string(),
                stage: DEFAULT_STAGE.into(),
                stage_variables: IndexMap::new(),
                binary_media_types: Vec::new(),
                cors: cors.clone(),
                authorizer: None,
                preflight_authorizer: None,
            });
        }
    }

    /// `AWS::Lambda::Url` resources aimed at a function of the root stack.
    pub(super) fn lambda_urls(&mut self, routes: &mut Vec<Route>) -> Result<(), RouteError> {
        for (id, r) in self.resources {
            if r.get("Type").and_then(Value::as_str) != Some("AWS::Lambda::Url") || self.excluded(id, r)? {
                continue;
            }
            let props = self.eval(id, r.get("Properties").unwrap_or(&Value::Null))?.unwrap_or_default();
            let target = props.get("TargetFunctionArn").cloned().unwrap_or_default();
            match self.function_ref(&target) {
                Some(function) => self.function_url(id, &function, &props, routes),
                None => self.note(
                    id,
                    format!(
                        "TargetFunctionArn is {}, not a function of this template; the URL is not served",
                        describe(&target)
                    ),
                ),
            }
        }
        Ok(())
    }

    /// Two APIs (or two events) with the same method and path: one local server serves one.
    pub(super) fn note_conflicts(&mut self, routes: &[Route]) {
        let mut seen: IndexMap<(String, String), &Route> = IndexMap::new();
        for r in routes.iter().filter(|r| r.kind != RouteKind::FunctionUrl) {
            let key = (r.method.clone(), r.path.clone());
            match seen.get(&key) {
                Some(first) => {
                    let message = format!(
                        "`{} {}` of function `{}` ({}) is also declared for function `{}` ({}); locally the first is served",
                        r.method, r.path, r.function, r.api, first.function, first.api
                    );
                    self.notes.push(Note { resource: r.function.clone(), message });
                }
                None => {
                    seen.insert(key, r);
                }
            }
        }
    }
}
