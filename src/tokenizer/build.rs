//! Builds the CLIP tokenizer file (`assets/clip_tokenizer.json`) from OpenAI's
//! `bpe_simple_vocab_16e6.txt.gz`, as CLIP's `clip/simple_tokenizer.py` (openai/CLIP) and
//! transformers' `CLIPTokenizer` derive the vocabulary and merges from it.

use std::io::Read;

use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::normalizers::{Lowercase, NFC, Replace, Sequence as NormalizerSequence};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizerSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::roberta::RobertaProcessing;
use tokenizers::{
    AddedToken, NormalizerWrapper, PaddingParams, PaddingStrategy, PreTokenizerWrapper,
    SplitDelimiterBehavior, Tokenizer, TruncationParams,
};

use super::{
    BOS_ID, BOS_TOKEN, CONTEXT_LENGTH, END_OF_WORD, EOS_ID, EOS_TOKEN, PAD_ID, TokenizerError,
    VOCAB_SIZE,
};

/// Merges used by CLIP: `49152 - 256 - 2` lines after the header line of the BPE file.
const NUM_MERGES: usize = 49152 - 256 - 2;
/// The split regex of CLIP's `simple_tokenizer.py` / transformers' `CLIPTokenizer.pat`.
/// Python compiles it with `IGNORECASE`; see the `tokenizer` module docs for `(?i:…)` and
/// `\x{345}`.
const CLIP_SPLIT_PATTERN: &str = r"(?i:<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d)|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}\x{345}]+";

/// GPT-2's `bytes_to_unicode`: printable Latin-1 bytes map to themselves, the other 68 bytes
/// to U+0100.. in byte order. Returned in the Python dict's order (the vocabulary order).
pub(super) fn bytes_to_unicode() -> Vec<(u8, char)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_to_unicode_table_is_a_bijection() {
        let table = bytes_to_unicode();
        assert_eq!(table.len(), 256);
        assert_eq!(table[0], (b'!', '!'));
        assert_eq!(table[188], (0, '\u{100}'));
        let distinct: std::collections::HashSet<char> = table.iter().map(|&(_, c)| c).collect();
        assert_eq!(distinct.len(), 256);
    }
}
