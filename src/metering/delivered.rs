//! The text a client received, read from the JSON it was sent: what a tokenizer counts when the
//! upstream reported no usage (or the client left before it could). One reader for every
//! dialect: OpenAI's `choices[]` (chunks and answers, chat's and legacy completions'), Anthropic's `content[]` (a message) and
//! `delta`/`content_block` (its events), a Responses `output[]` (a response) and `delta` (its
//! text and arguments events).

use std::borrow::Cow;

use bytes::Bytes;
use serde::Deserialize;

/// Unread pieces kept up to this size; past it they are read and their text kept instead, so a
/// long stream holds about its text, not every chunk's JSON.
const UNREAD_BYTES: usize = 64 * 1024;

/// What a client received. Kept as it was sent (a reference to the same bytes, no copy) and
/// read only when it must be counted: the upstream almost always reports usage, and then no
/// chunk is ever parsed a second time.
#[derive(Debug, Default)]
pub struct Delivered {
    unread: Vec<Piece>,
    unread_bytes: usize,
    /// The text of pieces read already.
    text: String,
}

#[derive(Debug)]
enum Piece {
    /// A JSON chunk or answer.
    Json(Bytes),
    /// A server-sent event as framed (`event:` and `data:` lines).
    Event(Bytes),
}

impl Delivered {
    pub fn json(&mut self, json: &Bytes) {
        self.keep(Piece::Json(json.clone()), json.len());
    }

    pub fn event(&mut self, event: &Bytes) {
        self.keep(Piece::Event(event.clone()), event.len());
    }

    fn keep(&mut self, piece: Piece, len: usize) {
        self.unread.push(piece);
        self.unread_bytes += len;
        if self.unread_bytes > UNREAD_BYTES {
            for piece in self.unread.drain(..) {
                piece.read_into(&mut self.text);
            }
            self.unread_bytes = 0;
        }
    }

    /// Whether anything reached the client.
    pub fn is_empty(&self) -> bool {
        self.unread.is_empty() && self.text.is_empty()
    }

    /// The text received, read now if it was not yet.
    pub fn text(&self) -> Cow<'_, str> {
        if self.unread.is_empty() {
            return Cow::Borrowed(&self.text);
        }
        let mut text = self.text.clone();
        for piece in &self.unread {
            piece.read_into(&mut text);
        }
        Cow::Owned(text)
    }
}

impl Piece {
    fn read_into(&self, out: &mut String) {
        match self {
            Self::Json(json) => append(out, json),
            Self::Event(event) => append_event(out, event),
        }
    }
}

#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(default, borrow)]
    choices: Vec<Choice<'a>>,
    /// An Anthropic message's blocks.
    #[serde(default, borrow)]
    content: Option<Vec<Block<'a>>>,
    /// An Anthropic `content_block_start`.
    #[serde(default, borrow)]
    content_block: Option<Block<'a>>,
    /// An Anthropic `content_block_delta`'s delta, or a Responses event's text delta.
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
    /// A Responses `response`'s output items.
    #[serde(default, borrow)]
    output: Vec<Item<'a>>,
}

/// The text-bearing parts of a Responses output item: a message's parts, a function call.
#[derive(Deserialize)]
struct Item<'a> {
    #[serde(default, borrow)]
    content: Vec<Block<'a>>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    arguments: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Delta<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Block(#[serde(borrow)] BlockDelta<'a>),
}

/// The text-bearing parts of an Anthropic content block or block delta.
#[derive(Deserialize)]
struct Block<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    thinking: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default)]
    input: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct BlockDelta<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    thinking: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    partial_json: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    /// A legacy completion's (or its chunk's) text.
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    delta: Option<Message<'a>>,
    #[serde(default, borrow)]
    message: Option<Message<'a>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(default, borrow)]
    content: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Vec<ToolCall<'a>>,
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(default, borrow)]
    function: Option<Function<'a>>,
}

#[derive(Deserialize)]
struct Function<'a> {
    #[serde(default, borrow)]
    name: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    arguments: Option<std::borrow::Cow<'a, str>>,
}

