//! API Gateway as `lamb local start-api` emulates it, as pure functions: which routes a template
//! declares (`routes`), which route a request takes (`matcher`), the event a function receives
//! (`event`), the HTTP answer made of its output (`response`), CORS (`cors`) and Lambda
//! authorizers (`authorizer`). Nothing here opens a socket, starts a process or reads the clock:
//! the server passes the time, request ids and the request in, and sends back what it gets out.

pub(crate) mod authorizer;
pub(crate) mod cors;
pub(crate) mod event;
pub(crate) mod matcher;
pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod routes;

#[cfg(test)]
pub(crate) mod testing;
