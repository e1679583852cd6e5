//! Streamed chat completion chunks → Messages API events, `message_start` … `message_stop`.

use std::collections::VecDeque;

use serde_json::{Value, json};

use super::answer::usage_json;
use super::stop_reason;
use crate::framing::named_event;
use crate::rewrite::{Chunk, Rewrite, rewrite};
use crate::shape::prefixed_id;
use crate::{ChatStream, ProviderError, StreamEvent, Usage};

/// The chunks of `chunks` as Anthropic events naming `model`. Each item's `data` is a whole
/// server-sent event (`event:` and `data:` lines), ready to relay; usage rides on the events as
/// the chunks reported it. The closing `message_delta` waits for the upstream's last chunk,
/// which carries the usage.
pub fn to_events(chunks: ChatStream, model: String) -> ChatStream {
    let events = Events {
        model,
        started: false,
        open: None,
        blocks: 0,
        stop_reason: None,
        usage: None,
        pending_usage: None,
        out: VecDeque::new(),
    };
    rewrite(chunks, events)
}

struct Events {
    model: String,
    started: bool,
    /// The content block being written.
    open: Option<Open>,
    /// Blocks started so far; the open one is the last.
    blocks: u64,
    stop_reason: Option<&'static str>,
    /// The latest usage the upstream reported.
    usage: Option<Usage>,
    /// Usage not yet attached to an event.
    pending_usage: Option<Usage>,
    out: VecDeque<StreamEvent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    /// A tool call, by its OpenAI `index`.
    Tool(u64),
}

// === impl Events ===

impl Rewrite for Events {
    fn chunk(&mut self, event: &StreamEvent) -> Result<(), ProviderError> {
        if let Some(usage) = event.usage {
            self.usage = Some(usage);
            self.pending_usage = Some(usage);
        }
        let chunk = Chunk::parse(event)?;
        if !self.started {
            self.start(&chunk.id);
        }
        let Some(choice) = chunk.choices.into_iter().next() else {
            return Ok(());
        };
        if let Some(delta) = choice.delta {
            if let Some(text) = delta.content.filter(|text| !text.is_empty()) {
                if self.open != Some(Open::Text) {
                    self.open_block(Open::Text, json!({ "type": "text", "text": "" }));
                }
                self.block_delta(json!({ "type": "text_delta", "text": text }));
            }
            for call in delta.tool_calls {
                let (name, arguments) = match call.function {
                    Some(function) => (function.name, function.arguments),
                    None => (None, None),
                };
                if let Some(id) = call.id {
                    let block = json!({ "type": "tool_use", "id": id,
                                        "name": name.unwrap_or_default(), "input": {} });
                    self.open_block(Open::Tool(call.index), block);
                }
                if let Some(arguments) = arguments.filter(|a| !a.is_empty())
                    && matches!(self.open, Some(Open::Tool(_)))
                {
                    let delta = json!({ "type": "input_json_delta", "partial_json": arguments });
                    self.block_delta(delta);
                }
            }
        }
        if let Some(reason) = choice.finish_reason {
            self.close_block();
            self.stop_reason = Some(stop_reason(Some(&reason)));
        }
        Ok(())
    }

    /// The upstream's stream is over: the closing events, with the final usage.
    fn finish(&mut self) {
        if !self.started {
            self.start("");
        }
        self.close_block();
        let delta = json!({
            "type": "message_delta",
            "delta": { "stop_reason": self.stop_reason.unwrap_or("end_turn"), "stop_sequence": null },
            "usage": usage_json(&self.usage.unwrap_or_default()),
        });
        self.push("message_delta", delta);
        self.push("message_stop", json!({ "type": "message_stop" }));
    }

    fn next(&mut self) -> Option<StreamEvent> {
        self.out.pop_front()
    }
}

impl Events {
    fn start(&mut self, upstream_id: &str) {
        self.started = true;
        let usage = self.usage.unwrap_or_default();
        let message = json!({
            "id": prefixed_id("msg_", upstream_id),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": usage_json(&Usage { completion_tokens: 0, ..usage }),
        });
        self.push(
            "message_start",
            json!({ "type": "message_start", "message": message }),
        );
    }

    fn open_block(&mut self, kind: Open, block: Value) {
        self.close_block();
        self.open = Some(kind);
        self.blocks += 1;
        let index = self.blocks - 1;
        let data = json!({ "type": "content_block_start", "index": index, "content_block": block });
        self.push("content_block_start", data);
    }

    fn block_delta(&mut self, delta: Value) {
        let index = self.blocks.saturating_sub(1);
        let data = json!({ "type": "content_block_delta", "index": index, "delta": delta });
        self.push("content_block_delta", data);
    }

    fn close_block(&mut self) {
        if self.open.take().is_some() {
            let index = self.blocks - 1;
            let data = json!({ "type": "content_block_stop", "index": index });
            self.push("content_block_stop", data);
        }
    }

    fn push(&mut self, name: &str, data: Value) {
        let bytes = named_event(name, data.to_string().as_bytes());
        let usage = self.pending_usage.take();
        self.out.push_back(StreamEvent::new(bytes, usage, false));
    }
}
