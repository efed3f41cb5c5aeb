//! The model manifest: which ONNX files make up a CLIP-shaped model pair, their
//! tensor names, the embedding dimension, and how inputs must be prepared.
//!
//! `models/tiny/manifest.json` and the manifests written by
//! `models/export_clip.py` follow this format; the indexer copies the relevant
//! part into every bundle so that the component can check that the graphs a host
//! offers are the ones the bundle was built with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::IoAt;
use crate::preprocess::{ClipPreprocess, Fit};

/// Version of the model manifest format written by this crate: 2 lists the
/// text towers (1 had exactly one) and adds `about` and `score`.
pub const MODEL_MANIFEST_VERSION: u32 = 2;
/// Oldest model manifest format this crate still reads (bundles published
/// before version 2 carry it).
pub const OLDEST_MODEL_MANIFEST_VERSION: u32 = 1;

/// The file name of a model manifest inside a model directory.
pub const MODEL_MANIFEST_FILE: &str = "manifest.json";

/// OpenAI CLIP's byte-level BPE, built into this crate.
pub const CLIP_BPE_TOKENIZER: &str = "openai-clip-bpe-49408";
/// A Hugging Face `tokenizer.json` shipped beside the graph (SentencePiece
/// Unigram for XLM-R and Multilingual-CLIP, WordPiece, BPE).
pub const HF_TOKENIZER_JSON: &str = "hf-tokenizer-json";
/// The tokenizer kinds this crate implements.
pub const TOKENIZER_KINDS: [&str; 2] = [CLIP_BPE_TOKENIZER, HF_TOKENIZER_JSON];

/// A model directory's `manifest.json`: the single description of a model.
/// Indexer, component, host and eval read everything about a model from here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelManifest {
    /// Format version of this manifest ([`MODEL_MANIFEST_VERSION`]).
    pub format_version: u32,
    /// Names the weights, e.g. `openai-clip-vit-large-patch14`.
    pub model_id: String,
    /// What the model is and what it cannot do, in words, per language code
    /// (`en`, `es`): the page shows it beside the collection.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub about: BTreeMap<String, String>,
    /// Dimension of every tower's output embeddings.
    pub embedding_dim: usize,
    /// How a cosine similarity becomes the score the model was trained for.
    #[serde(default)]
    pub score: ScoreKind,
    /// The image encoder.
    pub image: ImageTower,
    /// The text encoders, all into the image tower's space; the first is the
    /// default. A version 1 manifest has one object here, read as a list of one.
    #[serde(deserialize_with = "one_or_many")]
    pub text: Vec<TextTower>,
    /// Tiny test models only: the prototype colour table (name → RGB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colours: Option<BTreeMap<String, [u8; 3]>>,
}

/// How a model turns the cosine of two normalised embeddings into its score.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ScoreKind {
    /// CLIP: the cosine is the score (softmax over a batch in training).
    #[default]
    Cosine,
    /// SigLIP: an independent match probability `sigmoid(scale · cos + bias)`.
    Sigmoid {
        /// The learnt logit scale (already exponentiated).
        scale: f32,
        /// The learnt logit bias.
        bias: f32,
    },
}

