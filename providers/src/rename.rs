//! The top-level `"model"` of a pass-through answer, renamed to the name the client asked for.
//!
//! Pass-through bodies are forwarded as the upstream wrote them; parsing and re-serialising a
//! whole body (an embeddings list is megabytes of floats) to change one string is not worth it.
//! A small scan of the top-level object finds the bytes between the quotes of its `"model"`
//! value, and only those bytes change. The scan skips nested values and strings without looking
//! inside them, so a `"model"` in message content or in a nested object is never touched.
//! Anything it does not expect (not an object, no string `"model"`, a key written with escapes)
//! leaves the bytes as they came. The first top-level `"model"` is the one renamed.

use std::borrow::Cow;
use std::ops::Range;

use bytes::Bytes;

/// `body` naming `name` as its model. The same bytes, not copied, when it already does or has
/// no top-level `"model"` string.
pub(crate) fn rename_model(body: Bytes, name: &str) -> Bytes {
    match replacement(&body, name) {
        None => body,
        Some((range, value)) => {
            let mut out = Vec::with_capacity(body.len() - range.len() + value.len());
            out.extend_from_slice(&body[..range.start]);
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(&body[range.end..]);
            Bytes::from(out)
        }
    }
}

/// [`rename_model`] for the chunks of one stream, each held as a string and changed in place.
///
/// A stream's chunks start alike (`{"id":"chatcmpl-…","object":…,"created":…,"model":"`, the
/// same bytes every time), so the scan of the first chunk is remembered: a chunk whose bytes up
/// to the model's value are the remembered ones has its value there — the same bytes parse the
/// same way — and costs a comparison instead of a scan. Any other chunk is scanned.
#[derive(Debug, Default)]
pub(crate) struct StreamRenamer {
    /// The bytes before the model's value (its opening quote included) in the last chunk
    /// scanned; empty until a chunk had a top-level model.
    prefix: Vec<u8>,
}

impl StreamRenamer {
    pub(crate) fn rename(&mut self, doc: &mut String, name: &str) {
        let bytes = doc.as_bytes();
        let known = (!self.prefix.is_empty() && bytes.starts_with(&self.prefix))
            .then(|| string_end(bytes, self.prefix.len() - 1))
            .flatten()
            .map(|end| self.prefix.len()..end);
        let range = match known {
            Some(range) => range,
            None => {
                let Some(range) = model_value(bytes) else {
                    return;
                };
                // Into the same allocation: a stream whose chunks never start alike scans
                // each, and allocates nothing more for it.
                self.prefix.clear();
                self.prefix.extend_from_slice(&bytes[..range.start]);
                range
            }
        };
        let Some(value) = escape(name) else {
            return;
        };
        if bytes[range.clone()] != *value.as_bytes() {
            // Written afresh at its final size: `replace_range` would grow the string (a
            // reallocation) and then move its tail. The range lies between two ASCII quotes,
            // so both ends are character boundaries.
            let mut renamed = String::with_capacity(doc.len() - range.len() + value.len());
            renamed.push_str(&doc[..range.start]);
            renamed.push_str(&value);
            renamed.push_str(&doc[range.end..]);
            *doc = renamed;
        }
    }
}

/// Where the model's value is and what to write there, unless it already says `name`.
fn replacement<'a>(doc: &[u8], name: &'a str) -> Option<(Range<usize>, Cow<'a, str>)> {
    let range = model_value(doc)?;
    let value = escape(name)?;
    (doc[range.clone()] != *value.as_bytes()).then_some((range, value))
}

/// `name` as the inside of a JSON string: borrowed unless it needs escaping.
fn escape(name: &str) -> Option<Cow<'_, str>> {
    if !name.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        return Some(Cow::Borrowed(name));
    }
    let quoted = serde_json::to_string(name).ok()?;
    let inner = quoted.get(1..quoted.len().checked_sub(1)?)?;
    Some(Cow::Owned(inner.to_owned()))
}

