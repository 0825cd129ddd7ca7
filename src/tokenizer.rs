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
//! 1. **Cleaning**, of the whole text: `ftfy::fix_text` (below), then `whitespace_clean`
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
//! # Text normalisation: the ftfy 6.3.1 `fix_text` port
//!
//! [`ftfy::fix_text`] follows `ftfy.fix_text` with its default `TextFixerConfig`. The text is
//! fixed in segments that end after each `\n` (at most 1,000,000 characters), and each
//! segment is fixed repeatedly until a pass changes nothing. One pass applies, in ftfy's order:
//!
//! - **`unescape_html`** (ftfy `fixes.unescape_html`, mode `"auto"`): `&name;` for every HTML5
//!   entity name ending in `;` and at most 24 ASCII letters/digits (ftfy's regex
//!   `&#?[0-9A-Za-z]{1,24};`), plus ftfy's all-caps variants such as `&EACUTE;` → `É`
//!   (table `assets/ftfy_html_entities.tsv`); `&#NNN;` / `&#xHHH;` as Python's `html.unescape`
//!   decodes them (Windows-1252 for 128–159, U+FFFD for 0, surrogates and > U+10FFFF,
//!   nothing for non-characters and most controls), unless the result would contain `;`. Why:
//!   prompts copied from web pages carry `&amp;`, `&quot;`, `&#x2019;`. The pass loop decodes
//!   `&amp;amp;` fully. As in ftfy's "auto" mode, a segment containing `<` is taken to be
//!   real HTML and is not unescaped, *and neither is any later segment* (ftfy keeps the
//!   changed config for the rest of the text).
//! - **`fix_encoding`** (ftfy `fix_encoding_and_explain`): mojibake repair, only when the text
//!   is not ASCII and ftfy's `badness` heuristic (`BADNESS_RE`, ported alternative by
//!   alternative with ftfy's character classes) finds mojibake. Then, in ftfy's order: try to
//!   re-encode the text in latin-1, sloppy windows-1252/1251/1250/1253/1254/1257,
//!   iso-8859-2, macroman, cp437 and decode the bytes as UTF-8 (ftfy's `utf-8-variants`:
//!   CESU-8 surrogate pairs and `C0 80` accepted), with `restore_byte_a0` (a space that
//!   was a `0xA0` byte, incl. the `"Ã "` → `"à "` word rule; not for macroman) and, for the
//!   sloppy codecs, `replace_lossy_sequences` (`�`/`?`-damaged sequences → `�`); else fix
//!   embedded UTF-8 mojibake in place (`decode_inconsistent_utf8`, ftfy's
//!   `UTF8_DETECTOR_RE`); else treat latin-1 text with C1 controls as windows-1252; else
//!   `fix_c1_controls`. Repeated until stable. Why: `cafÃ©` → `café`, `â€œ` → `“`.
//! - **`fix_c1_controls`**: U+0080–U+009F → their windows-1252 characters (as browsers do).
//! - **`fix_latin_ligatures`**: `ﬁ ﬂ ﬀ ﬃ ﬄ ﬅ ﬆ Ĳ ĳ ŉ Ǳ ǲ ǳ Ǆ ǅ ǆ Ǉ ǈ ǉ Ǌ ǋ ǌ` → letters
//!   (copy-paste from typeset PDFs).
//! - **`fix_character_width`**: U+3000 → space; U+FF01–U+FFEF → their NFKC form (fullwidth
//!   ASCII, halfwidth katakana/hangul) (CJK input methods).
//! - **`uncurl_quotes`**: `ʼ ‘ ’ ‚ ‛` → `'` and `“ ” „ ‟` → `"` (word processors; also makes
//!   `don’t` hit the `'t` rule).
//! - **`fix_line_breaks`**: `\r\n`, `\r`, U+2028, U+2029, U+0085 → `\n`.
//! - **`remove_terminal_escapes`**: ANSI `ESC [ (digits|;)* letter` sequences are deleted
//!   (`\d` is any Unicode decimal digit, as in Python's `re`).
//! - **`remove_control_chars`**: U+0000–0008, 000B, 000E–001F, 007F, 206A–206F, FEFF, FFF9–FFFC
//!   are deleted (invisible, never meant).
//! - **NFC** (`unicodedata.normalize("NFC")`): `e` + combining acute → `é`, as in the vocabulary.
//!
//! Deliberately not ported / known differences:
//! - `fix_surrogates`: a Rust `&str` cannot hold lone UTF-16 surrogates, so there is nothing
//!   to fix (surrogates written as `&#xD83D;` still become U+FFFD, as in `html.unescape`).
//! - ftfy's `explain`/`apply_plan` machinery, `fix_file`, `guess_bytes`, `decode_escapes`:
//!   not part of `fix_text`.
//! - Unicode data: NFC/NFKC, `\p{L}`/`\p{N}`, case mapping and white space come from the
//!   Rust crates' tables (newer than Python 3.11's Unicode 14). Python's `\w` (one badness
//!   rule) is computed as "alphanumeric, not a combining mark, not a circled letter, or `_`".
//!   Per code point, lower case, NFC, NFKC, white space and `\w` equal Python 3.11's on
//!   every code point assigned in Unicode 14 (checked exhaustively); code points assigned
//!   later may be classified differently, as they are between Python versions.
//!
//! Verification beyond the golden fixture: about 85,000 generated strings (UTF-8 mojibake
//! through all ten code pages, doubled, with lost bytes and spaces for `A0`; HTML named,
//! upper-case and numeric references; controls, escapes, line breaks, widths, ligatures;
//! random Unicode) gave the same `fix_text` and `is_bad` as ftfy 6.3.1, and the same ids as
//! the reference tokenizer except for code points unassigned in Unicode 14.
//!
//! The tables at the end of [`ftfy`] (code pages, ftfy's character classes) and
//! `assets/ftfy_html_entities.tsv` (ftfy's `chardata.HTML_ENTITIES`) were generated from
//! ftfy 6.3.1 itself: each class enumerated with `re.compile("[" + cls + "]")` over all
//! code points, each code page as `bytes(range(0x80, 0x100)).decode(codec)`.

use std::io::Read;
use std::path::{Path, PathBuf};

use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::normalizers::{Lowercase, NFC, Replace, Sequence as NormalizerSequence};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizerSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::roberta::RobertaProcessing;
use tokenizers::{
    AddedToken, Model, ModelWrapper, NormalizerWrapper, OffsetReferential, OffsetType,
    PaddingParams, PaddingStrategy, PreTokenizedString, PreTokenizer, PreTokenizerWrapper,
    SplitDelimiterBehavior, Tokenizer, TruncationParams,
};

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
/// Merges used by CLIP: `49152 - 256 - 2` lines after the header line of the BPE file.
const NUM_MERGES: usize = 49152 - 256 - 2;
/// End-of-word suffix of CLIP's BPE.
const END_OF_WORD: &str = "</w>";
/// The split regex of CLIP's `simple_tokenizer.py` / transformers' `CLIPTokenizer.pat`.
/// Python compiles it with `IGNORECASE`; see the module docs for `(?i:…)` and `\x{345}`.
const CLIP_SPLIT_PATTERN: &str = r"(?i:<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d)|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}\x{345}]+";
/// The tokenizer file shipped with the app (built by [`build_from_bpe_vocab`]).
const BUNDLED_JSON: &[u8] = include_bytes!("../assets/clip_tokenizer.json");

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

/// GPT-2's `bytes_to_unicode`: printable Latin-1 bytes map to themselves, the other 68 bytes
/// to U+0100.. in byte order. Returned in the Python dict's order (the vocabulary order).
fn bytes_to_unicode() -> Vec<(u8, char)> {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut table: Vec<(u8, char)> = (0..=255u8)
        .filter(|&b| printable(b))
        .map(|b| (b, char::from(b)))
        .collect();
    // the other bytes get U+0100.., all valid scalar values
    let others = (0..=255u8).filter(|&b| !printable(b));
    for (code, b) in (256u32..).zip(others) {
        table.push((
            b,
            char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER),
        ));
    }
    table
}

