//! Text tokenization for every text tower a model manifest can name.
//!
//! - [`ClipTokenizer`]: OpenAI CLIP's byte-level BPE with its 49,408-token
//!   vocabulary (bundled by `instant-clip-tokenizer`), plus the text clean-up
//!   the reference tokenizer does first (`basic_clean` + `whitespace_clean`).
//!   The output is what `clip.tokenize(text, truncate=True)` gives: start
//!   token, BPE tokens, end token, truncated to the context length with the end
//!   token kept, padded with the model's pad id. Checked against ids produced
//!   by the Python reference (`core/tests/fixtures/tokens.json`).
//! - A Hugging Face `tokenizer.json` (SentencePiece Unigram for XLM-R and
//!   Multilingual-CLIP) through the `tokenizers` crate, truncated and padded to
//!   the tower's context length as Python `tokenizers` does with
//!   `enable_truncation(L)` and `enable_padding(length=L)`. Checked against
//!   Python `tokenizers` (`core/tests/fixtures/unigram_tokens.json`).
//!
//! [`TextTokenizer`] is the one a tower's manifest asks for; [`TextTokenizers`]
//! holds every tower's, from a model directory or from a bundle.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use instant_clip_tokenizer::{Token, Tokenizer};
use unicode_normalization::UnicodeNormalization;

use crate::bundle::{self, OpenBundle};
use crate::model::{ModelManifest, TextTower, CLIP_BPE_TOKENIZER};

/// Why a text tower's tokenizer cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The tokenizer file could not be read.
    #[error("cannot read the tokenizer of text model {tower:?}")]
    Read {
        /// The tower id.
        tower: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The file's sha256 is not the manifest's.
    #[error("{path} has sha256 {found}, but the model manifest says {expected}")]
    Checksum {
        /// The file.
        path: PathBuf,
        /// From the manifest.
        expected: String,
        /// Of the file.
        found: String,
    },
    /// The file is not a tokenizer the `tokenizers` crate can build.
    #[error("{path} is not a usable tokenizer.json: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What `tokenizers` said.
        reason: String,
    },
}

/// The characters [`TextTokenizer::warm_up`] prepares queries over: lower
/// case (CLIP lower-cases first), digits, punctuation, and the accented
/// letters of Spanish and its neighbours.
pub const WARM_UP_ALPHABET: &str =
    "abcdefghijklmnopqrstuvwxyz0123456789 .,;:!?'\"-()/&<>_áéíóúüñçàèìòùâêîôûäëïöÿ¿¡";

/// The tokenizer of one text tower.
pub enum TextTokenizer {
    /// OpenAI CLIP's BPE.
    Clip(ClipTokenizer),
    /// A Hugging Face tokenizer.json, truncating and padding to the context length.
    Hf {
        /// The configured tokenizer.
        inner: Box<tokenizers::Tokenizer>,
        /// Ids per text.
        context_length: usize,
    },
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TextTokenizer::Clip(c) => c.fmt(f),
            TextTokenizer::Hf { context_length, .. } => {
                f.debug_struct("HfTokenizer").field("context_length", context_length).finish()
            }
        }
    }
}

/// Characters no vocabulary holds (private use, a rare CJK ideograph, a
/// symbol): a loaded tokenizer must encode them.
const UNSEEN: &str = "\u{E000}\u{10FFFD}\u{2A6D6}\u{1F9FF}";

