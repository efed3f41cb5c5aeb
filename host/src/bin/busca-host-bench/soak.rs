//! The soak and slow-client benches: the host under a long mixed load while
//! new versions are published, and beside hundreds of clients that hold
//! connections idle or send a byte at a time.
//!
//! Soak: `wrk` (64 connections) sends a fixed number of requests cycling
//! through every route and every kind of bad request, against busca-serve
//! serving a synthetic bundle, while two new versions are published into
//! the folder it polls. Each version's video ids carry its version name, so
//! an answer whose `bundle_version` disagrees with any video id in it would
//! be an answer mixing versions; the wrk script counts them, and counts
//! status classes (5xx must be 0: no request here is meant to time out).
//! Resident memory of this process (the server runs in it) is sampled
//! throughout: before the load, once the load has warmed the instance pool
//! (5 s in), its peak, and at the end.
//!
//! Slow clients: text-search throughput and p99 with the throughput row's
//! wrk load (`--wrk-connections`, default 32) alone, then
//! again while N idle connections and N/4 byte-at-a-time header senders hold
//! sockets open (cut by the header timeout and kept coming back), as a ratio
//! in the same run; the server's connection cap and timeouts must keep the
//! others served.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use busca_core::model::ModelManifest;
use busca_host::ServeOptions;

use crate::synthetic::{publish_synthetic_version, Synthetic, COLLECTION};
use crate::Args;

/// A 1×1 PNG (the image of the image-query requests).
const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
/// The body limit the soak's server runs with, so that a too-large body is cheap to send.
const SOAK_MAX_BODY: usize = 64 << 10;

/// A request of the soak mix: method, path, content type, body, whether it is a bad one.
struct Mix {
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    body: String,
    bad: bool,
}

