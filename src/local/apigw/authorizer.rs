//! Lambda authorizers: the identity check API Gateway makes before calling one, the event the
//! authorizer function receives, what its answer decides, and API Gateway's answers when it
//! says no.
//!
//! The flow for a route with an [`Authorizer`]: [`request`] checks the identity sources (one
//! missing, or a TOKEN that fails the ValidationExpression, is a 401 without calling anything)
//! and builds the event; the server invokes the authorizer function; [`decide`] reads its
//! answer (an IAM policy, or with EnableSimpleResponses `{"isAuthorized": ...}`); on
//! [`Decision::Allow`], [`attach`] puts the context into the route's event, on
//! [`Decision::Deny`] the client gets [`denied`], and a failed or unreadable authorizer gets
//! [`failed`]. Results are not cached (as with SAM): every request calls the authorizer.
//!
//! API Gateway's texts, which lamb sends as they are: 401 `{"message":"Unauthorized"}` (both
//! API kinds); a REST policy without a matching Allow 403 `{"message":"User is not authorized
//! to access this resource"}`, and with a matching Deny 403 `{"Message":"User is not authorized
//! to access this resource with an explicit deny"}` (capital M: API Gateway's own spelling);
//! an HTTP API's 403 `{"message":"Forbidden"}`. An authorizer that fails or answers something
//! unreadable is API Gateway's AuthorizerConfigurationException: REST 500 `{"message": null}`,
//! HTTP API 500 `{"message":"Internal Server Error"}`, where SAM answers 502. An authorizer
//! that fails with the error message `Unauthorized` is the documented way to ask for a 401.

use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use super::event::{API_ID, Stamp, build_event};
use super::request::HttpRequest;
use super::response::{self, HttpResponse};
use super::routes::{Authorizer, AuthorizerKind, IdentitySource, PayloadVersion, Route, RouteKind};

/// What the authorizer's answer decides.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    Allow {
        principal_id: Option<String>,
        /// The answer's `context`, passed on to the function.
        context: Map<String, Value>,
    },
    /// `explicit`: a Deny statement matched (REST words that differently).
    Deny { explicit: bool },
}

/// The event for the authorizer function, or the 401 API Gateway answers without calling it
/// when an identity source is missing (or a TOKEN fails its ValidationExpression).
pub(crate) fn request(
    auth: &Authorizer,
    route: &Route,
    params: &IndexMap<String, String>,
    req: &HttpRequest,
    stamp: &Stamp,
) -> Result<Value, HttpResponse> {
    let arn = method_arn(route, req, stamp);
    // The authorizer's payload version is its own, whatever the route's integration uses.
    let mut shaped = route.clone();
    if route.kind != RouteKind::Rest {
        shaped.kind = RouteKind::Http(auth.payload);
    }
    let event = build_event(&shaped, params, req, stamp);
    let identity = identity(auth, route, req, &event).ok_or_else(unauthorized)?;
    if let AuthorizerKind::Token { validation, .. } = &auth.kind {
        let token = identity.first().map(String::as_str).unwrap_or_default();
        if let Some(re) = validation
            && !full_match(re, token)
        {
            return Err(unauthorized());
        }
        return Ok(json!({ "type": "TOKEN", "authorizationToken": token, "methodArn": arn }));
    }
    let Value::Object(mut event) = event else { unreachable!("events are objects") };
    event.remove("body");
    event.remove("isBase64Encoded");
    let mut out = Map::new();
    if auth.payload == PayloadVersion::V2 {
        out.insert("version".into(), "2.0".into());
        out.insert("type".into(), "REQUEST".into());
        out.insert("routeArn".into(), arn.into());
        out.insert("identitySource".into(), identity.into());
    } else {
        out.insert("type".into(), "REQUEST".into());
        out.insert("methodArn".into(), arn.into());
        if route.kind != RouteKind::Rest {
            let joined = identity.join(",");
            out.insert("identitySource".into(), joined.clone().into());
            out.insert("authorizationToken".into(), joined.into());
        }
    }
    for (k, v) in event {
        out.entry(k).or_insert(v);
    }
    Ok(Value::Object(out))
}

/// `arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{METHOD}/{path}`, the resource an
/// authorizer's policy is checked against.
pub(crate) fn method_arn(route: &Route, req: &HttpRequest, stamp: &Stamp) -> String {
    let partition = match stamp.region {
        r if r.starts_with("cn-") => "aws-cn",
        r if r.starts_with("us-gov-") => "aws-us-gov",
        _ => "aws",
    };
    format!(
        "arn:{partition}:execute-api:{}:{}:{API_ID}/{}/{}{}",
        stamp.region,
        stamp.account_id,
        route.stage,
        req.method.to_ascii_uppercase(),
        req.decoded_path()
    )
}

