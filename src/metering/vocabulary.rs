//! A BPE vocabulary held compactly, for counting tokens.
//!
//! `tiktoken-rs` keeps each vocabulary three times over — a hash map from token bytes to rank,
//! its inverse, and a sorted list — every token in heap allocations of its own: about 200 bytes
//! a token, 40 MiB for `o200k_base`'s 200,000 (and it clones its split regex 128 times). A
//! gateway only counts, so it needs one direction: here every token's bytes sit in one arena and
//! one table maps them to their rank, about 35 bytes a token. The vocabulary is read from
//! `tiktoken-rs` (its bundled files, through `decode_bytes`) once, and its copy dropped.
//!
//! The count is tiktoken's `encode_ordinary(text).len()`: the text is split by the vocabulary's
//! regex, a piece that is a token counts one, any other is merged pair by pair, lowest rank
//! first (the tests compare both on a corpus).

use std::collections::HashMap;

use fancy_regex::Regex;
use tiktoken_rs::{CoreBPE, Rank};

use super::pieces::{self, Pattern};

/// `cl100k_base`'s split pattern, as tiktoken defines it (`tiktoken-rs` names only
/// `o200k_base`'s).
pub(super) const CL100K_BASE_PATTERN: &str = r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s";

/// Token bytes → rank, the bytes in one arena that lives as long as the process (each
/// vocabulary is built once).
type Ranks = HashMap<&'static [u8], Rank, foldhash::fast::RandomState>;

pub(super) struct Vocabulary {
    ranks: Ranks,
    /// `None` if the pattern did not compile (it is a constant, so never in a release that
    /// passed its tests): every byte is then counted as a token, an over-estimate.
    split: Option<Regex>,
    /// The same pattern by hand, for ASCII text.
    ascii: Pattern,
}

impl Vocabulary {
    pub(super) fn o200k_base() -> Self {
        Self::from_tiktoken(
            tiktoken_rs::o200k_base(),
            tiktoken_rs::O200K_BASE_PAT_STR,
            Pattern::O200k,
        )
    }

    pub(super) fn cl100k_base() -> Self {
        Self::from_tiktoken(
            tiktoken_rs::cl100k_base(),
            CL100K_BASE_PATTERN,
            Pattern::Cl100k,
        )
    }

    fn from_tiktoken<E: std::fmt::Display>(
        bpe: Result<CoreBPE, E>,
        pattern: &str,
        ascii: Pattern,
    ) -> Self {
        let mut arena = Vec::new();
        let mut spans = Vec::new();
        match bpe {
            // Ranks are dense from 0; the first that does not decode ends the ordinary tokens
            // (the special ones, which ordinary counting never produces, come after a gap).
            Ok(bpe) => {
                for rank in 0.. {
                    let Ok(bytes) = bpe.decode_bytes(&[rank]) else {
                        break;
                    };
                    spans.push(arena.len()..arena.len() + bytes.len());
                    arena.extend_from_slice(&bytes);
                }
            }
            Err(error) => {
                tracing::error!(%error, "cannot load a tokenizer vocabulary; counting bytes");
            }
        }
        let arena: &'static [u8] = Box::leak(arena.into_boxed_slice());
        let mut ranks = Ranks::with_capacity_and_hasher(spans.len(), Default::default());
        for (rank, span) in (0..).zip(spans) {
            ranks.insert(&arena[span], rank);
        }
        let split = Regex::new(pattern)
            .map_err(|error| {
                tracing::error!(%error, "cannot compile a tokenizer's pattern; counting bytes");
            })
            .ok();
        Self {
            ranks,
            split,
            ascii,
        }
    }

    /// Tokens in `text`, as `encode_ordinary` would make them.
    pub(super) fn count(&self, text: &str) -> usize {
        let Some(split) = &self.split else {
            return text.len();
        };
        if text.is_ascii() {
            let mut count = 0;
            pieces::for_each(self.ascii, text.as_bytes(), |piece| {
                count += self.piece_count(piece);
            });
            return count;
        }
        let mut count = 0;
        for piece in split.find_iter(text) {
            // The regex gave up (its backtracking limit): the rest counts as bytes, too many
            // rather than too few.
            let Ok(piece) = piece else {
                return count + text.len();
            };
            count += self.piece_count(piece.as_str().as_bytes());
        }
        count
    }

    fn piece_count(&self, piece: &[u8]) -> usize {
        if self.ranks.contains_key(piece) {
            1
        } else {
            byte_pair_count(piece, &self.ranks)
        }
    }
}