impl TextTokenizer {
    /// The tokenizer `tower` names, built from the bytes of its tokenizer file
    /// (`path` is for messages); the file is ignored for CLIP's BPE.
    pub fn new(tower: &TextTower, file: Option<(&Path, &[u8])>) -> Result<Self, TokenizerError> {
        if tower.tokenizer == CLIP_BPE_TOKENIZER {
            return Ok(TextTokenizer::Clip(ClipTokenizer::new(tower.context_length, tower.pad_id)));
        }
        let (path, bytes) = file.ok_or_else(|| TokenizerError::Read {
            tower: tower.id.clone(),
            source: "the manifest names no tokenizer_file".into(),
        })?;
        let invalid = |reason: String| TokenizerError::Invalid { path: path.to_path_buf(), reason };
        let mut inner = tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| invalid(e.to_string()))?;
        let pad_id = u32::try_from(tower.pad_id).map_err(|_| invalid(format!("pad_id {} is not a token id", tower.pad_id)))?;
        let pad_token = inner
            .id_to_token(pad_id)
            .ok_or_else(|| invalid(format!("pad_id {pad_id} is not in its vocabulary")))?;
        inner
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: tower.context_length,
                ..Default::default()
            }))
            .map_err(|e| invalid(e.to_string()))?;
        inner.with_padding(Some(tokenizers::PaddingParams {
            strategy: tokenizers::PaddingStrategy::Fixed(tower.context_length),
            pad_id,
            pad_token,
            ..Default::default()
        }));
        // A model with no unknown token fails on any character outside its
        // vocabulary, and a query would have nothing to search with: refuse
        // such a tokenizer here, once, rather than answer with padding.
        inner
            .encode(UNSEEN, true)
            .map_err(|e| invalid(format!("cannot encode text outside its vocabulary ({e}); it needs an unknown token")))?;
        Ok(TextTokenizer::Hf { inner: Box::new(inner), context_length: tower.context_length })
    }

    /// The tokenizer of `tower` of the model in `model_dir` (its tokenizer
    /// file checked against the manifest's sha256 when it gives one).
    pub fn load(model_dir: &Path, tower: &TextTower) -> Result<Self, TokenizerError> {
        let Some(file) = &tower.tokenizer_file else {
            return Self::new(tower, None);
        };
        let path = model_dir.join(file);
        let bytes = std::fs::read(&path).map_err(|e| TokenizerError::Read {
            tower: tower.id.clone(),
            source: Box::new(crate::error::IoAt::at(&path)(e)),
        })?;
        if let Some(expected) = &tower.tokenizer_sha256 {
            let found = bundle::sha256_hex(&bytes);
            if &found != expected {
                return Err(TokenizerError::Checksum { path, expected: expected.clone(), found });
            }
        }
        Self::new(tower, Some((&path, &bytes)))
    }

    /// Number of ids per text.
    pub fn context_length(&self) -> usize {
        match self {
            TextTokenizer::Clip(c) => c.context_length(),
            TextTokenizer::Hf { context_length, .. } => *context_length,
        }
    }

    /// Builds, ahead of the first query, what tokenizing builds on first use:
    /// CLIP's pre-tokenization regex determinizes its lazy DFA one state and
    /// one transition at a time, as input reaches them, and keeps them. The
    /// query component calls this before its snapshot is taken, so that the
    /// states land in the snapshot; otherwise every request, each in a fresh
    /// instance of it, built them again (5% of the CPU under `wrk` at 20k
    /// shots, `perf record`). Every pair of [`WARM_UP_ALPHABET`]'s characters
    /// inside one text and each pair as a text of its own (the transitions at
    /// the end of a text are states too), then CLIP's contractions and
    /// markers: after it, queries over that alphabet add no state (checked
    /// with regex-automata's cache size on the same pattern). A Hugging Face
    /// tokenizer gets the one long text.
    pub fn warm_up(&self) {
        let alphabet: Vec<char> = WARM_UP_ALPHABET.chars().collect();
        let pairs: String = alphabet.iter().flat_map(|&a| alphabet.iter().flat_map(move |&b| [a, b])).collect();
        let mut out = Vec::new();
        self.tokenize_into(&pairs, &mut out);
        if let TextTokenizer::Clip(_) = self {
            let mut pair = String::with_capacity(8);
            for &a in &alphabet {
                for &b in &alphabet {
                    pair.clear();
                    pair.extend([a, b]);
                    out.clear();
                    self.tokenize_into(&pair, &mut out);
                }
            }
            for text in ["it's don't they're we've i'm you'll he'd", "<start_of_text>a<end_of_text>"] {
                out.clear();
                self.tokenize_into(text, &mut out);
            }
        }
    }

    /// Token ids of `text`, exactly `context_length` long.
    pub fn tokenize(&self, text: &str) -> Vec<i64> {
        let mut out = Vec::with_capacity(self.context_length());
        self.tokenize_into(text, &mut out);
        out
    }

    /// Appends the `context_length` token ids of `text` to `out` (for batches).
    pub fn tokenize_into(&self, text: &str, out: &mut Vec<i64>) {
        match self {
            TextTokenizer::Clip(c) => c.tokenize_into(text, out),
            TextTokenizer::Hf { inner, context_length } => {
                let start = out.len();
                // Encoding fails only for a model with no unknown token, and
                // `new` refused those; were it to, the ids stay padding.
                if let Ok(encoding) = inner.encode(text, true) {
                    out.extend(encoding.get_ids().iter().take(*context_length).map(|&id| i64::from(id)));
                }
                let pad = inner.get_padding().map(|p| i64::from(p.pad_id)).unwrap_or(0);
                out.resize(start + context_length, pad);
            }
        }
    }
}

