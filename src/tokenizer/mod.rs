//! The CLIP text tokenizer of the official LD-ZNet pipeline, reproduced id for id.
//!
//! LD-ZNet conditions its UNet on `FrozenCLIPEmbedder`, whose tokenizer is the *slow*
//! Python `CLIPTokenizer` of transformers 4.25.1 with ftfy 6.3.1 installed
//! (`tokenizer(texts, truncation=True, max_length=77, padding="max_length")`).
//! That tokenizer is not what the `tokenizers` library does out of the box: it runs
//! `ftfy.fix_text` on the text first (HTML entities, curly quotes, fullwidth letters,
//! ligatures, mojibake, ...), lower-cases with Python's `str.lower`, and treats special
//! token strings in its own way. This module reproduces it:
//!
//! 1. **Cleaning**, of the whole text: [`ftfy::fix_text`], then `whitespace_clean`
//!    (`\s+` → one space, Python `str.strip`), then lower case (`str::to_lowercase`, which,
//!    like Python's `str.lower`, maps a word-final `Σ` to `ς`; the per-character `Lowercase`
//!    normalizer of `tokenizers` does not, which is why lower-casing is done here).
//! 2. **Pre-tokenization** with the pre-tokenizer of the tokenizer file: the CLIP regex
//!    `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`
//!    (matches kept, everything else dropped; every digit is its own piece), then the GPT-2
//!    byte-to-unicode mapping (`ByteLevel`). Python compiles it with `regex.IGNORECASE`; on
//!    lower-case text that changes two things, both reproduced: `'ſ` matches `'s` (hence
//!    `(?i:…)` around the literal alternatives only: Rust's `(?i)` would also widen the
//!    classes), and U+0345 (combining ypogegrammeni, which case-folds to `ι`) matches no
//!    alternative and is dropped (hence `\x{345}` in the last class).
//! 3. **Special tokens**: the raw text is first split on the literal strings
//!    `<|startoftext|>` / `<|endoftext|>` (case-sensitive, before any cleaning), which become
//!    49406 / 49407; each piece between them is cleaned and tokenized on its own (so a `<` of
//!    a special token does not switch off HTML unescaping of its neighbours). This is what
//!    LD-ZNet's `CLIPTokenizer.from_pretrained` does (transformers 4.25.1 fills its
//!    `tokens_trie` in `sanitize_special_tokens`) and what the golden fixtures document. A
//!    piece that is exactly `<|startoftext|>` / `<|endoftext|>` *after* cleaning (e.g.
//!    `<|ENDOFTEXT|>`, lower-cased) also maps to 49406 / 49407 (the slow tokenizer's BPE
//!    cache holds these two strings). The `tokenizers` added-token matcher and normalizer
//!    are bypassed: only the pre-tokenizer and the BPE model of the file are used.
//! 4. **BPE** with the merges of `bpe_simple_vocab_16e6.txt.gz` and the `</w>` end-of-word
//!    suffix, lowest merge rank first.
//! 5. `ids = [BOS_ID] + content[..75] + [EOS_ID]`, right-padded with `PAD_ID` to 77.
//!
//! The tokenizer file (`assets/clip_tokenizer.json`, embedded by [`ClipTokenizer::bundled`])
//! is produced by [`build_from_bpe_vocab`] from the gzip'd vocabulary. Its normalizer
//! (`NFC → \s+ → " " → Lowercase`), post-processor, padding and truncation reproduce
//! transformers' *fast* CLIP tokenizer for other users of the file; [`ClipTokenizer`] does
//! not use them.
//!
//! The text normalisation of step 1 is the ftfy port in [`ftfy`]; the tokenizer file is built
//! in `build.rs`.

mod build;
pub mod ftfy;

use std::path::{Path, PathBuf};

use tokenizers::{
    Model, ModelWrapper, OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer, Tokenizer,
};

pub use build::build_from_bpe_vocab;

/// Id of `<|startoftext|>`, put before every prompt.
pub const BOS_ID: u32 = 49406;
/// Id of `<|endoftext|>`, put after the (truncated) prompt.
pub const EOS_ID: u32 = 49407;
/// Padding id: Stable Diffusion v1 / LD-ZNet pad with `<|endoftext|>` (not 0 as SD2 does).
pub const PAD_ID: u32 = 49407;
/// Number of ids per prompt (CLIP's context length, `model_max_length`).
pub const CONTEXT_LENGTH: usize = 77;
/// Number of entries in the CLIP vocabulary.
pub const VOCAB_SIZE: usize = 49408;