/// The bytes between the quotes of the top-level `"model"` string of a JSON object.
fn model_value(doc: &[u8]) -> Option<Range<usize>> {
    let mut at = skip_ws(doc, 0);
    if doc.get(at) != Some(&b'{') {
        return None;
    }
    at = skip_ws(doc, at + 1);
    loop {
        if doc.get(at) != Some(&b'"') {
            return None; // `}` of an object without a model, or not JSON we understand
        }
        let key_end = string_end(doc, at)?;
        let is_model = &doc[at + 1..key_end] == b"model";
        at = skip_ws(doc, key_end + 1);
        if doc.get(at) != Some(&b':') {
            return None;
        }
        at = skip_ws(doc, at + 1);
        if is_model {
            if doc.get(at) != Some(&b'"') {
                return None; // null, a number: not a name to replace
            }
            return Some(at + 1..string_end(doc, at)?);
        }
        at = skip_ws(doc, skip_value(doc, at)?);
        if doc.get(at) != Some(&b',') {
            return None;
        }
        at = skip_ws(doc, at + 1);
    }
}

fn skip_ws(doc: &[u8], from: usize) -> usize {
    from + doc
        .get(from..)
        .unwrap_or_default()
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .count()
}

/// The index of the quote closing the string that opens at `open`. Multi-byte UTF-8 never
/// contains a byte below 0x80, so looking at single bytes is safe.
fn string_end(doc: &[u8], open: usize) -> Option<usize> {
    let mut at = open + 1;
    loop {
        at += doc
            .get(at..)?
            .iter()
            .position(|b| *b == b'"' || *b == b'\\')?;
        if doc[at] == b'"' {
            return Some(at);
        }
        at += 2; // a backslash and the character it escapes (`\uXXXX` has no quote to fear)
    }
}

