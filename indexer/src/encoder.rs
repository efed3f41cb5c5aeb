//! The CLIP image encoder through ONNX Runtime (`ort`): batched, on CPU or,
//! with the `cuda` cargo feature, on a CUDA device with fallback to CPU. One
//! log line says which execution provider runs. Models exported in fp16 are
//! fed fp16 tensors; embeddings come back as normalised f32 rows.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use busca_core::ModelManifest;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::tensor::TensorElementType;
use ort::value::{Tensor, ValueType};

/// Where the image encoder runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// CUDA when this build has it and a device answers, else CPU.
    Auto,
    /// CPU only.
    Cpu,
    /// CUDA device N (falls back to CPU, with a warning, when unavailable).
    Cuda(i32),
}

impl FromStr for Device {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Device::Auto),
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            other => match other.strip_prefix("cuda:").map(str::parse::<i32>) {
                Some(Ok(n)) if n >= 0 => Ok(Device::Cuda(n)),
                _ => Err(format!("{other:?}: expected auto, cpu, cuda or cuda:N")),
            },
        }
    }
}

/// Why the encoder could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// No ONNX Runtime library was named or it does not exist.
    #[error("ONNX Runtime library {0}: not found; set ORT_DYLIB_PATH (or --ort-lib) to libonnxruntime.so")]
    RuntimeMissing(String),
    /// ONNX Runtime refused the model.
    #[error("{path}: cannot load the image encoder: {source}")]
    Load {
        /// The ONNX file.
        path: PathBuf,
        /// ort's error.
        source: ort::Error,
    },
    /// The model's inputs or outputs are not what the manifest says.
    #[error("{path}: {reason}")]
    Interface {
        /// The ONNX file.
        path: PathBuf,
        /// What does not match.
        reason: String,
    },
    /// Inference failed.
    #[error("image encoder failed on a batch of {batch}: {source}")]
    Run {
        /// Batch size.
        batch: usize,
        /// ort's error.
        source: ort::Error,
    },
}

/// Points `ort` at the ONNX Runtime shared library once. `explicit` wins over
/// the `ORT_DYLIB_PATH` environment variable.
pub fn init_runtime(explicit: Option<&Path>) -> Result<(), EncodeError> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os("ORT_DYLIB_PATH") {
            Some(p) => PathBuf::from(p),
            None => return Err(EncodeError::RuntimeMissing("(unset)".into())),
        },
    };
    if !path.is_file() {
        return Err(EncodeError::RuntimeMissing(path.display().to_string()));
    }
    // A second call is harmless: ort keeps the first path and environment.
    let _ = ort::init_from(path.display().to_string()).with_name("busca-indexer").commit();
    Ok(())
}

/// The image tower of a CLIP model, ready to embed batches.
pub struct ImageEncoder {
    session: Session,
    path: PathBuf,
    input: String,
    output: String,
    dim: usize,
    size: usize,
    fp16_input: bool,
    provider: &'static str,
}

impl std::fmt::Debug for ImageEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageEncoder")
            .field("path", &self.path)
            .field("provider", &self.provider)
            .field("fp16_input", &self.fp16_input)
            .finish()
    }
}

impl ImageEncoder {
    /// Loads `model_dir/<manifest.image.file>` on `device` with `threads`
    /// intra-op threads (0 = ONNX Runtime's default, all cores).
    pub fn load(model_dir: &Path, manifest: &ModelManifest, device: Device, threads: usize) -> Result<Self, EncodeError> {
        let path = model_dir.join(&manifest.image.file);
        let load_err = |source| EncodeError::Load {
            path: path.clone(),
            source,
        };
        let builder = || -> Result<_, ort::Error> {
            let mut b = Session::builder()?.with_optimization_level(GraphOptimizationLevel::Level3)?;
            if threads > 0 {
                b = b.with_intra_threads(threads)?;
            }
            Ok(b)
        };
        let (session, provider) = match cuda_session(&path, device, builder) {
            Some(session) => (session, "CUDA"),
            None => (builder().and_then(|b| b.commit_from_file(&path)).map_err(load_err)?, "CPU"),
        };
        let input_meta = session
            .inputs
            .iter()
            .find(|i| i.name == manifest.image.input)
            .ok_or_else(|| EncodeError::Interface {
                path: path.clone(),
                reason: format!("no input named {:?}", manifest.image.input),
            })?;
        let fp16_input = matches!(
            input_meta.input_type,
            ValueType::Tensor {
                ty: TensorElementType::Float16,
                ..
            }
        );
        if !session.outputs.iter().any(|o| o.name == manifest.image.output) {
            return Err(EncodeError::Interface {
                path,
                reason: format!("no output named {:?}", manifest.image.output),
            });
        }
        tracing::info!(
            "image encoder {} runs on {provider}{}",
            path.display(),
            if fp16_input { " (fp16 model)" } else { "" }
        );
        Ok(ImageEncoder {
            session,
            path,
            input: manifest.image.input.clone(),
            output: manifest.image.output.clone(),
            dim: manifest.embedding_dim,
            size: manifest.image.image_size as usize,
            fp16_input,
            provider,
        })
    }

    /// The execution provider that runs the model (`CPU` or `CUDA`).
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Floats in one preprocessed image.
    pub fn tensor_len(&self) -> usize {
        3 * self.size * self.size
    }

