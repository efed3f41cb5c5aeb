//! The HTTP server: binds, routes `/media/...` to the source videos and every
//! other request to a fresh instance of the component, bounds concurrency and
//! body size, logs one line per request and shuts down gracefully.
//!
//! Slow or idle clients cost a connection, never an instance slot: open
//! connections are capped, headers must arrive within `header_timeout_ms`,
//! and a request's body is read whole (bounded in size and time) before the
//! request waits for a slot.
//!
//! What is served (snapshot, runtime, media table) is one `Serving` behind a
//! lock; a request clones the `Arc` once and runs on it to the end, and
//! `reload.rs` swaps in the next one when a bundle version changes.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use busca_core::query::QueryError;
use busca_core::remote_nn;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};
use tower::ServiceExt;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::encoder::EncoderEndpoint;
use crate::error::HostError;
use crate::media::MEDIA_PREFIX;
use crate::models::{init_onnx_runtime, PreloadedGraphs};
use crate::options::ServeOptions;
use crate::runtime::{serving_engine, InstanceLimits, RequestFailure, Runtime};
use crate::snapshot::SnapshotSource;
use crate::reload::{reload_loop, Current, Serving, ServingBuilder};
use crate::source::BundleSource;

/// A server that is listening.
pub struct RunningServer {
    /// The bound address (the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// Whether the snapshot came from the cache.
    pub snapshot: SnapshotSource,
    /// Time from [`start`] to listening.
    pub startup: Duration,
    /// The runtime served at start-up, for benchmarks that instantiate directly.
    pub runtime: Runtime,
    /// The local bundles root the component reads (the mirror, for S3).
    pub bundles_root: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    reload: Option<tokio::task::JoinHandle<()>>,
    slots: Arc<Semaphore>,
    max_concurrency: usize,
    connections: Arc<Semaphore>,
    max_connections: usize,
}

impl RunningServer {
    /// Requests holding an instance slot now (running in the component).
    pub fn in_flight(&self) -> usize {
        self.max_concurrency - self.slots.available_permits()
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.max_connections - self.connections.available_permits()
    }

