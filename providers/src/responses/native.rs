//! The Responses API spoken natively, by OpenAI and Azure (and compatible servers that serve
//! it): the request goes as the client sent it with the model renamed — `previous_response_id`,
//! `store`, hosted tools and fields this crate has never heard of included — and the answer
//! comes back as sent. Only the usage is read on the way, and the model named as the client
//! asked.
//!
//! The whole answer's top-level `model` is renamed in place; the few events that carry the
//! `response` object (created, in progress, completed) are parsed and written again.

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ResponsesRequest;
use super::answer::WireUsage;
use crate::client::Response;
use crate::framing::{self, Flow, SseEvent, SseFraming, Translate, named_event};
use crate::http::read_body;
use crate::openai::Endpoint;
use crate::rename::rename_model;
use crate::{ChatResponse, ChatStream, ProviderError, StreamEvent, Usage};

/// The request as sent upstream: the client's, borrowed, with the model replaced.
#[derive(Serialize)]
struct Wire<'a> {
    model: &'a str,
    #[serde(skip_serializing_if = "Value::is_null")]
    input: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
    #[serde(flatten)]
    extra: &'a Map<String, Value>,
}

/// `POST …/responses`, whole answer.
pub(crate) async fn responses(
    endpoint: Endpoint<'_>,
    req: &ResponsesRequest,
    model: &str,
) -> Result<ChatResponse, ProviderError> {
    let resp = send(&endpoint, req, model, req.stream).await?;
    let body = read_body(resp).await?;
    let answer: Answer =
        serde_json::from_slice(&body).map_err(|e| ProviderError::decode("response", e))?;
    Ok(ChatResponse {
        body: rename_model(body, &req.model),
        usage: answer.usage.map(Usage::from),
    })
}

/// `POST …/responses` with `stream: true`: the upstream's events, one by one.
pub(crate) async fn responses_stream(
    endpoint: Endpoint<'_>,
    req: &ResponsesRequest,
    model: &str,
) -> Result<ChatStream, ProviderError> {
    let resp = send(&endpoint, req, model, Some(true)).await?;
    let idle = endpoint.upstream.settings().idle_timeout;
    let relay = Relayed {
        model: req.model.clone(),
        finished: false,
    };
    Ok(framing::translate(
        framing::body_chunks(resp, idle),
        SseFraming::default(),
        relay,
    ))
}

async fn send(
    endpoint: &Endpoint<'_>,
    req: &ResponsesRequest,
    model: &str,
    stream: Option<bool>,
) -> Result<Response, ProviderError> {
    let wire = Wire {
        model,
        input: &req.input,
        max_output_tokens: req.max_output_tokens,
        stream,
        extra: &req.extra,
    };
    let Endpoint { upstream, url } = endpoint;
    upstream.post_json(url, &[], &wire).await
}

/// What a whole answer reports; the rest is never parsed.
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    usage: Option<WireUsage>,
}

/// The usage of a `response` object, when it reports one.
fn usage_of(response: &Value) -> Result<Option<Usage>, ProviderError> {
    match response.get("usage") {
        None | Some(Value::Null) => Ok(None),
        Some(usage) => WireUsage::deserialize(usage)
            .map(|usage| Some(usage.into()))
            .map_err(|e| ProviderError::decode("Responses usage", e)),
    }
}

/// Names `model` (the client's) in a `response` object.
fn rename(response: &mut Value, model: &str) {
    if let Some(response) = response.as_object_mut()
        && response.contains_key("model")
    {
        response.insert("model".into(), Value::from(model));
    }
}

/// Relays the Responses events unchanged but for the model's name, reading the usage of the
/// final `response`.
struct Relayed {
    /// The model the client asked for.
    model: String,
    /// Whether the final event (completed, incomplete or failed) came.
    finished: bool,
}

#[derive(Deserialize)]
struct Peek {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: Option<String>,
    /// Present on the events that carry the whole `response` (created, in progress, final),
    /// which are parsed again to be written with the client's model.
    #[serde(default)]
    response: Option<IgnoredAny>,
}