/// The index just past the value that starts at `at`.
fn skip_value(doc: &[u8], at: usize) -> Option<usize> {
    match doc.get(at)? {
        b'"' => Some(string_end(doc, at)? + 1),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            while let Some(byte) = doc.get(i) {
                match byte {
                    b'"' => i = string_end(doc, i)?,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        // A number, `true`, `false` or `null`: up to the next delimiter.
        _ => {
            let len = doc[at..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(doc.len() - at);
            (len > 0).then_some(at + len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn renamed(doc: &str, name: &str) -> String {
        String::from_utf8(rename_model(Bytes::copy_from_slice(doc.as_bytes()), name).to_vec())
            .unwrap()
    }

    /// The renamed document is the original with only its top-level model changed, and the
    /// string version agrees with the bytes version.
    fn assert_renamed(doc: &str, name: &str) {
        let out = renamed(doc, name);
        let mut expected: Value = serde_json::from_str(doc).unwrap();
        expected["model"] = name.into();
        assert_eq!(
            serde_json::from_str::<Value>(&out).unwrap(),
            expected,
            "{out}"
        );
        // Twice through one renamer: scanned, then found by its prefix.
        let mut renamer = StreamRenamer::default();
        for _ in 0..2 {
            let mut in_place = doc.to_owned();
            renamer.rename(&mut in_place, name);
            assert_eq!(in_place, out);
        }
    }

    fn assert_unchanged(doc: &str) {
        let body = Bytes::copy_from_slice(doc.as_bytes());
        let out = rename_model(body.clone(), "alias");
        assert_eq!(out, body);
        assert_eq!(out.as_ptr(), body.as_ptr(), "not copied");
        let mut in_place = doc.to_owned();
        StreamRenamer::default().rename(&mut in_place, "alias");
        assert_eq!(in_place, doc);
    }

    /// Chunks of one stream that start alike are renamed by the remembered prefix; one that
    /// does not (another `id`, a nested `"model"` where the last one had the top-level one) is
    /// scanned again, and only its top-level model changes.
    #[test]
    fn a_stream_renamer_finds_the_model_again_only_where_the_bytes_before_it_are_the_same() {
        let mut renamer = StreamRenamer::default();
        let mut first =
            r#"{"id":"c1","model":"up","choices":[{"delta":{"content":"a"}}]}"#.to_owned();
        renamer.rename(&mut first, "alias");
        assert_eq!(
            first,
            r#"{"id":"c1","model":"alias","choices":[{"delta":{"content":"a"}}]}"#
        );
        let mut same =
            r#"{"id":"c1","model":"up","choices":[{"delta":{"content":"b"}}]}"#.to_owned();
        renamer.rename(&mut same, "alias");
        assert_eq!(
            same,
            r#"{"id":"c1","model":"alias","choices":[{"delta":{"content":"b"}}]}"#
        );
        let mut other = r#"{"id":"c2","x":{"model":"up"},"model":"up"}"#.to_owned();
        renamer.rename(&mut other, "alias");
        assert_eq!(other, r#"{"id":"c2","x":{"model":"up"},"model":"alias"}"#);
        // The remembered prefix is now the second layout's; the first still renames.
        let mut again = r#"{"id":"c1","model":"up","choices":[]}"#.to_owned();
        renamer.rename(&mut again, "alias");
        assert_eq!(again, r#"{"id":"c1","model":"alias","choices":[]}"#);
    }

    #[test]
    fn the_top_level_model_is_renamed_and_nothing_else_changes() {
        let doc = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-2024-08-06","choices":[]}"#;
        assert_eq!(
            renamed(doc, "alias"),
            doc.replace("gpt-4o-2024-08-06", "alias")
        );
        assert_renamed(doc, "a-much-longer-alias-than-the-upstream-name");
        assert_renamed(doc, "");
    }

    #[test]
    fn whitespace_around_keys_colons_and_commas_is_allowed() {
        for doc in [
            r#"{ "model" : "up" }"#,
            "\n{\n\t\"id\" :\r\n 3 ,\n  \"model\":\t\"up\"\n}\n",
            r#"  {"a" : [ 1 , 2 ] , "b" : { } , "model"  :  "up"}"#,
        ] {
            assert_renamed(doc, "alias");
        }
    }

    #[test]
    fn escapes_in_the_value_and_elsewhere_are_skipped_correctly() {
        assert_renamed(r#"{"model":"a\"b\\c\u0041"}"#, "alias");
        assert_renamed(r#"{"x":"ends in a backslash \\","model":"up"}"#, "alias");
        assert_renamed(r#"{"x":"\\\"model\\\": \\\"no\\\"","model":"up"}"#, "alias");
        assert_renamed(r#"{"x":"héllo \u00e9 😀 ∑","model":"ünïcode"}"#, "alias");
    }

    #[test]
    fn a_name_that_needs_escaping_is_escaped() {
        let doc = r#"{"model":"up","n":1}"#;
        assert_renamed(doc, "a\"quote\\and\nnewline");
        assert_eq!(renamed(doc, "a\"b"), r#"{"model":"a\"b","n":1}"#);
    }

    #[test]
    fn a_model_inside_content_or_nested_objects_is_left_alone() {
        let doc = r#"{"id":"x","choices":[{"message":{"content":"{\"model\":\"evil\"}","model":"nested"}}],"meta":{"model":"deep"},"model":"top"}"#;
        let out: Value = serde_json::from_str(&renamed(doc, "alias")).unwrap();
        assert_eq!(out["model"], "alias");
        assert_eq!(out["choices"][0]["message"]["model"], "nested");
        assert_eq!(
            out["choices"][0]["message"]["content"],
            "{\"model\":\"evil\"}"
        );
        assert_eq!(out["meta"]["model"], "deep");
        assert_renamed(doc, "alias");
        // A string value that looks like a key, before the real key.
        assert_renamed(r#"{"note":"\"model\": \"x\"","model":"up"}"#, "alias");
        assert_renamed(
            r#"{"model_version":"v","models":["m"],"model":"up"}"#,
            "alias",
        );
    }

    #[test]
    fn only_the_first_top_level_model_is_renamed() {
        assert_eq!(
            renamed(r#"{"model":"a","model":"b"}"#, "alias"),
            r#"{"model":"alias","model":"b"}"#
        );
    }

    #[test]
    fn documents_without_a_string_model_are_left_as_they_came() {
        for doc in [
            r#"{}"#,
            r#"{"id":"x","choices":[{"model":"nested"}]}"#,
            r#"{"model":null,"id":"x"}"#,
            r#"{"model":3}"#,
            r#"{"mod\u0065l":"escaped key"}"#,
            r#"[{"model":"in an array"}]"#,
            r#""model""#,
            r#"{"model":"unterminated"#,
            r#"{"a":[1,2"#,
            r#"{"a" 1,"model":"up"}"#,
            r#"{"a":1 "model":"up"}"#,
            "",
            "not json",
            "[DONE]",
        ] {
            assert_unchanged(doc);
        }
    }

    #[test]
    fn the_same_name_costs_no_copy() {
        assert_unchanged(r#"{"id":"x","model":"alias","choices":[]}"#);
        assert_unchanged(r#"{ "model" : "alias" }"#);
    }

    #[test]
    fn an_embeddings_list_is_renamed_after_its_vectors() {
        let doc = r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,-2.5e-3,1E+2]},{"object":"embedding","index":1,"embedding":"AACAPw=="}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}"#;
        assert_renamed(doc, "alias");
    }
}