/// The tokens a piece that is not itself a token becomes: starting from its bytes, the adjacent
/// pair whose joined bytes have the lowest rank is merged (the leftmost on a tie), until no
/// joined pair is a token. `parts[i]` is where a part starts and the rank its bytes would have
/// joined with the next part's.
fn byte_pair_count(piece: &[u8], ranks: &Ranks) -> usize {
    if piece.len() < 2 {
        return piece.len();
    }
    let rank_of = |bytes: &[u8]| ranks.get(bytes).copied().unwrap_or(Rank::MAX);
    let mut parts: Vec<(usize, Rank)> = (0..piece.len() - 1)
        .map(|i| (i, rank_of(&piece[i..i + 2])))
        .collect();
    parts.push((piece.len() - 1, Rank::MAX));
    parts.push((piece.len(), Rank::MAX));
    // The rank of parts i and i + 1 joined, once i + 1 has absorbed i + 2.
    let joined = |parts: &[(usize, Rank)], i: usize| {
        if i + 3 < parts.len() {
            rank_of(&piece[parts[i].0..parts[i + 3].0])
        } else {
            Rank::MAX
        }
    };
    loop {
        let mut lowest = (Rank::MAX, 0);
        for (i, &(_, rank)) in parts[..parts.len() - 1].iter().enumerate() {
            if rank < lowest.0 {
                lowest = (rank, i);
            }
        }
        let (rank, i) = lowest;
        if rank == Rank::MAX {
            break;
        }
        if i > 0 {
            parts[i - 1].1 = joined(&parts, i - 1);
        }
        parts[i].1 = joined(&parts, i);
        parts.remove(i + 1);
    }
    parts.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Texts of every kind a prompt holds: prose, code, JSON, numbers, whitespace runs,
    /// contractions, scripts other than Latin, emoji, special-token markup, a long unbroken run.
    fn corpus() -> Vec<String> {
        let mut texts: Vec<String> = [
            "tiktoken is great!",
            "Hello, world! I'm here; you're there. We'll see, they've gone, she'd left.",
            "HELLO World's CAN'T Won'T  ",
            "fn main() {\n    println!(\"{}\", 1 + 2);\n}\n",
            r#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "n": 1}"#,
            "1234567890 3.14159 -42 1e10 0x1F 2026-12-03T10:00:00Z",
            "   leading and trailing   \n\n\n  \t\t mixed\r\n whitespace    ",
            "日本語のテキストと中文文本，还有한국어 텍스트.",
            "مرحبا بالعالم — Привет, мир! Γειά σου κόσμε.",
            "emoji 🎉🚀👩‍👩‍👧‍👦 and accents: café, naïve, façade, Zürich",
            "<|endoftext|> is typed by a user <|im_start|>system",
            "a\u{0301}b\u{200d}c\u{feff}d",
            "",
            " ",
            "\n",
        ]
        .map(str::to_owned)
        .to_vec();
        texts.push("QUJD".repeat(800));
        texts.push("x".repeat(3000));
        texts.push("The quick brown fox jumps over the lazy dog. ".repeat(40));
        texts.push(" ".repeat(500) + "end");
        texts
    }

    #[test]
    fn counts_as_tiktoken_does() {
        let pairs = [
            (
                Vocabulary::o200k_base(),
                tiktoken_rs::o200k_base_singleton(),
            ),
            (
                Vocabulary::cl100k_base(),
                tiktoken_rs::cl100k_base_singleton(),
            ),
        ];
        for (ours, theirs) in &pairs {
            assert!(ours.ranks.len() > 100_000, "{}", ours.ranks.len());
            for text in corpus() {
                assert_eq!(
                    ours.count(&text),
                    theirs.count_ordinary(&text),
                    "{:?}",
                    text.chars().take(60).collect::<String>()
                );
            }
        }
    }

    #[test]
    fn merges_the_lowest_ranked_pair_first() {
        let arena: &'static [u8] = b"abbcabc";
        let ranks: Ranks = [
            (&arena[0..1], 0),
            (&arena[1..2], 1),
            (&arena[3..4], 2),
            (&arena[2..4], 3), // "bc"
            (&arena[0..2], 4), // "ab"
            (&arena[4..7], 5), // "abc"
        ]
        .into_iter()
        .collect();
        // "abc": "bc" (3) before "ab" (4), then "a" + "bc" is "abc" (5).
        assert_eq!(byte_pair_count(b"abc", &ranks), 1);
        // "abab": "ab" twice, leftmost first.
        assert_eq!(byte_pair_count(b"abab", &ranks), 2);
        assert_eq!(byte_pair_count(b"zz", &ranks), 2);
        assert_eq!(byte_pair_count(b"q", &ranks), 1);
    }
}
