//! The wasmtime side: engine configuration (pooling allocator, epoch
//! interruption), the per-request store state (WASI p2 with the bundles
//! preopened read-only, wasi-http, wasi-nn with the preloaded graphs), and
//! running one HTTP request in a fresh instance.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder, Trap, UpdateDeadline,
};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};
use wasmtime_wasi_nn::wit::{WasiNnCtx, WasiNnView};

use busca_core::guest::BUNDLES_ROOT;

use crate::error::HostError;
use crate::models::PreloadedGraphs;
use crate::world::QueryServedPre;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

/// The low part of each memory slot kept resident between requests (see
/// [`serving_engine`]); it costs only the pages requests actually dirty.
pub const KEEP_RESIDENT_BYTES: usize = 64 << 20;

/// The part of each table slot kept resident between requests: more than a
/// component's function tables hold (a few thousand 8-byte entries), so a
/// table is never decommitted (see [`serving_engine`]).
pub const TABLE_KEEP_RESIDENT_BYTES: usize = 1 << 20;

/// How often the epoch ticks; request deadlines are counted in ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Bounds on each request's instance.
#[derive(Debug, Clone, Copy)]
pub struct InstanceLimits {
    /// Instances alive at once (pool size).
    pub max_instances: u32,
    /// Linear memory cap per instance, in bytes. Must hold the snapshot's index.
    pub max_memory_bytes: usize,
    /// Wall-clock budget of one request inside the guest.
    pub timeout: Duration,
}

/// Store data of one request.
pub struct RequestState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    nn: WasiNnCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl RequestState {
    /// Fresh state: the bundles root preopened read-only at [`BUNDLES_ROOT`],
    /// no environment, no network, stderr inherited for guest logs.
    pub fn new(
        bundles: &Path,
        graphs: &PreloadedGraphs,
        max_memory_bytes: usize,
    ) -> Result<Self, HostError> {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stderr();
        wasi.preopened_dir(bundles, BUNDLES_ROOT, FsPerms::ReadOnly)
            .map_err(HostError::engine("preopening the bundles root for the guest"))?;
        Ok(RequestState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            // No backends: the guest may only use the graphs preloaded by name,
            // never load arbitrary model bytes.
            nn: WasiNnCtx::new([], graphs.registry()),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(max_memory_bytes)
                .build(),
        })
    }
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: Default::default(),
        }
    }
}

/// A store with the request's limits applied.
pub fn new_store(
    engine: &Engine,
    state: RequestState,
    limits: &InstanceLimits,
) -> Store<RequestState> {
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    // At every epoch tick the guest yields to the async executor, so a busy
    // guest never holds a tokio worker for more than a tick (other requests,
    // and the accept loop, keep running); past the deadline it traps instead.
    let deadline = Instant::now() + limits.timeout;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Err(Trap::Interrupt.into())
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    store
}