/// The tokenizers of every text tower of a model, by tower id.
#[derive(Debug, Default)]
pub struct TextTokenizers(BTreeMap<String, TextTokenizer>);

impl TextTokenizers {
    /// From a model directory (indexer, eval, host tools).
    pub fn load(model_dir: &Path, model: &ModelManifest) -> Result<Self, TokenizerError> {
        model
            .text
            .iter()
            .map(|t| Ok((t.id.clone(), TextTokenizer::load(model_dir, t)?)))
            .collect::<Result<_, _>>()
            .map(TextTokenizers)
    }

    /// From a bundle: tokenizer files are under `model/`, checked against the
    /// bundle manifest (the component has no model directory).
    pub fn from_bundle(bundle: &OpenBundle) -> Result<Self, TokenizerError> {
        let mut out = BTreeMap::new();
        for tower in &bundle.manifest.model.text {
            let tokenizer = match &tower.tokenizer_file {
                None => TextTokenizer::new(tower, None)?,
                Some(file) => {
                    let rel = bundle::tokenizer_rel(file);
                    let bytes = bundle.read_checked(&rel).map_err(|e| TokenizerError::Read {
                        tower: tower.id.clone(),
                        source: Box::new(e),
                    })?;
                    TextTokenizer::new(tower, Some((&bundle.dir.join(&rel), &bytes)))?
                }
            };
            out.insert(tower.id.clone(), tokenizer);
        }
        Ok(TextTokenizers(out))
    }

    /// The tokenizer of tower `id`.
    pub fn get(&self, id: &str) -> Option<&TextTokenizer> {
        self.0.get(id)
    }

    /// Every tokenizer, by tower id.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &TextTokenizer)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// CLIP's text tokenizer. Building it parses the bundled vocabulary (a few
/// milliseconds), so build it once and share it.
pub struct ClipTokenizer {
    inner: Tokenizer,
    context_length: usize,
    pad_id: i64,
}

impl std::fmt::Debug for ClipTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipTokenizer")
            .field("context_length", &self.context_length)
            .field("pad_id", &self.pad_id)
            .finish()
    }
}

impl ClipTokenizer {
    /// A tokenizer producing `context_length` ids, padded with `pad_id`.
    ///
    /// # Panics
    /// If `context_length < 3` (start, one token, end).
    pub fn new(context_length: usize, pad_id: i64) -> Self {
        assert!(context_length >= 3, "context length must be at least 3");
        ClipTokenizer {
            inner: Tokenizer::new(),
            context_length,
            pad_id,
        }
    }

    /// Number of ids per text.
    pub fn context_length(&self) -> usize {
        self.context_length
    }

