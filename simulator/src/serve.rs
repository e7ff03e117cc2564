//! The HTTP/1 accept loop. It is hand-rolled (hyper instead of `axum::serve`) for one reason:
//! a handler must be able to close its own connection without writing a byte, which is how
//! `timeout` and `lost_response` faults look to a client. Each connection gets a
//! [`ConnControl`] in its request extensions; cancelling it drops the connection.
//!
//! Also the one rewrite every answer passes through, [`json_utf8`]: JSON goes out as
//! `application/json; charset=utf-8`, as Ayrshare sends it.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How long open connections may finish their requests after shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Lets a handler close the connection its request arrived on.
#[derive(Debug, Clone)]
pub(crate) struct ConnControl(CancellationToken);

impl ConnControl {
    /// Closes the connection without answering; the request's future is dropped with it.
    pub async fn drop_connection(&self) -> Response {
        self.0.cancel();
        std::future::pending().await
    }
}

/// Names the charset of a JSON answer (axum's `Json` says only `application/json`); a
/// `map_response` layer over the whole router, so successes, error bodies, injected faults
/// and `/_sim` answers all get it.
pub(crate) async fn json_utf8(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v == "application/json")
    {
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
    }
    response
}

/// Accepts connections until `shutdown` is cancelled, then gives open connections a short
/// grace to finish.
pub(crate) async fn serve(listener: TcpListener, router: Router, shutdown: CancellationToken) {
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    // Usually too many open files: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
        let kill = shutdown.child_token();
        let router = router.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let control = ConnControl(kill.clone());
            let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(control.clone());
                let router = router.clone();
                async move {
                    match router.oneshot(request).await {
                        Ok(response) => Ok::<_, Infallible>(response),
                        Err(never) => match never {},
                    }
                }
            });
            // No header-read timeout: it would also close idle keep-alive connections after
            // 30 s, racing clients that reuse them, and spurious connection errors would look
            // like injected faults.
            let conn = hyper::server::conn::http1::Builder::new()
                .header_read_timeout(None)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                }
                () = kill.cancelled() => {
                    if shutdown.is_cancelled() {
                        conn.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
                    }
                    // Otherwise a fault asked for the connection to vanish: drop it unanswered.
                }
            }
        });
    }
}
