//! Pre-initialization: run the component's `wizer-initialize` once at start-up
//! with the bundles preopened, so that the loaded index becomes part of the
//! snapshot's linear memory, then compile the snapshot. Every request then
//! starts from that memory image, mapped copy-on-write by the pooling
//! allocator: nothing is parsed or copied per request. The image is started
//! where the kernel maps it on 2 MiB pages ([`image_align`]).
//!
//! The compiled snapshot is cached on disk keyed by the sha256 of the
//! component, the wasmtime version and each collection's current manifest, so a
//! restart with unchanged inputs skips both wizer and compilation.

use std::path::{Path, PathBuf};
use std::time::Instant;

use busca_core::bundle::{self, MANIFEST_FILE};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;
use wasmtime_wizer::{ComponentContext, WasmtimeWizerComponent, Wizer};

use crate::error::HostError;
use crate::image_align::{self, Rewrite, Rewriting};
use crate::models::PreloadedGraphs;
use crate::runtime::{self, RequestState};
use crate::world::QueryPre;

/// The export wizer runs (and removes from the snapshot).
pub use busca_core::guest::INIT_EXPORT as INIT_FUNCTION;

/// Whether the component exports [`INIT_FUNCTION`], read from its top-level
/// export section (nothing is compiled). Its type, and the rest of the
/// world, are checked against `wit/world.wit` before wizer runs it
/// ([`preinitialize`]).
pub fn exports_init_function(component: &[u8]) -> Result<bool, wasmparser::BinaryReaderError> {
    use wasmparser::Payload;
    // parse_all walks nested modules and components too; their sections
    // come between their header payload and their `End`.
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        match payload? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentExportSection(exports) if depth == 0 => {
                for export in exports {
                    if export?.name.name == INIT_FUNCTION {
                        return Ok(true);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(false)
}

/// Bump when the cache key's meaning changes.
/// v2: snapshots compiled with a guaranteed copy-on-write memory image
/// (`runtime::serving_engine`); a v1 artifact would load and copy its data
/// segments into every instance.
/// v3: memory images moved onto 2 MiB pages (`image_align`); a v2 artifact
/// would load with its index on 4 KiB pages.
const CACHE_KEY_VERSION: &str = "busca-snapshot-v3";

/// How the compiled snapshot was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotSource {
    /// Loaded from the on-disk cache.
    Cache,
    /// Pre-initialized and compiled now.
    Built,
}

/// The cache key: the component, this host's wasmtime, and each published
/// collection's current manifest (which lists the sha256 of every file, and
/// version directories are immutable).
pub fn cache_key(component: &[u8], bundles: &Path) -> Result<String, HostError> {
    let mut hasher = Sha256::new();
    hasher.update(CACHE_KEY_VERSION);
    hasher.update(env!("CARGO_PKG_VERSION"));
    hasher.update(wasmtime_version());
    hasher.update(Sha256::digest(component));
    for (collection, version) in crate::source::current_versions(bundles)? {
        let manifest = bundle::version_dir(&bundles.join(&collection), &version).join(MANIFEST_FILE);
        let bytes = std::fs::read(&manifest).map_err(HostError::io(&manifest))?;
        hasher.update(collection.as_bytes());
        hasher.update([0]);
        hasher.update(version.as_bytes());
        hasher.update([0]);
        hasher.update(Sha256::digest(&bytes));
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Where the compiled snapshot of `component` serving `bundles` is cached
/// in `cache_dir`: `<cache_key>.cwasm`.
pub fn cache_path(cache_dir: &Path, component: &[u8], bundles: &Path) -> Result<PathBuf, HostError> {
    Ok(cache_dir.join(format!("{}.cwasm", cache_key(component, bundles)?)))
}

fn wasmtime_version() -> &'static str {
    // Kept in step with the workspace pin; compiled artifacts are also checked
    // by wasmtime itself when deserialized.
    "wasmtime-48.0.8"
}

/// An instance of the component that has run its `wizer-initialize`, kept
/// so that it can be snapshot more than once (see [`image_align`]).
pub struct Preinitialized<'a> {
    component_path: &'a Path,
    wizer: Wizer,
    cx: ComponentContext<'a>,
    store: wasmtime::Store<RequestState>,
    instance: wasmtime::component::Instance,
}

/// Runs the component's `wizer-initialize` with the bundles preopened at
/// `/bundles`; [`Preinitialized::snapshot`] then makes the snapshot
/// component (init function removed).
pub async fn preinitialize<'a>(
    component_path: &'a Path,
    component: &'a [u8],
    bundles: &Path,
    graphs: &PreloadedGraphs,
) -> Result<Preinitialized<'a>, HostError> {
    let failed = || HostError::component(component_path, "pre-initializing it");
    let engine = runtime::preinit_engine()?;
    let linker = runtime::linker(&engine)?;
    // No store limiter: initialization may use more memory than a request.
    let state = RequestState::new(bundles, graphs, usize::MAX)?;
    let mut store = wasmtime::Store::new(&engine, state);
    // wizer reads the instance's memories back through host calls; a loaded
    // 200k-shot index is far beyond the default 128 MiB per-call budget.
    store.set_hostcall_fuel(usize::MAX);
    let mut wizer = Wizer::new();
    wizer.init_func(INIT_FUNCTION).keep_init_func(false);
    // What `Wizer::run_component` does, with the instance kept afterwards.
    let (cx, instrumented) = wizer.instrument_component(component).map_err(failed())?;
    let instrumented = Component::new(&engine, &instrumented).map_err(failed())?;
    let pre = linker.instantiate_pre(&instrumented).map_err(failed())?;
    // The whole world, every export with its type, before anything runs.
    QueryPre::new(pre.clone()).map_err(|e| {
        failed()(e.context("the component does not have the world buscaescenas:edge/query (wit/world.wit)"))
    })?;
    let instance = pre.instantiate_async(&mut store).await.map_err(failed())?;
    let init = instance
        .get_export_index(&mut store, None, INIT_FUNCTION)
        .and_then(|index| instance.get_func(&mut store, index))
        .ok_or_else(|| failed()(wasmtime::format_err!("no function export {INIT_FUNCTION}")))?;
    init.call_async(&mut store, &[], &mut [])
        .await
        .map_err(|e| failed()(e.context("the initialization function trapped")))?;
    Ok(Preinitialized { component_path, wizer, cx, store, instance })
}

