//! ftfy 6.3.1's mojibake heuristic (`ftfy/badness.py`): `BADNESS_RE`, ported alternative by
//! alternative over the character classes of `chardata.rs`, and `is_bad`, which decides
//! whether `fix_encoding` tries to repair a text at all.

use super::chardata::{
    K_BAD, K_BOX, K_C1, K_COMMON, K_CUR, K_EP, K_KAO, K_LA, K_LAW, K_LC, K_NUM, K_SP, K_UA, K_UC,
    has,
};
use super::{is_python_space, is_python_word};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badness_heuristic() {
        assert!(is_bad("cafÃ©"));
        assert!(is_bad("â€œ"));
        assert!(is_bad("\u{80}"));
        assert!(is_bad("Ã "));
        assert!(!is_bad(" Ã"));
    }
}