/// The engine requests run on: async (wasi-http), epoch interruption for
/// timeouts, and the pooling allocator so that instantiation reuses memory
/// slots and maps the snapshot copy-on-write instead of copying it. With
/// `perfmap`, compiled code is listed in `/tmp/perf-<pid>.map` for `perf`.
pub fn serving_engine(limits: &InstanceLimits, perfmap: bool) -> Result<Engine, HostError> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.wasm_component_model(true);
    config.memory_init_cow(true);
    // Every snapshot, and the probe before it, is the same code (see
    // `compile_cache`).
    config
        .enable_incremental_compilation(crate::compile_cache::shared())
        .map_err(HostError::engine("the incremental compilation cache"))?;
    if perfmap {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    // A copy-on-write image for every snapshot, however sparse: past 16 MiB
    // wasmtime otherwise builds one only if at least half of the initialized
    // range's pages hold data, and falls back to copying every data segment
    // into each new instance. A small bundle's snapshot (7 MiB of data
    // spread over 17 MiB, most of it freed load buffers scrubbed to zero)
    // fell on that side: perf put 36% of busca-serve's CPU at 100 shots in
    // that copy and 23% in memset. The image is at most a memory's size.
    config.memory_guaranteed_dense_image_size(limits.max_memory_bytes as u64);
    let mut pool = PoolingAllocationConfig::default();
    let n = limits.max_instances.max(1);
    pool.total_component_instances(n);
    // A wasip2 component is a handful of core instances (main module, shims).
    pool.total_core_instances(n * 16);
    pool.total_memories(n * 2);
    pool.total_tables(n * 4);
    pool.total_stacks(n);
    pool.max_memory_size(limits.max_memory_bytes);
    // Pages a request dirtied stay resident in its slot and are restored from
    // the image in place (only the dirty ones, found with Linux's
    // PAGEMAP_SCAN), instead
    // of being dropped and faulted in again, copy-on-write, by the next
    // request; those faults, and their TLB shootdowns, were the largest cost
    // of a small request.
    // Without the ioctl the kept part would be reset whole, memset and
    // copied on every request however little was dirtied: worse than the
    // faults for a large index, so it is only kept where the scan works.
    // The scan walks every present page of the slot, so the index pages
    // earlier requests read stay mapped as well (clean, nothing to restore).
    // At 200k shots that walk is about a tenth of the CPU under load (perf:
    // pagemap_scan_pmd_entry, vm_normal_page), and still the better side:
    // without the scan each request faulted in every row its graph walk
    // read, and like_shot took 7.1–7.9 ms in the component against
    // 1.45–1.62 ms (busca-host-bench against a build with this block
    // switched off by hand, alternated, 12-02).
    if pagemap_scan_supported() {
        pool.pagemap_scan(wasmtime::Enabled::Auto);
        pool.linear_memory_keep_resident(KEEP_RESIDENT_BYTES);
    }
    // Tables likewise: decommitted (the default), each request's first call
    // through a table took a copy-on-write fault on the zero page, and the
    // fault and the decommit each a TLB shootdown to the other cores (6% of
    // the CPU under wrk at 20k shots, `perf record`). A table is small, so
    // it is cleared in place whether or not the scan is there.
    pool.table_keep_resident(TABLE_KEEP_RESIDENT_BYTES);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = Engine::new(&config).map_err(HostError::engine("engine configuration"))?;
    start_epoch_ticker(&engine);
    Ok(engine)
}

/// Whether this kernel has the `PAGEMAP_SCAN` ioctl (Linux 6.7 and later).
fn pagemap_scan_supported() -> bool {
    linux_at_least(6, 7)
}

/// Whether this is Linux `major.minor` or later (false where
/// `/proc/sys/kernel/osrelease` is missing or unreadable).
pub(crate) fn linux_at_least(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.trim().split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (major, minor)
}

/// The engine for pre-initialization: plain on-demand allocation (the init
/// function may grow memory past what one request may), async for wasi-http.
pub fn preinit_engine() -> Result<Engine, HostError> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // The instrumented component is nearly all the component's own functions.
    config
        .enable_incremental_compilation(crate::compile_cache::shared())
        .map_err(HostError::engine("the incremental compilation cache"))?;
    Engine::new(&config).map_err(HostError::engine("engine configuration"))
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until the engine is dropped.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
        })
        .expect("spawn epoch ticker thread");
}

/// WASI p2, wasi-http and wasi-nn (`wasi:nn@0.2.0-rc-2024-10-28`) imports.
pub fn linker(engine: &Engine) -> Result<Linker<RequestState>, HostError> {
    let mut linker = Linker::new(engine);
    let err = || HostError::engine("linking imports");
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(err())?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(err())?;
    wasmtime_wasi_nn::wit::add_to_linker(&mut linker, |s: &mut RequestState| {
        WasiNnView::new(&mut s.table, &mut s.nn)
    })
    .map_err(err())?;
    Ok(linker)
}

/// How a request failed inside the component.
#[derive(Debug, thiserror::Error)]
pub enum RequestFailure {
    /// The guest ran past its deadline (epoch interruption).
    #[error("the request ran longer than {0:?}")]
    Timeout(Duration),
    /// The pool has no free instance slot, or the instance could not be made.
    #[error("cannot instantiate the component: {0}")]
    Instantiate(String),
    /// The guest trapped or returned without answering.
    #[error("the component failed: {0}")]
    Guest(String),
}

