//! The CLIP towers a model manifest describes, run through ONNX Runtime: the
//! batched image encoder the indexer embeds frames with, and the text encoder
//! eval and the tests encode queries with (core's tokenizer, as the
//! component). Both check the model's input and output names against the
//! manifest at load and return normalised f32 rows.

use std::path::{Path, PathBuf};

use busca_core::model::TextTower;
use busca_core::ModelManifest;
use ort::tensor::TensorElementType;
use ort::value::{Tensor, ValueType};

use crate::session::{self, Provider, SessionOptions, SessionSource};
use crate::{Interface, OnnxError};

/// Checks that `session` has the input and output the manifest names.
fn check_names(session: &ort::session::Session, path: &Path, input: &str, output: &str) -> Result<(), OnnxError> {
    let what = if !session.inputs.iter().any(|i| i.name == input) {
        Interface::MissingInput(input.into())
    } else if !session.outputs.iter().any(|o| o.name == output) {
        Interface::MissingOutput(output.into())
    } else {
        return Ok(());
    };
    Err(OnnxError::Interface { path: path.to_path_buf(), what })
}

/// Normalises `rows` (`batch × dim`) in place, after checking their count.
fn normalised(mut rows: Vec<f32>, batch: usize, dim: usize, path: &Path) -> Result<Vec<f32>, OnnxError> {
    if rows.len() != batch * dim {
        return Err(OnnxError::Interface {
            path: path.to_path_buf(),
            what: Interface::OutputSize { values: rows.len(), batch, dim },
        });
    }
    for row in rows.chunks_exact_mut(dim) {
        busca_core::vector::normalize(row);
    }
    Ok(rows)
}

/// The image tower of a CLIP model, ready to embed batches. Models exported
/// in fp16 are fed fp16 tensors.
pub struct ImageEncoder {
    session: session::Session,
    path: PathBuf,
    input: String,
    output: String,
    dim: usize,
    size: usize,
    fp16_input: bool,
}

impl std::fmt::Debug for ImageEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageEncoder")
            .field("path", &self.path)
            .field("provider", &self.session.provider)
            .field("fp16_input", &self.fp16_input)
            .finish()
    }
}

impl ImageEncoder {
    /// Loads `model_dir/<manifest.image.file>` with `options`. One log line
    /// says which execution provider runs it.
    pub fn load(model_dir: &Path, manifest: &ModelManifest, options: SessionOptions) -> Result<Self, OnnxError> {
        let path = model_dir.join(&manifest.image.file);
        let session = session::build(SessionSource::File(&path), options)?;
        check_names(&session.inner, &path, &manifest.image.input, &manifest.image.output)?;
        let input_meta = session.inner.inputs.iter().find(|i| i.name == manifest.image.input).expect("checked");
        let fp16_input = matches!(input_meta.input_type, ValueType::Tensor { ty: TensorElementType::Float16, .. });
        tracing::info!(
            "image encoder {} runs on {}{}",
            path.display(),
            session.provider.name(),
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
        })
    }

    /// The execution provider that runs the model.
    pub fn provider(&self) -> Provider {
        self.session.provider
    }

    /// Why CUDA was asked for and not used, if it was.
    pub fn fallback(&self) -> Option<&str> {
        self.session.fallback.as_deref()
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
    pub fn encode(&mut self, pixels: &[f32], n: usize) -> Result<Vec<f32>, OnnxError> {
        assert_eq!(pixels.len(), n * self.tensor_len(), "batch buffer length");
        let shape = [n, 3, self.size, self.size];
        let path = &self.path;
        let run_err = |source| OnnxError::Run { path: path.clone(), batch: n, source };
        let session = &mut self.session.inner;
        let outputs = if self.fp16_input {
            let half: Vec<half::f16> = pixels.iter().map(|v| half::f16::from_f32(*v)).collect();
            let tensor = Tensor::from_array((shape, half)).map_err(run_err)?;
            session.run(ort::inputs![self.input.as_str() => tensor]).map_err(run_err)?
        } else {
            let tensor = ort::value::TensorRef::from_array_view((shape, pixels)).map_err(run_err)?;
            session.run(ort::inputs![self.input.as_str() => tensor]).map_err(run_err)?
        };
        let value = &outputs[self.output.as_str()];
        let rows: Vec<f32> = match value.try_extract_tensor::<f32>() {
            Ok((_, data)) => data.to_vec(),
            Err(_) => {
                let (_, data) = value.try_extract_tensor::<half::f16>().map_err(run_err)?;
                data.iter().map(|v| v.to_f32()).collect()
            }
        };
        normalised(rows, n, self.dim, &self.path)
    }
}

/// The text tower of a CLIP model, for native query encoding (evaluation,
/// tests): the same tokenizer as the component, on the CPU.
pub struct TextEncoder {
    session: session::Session,
    path: PathBuf,
    input: String,
    output: String,
    dim: usize,
    tokenizer: busca_core::TextTokenizer,
}

impl std::fmt::Debug for TextEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextEncoder").field("path", &self.path).finish()
    }
}

impl TextEncoder {
    /// Loads the model's default text tower on the CPU.
    pub fn load(model_dir: &Path, manifest: &ModelManifest) -> Result<Self, OnnxError> {
        Self::load_tower(model_dir, manifest, manifest.default_text())
    }

    /// Loads `model_dir/<tower.file>` and the tower's tokenizer on the CPU.
    pub fn load_tower(model_dir: &Path, manifest: &ModelManifest, tower: &TextTower) -> Result<Self, OnnxError> {
        let path = model_dir.join(&tower.file);
        let session = session::build(SessionSource::File(&path), SessionOptions::cpu(0))?;
        check_names(&session.inner, &path, &tower.input, &tower.output)?;
        let tokenizer = busca_core::TextTokenizer::load(model_dir, tower)?;
        Ok(TextEncoder {
            session,
            path,
            input: tower.input.clone(),
            output: tower.output.clone(),
            dim: manifest.embedding_dim,
            tokenizer,
        })
    }

    /// The normalised embedding of `text`.
    pub fn encode(&mut self, text: &str) -> Result<Vec<f32>, OnnxError> {
        let ids = self.tokenizer.tokenize(text);
        let path = &self.path;
        let run_err = |source| OnnxError::Run { path: path.clone(), batch: 1, source };
        let tensor = Tensor::from_array(([1, ids.len()], ids)).map_err(run_err)?;
        let outputs = self.session.inner.run(ort::inputs![self.input.as_str() => tensor]).map_err(run_err)?;
        let (_, data) = outputs[self.output.as_str()].try_extract_tensor::<f32>().map_err(run_err)?;
        normalised(data.to_vec(), 1, self.dim, &self.path)
    }
}