    /// Stops accepting, lets requests in flight finish (up to 10 s), returns.
    pub async fn shutdown(mut self) {
        if let Some(reload) = self.reload.take() {
            reload.abort();
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Serves until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn run_until_signal(self) {
        wait_for_signal().await;
        tracing::info!("signal received; finishing requests in flight");
        self.shutdown().await;
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Loads the graphs, pre-initializes and compiles the component, and starts
/// listening. Returns once the port is bound.
pub async fn start(opts: &ServeOptions) -> Result<RunningServer, HostError> {
    let started = Instant::now();
    init_onnx_runtime(opts.ort_dylib.as_deref(), opts.onnx_threads)?;
    let source = BundleSource::open(&opts.bundles, &opts.connect_options(), opts.mirror_dir.as_deref()).await?;
    let graphs = PreloadedGraphs::load(&opts.models)?;
    let encoder = match (&opts.encoder_token_file, &opts.encoder_token) {
        (Some(file), _) => {
            let token = std::fs::read_to_string(file).map_err(HostError::io(file))?;
            let first = token.lines().next().unwrap_or("");
            Some(EncoderEndpoint::new(first, &format!("--encoder-token-file {}", file.display()), Arc::new(graphs.clone()))?)
        }
        (None, Some(token)) => Some(EncoderEndpoint::new(token, "the encoder token", Arc::new(graphs.clone()))?),
        (None, None) => None,
    };
    let limits = InstanceLimits {
        // Slack beyond the concurrency cap: an instance lives on while its
        // response body streams after the slot is released. The cap holds
        // across a version swap too: both snapshots share the engine's pool.
        max_instances: opts.max_concurrency.saturating_add(16),
        max_memory_bytes: opts.max_memory_mib.saturating_mul(1 << 20),
        timeout: Duration::from_millis(opts.request_timeout_ms),
    };
    let engine = serving_engine(&limits, opts.perfmap)?;
    let builder = ServingBuilder {
        engine,
        component: opts.component.clone(),
        graphs,
        limits,
        cache_dir: opts.effective_cache_dir(),
    };
    let key = source.refresh().await?;
    let serving = builder.build(source.local_root(), key).await?;
    let runtime = serving.runtime.clone();
    let snapshot_source = serving.snapshot;
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|source| HostError::Listen {
            addr: opts.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| HostError::Listen {
        addr: opts.listen,
        source,
    })?;
    let startup = started.elapsed();
    tracing::info!(
        %addr,
        bundles = %opts.bundles,
        serving = %serving.key,
        graphs = ?builder.graphs.names(),
        videos = serving.media.len(),
        snapshot = ?snapshot_source,
        startup_ms = startup.as_millis() as u64,
        "listening"
    );
    let bundles_root = source.local_root().to_path_buf();
    let max_concurrency = opts.max_concurrency.max(1) as usize;
    let slots = Arc::new(Semaphore::new(max_concurrency));
    let max_connections = opts.max_connections.max(1) as usize;
    let connections = Arc::new(Semaphore::new(max_connections));
    let server = Arc::new(Server {
        serving: Arc::new(RwLock::new(Arc::new(serving))),
        slots: slots.clone(),
        queue_timeout: Duration::from_millis(opts.queue_timeout_ms),
        max_body_bytes: opts.max_body_bytes,
        body_timeout: Duration::from_millis(opts.body_timeout_ms),
        encoder,
    });
    let reload = (opts.poll_interval_ms > 0).then(|| {
        tokio::spawn(reload_loop(
            server.serving.clone(),
            source,
            builder,
            Duration::from_millis(opts.poll_interval_ms),
        ))
    });
    let (tx, rx) = oneshot::channel();
    let header_timeout = Duration::from_millis(opts.header_timeout_ms.max(1));
    let task = tokio::spawn(accept_loop(listener, server, connections.clone(), header_timeout, rx));
    Ok(RunningServer {
        addr,
        snapshot: snapshot_source,
        startup,
        runtime,
        bundles_root,
        shutdown: Some(tx),
        task,
        reload,
        slots,
        max_concurrency,
        connections,
        max_connections,
    })
}

struct Server {
    serving: Arc<Current>,
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
    max_body_bytes: usize,
    body_timeout: Duration,
    /// The encoder endpoint, when a token was configured.
    encoder: Option<EncoderEndpoint>,
}

impl Server {
    /// What this request is served with, from start to end.
    fn serving(&self) -> Arc<Serving> {
        self.serving.read().expect("serving lock").clone()
    }
}

async fn accept_loop(
    listener: TcpListener,
    server: Arc<Server>,
    connections: Arc<Semaphore>,
    header_timeout: Duration,
    mut shutdown: oneshot::Receiver<()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        // At the cap, stop accepting: new clients wait in the backlog.
        let connection = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("the connection semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let server = server.clone();
                let service = hyper::service::service_fn(move |req| {
                    let server = server.clone();
                    async move { Ok::<_, Infallible>(server.respond(req).await) }
                });
                let conn = http1::Builder::new()
                    .keep_alive(true)
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, "connection ended with error: {e}");
                    }
                    drop(connection);
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections closed"),
        _ = tokio::time::sleep(Duration::from_secs(10)) => {
            tracing::warn!("connections still open after 10 s; closing them");
        }
    }
}

impl Server {
    async fn respond(&self, req: Request<Incoming>) -> Response<HyperOutgoingBody> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let resp = self.route(req).await;
        tracing::info!(
            target: "busca_host::access",
            method = %method,
            path = %path,
            status = resp.status().as_u16(),
            ms = format_args!("{:.2}", started.elapsed().as_secs_f64() * 1000.0),
        );
        resp
    }

    async fn route(&self, req: Request<Incoming>) -> Response<HyperOutgoingBody> {
        let path = req.uri().path();
        if path.starts_with(MEDIA_PREFIX) {
            return self.media(req).await;
        }
        if let Some(graph) = remote_nn::graph_of_path(path) {
            let Some(encoder) = &self.encoder else {
                return error_response(&QueryError::not_found(
                    "the encoder endpoint is off; start busca-serve with --encoder-token-file to serve it",
                ));
            };
            if content_length(&req).is_some_and(|n| n > remote_nn::MAX_REQUEST_BYTES as u64) {
                drain_some(req.into_body(), remote_nn::MAX_REQUEST_BYTES.saturating_mul(2)).await;
                return error_response(&QueryError::body_too_large(remote_nn::MAX_REQUEST_BYTES));
            }
            let graph = graph.to_string();
            // An encoder call takes an instance slot like a search: both use the cores.
            let Ok(Ok(_permit)) = tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned()).await else {
                return error_response(&QueryError::new(503, "busy", "every slot stayed busy; retry later"));
            };
            return encoder.handle(&graph, req).await;
        }
        if let Some(declared) = content_length(&req) {
            if declared > self.max_body_bytes as u64 {
                drain_some(req.into_body(), self.max_body_bytes.saturating_mul(2)).await;
                return error_response(&QueryError::body_too_large(self.max_body_bytes));
            }
        }
        // The whole body first, bounded in size and time: a slow sender
        // holds its connection, not an instance slot.
        let (parts, body) = req.into_parts();
        let body = match tokio::time::timeout(self.body_timeout, Limited::new(body, self.max_body_bytes).collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e)) if e.is::<LengthLimitError>() => return error_response(&QueryError::body_too_large(self.max_body_bytes)),
            Ok(Err(e)) => {
                return error_response(&QueryError::new(400, "bad_body", format!("the request body could not be read: {e}")))
            }
            Err(_) => {
                return error_response(&QueryError::new(
                    408,
                    "body_timeout",
                    format!("the request body did not arrive within {:?}", self.body_timeout),
                ))
            }
        };
        let req = Request::from_parts(parts, Full::new(body));
        let permit = match tokio::time::timeout(
            self.queue_timeout,
            self.slots.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => permit,
            _ => {
                return error_response(&QueryError::new(
                    503,
                    "busy",
                    format!(
                        "every instance slot stayed busy for {:?}; retry later",
                        self.queue_timeout
                    ),
                ))
            }
        };
        let result = self.serving().runtime.handle(req).await;
        drop(permit);
        match result {
            Ok(resp) => resp,
            Err(failure) => {
                let status = match failure {
                    RequestFailure::Timeout(_) | RequestFailure::Instantiate(_) => 503,
                    RequestFailure::Guest(_) => 500,
                };
                tracing::warn!("request failed: {failure}");
                let code = match failure {
                    RequestFailure::Timeout(_) => "timeout",
                    RequestFailure::Instantiate(_) => "unavailable",
                    RequestFailure::Guest(_) => "component_failed",
                };
                error_response(&QueryError::new(status, code, failure.to_string()))
            }
        }
    }

    async fn media(&self, req: Request<Incoming>) -> Response<HyperOutgoingBody> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return error_response(&QueryError::new(
                405,
                "method_not_allowed",
                "media is GET or HEAD only",
            ));
        }
        let serving = self.serving();
        let Some(file) = serving.media.lookup(req.uri().path()) else {
            return error_response(&QueryError::not_found(format!(
                "no video at {}; the path is /media/{{collection}}/{{video_id}}",
                req.uri().path()
            )));
        };
        match tower_http::services::ServeFile::new(file)
            .oneshot(req)
            .await
        {
            Ok(resp) => resp.map(|body| {
                body.map_err(|e| wasmtime_wasi_http::Error::InternalError(Some(e.to_string())))
                    .boxed_unsync()
            }),
            Err(never) => match never {},
        }
    }
}

/// Reads and drops up to `limit` bytes of a refused body (for at most 5 s):
/// a client that does not wait for `100 Continue` is still writing, and
/// closing on it would make it see a broken pipe instead of our 413.
pub(crate) async fn drain_some(mut body: Incoming, limit: usize) {
    let drain = async {
        let mut seen = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |d| d.len());
            if seen > limit {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
}

fn content_length(req: &Request<Incoming>) -> Option<u64> {
    req.headers()
        .get(hyper::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// A JSON error response in the shape the component uses (`{"error": {...}}`).
pub fn error_response(err: &QueryError) -> Response<HyperOutgoingBody> {
    let body = serde_json::to_vec(&err.body()).unwrap_or_default();
    Response::builder()
        .status(StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(
            Full::new(Bytes::from(body))
                .map_err(|never: Infallible| match never {})
                .boxed_unsync(),
        )
        .expect("static response parts are valid")
}