/// The ids of one prompt: `[BOS_ID, content…, EOS_ID, PAD_ID…]`, always [`CONTEXT_LENGTH`] long.
pub type TokenIds = [u32; CONTEXT_LENGTH];

const BOS_TOKEN: &str = "<|startoftext|>";
const EOS_TOKEN: &str = "<|endoftext|>";
/// Content tokens that fit between BOS and EOS.
const MAX_CONTENT_TOKENS: usize = CONTEXT_LENGTH - 2;
/// End-of-word suffix of CLIP's BPE.
const END_OF_WORD: &str = "</w>";
/// The tokenizer file shipped with the app (built by [`build_from_bpe_vocab`]).
const BUNDLED_JSON: &[u8] = include_bytes!("../../assets/clip_tokenizer.json");

/// Everything that can go wrong when loading, building or running the tokenizer.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The tokenizer file could not be read.
    #[error("cannot read the tokenizer file {path}: {source}")]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The tokenizer JSON could not be parsed by `tokenizers`.
    #[error("cannot parse the tokenizer JSON from {origin}: {message}")]
    Parse {
        /// Where the JSON came from (a path or "the bundled asset").
        origin: String,
        /// The parser's message.
        message: String,
    },
    /// The tokenizer file parsed but is not the CLIP BPE tokenizer this module expects.
    #[error("the tokenizer from {origin} is not the CLIP tokenizer: {reason}")]
    NotClip {
        /// Where the JSON came from.
        origin: String,
        /// What did not match.
        reason: String,
    },
    /// The gzip'd BPE vocabulary could not be decompressed as UTF-8 text.
    #[error("cannot decompress the BPE vocabulary (expected gzip'd UTF-8 text): {0}")]
    Decompress(#[source] std::io::Error),
    /// The BPE vocabulary has fewer merge lines than CLIP uses.
    #[error("the BPE vocabulary has {found} merge lines, CLIP needs {expected}")]
    TooFewMerges {
        /// Merge lines present after the header line.
        found: usize,
        /// Merge lines CLIP uses.
        expected: usize,
    },
    /// A merge line is not two space-separated symbols.
    #[error("line {line} of the BPE vocabulary is not a merge of two symbols: {text:?}")]
    BadMerge {
        /// 1-based line number in the decompressed file.
        line: usize,
        /// The line.
        text: String,
    },
    /// Two vocabulary entries derived from the BPE file are the same string.
    #[error(
        "the derived vocabulary has {found} distinct tokens, expected {expected} (duplicate merges?)"
    )]
    VocabSize {
        /// Distinct tokens found.
        found: usize,
        /// Tokens expected.
        expected: usize,
    },
    /// `tokenizers` refused to build a component.
    #[error("cannot build the tokenizer ({what}): {message}")]
    Build {
        /// Which component.
        what: &'static str,
        /// The library's message.
        message: String,
    },
    /// Pre-tokenization or BPE failed on a text.
    #[error("cannot tokenize {text:?}: {message}")]
    Encode {
        /// The chunk of cleaned text that failed.
        text: String,
        /// The library's message.
        message: String,
    },
}

/// The LD-ZNet / Stable Diffusion v1 CLIP tokenizer: text → 77 ids, exactly as the official
/// Python pipeline computes them (see the module docs).
#[derive(Clone)]
pub struct ClipTokenizer {
    inner: Tokenizer,
}

impl std::fmt::Debug for ClipTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipTokenizer")
            .field("vocab_size", &self.inner.get_vocab_size(true))
            .finish()
    }
}