/// Builds the CLIP tokenizer from OpenAI's `bpe_simple_vocab_16e6.txt.gz`.
///
/// As CLIP's `simple_tokenizer.py` and transformers do: merges are lines `1..=48894` of
/// the decompressed file; the vocabulary is the 256 byte symbols (GPT-2 `bytes_to_unicode`
/// order), the same with `</w>`, the concatenation of each merge, then `<|startoftext|>`
/// (49406) and `<|endoftext|>` (49407); ids are positions. The model is BPE with the `</w>`
/// end-of-word suffix (unk `<|endoftext|>`, never hit since every byte is in the
/// vocabulary); the pre-tokenizer is the CLIP split regex (matches kept) + `ByteLevel`
/// without prefix space or regex. Normalizer (`NFC`, `\s+` → space, `Lowercase`),
/// `RobertaProcessing` (BOS/EOS), decoder, 77-token padding/truncation and the two special
/// added tokens make the file usable on its own like transformers' fast CLIP tokenizer;
/// [`ClipTokenizer`] replaces the normalizer and specials handling by the exact Python
/// behaviour (module docs).
pub fn build_from_bpe_vocab(gz_bytes: &[u8]) -> Result<Tokenizer, TokenizerError> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(gz_bytes)
        .read_to_string(&mut text)
        .map_err(TokenizerError::Decompress)?;
    let lines: Vec<&str> = text.split('\n').collect();
    let found = lines.len().saturating_sub(1);
    if found < NUM_MERGES {
        return Err(TokenizerError::TooFewMerges {
            found,
            expected: NUM_MERGES,
        });
    }
    let mut merges = Vec::with_capacity(NUM_MERGES);
    for (index, line) in lines.iter().enumerate().skip(1).take(NUM_MERGES) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            [left, right] => merges.push(((*left).to_owned(), (*right).to_owned())),
            _ => {
                return Err(TokenizerError::BadMerge {
                    line: index + 1,
                    text: (*line).to_owned(),
                });
            }
        }
    }

    let byte_symbols: Vec<String> = bytes_to_unicode()
        .into_iter()
        .map(|(_, c)| c.to_string())
        .collect();
    let tokens = byte_symbols
        .iter()
        .cloned()
        .chain(byte_symbols.iter().map(|s| format!("{s}{END_OF_WORD}")))
        .chain(merges.iter().map(|(left, right)| format!("{left}{right}")))
        .chain([BOS_TOKEN.to_owned(), EOS_TOKEN.to_owned()]);
    let vocab: Vocab = tokens.zip(0u32..).collect();
    if vocab.len() != VOCAB_SIZE {
        return Err(TokenizerError::VocabSize {
            found: vocab.len(),
            expected: VOCAB_SIZE,
        });
    }

    let build = |what: &'static str| {
        move |e: tokenizers::Error| TokenizerError::Build {
            what,
            message: e.to_string(),
        }
    };
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .end_of_word_suffix(END_OF_WORD.to_owned())
        .unk_token(EOS_TOKEN.to_owned())
        .build()
        .map_err(build("BPE model"))?;
    let mut tokenizer = Tokenizer::new(bpe);

    let normalizer = NormalizerSequence::new(vec![
        NFC.into(),
        Replace::new(
            tokenizers::normalizers::replace::ReplacePattern::Regex(r"\s+".to_owned()),
            " ",
        )
        .map_err(build("whitespace normalizer"))?
        .into(),
        Lowercase.into(),
    ]);
    tokenizer
        .with_normalizer(Some(NormalizerWrapper::Sequence(normalizer)))
        .map_err(build("normalizer"))?;

    let split = Split::new(
        SplitPattern::Regex(CLIP_SPLIT_PATTERN.to_owned()),
        SplitDelimiterBehavior::Removed,
        true,
    )
    .map_err(build("split pre-tokenizer"))?;
    let pre_tokenizer = PreTokenizerSequence::new(vec![
        split.into(),
        ByteLevel::new(false, true, false).into(),
    ]);
    tokenizer.with_pre_tokenizer(Some(PreTokenizerWrapper::Sequence(pre_tokenizer)));

    tokenizer.with_post_processor(Some(
        RobertaProcessing::new(
            (EOS_TOKEN.to_owned(), EOS_ID),
            (BOS_TOKEN.to_owned(), BOS_ID),
        )
        .trim_offsets(false)
        .add_prefix_space(false),
    ));
    tokenizer.with_decoder(Some(DecoderWrapper::Sequence(
        tokenizers::decoders::sequence::Sequence::new(vec![
            ByteLevel::new(false, true, false).into(),
            DecoderWrapper::Replace(
                Replace::new(END_OF_WORD, " ").map_err(build("end-of-word decoder"))?,
            ),
            DecoderWrapper::Strip(tokenizers::decoders::strip::Strip::new(' ', 0, 1)),
        ]),
    )));
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: CONTEXT_LENGTH,
            ..TruncationParams::default()
        }))
        .map_err(build("truncation"))?;
    tokenizer.with_padding(Some(PaddingParams {
        strategy: PaddingStrategy::Fixed(CONTEXT_LENGTH),
        pad_id: PAD_ID,
        pad_token: EOS_TOKEN.to_owned(),
        ..PaddingParams::default()
    }));
    tokenizer
        .add_special_tokens([
            AddedToken::from(BOS_TOKEN, true),
            AddedToken::from(EOS_TOKEN, true),
        ])
        .map_err(build("special tokens"))?;
    Ok(tokenizer)
}

/// A port of the `fix_text` of ftfy 6.3.1 (default configuration), the text fixer that
/// transformers' `CLIPTokenizer` runs on every prompt. See the module docs for the list of
/// rules; function names are ftfy's.
pub mod ftfy {
    use std::collections::HashMap;
    use std::sync::OnceLock;

    use unicode_normalization::UnicodeNormalization;
    use unicode_normalization::char::is_combining_mark;

    /// ftfy's `max_decode_length`: longest segment fixed in one go.
    const MAX_DECODE_LENGTH: usize = 1_000_000;

    /// `ftfy.fix_text(text)` with the default `TextFixerConfig`.
    pub fn fix_text(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        // unescape_html="auto": switched off for good by the first segment containing '<'.
        let mut unescape = true;
        let mut rest = text;
        while !rest.is_empty() {
            let mut end = rest.find('\n').map_or(rest.len(), |at| at + 1);
            if let Some((limit, _)) = rest[..end].char_indices().nth(MAX_DECODE_LENGTH) {
                end = limit;
            }
            let (segment, tail) = rest.split_at(end);
            if unescape && segment.contains('<') {
                unescape = false;
            }
            out.push_str(&fix_segment(segment, unescape));
            rest = tail;
        }
        out
    }

    /// `ftfy.fix_and_explain` without the explanation: all fixers in order, until stable.
    fn fix_segment(segment: &str, unescape: bool) -> String {
        let mut text = segment.to_owned();
        loop {
            let original = text.clone();
            if unescape {
                text = unescape_html(&text);
            }
            text = fix_encoding(&text);
            text = fix_c1_controls(&text);
            text = fix_latin_ligatures(&text);
            text = fix_character_width(&text);
            text = uncurl_quotes(&text);
            text = fix_line_breaks(&text);
            // fix_surrogates: a Rust string cannot contain surrogates.
            text = remove_terminal_escapes(&text);
            text = remove_control_chars(&text);
            text = text.nfc().collect();
            if text == original {
                return text;
            }
        }
    }

    // ---------------------------------------------------------------- simple fixers

    /// `fixes.uncurl_quotes`: `[\u02bc\u2018-\u201b]` → `'`, `[\u201c-\u201f]` → `"`.
    pub fn uncurl_quotes(text: &str) -> String {
        text.chars()
            .map(|c| match c {
                '\u{2bc}' | '\u{2018}'..='\u{201b}' => '\'',
                '\u{201c}'..='\u{201f}' => '"',
                c => c,
            })
            .collect()
    }