fn mix() -> Vec<Mix> {
    let json = Some("application/json");
    let get = |path: &str, bad: bool| Mix { method: "GET", path: path.into(), content_type: None, body: String::new(), bad };
    let post = |ct: Option<&'static str>, body: String, bad: bool| Mix {
        method: "POST",
        path: "/api/search".into(),
        content_type: ct,
        body,
        bad,
    };
    let boundary = "soakboundary";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nworkers digging trenches\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"k\"\r\n\r\n12\r\n--{boundary}--\r\n"
    );
    vec![
        post(json, r#"{"text":"a blue scene","k":10}"#.into(), false),
        post(json, r#"{"text":"red and green","k":50}"#.into(), false),
        post(json, format!(r#"{{"text":"sunset","image":"{PNG_1X1}","image_weight":0.4}}"#), false),
        post(json, r#"{"like_shot":7,"k":20}"#.into(), false),
        post(json, r#"{"text":"night","positive":[3,4],"negative":[9],"filter":{"start_ms":0,"end_ms":60000}}"#.into(), false),
        post(Some("multipart/form-data; boundary=soakboundary"), multipart, false),
        get("/api/collections", false),
        get("/api/videos", false),
        get("/api/shots/11", false),
        get("/api/map", false),
        get("/", false),
        get("/app.js", false),
        get("/api/openapi.json", false),
        // Every kind of bad request: each must be a 4xx.
        post(json, r#"{"text": "unterminated"#.into(), true),
        post(Some("text/xml"), "<q/>".into(), true),
        post(json, r#"{"text":"x","k":1000000}"#.into(), true),
        post(json, format!(r#"{{"text":"{}"}}"#, "y".repeat(SOAK_MAX_BODY + 1024)), true),
        post(json, r#"{"image":"bm90IGFuIGltYWdl"}"#.into(), true),
        post(json, "{}".into(), true),
        get("/api/search", true),
        get("/no/such/route", true),
        get("/api/shots/not-a-number", true),
        get("/api/shots/99999999", true),
        get("/api/keyframes/synthetic/..%2F..%2Fmanifest.json", true),
        get("/media/../../etc/passwd", true),
        get("/api/videos/nope/timeline", true),
    ]
}

/// The wrk script: cycles through the mix, checks every answer that names
/// a bundle version against the video ids in it, counts status classes, and
/// stops each thread after its share of `requests`, leaving a file in
/// `marks` (wrk itself runs to its `-d`, so [`wrk_until_marked`] then
/// interrupts it, and wrk reports); marks at a third and two thirds of each
/// share tell the publisher when to publish.
fn lua(mix: &[Mix], requests: u64, threads: u64, marks: &Path) -> String {
    let mut s = String::from("local reqs = {}\n");
    for m in mix {
        let headers = match m.content_type {
            Some(ct) => format!("{{[\"Content-Type\"] = {ct:?}}}"),
            None => "{}".into(),
        };
        let body = if m.body.is_empty() { "nil".to_string() } else { format!("{:?}", m.body) };
        s.push_str(&format!("reqs[#reqs + 1] = {{ {:?}, {:?}, {headers}, {body} }}\n", m.method, m.path));
    }
    s.push_str(&format!(
        r#"
local per_thread = {share}
local marks = {marks:?}
local threads = {{}}
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function mark(prefix)
  local f = io.open(marks .. "/" .. prefix .. id, "w")
  if f then f:close() end
end
function init(args)
  formatted = {{}}
  for i, r in ipairs(reqs) do formatted[i] = wrk.format(r[1], r[2], r[3], r[4]) end
  n = id
  done_count, ok, bad4, bad5, other, mixed, checked = 0, 0, 0, 0, 0, 0, 0
  versions = {{}}
end
function request()
  n = n + 1
  return formatted[(n % #formatted) + 1]
end
function response(status, headers, body)
  done_count = done_count + 1
  if status >= 200 and status < 300 then ok = ok + 1
  elseif status >= 400 and status < 500 then bad4 = bad4 + 1
  elseif status >= 500 then bad5 = bad5 + 1
  else other = other + 1 end
  if body then
    local version = string.match(body, '"bundle_version":"(v%d+)"')
    if version then
      versions[version] = (versions[version] or 0) + 1
      for vid in string.gmatch(body, '"video_id":"([^"]+)"') do
        checked = checked + 1
        if string.sub(vid, 1, #version + 1) ~= version .. "-" then mixed = mixed + 1 end
      end
    end
  end
  if done_count == math.floor(per_thread / 3) then mark("third-1-") end
  if done_count == math.floor(2 * per_thread / 3) then mark("third-2-") end
  if done_count == per_thread then
    mark("thread-")
    wrk.thread:stop()
  end
end
function done(summary, latency, requests)
  local t = {{ requests = 0, ok = 0, status_4xx = 0, status_5xx = 0, other = 0, mixed = 0, ids_checked = 0 }}
  local versions_seen = {{}}
  for _, thread in ipairs(threads) do
    t.requests = t.requests + thread:get("done_count")
    t.ok = t.ok + thread:get("ok")
    t.status_4xx = t.status_4xx + thread:get("bad4")
    t.status_5xx = t.status_5xx + thread:get("bad5")
    t.other = t.other + thread:get("other")
    t.mixed = t.mixed + thread:get("mixed")
    t.ids_checked = t.ids_checked + thread:get("checked")
    local v = thread:get("versions")
    for name, count in pairs(v) do versions_seen[name] = (versions_seen[name] or 0) + count end
  end
  local vs = {{}}
  for name, count in pairs(versions_seen) do table.insert(vs, string.format('"%s": %d', name, count)) end
  io.write(string.format('SOAK {{"requests": %d, "ok": %d, "status_4xx": %d, "status_5xx": %d, "other": %d, "mixed_answers": %d, "video_ids_checked": %d, "socket_errors": %d, "seconds": %.2f, "p50_ms": %.2f, "p99_ms": %.2f, "versions": {{%s}}}}\n',
    t.requests, t.ok, t.status_4xx, t.status_5xx, t.other, t.mixed, t.ids_checked,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000, table.concat(vs, ", ")))
end
"#,
        share = requests.div_ceil(threads),
        marks = marks.display().to_string(),
    ));
    s
}

/// Resident memory of this process, in MiB.
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Samples [`rss_mib`] every 50 ms until stopped.
struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<(f64, f64)>>>,
}

/// Resident memory over the load, in MiB.
struct RssSeries {
    /// After the warm-up ([`WARM_UP`] into the load: the instance pool is full).
    warm: f64,
    peak: f64,
    end: f64,
}

/// How long the load runs before resident memory counts as its start.
const WARM_UP: Duration = Duration::from_secs(5);

impl RssSampler {
    fn start() -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut samples = Vec::new();
            while !s.load(Ordering::Relaxed) {
                samples.push((started.elapsed().as_secs_f64(), rss_mib()));
                std::thread::sleep(Duration::from_millis(50));
            }
            samples
        });
        RssSampler { stop, thread: Some(thread) }
    }

    fn finish(mut self) -> RssSeries {
        self.stop.store(true, Ordering::Relaxed);
        let samples = self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default();
        let end = rss_mib();
        let warm = samples.iter().find(|(t, _)| *t >= WARM_UP.as_secs_f64()).map_or(end, |s| s.1);
        let peak = samples.iter().map(|s| s.1).fold(end, f64::max);
        RssSeries { warm, peak, end }
    }
}

/// Marks in `marks` whose name starts with `prefix`.
fn marked(marks: &Path, prefix: &str) -> u64 {
    std::fs::read_dir(marks)
        .map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().starts_with(prefix)).count() as u64)
        .unwrap_or(0)
}

/// Runs wrk until each of its `threads` has left its file in `marks`, then
/// interrupts it (SIGINT: wrk stops and reports) and returns its output.
fn wrk_until_marked(args: &[String], script: &Path, url: &str, marks: &Path, threads: u64) -> Result<String> {
    let mut child = Command::new("wrk")
        .args(args)
        .arg("-s")
        .arg(script)
        .arg(url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("running wrk (apt-get install wrk)")?;
    loop {
        if marked(marks, "thread-") >= threads || child.try_wait()?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if child.try_wait()?.is_none() {
        // Our own child, by its id.
        Command::new("kill").args(["-INT", &child.id().to_string()]).status()?;
    }
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(text)
}

/// Runs the soak and the slow-client bench; prints `SOAK {...}` and
/// `SLOW {...}` JSON lines and a table.
pub fn run(rt: &tokio::runtime::Runtime, args: &Args, model: &ModelManifest) -> Result<()> {
    let shots = args.sizes[0];
    let root = args.work.join(format!("soak-{shots}"));
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    // Versions 2 and 3 keep version 1's vectors (its index file, copied, so
    // each is written in about a second) and rename every video after
    // themselves: an answer naming one version and a video of another is
    // an answer mixing versions.
    let v1_index = root.join(COLLECTION).join("versions").join("v000001").join(busca_core::bundle::INDEX_FILE);
    let version = |n: u32| Synthetic {
        shots,
        model,
        model_dir: &args.model,
        quantization: args.quantization,
        python: &args.python,
        video_prefix: busca_core::bundle::version_name(n),
        seed: 1000,
        index_from: (n > 1).then_some(v1_index.as_path()),
    };
    publish_synthetic_version(&root, &version(1))?;

    let mut opts = ServeOptions::new(args.component.clone(), root.clone(), vec![args.model.clone()]);
    opts.listen = "127.0.0.1:0".parse()?;
    opts.cache_dir = Some(args.work.join("snapshots"));
    opts.ort_dylib = args.ort_dylib.clone();
    opts.max_concurrency = 64;
    opts.poll_interval_ms = 200;
    opts.max_body_bytes = SOAK_MAX_BODY;
    let server = rt.block_on(busca_host::start(&opts))?;
    let url = format!("http://{}", server.addr);

    // ---- soak
    let script = args.work.join("soak.lua");
    let threads = 2;
    let marks = args.work.join("soak-marks");
    let _ = std::fs::remove_dir_all(&marks);
    std::fs::create_dir_all(&marks)?;
    std::fs::write(&script, lua(&mix(), args.soak_requests, threads, &marks))?;
    let rss_start = rss_mib();
    let sampler = RssSampler::start();
    let started = Instant::now();
    let wrk_args: Vec<String> = vec![
        format!("-t{threads}"),
        format!("-c{}", args.soak_connections),
        "-d3600s".into(),
        "--timeout".into(),
        "30s".into(),
    ];
    let soak = std::thread::scope(|scope| -> Result<(String, Vec<f64>, Vec<f64>)> {
        let load = scope.spawn(|| wrk_until_marked(&wrk_args, &script, &url, &marks, threads));
        // Two new versions while the load runs: at a third and at two
        // thirds of the requests.
        let mut published = Vec::new();
        let mut rss_thirds = Vec::new();
        for (n, third) in [(2u32, "third-1-"), (3, "third-2-")] {
            while marked(&marks, third) < threads && !load.is_finished() {
                std::thread::sleep(Duration::from_millis(20));
            }
            if load.is_finished() {
                break;
            }
            rss_thirds.push(rss_mib());
            publish_synthetic_version(&root, &version(n))?;
            published.push(started.elapsed().as_secs_f64());
        }
        let text = load.join().map_err(|_| anyhow::anyhow!("the wrk thread panicked"))??;
        Ok((text, published, rss_thirds))
    })?;
    let rss = sampler.finish();
    let (text, published, rss_thirds) = soak;
    let line = text.lines().find_map(|l| l.strip_prefix("SOAK ")).context("no SOAK line from the wrk script")?;
    let mut result: serde_json::Value = serde_json::from_str(line)?;
    let bad_share = mix().iter().filter(|m| m.bad).count() as f64 / mix().len() as f64;
    result["shots"] = shots.into();
    result["connections"] = args.soak_connections.into();
    result["routes"] = mix().len().into();
    result["bad_share"] = bad_share.into();
    result["published_at_s"] = serde_json::json!(published);
    result["rss_before_mib"] = rss_start.into();
    result["rss_start_mib"] = rss.warm.into();
    result["rss_peak_mib"] = rss.peak.into();
    result["rss_end_mib"] = rss.end.into();
    result["rss_warm_up_s"] = WARM_UP.as_secs().into();
    // Just before each publish, i.e. after a third and two thirds of the
    // requests: with the end, equal steps of load to read a trend from.
    result["rss_at_thirds_mib"] = serde_json::json!(rss_thirds);
    println!("SOAK {result}");

    // ---- slow clients
    // The same text-search load as the throughput row (`run_wrk`), twice.
    let alone = crate::run_wrk(&server, args, args.sizes[0])?;
    let stop = Arc::new(AtomicBool::new(false));
    let reconnects = Arc::new(AtomicU64::new(0));
    let idle = args.slow_clients;
    let tricklers = (args.slow_clients / 4).max(1);
    let mut handles = Vec::new();
    for i in 0..idle + tricklers {
        let (stop, reconnects, addr) = (stop.clone(), reconnects.clone(), server.addr);
        handles.push(std::thread::spawn(move || slow_client(addr, i >= idle, &stop, &reconnects)));
    }
    std::thread::sleep(Duration::from_secs(1));
    let held = server.connections();
    let beside = crate::run_wrk(&server, args, args.sizes[0])?;
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    let (rps_ratio, p99_ratio) = (beside.requests_per_s / alone.requests_per_s, beside.p99_ms / alone.p99_ms);
    let slow = serde_json::json!({
        "idle_connections": idle, "byte_at_a_time": tricklers, "connections_held_by_server": held,
        "slow_reconnects": reconnects.load(Ordering::Relaxed),
        "alone_rps": alone.requests_per_s, "alone_p99_ms": alone.p99_ms, "alone_non_2xx": alone.errors,
        "beside_rps": beside.requests_per_s, "beside_p99_ms": beside.p99_ms, "beside_non_2xx": beside.errors,
        "rps_ratio": rps_ratio, "p99_ratio": p99_ratio,
    });
    println!("SLOW {slow}");
    rt.block_on(server.shutdown());

    println!("\n| soak ({shots} shots, {} connections, {} routes, {:.0} % bad) | value |", args.soak_connections, mix().len(), bad_share * 100.0);
    println!("|---|---|");
    for key in ["requests", "ok", "status_4xx", "status_5xx", "socket_errors", "mixed_answers", "video_ids_checked", "seconds", "p99_ms", "rss_before_mib", "rss_start_mib", "rss_peak_mib", "rss_end_mib"] {
        println!("| {key} | {} |", result[key]);
    }
    println!("| versions answered | {} |", result["versions"]);
    println!("\n| slow clients ({idle} idle + {tricklers} byte-at-a-time) | alone | beside them | ratio |");
    println!("|---|---|---|---|");
    println!("| text search req/s | {:.0} | {:.0} | {:.2} |", alone.requests_per_s, beside.requests_per_s, rps_ratio);
    println!("| p99 ms | {:.1} | {:.1} | {:.2} |", alone.p99_ms, beside.p99_ms, p99_ratio);
    Ok(())
}

/// A client that holds a connection without completing a request: idle
/// (connects and sends nothing) or trickling a header a byte every 200 ms.
/// When the server closes it (header timeout), it comes back.
fn slow_client(addr: SocketAddr, trickle: bool, stop: &AtomicBool, reconnects: &AtomicU64) {
    let request = b"POST /api/search HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: 30\r\n\r\n";
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        };
        let mut sent = 0;
        while !stop.load(Ordering::Relaxed) {
            if trickle && sent < request.len() {
                if stream.write_all(&request[sent..sent + 1]).is_err() {
                    break;
                }
                sent += 1;
            } else if !trickle {
                // Idle: a zero-byte peek says whether the server closed it.
                let _ = stream.set_nonblocking(true);
                let mut buf = [0u8; 1];
                match stream.peek(&mut buf) {
                    Ok(0) => break,
                    Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => break,
                    _ => {}
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        reconnects.fetch_add(1, Ordering::Relaxed);
    }
}
