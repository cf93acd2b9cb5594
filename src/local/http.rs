//! The HTTP side of lamb's local servers: a listener that says which address is taken when it
//! is, connections served with keep-alive and `TCP_NODELAY`, and plain responses.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;

use super::LocalError;

/// A response body.
pub type Body = Full<Bytes>;

/// Listens on `host:port`; an address in use is an error naming it and the fix.
pub async fn listen(host: &str, port: u16, flag: &str) -> Result<TcpListener, LocalError> {
    TcpListener::bind((host, port)).await.map_err(|source| {
        if source.kind() == std::io::ErrorKind::AddrInUse {
            LocalError::PortInUse { addr: format!("{host}:{port}"), flag: flag.to_string() }
        } else {
            LocalError::Io { what: format!("cannot listen on {host}:{port}"), source }
        }
    })
}

/// Serves every connection of `listener` with `handle` until the task is dropped.
pub async fn serve<F, Fut>(listener: TcpListener, handle: Arc<F>)
where
    F: Fn(Request<Incoming>, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    loop {
        let Ok((stream, peer)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        let handle = handle.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let handle = handle.clone();
                async move { Ok::<_, Infallible>(handle(req, peer).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(io, service).await;
        });
    }
}

/// A response with `status`, `headers` and `body`.
pub fn response(status: u16, headers: &[(String, String)], body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) =
            (hyper::header::HeaderName::from_bytes(k.as_bytes()), hyper::header::HeaderValue::from_str(v))
        {
            r.headers_mut().append(k, v);
        }
    }
    r
}

/// A JSON response.
pub fn json(status: u16, extra: &[(String, String)], body: &serde_json::Value) -> Response<Body> {
    let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    headers.extend_from_slice(extra);
    response(status, &headers, body.to_string())
}