    /// Token ids of `text`, exactly `context_length` long.
    pub fn tokenize(&self, text: &str) -> Vec<i64> {
        let mut out = Vec::with_capacity(self.context_length);
        self.tokenize_into(text, &mut out);
        out
    }

    /// Appends the `context_length` token ids of `text` to `out` (for batches).
    pub fn tokenize_into(&self, text: &str, out: &mut Vec<i64>) {
        let cleaned = clean_text(text);
        let mut tokens: Vec<Token> = Vec::with_capacity(self.context_length + 8);
        tokens.push(self.inner.start_of_text());
        self.inner.encode(&cleaned, &mut tokens);
        tokens.truncate(self.context_length - 1);
        tokens.push(self.inner.end_of_text());
        let start = out.len();
        out.extend(tokens.iter().map(|t| i64::from(t.to_u16())));
        out.resize(start + self.context_length, self.pad_id);
    }
}

/// The reference tokenizer's clean-up: what `ftfy.fix_text` does to
/// well-formed text (curly quotes straightened, fullwidth forms made ASCII,
/// Unicode NFC), HTML entities unescaped twice, runs of whitespace collapsed to
/// one space, ends trimmed. Lowercasing happens in the BPE step.
pub fn clean_text(text: &str) -> String {
    let nfc: String = text.chars().map(ftfy_char).collect::<String>().nfc().collect();
    let once = html_escape::decode_html_entities(&nfc);
    let twice = html_escape::decode_html_entities(&once);
    twice.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// ftfy's `uncurl_quotes` and `fix_character_width` for one character.
fn ftfy_char(c: char) -> char {
    match c {
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' => '\'',
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' => '"',
        '\u{3000}' => ' ',
        // Fullwidth ASCII block maps onto ASCII by a fixed offset.
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_known_ids_and_pads() {
        let t = ClipTokenizer::new(77, 0);
        let ids = t.tokenize("Hi there");
        assert_eq!(&ids[..4], &[49406, 1883, 997, 49407]);
        assert_eq!(ids.len(), 77);
        assert!(ids[4..].iter().all(|&i| i == 0));
    }

    #[test]
    fn truncates_keeping_the_end_token() {
        let t = ClipTokenizer::new(77, 0);
        let ids = t.tokenize(&"red ".repeat(200));
        assert_eq!(ids.len(), 77);
        assert_eq!(ids[76], 49407);
    }

    #[test]
    fn cleans_like_the_reference() {
        assert_eq!(clean_text("  fish &amp;amp; chips\n\t now "), "fish & chips now");
    }

    #[test]
    fn a_tokenizer_without_an_unknown_token_is_refused_by_name() {
        let tower: crate::model::TextTower = serde_json::from_value(serde_json::json!({
            "id": "multilingual", "languages": ["es"], "file": "t.onnx", "graph_name": "g", "input": "input_ids",
            "output": "text_embeds", "context_length": 8, "tokenizer": "hf-tokenizer-json",
            "tokenizer_file": "t.tokenizer.json", "pad_id": 0
        }))
        .unwrap();
        let unigram = |unk: serde_json::Value| {
            serde_json::json!({"version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
                "normalizer": null, "pre_tokenizer": null, "post_processor": null, "decoder": null,
                "model": {"type": "Unigram", "unk_id": unk, "vocab": [["<pad>", 0.0], ["<unk>", 0.0], ["a", -1.0]]}})
            .to_string()
        };
        let path = Path::new("/models/x/t.tokenizer.json");
        let err = TextTokenizer::new(&tower, Some((path, unigram(serde_json::Value::Null).as_bytes()))).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("/models/x/t.tokenizer.json") && message.contains("unknown token"), "{message}");
        // With one, anything encodes: known pieces, then <unk>, then padding.
        let ok = TextTokenizer::new(&tower, Some((path, unigram(serde_json::json!(1)).as_bytes()))).unwrap();
        assert_eq!(ok.tokenize("a\u{E000}"), vec![2, 1, 0, 0, 0, 0, 0, 0]);
    }
}
