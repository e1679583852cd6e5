//! The Messages API spoken natively: a `/v1/messages` request from a client goes to an
//! Anthropic upstream as sent, with the model renamed, and its answer comes back as sent —
//! `cache_control`, `thinking`, tools, images, `metadata` and blocks this crate has never
//! heard of included. Only the usage is read on the way, and the model named as the client
//! asked.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::response::{WireError, WireUsage};
use super::{API_VERSION, Anthropic};
use crate::client::Response;
use crate::framing::{self, Flow, SseEvent, SseFraming, Translate, named_event};
use crate::http::read_body;
use crate::messages::{MessageParam, MessagesRequest};
use crate::rename::rename_model;
use crate::{ChatResponse, ChatStream, ProviderError, StreamEvent};

/// The client's `anthropic-version` and `anthropic-beta` headers, forwarded.
#[derive(Debug, Clone, Default)]
pub struct Forwarded {
    pub version: Option<String>,
    pub beta: Option<String>,
}

/// The request as sent upstream: the client's, borrowed, with the model replaced.
#[derive(Serialize)]
struct Wire<'a> {
    model: &'a str,
    messages: &'a [MessageParam],
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
    #[serde(flatten)]
    extra: &'a Map<String, Value>,
}

#[derive(Deserialize)]
struct Peek {
    #[serde(default)]
    usage: WireUsage,
}

// === impl Anthropic ===

impl Anthropic {
    /// `POST /v1/messages`, whole answer.
    pub async fn messages(
        &self,
        req: &MessagesRequest,
        model: &str,
        forwarded: &Forwarded,
    ) -> Result<ChatResponse, ProviderError> {
        let resp = self
            .send("/v1/messages", req, model, false, forwarded)
            .await?;
        let body = read_body(resp).await?;
        let peek: Peek = serde_json::from_slice(&body)
            .map_err(|e| ProviderError::decode("Anthropic message", e))?;
        Ok(ChatResponse {
            body: rename_model(body, &req.model),
            usage: Some(peek.usage.normalise()),
        })
    }

    /// `POST /v1/messages` with `stream: true`: the upstream's events, one by one.
    pub async fn messages_stream(
        &self,
        req: &MessagesRequest,
        model: &str,
        forwarded: &Forwarded,
    ) -> Result<ChatStream, ProviderError> {
        let resp = self
            .send("/v1/messages", req, model, true, forwarded)
            .await?;
        let body = framing::body_chunks(resp, self.upstream.settings().idle_timeout);
        let relay = Relayed {
            model: req.model.clone(),
            usage: WireUsage::default(),
        };
        Ok(framing::translate(body, SseFraming::default(), relay))
    }

    /// `POST /v1/messages/count_tokens`: the upstream's `{"input_tokens": n}`.
    pub async fn count_tokens(
        &self,
        req: &MessagesRequest,
        model: &str,
        forwarded: &Forwarded,
    ) -> Result<Bytes, ProviderError> {
        let resp = self
            .send("/v1/messages/count_tokens", req, model, false, forwarded)
            .await?;
        read_body(resp).await
    }

    async fn send(
        &self,
        path: &str,
        req: &MessagesRequest,
        model: &str,
        stream: bool,
        forwarded: &Forwarded,
    ) -> Result<Response, ProviderError> {
        let wire = Wire {
            model,
            messages: &req.messages,
            max_tokens: req.max_tokens,
            system: req.system.as_ref(),
            stream: stream.then_some(true),
            extra: &req.extra,
        };
        let version = forwarded.version.as_deref().unwrap_or(API_VERSION);
        let mut headers = vec![("anthropic-version", version)];
        if let Some(beta) = &forwarded.beta {
            headers.push(("anthropic-beta", beta.as_str()));
        }
        self.post_to(path, &wire, &headers).await
    }
}

/// Relays Anthropic's events unchanged, reading the usage they carry.
struct Relayed {
    /// The model the client asked for, named in `message_start`.
    model: String,
    usage: WireUsage,
}

#[derive(Deserialize)]
struct MessageDelta {
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Deserialize)]
struct ErrorEvent {
    error: WireError,
}

fn decode<'a, T: Deserialize<'a>>(data: &'a str) -> Result<T, ProviderError> {
    serde_json::from_str(data).map_err(|e| ProviderError::decode("Anthropic event", e))
}