impl ScoreKind {
    /// The match probability of a cosine similarity, for models trained with
    /// a sigmoid loss; `None` for cosine models, whose scores are relative.
    pub fn probability(&self, cosine: f32) -> Option<f32> {
        match *self {
            ScoreKind::Cosine => None,
            ScoreKind::Sigmoid { scale, bias } => Some(1.0 / (1.0 + (-(scale * cosine + bias)).exp())),
        }
    }
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
    /// Resize rule: `shortest-side-bicubic` (CLIP, with crop `center`) or
    /// `squash-bilinear` (SigLIP, with crop `none`); see [`Fit`].
    pub resize: String,
    /// Crop rule: `center` or `none`, as the resize rule requires.
    pub crop: String,
    /// sha256 of the ONNX file, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// A text tower: `input_ids [N,L] i64 → text_embeds [N,D] f32`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextTower {
    /// Short name a request gives as `text_model` (`clip`, `multilingual`).
    #[serde(default = "default_tower_id")]
    pub id: String,
    /// Language codes the tower was trained for (`en`, `es`, …); `*` for a
    /// tower trained on many languages.
    #[serde(default = "default_languages")]
    pub languages: Vec<String>,
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
    /// Tokenizer kind, one of [`TOKENIZER_KINDS`].
    pub tokenizer: String,
    /// The tokenizer's file beside the graph ([`HF_TOKENIZER_JSON`] only): a
    /// plain file name, copied into every bundle under `model/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer_file: Option<String>,
    /// sha256 of the tokenizer file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer_sha256: Option<String>,
    /// Token id used to pad sequences to `context_length`.
    pub pad_id: i64,
    /// sha256 of the ONNX file, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

fn default_tower_id() -> String {
    "clip".into()
}

fn default_languages() -> Vec<String> {
    vec!["en".into()]
}

impl TextTower {
    /// Whether the tower was trained for `lang` (a code such as `es` or
    /// `es-ES`: the region is ignored).
    pub fn speaks(&self, lang: &str) -> bool {
        let base = lang.split(['-', '_']).next().unwrap_or(lang);
        self.languages.iter().any(|l| l == "*" || l.eq_ignore_ascii_case(base))
    }
}

/// `text` as a list, or (format version 1) as one tower.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<TextTower>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(Box<TextTower>),
        Many(Vec<TextTower>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(t) => vec![*t],
        OneOrMany::Many(v) => v,
    })
}

/// One ONNX graph of a model, as hosts and providers load it.
#[derive(Debug, Clone, Copy)]
pub struct GraphSpec<'a> {
    /// Name for wasi-nn `load-by-name`.
    pub graph_name: &'a str,
    /// ONNX file, relative to the model directory.
    pub file: &'a str,
    /// Input tensor name.
    pub input: &'a str,
    /// Output tensor name.
    pub output: &'a str,
    /// sha256 of the file, when the manifest gives it.
    pub sha256: Option<&'a str>,
}

/// The variable that points this repository's test suites at another model
/// directory (`scripts/test.sh` runs them again on `models/tiny-24`).
pub const TEST_MODEL_ENV: &str = "BUSCA_TEST_MODEL";

/// The model directory this repository's tests use: `$BUSCA_TEST_MODEL`
/// (relative to the repository root), else `models/tiny`. For tests only.
#[doc(hidden)]
pub fn test_model_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new(".")).to_path_buf();
    match std::env::var_os(TEST_MODEL_ENV) {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("models").join("tiny"),
    }
}

