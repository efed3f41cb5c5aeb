//! The host's per-request limits, checked against a fixture component that
//! misbehaves on purpose (`tests/fixtures/proxy-fixture`: `/loop` never
//! returns, `/grow` allocates without bound, `/panic` traps; anything else
//! answers 200): each gets its status and the server keeps serving. Slow
//! and idle clients (`/sleep/<ms>`, `/body`) cost connections, not instance
//! slots, and a shutdown lets requests in flight finish.
//!
//! Needs `ORT_DYLIB_PATH` (the tiny model's graphs are preloaded as in
//! production) and the wasm32-wasip2 target (the fixture is built here).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use busca_host::snapshot::SnapshotSource;
use busca_host::{RunningServer, ServeOptions};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Builds the fixture component (a no-op when fresh) into its own target
/// directory beside ours, so that the outer cargo's lock is not needed.
fn fixture_component() -> PathBuf {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| exe.ancestors().nth(3).unwrap().to_path_buf());
        let manifest = repo_root().join("tests/fixtures/proxy-fixture/Cargo.toml");
        let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--message-format",
                "json-render-diagnostics",
            ])
            .arg("--manifest-path")
            .arg(&manifest)
            .arg("--target-dir")
            .arg(target.join("proxy-fixture"))
            .output()
            .expect("run cargo");
        assert!(
            out.status.success(),
            "building {}: {}",
            manifest.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact")
            .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
            .filter_map(|f| f.as_str().map(PathBuf::from))
            .find(|f| f.extension().is_some_and(|e| e == "wasm"))
            .expect("cargo reported no .wasm artifact")
    })
    .clone()
}

struct Harness {
    _dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    server: Option<RunningServer>,
    agent: ureq::Agent,
}

impl Harness {
    fn start(tweak: impl FnOnce(&mut ServeOptions)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let bundles = dir.path().join("bundles");
        std::fs::create_dir_all(&bundles).unwrap();
        let mut opts = ServeOptions::new(
            fixture_component(),
            bundles,
            vec![busca_core::model::test_model_dir()],
        );
        opts.listen = "127.0.0.1:0".parse().unwrap();
        opts.cache_dir = Some(dir.path().join("cache"));
        tweak(&mut opts);
        let rt = tokio::runtime::Runtime::new().unwrap();
        let server = rt.block_on(busca_host::start(&opts)).expect("start");
        Harness {
            _dir: dir,
            rt,
            server: Some(server),
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(30))
                .build(),
        }
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.server.as_ref().unwrap().addr
    }

    /// Status and body of `GET path`.
    fn get(&self, path: &str) -> (u16, String) {
        let url = format!("http://{}{path}", self.addr());
        answer(self.agent.get(&url).call())
    }

    fn assert_alive(&self) {
        let (status, body) = self.get("/still-there");
        assert_eq!((status, body.as_str()), (200, "fixture saw /still-there"));
    }
}

/// Polls `done` every 10 ms for at most 20 s: synchronisation on what the
/// server reports, never on a sleep.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What the server sends on `stream` until it closes it (at most 20 s).
fn read_to_close(stream: &mut TcpStream) -> String {
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the server neither answered nor closed within 20 s: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn answer(result: Result<ureq::Response, ureq::Error>) -> (u16, String) {
    match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => (r.status(), r.into_string().unwrap()),
        Err(e) => panic!("transport error: {e}"),
    }
}