/// Appends the completion text of a chunk (`choices[].delta`) or of a whole answer
/// (`choices[].message`) to `out`. Anything unreadable adds nothing.
fn append(out: &mut String, json: &[u8]) {
    let Ok(answer) = serde_json::from_slice::<Answer<'_>>(json) else {
        return;
    };
    for block in answer
        .content
        .into_iter()
        .flatten()
        .chain(answer.content_block)
    {
        for part in [block.text, block.thinking, block.name]
            .into_iter()
            .flatten()
        {
            out.push_str(&part);
        }
        // A tool call's input, when it comes whole (a message, not a stream).
        if let Some(input) = block
            .input
            .filter(|input| input.as_object().is_some_and(|o| !o.is_empty()))
        {
            out.push_str(&input.to_string());
        }
    }
    for item in answer.output {
        let parts = item.content.into_iter().filter_map(|part| part.text);
        for part in parts.chain(item.name).chain(item.arguments) {
            out.push_str(&part);
        }
    }
    match answer.delta {
        Some(Delta::Text(text)) => out.push_str(&text),
        Some(Delta::Block(delta)) => {
            for part in [delta.text, delta.thinking, delta.partial_json]
                .into_iter()
                .flatten()
            {
                out.push_str(&part);
            }
        }
        None => {}
    }
    for choice in answer.choices {
        if let Some(text) = choice.text {
            out.push_str(&text);
        }
        for message in [choice.delta, choice.message].into_iter().flatten() {
            if let Some(content) = message.content {
                out.push_str(&content);
            }
            for call in message.tool_calls {
                if let Some(function) = call.function {
                    for part in [function.name, function.arguments].into_iter().flatten() {
                        out.push_str(&part);
                    }
                }
            }
        }
    }
}

/// The same for one server-sent event as the client received it (`event:` and `data:` lines).
fn append_event(out: &mut String, event: &[u8]) {
    for line in event.split(|byte| *byte == b'\n') {
        if let Some(data) = line.strip_prefix(b"data:") {
            append(out, data.trim_ascii_start());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_chunks_answers_and_tool_calls() {
        let mut text = String::new();
        append(
            &mut text,
            br#"{"choices":[{"index":0,"delta":{"content":"Hel"}}]}"#,
        );
        append(
            &mut text,
            br#"{"choices":[{"index":0,"delta":{"content":"lo \"x\""}}]}"#,
        );
        append(&mut text, br#"{"choices":[],"usage":{"total_tokens":3}}"#);
        append(&mut text, br#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":"{\"a\":1}"}}]}}]}"#);
        append(
            &mut text,
            br#"{"choices":[{"message":{"role":"assistant","content":"!"}}]}"#,
        );
        append(&mut text, b"not json");
        append(
            &mut text,
            br#"{"object":"text_completion","choices":[{"text":"?","index":0}]}"#,
        );
        assert_eq!(text, "Hello \"x\"f{\"a\":1}!?");
    }

    #[test]
    fn reads_anthropic_messages_and_events() {
        let mut text = String::new();
        append(
            &mut text,
            br#"{"type":"message","content":[{"type":"text","text":"Hi "},{"type":"tool_use","id":"t","name":"f","input":{"a":1}}]}"#,
        );
        assert_eq!(text, r#"Hi f{"a":1}"#);
        let mut text = String::new();
        for event in [
            &b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"content\":[]}}\n\n"[..],
            b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n",
            b"event: content_block_delta\ndata: {\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n",
            b"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"lo\"}\n\n",
        ] {
            append_event(&mut text, event);
        }
        assert_eq!(text, "Hel{}lo");
    }

    #[test]
    fn reads_a_responses_answer() {
        let mut text = String::new();
        append(
            &mut text,
            br#"{"object":"response","output":[{"type":"reasoning","summary":[]},{"type":"message","content":[{"type":"output_text","text":"Hi ","annotations":[]}]},{"type":"function_call","call_id":"c","name":"f","arguments":"{\"a\":1}"}]}"#,
        );
        assert_eq!(text, r#"Hi f{"a":1}"#);
    }
}
