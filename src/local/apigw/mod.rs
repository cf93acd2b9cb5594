//! API Gateway as `lamb local start-api` emulates it, as pure functions: which routes a template
//! declares (`routes`), which route a request takes (`matcher`), the event a function receives
//! (`event`), the HTTP answer made of its output (`response`), CORS (`cors`) and Lambda
//! authorizers (`authorizer`). Nothing here opens a socket, starts a process or reads the clock:
//! the server passes the time, request ids and the request in, and sends back what it gets out.
//!
//! One request, as the server is meant to drive these:
//!
//! 1. `cors::preflight(&matcher, &req)`: an OPTIONS request to a path of an API with CORS is
//!    answered without the function (a REST API's default authorizer may have to pass first:
//!    `Preflight::authorizer`).
//! 2. `matcher.find(method, path)`; no match is `matcher.no_match()` (403 or 404).
//! 3. With `route.authorizer`: `authorizer::request` (a 401 without calling anything when the
//!    identity is missing), invoke the authorizer function, `authorizer::decide`, then
//!    `authorizer::denied` / `authorizer::failed`, or `authorizer::attach` after step 4.
//! 4. `event::build_event`, invoke the function; a function error (the runtime posted to
//!    `/invocation/{id}/error`) or a timeout is `response::integration_error(route.kind)`; a
//!    result goes through `response::parse_response`, whose `Err` is logged and answered with
//!    `integration_error` too.
//! 5. `cors::apply(route, &req, &mut response)`, and send it.

pub(crate) mod authorizer;
pub(crate) mod cors;
pub(crate) mod event;
pub(crate) mod matcher;
pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod routes;

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