fn error_code(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v["error"]["code"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_runaway_request_is_interrupted_with_503_and_the_server_lives_on() {
    let h = Harness::start(|o| o.request_timeout_ms = 200);
    let started = Instant::now();
    let (status, body) = h.get("/loop");
    assert_eq!(status, 503, "{body}");
    assert_eq!(error_code(&body), "timeout");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "interrupted near its deadline: {:?}",
        started.elapsed()
    );
    h.assert_alive();
}

#[test]
fn memory_beyond_the_cap_fails_the_request_not_the_server() {
    let h = Harness::start(|o| o.max_memory_mib = 64);
    let (status, body) = h.get("/grow");
    assert_eq!(status, 500, "{body}");
    assert_eq!(error_code(&body), "component_failed");
    h.assert_alive();
}

#[test]
fn a_guest_panic_is_a_500_and_the_next_request_is_served() {
    let h = Harness::start(|_| {});
    let (status, body) = h.get("/panic");
    assert_eq!(
        (status, error_code(&body).as_str()),
        (500, "component_failed"),
        "{body}"
    );
    h.assert_alive();
}

#[test]
fn a_declared_oversized_body_is_refused_before_instantiation() {
    let h = Harness::start(|o| o.max_body_bytes = 1000);
    let url = format!("http://{}/api/search", h.addr());
    let (status, body) = answer(h.agent.post(&url).send_bytes(&[b'x'; 1001]));
    assert_eq!(
        (status, error_code(&body).as_str()),
        (413, "body_too_large"),
        "{body}"
    );
    let (status, _) = answer(h.agent.post(&url).send_bytes(&[b'x'; 1000]));
    assert_eq!(status, 200, "a body at the limit reaches the component");
}

#[test]
fn requests_beyond_the_concurrency_cap_wait_then_get_503() {
    let h = Harness::start(|o| {
        o.max_concurrency = 1;
        o.queue_timeout_ms = 100;
        o.request_timeout_ms = 1_500;
    });
    std::thread::scope(|s| {
        let runaway = s.spawn(|| h.get("/loop"));
        wait_until("the runaway request to hold the slot", || h.server.as_ref().unwrap().in_flight() == 1);
        let (status, body) = h.get("/queued");
        assert_eq!(status, 503, "{body}");
        assert_eq!(error_code(&body), "busy");
        assert_eq!(runaway.join().unwrap().0, 503);
    });
    h.assert_alive();
}

#[test]
fn every_request_gets_a_fresh_instance_and_pool_slots_are_returned() {
    // More sequential requests than the pool has slots: each must release its slot.
    let h = Harness::start(|o| o.max_concurrency = 2);
    for i in 0..100 {
        let (status, body) = h.get(&format!("/n/{i}"));
        assert_eq!((status, body), (200, format!("fixture saw /n/{i}")));
    }
}

#[test]
fn no_request_sees_what_an_earlier_one_left_in_memory() {
    // Two slots, many requests: slots are reused with their dirtied pages
    // kept resident, which the host must restore to the snapshot's contents.
    let h = Harness::start(|o| o.max_concurrency = 2);
    for _ in 0..40 {
        assert_eq!(h.get("/state"), (200, "count 1 dirty 0".to_string()));
    }
}

#[test]
fn a_component_without_wizer_initialize_is_served_as_is_and_cached() {
    let h = Harness::start(|_| {});
    assert_eq!(h.server.as_ref().unwrap().snapshot, SnapshotSource::Built);
    let media = h.get("/media/demo/nothing");
    assert_eq!(media.0, 404, "unknown media is the host's 404: {}", media.1);
    h.assert_alive();
}

#[test]
fn shutdown_lets_a_request_in_flight_finish() {
    let mut h = Harness::start(|_| {});
    let addr = h.addr();
    let server = h.server.take().unwrap();
    let agent = h.agent.clone();
    std::thread::scope(|s| {
        let slow = s.spawn(move || answer(agent.get(&format!("http://{addr}/sleep/1500")).call()));
        wait_until("the slow request to start", || server.in_flight() == 1);
        h.rt.block_on(server.shutdown());
        // shutdown() returned: the request it waited for is answered in full.
        assert_eq!(slow.join().unwrap(), (200, "slept 1500 ms".to_string()));
    });
    assert!(TcpStream::connect(addr).is_err(), "nothing listens after shutdown");
}

#[test]
fn trickling_bodies_hold_connections_not_instance_slots() {
    // Two slots; twenty clients send their headers and then one byte of a
    // 1,000-byte body. Were bodies read inside the component, they would hold
    // both slots and everyone else would get 503 busy.
    let h = Harness::start(|o| {
        o.max_concurrency = 2;
        o.queue_timeout_ms = 500;
        o.body_timeout_ms = 2_000;
    });
    let mut trickling: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = TcpStream::connect(h.addr()).unwrap();
            s.write_all(b"POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\nx").unwrap();
            s
        })
        .collect();
    wait_until("the twenty connections to be open", || h.server.as_ref().unwrap().connections() >= 20);
    for i in 0..20 {
        assert_eq!(h.get(&format!("/n/{i}")), (200, format!("fixture saw /n/{i}")));
    }
    // A whole body still reaches the component.
    let url = format!("http://{}/body", h.addr());
    assert_eq!(answer(h.agent.post(&url).send_bytes(&[b'y'; 1000])), (200, "fixture read 1000 bytes".to_string()));
    // The tricklers get 408 when their time is up.
    for s in &mut trickling {
        let reply = read_to_close(s);
        assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
        assert_eq!(error_code(reply.split("\r\n\r\n").nth(1).unwrap_or_default()), "body_timeout");
    }
    h.assert_alive();
}

#[test]
fn idle_connections_are_closed_and_capped_so_others_get_in() {
    // Three connections at most, each given half a second for its headers.
    let h = Harness::start(|o| {
        o.max_connections = 3;
        o.header_timeout_ms = 500;
    });
    let mut idle: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(h.addr()).unwrap()).collect();
    wait_until("the three idle connections to be accepted", || h.server.as_ref().unwrap().connections() == 3);
    // A fourth client waits in the backlog until the idle ones are closed,
    // then is served.
    assert_eq!(h.get("/n/after"), (200, "fixture saw /n/after".to_string()));
    for s in &mut idle {
        assert_eq!(read_to_close(s), "", "an idle connection is closed without an answer");
    }
    // Headers sent a byte at a time, slower than the limit, fare the same.
    let mut slow = TcpStream::connect(h.addr()).unwrap();
    slow.write_all(b"GET /n/slow HTTP/1.1\r\n").unwrap();
    let reply = read_to_close(&mut slow);
    assert!(!reply.contains("fixture saw"), "{reply}");
    h.assert_alive();
}

#[test]
fn shutdown_stops_listening() {
    let mut h = Harness::start(|_| {});
    h.assert_alive();
    let addr = h.addr();
    let server = h.server.take().unwrap();
    h.rt.block_on(server.shutdown());
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "nothing listens after shutdown"
    );
}