/// The identity sources' values, in order; `None` when one is missing or empty.
fn identity(auth: &Authorizer, route: &Route, req: &HttpRequest, event: &Value) -> Option<Vec<String>> {
    let mut out = Vec::with_capacity(auth.identity.len());
    for source in &auth.identity {
        let value = match source {
            IdentitySource::Header(name) => {
                let values: Vec<&str> = req.header_values(name).collect();
                (!values.is_empty()).then(|| values.join(","))
            }
            IdentitySource::QueryString(name) => {
                let values: Vec<String> =
                    req.query_pairs().into_iter().filter(|(k, _)| k == name).map(|(_, v)| v).collect();
                (!values.is_empty()).then(|| values.join(","))
            }
            IdentitySource::StageVariable(name) => route.stage_variables.get(name).cloned(),
            IdentitySource::Context(path) => {
                let path = path.trim_start_matches('$').trim_start_matches("context.");
                let found = path.split('.').try_fold(&event["requestContext"], |v, key| v.get(key));
                match found {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(v @ (Value::Number(_) | Value::Bool(_))) => Some(v.to_string()),
                    _ => None,
                }
            }
        };
        out.push(value.filter(|v| !v.trim().is_empty())?);
    }
    Some(out)
}

/// Whether `re` matches all of `text` (API Gateway tests the whole token).
fn full_match(re: &str, text: &str) -> bool {
    regex_lite::Regex::new(&format!("^(?:{re})$")).is_ok_and(|r| r.is_match(text))
}

/// What the authorizer function's `output` decides for `method_arn`; `Err` with the reason
/// (for the log) when it cannot be read (the client then gets [`failed`]).
pub(crate) fn decide(auth: &Authorizer, output: &[u8], method_arn: &str) -> Result<Decision, String> {
    let value: Value = serde_json::from_slice(output)
        .map_err(|e| format!("authorizer `{}` answered with something that is not JSON ({e})", auth.name))?;
    let Value::Object(obj) = value else {
        return Err(format!("authorizer `{}` answered {value} instead of an object", auth.name));
    };
    let context = match obj.get("context") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => return Err(format!("authorizer `{}`: context must be an object, not {other}", auth.name)),
    };
    if auth.simple_responses {
        return match obj.get("isAuthorized") {
            Some(Value::Bool(true)) => Ok(Decision::Allow { principal_id: None, context }),
            Some(Value::Bool(false)) => Ok(Decision::Deny { explicit: false }),
            _ => Err(format!(
                "authorizer `{}` has EnableSimpleResponses but its answer has no boolean isAuthorized",
                auth.name
            )),
        };
    }
    let principal_id = obj.get("principalId").and_then(|p| match p {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    });
    let Some(policy) = obj.get("policyDocument") else {
        return Err(format!("authorizer `{}` answered without a policyDocument", auth.name));
    };
    let statements: Vec<&Value> = match policy.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => return Err(format!("authorizer `{}`: policyDocument has no Statement", auth.name)),
    };
    let mut allowed = false;
    for s in statements {
        let effect = s.get("Effect").and_then(Value::as_str).unwrap_or_default();
        let invokes = strings(s.get("Action")).iter().any(|a| wildcard_match(a, "execute-api:Invoke"));
        let covers = strings(s.get("Resource")).iter().any(|r| wildcard_match(r, method_arn));
        if !(invokes && covers) {
            continue;
        }
        if effect.eq_ignore_ascii_case("Deny") {
            return Ok(Decision::Deny { explicit: true });
        }
        allowed |= effect.eq_ignore_ascii_case("Allow");
    }
    Ok(if allowed { Decision::Allow { principal_id, context } } else { Decision::Deny { explicit: false } })
}

/// A string or a list of strings.
fn strings(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// IAM's wildcards: `*` any run of characters (slashes too), `?` one character.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Puts an Allow's context where the function finds it: payload 1.0's
/// `requestContext.authorizer` (the context plus `principalId`), 2.0's
/// `requestContext.authorizer.lambda`.
pub(crate) fn attach(event: &mut Value, decision: &Decision) {
    let Decision::Allow { principal_id, context } = decision else { return };
    let v2 = event.get("version").and_then(Value::as_str) == Some("2.0");
    let authorizer = if v2 {
        json!({ "lambda": context })
    } else {
        let mut m = context.clone();
        m.insert("principalId".into(), principal_id.clone().map_or(Value::Null, Value::String));
        Value::Object(m)
    };
    if let Some(ctx) = event.get_mut("requestContext").and_then(Value::as_object_mut) {
        ctx.insert("authorizer".into(), authorizer);
    }
}

/// 401: an identity source is missing, or the authorizer asked for it.
pub(crate) fn unauthorized() -> HttpResponse {
    response::message(401, "Unauthorized")
}

/// 403 for a Deny, in the API kind's words.
pub(crate) fn denied(kind: RouteKind, explicit: bool) -> HttpResponse {
    match (kind, explicit) {
        (RouteKind::Rest, true) => HttpResponse {
            status: 403,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: json!({ "Message": "User is not authorized to access this resource with an explicit deny" })
                .to_string()
                .into_bytes(),
        },
        (RouteKind::Rest, false) => response::message(403, "User is not authorized to access this resource"),
        _ => response::message(403, "Forbidden"),
    }
}

/// The authorizer function failed (`error_message` is its errorMessage) or answered something
/// [`decide`] could not read (`None`).
pub(crate) fn failed(kind: RouteKind, error_message: Option<&str>) -> HttpResponse {
    if error_message == Some("Unauthorized") {
        return unauthorized();
    }
    match kind {
        RouteKind::Rest => HttpResponse {
            status: 500,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: br#"{"message":null}"#.to_vec(),
        },
        _ => response::message(500, "Internal Server Error"),
    }
}

#[cfg(test)]
mod tests;
