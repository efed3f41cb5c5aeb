//! `busca-host-bench`: the host's speed targets, measured in one run and printed as
//! a table with ratios.
//!
//! For each size (default 20k and 200k shots) it writes a synthetic bundle
//! (seeded random normalised 768-d vectors, core's table types, the usearch
//! file built by `host/bench/build_usearch.py`), starts the real host on it, and
//! measures:
//! - instantiation of a fresh pre-initialized instance (goal ≤ 5 ms), against
//!   what loading the bundle natively costs (what a host without the snapshot
//!   would pay per request);
//! - a search in a fresh instance, end to end and inside the component
//!   (`took_ms`), against core's search called natively on the same bundle
//!   (goal ≤ 1.5×);
//! - with `wrk`, text-search requests/s and p50/p99 latency over HTTP
//!   (goal ≥ 1,000 req/s) on the smallest size.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use busca_core::usearch_file::ScalarKind;
use busca_core::model::ModelManifest;
use busca_core::query::SearchRequest;
use busca_core::search::Collection;
use busca_core::shot_index::Method;
use busca_host::snapshot::SnapshotSource;
use busca_host::{RunningServer, ServeOptions};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use rand::{Rng, SeedableRng};

/// Measure instantiation, search and throughput of the host.
#[derive(Debug, Parser)]
#[command(name = "busca-host-bench", version)]
struct Args {
    /// The query component (.wasm).
    #[arg(long, env = "BUSCA_COMPONENT")]
    component: PathBuf,
    /// Model directory whose manifest the synthetic bundles name (graphs are preloaded from it).
    #[arg(long, default_value = "models/tiny")]
    model: PathBuf,
    /// Where synthetic bundles and the snapshot cache are kept (reused between runs).
    #[arg(long, default_value = "target/bench-work")]
    work: PathBuf,
    /// Collection sizes, in shots.
    #[arg(long, value_delimiter = ',', default_values_t = [20_000usize, 200_000])]
    sizes: Vec<usize>,
    /// Instantiations timed per size.
    #[arg(long, default_value_t = 200)]
    instantiations: usize,
    /// Searches timed per size (each in a fresh instance).
    #[arg(long, default_value_t = 50)]
    searches: usize,
    /// Seconds of wrk load (0: skip the throughput run).
    #[arg(long, default_value_t = 10)]
    wrk_seconds: u64,
    /// wrk connections.
    #[arg(long, default_value_t = 32)]
    wrk_connections: u32,
    /// Idle milliseconds before each timed search and image query, on every
    /// side (the component's request, the same steps natively, numpy's
    /// scan): on this machine a scan of a matrix that fits the L3 runs up
    /// to 2.8× slower after even a few ms idle than back to back, and a
    /// request always follows some idle time, so the sides are compared
    /// from the same state. Core's back-to-back exact scan is printed too.
    #[arg(long, default_value_t = 10)]
    pace_ms: u64,
    /// Python with numpy and usearch (scripts/requirements.txt).
    #[arg(
        long,
        env = "BUSCA_PYTHON",
        default_value = "/root/.cache/buscaescenas/venv/bin/python"
    )]
    python: PathBuf,
    /// ONNX Runtime shared library.
    #[arg(long, env = "ORT_DYLIB_PATH")]
    ort_dylib: Option<PathBuf>,
    /// Scalar kind of the synthetic bundles' vectors (f16 as busca-index
    /// writes by default, or i8 for edge hosts with small memory).
    #[arg(long, default_value = "f16")]
    quantization: ScalarKind,
    /// Write the synthetic bundles (printing each bundles root) and stop:
    /// for benches that serve them with another host (bench/edge.py).
    #[arg(long)]
    bundles_only: bool,
    /// List the component's compiled functions for `perf` (busca-serve's
    /// --perfmap): `perf record -- busca-host-bench --perfmap ...`.
    #[arg(long)]
    perfmap: bool,
    /// Run the soak instead (see soak.rs): this many requests of every
    /// route and every kind of bad request on the first size, while two
    /// versions are published; then the slow-client comparison.
    #[arg(long, default_value_t = 0)]
    soak_requests: u64,
    /// wrk connections of the soak.
    #[arg(long, default_value_t = 64)]
    soak_connections: u32,
    /// Idle connections held beside the slow-client comparison's load (a
    /// quarter as many again send their header a byte at a time).
    #[arg(long, default_value_t = 400)]
    slow_clients: usize,
}