/// The compiled, pre-initialized component ready to serve.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    pre: ProxyPre<RequestState>,
    graphs: Arc<PreloadedGraphs>,
    bundles: PathBuf,
    limits: InstanceLimits,
}

impl Runtime {
    /// Links `component` (compiled for `engine`) against the host imports.
    pub fn new(
        engine: Engine,
        component: &Component,
        component_path: &Path,
        graphs: PreloadedGraphs,
        bundles: PathBuf,
        limits: InstanceLimits,
    ) -> Result<Self, HostError> {
        let linker = linker(&engine)?;
        let instance_pre = linker
            .instantiate_pre(component)
            .map_err(HostError::component(component_path, "linking against the host's imports"))?;
        QueryServedPre::new(instance_pre.clone()).map_err(HostError::component(
            component_path,
            "checking it has the world buscaescenas:edge/query-served (wit/world.wit)",
        ))?;
        let pre = ProxyPre::new(instance_pre)
            .map_err(HostError::component(component_path, "checking it is a wasi:http proxy component"))?;
        Ok(Runtime {
            engine,
            pre,
            graphs: Arc::new(graphs),
            bundles,
            limits,
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A store for one request.
    pub fn new_store(&self) -> Result<Store<RequestState>, HostError> {
        let state = RequestState::new(&self.bundles, &self.graphs, self.limits.max_memory_bytes)?;
        Ok(new_store(&self.engine, state, &self.limits))
    }

    /// Instantiates the component in a fresh store and drops it: what each
    /// request pays before the guest runs (for benchmarks).
    pub async fn instantiate_only(&self) -> Result<(), RequestFailure> {
        let mut store = self
            .new_store()
            .map_err(|e| RequestFailure::Instantiate(e.to_string()))?;
        self.pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| RequestFailure::Instantiate(format!("{e:#}")))?;
        Ok(())
    }

    /// Runs one HTTP request in a fresh instance and returns the guest's response.
    pub async fn handle<B>(
        &self,
        req: hyper::Request<B>,
    ) -> Result<hyper::Response<HyperOutgoingBody>, RequestFailure>
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let mut store = self
            .new_store()
            .map_err(|e| RequestFailure::Instantiate(e.to_string()))?;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let (req, out) = {
            let mut http = store.data_mut().http();
            let req = http
                .new_incoming_request(Scheme::Http, req)
                .map_err(|e| RequestFailure::Guest(format!("{e:#}")))?;
            let out = http
                .new_response_outparam(sender)
                .map_err(|e| RequestFailure::Guest(format!("{e:#}")))?;
            (req, out)
        };
        let pre = self.pre.clone();
        let timeout = self.limits.timeout;
        // The guest runs in its own task so that it can keep streaming the body
        // after the response head is sent.
        let task = tokio::task::spawn(async move {
            let proxy = pre
                .instantiate_async(&mut store)
                .await
                .map_err(|e| RequestFailure::Instantiate(format!("{e:#}")))?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await
                .map_err(|e| classify_trap(e, timeout))
        });
        match receiver.await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(code)) => Err(RequestFailure::Guest(format!(
                "guest answered with error {code:?}"
            ))),
            Err(_) => match task.await {
                Ok(Ok(())) => Err(RequestFailure::Guest(
                    "the guest returned without setting a response".into(),
                )),
                Ok(Err(failure)) => Err(failure),
                Err(join) => Err(RequestFailure::Guest(format!(
                    "guest task panicked: {join}"
                ))),
            },
        }
    }

    /// The limits requests run under.
    pub fn limits(&self) -> &InstanceLimits {
        &self.limits
    }
}

fn classify_trap(err: wasmtime::Error, timeout: Duration) -> RequestFailure {
    if err.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        RequestFailure::Timeout(timeout)
    } else {
        RequestFailure::Guest(format!("{err:#}"))
    }
}
