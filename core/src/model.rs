//! The model manifest: which ONNX files make up a CLIP-shaped model pair, their
//! tensor names, the embedding dimension, and how inputs must be prepared.
//!
//! `models/tiny/manifest.json` and the manifests written by
//! `models/export_clip.py` follow this format; the indexer copies the relevant
//! part into every bundle so that the component can check that the graphs a host
//! offers are the ones the bundle was built with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::IoAt;
use crate::preprocess::ClipPreprocess;

/// Version of the model manifest format understood by this crate.
pub const MODEL_MANIFEST_VERSION: u32 = 1;

/// The file name of a model manifest inside a model directory.
pub const MODEL_MANIFEST_FILE: &str = "manifest.json";

/// The only tokenizer this crate implements: OpenAI CLIP's byte-level BPE.
pub const CLIP_BPE_TOKENIZER: &str = "openai-clip-bpe-49408";

/// A model directory's `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelManifest {
    /// Format version of this manifest ([`MODEL_MANIFEST_VERSION`]).
    pub format_version: u32,
    /// Names the weights, e.g. `openai-clip-vit-large-patch14`.
    pub model_id: String,
    /// Dimension of both towers' output embeddings.
    pub embedding_dim: usize,
    /// The image encoder.
    pub image: ImageTower,
    /// The text encoder.
    pub text: TextTower,
    /// Tiny test models only: the prototype colour table (name → RGB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colours: Option<BTreeMap<String, [u8; 3]>>,
}

/// The image tower: `pixel_values [N,3,S,S] f32 → image_embeds [N,D] f32`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageTower {
    /// ONNX file, relative to the model directory.
    pub file: String,
    /// Name under which hosts preload the graph for wasi-nn `load-by-name`.
    pub graph_name: String,
    /// Input tensor name.
    pub input: String,
    /// Output tensor name.
    pub output: String,
    /// Side of the square input, in pixels (224 for ViT-L/14).
    pub image_size: u32,
    /// Per-channel mean subtracted after scaling to `[0, 1]`.
    pub mean: [f32; 3],
    /// Per-channel standard deviation divided by.
    pub std: [f32; 3],
    /// Resize rule; only `shortest-side-bicubic` is implemented.
    pub resize: String,
    /// Crop rule; only `center` is implemented.
    pub crop: String,
    /// sha256 of the ONNX file, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// The text tower: `input_ids [N,L] i64 → text_embeds [N,D] f32`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextTower {
    /// ONNX file, relative to the model directory.
    pub file: String,
    /// Name under which hosts preload the graph for wasi-nn `load-by-name`.
    pub graph_name: String,
    /// Input tensor name.
    pub input: String,
    /// Output tensor name.
    pub output: String,
    /// Token sequence length L (77 for CLIP).
    pub context_length: usize,
    /// Tokenizer id; only [`CLIP_BPE_TOKENIZER`] is implemented.
    pub tokenizer: String,
    /// Token id used to pad sequences to `context_length`.
    pub pad_id: i64,
    /// sha256 of the ONNX file, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// Why a model manifest could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The manifest file could not be read.
    #[error("cannot read model manifest {0}")]
    Read(#[source] IoAt),
    /// The manifest is not valid JSON of the expected shape.
    #[error("model manifest {path} is malformed: {source}")]
    Parse {
        /// The manifest path.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The manifest asks for something this build does not implement.
    #[error("model manifest {path} is not supported: {reason}")]
    Unsupported {
        /// The manifest path.
        path: PathBuf,
        /// What is unsupported.
        #[source]
        reason: Unsupported,
    },
}

/// What in a model manifest this build cannot prepare inputs for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsupported {
    /// Another manifest format.
    #[error("format_version {0} (this build reads {MODEL_MANIFEST_VERSION})")]
    FormatVersion(u32),
    /// A size outside what this build accepts.
    #[error("{field} {value} out of range")]
    OutOfRange {
        /// The manifest field.
        field: &'static str,
        /// Its value.
        value: usize,
    },
    /// A resize or crop rule other than CLIP's.
    #[error("image preprocessing {resize}/{crop} (only shortest-side-bicubic/center)")]
    Preprocessing {
        /// The resize rule.
        resize: String,
        /// The crop rule.
        crop: String,
    },
    /// A zero, negative or non-finite normalisation std.
    #[error("image std must be positive and finite")]
    NonPositiveStd,
    /// A non-finite normalisation mean.
    #[error("image mean must be finite")]
    NonFiniteMean,
    /// A tokenizer this build does not have.
    #[error("tokenizer {0:?} (only {CLIP_BPE_TOKENIZER})")]
    Tokenizer(String),
}