impl Preinitialized<'_> {
    /// The snapshot component, its memories handed to wizer as `rewrite`
    /// says, and the largest memory's shape.
    pub async fn snapshot(
        &mut self,
        rewrite: Rewrite,
    ) -> Result<(Vec<u8>, Option<image_align::MemoryShape>), HostError> {
        let view = WasmtimeWizerComponent { store: &mut self.store, instance: self.instance };
        let mut view = Rewriting::new(view, rewrite);
        let snapshot = self
            .wizer
            .snapshot_component(&self.cx, &mut view)
            .await
            .map_err(HostError::component(self.component_path, "snapshotting it"))?;
        Ok((snapshot, view.largest_memory().cloned()))
    }
}

/// The serving component: from the cache when `cache_dir` holds a snapshot
/// with the same key, otherwise pre-initialized, compiled and (when
/// `cache_dir` is given) stored there, its memory image aligned to huge
/// pages ([`image_align`]).
pub async fn load_or_build(
    engine: &Engine,
    component_path: &Path,
    bundles: &Path,
    graphs: &PreloadedGraphs,
    cache_dir: Option<&Path>,
) -> Result<(Component, SnapshotSource), HostError> {
    let component = std::fs::read(component_path).map_err(HostError::io(component_path))?;
    let cached = cache_dir.map(|dir| cache_path(dir, &component, bundles)).transpose()?;
    if let Some(path) = cached.as_deref().filter(|p| p.is_file()) {
        // Before anything maps it: in 2 MiB folios, or the aligned image is
        // still mapped over 4 KiB pages (see `image_align`).
        let checking = Instant::now();
        match image_align::huge_page_cache(path) {
            Ok(f) if f.huge_after != f.huge_before => tracing::info!(
                cache = %path.display(),
                ms = checking.elapsed().as_millis() as u64,
                bytes = f.bytes,
                huge_before = f.huge_before,
                huge_after = f.huge_after,
                "read the snapshot back into the page cache in 2 MiB folios"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(cache = %path.display(), "cannot check the snapshot's page-cache folios: {e}"),
        }
        // SAFETY: the file is one this host wrote with `precompile_component`
        // into its own cache directory; wasmtime checks that it was compiled
        // by this version with this configuration and refuses otherwise.
        match unsafe { Component::deserialize_file(engine, path) } {
            Ok(compiled) => {
                tracing::info!(cache = %path.display(), "loaded pre-initialized snapshot from cache");
                log_alignment(path, image_misalignment(engine, &compiled, path, bundles, graphs).await?);
                return Ok((compiled, SnapshotSource::Cache));
            }
            Err(e) => {
                tracing::warn!(cache = %path.display(), "ignoring unusable cached snapshot: {e:#}")
            }
        }
    }
    let started = Instant::now();
    let exports_init = exports_init_function(&component)
        .map_err(|e| HostError::component(component_path, "reading its exports")(e.into()))?;
    let Some(path) = cached else {
        // No file to map the image from: wasmtime copies it into a memfd,
        // which is on 4 KiB pages whatever its alignment.
        let snapshot = if exports_init {
            preinitialize(component_path, &component, bundles, graphs).await?.snapshot(Rewrite::Keep).await?.0
        } else {
            without_init_warning(component_path);
            component
        };
        let compiled = Component::new(engine, &snapshot).map_err(HostError::component(component_path, "compiling the snapshot"))?;
        tracing::info!(ms = started.elapsed().as_millis() as u64, "pre-initialized and compiled the component");
        return Ok((compiled, SnapshotSource::Built));
    };
    if !exports_init {
        without_init_warning(component_path);
        return Ok((compile_to(engine, component_path, &component, &path)?, SnapshotSource::Built));
    }
    let mut pre = preinitialize(component_path, &component, bundles, graphs).await?;
    let init_ms = started.elapsed().as_millis() as u64;
    let started = Instant::now();
    let rewrite = align_rewrite(engine, component_path, &mut pre, &path, bundles, graphs).await?;
    let probe_ms = started.elapsed().as_millis() as u64;
    let started = Instant::now();
    let (snapshot, _) = pre.snapshot(rewrite).await?;
    drop(pre);
    let compiled = compile_to(engine, component_path, &snapshot, &path)?;
    drop(snapshot);
    log_alignment(&path, image_misalignment(engine, &compiled, &path, bundles, graphs).await?);
    tracing::info!(
        init_ms,
        probe_ms,
        compile_ms = started.elapsed().as_millis() as u64,
        functions_from_compile_cache = crate::compile_cache::shared().hits(),
        compile_cache_bytes = crate::compile_cache::shared().bytes(),
        "pre-initialized and compiled the component"
    );
    Ok((compiled, SnapshotSource::Built))
}

fn without_init_warning(component_path: &Path) {
    tracing::warn!(
        component = %component_path.display(),
        "the component has no {INIT_FUNCTION} export; serving it without pre-initialization"
    );
}

/// How to snapshot `pre` so that its memory image lands on 2 MiB pages
/// once compiled into `path`: a probe snapshot (the same code, the images
/// cut to one page) is compiled there first and instantiated, and its
/// mapping says how far off the image would be. Costs one compile of the
/// code (seconds), not of the index.
async fn align_rewrite(
    engine: &Engine,
    component_path: &Path,
    pre: &mut Preinitialized<'_>,
    path: &Path,
    bundles: &Path,
    graphs: &PreloadedGraphs,
) -> Result<Rewrite, HostError> {
    let (probe, shape) = pre.snapshot(Rewrite::Probe).await?;
    let Some(shape) = shape else { return Ok(Rewrite::Keep) };
    let probe_path = path.with_extension("probe");
    let compiled = compile_to(engine, component_path, &probe, &probe_path)?;
    let off = image_misalignment(engine, &compiled, &probe_path, bundles, graphs).await;
    drop(compiled);
    let _ = std::fs::remove_file(&probe_path);
    let Some(off) = off?.filter(|&off| off != 0) else { return Ok(Rewrite::Keep) };
    match image_align::marker_address(&shape, off) {
        Some(at) => {
            tracing::info!(image_start = shape.image_start, off, marker = at, "moving the memory image onto 2 MiB pages");
            Ok(Rewrite::Marker { accessor: shape.accessor, at })
        }
        None => {
            tracing::warn!(
                image_start = shape.image_start,
                off,
                "cannot move the memory image onto 2 MiB pages: the guest's stack is under 2 MiB"
            );
            Ok(Rewrite::Keep)
        }
    }
}

/// Compiles `snapshot` into the cache file `path` and loads it from there
/// (so that its memory image is mapped from the file).
fn compile_to(engine: &Engine, component_path: &Path, snapshot: &[u8], path: &Path) -> Result<Component, HostError> {
    let bytes = engine
        .precompile_component(snapshot)
        .map_err(HostError::component(component_path, "compiling the snapshot"))?;
    write_cache(path, &bytes)?;
    // SAFETY: just written by this process from `precompile_component`.
    unsafe { Component::deserialize_file(engine, path) }.map_err(HostError::component(path, "loading the compiled snapshot"))
}

/// Instantiates `compiled` once (mapping its memory image into a pool slot)
/// and returns how far that mapping is from 2 MiB alignment
/// ([`image_align::misalignment`]); `None` when it is not mapped from `path`,
/// or when it could not be instantiated now (during a reload every pool
/// slot may be serving): the alignment is then left as it falls, never a
/// reason not to serve.
async fn image_misalignment(
    engine: &Engine,
    compiled: &Component,
    path: &Path,
    bundles: &Path,
    graphs: &PreloadedGraphs,
) -> Result<Option<u64>, HostError> {
    let linker = runtime::linker(engine)?;
    let mut store = wasmtime::Store::new(engine, RequestState::new(bundles, graphs, usize::MAX)?);
    // The serving engine interrupts on epochs; instantiating runs no guest
    // code of ours, so any deadline past the next tick does.
    store.set_epoch_deadline(1_000);
    let instantiated = match linker.instantiate_pre(compiled) {
        Ok(pre) => pre.instantiate_async(&mut store).await.map(drop),
        Err(e) => Err(e),
    };
    if let Err(e) = instantiated {
        tracing::warn!(cache = %path.display(), "cannot instantiate the snapshot to see where its memory image lies: {e:#}");
        return Ok(None);
    }
    Ok(image_align::misalignment(path))
}

/// Says whether the served snapshot's image is on 2 MiB pages.
fn log_alignment(path: &Path, off: Option<u64>) {
    match off {
        Some(0) => tracing::info!(cache = %path.display(), "the memory image is mapped on 2 MiB pages"),
        Some(off) => tracing::warn!(
            cache = %path.display(),
            off,
            "the memory image is not 2 MiB aligned: searches read the index through 4 KiB pages"
        ),
        None => tracing::debug!(cache = %path.display(), "no memory image mapped from the file"),
    }
}

fn write_cache(path: &Path, bytes: &[u8]) -> Result<(), HostError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(HostError::io(dir))?;
    }
    bundle::write_file_atomic(path, bytes)?;
    if let Some(dir) = path.parent() {
        prune_cache(dir, CACHE_ENTRIES_KEPT);
    }
    Ok(())
}

