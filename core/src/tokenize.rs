//! CLIP text tokenization: OpenAI CLIP's byte-level BPE with its 49,408-token
//! vocabulary (bundled by `instant-clip-tokenizer`), plus the text clean-up the
//! reference tokenizer does first (`basic_clean` + `whitespace_clean`).
//!
//! The output is what `clip.tokenize(text, truncate=True)` gives: start token,
//! BPE tokens, end token, truncated to the context length with the end token
//! kept, padded with the model's pad id. Checked against ids produced by the
//! Python reference (`core/tests/fixtures/tokens.json`).

use instant_clip_tokenizer::{Token, Tokenizer};
use unicode_normalization::UnicodeNormalization;

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

    /// The tokenizer a model manifest asks for.
    pub fn for_model(model: &crate::ModelManifest) -> Self {
        Self::new(model.text.context_length, model.text.pad_id)
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
}
