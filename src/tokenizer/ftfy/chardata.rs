//! The data of the ftfy port, after ftfy 6.3.1's `ftfy/chardata.py`: HTML entities, the byte
//! patterns of `ALTERED_UTF8_RE` and `LOSSY_UTF8_RE`, the single-byte code pages of
//! `CHARMAP_ENCODINGS`, and the character classes of `badness.MOJIBAKE_CATEGORIES` and
//! `chardata.UTF8_CLUES`.
//!
//! The tables at the end (code pages, ftfy's character classes) and
//! `assets/ftfy_html_entities.tsv` (ftfy's `chardata.HTML_ENTITIES`) were generated from
//! ftfy 6.3.1 itself: each class enumerated with `re.compile("[" + cls + "]")` over all
//! code points, each code page as `bytes(range(0x80, 0x100)).decode(codec)`.

use std::collections::HashMap;
use std::sync::OnceLock;

/// ftfy's `HTML_ENTITIES`, from `assets/ftfy_html_entities.tsv`: name (without `&`, `;`)
/// → text.
pub(super) fn html_entities() -> &'static HashMap<&'static str, String> {
    static TABLE: OnceLock<HashMap<&'static str, String>> = OnceLock::new();
    TABLE.get_or_init(|| parse_entity_table(HTML_ENTITIES_TSV))
}

const HTML_ENTITIES_TSV: &str = include_str!("../../../assets/ftfy_html_entities.tsv");

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

/// A byte class of a bytes regex: inclusive ranges.
type ByteClass = &'static [(u8, u8)];
/// One alternative of a bytes regex: a fixed sequence of byte classes.
pub(super) type BytePattern = &'static [ByteClass];

const SPACE: ByteClass = &[(b' ', b' ')];
const CONT: ByteClass = &[(0x80, 0xbf)];
const CONT_NOT_85_A0: ByteClass = &[(0x80, 0x84), (0x86, 0x9f), (0xa1, 0xbf)];
const SUB: ByteClass = &[(0x1a, 0x1a)];
const SUB_OR_QM: ByteClass = &[(0x1a, 0x1a), (b'?', b'?')];
const SUB_OR_CONT: ByteClass = &[(0x1a, 0x1a), (0x80, 0xbf)];
const SUB_QM_OR_CONT: ByteClass = &[(0x1a, 0x1a), (b'?', b'?'), (0x80, 0xbf)];
const ED: ByteClass = &[(0xed, 0xed)];

/// `chardata.ALTERED_UTF8_RE`: UTF-8 sequences whose `A0` byte became a space.
pub(super) const ALTERED_UTF8: &[BytePattern] = &[
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
pub(super) const LOSSY_UTF8: &[BytePattern] = &[
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

// ---------------------------------------------------------------- code pages

/// A single-byte code page as ftfy uses it (its `sloppy-*` codecs decode undefined
/// bytes as Latin-1 and byte 1A as `�`).
pub(super) struct Charmap {
    /// ftfy's name of the encoding.
    pub(super) name: &'static str,
    /// A `sloppy-*` codec.
    pub(super) sloppy: bool,
    high: [char; 128],
    encode_high: HashMap<char, u8>,
}

impl Charmap {
    /// Decodes one byte.
    pub(super) fn decode(&self, byte: u8) -> char {
        match byte {
            0x1a if self.sloppy => '\u{fffd}',
            0x00..=0x7f => char::from(byte),
            _ => self.high[usize::from(byte - 0x80)],
        }
    }

    /// `text.encode(codec)` if `possible_encoding(text, codec)`, else `None`.
    pub(super) fn encode(&self, text: &str) -> Option<Vec<u8>> {
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
pub(super) fn windows_1252() -> &'static Charmap {
    &charmaps()[1]
}

/// ftfy's `CHARMAP_ENCODINGS`, decoded from [`CHARMAPS`] once.
pub(super) fn charmaps() -> &'static [Charmap] {
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

// ---------------------------------------------------------------- character classes

// Character classes of ftfy's `badness.MOJIBAKE_CATEGORIES` and `chardata.UTF8_CLUES`,
// as bit flags.
pub(super) const K_C1: u32 = 1 << 0;
pub(super) const K_BAD: u32 = 1 << 1;
pub(super) const K_LAW: u32 = 1 << 2;
pub(super) const K_CUR: u32 = 1 << 3;
pub(super) const K_SP: u32 = 1 << 4;
pub(super) const K_EP: u32 = 1 << 5;
pub(super) const K_NUM: u32 = 1 << 6;
pub(super) const K_KAO: u32 = 1 << 7;
pub(super) const K_UA: u32 = 1 << 8;
pub(super) const K_LA: u32 = 1 << 9;
pub(super) const K_UC: u32 = 1 << 10;
pub(super) const K_LC: u32 = 1 << 11;
pub(super) const K_BOX: u32 = 1 << 12;
pub(super) const K_COMMON: u32 = 1 << 13;
pub(super) const K_FIRST2: u32 = 1 << 14;
pub(super) const K_FIRST3: u32 = 1 << 15;
pub(super) const K_FIRST4: u32 = 1 << 16;
pub(super) const K_CONT: u32 = 1 << 17;
pub(super) const K_CONT_STRICT: u32 = 1 << 18;

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
pub(super) fn has(c: char, flags: u32) -> bool {
    class_table().get(&c).is_some_and(|&f| f & flags != 0)
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
pub(super) const DECIMAL_DIGIT_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6f0, 0x7c0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66,
    0xde6, 0xe50, 0xed0, 0xf20, 0x1040, 0x1090, 0x17e0, 0x1810, 0x1946, 0x19d0, 0x1a80, 0x1a90,
    0x1b50, 0x1bb0, 0x1c40, 0x1c50, 0xa620, 0xa8d0, 0xa900, 0xa9d0, 0xa9f0, 0xaa50, 0xabf0, 0xff10,
    0x104a0, 0x10d30, 0x11066, 0x110f0, 0x11136, 0x111d0, 0x112f0, 0x11450, 0x114d0, 0x11650,
    0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50, 0x11da0, 0x16a60, 0x16ac0, 0x16b50,
    0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e950, 0x1fbf0,
];

#[cfg(test)]
mod tests {
    use super::super::unescape_html;
    use super::*;

    #[test]
    fn entity_table_is_complete() {
        let lines = HTML_ENTITIES_TSV
            .lines()
            .filter(|l| !l.starts_with('#'))
            .count();
        assert_eq!(lines, 3501);
        assert_eq!(unescape_html("&NewLine;&Tab;&nbsp;"), "\n\t\u{a0}");
    }
}
