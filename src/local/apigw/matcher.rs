//! Which route a request takes, with API Gateway's priorities: a route matches when its method
//! is the request's (or `ANY`) and its path template covers the path; among matches, segment by
//! segment from the left an exact segment beats a `{param}`, which beats a greedy `{proxy+}`;
//! then a route's own method beats `ANY`; an HTTP API's `$default` comes last. These are the
//! HTTP API rules (AWS's "Routing API requests" page); REST APIs choose the same way for the
//! routes SAM generates. A trailing slash is ignored, as SAM does.
//!
//! Paths are matched on their raw segments, each decoded on its own, so `/files/a%2Fb` gives
//! `{name}` the value `a/b` instead of being split in two (werkzeug, under SAM, decodes first).

use indexmap::IndexMap;

use super::request::percent_decode;
use super::response::{self, HttpResponse};
use super::routes::{Route, RouteKind, Segment};

/// The route a request takes, and its path parameters (decoded).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Match<'a> {
    pub route: &'a Route,
    /// Greedy parameters hold the rest of the path without its leading slash (`a/b/c`).
    pub params: IndexMap<String, String>,
}

/// The routes of one local server.
#[derive(Debug, Clone, Default)]
pub(crate) struct Matcher {
    routes: Vec<Route>,
}

impl Matcher {
    pub fn new(routes: Vec<Route>) -> Self {
        Matcher { routes }
    }

    /// The route for `method` and the raw (percent-encoded) `path`, if any.
    pub fn find(&self, method: &str, path: &str) -> Option<Match<'_>> {
        let method = method.to_ascii_uppercase();
        let segments = split(path);
        let mut best: Option<(Rank, Match<'_>)> = None;
        for route in &self.routes {
            let method_rank = if route.method == method {
                0
            } else if route.method == "ANY" {
                1
            } else {
                continue;
            };
            let Some((path_rank, params)) = match_path(route, &segments) else { continue };
            let rank = Rank { default: route.is_default(), path: path_rank, method: method_rank };
            if best.as_ref().is_none_or(|(b, _)| rank < *b) {
                best = Some((rank, Match { route, params }));
            }
        }
        best.map(|(_, m)| m)
    }

    /// The routes whose path template covers `path`, whatever their method, best first (for
    /// CORS preflights and for listing a path's methods).
    pub fn routes_for_path(&self, path: &str) -> Vec<&Route> {
        let segments = split(path);
        let mut found: Vec<(Rank, &Route)> = self
            .routes
            .iter()
            .filter_map(|r| {
                let (path_rank, _) = match_path(r, &segments)?;
                Some((Rank { default: r.is_default(), path: path_rank, method: 0 }, r))
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found.into_iter().map(|(_, r)| r).collect()
    }

    /// The answer when no route matches: REST's 403 `Missing Authentication Token` when the
    /// server has a REST API (API Gateway's answer for an unknown path or method there), else
    /// an HTTP API's 404 `Not Found`.
    pub fn no_match(&self) -> HttpResponse {
        if self.routes.iter().any(|r| r.kind == RouteKind::Rest) || self.routes.is_empty() {
            response::missing_authentication_token()
        } else {
            response::not_found()
        }
    }
}

/// Lower is better: catch-alls last, then by path, then a route's own method before `ANY`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    default: bool,
    /// Per segment: 0 exact, 1 parameter, 2 greedy.
    path: Vec<u8>,
    method: u8,
}

/// The raw path's segments, a trailing slash dropped; `/` has none.
fn split(path: &str) -> Vec<&str> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let path = path.strip_suffix('/').unwrap_or(path);
    if path.is_empty() { Vec::new() } else { path.split('/').collect() }
}