impl ClipTokenizer {
    /// Loads a tokenizer file written by [`build_from_bpe_vocab`] (e.g. `assets/clip_tokenizer.json`).
    pub fn from_file(path: &Path) -> Result<Self, TokenizerError> {
        let bytes = std::fs::read(path).map_err(|source| TokenizerError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json_bytes(&bytes, &path.display().to_string())
    }

    /// Loads the tokenizer file compiled into the binary (`assets/clip_tokenizer.json`).
    pub fn bundled() -> Result<Self, TokenizerError> {
        Self::from_json_bytes(BUNDLED_JSON, "the bundled assets/clip_tokenizer.json")
    }

    /// Wraps a tokenizer built by [`build_from_bpe_vocab`] (or loaded elsewhere), after checking it.
    pub fn from_tokenizer(inner: Tokenizer) -> Result<Self, TokenizerError> {
        Self::checked(inner, "a tokenizers::Tokenizer")
    }

    fn from_json_bytes(bytes: &[u8], origin: &str) -> Result<Self, TokenizerError> {
        let inner = Tokenizer::from_bytes(bytes).map_err(|e| TokenizerError::Parse {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        Self::checked(inner, origin)
    }

    /// Refuses files that would silently give other ids: wrong model, vocabulary or specials.
    fn checked(inner: Tokenizer, origin: &str) -> Result<Self, TokenizerError> {
        let not_clip = |reason: String| TokenizerError::NotClip {
            origin: origin.to_owned(),
            reason,
        };
        match inner.get_model() {
            ModelWrapper::BPE(bpe) => {
                if bpe.end_of_word_suffix.as_deref() != Some(END_OF_WORD) {
                    return Err(not_clip(format!(
                        "BPE end-of-word suffix is {:?}, expected {END_OF_WORD:?}",
                        bpe.end_of_word_suffix
                    )));
                }
            }
            _ => return Err(not_clip("the model is not BPE".to_owned())),
        }
        let size = inner.get_vocab_size(true);
        if size != VOCAB_SIZE {
            return Err(not_clip(format!(
                "vocabulary has {size} tokens, expected {VOCAB_SIZE}"
            )));
        }
        for (token, id) in [(BOS_TOKEN, BOS_ID), (EOS_TOKEN, EOS_ID)] {
            if inner.token_to_id(token) != Some(id) {
                return Err(not_clip(format!(
                    "{token} has id {:?}, expected {id}",
                    inner.token_to_id(token)
                )));
            }
        }
        if inner.get_pre_tokenizer().is_none() {
            return Err(not_clip("it has no pre-tokenizer".to_owned()));
        }
        Ok(Self { inner })
    }

    /// The underlying `tokenizers` tokenizer (its pre-tokenizer and model are what
    /// [`Self::encode`] uses).
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    /// Encodes one prompt into [`CONTEXT_LENGTH`] ids: `BOS_ID`, at most 75 content ids
    /// (longer prompts are cut, as with `truncation=True`), `EOS_ID`, then `PAD_ID`s.
    pub fn encode(&self, text: &str) -> Result<TokenIds, TokenizerError> {
        let content = self.content_ids(text)?;
        if content.len() > MAX_CONTENT_TOKENS {
            log::debug!(
                "prompt has {} tokens, keeping the first {MAX_CONTENT_TOKENS}",
                content.len()
            );
        }
        let kept = content.len().min(MAX_CONTENT_TOKENS);
        let mut ids = [PAD_ID; CONTEXT_LENGTH];
        ids[0] = BOS_ID;
        ids[1..=kept].copy_from_slice(&content[..kept]);
        ids[kept + 1] = EOS_ID;
        Ok(ids)
    }

    /// Encodes several prompts; each result is as [`Self::encode`] gives it.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Vec<TokenIds>, TokenizerError> {
        texts.iter().map(|text| self.encode(text)).collect()
    }

    /// The content ids of a prompt (no BOS/EOS, not truncated): what the Python tokenizer's
    /// `tokenize` + `convert_tokens_to_ids` give. Its length tells whether [`Self::encode`]
    /// truncates (more than 75).
    pub fn content_ids(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let mut ids = Vec::new();
        let mut rest = text;
        loop {
            let next = [(BOS_TOKEN, BOS_ID), (EOS_TOKEN, EOS_ID)]
                .into_iter()
                .filter_map(|(token, id)| rest.find(token).map(|pos| (pos, token, id)))
                .min_by_key(|(pos, _, _)| *pos);
            match next {
                Some((pos, token, id)) => {
                    self.bpe_ids(&clean_text(&rest[..pos]), &mut ids)?;
                    ids.push(id);
                    rest = &rest[pos + token.len()..];
                }
                None => {
                    self.bpe_ids(&clean_text(rest), &mut ids)?;
                    return Ok(ids);
                }
            }
        }
    }

    /// Pre-tokenizes and BPE-encodes already cleaned text, appending to `ids`.
    fn bpe_ids(&self, cleaned: &str, ids: &mut Vec<u32>) -> Result<(), TokenizerError> {
        if cleaned.is_empty() {
            return Ok(());
        }
        let encode_error = |message: String| TokenizerError::Encode {
            text: cleaned.to_owned(),
            message,
        };
        let pre_tokenizer = self
            .inner
            .get_pre_tokenizer()
            .ok_or_else(|| encode_error("the tokenizer has no pre-tokenizer".to_owned()))?;
        let mut pretokenized = PreTokenizedString::from(cleaned);
        pre_tokenizer
            .pre_tokenize(&mut pretokenized)
            .map_err(|e| encode_error(e.to_string()))?;
        let model = self.inner.get_model();
        for (piece, _, _) in pretokenized.get_splits(OffsetReferential::Original, OffsetType::Byte)
        {
            // The slow tokenizer's BPE cache maps these two pieces straight to themselves.
            if piece == BOS_TOKEN {
                ids.push(BOS_ID);
            } else if piece == EOS_TOKEN {
                ids.push(EOS_ID);
            } else {
                let tokens = model
                    .tokenize(piece)
                    .map_err(|e| encode_error(e.to_string()))?;
                ids.extend(tokens.iter().map(|token| token.id));
            }
        }
        Ok(())
    }
}

/// The text cleaning of transformers' `CLIPTokenizer._tokenize`:
/// `whitespace_clean(ftfy.fix_text(text)).lower()`.
pub fn clean_text(text: &str) -> String {
    whitespace_clean(&ftfy::fix_text(text)).to_lowercase()
}

/// `re.sub(r"\s+", " ", text).strip()` (Python `regex`'s `\s` is Unicode `White_Space`, as
/// `char::is_whitespace`; `str.strip` also strips U+001C–U+001F).
fn whitespace_clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out.trim_matches(ftfy::is_python_space).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_whitespace_and_lowercases_like_python() {
        assert_eq!(clean_text("  A\u{a0}\tB \r\n C  "), "a b c");
        // Python's str.lower maps a final capital sigma to ς
        assert_eq!(clean_text("ΣΑΣ ΟΔΟΣ"), "σας οδος");
        assert_eq!(clean_text("İ"), "i\u{307}");
    }

    #[test]
    fn regex_quirks_of_python_ignorecase() {
        let tokenizer = ClipTokenizer::bundled().expect("bundled tokenizer loads");
        // `'ſ` is one piece, as `'s` is
        let apostrophe_long_s = tokenizer.content_ids("'ſ").expect("encodes");
        let apostrophe = tokenizer.content_ids("'").expect("encodes");
        assert_ne!(apostrophe_long_s[0], apostrophe[0]);
        // U+0345 matches no alternative and vanishes
        assert_eq!(
            tokenizer.content_ids("a\u{345}b").expect("encodes"),
            tokenizer.content_ids("a b").expect("encodes")
        );
    }

    #[test]
    fn bundled_tokenizer_encodes_and_pads() {
        let tokenizer = ClipTokenizer::bundled().expect("bundled tokenizer loads");
        let ids = tokenizer.encode("a photo of a cat.").expect("encodes");
        assert_eq!(ids[0], BOS_ID);
        assert_eq!(&ids[1..7], &[320, 1125, 539, 320, 2368, 269]);
        assert_eq!(ids[7], EOS_ID);
        assert!(ids[8..].iter().all(|&id| id == PAD_ID));
        let long = "dog ".repeat(100);
        let ids = tokenizer.encode(&long).expect("encodes");
        assert_eq!(ids[CONTEXT_LENGTH - 1], EOS_ID);
        assert_eq!(tokenizer.content_ids(&long).expect("encodes").len(), 100);
        let decoded = tokenizer
            .inner()
            .decode(&ids[1..CONTEXT_LENGTH - 1], true)
            .expect("decodes");
        assert!(decoded.starts_with("dog dog"), "{decoded}");
    }

    #[test]
    fn upper_case_special_token_text_maps_to_the_special_id() {
        let tokenizer = ClipTokenizer::bundled().expect("bundled tokenizer loads");
        assert_eq!(
            tokenizer.content_ids("<|ENDOFTEXT|>").expect("encodes"),
            vec![EOS_ID]
        );
        assert_eq!(
            tokenizer
                .content_ids("a <|startoftext|> b")
                .expect("encodes"),
            vec![320, BOS_ID, 321]
        );
        // The literal string is split off before cleaning, even next to punctuation…
        let ids = tokenizer.content_ids("(<|endoftext|>)").expect("encodes");
        assert_eq!(ids.len(), 3, "{ids:?}");
        assert_eq!(ids[1], EOS_ID, "{ids:?}");
        // …and its '<' does not switch off HTML unescaping of the text before it.
        let with_special = tokenizer
            .content_ids("tom &amp; jerry<|endoftext|>")
            .expect("encodes");
        let plain = tokenizer.content_ids("tom & jerry").expect("encodes");
        assert_eq!(with_special[..with_special.len() - 1], plain[..]);
    }

    #[test]
    fn tokenizer_can_move_to_a_worker_thread() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ClipTokenizer>();
    }

    #[test]
    fn rejects_a_tokenizer_that_is_not_clip() {
        let err = ClipTokenizer::from_json_bytes(b"{}", "test").expect_err("must fail");
        assert!(err.to_string().contains("test"), "{err}");
    }
}