    /// Embeds `n` preprocessed images laid end to end in `pixels`
    /// (`n × 3 × size × size`); returns `n × dim` normalised rows.
    pub fn encode(&mut self, pixels: &[f32], n: usize) -> Result<Vec<f32>, EncodeError> {
        assert_eq!(pixels.len(), n * self.tensor_len(), "batch buffer length");
        let shape = [n, 3, self.size, self.size];
        let run_err = |source| EncodeError::Run { batch: n, source };
        let outputs = if self.fp16_input {
            let half: Vec<half::f16> = pixels.iter().map(|v| half::f16::from_f32(*v)).collect();
            let tensor = Tensor::from_array((shape, half)).map_err(run_err)?;
            self.session
                .run(ort::inputs![self.input.as_str() => tensor])
                .map_err(run_err)?
        } else {
            let tensor = ort::value::TensorRef::from_array_view((shape, pixels)).map_err(run_err)?;
            self.session
                .run(ort::inputs![self.input.as_str() => tensor])
                .map_err(run_err)?
        };
        let value = &outputs[self.output.as_str()];
        let mut rows: Vec<f32> = match value.try_extract_tensor::<f32>() {
            Ok((_, data)) => data.to_vec(),
            Err(_) => {
                let (_, data) = value.try_extract_tensor::<half::f16>().map_err(run_err)?;
                data.iter().map(|v| v.to_f32()).collect()
            }
        };
        if rows.len() != n * self.dim {
            return Err(EncodeError::Interface {
                path: self.path.clone(),
                reason: format!(
                    "output has {} values for a batch of {n}; the manifest says {} dimensions",
                    rows.len(),
                    self.dim
                ),
            });
        }
        for row in rows.chunks_exact_mut(self.dim) {
            busca_core::vector::normalize(row);
        }
        Ok(rows)
    }
}

#[cfg(feature = "cuda")]
fn cuda_session(
    path: &Path,
    device: Device,
    builder: impl Fn() -> Result<ort::session::builder::SessionBuilder, ort::Error>,
) -> Option<Session> {
    use ort::execution_providers::{CUDAExecutionProvider, ExecutionProvider};
    let device_id = match device {
        Device::Cpu => return None,
        Device::Auto => 0,
        Device::Cuda(n) => n,
    };
    let attempt = || -> Result<Session, ort::Error> {
        let ep = CUDAExecutionProvider::default().with_device_id(device_id);
        let mut b = builder()?;
        ep.register(&mut b).map_err(|e| ort::Error::new(e.to_string()))?;
        b.commit_from_file(path)
    };
    match attempt() {
        Ok(session) => Some(session),
        Err(e) => {
            tracing::warn!("CUDA device {device_id} unavailable ({e}); falling back to CPU");
            None
        }
    }
}

#[cfg(not(feature = "cuda"))]
fn cuda_session(
    _path: &Path,
    device: Device,
    _builder: impl Fn() -> Result<ort::session::builder::SessionBuilder, ort::Error>,
) -> Option<Session> {
    if let Device::Cuda(n) = device {
        tracing::warn!("cuda:{n} asked for, but this build has no `cuda` feature; running on CPU");
    }
    None
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
        assert!("gpu".parse::<Device>().unwrap_err().contains("gpu"));
    }
}

/// The text tower of a CLIP model, for native query encoding (evaluation,
/// tests): the same tokenizer as the component, run through ort.
pub struct TextEncoder {
    session: Session,
    path: PathBuf,
    input: String,
    output: String,
    dim: usize,
    tokenizer: busca_core::ClipTokenizer,
}

impl std::fmt::Debug for TextEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextEncoder").field("path", &self.path).finish()
    }
}

impl TextEncoder {
    /// Loads `model_dir/<manifest.text.file>` on the CPU.
    pub fn load(model_dir: &Path, manifest: &ModelManifest) -> Result<Self, EncodeError> {
        let path = model_dir.join(&manifest.text.file);
        let session = Session::builder()
            .and_then(|b| b.with_optimization_level(GraphOptimizationLevel::Level3))
            .and_then(|b| b.commit_from_file(&path))
            .map_err(|source| EncodeError::Load {
                path: path.clone(),
                source,
            })?;
        for (what, name, present) in [
            ("input", &manifest.text.input, session.inputs.iter().any(|i| i.name == manifest.text.input)),
            ("output", &manifest.text.output, session.outputs.iter().any(|o| o.name == manifest.text.output)),
        ] {
            if !present {
                return Err(EncodeError::Interface {
                    path,
                    reason: format!("no {what} named {name:?}"),
                });
            }
        }
        Ok(TextEncoder {
            session,
            path,
            input: manifest.text.input.clone(),
            output: manifest.text.output.clone(),
            dim: manifest.embedding_dim,
            tokenizer: busca_core::ClipTokenizer::for_model(manifest),
        })
    }

    /// The normalised embedding of `text`.
    pub fn encode(&mut self, text: &str) -> Result<Vec<f32>, EncodeError> {
        let ids = self.tokenizer.tokenize(text);
        let run_err = |source| EncodeError::Run { batch: 1, source };
        let tensor = Tensor::from_array(([1, ids.len()], ids)).map_err(run_err)?;
        let outputs = self
            .session
            .run(ort::inputs![self.input.as_str() => tensor])
            .map_err(run_err)?;
        let (_, data) = outputs[self.output.as_str()].try_extract_tensor::<f32>().map_err(run_err)?;
        let mut row = data.to_vec();
        if row.len() != self.dim {
            return Err(EncodeError::Interface {
                path: self.path.clone(),
                reason: format!("output has {} values; the manifest says {} dimensions", row.len(), self.dim),
            });
        }
        busca_core::vector::normalize(&mut row);
        Ok(row)
    }
}
