//! Words as `logflux search` and the producers' blind tokens have them: the tokeniser is
//! `logflux_crypto::words` itself (no I/O: the crate stays pure), so pruning cannot drift
//! from what producers index.

pub use logflux_crypto::words;
pub(crate) use logflux_crypto::{MAX_WORD_BYTES, is_word_char};

/// A word as its token is computed: lower-cased as `logflux_crypto` does.
pub(crate) fn token_form(word: &str) -> String {
    if word.is_ascii() {
        word.to_ascii_lowercase()
    } else {
        word.to_lowercase()
    }
}

/// The words of a `|=` needle that any line containing the needle has as whole words: those
/// that neither touch the needle's start nor its end (a word at the start of `disk full` may
/// be the end of `sdisk` in the line), unless the needle begins or ends with a separator.
pub(crate) fn exact_words(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in needle.char_indices() {
        if is_word_char(c) {
            if start.is_none() {
                start = Some(i);
            }
        } else if let Some(s) = start.take()
            && s > 0
        {
            out.push(token_form(&needle[s..i]));
        }
    }
    // A word running to the needle's end is never exact.
    out.retain(|w| w.len() <= MAX_WORD_BYTES);
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_on_non_word_characters() {
        let w: Vec<_> = words("user_id=42 GET /api/v1 — Größe: ÉTÉ, 東京!").collect();
        assert_eq!(
            w,
            ["user_id", "42", "GET", "api", "v1", "Größe", "ÉTÉ", "東京"]
        );
        assert_eq!(words("").count(), 0);
        assert_eq!(words("  ...  ").count(), 0);
        assert_eq!(words("tail").collect::<Vec<_>>(), ["tail"]);
    }

    #[test]
    fn only_inner_words_of_a_needle_are_exact() {
        assert!(exact_words("disk").is_empty());
        assert!(exact_words("disk full").is_empty());
        assert_eq!(exact_words("disk full on"), ["full"]);
        assert_eq!(exact_words(" disk "), ["disk"]);
        assert_eq!(exact_words(" Disk"), Vec::<String>::new());
        assert_eq!(exact_words("a 10.10.34.11 b"), ["10", "11", "34"]);
        assert_eq!(exact_words("(GRÖSSE)"), ["grösse"]);
        let long = format!(" {} ", "a".repeat(65));
        assert!(exact_words(&long).is_empty());
    }
}
