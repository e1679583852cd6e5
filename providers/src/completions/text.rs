//! A chat completion, whole or streamed, as legacy `text_completion`s.

use std::collections::VecDeque;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::rewrite::{Chunk, Completion, Rewrite, rewrite};
use crate::shape::{now_secs, prefixed_id};
use crate::{ChatStream, ProviderError, StreamEvent, Usage};

/// Every choice of a `chat.completion` as a `text_completion` naming `model` (the alias the
/// client asked for).
pub fn from_chat(body: &[u8], model: &str, usage: Option<&Usage>) -> Result<Bytes, ProviderError> {
    let completion = Completion::parse(body)?;
    let choices: Vec<Value> = completion
        .choices
        .into_iter()
        .map(|choice| {
            choice_json(
                choice.index,
                choice.message.content.as_deref().unwrap_or_default(),
                choice.finish_reason.as_deref(),
            )
        })
        .collect();
    let mut doc = document(&completion.id, model, now_secs(), choices);
    if let Some(usage) = usage {
        doc["usage"] = usage.to_openai_json();
    }
    Ok(Bytes::from(doc.to_string()))
}

/// The chunks of `chunks` as `text_completion` chunks naming `model`, without `data:` framing
/// (the gateway frames them as chat's). The usage chunk stays a usage chunk.
pub fn to_events(chunks: ChatStream, model: String) -> ChatStream {
    let text = Text {
        model,
        created: now_secs(),
        pending_usage: None,
        out: VecDeque::new(),
    };
    rewrite(chunks, text)
}

fn choice_json(index: u64, text: &str, finish_reason: Option<&str>) -> Value {
    json!({ "text": text, "index": index, "logprobs": null, "finish_reason": finish_reason })
}

fn document(upstream_id: &str, model: &str, created: u64, choices: Vec<Value>) -> Value {
    json!({
        "id": prefixed_id("cmpl-", upstream_id),
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": choices,
    })
}

struct Text {
    model: String,
    created: u64,
    /// Usage not yet attached to a chunk.
    pending_usage: Option<Usage>,
    out: VecDeque<StreamEvent>,
}

impl Rewrite for Text {
    fn chunk(&mut self, event: &StreamEvent) -> Result<(), ProviderError> {
        if let Some(usage) = event.usage {
            self.pending_usage = Some(usage);
        }
        let chunk = Chunk::parse(event)?;
        let choices: Vec<Value> = chunk
            .choices
            .into_iter()
            .filter_map(|choice| {
                let text = choice.delta.and_then(|delta| delta.content);
                let text = text.filter(|text| !text.is_empty());
                // A chunk with only a role, or nothing, has nothing to say in this dialect.
                (text.is_some() || choice.finish_reason.is_some()).then(|| {
                    choice_json(
                        choice.index,
                        text.as_deref().unwrap_or_default(),
                        choice.finish_reason.as_deref(),
                    )
                })
            })
            .collect();
        if !choices.is_empty() {
            let doc = document(&chunk.id, &self.model, self.created, choices);
            let usage = self.pending_usage.take();
            self.push(doc, usage, false);
        } else if event.usage_only
            && let Some(usage) = self.pending_usage.take()
        {
            let mut doc = document(&chunk.id, &self.model, self.created, Vec::new());
            doc["usage"] = usage.to_openai_json();
            self.push(doc, Some(usage), true);
        }
        Ok(())
    }

    /// Usage the upstream reported on a chunk that said nothing goes out on a chunk of its own.
    fn finish(&mut self) {
        if let Some(usage) = self.pending_usage.take() {
            let mut doc = document("", &self.model, self.created, Vec::new());
            doc["usage"] = usage.to_openai_json();
            self.push(doc, Some(usage), true);
        }
    }

    fn next(&mut self) -> Option<StreamEvent> {
        self.out.pop_front()
    }
}

impl Text {
    fn push(&mut self, doc: Value, usage: Option<Usage>, usage_only: bool) {
        let data = Bytes::from(doc.to_string());
        self.out
            .push_back(StreamEvent::new(data, usage, usage_only));
    }
}