    /// `fixes.fix_latin_ligatures`: ftfy's `LIGATURES` table.
    pub fn fix_latin_ligatures(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                'Ĳ' => out.push_str("IJ"),
                'ĳ' => out.push_str("ij"),
                'ŉ' => out.push_str("ʼn"),
                'Ǳ' => out.push_str("DZ"),
                'ǲ' => out.push_str("Dz"),
                'ǳ' => out.push_str("dz"),
                'Ǆ' => out.push_str("DŽ"),
                'ǅ' => out.push_str("Dž"),
                'ǆ' => out.push_str("dž"),
                'Ǉ' => out.push_str("LJ"),
                'ǈ' => out.push_str("Lj"),
                'ǉ' => out.push_str("lj"),
                'Ǌ' => out.push_str("NJ"),
                'ǋ' => out.push_str("Nj"),
                'ǌ' => out.push_str("nj"),
                'ﬀ' => out.push_str("ff"),
                'ﬁ' => out.push_str("fi"),
                'ﬂ' => out.push_str("fl"),
                'ﬃ' => out.push_str("ffi"),
                'ﬄ' => out.push_str("ffl"),
                'ﬅ' => out.push_str("ſt"),
                'ﬆ' => out.push_str("st"),
                c => out.push(c),
            }
        }
        out
    }

    /// `fixes.fix_character_width`: U+3000 → space, U+FF01–U+FFEF → NFKC (ftfy's `WIDTH_MAP`).
    pub fn fix_character_width(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                '\u{3000}' => out.push(' '),
                '\u{ff01}'..='\u{ffef}' => out.extend(std::iter::once(c).nfkc()),
                c => out.push(c),
            }
        }
        out
    }

    /// `fixes.fix_line_breaks`: CRLF, CR, U+2028, U+2029 and NEL become `\n`.
    pub fn fix_line_breaks(text: &str) -> String {
        text.replace("\r\n", "\n")
            .replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n")
    }

    /// `fixes.remove_terminal_escapes`: deletes `\x1b\[((?:\d|;)*)([a-zA-Z])`.
    pub fn remove_terminal_escapes(text: &str) -> String {
        if !text.contains('\u{1b}') {
            return text.to_owned();
        }
        let chars: Vec<char> = text.chars().collect();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == '\u{1b}' && chars.get(i + 1) == Some(&'[') {
                let mut j = i + 2;
                while j < chars.len() && (chars[j] == ';' || is_decimal_digit(chars[j])) {
                    j += 1;
                }
                if chars.get(j).is_some_and(char::is_ascii_alphabetic) {
                    i = j + 1;
                    continue;
                }
            }
            out.push(chars[i]);
            i += 1;
        }
        out
    }

    /// `fixes.remove_control_chars`: ftfy's `CONTROL_CHARS` are deleted.
    pub fn remove_control_chars(text: &str) -> String {
        text.chars()
            .filter(|&c| {
                !matches!(c,
                    '\u{0}'..='\u{8}' | '\u{b}' | '\u{e}'..='\u{1f}' | '\u{7f}'
                    | '\u{206a}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffc}')
            })
            .collect()
    }

    /// `fixes.fix_c1_controls`: U+0080–U+009F → sloppy windows-1252.
    pub fn fix_c1_controls(text: &str) -> String {
        let cp1252 = windows_1252();
        text.chars()
            .map(|c| match c {
                '\u{80}'..='\u{9f}' => cp1252.decode(c as u8),
                c => c,
            })
            .collect()
    }

    /// Python `str.isspace` (= `\s` of Python's `re` on text): Unicode white space plus
    /// U+001C–U+001F.
    pub fn is_python_space(c: char) -> bool {
        c.is_whitespace() || matches!(c, '\u{1c}'..='\u{1f}')
    }

    /// Python `re`'s `\w` on text, approximated with Rust's Unicode tables: `str.isalnum()`
    /// (letters Lu/Ll/Lt/Lm/Lo and numerics) or `_`. Rust's `Alphabetic` also has combining
    /// marks and circled letters, which Python's `isalpha` does not, so they are excluded.
    fn is_python_word(c: char) -> bool {
        c == '_'
            || (c.is_alphanumeric()
                && !is_combining_mark(c)
                && !matches!(c, '\u{24b6}'..='\u{24e9}' | '\u{1f130}'..='\u{1f189}'))
    }

    /// Python `re`'s `\d` on text: Unicode general category Nd.
    fn is_decimal_digit(c: char) -> bool {
        let c = c as u32;
        DECIMAL_DIGIT_ZEROS
            .iter()
            .any(|&zero| (zero..zero + 10).contains(&c))
    }

    // ---------------------------------------------------------------- unescape_html

    /// `fixes.unescape_html`: decodes `&#?[0-9A-Za-z]{1,24};` matches that are ftfy
    /// `HTML_ENTITIES` names or numeric character references.
    pub fn unescape_html(text: &str) -> String {
        if !text.contains('&') {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find('&') {
            out.push_str(&rest[..at]);
            let candidate = &rest[at..];
            match entity_match_len(candidate) {
                Some(len) => {
                    let entity = &candidate[..len];
                    match decode_entity(entity) {
                        Some(decoded) => out.push_str(&decoded),
                        None => out.push_str(entity),
                    }
                    rest = &candidate[len..];
                }
                None => {
                    out.push('&');
                    rest = &candidate[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// Length in bytes of a match of `&#?[0-9A-Za-z]{1,24};` at the start of `s`.
    fn entity_match_len(s: &str) -> Option<usize> {
        let bytes = s.as_bytes();
        let start = if bytes.get(1) == Some(&b'#') { 2 } else { 1 };
        let run = bytes[start..]
            .iter()
            .take(25)
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        ((1..=24).contains(&run) && bytes.get(start + run) == Some(&b';'))
            .then_some(start + run + 1)
    }

    /// `fixes._unescape_fixup` for one matched `&...;`.
    fn decode_entity(entity: &str) -> Option<String> {
        let body = &entity[1..entity.len() - 1];
        match body.strip_prefix('#') {
            None => html_entities().get(body).cloned(),
            Some(reference) => {
                let decoded = decode_char_reference(reference)?;
                // ftfy keeps the text if html.unescape left a ';' behind
                (!decoded.contains(';')).then_some(decoded)
            }
        }
    }

    /// Python `html.unescape` of `&#<reference>;` when the whole reference is numeric.
    fn decode_char_reference(reference: &str) -> Option<String> {
        let (digits, radix) = match reference.strip_prefix(['x', 'X']) {
            Some(hex) => (hex, 16),
            None => (reference, 10),
        };
        if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return None;
        }
        // at most 24 digits: fits in u128; saturate anyway
        let num = digits.chars().fold(0u128, |acc, c| {
            acc.saturating_mul(u128::from(radix))
                .saturating_add(u128::from(c.to_digit(radix).unwrap_or(0)))
        });
        let decoded = match num {
            0 => "\u{fffd}".to_owned(),
            0x0d => "\r".to_owned(),
            0x80..=0x9f => windows_1252().decode(num as u8).to_string(),
            0xd800..=0xdfff => "\u{fffd}".to_owned(),
            n if n > 0x10ffff => "\u{fffd}".to_owned(),
            n if is_html_invalid_codepoint(n as u32) => String::new(),
            n => char::from_u32(n as u32).map_or_else(String::new, String::from),
        };
        Some(decoded)
    }

    /// Python `html._invalid_codepoints` (C0/C1 controls but whitespace, non-characters).
    fn is_html_invalid_codepoint(n: u32) -> bool {
        matches!(n, 0x1..=0x8 | 0xb | 0xe..=0x1f | 0x7f..=0x9f | 0xfdd0..=0xfdef)
            || (n & 0xfffe) == 0xfffe
    }

    /// ftfy's `HTML_ENTITIES`, from `assets/ftfy_html_entities.tsv`: name (without `&`, `;`)
    /// → text.
    fn html_entities() -> &'static HashMap<&'static str, String> {
        static TABLE: OnceLock<HashMap<&'static str, String>> = OnceLock::new();
        TABLE.get_or_init(|| parse_entity_table(HTML_ENTITIES_TSV))
    }

    const HTML_ENTITIES_TSV: &str = include_str!("../assets/ftfy_html_entities.tsv");

    fn parse_entity_table(tsv: &'static str) -> HashMap<&'static str, String> {
        let mut table = HashMap::new();
        for line in tsv.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            let Some((name, hex)) = line.split_once('\t') else {
                log::warn!("malformed HTML entity line {line:?}");
                continue;
            };
            let text: Option<String> = hex
                .split(' ')
                .map(|h| u32::from_str_radix(h, 16).ok().and_then(char::from_u32))
                .collect();
            match text {
                Some(text) => {
                    table.insert(name, text);
                }
                None => log::warn!("malformed HTML entity line {line:?}"),
            }
        }
        table
    }

    // ---------------------------------------------------------------- fix_encoding

    /// `ftfy.fix_encoding`: repeats one step of mojibake repair until nothing changes.
    pub fn fix_encoding(text: &str) -> String {
        let mut text = text.to_owned();
        loop {
            let fixed = fix_encoding_one_step(&text);
            if fixed == text {
                return text;
            }
            text = fixed;
        }
    }

    /// `ftfy._fix_encoding_one_step_and_explain`.
    fn fix_encoding_one_step(text: &str) -> String {
        if text.is_ascii() || !is_bad(text) {
            return text.to_owned();
        }
        let mut latin1_possible = false;
        for charmap in charmaps() {
            let Some(mut bytes) = charmap.encode(text) else {
                continue;
            };
            if charmap.name == "latin-1" {
                latin1_possible = true;
            }
            if charmap.name != "macroman" && matches_any_at_some_position(&bytes, ALTERED_UTF8) {
                bytes = restore_byte_a0(&bytes);
            }
            if charmap.sloppy {
                bytes = replace_lossy_sequences(&bytes);
            }
            if let Some(fixed) = decode_utf8_variants(&bytes) {
                return fixed;
            }
        }
        let chars: Vec<char> = text.chars().collect();
        if utf8_detector_find(&chars, 0).is_some() {
            let fixed = decode_inconsistent_utf8(&chars);
            if fixed != text {
                return fixed;
            }
        }
        // "windows-1252" is never in ftfy's list of possible encodings (only the sloppy
        // one is), so latin-1 text is always tried as strict windows-1252 here.
        if latin1_possible
            && let Some(fixed) = latin1_as_windows1252(text)
            && fixed != text
        {
            return fixed;
        }
        if text.chars().any(|c| matches!(c, '\u{80}'..='\u{9f}')) {
            return fix_c1_controls(text);
        }
        text.to_owned()
    }

    /// `text.encode("latin-1").decode("windows-1252")`; `None` where Python raises (bytes
    /// 81, 8D, 8F, 90, 9D are undefined in strict windows-1252).
    fn latin1_as_windows1252(text: &str) -> Option<String> {
        let cp1252 = windows_1252();
        text.chars()
            .map(|c| match c as u32 {
                0x81 | 0x8d | 0x8f | 0x90 | 0x9d => None,
                0x80..=0x9f => Some(cp1252.decode(c as u8)),
                _ => Some(c),
            })
            .collect()
    }

    /// `fixes.decode_inconsistent_utf8`: fixes each `UTF8_DETECTOR_RE` match that is shorter
    /// than the text and looks bad, with a full `fix_encoding`.
    fn decode_inconsistent_utf8(chars: &[char]) -> String {
        let mut out = String::new();
        let mut pos = 0;
        while let Some((start, end)) = utf8_detector_find(chars, pos) {
            out.extend(&chars[pos..start]);
            let substr: String = chars[start..end].iter().collect();
            if end - start < chars.len() && is_bad(&substr) {
                out.push_str(&fix_encoding(&substr));
            } else {
                out.push_str(&substr);
            }
            pos = end;
        }
        out.extend(&chars[pos..]);
        out
    }

    /// Next match of ftfy's `UTF8_DETECTOR_RE` at or after `from`:
    /// `(?<![cont_strict])([first_of_2][cont] | [first_of_3][cont]{2} | [first_of_4][cont]{3})+`.
    fn utf8_detector_find(chars: &[char], from: usize) -> Option<(usize, usize)> {
        (from..chars.len()).find_map(|start| {
            if start > 0 && has(chars[start - 1], K_CONT_STRICT) {
                return None;
            }
            let mut end = start;
            while let Some(next) = utf8_sequence_at(chars, end) {
                end = next;
            }
            (end > start).then_some((start, end))
        })
    }

    /// One repetition of the detector's group at `at` (alternatives tried in order).
    fn utf8_sequence_at(chars: &[char], at: usize) -> Option<usize> {
        let first = *chars.get(at)?;
        let continued = |n: usize| {
            chars.len() >= at + 1 + n && chars[at + 1..at + 1 + n].iter().all(|&c| has(c, K_CONT))
        };
        [(K_FIRST2, 1), (K_FIRST3, 2), (K_FIRST4, 3)]
            .into_iter()
            .find(|&(class, n)| has(first, class) && continued(n))
            .map(|(_, n)| at + 1 + n)
    }

    // ---------------------------------------------------------------- byte-level fixes

    /// A byte class of a bytes regex: inclusive ranges.
    type ByteClass = &'static [(u8, u8)];
    /// One alternative of a bytes regex: a fixed sequence of byte classes.
    type BytePattern = &'static [ByteClass];

    const SPACE: ByteClass = &[(b' ', b' ')];
    const CONT: ByteClass = &[(0x80, 0xbf)];
    const CONT_NOT_85_A0: ByteClass = &[(0x80, 0x84), (0x86, 0x9f), (0xa1, 0xbf)];
    const SUB: ByteClass = &[(0x1a, 0x1a)];
    const SUB_OR_QM: ByteClass = &[(0x1a, 0x1a), (b'?', b'?')];
    const SUB_OR_CONT: ByteClass = &[(0x1a, 0x1a), (0x80, 0xbf)];
    const SUB_QM_OR_CONT: ByteClass = &[(0x1a, 0x1a), (b'?', b'?'), (0x80, 0xbf)];
    const ED: ByteClass = &[(0xed, 0xed)];

    /// `chardata.ALTERED_UTF8_RE`: UTF-8 sequences whose `A0` byte became a space.
    const ALTERED_UTF8: &[BytePattern] = &[
        &[
            &[
                (0xc2, 0xc3),
                (0xc5, 0xc5),
                (0xce, 0xce),
                (0xd0, 0xd0),
                (0xd9, 0xd9),
            ],
            SPACE,
        ],
        &[&[(0xe2, 0xe3)], SPACE, CONT_NOT_85_A0],
        &[&[(0xe0, 0xe3)], CONT_NOT_85_A0, SPACE],
        &[&[(0xf0, 0xf0)], SPACE, CONT, CONT],
        &[&[(0xf0, 0xf0)], CONT, SPACE, CONT],
        &[&[(0xf0, 0xf0)], CONT, CONT, SPACE],
    ];

    /// `chardata.LOSSY_UTF8_RE`: UTF-8 sequences with bytes lost to `�` (byte 1A) or `?`.
    const LOSSY_UTF8: &[BytePattern] = &[
        &[&[(0xc2, 0xdf)], SUB],
        &[&[(0xc2, 0xc3)], &[(b'?', b'?')]],
        &[
            ED,
            &[(0xa0, 0xaf)],
            SUB_OR_QM,
            ED,
            &[(0xb0, 0xbf)],
            SUB_QM_OR_CONT,
        ],
        &[
            ED,
            &[(0xa0, 0xaf)],
            SUB_QM_OR_CONT,
            ED,
            &[(0xb0, 0xbf)],
            SUB_OR_QM,
        ],
        &[&[(0xe0, 0xef)], SUB_OR_QM, SUB_OR_CONT],
        &[&[(0xe0, 0xef)], SUB_OR_CONT, SUB_OR_QM],
        &[&[(0xf0, 0xf4)], SUB_OR_QM, SUB_OR_CONT, SUB_OR_CONT],
        &[&[(0xf0, 0xf4)], SUB_OR_CONT, SUB_OR_QM, SUB_OR_CONT],
        &[&[(0xf0, 0xf4)], SUB_OR_CONT, SUB_OR_CONT, SUB_OR_QM],
        &[SUB],
    ];

    /// Length of the first alternative of `patterns` matching at `at` (Python's
    /// alternation order), if any.
    fn byte_match_at(bytes: &[u8], at: usize, patterns: &[BytePattern]) -> Option<usize> {
        patterns.iter().find_map(|pattern| {
            let matches = bytes.len() >= at + pattern.len()
                && pattern
                    .iter()
                    .zip(&bytes[at..])
                    .all(|(class, &b)| class.iter().any(|&(lo, hi)| (lo..=hi).contains(&b)));
            matches.then_some(pattern.len())
        })
    }

    fn matches_any_at_some_position(bytes: &[u8], patterns: &[BytePattern]) -> bool {
        (0..bytes.len()).any(|at| byte_match_at(bytes, at, patterns).is_some())
    }

    /// `re.sub(patterns, replace, bytes)`: non-overlapping, leftmost matches.
    fn byte_sub(
        bytes: &[u8],
        patterns: &[BytePattern],
        replace: impl Fn(&[u8]) -> Vec<u8>,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len() + 8);
        let mut at = 0;
        while at < bytes.len() {
            match byte_match_at(bytes, at, patterns) {
                Some(len) => {
                    out.extend(replace(&bytes[at..at + len]));
                    at += len;
                }
                None => {
                    out.push(bytes[at]);
                    at += 1;
                }
            }
        }
        out
    }

    /// `fixes.restore_byte_a0`: puts back `A0` bytes that became spaces inside UTF-8
    /// sequences, after `A_GRAVE_WORD_RE` (`\xc3 (?! |quele|quela|quilo|s )` → `\xc3\xa0 `:
    /// a lone `"Ã "` is the word `à`, except before the Portuguese `às`, `àquele`, ...).
    fn restore_byte_a0(bytes: &[u8]) -> Vec<u8> {
        let mut a_grave = Vec::with_capacity(bytes.len() + 4);
        let mut at = 0;
        while at < bytes.len() {
            if bytes[at] == 0xc3 && bytes.get(at + 1) == Some(&b' ') {
                let after = &bytes[at + 2..];
                let excluded = [&b" "[..], b"quele", b"quela", b"quilo", b"s "]
                    .iter()
                    .any(|word| after.starts_with(word));
                if !excluded {
                    a_grave.extend_from_slice(b"\xc3\xa0 ");
                    at += 2;
                    continue;
                }
            }
            a_grave.push(bytes[at]);
            at += 1;
        }
        byte_sub(&a_grave, ALTERED_UTF8, |m| {
            m.iter()
                .map(|&b| if b == b' ' { 0xa0 } else { b })
                .collect()
        })
    }

    /// `fixes.replace_lossy_sequences`: damaged UTF-8 sequences → the UTF-8 of `�`.
    fn replace_lossy_sequences(bytes: &[u8]) -> Vec<u8> {
        byte_sub(bytes, LOSSY_UTF8, |_| "\u{fffd}".as_bytes().to_vec())
    }

    /// ftfy's `utf-8-variants` codec: UTF-8 that also accepts CESU-8 surrogate pairs and
    /// Java's `C0 80` for U+0000. `None` where Python raises `UnicodeDecodeError`.
    fn decode_utf8_variants(bytes: &[u8]) -> Option<String> {
        let mut out = String::with_capacity(bytes.len());
        let mut segment_start = 0;
        let mut at = 0;
        while at < bytes.len() {
            let special = match bytes[at] {
                0xc0 => bytes.get(at + 1).is_none_or(|&b| b == 0x80),
                0xed => bytes
                    .get(at + 1)
                    .is_none_or(|&b| (0xa0..=0xbf).contains(&b)),
                _ => false,
            };
            if !special {
                at += 1;
                continue;
            }
            out.push_str(std::str::from_utf8(&bytes[segment_start..at]).ok()?);
            if bytes[at] == 0xc0 {
                // a lone C0 at the very end is an error
                bytes.get(at + 1)?;
                out.push('\0');
                at += 2;
            } else {
                let s = bytes.get(at..at + 6)?;
                let is_pair = (0xa0..=0xaf).contains(&s[1])
                    && (0x80..=0xbf).contains(&s[2])
                    && s[3] == 0xed
                    && (0xb0..=0xbf).contains(&s[4])
                    && (0x80..=0xbf).contains(&s[5]);
                if !is_pair {
                    return None;
                }
                let code = ((u32::from(s[1]) & 0x0f) << 16)
                    + ((u32::from(s[2]) & 0x3f) << 10)
                    + ((u32::from(s[4]) & 0x0f) << 6)
                    + (u32::from(s[5]) & 0x3f)
                    + 0x10000;
                out.push(char::from_u32(code)?);
                at += 6;
            }
            segment_start = at;
        }
        out.push_str(std::str::from_utf8(&bytes[segment_start..]).ok()?);
        Some(out)
    }

    // ---------------------------------------------------------------- code pages

    /// A single-byte code page as ftfy uses it (its `sloppy-*` codecs decode undefined
    /// bytes as Latin-1 and byte 1A as `�`).
    struct Charmap {
        name: &'static str,
        sloppy: bool,
        high: [char; 128],
        encode_high: HashMap<char, u8>,
    }

    impl Charmap {
        /// Decodes one byte.
        fn decode(&self, byte: u8) -> char {
            match byte {
                0x1a if self.sloppy => '\u{fffd}',
                0x00..=0x7f => char::from(byte),
                _ => self.high[usize::from(byte - 0x80)],
            }
        }

        /// `text.encode(codec)` if `possible_encoding(text, codec)`, else `None`.
        fn encode(&self, text: &str) -> Option<Vec<u8>> {
            text.chars()
                .map(|c| match c {
                    '\u{1a}' if self.sloppy => None,
                    '\u{fffd}' if self.sloppy => Some(0x1a),
                    '\u{0}'..='\u{7f}' => Some(c as u8),
                    _ => self.encode_high.get(&c).copied(),
                })
                .collect()
        }
    }

    /// ftfy's sloppy windows-1252 (what browsers do with C1 bytes).
    fn windows_1252() -> &'static Charmap {
        &charmaps()[1]
    }

    /// ftfy's `CHARMAP_ENCODINGS`, decoded from [`CHARMAPS`] once.
    fn charmaps() -> &'static [Charmap] {
        static TABLES: OnceLock<Vec<Charmap>> = OnceLock::new();
        TABLES.get_or_init(|| {
            CHARMAPS
                .iter()
                .map(|&(name, sloppy, chars)| {
                    let mut high = ['\u{fffd}'; 128];
                    for (slot, c) in high.iter_mut().zip(chars.chars()) {
                        *slot = c;
                    }
                    let encode_high = (0x80..=0xffu8).zip(high).map(|(b, c)| (c, b)).collect();
                    Charmap {
                        name,
                        sloppy,
                        high,
                        encode_high,
                    }
                })
                .collect()
        })
    }

    // ---------------------------------------------------------------- badness

    // Character classes of ftfy's `badness.MOJIBAKE_CATEGORIES` and `chardata.UTF8_CLUES`,
    // as bit flags.
    const K_C1: u32 = 1 << 0;
    const K_BAD: u32 = 1 << 1;
    const K_LAW: u32 = 1 << 2;
    const K_CUR: u32 = 1 << 3;
    const K_SP: u32 = 1 << 4;
    const K_EP: u32 = 1 << 5;
    const K_NUM: u32 = 1 << 6;
    const K_KAO: u32 = 1 << 7;
    const K_UA: u32 = 1 << 8;
    const K_LA: u32 = 1 << 9;
    const K_UC: u32 = 1 << 10;
    const K_LC: u32 = 1 << 11;
    const K_BOX: u32 = 1 << 12;
    const K_COMMON: u32 = 1 << 13;
    const K_FIRST2: u32 = 1 << 14;
    const K_FIRST3: u32 = 1 << 15;
    const K_FIRST4: u32 = 1 << 16;
    const K_CONT: u32 = 1 << 17;
    const K_CONT_STRICT: u32 = 1 << 18;

    fn class_table() -> &'static HashMap<char, u32> {
        static TABLE: OnceLock<HashMap<char, u32>> = OnceLock::new();
        TABLE.get_or_init(|| {
            let mut table = HashMap::new();
            for (flag, chars) in [
                (K_C1, C1),
                (K_BAD, BAD),
                (K_LAW, LAW),
                (K_CUR, CURRENCY),
                (K_SP, START_PUNCTUATION),
                (K_EP, END_PUNCTUATION),
                (K_NUM, NUMERIC),
                (K_KAO, KAOMOJI),
                (K_UA, UPPER_ACCENTED),
                (K_LA, LOWER_ACCENTED),
                (K_UC, UPPER_COMMON),
                (K_LC, LOWER_COMMON),
                (K_BOX, BOX),
                (K_COMMON, COMMON),
                (K_FIRST2, UTF8_FIRST_OF_2),
                (K_FIRST3, UTF8_FIRST_OF_3),
                (K_FIRST4, UTF8_FIRST_OF_4),
                (K_CONT, UTF8_CONTINUATION),
                (K_CONT_STRICT, UTF8_CONTINUATION_STRICT),
            ] {
                for c in chars.chars() {
                    *table.entry(c).or_insert(0) |= flag;
                }
            }
            table
        })
    }

    /// Whether `c` is in any of the classes `flags`.
    fn has(c: char, flags: u32) -> bool {
        class_table().get(&c).is_some_and(|&f| f & flags != 0)
    }

    /// One position of a `BADNESS_RE` alternative.
    #[derive(Clone, Copy)]
    enum Ch {
        /// A character of the classes `.0` or one of the characters `.1`.
        In(u32, &'static str),
        /// `[^A-Za-z]`
        NotAsciiLetter,
        /// `\s`
        Space,
        /// `\w`
        Word,
        /// `.` (anything but `\n`)
        NotNewline,
    }

    impl Ch {
        fn matches(self, c: char) -> bool {
            match self {
                Ch::In(flags, chars) => has(c, flags) || chars.contains(c),
                Ch::NotAsciiLetter => !c.is_ascii_alphabetic(),
                Ch::Space => is_python_space(c),
                Ch::Word => is_python_word(c),
                Ch::NotNewline => c != '\n',
            }
        }
    }

    const fn is(chars: &'static str) -> Ch {
        Ch::In(0, chars)
    }

    const AZ: &str = "abcdefghijklmnopqrstuvwxyz";
    const AZ_BOTH: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    /// `[ØÙ]` mojibake-of-Arabic companion class.
    const ARABIC_MOJI: Ch = Ch::In(K_COMMON | K_CUR | K_BAD | K_NUM | K_SP, "ŸŠ®°µ»");

    /// `badness.BADNESS_RE`, one entry per alternative, in ftfy's order: (anchored at the
    /// start of the text, sequence). `[a-z]\s?[ÃÂ][ ]` is written as its two expansions.
    const BADNESS: &[(bool, &[Ch])] = &[
        (false, &[Ch::In(K_C1, "")]),
        (
            false,
            &[
                Ch::In(
                    K_BAD | K_LA | K_UA | K_BOX | K_SP | K_EP | K_CUR | K_NUM | K_LAW,
                    "",
                ),
                Ch::In(K_BAD, ""),
            ],
        ),
        (
            false,
            &[is(AZ_BOTH), Ch::In(K_LC | K_UC, ""), Ch::In(K_BAD, "")],
        ),
        (
            false,
            &[
                Ch::In(K_BAD, ""),
                Ch::In(
                    K_LA | K_UA | K_BOX | K_SP | K_EP | K_CUR | K_NUM | K_LAW,
                    "",
                ),
            ],
        ),
        (
            false,
            &[
                Ch::In(K_LA | K_LC | K_BOX | K_EP | K_CUR | K_NUM, ""),
                Ch::In(K_UA, ""),
            ],
        ),
        (
            false,
            &[Ch::In(K_BOX | K_EP | K_CUR | K_NUM, ""), Ch::In(K_LA, "")],
        ),
        (false, &[Ch::In(K_LA | K_BOX | K_EP, ""), Ch::In(K_CUR, "")]),
        (false, &[Ch::Space, Ch::In(K_UA, ""), Ch::In(K_CUR, "")]),
        (
            false,
            &[Ch::In(K_UA | K_BOX, ""), Ch::In(K_NUM | K_LAW, "")],
        ),
        (
            false,
            &[
                Ch::In(K_LA | K_UA | K_BOX | K_CUR | K_EP, ""),
                Ch::In(K_SP, ""),
                Ch::In(K_NUM, ""),
            ],
        ),
        (
            false,
            &[
                Ch::In(K_LA | K_UA | K_CUR | K_NUM | K_BOX | K_LAW, ""),
                Ch::In(K_EP, ""),
                Ch::In(K_SP, ""),
            ],
        ),
        (
            false,
            &[Ch::In(K_CUR | K_NUM | K_BOX, ""), Ch::In(K_SP, "")],
        ),
        (false, &[is(AZ), Ch::In(K_UA, ""), Ch::In(K_SP | K_CUR, "")]),
        (false, &[Ch::In(K_BOX, ""), Ch::In(K_KAO, "")]),
        (
            false,
            &[
                Ch::In(K_LA | K_UA | K_CUR | K_NUM | K_SP | K_EP | K_LAW, ""),
                Ch::In(K_BOX, ""),
            ],
        ),
        (false, &[Ch::In(K_BOX, ""), Ch::In(K_EP, "")]),
        (
            false,
            &[Ch::In(K_LA | K_UA, ""), Ch::In(K_SP | K_EP, ""), Ch::Word],
        ),
        (false, &[is("Œœ"), Ch::NotAsciiLetter]),
        (false, &[Ch::In(K_UA, ""), is("°")]),
        (
            false,
            &[
                is("ÂÃÎÐ"),
                Ch::In(K_SP | K_EP, "€œŠš¢£Ÿž\u{a0}\u{ad}®©°·»–—´"),
            ],
        ),
        (false, &[is("×"), is("²³")]),
        (false, &[is("ØÙ"), ARABIC_MOJI, is("ØÙ"), ARABIC_MOJI]),
        (false, &[is("à"), is("²µ¹¼½¾")]),
        (false, &[is("√"), is("±∂†≠®™´≤≥¥µø")]),
        (false, &[is("≈"), is("°¢")]),
        (false, &[is("‚"), is("Ä"), is("ìîïòôúùû†°¢π")]),
        (false, &[is("‚"), is("âó"), is("àä°ê")]),
        (false, &[is("в"), is("Ђ")]),
        (
            false,
            &[
                is("ВГРС"),
                Ch::In(K_C1 | K_BAD | K_SP | K_EP | K_CUR, "°µ"),
                is("ВГРС"),
            ],
        ),
        (
            false,
            &[
                is("Г"),
                is("ў"),
                is("В"),
                is("Ђ"),
                is("В"),
                Ch::NotNewline,
                is("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz "),
            ],
        ),
        (false, &[is("Ã"), is("\u{a0}¡")]),
        (false, &[is(AZ), is("ÃÂ"), is(" ")]),
        (false, &[is(AZ), Ch::Space, is("ÃÂ"), is(" ")]),
        (true, &[is("ÃÂ"), is(" ")]),
        (
            false,
            &[
                Ch::In(K_EP, "abcdefghijklmnopqrstuvwxyz.,?!"),
                is("Â"),
                Ch::In(K_SP | K_EP, " "),
            ],
        ),
        (false, &[is("β"), is("€"), is("™\u{a0}Ά\u{ad}®°")]),
        (
            false,
            &[
                is("ΒΓΞΟ"),
                Ch::In(K_C1 | K_BAD | K_SP | K_EP | K_CUR, "°"),
                is("ΒΓΞΟ"),
            ],
        ),
        (false, &[is("ā"), is("€")]),
    ];

    /// `badness.is_bad`: whether any `BADNESS_RE` alternative matches somewhere.
    pub fn is_bad(text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        (0..chars.len()).any(|at| {
            BADNESS.iter().any(|&(anchored, seq)| {
                (!anchored || at == 0)
                    && chars.len() >= at + seq.len()
                    && seq.iter().zip(&chars[at..]).all(|(ch, &c)| ch.matches(c))
            })
        })
    }

    // ---------------------------------------------------------------- tables
    //
    // Generated from ftfy 6.3.1 by enumerating the code points of each class of
    // `badness.MOJIBAKE_CATEGORIES` and `chardata.UTF8_CLUES` (`re.compile('[' + cls + ']')`
    // over U+0000..U+10FFFF) and decoding bytes 0x80..0xFF in each of ftfy's
    // `CHARMAP_ENCODINGS` (undefined bytes as Latin-1, as ftfy's sloppy codecs do).
    // `DECIMAL_DIGIT_ZEROS`: first code point of each run of ten Nd digits (Python `\d`).

    /// `(ftfy encoding name, is sloppy, decoding of bytes 0x80..=0xFF)`, in `CHARMAP_ENCODINGS` order.
    const CHARMAPS: [(&str, bool, &str); 10] = [
        (
            "latin-1",
            false,
            "\u{80}\u{81}\u{82}\u{83}\u{84}\u{85}\u{86}\u{87}\u{88}\u{89}\
            \u{8a}\u{8b}\u{8c}\u{8d}\u{8e}\u{8f}\u{90}\u{91}\u{92}\u{93}\
            \u{94}\u{95}\u{96}\u{97}\u{98}\u{99}\u{9a}\u{9b}\u{9c}\u{9d}\
            \u{9e}\u{9f}\u{a0}¡¢£¤¥¦§¨©ª«¬\u{ad}®¯°±²³´µ¶·¸¹º»¼½¾¿ÀÁÂÃÄÅÆÇÈÉ\
            ÊËÌÍÎÏÐÑÒÓÔÕÖ×ØÙÚÛÜÝÞßàáâãäåæçèéêëìíîïðñòóôõö÷øùúûüýþÿ",
        ),
        (
            "sloppy-windows-1252",
            true,
            "€\u{81}‚ƒ„…†‡ˆ‰Š‹Œ\u{8d}Ž\u{8f}\u{90}‘’“”•–—˜™š›œ\u{9d}žŸ\u{a0}¡\
            ¢£¤¥¦§¨©ª«¬\u{ad}®¯°±²³´µ¶·¸¹º»¼½¾¿ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖ×ØÙÚÛÜ\
            ÝÞßàáâãäåæçèéêëìíîïðñòóôõö÷øùúûüýþÿ",
        ),
        (
            "sloppy-windows-1251",
            true,
            "ЂЃ‚ѓ„…†‡€‰Љ‹ЊЌЋЏђ‘’“”•–—\u{98}™љ›њќћџ\u{a0}ЎўЈ¤Ґ¦§Ё©Є«¬\u{ad}®Ї°\
            ±Ііґµ¶·ё№є»јЅѕїАБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯабвгдежзийклмнопр\
            стуфхцчшщъыьэюя",
        ),
        (
            "sloppy-windows-1250",
            true,
            "€\u{81}‚\u{83}„…†‡\u{88}‰Š‹ŚŤŽŹ\u{90}‘’“”•–—\u{98}™š›śťžź\u{a0}ˇ\
            ˘Ł¤Ą¦§¨©Ş«¬\u{ad}®Ż°±˛ł´µ¶·¸ąş»Ľ˝ľżŔÁÂĂÄĹĆÇČÉĘËĚÍÎĎĐŃŇÓÔŐÖ×ŘŮÚŰÜ\
            ÝŢßŕáâăäĺćçčéęëěíîďđńňóôőö÷řůúűüýţ˙",
        ),
        (
            "sloppy-windows-1253",
            true,
            "€\u{81}‚ƒ„…†‡\u{88}‰\u{8a}‹\u{8c}\u{8d}\u{8e}\u{8f}\u{90}‘’“”•–—\
            \u{98}™\u{9a}›\u{9c}\u{9d}\u{9e}\u{9f}\u{a0}΅Ά£¤¥¦§¨©ª«¬\u{ad}®―\
            °±²³΄µ¶·ΈΉΊ»Ό½ΎΏΐΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡÒΣΤΥΦΧΨΩΪΫάέήίΰαβγδεζηθικλμνξο\
            πρςστυφχψωϊϋόύώÿ",
        ),
        (
            "sloppy-windows-1254",
            true,
            "€\u{81}‚ƒ„…†‡ˆ‰Š‹Œ\u{8d}\u{8e}\u{8f}\u{90}‘’“”•–—˜™š›œ\u{9d}\
            \u{9e}Ÿ\u{a0}¡¢£¤¥¦§¨©ª«¬\u{ad}®¯°±²³´µ¶·¸¹º»¼½¾¿ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎ\
            ÏĞÑÒÓÔÕÖ×ØÙÚÛÜİŞßàáâãäåæçèéêëìíîïğñòóôõö÷øùúûüışÿ",
        ),
        (
            "sloppy-windows-1257",
            true,
            "€\u{81}‚\u{83}„…†‡\u{88}‰\u{8a}‹\u{8c}¨ˇ¸\u{90}‘’“”•–—\u{98}™\
            \u{9a}›\u{9c}¯˛\u{9f}\u{a0}¡¢£¤¥¦§Ø©Ŗ«¬\u{ad}®Æ°±²³´µ¶·ø¹ŗ»¼½¾æĄ\
            ĮĀĆÄÅĘĒČÉŹĖĢĶĪĻŠŃŅÓŌÕÖ×ŲŁŚŪÜŻŽßąįāćäåęēčéźėģķīļšńņóōõö÷ųłśūüżž˙",
        ),
        (
            "iso-8859-2",
            false,
            "\u{80}\u{81}\u{82}\u{83}\u{84}\u{85}\u{86}\u{87}\u{88}\u{89}\
            \u{8a}\u{8b}\u{8c}\u{8d}\u{8e}\u{8f}\u{90}\u{91}\u{92}\u{93}\
            \u{94}\u{95}\u{96}\u{97}\u{98}\u{99}\u{9a}\u{9b}\u{9c}\u{9d}\
            \u{9e}\u{9f}\u{a0}Ą˘Ł¤ĽŚ§¨ŠŞŤŹ\u{ad}ŽŻ°ą˛ł´ľśˇ¸šşťź˝žżŔÁÂĂÄĹĆÇČÉ\
            ĘËĚÍÎĎĐŃŇÓÔŐÖ×ŘŮÚŰÜÝŢßŕáâăäĺćçčéęëěíîďđńňóôőö÷řůúűüýţ˙",
        ),
        (
            "macroman",
            false,
            "ÄÅÇÉÑÖÜáàâäãåçéèêëíìîïñóòôöõúùûü†°¢£§•¶ß®©™´¨≠ÆØ∞±≤≥¥µ∂∑∏π∫ªºΩæø\
            ¿¡¬√ƒ≈∆«»…\u{a0}ÀÃÕŒœ–—“”‘’÷◊ÿŸ⁄€‹›ﬁﬂ‡·‚„‰ÂÊÁËÈÍÎÏÌÓÔ\u{f8ff}ÒÚÛ\
            Ùıˆ˜¯˘˙˚¸˝˛ˇ",
        ),
        (
            "cp437",
            false,
            "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐\
            └┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\
            \u{a0}",
        ),
    ];
    const COMMON: &str = "\u{a0}\u{ad}´·–—―’…";
    const C1: &str = "\u{80}\u{81}\u{82}\u{83}\u{84}\u{85}\u{86}\u{87}\u{88}\u{89}\
            \u{8a}\u{8b}\u{8c}\u{8d}\u{8e}\u{8f}\u{90}\u{91}\u{92}\u{93}\
            \u{94}\u{95}\u{96}\u{97}\u{98}\u{99}\u{9a}\u{9b}\u{9c}\u{9d}\
            \u{9e}\u{9f}";
    const BAD: &str = "¤¦¨ª¬¯¸ºƒˆˇ˘˛˜†‡‰⌐◊�";
    const LAW: &str = "§¶";
    const CURRENCY: &str = "¢£¥₧€";
    const START_PUNCTUATION: &str = "¡©«¿΄΅‘‚“„•‹\u{f8ff}";
    const END_PUNCTUATION: &str = "®»˝”›™";
    const NUMERIC: &str = "±²³µ¹¼½¾×÷⁄№∂∆∏∑√∞∩∫≈≠≡≤≥";
    const KAOMOJI: &str = "°ÒÓÔÕÖÙÚÛÜòóôõöøùúûüŌŐŪŲ";
    const UPPER_ACCENTED: &str = "ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑØÜÝĀĂĄĆČĎĐĒĖĘĚĞĢĪİĶĹĻĽŁŃŅŇŒŘŚŞŠŢŤŮŰŸŹŻŽҐ";
    const LOWER_ACCENTED: &str = "ßàáâãäåæçèéêëìíîïðñüāăąćčďđēėęěğģīįķĺļľłœŕśşšťźżžґﬁﬂ";
    const UPPER_COMMON: &str = "ÞΆΈΉΊΌΎΏΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡ\u{3a2}ΣΤΥΦΧΨΩΪΫЁЂЃЄЅІЇЈЉЊЋЌЍЎЏАБВГДЕЖЗ\
            ИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ";
    const LOWER_COMMON: &str = "άέήίΰαβγδεζηθικλμνξοπρςστυφχψωабвгдежзийклмнопрстуфхцчшщъыьэюяѐё\
            ђѓєѕіїјљњћќѝўџ";
    const BOX: &str = "│┌┐┘├┤┬┼═║╒╓╔╕╖╗╘╙╚╛╜╝╞╟╠╡╢╣╤╥╦╧╨╩╪╫╬▀▄█▌▐░▒▓";
    const UTF8_FIRST_OF_2: &str = "ÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖ×ØÙÚÛÜÝÞßĀĂĆČĎĐĒĖĘĚĞĢĪİĶĹĻŁŃŅŇŌŐŘŚŞŠŢŪŮŰŲŹŻ\
            ŽΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩΪΫάέήίВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ";
    const UTF8_FIRST_OF_3: &str = "àáâãäåæçèéêëìíîïāăąćčďēėęěģīįķĺļŕźΰαβγδεζηθικλμνξοабвгдежзийклмн\
            оп";
    const UTF8_FIRST_OF_4: &str = "ðóđğšπσру";
    const UTF8_CONTINUATION: &str = "\u{20}\u{80}\u{81}\u{82}\u{83}\u{84}\u{85}\u{86}\u{87}\u{88}\
            \u{89}\u{8a}\u{8b}\u{8c}\u{8d}\u{8e}\u{8f}\u{90}\u{91}\u{92}\
            \u{93}\u{94}\u{95}\u{96}\u{97}\u{98}\u{99}\u{9a}\u{9b}\u{9c}\
            \u{9d}\u{9e}\u{9f}\u{a0}¡¢£¤¥¦§¨©ª«¬\u{ad}®¯°±²³´µ¶·¸¹º»¼½¾¿ÆØæø\
            ĄąĽľŁłŒœŖŗŚśŞşŠšŤťŸŹźŻżŽžƒˆˇ˘˛˜˝΄΅ΆΈΉΊΌΎΏЁЂЃЄЅІЇЈЉЊЋЌЎЏёђѓєѕіїјљ\
            њћќўџҐґ–—―‘’‚“”„†‡•…‰‹›€№™";
    const UTF8_CONTINUATION_STRICT: &str = "\u{80}\u{81}\u{82}\u{83}\u{84}\u{85}\u{86}\u{87}\u{88}\u{89}\
            \u{8a}\u{8b}\u{8c}\u{8d}\u{8e}\u{8f}\u{90}\u{91}\u{92}\u{93}\
            \u{94}\u{95}\u{96}\u{97}\u{98}\u{99}\u{9a}\u{9b}\u{9c}\u{9d}\
            \u{9e}\u{9f}\u{a0}¡¢£¤¥¦§¨©ª«¬\u{ad}®¯°±²³´µ¶·¸¹º»¼½¾¿ÆØæøĄąĽľŁł\
            ŒœŖŗŚśŞşŠšŤťŸŹźŻżŽžƒˆˇ˘˛˜˝΄΅ΆΈΉΊΌΎΏЁЂЃЄЅІЇЈЉЊЋЌЎЏёђѓєѕіїјљњћќўџҐ\
            ґ†‡‰‹›€№™";
    const DECIMAL_DIGIT_ZEROS: [u32; 66] = [
        0x30, 0x660, 0x6f0, 0x7c0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66,
        0xde6, 0xe50, 0xed0, 0xf20, 0x1040, 0x1090, 0x17e0, 0x1810, 0x1946, 0x19d0, 0x1a80, 0x1a90,
        0x1b50, 0x1bb0, 0x1c40, 0x1c50, 0xa620, 0xa8d0, 0xa900, 0xa9d0, 0xa9f0, 0xaa50, 0xabf0,
        0xff10, 0x104a0, 0x10d30, 0x11066, 0x110f0, 0x11136, 0x111d0, 0x112f0, 0x11450, 0x114d0,
        0x11650, 0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50, 0x11da0, 0x16a60, 0x16ac0,
        0x16b50, 0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e950, 0x1fbf0,
    ];
}

#[cfg(test)]
mod tests {
    use super::ftfy::*;
    use super::*;

    #[test]
    fn ftfy_docstring_examples() {
        assert_eq!(fix_text("âœ” No problems"), "✔ No problems");
        assert_eq!(fix_text("&macr;\\_(ã\u{83}\u{84})_/&macr;"), "¯\\_(ツ)_/¯");
        assert_eq!(
            fix_text("Broken text&hellip; it&#x2019;s ﬂubberiﬁc!"),
            "Broken text… it's flubberific!"
        );
        assert_eq!(fix_text("ＬＯＵＤ\u{3000}ＮＯＩＳＥＳ"), "LOUD NOISES");
    }

    #[test]
    fn uncurls_quotes() {
        assert_eq!(
            uncurl_quotes("‘a’ “b” ‚c‛ „d‟ ʼe"),
            "'a' \"b\" 'c' \"d\" 'e"
        );
        assert_eq!(fix_text("don’t"), "don't");
    }

    #[test]
    fn splits_latin_ligatures() {
        assert_eq!(fix_latin_ligatures("ﬂuﬃeﬆ ĳs ǅ"), "fluffiest ijs Dž");
        // æ is a letter, not a typographic ligature: kept
        assert_eq!(fix_text("ﬁsh æther"), "fish æther");
    }

    #[test]
    fn narrows_fullwidth_and_widens_halfwidth() {
        assert_eq!(fix_character_width("ＡＢＣ１２３！"), "ABC123!");
        assert_eq!(fix_text("Ｕﾀｰﾝ"), "Uターン");
        // halfwidth voiced mark composes by NFC afterwards
        assert_eq!(fix_text("ｶﾞ"), "ガ");
    }

    #[test]
    fn normalises_line_breaks() {
        assert_eq!(
            fix_line_breaks("a\r\nb\rc\u{2028}d\u{2029}e\u{85}f"),
            "a\nb\nc\nd\ne\nf"
        );
    }

    #[test]
    fn removes_control_characters_and_terminal_escapes() {
        assert_eq!(
            remove_control_chars("a\u{0}b\u{7}c\u{7f}d\u{feff}e\u{fffc}f\tg\n"),
            "abcdef\tg\n"
        );
        assert_eq!(fix_text("\u{1b}[36;44mblue\u{1b}[0m"), "blue");
        // \d is any decimal digit, as in Python's re
        assert_eq!(remove_terminal_escapes("\u{1b}[٣mx"), "x");
        // zero width joiners and bidi marks are left alone
        assert_eq!(fix_text("a\u{200d}b\u{200f}"), "a\u{200d}b\u{200f}");
    }

    #[test]
    fn replaces_c1_controls_with_windows_1252() {
        assert_eq!(fix_c1_controls("a\u{85}b\u{80}"), "a…b€");
        assert_eq!(fix_text("caf\u{82}"), "caf'");
        assert_eq!(fix_text("a\u{85}b"), "a…b");
    }

    #[test]
    fn composes_nfc() {
        assert_eq!(fix_text("cafe\u{301}"), "café");
    }

    #[test]
    fn unescapes_html_entities_like_ftfy() {
        assert_eq!(fix_text("tom &amp; jerry"), "tom & jerry");
        assert_eq!(fix_text("fish &amp;amp; chips"), "fish & chips");
        assert_eq!(
            fix_text("&Jscr;ohn &HilbertSpace;ancock &checkmark;"),
            "𝒥ohn ℋancock ✓"
        );
        assert_eq!(
            fix_text("P&EACUTE;REZ BUNDESSTRA&SZLIG;E"),
            "PÉREZ BUNDESSTRASSE"
        );
        assert_eq!(
            fix_text("&ntilde; &Ntilde; &NTILDE; &nTILDE;"),
            "ñ Ñ Ñ &nTILDE;"
        );
        // no ';' → no entity (unlike html.unescape); AT&T stays
        assert_eq!(fix_text("AT&T &amp &AMP; &LT;"), "AT&T &amp & <");
        // names longer than 24 characters never match ftfy's regex
        assert_eq!(
            fix_text("&CounterClockwiseContourIntegral; &amp;"),
            "&CounterClockwiseContourIntegral; &"
        );
    }

    #[test]
    fn unescapes_numeric_references_like_html_unescape() {
        assert_eq!(unescape_html("&#65;&#x42;&#X43;"), "ABC");
        // a result containing ';' keeps the original text
        assert_eq!(unescape_html("&#59; &#x3b;"), "&#59; &#x3b;");
        // partial numbers are not decoded
        assert_eq!(unescape_html("&#12a;"), "&#12a;");
        assert_eq!(
            unescape_html("&#0;|&#128;|&#1;|&#xD83D;|&#1114112;|&#xFFFF;"),
            "\u{fffd}|€||\u{fffd}|\u{fffd}|"
        );
    }

    #[test]
    fn html_auto_mode_stops_at_the_first_segment_with_a_tag() {
        assert_eq!(fix_text("<b>&amp;</b>"), "<b>&amp;</b>");
        assert_eq!(
            fix_text("&amp;\n<b>&amp;</b>\n&amp;"),
            "&\n<b>&amp;</b>\n&amp;"
        );
    }

    #[test]
    fn entity_table_is_complete() {
        let tsv = include_str!("../assets/ftfy_html_entities.tsv");
        let lines = tsv.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(lines, 3501);
        assert_eq!(unescape_html("&NewLine;&Tab;&nbsp;"), "\n\t\u{a0}");
    }

    #[test]
    fn repairs_utf8_read_as_latin1_or_windows1252() {
        assert_eq!(fix_text("cafÃ©"), "café");
        assert_eq!(fix_text("sÃ³"), "só");
        assert_eq!(
            fix_text("cafÃ© â€” rÃ©sumÃ© and naÃ¯ve"),
            "café — résumé and naïve"
        );
        assert_eq!(fix_text("ï¬\u{81}sh"), "fish");
        // windows-1251 mojibake of Cyrillic
        assert_eq!(fix_text("Ð¿Ñ€Ð¸Ð²ÐµÑ‚"), "привет");
        // Japanese read as windows-1252
        assert_eq!(fix_text("ã‚¢ã‚¤"), "アイ");
    }

    #[test]
    fn restores_no_break_spaces_turned_into_spaces() {
        assert_eq!(fix_text("voilÃ le travail"), "voilà le travail");
        assert_eq!(fix_text("Ã la mode"), "à la mode");
        assert_eq!(fix_text("Ã quele"), "àquele");
    }

    #[test]
    fn replaces_lossy_sequences() {
        assert_eq!(
            fix_text("â€œ like this â€\u{fffd}"),
            "\" like this \u{fffd}"
        );
    }

    #[test]
    fn fixes_inconsistent_utf8_in_place() {
        assert_eq!(fix_text("the Ã©cole ÐŸÑ€Ð¸Ð²ÐµÑ‚"), "the école Привет");
    }

    #[test]
    fn leaves_correct_text_alone() {
        for text in [
            "café",
            "naïve",
            "Straße",
            "東京タワー",
            "Москва",
            "Ελλάδα",
            "x² + y² = z²",
            "½ cup",
            "™ ® ©",
            "🐶",
        ] {
            assert_eq!(fix_text(text), text, "{text}");
            assert!(!is_bad(text), "{text}");
        }
    }

    #[test]
    fn badness_heuristic() {
        assert!(is_bad("cafÃ©"));
        assert!(is_bad("â€œ"));
        assert!(is_bad("\u{80}"));
        assert!(is_bad("Ã "));
        assert!(!is_bad(" Ã"));
    }

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
    fn byte_to_unicode_table_is_a_bijection() {
        let table = bytes_to_unicode();
        assert_eq!(table.len(), 256);
        assert_eq!(table[0], (b'!', '!'));
        assert_eq!(table[188], (0, '\u{100}'));
        let distinct: std::collections::HashSet<char> = table.iter().map(|&(_, c)| c).collect();
        assert_eq!(distinct.len(), 256);
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