/// A request named a text tower the model does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model {model} has no text model {asked:?} (it has {})", .available.join(", "))]
pub struct UnknownTextModel {
    /// The model id.
    pub model: String,
    /// What was asked for.
    pub asked: String,
    /// The towers it has.
    pub available: Vec<String>,
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
    #[error("format_version {0} (this build reads {OLDEST_MODEL_MANIFEST_VERSION} to {MODEL_MANIFEST_VERSION})")]
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
    #[error("image preprocessing {resize}/{crop} (implemented: shortest-side-bicubic/center, squash-bilinear/none)")]
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
    /// A sigmoid score with a non-finite scale or bias.
    #[error("sigmoid score scale and bias must be finite")]
    NonFiniteScore,
    /// A tokenizer this build does not have.
    #[error("tokenizer {0:?} (this build has {CLIP_BPE_TOKENIZER} and {HF_TOKENIZER_JSON})")]
    Tokenizer(String),
    /// A text tower whose tokenizer needs a file names none, or names one
    /// that is not a plain file name.
    #[error("text tower {tower:?}: tokenizer_file {file:?} must be a plain file name ({HF_TOKENIZER_JSON} needs one)")]
    TokenizerFile {
        /// The tower id.
        tower: String,
        /// The file named (empty when none).
        file: String,
    },
    /// No text tower, or two with the same id or graph name.
    #[error("text towers: {0}")]
    Towers(String),
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
        if !(OLDEST_MODEL_MANIFEST_VERSION..=MODEL_MANIFEST_VERSION).contains(&self.format_version) {
            return Err(Unsupported::FormatVersion(self.format_version));
        }
        if self.embedding_dim == 0 || self.embedding_dim > 8192 {
            return Err(Unsupported::OutOfRange { field: "embedding_dim", value: self.embedding_dim });
        }
        if Fit::from_rules(&self.image.resize, &self.image.crop).is_none() {
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
        if let ScoreKind::Sigmoid { scale, bias } = self.score {
            if !(scale.is_finite() && bias.is_finite()) {
                return Err(Unsupported::NonFiniteScore);
            }
        }
        if self.text.is_empty() || self.text.len() > 16 {
            return Err(Unsupported::Towers(format!("{} listed (1 to 16)", self.text.len())));
        }
        for (i, tower) in self.text.iter().enumerate() {
            if tower.id.is_empty() || tower.id.len() > 64 {
                return Err(Unsupported::Towers(format!("tower {i} has an id of {} bytes (1 to 64)", tower.id.len())));
            }
            if let Some(other) = self.text[..i].iter().find(|t| t.id == tower.id || t.graph_name == tower.graph_name) {
                return Err(Unsupported::Towers(format!("{:?} and {:?} share an id or a graph name", other.id, tower.id)));
            }
            if !TOKENIZER_KINDS.contains(&tower.tokenizer.as_str()) {
                return Err(Unsupported::Tokenizer(tower.tokenizer.clone()));
            }
            let needs_file = tower.tokenizer == HF_TOKENIZER_JSON;
            let plain = |f: &str| !f.is_empty() && f.len() <= 128 && !f.contains(['/', '\\']) && f != "." && f != "..";
            match &tower.tokenizer_file {
                Some(file) if !plain(file) => {
                    return Err(Unsupported::TokenizerFile { tower: tower.id.clone(), file: file.clone() })
                }
                None if needs_file => {
                    return Err(Unsupported::TokenizerFile { tower: tower.id.clone(), file: String::new() })
                }
                _ => {}
            }
            if !(3..=512).contains(&tower.context_length) {
                return Err(Unsupported::OutOfRange { field: "context_length", value: tower.context_length });
            }
        }
        Ok(())
    }

    /// The image preprocessing this model expects.
    pub fn preprocess(&self) -> ClipPreprocess {
        ClipPreprocess {
            size: self.image.image_size,
            mean: self.image.mean,
            std: self.image.std,
            // validate() refused any other pair of rules.
            fit: Fit::from_rules(&self.image.resize, &self.image.crop).unwrap_or(Fit::ShortestSideCrop),
        }
    }

    /// The default text tower (the first listed).
    pub fn default_text(&self) -> &TextTower {
        &self.text[0]
    }

    /// The text tower a request asks for: the one named `id` when given (an
    /// error names the towers there are), else the first tower that speaks
    /// `lang`, else the default.
    pub fn text_tower(&self, id: Option<&str>, lang: Option<&str>) -> Result<&TextTower, UnknownTextModel> {
        if let Some(id) = id {
            return self.text.iter().find(|t| t.id == id).ok_or_else(|| UnknownTextModel {
                model: self.model_id.clone(),
                asked: id.to_string(),
                available: self.text.iter().map(|t| t.id.clone()).collect(),
            });
        }
        Ok(lang
            .and_then(|lang| self.text.iter().find(|t| t.speaks(lang)))
            .unwrap_or_else(|| self.default_text()))
    }

