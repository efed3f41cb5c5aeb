//! Building ONNX Runtime sessions: every model BuscaEscenas runs (the
//! indexer's image tower, eval's towers, the host's wasi-nn graphs) is loaded
//! here, optimised at level 3, on the CPU or on a CUDA device.
//!
//! CUDA needs this crate's `cuda` feature and an ONNX Runtime library with the
//! CUDA execution provider; when either is missing, or no device answers, the
//! session is built on the CPU and [`Session::fallback`] says why (also
//! logged as a warning), so a GPU run never silently runs on the CPU.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};

use crate::OnnxError;

/// Where a model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// CUDA device 0 when this build has it and a device answers, else CPU.
    Auto,
    /// CPU only.
    Cpu,
    /// CUDA device N (falls back to CPU, with a warning, when unavailable).
    Cuda(i32),
}

/// A device name that is not `auto`, `cpu`, `cuda` or `cuda:N`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?}: expected auto, cpu, cuda or cuda:N")]
pub struct UnknownDevice(pub String);

impl FromStr for Device {
    type Err = UnknownDevice;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Device::Auto),
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            other => match other.strip_prefix("cuda:").map(str::parse::<i32>) {
                Some(Ok(n)) if n >= 0 => Ok(Device::Cuda(n)),
                _ => Err(UnknownDevice(other.to_string())),
            },
        }
    }
}

/// The execution provider a session runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// ONNX Runtime's CPU provider.
    Cpu,
    /// CUDA.
    Cuda,
}

impl Provider {
    /// `CPU` or `CUDA`, as the logs say it.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Cpu => "CPU",
            Provider::Cuda => "CUDA",
        }
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the model comes from.
#[derive(Debug, Clone, Copy)]
pub enum SessionSource<'a> {
    /// An ONNX file (external weights beside it are found).
    File(&'a Path),
    /// ONNX bytes already read (the host reads each graph once).
    Memory(&'a [u8]),
}

impl SessionSource<'_> {
    fn path(&self) -> PathBuf {
        match self {
            SessionSource::File(p) => p.to_path_buf(),
            SessionSource::Memory(_) => PathBuf::from("<memory>"),
        }
    }
}

/// How to build a session.
#[derive(Debug, Clone, Copy)]
pub struct SessionOptions {
    /// Where it runs.
    pub device: Device,
    /// Intra-op threads (0: ONNX Runtime's default, all cores).
    pub threads: usize,
}

impl SessionOptions {
    /// CPU, `threads` intra-op threads.
    pub fn cpu(threads: usize) -> Self {
        SessionOptions { device: Device::Cpu, threads }
    }
}

/// A built session and where it runs.
#[derive(Debug)]
pub struct Session {
    /// ort's session.
    pub inner: ort::session::Session,
    /// The provider it runs on.
    pub provider: Provider,
    /// Why CUDA was asked for and not used.
    pub fallback: Option<String>,
}

/// Builds a session for `source` with `options`.
pub fn build(source: SessionSource<'_>, options: SessionOptions) -> Result<Session, OnnxError> {
    let builder = || -> Result<SessionBuilder, ort::Error> {
        // The pool spins between the parallel sections of a run (a large
        // tower's many operators need it), but parks as soon as the run
        // returns: every process of ours runs ONNX Runtime beside other work
        // on the same cores (the indexer's decoders), which a pool spinning
        // between runs starved.
        let mut b = ort::session::Session::builder()?
            .with_optimization_level(GraphOptimizationLevel::Level3)?
            .with_config_entry("session.force_spinning_stop", "1")?;
        if options.threads > 0 {
            b = b.with_intra_threads(options.threads)?;
        }
        Ok(b)
    };
    let commit = |b: SessionBuilder| match source {
        SessionSource::File(path) => b.commit_from_file(path),
        SessionSource::Memory(bytes) => b.commit_from_memory(bytes),
    };
    let fallback = match cuda_device(options.device) {
        Err(reason) => Some(reason),
        Ok(None) => None,
        Ok(Some(device_id)) => match cuda_session(device_id, &builder, &commit) {
            Ok(inner) => {
                tracing::info!("{} runs on CUDA device {device_id}", source.path().display());
                return Ok(Session { inner, provider: Provider::Cuda, fallback: None });
            }
            Err(e) => Some(format!("CUDA device {device_id} unavailable ({e})")),
        },
    };
    if let Some(reason) = &fallback {
        tracing::warn!("{}: {reason}; running on CPU", source.path().display());
    }
    let inner = builder().and_then(commit).map_err(|e| OnnxError::Load { path: source.path(), source: e })?;
    Ok(Session { inner, provider: Provider::Cpu, fallback })
}

/// The CUDA device to try, if any; `Err` says why one asked for cannot be.
fn cuda_device(device: Device) -> Result<Option<i32>, String> {
    match device {
        Device::Cpu => Ok(None),
        Device::Auto if cfg!(feature = "cuda") => Ok(Some(0)),
        Device::Auto => Ok(None),
        Device::Cuda(n) if cfg!(feature = "cuda") => Ok(Some(n)),
        Device::Cuda(n) => Err(format!("cuda:{n} asked for, but this build has no `cuda` feature")),
    }
}

#[cfg(feature = "cuda")]
fn cuda_session(
    device_id: i32,
    builder: &dyn Fn() -> Result<SessionBuilder, ort::Error>,
    commit: &dyn Fn(SessionBuilder) -> Result<ort::session::Session, ort::Error>,
) -> Result<ort::session::Session, ort::Error> {
    use ort::execution_providers::{CUDAExecutionProvider, ExecutionProvider};
    let ep = CUDAExecutionProvider::default().with_device_id(device_id);
    let mut b = builder()?;
    ep.register(&mut b).map_err(|e| ort::Error::new(e.to_string()))?;
    commit(b)
}

#[cfg(not(feature = "cuda"))]
fn cuda_session(
    _device_id: i32,
    _builder: &dyn Fn() -> Result<SessionBuilder, ort::Error>,
    _commit: &dyn Fn(SessionBuilder) -> Result<ort::session::Session, ort::Error>,
) -> Result<ort::session::Session, ort::Error> {
    Err(ort::Error::new("this build has no `cuda` feature"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert_eq!("auto".parse(), Ok(Device::Auto));
        assert_eq!("cpu".parse(), Ok(Device::Cpu));
        assert_eq!("cuda".parse(), Ok(Device::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(Device::Cuda(3)));
        assert!("cuda:-1".parse::<Device>().is_err());
        assert!("gpu".parse::<Device>().unwrap_err().to_string().contains("gpu"));
    }

    #[test]
    fn a_cuda_device_without_the_feature_says_so() {
        let found = cuda_device(Device::Cuda(1));
        if cfg!(feature = "cuda") {
            assert_eq!(found, Ok(Some(1)));
        } else {
            assert!(found.unwrap_err().contains("no `cuda` feature"));
        }
        assert_eq!(cuda_device(Device::Cpu), Ok(None));
    }
}
