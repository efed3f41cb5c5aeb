//! `busca-serve`'s options: the command line (clap) and the struct that
//! embedding programs and tests fill with [`ServeOptions::new`].

use std::net::SocketAddr;
use std::path::PathBuf;

use busca_core::Limits;
use busca_s3::{ConnectOptions, Location, S3Flags};

/// `busca-serve` options.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "busca-serve",
    version,
    about = "Serve the BuscaEscenas query component over HTTP: one fresh, pre-initialized instance per request."
)]
pub struct ServeOptions {
    /// The query component (.wasm): a wasi:http proxy that exports `wizer-initialize`.
    #[arg(long, env = "BUSCA_COMPONENT")]
    pub component: PathBuf,
    /// Bundles root: a folder (`<collection>/CURRENT`, `<collection>/versions/...`)
    /// or `s3://bucket/prefix`, mirrored locally; the guest sees it read-only
    /// at /bundles.
    #[arg(long)]
    pub bundles: Location,
    /// How often to look for new bundle versions, in ms (0: never); a new
    /// version is served without a restart.
    #[arg(long, default_value_t = 5_000)]
    pub poll_interval_ms: u64,
    /// The S3 server of an s3:// bundles root.
    #[command(flatten)]
    pub s3: S3Flags,
    /// Local folder the S3 bundles are mirrored into
    /// (default: ~/.cache/buscaescenas/s3-mirror/<bucket>/<prefix>).
    #[arg(long, value_name = "DIR")]
    pub mirror_dir: Option<PathBuf>,
    /// Mirror the S3 bundles into --mirror-dir, verified, and exit (for
    /// runtimes that mount the bundles as files, such as Spin).
    #[arg(long, requires = "mirror_dir")]
    pub mirror_only: bool,
    /// Fixed S3 credentials instead of the AWS chain (embedding programs, tests).
    #[arg(skip)]
    pub s3_credentials: Option<(String, String)>,
    /// Model directories (each with manifest.json and its image and text ONNX
    /// files); their graphs are preloaded under the manifests' graph names.
    #[arg(long = "models", required = true, num_args = 1..)]
    pub models: Vec<PathBuf>,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Requests run in the component at once; more wait for a slot.
    #[arg(long, default_value_t = 64)]
    pub max_concurrency: u32,
    /// How long a request may wait for a slot before it gets 503, in ms.
    #[arg(long, default_value_t = 2_000)]
    pub queue_timeout_ms: u64,
    /// Time budget of one request inside the component, in ms; past it the
    /// instance is interrupted and the request gets 503.
    #[arg(long, default_value_t = 10_000)]
    pub request_timeout_ms: u64,
    /// Linear memory cap of one instance, in MiB; it must hold the loaded index.
    #[arg(long, default_value_t = 2_048)]
    pub max_memory_mib: usize,
    /// Largest request body, in bytes: a larger Content-Length gets 413
    /// before any instance is made, and so does a streamed body that grows
    /// past it.
    #[arg(long, default_value_t = Limits::DEFAULT.max_body_bytes)]
    pub max_body_bytes: usize,
    /// Time a client has to send a request's headers, in ms; past it the
    /// connection is closed (one that sends nothing at all, too).
    #[arg(long, default_value_t = 10_000)]
    pub header_timeout_ms: u64,
    /// Time a client has to send a request's whole body, in ms; past it the
    /// request gets 408. Bodies are read before the request takes an
    /// instance slot, so slow senders never hold one.
    #[arg(long, default_value_t = 30_000)]
    pub body_timeout_ms: u64,
    /// Open connections at most; more wait in the listen backlog until one
    /// closes (idle ones close after --header-timeout-ms).
    #[arg(long, default_value_t = 1_024)]
    pub max_connections: u32,
    /// Where compiled snapshots are cached (default: ~/.cache/buscaescenas/snapshots).
    #[arg(long, env = "BUSCA_SNAPSHOT_CACHE")]
    pub cache_dir: Option<PathBuf>,
    /// Neither read nor write the snapshot cache: always pre-initialize and compile.
    #[arg(long)]
    pub no_cache: bool,
    /// Serve `POST /nn/v1/graphs/<graph>/compute` with the preloaded graphs
    /// for edge components built with the remote encoder, to callers that
    /// present the token in this file (first line; at least 16 characters).
    #[arg(long, value_name = "FILE", env = "BUSCA_ENCODER_TOKEN_FILE")]
    pub encoder_token_file: Option<PathBuf>,
    /// The encoder token itself (embedding programs, tests); the file wins.
    #[arg(skip)]
    pub encoder_token: Option<String>,
    /// The ONNX Runtime shared library (libonnxruntime.so).
    #[arg(long, env = "ORT_DYLIB_PATH")]
    pub ort_dylib: Option<PathBuf>,
    /// Threads of the one ONNX Runtime pool every graph runs on (0: one per
    /// core). The default gives a lone query every core; 1 runs each encoder
    /// call on its request's own thread, which serves up to 15% more
    /// queries per second with a large model once every core is busy.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=256))]
    pub onnx_threads: u16,
    /// List the component's compiled functions in /tmp/perf-<pid>.map, so
    /// that `perf record -p <pid>` / `perf report` name them (wasmtime's
    /// perfmap profiler, as `wasmtime serve --profile perfmap`).
    #[arg(long)]
    pub perfmap: bool,
}

impl ServeOptions {
    /// Options with defaults for everything but the three required inputs.
    pub fn new(component: PathBuf, bundles: impl Into<Location>, models: Vec<PathBuf>) -> Self {
        ServeOptions {
            component,
            bundles: bundles.into(),
            poll_interval_ms: 5_000,
            s3: S3Flags::default(),
            mirror_dir: None,
            mirror_only: false,
            s3_credentials: None,
            models,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_concurrency: 64,
            queue_timeout_ms: 2_000,
            request_timeout_ms: 10_000,
            max_memory_mib: 2_048,
            max_body_bytes: Limits::DEFAULT.max_body_bytes,
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            max_connections: 1_024,
            cache_dir: None,
            no_cache: false,
            encoder_token_file: None,
            encoder_token: None,
            ort_dylib: std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from),
            onnx_threads: 0,
            perfmap: false,
        }
    }

    /// Connection options for an S3 bundles root.
    pub fn connect_options(&self) -> ConnectOptions {
        self.s3.connect_options(self.s3_credentials.clone())
    }

    pub(crate) fn effective_cache_dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        self.cache_dir
            .clone()
            .or_else(|| Some(busca_core::cache_home()?.join("snapshots")))
    }
}