    /// Every ONNX graph of the model: the image tower, then the text towers.
    pub fn graphs(&self) -> Vec<GraphSpec<'_>> {
        let image = &self.image;
        std::iter::once(GraphSpec {
            graph_name: &image.graph_name,
            file: &image.file,
            input: &image.input,
            output: &image.output,
            sha256: image.sha256.as_deref(),
        })
        .chain(self.text.iter().map(|t| GraphSpec {
            graph_name: &t.graph_name,
            file: &t.file,
            input: &t.input,
            output: &t.output,
            sha256: t.sha256.as_deref(),
        }))
        .collect()
    }

    /// What the model is and cannot do, in `lang` if the manifest says it in
    /// that language, else in English, else in any language it has.
    pub fn about_in(&self, lang: &str) -> Option<&str> {
        self.about
            .get(lang)
            .or_else(|| self.about.get("en"))
            .or_else(|| self.about.values().next())
            .map(String::as_str)
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
        m.text[0].tokenizer = "sentencepiece".into();
        assert_eq!(m.validate(), Err(Unsupported::Tokenizer("sentencepiece".into())));
        let mut m = sample();
        m.format_version = 3;
        let err = m.validate().unwrap_err();
        assert_eq!(err, Unsupported::FormatVersion(3));
        assert!(err.to_string().contains("format_version 3"), "{err}");
    }

    #[test]
    fn version_1_reads_as_one_default_english_tower() {
        let m = sample();
        assert_eq!(m.text.len(), 1);
        assert_eq!(m.default_text().id, "clip");
        assert!(m.default_text().speaks("en-GB"));
        assert!(!m.default_text().speaks("es"));
        assert_eq!(m.score, ScoreKind::Cosine);
        assert_eq!(m.graphs().iter().map(|g| g.graph_name).collect::<Vec<_>>(), ["m-image", "m-text"]);
    }

    fn with_multilingual() -> ModelManifest {
        let mut m = sample();
        let mut t = m.text[0].clone();
        t.id = "multilingual".into();
        t.graph_name = "m-text-ml".into();
        t.languages = vec!["es".into(), "en".into(), "fr".into()];
        t.tokenizer = HF_TOKENIZER_JSON.into();
        t.tokenizer_file = Some("ml.tokenizer.json".into());
        m.text.push(t);
        m.format_version = 2;
        m
    }

    #[test]
    fn picks_towers_by_name_then_language() {
        let m = with_multilingual();
        assert_eq!(m.validate(), Ok(()));
        assert_eq!(m.text_tower(None, None).unwrap().id, "clip");
        assert_eq!(m.text_tower(None, Some("es-ES")).unwrap().id, "multilingual");
        assert_eq!(m.text_tower(None, Some("en")).unwrap().id, "clip");
        // Nobody speaks German: the default answers.
        assert_eq!(m.text_tower(None, Some("de")).unwrap().id, "clip");
        assert_eq!(m.text_tower(Some("multilingual"), Some("en")).unwrap().id, "multilingual");
        let err = m.text_tower(Some("siglip"), None).unwrap_err();
        assert_eq!(err.to_string(), "model m has no text model \"siglip\" (it has clip, multilingual)");
    }

    #[test]
    fn refuses_bad_towers() {
        let mut m = with_multilingual();
        m.text[1].tokenizer_file = None;
        assert!(matches!(m.validate(), Err(Unsupported::TokenizerFile { file, .. }) if file.is_empty()));
        let mut m = with_multilingual();
        m.text[1].tokenizer_file = Some("../../etc/passwd".into());
        assert!(matches!(m.validate(), Err(Unsupported::TokenizerFile { .. })));
        let mut m = with_multilingual();
        m.text[1].id = "clip".into();
        assert!(matches!(m.validate(), Err(Unsupported::Towers(_))));
        let mut m = with_multilingual();
        m.text.clear();
        assert!(matches!(m.validate(), Err(Unsupported::Towers(_))));
        let mut m = with_multilingual();
        m.score = ScoreKind::Sigmoid { scale: f32::INFINITY, bias: -10.0 };
        assert_eq!(m.validate(), Err(Unsupported::NonFiniteScore));
    }

    #[test]
    fn sigmoid_scores_are_probabilities() {
        let s = ScoreKind::Sigmoid { scale: 10.0, bias: -10.0 };
        assert_eq!(ScoreKind::Cosine.probability(0.3), None);
        assert!((s.probability(1.0).unwrap() - 0.5).abs() < 1e-6);
        assert!(s.probability(0.2).unwrap() < 0.001);
        // Round trip through JSON as the manifest writes it.
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"{"kind":"sigmoid","scale":10.0,"bias":-10.0}"#);
        assert_eq!(serde_json::from_str::<ScoreKind>(&json).unwrap(), s);
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
