//! tiktoken's split patterns, hand-written for ASCII text. The patterns need `fancy_regex`
//! (a look-ahead, possessive quantifiers), whose backtracking engine spent about 1,400
//! instructions a piece: most of the prompt estimate every request makes before admission.
//! ASCII text, most prompts in English and most code, is split here in a few dozen; anything
//! else still goes to the pattern. Each function follows its pattern's alternatives in order,
//! as the regex tries them at each position; the tests compare both on generated text.

/// Which vocabulary's pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pattern {
    /// `o200k_base` (tiktoken-rs's `O200K_BASE_PAT_STR`).
    O200k,
    /// `cl100k_base` (`vocabulary::CL100K_BASE_PATTERN`).
    Cl100k,
}

/// Calls `piece` with each piece of `text`, which must be ASCII, in order.
pub(super) fn for_each(pattern: Pattern, text: &[u8], mut piece: impl FnMut(&[u8])) {
    debug_assert!(text.is_ascii());
    let mut at = 0;
    while at < text.len() {
        let end = match pattern {
            Pattern::O200k => o200k(text, at),
            Pattern::Cl100k => cl100k(text, at),
        };
        piece(&text[at..end]);
        at = end;
    }
}

/// `\s` in ASCII: tab, line feed, vertical tab, form feed, carriage return, space.
fn space(b: u8) -> bool {
    b == b' ' || (b'\t'..=b'\r').contains(&b)
}

fn newline(b: u8) -> bool {
    b == b'\r' || b == b'\n'
}

/// `[^\s\p{L}\p{N}]`: punctuation, symbols and the other control characters.
fn symbol(b: u8) -> bool {
    !space(b) && !b.is_ascii_alphanumeric()
}

/// `[^\r\n\p{L}\p{N}]`: what may lead a word.
fn leader(b: u8) -> bool {
    !newline(b) && !b.is_ascii_alphanumeric()
}

/// The end of the run from `at` of bytes that satisfy `class`.
fn run(text: &[u8], at: usize, class: impl Fn(u8) -> bool) -> usize {
    at + text[at..].iter().take_while(|&&b| class(b)).count()
}

/// ` ?[^\s\p{L}\p{N}]+` from `at`, then a run of `tail` bytes: its end. The space is taken
/// when symbols follow it.
fn symbols(text: &[u8], at: usize, tail: impl Fn(u8) -> bool) -> Option<usize> {
    let from = match text.get(at + 1) {
        Some(&next) if text[at] == b' ' && symbol(next) => at + 1,
        _ => at,
    };
    let end = run(text, from, symbol);
    (end > from).then(|| run(text, end, tail))
}

/// Where whitespace from `at` ends for `\s+(?!\S)`: all of it at the end of the text, else all
/// but its last character (which belongs to the word after); `None` for a single character
/// before a word.
fn space_before_word(text: &[u8], at: usize, end: usize) -> Option<usize> {
    if end == text.len() {
        Some(end)
    } else {
        (end - 1 > at).then_some(end - 1)
    }
}

/// Where `\s*[\r\n]` ends, for whitespace from `at` to `end`: after its last line break.
fn through_last_newline(text: &[u8], at: usize, end: usize) -> Option<usize> {
    text[at..end]
        .iter()
        .rposition(|&b| newline(b))
        .map(|last| at + last + 1)
}

/// An English contraction at `at` (`'s`, `'t`, `'m`, `'d`, `'ll`, `'ve`, `'re`, any case): its
/// length, or 0. Both patterns know the same seven, `o200k_base` after a word
/// (`(?i:'s|'t|'re|'ve|'m|'ll|'d)?`), `cl100k_base` as a piece of its own
/// (`'(?i:[sdmt]|ll|ve|re)`); no two share a first letter, so their order does not matter.
fn contraction(text: &[u8], at: usize) -> usize {
    if text.get(at) != Some(&b'\'') {
        return 0;
    }
    let next = |i: usize| text.get(at + i).map(u8::to_ascii_lowercase);
    match (next(1), next(2)) {
        (Some(b's' | b't' | b'm' | b'd'), _) => 2,
        (Some(b'r'), Some(b'e')) | (Some(b'v'), Some(b'e')) | (Some(b'l'), Some(b'l')) => 3,
        _ => 0,
    }
}