impl Translate<SseEvent> for Relayed {
    fn frame(&mut self, ev: SseEvent, out: &mut Vec<StreamEvent>) -> Result<Flow, ProviderError> {
        let SseEvent { event, data } = ev;
        if data.trim() == "[DONE]" {
            return Ok(Flow::Done);
        }
        if data.trim().is_empty() {
            return Ok(Flow::Continue);
        }
        let peek: Peek =
            serde_json::from_str(&data).map_err(|e| ProviderError::decode("Responses event", e))?;
        // Some servers write only `data:` lines; the type is in the data too.
        let name = if event.is_empty() { peek.kind } else { event };
        if name == "error" {
            let message = peek.message.unwrap_or_else(|| data.clone());
            return Err(ProviderError::StreamError(crate::error::truncate(
                &message, 300,
            )));
        }
        let mut usage = None;
        let data = match peek.response {
            Some(_) => {
                let mut doc: Value = serde_json::from_str(&data)
                    .map_err(|e| ProviderError::decode("Responses event", e))?;
                if let Some(response) = doc.get_mut("response") {
                    usage = usage_of(response)?;
                    rename(response, &self.model);
                }
                doc.to_string()
            }
            None => data,
        };
        let last = matches!(
            name.as_str(),
            "response.completed" | "response.incomplete" | "response.failed"
        );
        out.push(StreamEvent::new(
            named_event(&name, data.as_bytes()),
            usage,
            false,
        ));
        if last {
            self.finished = true;
            return Ok(Flow::Done);
        }
        Ok(Flow::Continue)
    }

    fn end(&mut self, _: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        if self.finished {
            Ok(())
        } else {
            Err(ProviderError::InvalidResponse(
                "Responses stream ended before its final response".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn relay() -> Relayed {
        Relayed {
            model: "alias".into(),
            finished: false,
        }
    }

    fn frame(relay: &mut Relayed, event: &str, data: &Value) -> (Flow, Vec<StreamEvent>) {
        let mut out = Vec::new();
        let ev = SseEvent {
            event: event.into(),
            data: data.to_string(),
        };
        (relay.frame(ev, &mut out).unwrap(), out)
    }

    #[test]
    fn events_go_through_naming_the_alias_and_the_final_one_carries_the_usage() {
        let mut relay = relay();
        let created = json!({"type": "response.created", "sequence_number": 0,
            "response": {"id": "resp_1", "object": "response", "model": "gpt-real",
                         "status": "in_progress", "output": [], "usage": null}});
        let (flow, out) = frame(&mut relay, "response.created", &created);
        assert_eq!(flow, Flow::Continue);
        let text = String::from_utf8(out[0].data.to_vec()).unwrap();
        assert!(text.starts_with("event: response.created\ndata: "));
        let doc: Value =
            serde_json::from_str(text.trim_end().split_once("data: ").unwrap().1).unwrap();
        assert_eq!(doc["response"]["model"], "alias");
        assert_eq!(out[0].usage, None);

        // An event without a `response` goes through byte for byte; a `data:`-only one is named
        // by its type.
        let delta =
            r#"{"type":"response.output_text.delta","delta":"Hi","model":"x","sequence_number":1}"#;
        let mut out = Vec::new();
        let ev = SseEvent {
            event: String::new(),
            data: delta.into(),
        };
        relay.frame(ev, &mut out).unwrap();
        assert_eq!(
            out[0].data,
            format!("event: response.output_text.delta\ndata: {delta}\n\n").as_bytes()
        );

        let completed = json!({"type": "response.completed", "sequence_number": 2,
            "response": {"id": "resp_1", "model": "gpt-real", "status": "completed",
                "usage": {"input_tokens": 20, "input_tokens_details": {"cached_tokens": 8},
                          "output_tokens": 9, "output_tokens_details": {"reasoning_tokens": 4},
                          "total_tokens": 29}}});
        let (flow, out) = frame(&mut relay, "response.completed", &completed);
        assert_eq!(flow, Flow::Done);
        let usage = out[0].usage.unwrap();
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.cached_tokens,
                usage.completion_tokens,
                usage.reasoning_tokens,
                usage.total_tokens
            ),
            (20, 8, 9, 4, 29)
        );
        assert!(relay.end(&mut Vec::new()).is_ok());
    }

    #[test]
    fn a_stream_without_its_final_response_was_cut_short() {
        let mut relay = relay();
        let delta = json!({"type": "response.output_text.delta", "delta": "Hi"});
        frame(&mut relay, "response.output_text.delta", &delta);
        assert!(relay.end(&mut Vec::new()).is_err());
    }

    #[test]
    fn an_error_event_is_the_upstreams_failure() {
        let mut relay = relay();
        let error = json!({"type": "error", "code": "server_error", "message": "overloaded",
                           "sequence_number": 3});
        let ev = SseEvent {
            event: "error".into(),
            data: error.to_string(),
        };
        let failed = relay.frame(ev, &mut Vec::new()).unwrap_err();
        assert!(failed.to_string().contains("overloaded"), "{failed}");
    }

    #[test]
    fn a_whole_answer_names_the_alias_and_reports_its_usage() {
        let mut doc = json!({"id": "resp_1", "model": "gpt-real", "output": [],
            "usage": {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}});
        let usage = usage_of(&doc).unwrap().unwrap();
        rename(&mut doc, "alias");
        assert_eq!(doc["model"], "alias");
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (3, 2));
    }
}
