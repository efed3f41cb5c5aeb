//! What requests are served with (snapshot, runtime, media table) and how a
//! new bundle version replaces it: a background task polls the bundle source
//! and, when a collection's `CURRENT` moves, builds the next [`Serving`] off
//! the request path and swaps it in whole, so requests never wait for it and
//! never see two versions.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::error::HostError;
use crate::media::MediaIndex;
use crate::models::PreloadedGraphs;
use crate::runtime::{InstanceLimits, Runtime};
use crate::snapshot::{self, SnapshotSource};
use crate::source::BundleSource;

/// Everything one bundle state is served with.
pub(crate) struct Serving {
    /// `collection=version;...` this snapshot holds.
    pub(crate) key: String,
    pub(crate) runtime: Runtime,
    pub(crate) media: MediaIndex,
    pub(crate) snapshot: SnapshotSource,
}

/// The [`Serving`] new requests start on; replaced whole, so a request keeps
/// the one it started with.
pub(crate) type Current = RwLock<Arc<Serving>>;

/// Builds a [`Serving`] for the bundles as they are now.
pub(crate) struct ServingBuilder {
    pub(crate) engine: wasmtime::Engine,
    pub(crate) component: PathBuf,
    pub(crate) graphs: PreloadedGraphs,
    pub(crate) limits: InstanceLimits,
    pub(crate) cache_dir: Option<PathBuf>,
}

impl ServingBuilder {
    pub(crate) async fn build(&self, bundles: &std::path::Path, key: String) -> Result<Serving, HostError> {
        let (component, snapshot) = snapshot::load_or_build(
            &self.engine,
            &self.component,
            bundles,
            &self.graphs,
            self.cache_dir.as_deref(),
        )
        .await?;
        let runtime = Runtime::new(
            self.engine.clone(),
            &component,
            &self.component,
            self.graphs.clone(),
            bundles.to_path_buf(),
            self.limits,
        )?;
        let media = MediaIndex::load(bundles)?;
        Ok(Serving {
            key,
            runtime,
            media,
            snapshot,
        })
    }
}

/// Polls the source; when the bundle state changes, builds the new snapshot
/// and swaps it in. A state that fails to build is logged once and the
/// previous one goes on serving.
///
/// The build (pre-initializing the component over the new bundles, then
/// compiling the snapshot) is seconds of CPU with no await point in it, so
/// it runs on a blocking thread: on the runtime's workers it would stall
/// every request queued behind them (the soak bench measured a 5 s p99 at
/// each switch before).
pub(crate) async fn reload_loop(current: Arc<Current>, source: BundleSource, builder: ServingBuilder, every: Duration) {
    let builder = Arc::new(builder);
    let mut failed_key: Option<String> = None;
    loop {
        tokio::time::sleep(every).await;
        let key = match source.refresh().await {
            Ok(key) => key,
            Err(e) => {
                tracing::warn!("cannot read the bundles: {e}");
                continue;
            }
        };
        let serving_key = current.read().expect("serving lock").key.clone();
        if key == serving_key || failed_key.as_deref() == Some(key.as_str()) {
            continue;
        }
        let started = Instant::now();
        let (b, root, k) = (builder.clone(), source.local_root().to_path_buf(), key.clone());
        let handle = tokio::runtime::Handle::current();
        let built = tokio::task::spawn_blocking(move || {
            let built = handle.block_on(b.build(&root, k));
            release_free_heap();
            built
        })
        .await;
        match built {
            Err(e) => {
                tracing::error!("building the snapshot of {key} failed (still serving {serving_key}): {e}");
                failed_key = Some(key);
            }
            Ok(Ok(next)) => {
                *current.write().expect("serving lock") = Arc::new(next);
                failed_key = None;
                tracing::info!(
                    from = %serving_key,
                    to = %key,
                    ms = started.elapsed().as_millis() as u64,
                    "now serving new bundle versions"
                );
            }
            Ok(Err(e)) => {
                tracing::error!("cannot serve bundles {key} (still serving {serving_key}): {e}");
                failed_key = Some(key);
            }
        }
    }
}

/// Hands the heap's free pages back to the system. Pre-initializing and
/// compiling a version peaks near a gigabyte at 20k shots (the soak bench);
/// glibc keeps most of it once freed, so each switch would leave the
/// server's resident memory higher.
fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}