impl Translate<SseEvent> for Relayed {
    fn frame(&mut self, ev: SseEvent, out: &mut Vec<StreamEvent>) -> Result<Flow, ProviderError> {
        let SseEvent { event, data } = ev;
        let mut usage = None;
        let data = match event.as_str() {
            "message_start" => {
                // The one event that names the model: parsed and written again, once a stream.
                let mut doc: Value = decode(&data)?;
                if let Some(reported) = doc.pointer("/message/usage") {
                    let reported = WireUsage::deserialize(reported)
                        .map_err(|e| ProviderError::decode("Anthropic usage", e))?;
                    self.usage.merge(reported);
                }
                usage = Some(self.usage.normalise().prompt_only());
                if let Some(message) = doc.get_mut("message").and_then(Value::as_object_mut) {
                    message.insert("model".into(), Value::from(self.model.as_str()));
                }
                doc.to_string()
            }
            "message_delta" => {
                let delta: MessageDelta = decode(&data)?;
                self.usage.merge(delta.usage);
                usage = Some(self.usage.normalise());
                data
            }
            "error" => {
                let event: ErrorEvent = decode(&data)?;
                return Err(event.error.into_error());
            }
            _ => data,
        };
        out.push(StreamEvent::new(
            named_event(&event, data.as_bytes()),
            usage,
            false,
        ));
        Ok(if event == "message_stop" {
            Flow::Done
        } else {
            Flow::Continue
        })
    }

    fn end(&mut self, _: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        Err(ProviderError::InvalidResponse(
            "Anthropic stream ended before message_stop".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Reported;

    fn relay(events: &[(&str, Value)]) -> (Vec<StreamEvent>, Result<Flow, ProviderError>) {
        let mut relay = Relayed {
            model: "alias".into(),
            usage: WireUsage::default(),
        };
        let mut out = Vec::new();
        let mut flow = Ok(Flow::Continue);
        for (name, data) in events {
            let event = SseEvent {
                event: (*name).to_owned(),
                data: data.to_string(),
            };
            flow = relay.frame(event, &mut out);
            if !matches!(flow, Ok(Flow::Continue)) {
                break;
            }
        }
        (out, flow)
    }

    #[test]
    fn events_pass_through_with_the_usage_read_and_the_alias_named() {
        let delta = json!({"type": "content_block_delta", "index": 0,
                           "delta": {"type": "thinking_delta", "thinking": "hm"}});
        let (out, flow) = relay(&[
            (
                "message_start",
                json!({"type": "message_start", "message": {"model": "claude-real",
                "usage": {"input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 1}}}),
            ),
            ("content_block_delta", delta.clone()),
            (
                "message_delta",
                json!({"type": "message_delta", "usage": {"output_tokens": 7}}),
            ),
            ("message_stop", json!({"type": "message_stop"})),
        ]);
        assert!(matches!(flow, Ok(Flow::Done)));
        assert_eq!(out.len(), 4);
        let start = std::str::from_utf8(&out[0].data).unwrap();
        assert!(start.starts_with("event: message_start\ndata: "), "{start}");
        assert!(start.contains(r#""model":"alias""#) && !start.contains("claude-real"));
        let first = out[0].usage.unwrap();
        assert_eq!(first.reported, Reported::PromptOnly);
        assert_eq!((first.prompt_tokens, first.cached_tokens), (15, 5));
        // Events the gateway does not read go out byte for byte.
        assert_eq!(
            out[1].data,
            named_event("content_block_delta", delta.to_string().as_bytes())
        );
        assert_eq!(out[1].usage, None);
        let last = out[2].usage.unwrap();
        assert_eq!(last.reported, Reported::All);
        assert_eq!((last.prompt_tokens, last.completion_tokens), (15, 7));
    }

    #[test]
    fn an_error_event_ends_the_stream_as_an_error() {
        let (out, flow) = relay(&[
            (
                "message_start",
                json!({"type": "message_start", "message": {"usage": {"input_tokens": 3}}}),
            ),
            (
                "error",
                json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            ),
        ]);
        assert_eq!(out.len(), 1);
        let error = flow.unwrap_err();
        assert!(error.to_string().contains("overloaded_error"), "{error}");
    }
}
