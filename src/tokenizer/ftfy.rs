//! Text normalisation: a port of `fix_text` of ftfy 6.3.1 (rspeer/python-ftfy,
//! `ftfy/__init__.py`, `ftfy/fixes.py`), the text fixer that transformers' `CLIPTokenizer` runs
//! on every prompt. Function names are ftfy's; its data tables are in `chardata.rs` and its
//! mojibake heuristic in `badness.rs`.
//!
//! [`fix_text`] follows `ftfy.fix_text` with its default `TextFixerConfig`. The text is
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

mod badness;
mod chardata;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

pub use badness::is_bad;
use chardata::{
    ALTERED_UTF8, BytePattern, DECIMAL_DIGIT_ZEROS, K_CONT, K_CONT_STRICT, K_FIRST2, K_FIRST3,
    K_FIRST4, LOSSY_UTF8, charmaps, has, html_entities, windows_1252,
};

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
    ((1..=24).contains(&run) && bytes.get(start + run) == Some(&b';')).then_some(start + run + 1)
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
fn byte_sub(bytes: &[u8], patterns: &[BytePattern], replace: impl Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
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

#[cfg(test)]
mod tests {
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
}