mod soak;
mod synthetic;

use synthetic::{write_synthetic_bundle, Synthetic, COLLECTION};

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("busca-host-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Summary of timings, in ms.
struct Stats {
    p50: f64,
    p99: f64,
    mean: f64,
}

fn stats(mut samples: Vec<f64>) -> Stats {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Stats {
        p50: at(0.5),
        p99: at(0.99),
        mean: samples.iter().sum::<f64>() / samples.len() as f64,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct SizeReport {
    shots: usize,
    pace_ms: u64,
    startup_ms: f64,
    snapshot: SnapshotSource,
    /// How far the snapshot's memory image is mapped from 2 MiB alignment
    /// (`busca_host::image_align`; `None`: not mapped from the cache file).
    image_off: Option<u64>,
    /// Bytes of the pool slots' image mappings on 2 MiB pages, summed.
    image_huge_bytes: u64,
    instantiate: Stats,
    native_load_ms: f64,
    request: Stats,
    in_component: Stats,
    native_search: Stats,
    text_request: Stats,
    image: ImageQuery,
    /// `like_shot` under a filter every shot passes: an exact scan of every
    /// row (component `took_ms`, native), and the method the component named.
    exact_in_component: Stats,
    exact_native: Stats,
    /// Core's exact scans back to back (no pacing), for reference.
    exact_native_hot: Stats,
    /// With f32 vectors: numpy's `X @ q` + top k on the same matrix and the
    /// same queries (default threads, one thread), the floor of a scan.
    exact_numpy: Option<(Stats, Stats)>,
}

/// An image query (a 1280×720 JPEG) timed in the component (its own
/// `took_ms`) and natively (the same steps through busca-core and ONNX Runtime).
struct ImageQuery {
    jpeg_bytes: usize,
    in_component: Stats,
    native: Stats,
}

fn run(args: Args) -> Result<()> {
    let model = ModelManifest::load(&args.model).context("loading the model manifest")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.soak_requests > 0 {
        return soak::run(&rt, &args, &model);
    }
    let mut reports = Vec::new();
    let mut throughput = Vec::new();
    for &shots in &args.sizes {
        let bundles = match args.quantization {
            ScalarKind::F16 => args.work.join(format!("bundles-{shots}")),
            other => args.work.join(format!("bundles-{shots}-{other}")),
        };
        write_synthetic_bundle(
            &bundles,
            &Synthetic {
                shots,
                model: &model,
                model_dir: &args.model,
                quantization: args.quantization,
                python: &args.python,
                video_prefix: COLLECTION.into(),
                seed: shots as u64,
                index_from: None,
            },
        )?;
        if args.bundles_only {
            println!("{}", bundles.display());
            continue;
        }
        let mut opts = ServeOptions::new(
            args.component.clone(),
            bundles.clone(),
            vec![args.model.clone()],
        );
        opts.listen = "127.0.0.1:0".parse()?;
        opts.cache_dir = Some(args.work.join("snapshots"));
        opts.ort_dylib = args.ort_dylib.clone();
        opts.max_concurrency = 64;
        opts.perfmap = args.perfmap;
        let server = rt.block_on(busca_host::start(&opts))?;
        eprintln!(
            "{shots} shots: server up in {:.0} ms ({:?})",
            ms(server.startup),
            server.snapshot
        );
        let mut report = rt.block_on(measure_size(&server, &bundles, shots, &args))?;
        let cwasm = busca_host::snapshot::cache_path(&args.work.join("snapshots"), &std::fs::read(&args.component)?, &bundles)?;
        report.image_off = busca_host::image_align::misalignment(&cwasm);
        report.image_huge_bytes = busca_host::image_align::huge_mapped_bytes(&cwasm);
        if args.wrk_seconds > 0 {
            throughput.push(run_wrk(&server, &args, shots)?);
        }
        rt.block_on(server.shutdown());
        reports.push(report);
    }
    if !args.bundles_only {
        print_tables(&reports, &throughput);
    }
    Ok(())
}

async fn measure_size(
    server: &RunningServer,
    bundles: &Path,
    shots: usize,
    args: &Args,
) -> Result<SizeReport> {
    // Instantiation alone: a fresh store and instance from the pool, dropped.
    for _ in 0..10 {
        server.runtime.instantiate_only().await?;
    }
    let mut inst = Vec::with_capacity(args.instantiations);
    for _ in 0..args.instantiations {
        let t = Instant::now();
        server.runtime.instantiate_only().await?;
        inst.push(ms(t.elapsed()));
    }
    // What each request would pay without the snapshot: loading the bundle.
    let t = Instant::now();
    let collection = Collection::load_current(&bundles.join(COLLECTION))?;
    let native_load_ms = ms(t.elapsed());

    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (mut request, mut in_component, mut native) = (Vec::new(), Vec::new(), Vec::new());
    let pace = Duration::from_millis(args.pace_ms);
    for _ in 0..args.searches {
        let like = rng.gen_range(0..shots) as u64;
        let body = format!(r#"{{"like_shot":{like},"k":20}}"#);
        tokio::time::sleep(pace).await;
        let t = Instant::now();
        let response = post_search(server, &body).await?;
        request.push(ms(t.elapsed()));
        in_component.push(response["took_ms"].as_f64().context("took_ms")?);

        let req: SearchRequest = serde_json::from_str(&body)?;
        std::thread::sleep(pace);
        let t = Instant::now();
        let query = collection
            .compose(&req.parts(None, None))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let hits = collection.search(&query, req.k, &req.filter, Method::Auto, &[]).hits;
        native.push(ms(t.elapsed()));
        let first = response["results"][0]["shot_id"].as_u64();
        if first != Some(hits[0].shot.shot_id) {
            bail!(
                "component and native disagree on like_shot {like}: {first:?} vs {}",
                hits[0].shot.shot_id
            );
        }
    }
    let mut text = Vec::new();
    for _ in 0..args.searches {
        let t = Instant::now();
        post_search(server, r#"{"text":"a blue scene","k":20}"#).await?;
        text.push(ms(t.elapsed()));
    }
    let image = measure_image(server, &collection, args).await?;
    // A filter admitting every shot makes both sides scan every row. Each
    // side scans in its own pass after one untimed scan, as numpy does
    // below: the component's rows and native core's are two copies of the
    // matrix (61 MB each at 20k f32), and alternating them would have each
    // scan find its rows pushed out of the cache by the other's. Every timed
    // scan starts after the same idle time (`--pace-ms`).
    let likes: Vec<u64> = (0..args.searches.min(50)).map(|_| rng.gen_range(0..shots) as u64).collect();
    let body = |like: u64| format!(r#"{{"like_shot":{like},"k":20,"filter":{{"start_ms":0}}}}"#);
    let (mut exact_in_component, mut component_first) = (Vec::new(), Vec::new());
    for (i, &like) in likes.iter().enumerate() {
        tokio::time::sleep(pace).await;
        let response = post_search(server, &body(like)).await?;
        if response["method"] != "exact" {
            bail!("a filtered search was not an exact scan: {}", response["method"]);
        }
        if i > 0 {
            exact_in_component.push(response["took_ms"].as_f64().context("took_ms")?);
        }
        component_first.push(response["results"][0]["shot_id"].as_u64());
    }
    let exact_queries: Vec<Vec<f32>> = likes
        .iter()
        .map(|&like| collection.shot_vector(like).context("a synthetic shot's vector"))
        .collect::<Result<_>>()?;
    let native_pass = |paced: Option<Duration>| -> Result<Vec<f64>> {
        let mut times = Vec::new();
        for (i, (&like, first)) in likes.iter().zip(&component_first).enumerate() {
            if let Some(pace) = paced {
                std::thread::sleep(pace);
            }
            let req: SearchRequest = serde_json::from_str(&body(like))?;
            let t = Instant::now();
            let query = collection.compose(&req.parts(None, None)).map_err(|e| anyhow::anyhow!("{e}"))?;
            let hits = collection.search(&query, req.k, &req.filter, Method::Auto, &[]).hits;
            if i > 0 {
                times.push(ms(t.elapsed()));
            }
            if *first != Some(hits[0].shot.shot_id) {
                bail!("component and native disagree on the exact scan for like_shot {like}");
            }
        }
        Ok(times)
    };
    let exact_native = native_pass(Some(pace))?;
    let exact_native_hot = native_pass(None)?;
    Ok(SizeReport {
        shots,
        pace_ms: args.pace_ms,
        startup_ms: ms(server.startup),
        snapshot: server.snapshot,
        image_off: None,
        image_huge_bytes: 0,
        instantiate: stats(inst),
        native_load_ms,
        request: stats(request),
        in_component: stats(in_component),
        native_search: stats(native),
        text_request: stats(text),
        image,
        exact_in_component: stats(exact_in_component),
        exact_native: stats(exact_native),
        exact_native_hot: stats(exact_native_hot),
        exact_numpy: match args.quantization {
            ScalarKind::F32 => Some(numpy_scan(&args.python, &args.work, &collection, &exact_queries, 20, args.pace_ms)?),
            _ => None,
        },
    })
}

/// numpy's exact scan (`bench/numpy_scan.py`, as core's `bench_search
/// --numpy`) of `collection`'s vectors for `queries`: default threads, then
/// one, each timed query after `pace_ms` idle.
fn numpy_scan(
    python: &Path,
    work: &Path,
    collection: &Collection,
    queries: &[Vec<f32>],
    k: usize,
    pace_ms: u64,
) -> Result<(Stats, Stats)> {
    let index = &collection.index;
    let dir = work.join("numpy-scan");
    std::fs::create_dir_all(&dir)?;
    let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    std::fs::write(dir.join("x.f32"), bytes(&(0..index.len()).flat_map(|r| index.vector(r)).collect::<Vec<_>>()))?;
    std::fs::write(dir.join("q.f32"), bytes(&queries.concat()))?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/numpy_scan.py");
    let run = |one_thread: bool| -> Result<Stats> {
        let mut cmd = Command::new(python);
        cmd.arg(&script).arg(&dir).arg(index.dim().to_string()).arg(k.to_string()).arg(pace_ms.to_string());
        if one_thread {
            cmd.envs(["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"].map(|v| (v, "1")));
        }
        let out = cmd.output().with_context(|| format!("running {}", script.display()))?;
        if !out.status.success() {
            bail!("{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr));
        }
        let times: Vec<f64> = String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|t| t.parse().ok()).collect();
        if times.len() != queries.len() {
            bail!("{} timed {} of {} queries", script.display(), times.len(), queries.len());
        }
        Ok(stats(times))
    };
    let both = (run(false)?, run(true)?);
    std::fs::remove_dir_all(&dir)?;
    Ok(both)
}

/// The image query: the component's `took_ms` (decode, resample, tensor,
/// wasi-nn, search, response) against the same steps natively, on one
/// generated 1280×720 JPEG; both must find the same best shot.
async fn measure_image(server: &RunningServer, collection: &Collection, args: &Args) -> Result<ImageQuery> {
    let jpeg_path = args.work.join("query-1280x720.jpg");
    if !jpeg_path.exists() {
        let status = std::process::Command::new("ffmpeg")
            .args(["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=1", "-frames:v", "1", "-q:v", "4"])
            .arg(&jpeg_path)
            .status()
            .context("running ffmpeg to make the query image")?;
        if !status.success() {
            bail!("ffmpeg could not write {}", jpeg_path.display());
        }
    }
    let jpeg = std::fs::read(&jpeg_path).with_context(|| format!("reading {}", jpeg_path.display()))?;
    let model = &collection.bundle.manifest.model;
    // The runtime as busca-serve starts it (one shared pool), whichever of
    // the two starts it first.
    busca_host::models::init_onnx_runtime(args.ort_dylib.as_deref(), 0)?;
    let mut encoder =
        busca_onnx::ImageEncoder::load(&args.model, model, busca_onnx::SessionOptions::cpu(0))?;
    let boundary = "busca-bench-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"q.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&jpeg);
    body.extend_from_slice(format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"k\"\r\n\r\n20\r\n--{boundary}--\r\n").as_bytes());
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let (mut in_component, mut native) = (Vec::new(), Vec::new());
    let pace = Duration::from_millis(args.pace_ms);
    for _ in 0..args.searches {
        tokio::time::sleep(pace).await;
        let response = post(server, &content_type, body.clone()).await?;
        in_component.push(response["took_ms"].as_f64().context("took_ms")?);

        std::thread::sleep(pace);
        let t = Instant::now();
        let image = busca_core::image_input::decode_rgb(&jpeg, u64::MAX).context("decoding the query image")?;
        let pixels = model.preprocess().pixel_values(image.width, image.height, &image.rgb)?;
        let vector = encoder.encode(&pixels, 1)?;
        let request: SearchRequest = serde_json::from_str(r#"{"k":20}"#)?;
        let query = collection.compose(&request.parts(None, Some(vector.as_slice()))).map_err(|e| anyhow::anyhow!("{e}"))?;
        let hits = collection.search(&query, 20, &request.filter, Method::Auto, &[]).hits;
        native.push(ms(t.elapsed()));
        if response["results"][0]["shot_id"].as_u64() != Some(hits[0].shot.shot_id) {
            bail!("component and native disagree on the image query: {} vs {}", response["results"][0], hits[0].shot.shot_id);
        }
    }
    Ok(ImageQuery { jpeg_bytes: jpeg.len(), in_component: stats(in_component), native: stats(native) })
}

/// One JSON search through the runtime (fresh instance, no TCP), body parsed.
async fn post_search(server: &RunningServer, body: &str) -> Result<serde_json::Value> {
    post(server, "application/json", body.as_bytes().to_vec()).await
}

/// One search of any content type through the runtime, body parsed.
async fn post(server: &RunningServer, content_type: &str, body: Vec<u8>) -> Result<serde_json::Value> {
    let shown = String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned();
    let req = hyper::Request::post("http://bench/api/search")
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))?;
    let resp = server.runtime.handle(req).await?;
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("reading the response body: {e:?}"))?
        .to_bytes();
    if !status.is_success() {
        bail!("{shown} → {status}: {}", String::from_utf8_lossy(&bytes));
    }
    Ok(serde_json::from_slice(&bytes)?)
}

struct Throughput {
    requests_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    shots: usize,
}

fn run_wrk(server: &RunningServer, args: &Args, shots: usize) -> Result<Throughput> {
    let script = args.work.join("search.lua");
    std::fs::write(
        &script,
        "wrk.method = \"POST\"\nwrk.body = '{\"text\":\"a blue scene\",\"k\":10}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n",
    )?;
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{}", args.wrk_connections),
            &format!("-d{}s", args.wrk_seconds),
            "--latency",
            "-s",
        ])
        .arg(&script)
        .arg(format!("http://{}/api/search", server.addr))
        .output()
        .context("running wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    let field = |prefix: &str| -> Option<String> {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
    };
    let latency = |p: &str| -> Result<f64> {
        parse_wrk_duration(&field(p).with_context(|| format!("wrk {p} in {text}"))?)
    };
    Ok(Throughput {
        requests_per_s: field("Requests/sec:")
            .context("wrk Requests/sec")?
            .parse()?,
        p50_ms: latency("50%")?,
        p99_ms: latency("99%")?,
        errors: field("Non-2xx or 3xx responses:")
            .map(|v| v.parse().unwrap_or(u64::MAX))
            .unwrap_or(0),
        shots,
    })
}

