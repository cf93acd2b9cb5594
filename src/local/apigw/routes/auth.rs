//! CORS and Lambda authorizers as an API declares them: REST APIs' `Cors` (single-quoted header
//! values), HTTP APIs' `CorsConfiguration`, and `Auth.Authorizers` (TOKEN or REQUEST, their
//! identity sources and payload versions).

use super::*;

impl Reader<'_> {
    /// A REST API's `Cors`: `"'origin'"`, or a map of single-quoted header values.
    pub(super) fn rest_cors(&mut self, id: &str, v: &Value) -> Result<Option<Cors>, RouteError> {
        let quoted = |this: &Self, key: &str, v: &Value| -> Result<String, RouteError> {
            match v.as_str().and_then(|s| s.strip_prefix('\'')).and_then(|s| s.strip_suffix('\'')) {
                Some(inner) => Ok(inner.to_string()),
                None => Err(this.invalid(
                    id,
                    format!(
                        "Cors{key} is {}; API Gateway takes header values in single quotes inside the string, e.g. \"'*'\"",
                        match v.as_str() {
                            Some(s) => format!("`{s}`"),
                            None => describe(v),
                        }
                    ),
                )),
            }
        };
        match v {
            Value::String(_) => Ok(Some(Cors::Rest(RestCors {
                allow_origin: quoted(self, "", v)?,
                allow_methods: None,
                allow_headers: None,
                allow_credentials: None,
                max_age: None,
            }))),
            Value::Map(m) => {
                let Some(origin) = m.get("AllowOrigin") else {
                    return Err(self.invalid(id, "Cors needs AllowOrigin, e.g. `AllowOrigin: \"'*'\"`".into()));
                };
                let get = |key: &str| -> Result<Option<String>, RouteError> {
                    match m.get(key) {
                        None => Ok(None),
                        Some(Value::Bool(b)) if key == "AllowCredentials" => Ok(b.then(|| "true".to_string())),
                        Some(v) => quoted(self, &format!(".{key}"), v).map(Some),
                    }
                };
                Ok(Some(Cors::Rest(RestCors {
                    allow_origin: quoted(self, ".AllowOrigin", origin)?,
                    allow_methods: get("AllowMethods")?,
                    allow_headers: get("AllowHeaders")?,
                    allow_credentials: get("AllowCredentials")?,
                    max_age: get("MaxAge")?,
                })))
            }
            other => {
                self.note(id, format!("Cors is {}; CORS is off locally", describe(other)));
                Ok(None)
            }
        }
    }

    /// An HTTP API's `CorsConfiguration` (`true`, or a map of lists) or a function URL's `Cors`.
    pub(super) fn http_cors(&mut self, id: &str, key: &str, v: &Value) -> Result<Option<Cors>, RouteError> {
        match v {
            Value::Bool(false) => Ok(None),
            Value::Bool(true) => {
                Ok(Some(Cors::Http(HttpCors { allow_origins: vec!["*".into()], ..HttpCors::default() })))
            }
            Value::Map(m) => {
                let list = |this: &Self, name: &str| -> Result<Vec<String>, RouteError> {
                    match m.get(name) {
                        None => Ok(Vec::new()),
                        Some(Value::Seq(items)) => items
                            .iter()
                            .map(|i| {
                                i.scalar_string().ok_or_else(|| {
                                    this.invalid(id, format!("{key}.{name} has {}; use plain strings", describe(i)))
                                })
                            })
                            .collect(),
                        Some(Value::String(s)) => Ok(vec![s.clone()]),
                        Some(other) => {
                            Err(this.invalid(id, format!("{key}.{name} must be a list, not {}", other.kind())))
                        }
                    }
                };
                let allow_credentials = match m.get("AllowCredentials") {
                    None => false,
                    Some(Value::Bool(b)) => *b,
                    Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
                    Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
                    Some(other) => {
                        return Err(self.invalid(
                            id,
                            format!("{key}.AllowCredentials must be true or false, not {}", describe(other)),
                        ));
                    }
                };
                let max_age = match m.get("MaxAge") {
                    None => None,
                    Some(v) => match v.scalar_string().and_then(|s| s.parse::<i64>().ok()) {
                        Some(n) => Some(n),
                        None => {
                            return Err(self.invalid(
                                id,
                                format!("{key}.MaxAge must be a number of seconds, not {}", describe(v)),
                            ));
                        }
                    },
                };
                Ok(Some(Cors::Http(HttpCors {
                    allow_origins: list(self, "AllowOrigins")?,
                    allow_methods: list(self, "AllowMethods")?,
                    allow_headers: list(self, "AllowHeaders")?,
                    expose_headers: list(self, "ExposeHeaders")?,
                    allow_credentials,
                    max_age,
                })))
            }
            other => {
                self.note(id, format!("{key} is {}; CORS is off locally", describe(other)));
                Ok(None)
            }
        }
    }

    /// One entry of `Auth.Authorizers`; `None` (with a note) for one that is not a Lambda
    /// authorizer.
    pub(super) fn authorizer(
        &mut self,
        api: &str,
        ty: ApiType,
        name: &str,
        def: &Value,
    ) -> Result<Option<Authorizer>, RouteError> {
        let Some(arn) = def.get("FunctionArn") else {
            let what = if def.get("UserPoolArn").is_some() {
                "a Cognito user pool authorizer"
            } else if def.get("JwtConfiguration").is_some() {
                "a JWT authorizer"
            } else {
                "not a Lambda authorizer (it has no FunctionArn)"
            };
            self.note(
                api,
                format!(
                    "authorizer `{name}` is {what}, which lamb does not run locally; its routes are served without it"
                ),
            );
            return Ok(None);
        };
        let Some(function) = self.function_ref(arn) else {
            self.note(
                api,
                format!(
                    "authorizer `{name}` has FunctionArn {}, which is not a function of this template; its routes are served without it",
                    describe(arn)
                ),
            );
            return Ok(None);
        };
        let identity = def.get("Identity");
        let list = |key: &str| -> Vec<String> {
            match identity.and_then(|i| i.get(key)) {
                Some(Value::Seq(items)) => items.iter().filter_map(Value::scalar_string).collect(),
                Some(v) => v.scalar_string().into_iter().collect(),
                None => Vec::new(),
            }
        };
        let request_identity = || -> Vec<IdentitySource> {
            let mut out: Vec<IdentitySource> = list("Headers").into_iter().map(IdentitySource::Header).collect();
            out.extend(list("QueryStrings").into_iter().map(IdentitySource::QueryString));
            out.extend(list("StageVariables").into_iter().map(IdentitySource::StageVariable));
            out.extend(list("Context").into_iter().map(IdentitySource::Context));
            out
        };
        let place = format!("authorizer `{name}`");
        match ty {
            ApiType::Rest => {
                let payload_type = def.get("FunctionPayloadType").and_then(Value::scalar_string);
                let kind = match payload_type.as_deref().map(str::to_ascii_uppercase).as_deref() {
                    None | Some("TOKEN") => {
                        let header = identity
                            .and_then(|i| i.get("Header"))
                            .and_then(Value::scalar_string)
                            .unwrap_or_else(|| "Authorization".to_string());
                        let validation =
                            identity.and_then(|i| i.get("ValidationExpression")).and_then(Value::scalar_string);
                        if let Some(re) = &validation
                            && let Err(e) = regex_lite::Regex::new(re)
                        {
                            return Err(self.invalid(api, format!("{place}: Identity.ValidationExpression `{re}` is not a valid regular expression: {e}")));
                        }
                        AuthorizerKind::Token { header, validation }
                    }
                    Some("REQUEST") => AuthorizerKind::Request,
                    Some(other) => {
                        return Err(self
                            .invalid(api, format!("{place}: FunctionPayloadType `{other}` is not TOKEN or REQUEST")));
                    }
                };
                let identity = match &kind {
                    AuthorizerKind::Token { header, .. } => vec![IdentitySource::Header(header.clone())],
                    AuthorizerKind::Request => request_identity(),
                };
                Ok(Some(Authorizer {
                    name: name.to_string(),
                    function,
                    kind,
                    identity,
                    payload: PayloadVersion::V1,
                    simple_responses: false,
                }))
            }
            ApiType::Http => {
                let version = match def.get("AuthorizerPayloadFormatVersion").and_then(Value::scalar_string) {
                    Some(v) => match payload_version(&v) {
                        Some(p) => p,
                        None => {
                            return Err(self.invalid(
                                api,
                                format!("{place}: AuthorizerPayloadFormatVersion `{v}` is not \"1.0\" or \"2.0\""),
                            ));
                        }
                    },
                    None => {
                        return Err(self.invalid(
                            api,
                            format!("{place} needs AuthorizerPayloadFormatVersion (\"1.0\" or \"2.0\"); add it"),
                        ));
                    }
                };
                let simple = matches!(def.get("EnableSimpleResponses"), Some(Value::Bool(true)));
                if simple && version == PayloadVersion::V1 {
                    return Err(self.invalid(
                        api,
                        format!("{place}: EnableSimpleResponses needs AuthorizerPayloadFormatVersion \"2.0\""),
                    ));
                }
                Ok(Some(Authorizer {
                    name: name.to_string(),
                    function,
                    kind: AuthorizerKind::Request,
                    identity: request_identity(),
                    payload: version,
                    simple_responses: simple,
                }))
            }
        }
    }
}
