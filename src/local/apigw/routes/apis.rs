//! An API's settings as the template gives them: its stage, stage variables, binary media types,
//! CORS and authorizers (an explicit API's properties with its Globals, or an implicit API's
//! Globals).

use super::*;

impl Reader<'_> {
    /// The settings of API `id`, read once; `None` when its Condition leaves it out.
    pub(super) fn api(
        &mut self,
        id: &str,
        ty: ApiType,
        function: &str,
        event: &str,
    ) -> Result<Option<ApiSettings>, RouteError> {
        if let Some(found) = self.apis.get(id) {
            return Ok(found.clone());
        }
        let implicit = matches!((id, ty), (IMPLICIT_REST_API, ApiType::Rest) | (IMPLICIT_HTTP_API, ApiType::Http));
        let resource = match self.resources.get(id) {
            Some(r) => Some(r),
            None if implicit => None,
            None => {
                let names = self
                    .resources
                    .iter()
                    .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(ty.resource_type()))
                    .map(|(k, _)| k.as_str());
                let hint = closest(id, names).map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default();
                return Err(RouteError::UnknownApi {
                    file: self.file.to_path_buf(),
                    place: format!("function `{function}` event `{event}`"),
                    api: id.to_string(),
                    ty,
                    hint,
                });
            }
        };
        if let Some(r) = resource {
            let found = r.get("Type").and_then(Value::as_str).unwrap_or("a resource without a Type");
            if found != ty.resource_type() {
                return Err(RouteError::WrongApiType {
                    file: self.file.to_path_buf(),
                    place: format!("function `{function}` event `{event}`"),
                    api: id.to_string(),
                    found: format!("an {found}"),
                    ty,
                });
            }
            if self.excluded(id, r)? {
                self.note(id, "its Condition is false, so its routes are not served".into());
                self.apis.insert(id.to_string(), None);
                return Ok(None);
            }
        }
        let props = match resource {
            Some(r) => self.properties(r, ty.globals_section()),
            None => {
                let section = self.globals.and_then(|g| g.get(ty.globals_section()));
                globals::apply(section, &Value::Map(IndexMap::new()), None)
            }
        };
        let props = self.eval(id, &props)?.unwrap_or_default();
        if resource.is_some() && props.get("DefinitionUri").is_some() {
            self.note(
                id,
                "routes declared only in its DefinitionUri file are not served locally; function events and an inline DefinitionBody are".into(),
            );
        }
        let settings = self.api_settings(id, ty, resource.is_none(), &props)?;
        self.apis.insert(id.to_string(), Some(settings.clone()));
        Ok(Some(settings))
    }

    pub(super) fn api_settings(
        &mut self,
        id: &str,
        ty: ApiType,
        implicit: bool,
        props: &Value,
    ) -> Result<ApiSettings, RouteError> {
        let stage = match (ty, implicit, props.get("StageName")) {
            (ApiType::Rest, true, _) => IMPLICIT_REST_STAGE.to_string(),
            (_, _, Some(v)) => match v.scalar_string() {
                Some(s) => s,
                None => {
                    let fallback = if ty == ApiType::Rest { IMPLICIT_REST_STAGE } else { DEFAULT_STAGE };
                    self.note(id, format!("StageName is {}; the stage is `{fallback}` locally", describe(v)));
                    fallback.to_string()
                }
            },
            (ApiType::Rest, false, None) => {
                return Err(self
                    .invalid(id, "an AWS::Serverless::Api needs a StageName; add one, e.g. `StageName: Prod`".into()));
            }
            (ApiType::Http, _, None) => DEFAULT_STAGE.to_string(),
        };
        let vars_key = if ty == ApiType::Rest { "Variables" } else { "StageVariables" };
        let stage_variables = self.string_map(id, props, vars_key);
        let binary_media_types = match (ty, props.get("BinaryMediaTypes")) {
            (ApiType::Rest, Some(Value::Seq(items))) => {
                let mut out = Vec::new();
                for item in items {
                    match item.as_str() {
                        Some(s) => out.push(s.replace("~1", "/")),
                        None => {
                            self.note(id, format!("BinaryMediaTypes has {}; it is ignored locally", describe(item)))
                        }
                    }
                }
                out
            }
            (ApiType::Rest, Some(other)) => {
                return Err(self.invalid(id, format!("BinaryMediaTypes must be a list, not {}", other.kind())));
            }
            _ => Vec::new(),
        };
        let cors = match ty {
            ApiType::Rest => props.get("Cors").map(|c| self.rest_cors(id, c)).transpose()?.flatten(),
            ApiType::Http => props
                .get("CorsConfiguration")
                .map(|c| self.http_cors(id, "CorsConfiguration", c))
                .transpose()?
                .flatten(),
        };
        let auth = props.get("Auth");
        let mut authorizers = IndexMap::new();
        if let Some(defs) = auth.and_then(|a| a.get("Authorizers")) {
            let Some(defs) = defs.as_map() else {
                return Err(self
                    .invalid(id, format!("Auth.Authorizers must be a map of named authorizers, not {}", defs.kind())));
            };
            for (name, def) in defs {
                let a = self.authorizer(id, ty, name, def)?;
                authorizers.insert(name.clone(), a);
            }
        }
        let default_authorizer = match auth.and_then(|a| a.get("DefaultAuthorizer")) {
            None => None,
            Some(v) => match v.as_str() {
                Some(s) => Some(s.to_string()),
                None => {
                    self.note(id, format!("Auth.DefaultAuthorizer is {}; routes are served without it", describe(v)));
                    None
                }
            },
        };
        if let Some(name) = &default_authorizer
            && !matches!(name.as_str(), "NONE" | "AWS_IAM")
            && !authorizers.contains_key(name)
        {
            let names: Vec<&str> = authorizers.keys().map(String::as_str).collect();
            let known =
                closest(name, names.iter().copied()).map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default();
            return Err(RouteError::UnknownAuthorizer {
                file: self.file.to_path_buf(),
                place: format!("API `{id}` Auth.DefaultAuthorizer"),
                name: name.clone(),
                api: id.to_string(),
                known,
            });
        }
        let default_on_preflight = ty == ApiType::Rest
            && !matches!(auth.and_then(|a| a.get("AddDefaultAuthorizerToCorsPreflight")), Some(Value::Bool(false)));
        Ok(ApiSettings {
            id: id.to_string(),
            stage,
            stage_variables,
            binary_media_types,
            cors,
            authorizers,
            default_authorizer,
            default_on_preflight,
        })
    }

    /// A map of names to scalar values (stage variables); other values are noted and left out.
    pub(super) fn string_map(&mut self, id: &str, props: &Value, key: &str) -> IndexMap<String, String> {
        let mut out = IndexMap::new();
        match props.get(key) {
            None => {}
            Some(Value::Map(m)) => {
                for (k, v) in m {
                    match v.scalar_string() {
                        Some(s) => {
                            out.insert(k.clone(), s);
                        }
                        None => self.note(id, format!("{key}.{k} is {}; it is left out locally", describe(v))),
                    }
                }
            }
            Some(other) => self.note(id, format!("{key} is {}, not a map; it is ignored locally", describe(other))),
        }
        out
    }
}