/// Snapshots kept in the cache directory. Every published version makes a
/// new one (tens to hundreds of MB); the newest few cover a restart and a
/// roll-back, older ones are only disk.
pub const CACHE_ENTRIES_KEPT: usize = 6;

/// Deletes all but the `keep` most recently written `.cwasm` files of `dir`.
/// A snapshot in use stays mapped after its file is unlinked.
pub fn prune_cache(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut snapshots: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    snapshots.sort_by(|a, b| b.0.cmp(&a.0));
    for (_, path) in snapshots.into_iter().skip(keep) {
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::info!(cache = %path.display(), "removed an old snapshot"),
            Err(e) => tracing::warn!(cache = %path.display(), "cannot remove an old snapshot: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(root: &Path, collection: &str, version: &str, manifest: &str) {
        let dir = root.join(collection);
        let vdir = bundle::version_dir(&dir, version);
        std::fs::create_dir_all(&vdir).unwrap();
        std::fs::write(vdir.join(MANIFEST_FILE), manifest).unwrap();
        bundle::switch_current(&dir, version).unwrap();
    }

    /// A component whose core function `f` is lifted and exported as `name`.
    fn exporting(name: &str) -> String {
        format!(
            r#"(component
                (core module $m (func (export "f")))
                (core instance $i (instantiate $m))
                (func (export "{name}") (canon lift (core func $i "f"))))"#
        )
    }

    #[test]
    fn the_init_export_is_read_from_the_top_level_exports_only() {
        let top = wat::parse_str(exporting(INIT_FUNCTION)).unwrap();
        assert!(exports_init_function(&top).unwrap());
        let other = wat::parse_str(exporting("something-else")).unwrap();
        assert!(!exports_init_function(&other).unwrap());
        // The name as data, or exported by a nested component, is not an export.
        let data = wat::parse_str(
            r#"(component (core module (memory 1) (data (i32.const 0) "wizer-initialize")))"#,
        )
        .unwrap();
        assert!(!exports_init_function(&data).unwrap());
        let nested = wat::parse_str(format!("(component {})", exporting(INIT_FUNCTION))).unwrap();
        assert!(!exports_init_function(&nested).unwrap());
        assert!(exports_init_function(b"not wasm").is_err());
    }

    #[tokio::test]
    async fn a_component_without_the_query_world_is_refused_before_wizer_runs_it() {
        let root = tempfile::tempdir().unwrap();
        // It exports wizer-initialize, but not the HTTP handler.
        let component = wat::parse_str(exporting(INIT_FUNCTION)).unwrap();
        let Err(err) = preinitialize(Path::new("fixture.wasm"), &component, root.path(), &PreloadedGraphs::default()).await
        else {
            panic!("pre-initialized a component without the query world")
        };
        let err = err.to_string();
        assert!(err.contains("fixture.wasm") && err.contains("buscaescenas:edge/query"), "{err}");
        assert!(err.contains("wasi:http/incoming-handler"), "names the missing export: {err}");
    }

    #[test]
    fn cache_key_follows_component_and_current_versions() {
        let root = tempfile::tempdir().unwrap();
        publish(root.path(), "demo", "v000001", "{\"a\":1}");
        let k1 = cache_key(b"component", root.path()).unwrap();
        assert_eq!(k1, cache_key(b"component", root.path()).unwrap());
        assert_ne!(k1, cache_key(b"other component", root.path()).unwrap());
        publish(root.path(), "demo", "v000002", "{\"a\":2}");
        let k2 = cache_key(b"component", root.path()).unwrap();
        assert_ne!(k1, k2, "a new CURRENT version must change the key");
        publish(root.path(), "news", "v000001", "{}");
        assert_ne!(k2, cache_key(b"component", root.path()).unwrap());
    }

    #[test]
    fn the_cache_keeps_only_the_newest_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::time::SystemTime::now() - std::time::Duration::from_secs(100);
        for i in 0..5u64 {
            let path = dir.path().join(format!("{i}.cwasm"));
            std::fs::write(&path, b"x").unwrap();
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(base + std::time::Duration::from_secs(i)).unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), b"kept").unwrap();
        prune_cache(dir.path(), 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["3.cwasm", "4.cwasm", "notes.txt"]);
    }

    #[test]
    fn cache_key_names_a_broken_pointer() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("demo")).unwrap();
        std::fs::write(root.path().join("demo/CURRENT"), "v000009\n").unwrap();
        let err = cache_key(b"c", root.path()).unwrap_err().to_string();
        assert!(
            err.contains("v000009") && err.contains("manifest.json"),
            "{err}"
        );
    }
}
