//! Streamed chat completion chunks → Responses API events, `response.created` …
//! `response.completed`.

use std::collections::VecDeque;

use serde_json::{Value, json};

use super::ResponsesRequest;
use super::answer::{Echo, final_event, function_call_item, message_item, output_text};
use crate::framing::named_event;
use crate::rewrite::{Chunk, Rewrite, rewrite};
use crate::shape::{fresh_id, now_secs, prefixed_id};
use crate::{ChatStream, ProviderError, StreamEvent, Usage};

/// The chunks of `chunks` as Responses events for `req` (naming the model it names). Each
/// item's `data` is a whole server-sent event (`event:` and `data:` lines) with its
/// `sequence_number`; usage rides on the events as the chunks reported it. The closing
/// `response.completed` waits for the upstream's last chunk, which carries the usage.
pub fn to_events(chunks: ChatStream, req: &ResponsesRequest) -> ChatStream {
    let events = Events {
        echo: Echo::of(req),
        id: String::new(),
        created_at: now_secs(),
        started: false,
        sequence: 0,
        output: Vec::new(),
        open: None,
        finish: None,
        usage: None,
        pending_usage: None,
        out: VecDeque::new(),
    };
    rewrite(chunks, events)
}

struct Events {
    echo: Echo,
    /// The response's id, from the first chunk's.
    id: String,
    created_at: u64,
    started: bool,
    /// The next event's `sequence_number`.
    sequence: u64,
    /// The output items written so far, the open one excepted.
    output: Vec<Value>,
    /// The item being written.
    open: Option<Item>,
    finish: Option<String>,
    /// The latest usage the upstream reported.
    usage: Option<Usage>,
    /// Usage not yet attached to an event.
    pending_usage: Option<Usage>,
    out: VecDeque<StreamEvent>,
}

enum Item {
    Text {
        id: String,
        text: String,
    },
    Call {
        call_id: String,
        name: String,
        arguments: String,
    },
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
                self.text_delta(&text);
            }
            for call in delta.tool_calls {
                let (name, arguments) = match call.function {
                    Some(function) => (function.name, function.arguments),
                    None => (None, None),
                };
                if let Some(call_id) = call.id {
                    self.open_call(&call_id, &name.unwrap_or_default());
                }
                if let Some(arguments) = arguments.filter(|a| !a.is_empty()) {
                    self.arguments_delta(&arguments);
                }
            }
        }
        if let Some(reason) = choice.finish_reason {
            self.close();
            self.finish = Some(reason.into_owned());
        }
        Ok(())
    }

    /// The upstream's stream is over: the final `response`, with the output and the usage.
    fn finish(&mut self) {
        if !self.started {
            self.start("");
        }
        self.close();
        let finish = self.finish.as_deref();
        let response = self.echo.response(
            &self.id,
            self.created_at,
            finish,
            std::mem::take(&mut self.output),
            self.usage.as_ref(),
        );
        self.push(final_event(finish), json!({ "response": response }));
    }

    fn next(&mut self) -> Option<StreamEvent> {
        self.out.pop_front()
    }
}

impl Events {
    fn start(&mut self, upstream_id: &str) {
        self.started = true;
        self.id = prefixed_id("resp_", upstream_id);
        let response = self.echo.in_progress(&self.id, self.created_at);
        self.push("response.created", json!({ "response": response }));
        self.push("response.in_progress", json!({ "response": response }));
    }

    fn output_index(&self) -> usize {
        self.output.len()
    }

    fn text_delta(&mut self, delta: &str) {
        let id = match &mut self.open {
            Some(Item::Text { id, text }) => {
                text.push_str(delta);
                id.clone()
            }
            _ => {
                self.close();
                let id = fresh_id("msg_");
                let item = message_item(&id, "in_progress", Vec::new());
                self.push(
                    "response.output_item.added",
                    json!({ "output_index": self.output_index(), "item": item }),
                );
                self.push(
                    "response.content_part.added",
                    json!({ "item_id": id, "output_index": self.output_index(),
                            "content_index": 0, "part": output_text("") }),
                );
                self.open = Some(Item::Text {
                    id: id.clone(),
                    text: delta.to_owned(),
                });
                id
            }
        };
        self.push(
            "response.output_text.delta",
            json!({ "item_id": id, "output_index": self.output_index(), "content_index": 0,
                    "delta": delta, "logprobs": [] }),
        );
    }

    fn open_call(&mut self, call_id: &str, name: &str) {
        self.close();
        let item = function_call_item(call_id, name, "", "in_progress");
        self.push(
            "response.output_item.added",
            json!({ "output_index": self.output_index(), "item": item }),
        );
        self.open = Some(Item::Call {
            call_id: call_id.to_owned(),
            name: name.to_owned(),
            arguments: String::new(),
        });
    }

    /// Arguments of the open call; a delta with no call open (an upstream that never named
    /// one) has nowhere to go.
    fn arguments_delta(&mut self, delta: &str) {
        let Some(Item::Call {
            call_id, arguments, ..
        }) = &mut self.open
        else {
            return;
        };
        arguments.push_str(delta);
        let item_id = prefixed_id("fc_", call_id);
        self.push(
            "response.function_call_arguments.delta",
            json!({ "item_id": item_id, "output_index": self.output_index(), "delta": delta }),
        );
    }

    /// Ends the open item: its `….done` events, and it joins the output.
    fn close(&mut self) {
        let index = self.output_index();
        let item = match self.open.take() {
            None => return,
            Some(Item::Text { id, text }) => {
                self.push(
                    "response.output_text.done",
                    json!({ "item_id": id, "output_index": index, "content_index": 0,
                            "text": text, "logprobs": [] }),
                );
                let part = output_text(&text);
                self.push(
                    "response.content_part.done",
                    json!({ "item_id": id, "output_index": index, "content_index": 0,
                            "part": part }),
                );
                message_item(&id, "completed", vec![part])
            }
            Some(Item::Call {
                call_id,
                name,
                arguments,
            }) => {
                self.push(
                    "response.function_call_arguments.done",
                    json!({ "item_id": prefixed_id("fc_", &call_id), "output_index": index,
                            "name": name, "arguments": arguments }),
                );
                function_call_item(&call_id, &name, &arguments, "completed")
            }
        };
        self.push(
            "response.output_item.done",
            json!({ "output_index": index, "item": item }),
        );
        self.output.push(item);
    }

    /// Queues the event `name` with its `type` and `sequence_number`.
    fn push(&mut self, name: &str, mut data: Value) {
        data["type"] = Value::from(name);
        data["sequence_number"] = Value::from(self.sequence);
        self.sequence += 1;
        let bytes = named_event(name, data.to_string().as_bytes());
        let usage = self.pending_usage.take();
        self.out.push_back(StreamEvent::new(bytes, usage, false));
    }
}