fn parse_wrk_duration(v: &str) -> Result<f64> {
    let split = v
        .find(|c: char| c.is_ascii_alphabetic())
        .context("wrk duration unit")?;
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse()?;
    Ok(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => bail!("unknown wrk unit {unit}"),
    })
}

fn print_tables(reports: &[SizeReport], throughput: &[Throughput]) {
    println!("\n| shots | start-up (snapshot) | memory image on 2 MiB pages | instantiate p50 / p99 | native bundle load | load ÷ instantiate |");
    println!("|---:|---:|---|---:|---:|---:|");
    for r in reports {
        let image = match r.image_off {
            Some(0) => format!("yes ({} MB of the slots' mappings)", r.image_huge_bytes / 1_000_000),
            Some(off) => format!("no ({} KiB off)", off >> 10),
            None => "no (not mapped from a file)".to_string(),
        };
        println!(
            "| {} | {:.0} ms ({:?}) | {image} | {:.2} / {:.2} ms | {:.0} ms | {:.0}× |",
            r.shots,
            r.startup_ms,
            r.snapshot,
            r.instantiate.p50,
            r.instantiate.p99,
            r.native_load_ms,
            r.native_load_ms / r.instantiate.p50
        );
    }
    if let (Some(a), Some(b)) = (reports.first(), reports.last()) {
        if reports.len() > 1 {
            println!(
                "\ninstantiate p50 at {} ÷ at {} shots: {:.2}× (goal: independent of size, ≤ 5 ms)",
                b.shots,
                a.shots,
                b.instantiate.p50 / a.instantiate.p50
            );
        }
    }
    println!("\n| shots | like_shot request p50 / p99 (fresh instance) | in component p50 | native core search p50 | component ÷ native | text request p50 / p99 |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for r in reports {
        println!(
            "| {} | {:.2} / {:.2} ms | {:.3} ms | {:.3} ms | {:.2}× | {:.2} / {:.2} ms |",
            r.shots,
            r.request.p50,
            r.request.p99,
            r.in_component.p50,
            r.native_search.p50,
            r.in_component.p50 / r.native_search.p50,
            r.text_request.p50,
            r.text_request.p99
        );
    }
    for r in reports {
        println!(
            "mean at {} shots: instantiate {:.2} ms, request {:.2} ms, in component {:.3} ms, native {:.3} ms",
            r.shots, r.instantiate.mean, r.request.mean, r.in_component.mean, r.native_search.mean
        );
    }
    let pace = reports.first().map_or(0, |r| r.pace_ms);
    println!("\n| exact scan (like_shot under a filter every shot passes, k = 20; each after {pace} ms idle) | in component p50 | native p50 | component ÷ native |");
    println!("|---|---:|---:|---:|");
    for r in reports {
        println!(
            "| {} shots | {:.3} ms | {:.3} ms | {:.2}× |",
            r.shots,
            r.exact_in_component.p50,
            r.exact_native.p50,
            r.exact_in_component.p50 / r.exact_native.p50
        );
    }
    for r in reports {
        println!(
            "native exact scan back to back at {} shots: p50 {:.3} ms (after {pace} ms idle ÷ back to back: {:.2}×)",
            r.shots,
            r.exact_native_hot.p50,
            r.exact_native.p50 / r.exact_native_hot.p50
        );
    }
    for r in reports {
        if let Some((numpy, numpy_one)) = &r.exact_numpy {
            println!("\n| exact f32 scan, {} × 768, k = 20 | in component p50 | numpy X @ q p50 | numpy one thread p50 | component ÷ numpy (goal ≤ 1.2) | component ÷ numpy one thread |", r.shots);
            println!("|---|---:|---:|---:|---:|---:|");
            println!(
                "| f32 rows | {:.3} ms | {:.3} ms | {:.3} ms | {:.2}× | {:.2}× |",
                r.exact_in_component.p50,
                numpy.p50,
                numpy_one.p50,
                r.exact_in_component.p50 / numpy.p50,
                r.exact_in_component.p50 / numpy_one.p50
            );
        }
    }
    println!("\n| image query, 1280×720 JPEG | bytes | in component p50 / p99 | native p50 / p99 | component ÷ native (goal ≤ 1.5) |");
    println!("|---|---:|---:|---:|---:|");
    for r in reports {
        let i = &r.image;
        println!(
            "| {} shots | {} | {:.3} / {:.3} ms | {:.3} / {:.3} ms | {:.2}× |",
            r.shots,
            i.jpeg_bytes,
            i.in_component.p50,
            i.in_component.p99,
            i.native.p50,
            i.native.p99,
            i.in_component.p50 / i.native.p50
        );
    }
    for t in throughput {
        // The goal: 1,000 req/s up to 20,000 shots, 500 at 200,000.
        let goal = if t.shots > 20_000 { 500.0 } else { 1000.0 };
        println!("\n| text search over HTTP (wrk, {} shots) | req/s | p50 | p99 | non-2xx | req/s ÷ goal ({goal:.0}) |", t.shots);
        println!("|---|---:|---:|---:|---:|---:|");
        println!(
            "| tiny model | {:.0} | {:.2} ms | {:.2} ms | {} | {:.2}× |",
            t.requests_per_s,
            t.p50_ms,
            t.p99_ms,
            t.errors,
            t.requests_per_s / goal
        );
    }
}


#[cfg(test)]
mod cli_tests {
    use clap::CommandFactory;

    /// clap's own consistency checks on every argument and subcommand
    /// (duplicate flags, bad defaults, conflicting names) fail here, not at
    /// a user's first run.
    #[test]
    fn the_command_line_is_well_formed() {
        super::Args::command().debug_assert();
    }
}