fn match_path(route: &Route, segments: &[&str]) -> Option<(Vec<u8>, IndexMap<String, String>)> {
    if route.is_default() {
        return Some((Vec::new(), IndexMap::new()));
    }
    let mut rank = Vec::with_capacity(route.segments.len());
    let mut params = IndexMap::new();
    for (i, seg) in route.segments.iter().enumerate() {
        match seg {
            Segment::Greedy(name) => {
                let rest = segments.get(i..).filter(|r| !r.is_empty())?.join("/");
                if rest.is_empty() {
                    return None;
                }
                params.insert(name.clone(), percent_decode(&rest));
                rank.push(2);
                return Some((rank, params));
            }
            Segment::Exact(text) => {
                if percent_decode(segments.get(i)?) != *text {
                    return None;
                }
                rank.push(0);
            }
            Segment::Param(name) => {
                let raw = segments.get(i).filter(|s| !s.is_empty())?;
                params.insert(name.clone(), percent_decode(raw));
                rank.push(1);
            }
        }
    }
    (segments.len() == route.segments.len()).then_some((rank, params))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::apigw::routes::{DEFAULT_ROUTE, PayloadVersion, parse_path};

    fn route(method: &str, path: &str, function: &str) -> Route {
        let kind = if path == DEFAULT_ROUTE { RouteKind::Http(PayloadVersion::V2) } else { RouteKind::Rest };
        Route {
            api: "Api".into(),
            kind,
            method: method.into(),
            path: path.into(),
            segments: if path == DEFAULT_ROUTE { Vec::new() } else { parse_path(path).unwrap() },
            function: function.into(),
            stage: "Prod".into(),
            stage_variables: IndexMap::new(),
            binary_media_types: Vec::new(),
            cors: None,
            authorizer: None,
            preflight_authorizer: None,
        }
    }

    fn matcher(routes: &[(&str, &str, &str)]) -> Matcher {
        Matcher::new(routes.iter().map(|(m, p, f)| route(m, p, f)).collect())
    }

    fn hit(m: &Matcher, method: &str, path: &str) -> Option<(String, Vec<(String, String)>)> {
        m.find(method, path).map(|found| {
            (found.route.function.clone(), found.params.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        })
    }

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn exact_segment_beats_parameter_beats_greedy() {
        let m =
            matcher(&[("GET", "/{proxy+}", "greedy"), ("GET", "/users/{id}", "param"), ("GET", "/users/me", "exact")]);
        assert_eq!(hit(&m, "GET", "/users/me"), Some(("exact".into(), p(&[]))));
        assert_eq!(hit(&m, "GET", "/users/42"), Some(("param".into(), p(&[("id", "42")]))));
        assert_eq!(hit(&m, "GET", "/users/42/x"), Some(("greedy".into(), p(&[("proxy", "users/42/x")]))));
    }

    #[test]
    fn the_leftmost_difference_decides() {
        let m = matcher(&[("GET", "/{a}/b", "param-first"), ("GET", "/a/{b}", "exact-first")]);
        assert_eq!(hit(&m, "GET", "/a/b").unwrap().0, "exact-first");
        let m = matcher(&[("GET", "/{proxy+}", "root"), ("GET", "/pets/{proxy+}", "pets")]);
        assert_eq!(hit(&m, "GET", "/pets/dog/1"), Some(("pets".into(), p(&[("proxy", "dog/1")]))));
        assert_eq!(hit(&m, "GET", "/cats/1").unwrap().0, "root");
    }

    #[test]
    fn own_method_beats_any_and_other_methods_do_not_match() {
        let m = matcher(&[("ANY", "/items", "any"), ("POST", "/items", "post")]);
        assert_eq!(hit(&m, "post", "/items").unwrap().0, "post");
        assert_eq!(hit(&m, "GET", "/items").unwrap().0, "any");
        let m = matcher(&[("POST", "/items", "post"), ("ANY", "/{proxy+}", "fallback")]);
        assert_eq!(hit(&m, "DELETE", "/items").unwrap().0, "fallback");
        let m = matcher(&[("POST", "/items", "post")]);
        assert_eq!(hit(&m, "GET", "/items"), None);
    }

    #[test]
    fn a_more_specific_path_beats_a_method_match() {
        let m = matcher(&[("GET", "/{proxy+}", "get-greedy"), ("ANY", "/users", "any-exact")]);
        assert_eq!(hit(&m, "GET", "/users").unwrap().0, "any-exact");
    }

    #[test]
    fn default_route_comes_last() {
        let m = matcher(&[("ANY", DEFAULT_ROUTE, "default"), ("ANY", "/{proxy+}", "greedy"), ("GET", "/", "root")]);
        assert_eq!(hit(&m, "GET", "/").unwrap().0, "root");
        assert_eq!(hit(&m, "GET", "/x/y").unwrap().0, "greedy");
        assert_eq!(hit(&m, "POST", "/").unwrap().0, "default");
    }

    #[test]
    fn trailing_slash_is_ignored() {
        let m = matcher(&[("GET", "/users/{id}", "param"), ("GET", "/", "root")]);
        assert_eq!(hit(&m, "GET", "/users/7/"), Some(("param".into(), p(&[("id", "7")]))));
        assert_eq!(hit(&m, "GET", "/").unwrap().0, "root");
        assert_eq!(hit(&m, "GET", "").unwrap().0, "root");
    }

    #[test]
    fn greedy_needs_at_least_one_segment() {
        let m = matcher(&[("GET", "/files/{path+}", "files")]);
        assert_eq!(hit(&m, "GET", "/files"), None);
        assert_eq!(hit(&m, "GET", "/files/"), None);
        assert_eq!(hit(&m, "GET", "/files/a"), Some(("files".into(), p(&[("path", "a")]))));
    }

    #[test]
    fn segment_counts_must_agree() {
        let m = matcher(&[("GET", "/users/{id}", "param")]);
        assert_eq!(hit(&m, "GET", "/users"), None);
        assert_eq!(hit(&m, "GET", "/users/1/2"), None);
        assert_eq!(hit(&m, "GET", "/users//"), None);
    }

    #[test]
    fn parameters_are_decoded_per_segment() {
        let m =
            matcher(&[("GET", "/files/{name}", "one"), ("GET", "/all/{rest+}", "rest"), ("GET", "/a b/x", "space")]);
        assert_eq!(hit(&m, "GET", "/files/a%2Fb"), Some(("one".into(), p(&[("name", "a/b")]))));
        assert_eq!(hit(&m, "GET", "/files/caf%C3%A9"), Some(("one".into(), p(&[("name", "café")]))));
        assert_eq!(hit(&m, "GET", "/all/x%20y/z"), Some(("rest".into(), p(&[("rest", "x y/z")]))));
        assert_eq!(hit(&m, "GET", "/a%20b/x").unwrap().0, "space");
    }

    #[test]
    fn exact_segments_are_case_sensitive() {
        let m = matcher(&[("GET", "/Users", "upper")]);
        assert_eq!(hit(&m, "GET", "/users"), None);
    }

    #[test]
    fn routes_for_path_lists_every_method_best_first() {
        let m = matcher(&[("GET", "/{proxy+}", "g"), ("POST", "/a", "p"), ("DELETE", "/a", "d"), ("GET", "/b", "b")]);
        let found: Vec<&str> = m.routes_for_path("/a").iter().map(|r| r.function.as_str()).collect();
        assert_eq!(found, ["p", "d", "g"]);
    }

    #[test]
    fn no_match_is_403_with_a_rest_api_and_404_with_only_http_apis() {
        let rest = matcher(&[("GET", "/a", "a")]);
        let answer = rest.no_match();
        assert_eq!(answer.status, 403);
        assert_eq!(answer.body, br#"{"message":"Missing Authentication Token"}"#);
        let mut only_http = route("GET", "/a", "a");
        only_http.kind = RouteKind::Http(PayloadVersion::V2);
        let answer = Matcher::new(vec![only_http]).no_match();
        assert_eq!(answer.status, 404);
        assert_eq!(answer.body, br#"{"message":"Not Found"}"#);
    }
}
