//! Routes an explicit API declares in its inline `DefinitionBody` (OpenAPI or Swagger), as
//! SAM's local server reads them too: every operation whose `x-amazon-apigateway-integration`
//! is a Lambda proxy (`type: aws_proxy`) to a function of the template. An operation's
//! `security` (or the document's) names its authorizer among the API's `Auth.Authorizers`;
//! without one the API's DefaultAuthorizer applies, and `security: []` means none. A method and
//! path that a function's event also declares on the same API is served once (the translator
//! merges them). A `DefinitionUri` file is not read here: this module does no I/O.

use super::*;

/// The operation keys of an OpenAPI path item that are HTTP methods.
const METHODS: &[&str] =
    &["get", "put", "post", "delete", "options", "head", "patch", "x-amazon-apigateway-any-method"];

impl Reader<'_> {
    pub(super) fn definition_routes(&mut self, routes: &mut Vec<Route>) -> Result<(), RouteError> {
        let resources = self.resources;
        for (id, resource) in resources {
            let ty = match resource.get("Type").and_then(Value::as_str) {
                Some("AWS::Serverless::Api") => ApiType::Rest,
                Some("AWS::Serverless::HttpApi") => ApiType::Http,
                _ => continue,
            };
            let Some(body) = resource.get("Properties").and_then(|p| p.get("DefinitionBody")) else { continue };
            let Some(body) = self.eval(id, body)? else { continue };
            if body.as_intrinsic().is_some() {
                self.note(id, format!("DefinitionBody is {}; its routes are not served locally", describe(&body)));
                continue;
            }
            let Some(api) = self.api(id, ty, id, "DefinitionBody")? else { continue };
            let Some(paths) = body.get("paths").and_then(Value::as_map) else { continue };
            for (path, item) in paths {
                let Some(operations) = item.as_map() else { continue };
                for (method, operation) in operations {
                    let lower = method.to_ascii_lowercase();
                    if !METHODS.contains(&lower.as_str()) {
                        continue;
                    }
                    let security = operation.get("security").or_else(|| body.get("security"));
                    if let Some(route) = self.operation_route(&api, ty, path, &lower, operation, security, routes)? {
                        routes.push(route);
                    }
                }
            }
        }
        Ok(())
    }

    /// The route of one operation, or `None` (with a note when the user may expect one).
    #[allow(clippy::too_many_arguments)]
    fn operation_route(
        &mut self,
        api: &ApiSettings,
        ty: ApiType,
        path: &str,
        method: &str,
        operation: &Value,
        security: Option<&Value>,
        routes: &[Route],
    ) -> Result<Option<Route>, RouteError> {
        let method = normalize_method(method);
        let place = format!("DefinitionBody `{method} {path}`");
        let Some(integration) = operation.get("x-amazon-apigateway-integration") else {
            if method != "OPTIONS" {
                self.note(&api.id, format!("{place} has no x-amazon-apigateway-integration; it is not served locally"));
            }
            return Ok(None);
        };
        let integration_type = integration.get("type").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
        if integration_type != "aws_proxy" {
            if method != "OPTIONS" {
                self.note(
                    &api.id,
                    format!(
                        "{place}: integration type `{integration_type}` is not a Lambda proxy; it is not served locally"
                    ),
                );
            }
            return Ok(None);
        }
        let uri = integration.get("uri").cloned().unwrap_or_default();
        let Some(function) = self.function_from_uri(&uri) else {
            self.note(
                &api.id,
                format!(
                    "{place}: integration uri {} is not a function of this template; it is not served",
                    describe(&uri)
                ),
            );
            return Ok(None);
        };
        let kind = match ty {
            ApiType::Rest => RouteKind::Rest,
            ApiType::Http => match integration.get("payloadFormatVersion").and_then(Value::scalar_string) {
                None => RouteKind::Http(PayloadVersion::V2),
                Some(v) => match payload_version(&v) {
                    Some(p) => RouteKind::Http(p),
                    None => {
                        return Err(self.invalid(
                            &api.id,
                            format!("{place}: payloadFormatVersion `{v}` is not one API Gateway knows; use \"1.0\" or \"2.0\""),
                        ));
                    }
                },
            },
        };
        let (path, segments) = if path == DEFAULT_ROUTE && ty == ApiType::Http {
            (DEFAULT_ROUTE.to_string(), Vec::new())
        } else {
            match parse_path(path) {
                Ok(segments) => (normalize_path(path), segments),
                Err(msg) => {
                    self.note(&api.id, format!("{place}: {msg}; it is not served"));
                    return Ok(None);
                }
            }
        };
        if routes.iter().any(|r| r.api == api.id && r.method == method && r.path == path) {
            return Ok(None);
        }
        let authorizer = self.operation_authorizer(api, security, &place)?;
        Ok(Some(route_for(api, kind, method, path, segments, &function, authorizer)))
    }

    /// The authorizer `security` names, else the API's default; `security: []` is none.
    fn operation_authorizer(
        &mut self,
        api: &ApiSettings,
        security: Option<&Value>,
        place: &str,
    ) -> Result<Option<Authorizer>, RouteError> {
        let Some(security) = security else {
            return self.route_authorizer(api, &Value::Null, &api.id.clone(), place);
        };
        let first = security.as_seq().and_then(|s| s.first()).and_then(Value::as_map).and_then(|m| m.keys().next());
        let Some(name) = first else { return Ok(None) };
        match api.authorizers.get(name) {
            Some(found) => Ok(found.clone()),
            None => {
                self.note(
                    &api.id,
                    format!(
                        "{place}: security `{name}` is not a Lambda authorizer of the API; it is served without it"
                    ),
                );
                Ok(None)
            }
        }
    }

    /// The function an integration uri invokes: `!Sub ...functions/${Fn.Arn}/invocations`,
    /// the same with a literal function ARN, or (HTTP APIs) the function's ARN itself.
    fn function_from_uri(&self, uri: &Value) -> Option<String> {
        let text = match uri.as_intrinsic() {
            Some(("Fn::Sub", Value::String(s))) => s.clone(),
            Some(("Fn::Sub", Value::Seq(args))) => args.first()?.as_str()?.to_string(),
            Some(_) => return self.function_ref(uri),
            None => uri.as_str()?.to_string(),
        };
        let Some((_, after)) = text.split_once("/functions/") else {
            // An HTTP API integration may name the function's ARN directly.
            return self.function_ref(&Value::String(text));
        };
        let target = after.strip_suffix("/invocations").unwrap_or(after);
        if let Some(inner) = target.strip_prefix("${").and_then(|t| t.strip_suffix('}')) {
            let logical = inner.strip_suffix(".Arn").unwrap_or(inner);
            return self.project.function(logical).map(|f| f.res.id.clone());
        }
        self.function_ref(&Value::String(target.to_string()))
    }
}
