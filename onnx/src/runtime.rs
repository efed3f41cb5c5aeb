//! Points `ort` (built with `load-dynamic`) at the ONNX Runtime shared
//! library: the PyPI wheel's `libonnxruntime.so` that `scripts/setup.sh`
//! installs, named by a flag or `ORT_DYLIB_PATH`, or found where the setup
//! script puts it ([`locate`]).

use std::path::{Path, PathBuf};

use crate::OnnxError;

/// The ONNX Runtime library as `scripts/setup.sh` finds it: `$ORT_DYLIB_PATH`,
/// else the project venv's wheel under `$BUSCA_HOME` (or the cache home):
/// `venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.*`.
pub fn locate() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH") {
        return Some(PathBuf::from(path));
    }
    let home = std::env::var_os("BUSCA_HOME").map(PathBuf::from).or_else(busca_core::cache_home)?;
    let entries = |dir: &Path| std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path());
    let starts = |p: &Path, prefix: &str| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix));
    entries(&home.join("venv").join("lib"))
        .filter(|p| starts(p, "python3"))
        .flat_map(|py| entries(&py.join("site-packages/onnxruntime/capi")).collect::<Vec<_>>())
        .find(|p| starts(p, "libonnxruntime.so."))
}

/// Initialises ONNX Runtime once per process from `explicit`, else from
/// [`locate`]; `app` names the environment in ONNX Runtime's logs. Each
/// session keeps its own intra-op threads ([`crate::SessionOptions`]). A
/// second call is harmless (ort keeps the first library and environment).
pub fn init_runtime(explicit: Option<&Path>, app: &str) -> Result<(), OnnxError> {
    init(explicit, app, None)
}

/// As [`init_runtime`], but every session of the process runs its operators
/// on one shared pool of `threads` intra-op threads (0: one per core), which
/// does not spin while idle: a server's sessions then use every core for a
/// lone request and share the cores, not oversubscribe them, under load.
/// Per-session thread counts are ignored under it.
pub fn init_runtime_shared_pool(explicit: Option<&Path>, app: &str, threads: usize) -> Result<(), OnnxError> {
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    init(explicit, app, Some(threads))
}

fn init(explicit: Option<&Path>, app: &str, pool: Option<usize>) -> Result<(), OnnxError> {
    let path = match explicit.map(Path::to_path_buf).or_else(locate) {
        Some(p) => p,
        None => return Err(OnnxError::RuntimeMissing("(ORT_DYLIB_PATH unset, no venv under $BUSCA_HOME)".into())),
    };
    if !path.is_file() {
        return Err(OnnxError::RuntimeMissing(path.display().to_string()));
    }
    let init = |path: &Path| -> Result<(), ort::Error> {
        let mut builder = ort::init_from(path.display().to_string()).with_name(app);
        if let Some(threads) = pool {
            builder = builder.with_global_thread_pool(
                ort::environment::GlobalThreadPoolOptions::default()
                    .with_intra_threads(threads)?
                    .with_inter_threads(1)?
                    .with_spin_control(false)?,
            );
        }
        builder.commit()?;
        Ok(())
    };
    init(&path).map_err(|source| OnnxError::RuntimeInit { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_is_named() {
        let err = init_runtime(Some(Path::new("/nonexistent/libonnxruntime.so")), "test").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/libonnxruntime.so"), "{err}");
    }
}