impl ModelManifest {
    /// Reads and validates `dir/manifest.json`.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let path = dir.join(MODEL_MANIFEST_FILE);
        let bytes = std::fs::read(&path).map_err(|e| ModelError::Read(IoAt::at(&path)(e)))?;
        let manifest: ModelManifest =
            serde_json::from_slice(&bytes).map_err(|source| ModelError::Parse {
                path: path.clone(),
                source,
            })?;
        manifest
            .validate()
            .map_err(|reason| ModelError::Unsupported { path, reason })?;
        Ok(manifest)
    }

    /// Checks that this crate can prepare inputs for the model.
    pub fn validate(&self) -> Result<(), Unsupported> {
        if self.format_version != MODEL_MANIFEST_VERSION {
            return Err(Unsupported::FormatVersion(self.format_version));
        }
        if self.embedding_dim == 0 || self.embedding_dim > 8192 {
            return Err(Unsupported::OutOfRange { field: "embedding_dim", value: self.embedding_dim });
        }
        if self.image.resize != "shortest-side-bicubic" || self.image.crop != "center" {
            return Err(Unsupported::Preprocessing { resize: self.image.resize.clone(), crop: self.image.crop.clone() });
        }
        if !(16..=1024).contains(&self.image.image_size) {
            return Err(Unsupported::OutOfRange { field: "image_size", value: self.image.image_size as usize });
        }
        // `!(s > 0)` also refuses NaN; a number too large for f32 parses as
        // infinity (found by fuzzing) and would zero every pixel.
        if self.image.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(Unsupported::NonPositiveStd);
        }
        if self.image.mean.iter().any(|m| !m.is_finite()) {
            return Err(Unsupported::NonFiniteMean);
        }
        if self.text.tokenizer != CLIP_BPE_TOKENIZER {
            return Err(Unsupported::Tokenizer(self.text.tokenizer.clone()));
        }
        if !(3..=512).contains(&self.text.context_length) {
            return Err(Unsupported::OutOfRange { field: "context_length", value: self.text.context_length });
        }
        Ok(())
    }

    /// The image preprocessing this model expects.
    pub fn preprocess(&self) -> ClipPreprocess {
        ClipPreprocess {
            size: self.image.image_size,
            mean: self.image.mean,
            std: self.image.std,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> ModelManifest {
        serde_json::from_str(
            r#"{"format_version":1,"model_id":"m","embedding_dim":4,
            "image":{"file":"i.onnx","graph_name":"m-image","input":"pixel_values","output":"image_embeds",
              "image_size":224,"mean":[0.5,0.5,0.5],"std":[0.25,0.25,0.25],"resize":"shortest-side-bicubic","crop":"center"},
            "text":{"file":"t.onnx","graph_name":"m-text","input":"input_ids","output":"text_embeds",
              "context_length":77,"tokenizer":"openai-clip-bpe-49408","pad_id":0}}"#,
        )
        .unwrap()
    }

    #[test]
    fn validates_supported_manifest() {
        assert_eq!(sample().validate(), Ok(()));
    }

    #[test]
    fn rejects_unknown_tokenizer_and_version() {
        let mut m = sample();
        m.text.tokenizer = "sentencepiece".into();
        assert_eq!(m.validate(), Err(Unsupported::Tokenizer("sentencepiece".into())));
        let mut m = sample();
        m.format_version = 2;
        let err = m.validate().unwrap_err();
        assert_eq!(err, Unsupported::FormatVersion(2));
        assert!(err.to_string().contains("format_version 2"), "{err}");
    }

    #[test]
    fn rejects_non_finite_normalisation() {
        // 1e40 does not fit an f32: serde reads it as infinity.
        let text = serde_json::to_string(&sample()).unwrap().replace("[0.25,0.25,0.25]", "[0.25,0.25,1e40]");
        let m: ModelManifest = serde_json::from_str(&text).unwrap();
        assert_eq!(m.validate(), Err(Unsupported::NonPositiveStd));
        let mut m = sample();
        m.image.std[0] = f32::NAN;
        assert_eq!(m.validate(), Err(Unsupported::NonPositiveStd));
        let mut m = sample();
        m.image.mean[1] = f32::INFINITY;
        assert_eq!(m.validate(), Err(Unsupported::NonFiniteMean));
    }
}