/// One piece of `o200k_base`'s pattern from `at`; its end.
fn o200k(text: &[u8], at: usize) -> usize {
    let b = text[at];
    // [^\r\n\p{L}\p{N}]?[\p{Lu}…]*[\p{Ll}…]+(?i:'s|…)?  and  …[\p{Lu}…]+[\p{Ll}…]*(?i:'s|…)?
    // In ASCII both take the capitals, then the small letters, and need one letter at least.
    let word = |from: usize| {
        let capitals = run(text, from, |b| b.is_ascii_uppercase());
        let end = run(text, capitals, |b| b.is_ascii_lowercase());
        (end > from).then(|| end + contraction(text, end))
    };
    if leader(b)
        && let Some(end) = word(at + 1)
    {
        return end;
    }
    if let Some(end) = word(at) {
        return end;
    }
    // \p{N}{1,3}
    if b.is_ascii_digit() {
        return run(text, at, |b| b.is_ascii_digit()).min(at + 3);
    }
    //  ?[^\s\p{L}\p{N}]+[\r\n/]*
    if let Some(end) = symbols(text, at, |b| newline(b) || b == b'/') {
        return end;
    }
    // What is left is whitespace: \s*[\r\n]+, then \s+(?!\S), then \s+.
    let end = run(text, at, space);
    through_last_newline(text, at, end)
        .or_else(|| space_before_word(text, at, end))
        .unwrap_or(end)
}

/// One piece of `cl100k_base`'s pattern from `at`; its end.
fn cl100k(text: &[u8], at: usize) -> usize {
    let b = text[at];
    // '(?i:[sdmt]|ll|ve|re)
    match contraction(text, at) {
        0 => {}
        length => return at + length,
    }
    // [^\r\n\p{L}\p{N}]?+\p{L}++: possessive, so a leader without letters after it fails
    // this alternative rather than trying again without the leader.
    let from = if leader(b) { at + 1 } else { at };
    let letters = run(text, from, |b| b.is_ascii_alphabetic());
    if letters > from {
        return letters;
    }
    // \p{N}{1,3}+
    if b.is_ascii_digit() {
        return run(text, at, |b| b.is_ascii_digit()).min(at + 3);
    }
    //  ?[^\s\p{L}\p{N}]++[\r\n]*+
    if let Some(end) = symbols(text, at, newline) {
        return end;
    }
    // Whitespace: \s++$, then \s*[\r\n], then \s+(?!\S), then \s.
    let end = run(text, at, space);
    if end == text.len() {
        return end;
    }
    through_last_newline(text, at, end)
        .or_else(|| space_before_word(text, at, end))
        .unwrap_or(at + 1)
}

#[cfg(test)]
mod tests {
    use fancy_regex::Regex;
    use proptest::prelude::*;

    use super::*;

    fn regex_pieces(regex: &Regex, text: &str) -> Vec<String> {
        regex
            .find_iter(text)
            .map(|piece| piece.unwrap().as_str().to_owned())
            .collect()
    }

    fn our_pieces(pattern: Pattern, text: &str) -> Vec<String> {
        let mut pieces = Vec::new();
        for_each(pattern, text.as_bytes(), |piece| {
            pieces.push(String::from_utf8(piece.to_vec()).unwrap());
        });
        pieces
    }

    fn patterns() -> [(Pattern, Regex); 2] {
        [
            (
                Pattern::O200k,
                Regex::new(tiktoken_rs::O200K_BASE_PAT_STR).unwrap(),
            ),
            (
                Pattern::Cl100k,
                Regex::new(super::super::vocabulary::CL100K_BASE_PATTERN).unwrap(),
            ),
        ]
    }

    #[test]
    fn splits_as_the_patterns_do() {
        let texts = [
            "Hello, world! I'm here; you're there. We'll see, they've gone, she'd left.",
            "HELLO World's CAN'T Won'T 'S 'LL 'Ve 're 'x ' 'd",
            "fn main() {\n    println!(\"{}\", 1 + 2);\n}\n",
            "  x\n\n  y \t\n z  \r\n\r\n",
            "1234567 a1b22c333 -42 3.14159",
            "((hi)) (hi !? ?! //\n/ a/\n/b \x00\x01x\x7f",
            "   ",
            " \n",
            "\t\tword \x0b\x0cword\x0c",
            "ABCdefGHI jKL mnoPQR",
        ];
        for (pattern, regex) in patterns() {
            for text in texts {
                assert_eq!(
                    our_pieces(pattern, text),
                    regex_pieces(&regex, text),
                    "{pattern:?} {text:?}"
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn generated_ascii_splits_as_the_patterns_do(
            text in proptest::collection::vec(
                prop_oneof![
                    Just(' '), Just(' '), Just('\n'), Just('\r'), Just('\t'), Just('\x0b'),
                    Just('\''), Just('/'), Just('!'), Just('('), Just('\x01'),
                    Just('a'), Just('e'), Just('s'), Just('t'), Just('l'), Just('v'), Just('r'),
                    Just('d'), Just('m'), Just('S'), Just('L'), Just('E'), Just('Q'),
                    Just('1'), Just('7'),
                ],
                0..40,
            ).prop_map(|chars| chars.into_iter().collect::<String>())
        ) {
            for (pattern, regex) in patterns() {
                prop_assert_eq!(our_pieces(pattern, &text), regex_pieces(&regex, &text));
            }
        }
    }
}
