//! OpenAI and every OpenAI-compatible server (vLLM, Mistral, Groq, DeepSeek, Together,
//! OpenRouter, LM Studio): near pass-through with the model renamed.
//!
//! Response bytes are forwarded unchanged but for the top-level `"model"`, which is renamed in
//! place back to the name the client asked for ([`crate::rename`]); we only peek at the fields
//! we need (usage, finish).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::client::HttpClient;
use crate::framing::{self, Flow, SseEvent, SseFraming, Translate};
use crate::http::{Credential, IntoUri, Upstream, read_json};
use crate::rename::{StreamRenamer, rename_model};
use crate::wire::{ChatMessage, OpenAiUsage, StreamOptions};
use crate::{
    ChatRequest, ChatResponse, ChatStream, EmbeddingsRequest, EmbeddingsResponse, Provider,
    ProviderError, ProviderSettings, StreamEvent, Usage,
};

/// An OpenAI-compatible upstream: `POST {base_url}/chat/completions`, bearer auth.
#[derive(Debug, Clone)]
pub struct OpenAi {
    upstream: Upstream,
    /// Parsed once; `None` if the base URL does not parse (each call then reports it).
    chat_url: Option<http::Uri>,
    embeddings_url: Option<http::Uri>,
}

/// One of OpenAI's operations on an OpenAI-style upstream (OpenAI, Azure, a compatible
/// server): where it is, and the credential it takes.
pub(crate) struct Endpoint<'a> {
    pub(crate) upstream: &'a Upstream,
    pub(crate) url: String,
}

impl OpenAi {
    pub fn new(settings: ProviderSettings, client: HttpClient) -> Self {
        let upstream = Upstream::new(settings, client, Credential::Bearer);
        Self {
            chat_url: upstream.parsed_url("/chat/completions"),
            embeddings_url: upstream.parsed_url("/embeddings"),
            upstream,
        }
    }

    pub(crate) fn settings(&self) -> &ProviderSettings {
        self.upstream.settings()
    }

    /// `{base_url}{path}` with the bearer key.
    pub(crate) fn endpoint(&self, path: &str) -> Endpoint<'_> {
        Endpoint {
            upstream: &self.upstream,
            url: self.upstream.url(path),
        }
    }
}

impl Provider for OpenAi {
    async fn chat(&self, req: &ChatRequest, model: &str) -> Result<ChatResponse, ProviderError> {
        match &self.chat_url {
            Some(url) => chat(&self.upstream, url, req, model).await,
            // Unparseable: the call says why.
            None => {
                let url = self.upstream.url("/chat/completions");
                chat(&self.upstream, url, req, model).await
            }
        }
    }

    async fn chat_stream(
        &self,
        req: &ChatRequest,
        model: &str,
    ) -> Result<ChatStream, ProviderError> {
        match &self.chat_url {
            Some(url) => chat_stream(&self.upstream, url, req, model).await,
            None => {
                let url = self.upstream.url("/chat/completions");
                chat_stream(&self.upstream, url, req, model).await
            }
        }
    }

    async fn embeddings(
        &self,
        req: &EmbeddingsRequest,
        model: &str,
    ) -> Result<EmbeddingsResponse, ProviderError> {
        match &self.embeddings_url {
            Some(url) => embeddings(&self.upstream, url, req, model).await,
            None => {
                let url = self.upstream.url("/embeddings");
                embeddings(&self.upstream, url, req, model).await
            }
        }
    }
}

// === shared with Azure ===

pub(crate) async fn chat(
    upstream: &Upstream,
    url: impl IntoUri,
    req: &ChatRequest,
    model: &str,
) -> Result<ChatResponse, ProviderError> {
    let wire = to_wire(req, model, false);
    answer(upstream, url, &wire, &req.model, "chat completion").await
}

pub(crate) async fn chat_stream(
    upstream: &Upstream,
    url: impl IntoUri,
    req: &ChatRequest,
    model: &str,
) -> Result<ChatStream, ProviderError> {
    chunks(upstream, url, &to_wire(req, model, true), &req.model).await
}

/// POSTs an OpenAI-style request (chat or legacy completions) and returns its whole answer as
/// sent, with the usage it reports.
pub(crate) async fn answer(
    upstream: &Upstream,
    url: impl IntoUri,
    wire: &impl Serialize,
    alias: &str,
    what: &str,
) -> Result<ChatResponse, ProviderError> {
    let resp = upstream.post_json(url, &[], wire).await?;
    let (body, peek) = read_json::<CompletionPeek>(resp, what).await?;
    Ok(ChatResponse {
        body: rename_model(body, alias),
        usage: peek.usage.map(Usage::from),
    })
}

/// POSTs an OpenAI-style streaming request and passes its chunks through.
pub(crate) async fn chunks(
    upstream: &Upstream,
    url: impl IntoUri,
    wire: &impl Serialize,
    alias: &str,
) -> Result<ChatStream, ProviderError> {
    let resp = upstream.post_json(url, &[], wire).await?;
    let body = framing::body_chunks(resp, upstream.settings().idle_timeout);
    Ok(framing::translate(
        body,
        SseFraming::default(),
        PassThrough::new(alias),
    ))
}

pub(crate) async fn embeddings(
    upstream: &Upstream,
    url: impl IntoUri,
    req: &EmbeddingsRequest,
    model: &str,
) -> Result<EmbeddingsResponse, ProviderError> {
    let wire = WireEmbeddings {
        model,
        input: &req.input,
        extra: &req.extra,
    };
    let resp = upstream.post_json(url, &[], &wire).await?;
    let (body, peek) = read_json::<CompletionPeek>(resp, "embeddings").await?;
    Ok(EmbeddingsResponse {
        body: rename_model(body, &req.model),
        usage: peek.usage.map(Usage::from),
    })
}

// === translation ===

/// The request as sent upstream: the client's, borrowed, with the model replaced.
///
/// For a stream we always ask for usage: the gateway meters with it, and drops the extra chunk
/// when the client did not ask. A non-streaming call never carries `stream_options` (OpenAI
/// rejects them without `stream: true`).
#[derive(Debug, Serialize)]
pub(crate) struct WireChat<'a> {
    model: &'a str,
    messages: &'a [ChatMessage],
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<&'a Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<&'a Value>,
    #[serde(flatten)]
    extra: &'a Map<String, Value>,
}

pub(crate) fn to_wire<'a>(req: &'a ChatRequest, model: &'a str, stream: bool) -> WireChat<'a> {
    let stream_options = stream.then(|| {
        let mut options = req.stream_options.clone().unwrap_or_default();
        options.include_usage = Some(true);
        options
    });
    WireChat {
        model,
        messages: &req.messages,
        stream,
        stream_options,
        max_tokens: req.max_tokens,
        max_completion_tokens: req.max_completion_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        stop: req.stop.as_ref(),
        tools: req.tools.as_ref(),
        tool_choice: req.tool_choice.as_ref(),
        response_format: req.response_format.as_ref(),
        extra: &req.extra,
    }
}

#[derive(Debug, Serialize)]
struct WireEmbeddings<'a> {
    model: &'a str,
    input: &'a Value,
    #[serde(flatten)]
    extra: &'a Map<String, Value>,
}

/// The only parts of a completion or embeddings body we read.
#[derive(Debug, Deserialize)]
struct CompletionPeek {
    #[serde(default)]
    usage: Option<OpenAiUsage>,
}

/// The only parts of a chunk we read.
#[derive(Debug, Deserialize)]
struct ChunkPeek {
    #[serde(default)]
    choices: Vec<ChoicePeek>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct ChoicePeek {
    #[serde(default)]
    finish_reason: Option<String>,
}

/// Whether a chunk is one of the many that carry a piece of the answer and nothing the gateway
/// reads: one JSON object (by its ends) without a `usage` or an `error` key, whose every
/// `finish_reason` is `null`. Those are forwarded without being parsed — the parse was most of a
/// chunk's cost in the gateway. Anything else is parsed as before, so a false alarm costs only
/// the parse it would have had. Upstreams write these keys plainly; one written with escapes
/// (`"\u0075sage"`, legal JSON that no upstream sends) would go unread, and the answer would be
/// metered by its text instead: estimated, never lost.
fn plain_text_chunk(data: &str) -> bool {
    use std::sync::LazyLock;

    use memchr::memmem::Finder;

    static USAGE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"usage\""));
    static ERROR: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"error\""));
    static FINISH: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"finish_reason\""));
    let bytes = data.as_bytes();
    if !(bytes.starts_with(b"{") && bytes.ends_with(b"}"))
        || USAGE.find(bytes).is_some()
        || ERROR.find(bytes).is_some()
    {
        return false;
    }
    FINISH.find_iter(bytes).all(|at| {
        let value = &bytes[at + FINISH.needle().len()..];
        let value = value.trim_ascii_start();
        value
            .strip_prefix(b":")
            .is_some_and(|value| value.trim_ascii_start().starts_with(b"null"))
    })
}

/// Forwards each chunk's bytes as they came (the model renamed to the client's), noting usage
/// and whether the answer finished.
#[derive(Debug)]
pub(crate) struct PassThrough {
    /// The name the client asked for, which every chunk reports.
    model: String,
    renamer: StreamRenamer,
    finished: bool,
}

impl PassThrough {
    pub(crate) fn new(model: &str) -> Self {
        Self {
            model: model.to_owned(),
            renamer: StreamRenamer::default(),
            finished: false,
        }
    }
}

impl Translate<SseEvent> for PassThrough {
    fn frame(&mut self, ev: SseEvent, out: &mut Vec<StreamEvent>) -> Result<Flow, ProviderError> {
        let data = ev.data.trim();
        if data == "[DONE]" {
            return Ok(Flow::Done);
        }
        if data.is_empty() {
            return Ok(Flow::Continue);
        }
        if plain_text_chunk(data) {
            let mut data = ev.data;
            self.renamer.rename(&mut data, &self.model);
            out.push(StreamEvent::new(data.into(), None, false));
            return Ok(Flow::Continue);
        }
        let peek: ChunkPeek =
            serde_json::from_str(data).map_err(|e| ProviderError::decode("stream chunk", e))?;
        if let Some(error) = peek.error {
            return Err(ProviderError::StreamError(crate::error::truncate(
                &error.to_string(),
                300,
            )));
        }
        self.finished |= peek.choices.iter().any(|c| c.finish_reason.is_some());
        let usage_only = peek.choices.is_empty() && peek.usage.is_some();
        let mut data = ev.data;
        self.renamer.rename(&mut data, &self.model);
        out.push(StreamEvent::new(
            data.into(),
            peek.usage.map(Usage::from),
            usage_only,
        ));
        Ok(Flow::Continue)
    }

    /// A server that ends without `[DONE]` is tolerated once the answer has finished; before
    /// that, the answer was cut short and the client must hear about it.
    fn end(&mut self, _: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        if self.finished {
            Ok(())
        } else {
            Err(ProviderError::InvalidResponse(
                "stream ended before the answer was complete".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_request_renames_model_and_keeps_unknown_fields() {
        let req: ChatRequest = serde_json::from_value(json!({
            "model": "alias",
            "messages": [{"role": "user", "content": "hi"}],
            "seed": 3,
            "stream": true,
            "stream_options": {"include_usage": false},
            "temperature": 0.5
        }))
        .unwrap();
        let streamed = serde_json::to_value(to_wire(&req, "real", true)).unwrap();
        assert_eq!(streamed["model"], "real");
        assert_eq!(streamed["seed"], 3);
        assert_eq!(streamed["temperature"], 0.5);
        assert_eq!(streamed["stream_options"]["include_usage"], true);

        let plain = serde_json::to_value(to_wire(&req, "real", false)).unwrap();
        assert_eq!(plain["stream"], false);
        assert!(plain.get("stream_options").is_none());
    }

    /// Guards against a typed field being added to `ChatRequest` but forgotten in `WireChat`.
    #[test]
    fn wire_request_carries_every_field_of_the_client_request() {
        let raw = json!({
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": false,
            "max_tokens": 1, "max_completion_tokens": 2, "temperature": 0.1, "top_p": 0.2,
            "stop": ["x"], "tools": [{"type": "function", "function": {"name": "f"}}],
            "tool_choice": "auto", "response_format": {"type": "json_object"}, "user": "u"
        });
        let req: ChatRequest = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(
            serde_json::to_value(to_wire(&req, "m", false)).unwrap(),
            raw
        );
    }

    #[test]
    fn only_chunks_with_nothing_to_read_skip_the_parse() {
        let plain = [
            r#"{"id":"c","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}"#,
            r#"{"choices":[{"delta":{"content":"hi"},"finish_reason" : null}]}"#,
            // The words in the text are escaped, so they are not keys.
            r#"{"choices":[{"delta":{"content":"the \"usage\" and \"error\" keys"}}]}"#,
            r#"{"choices":[{"delta":{"role":"assistant"}}]}"#,
        ];
        for chunk in plain {
            assert!(plain_text_chunk(chunk), "{chunk}");
        }
        let read = [
            r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#,
            r#"{"choices":[{"delta":{},"finish_reason":null},{"delta":{},"finish_reason":"length"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#,
            r#"{"choices":[{"delta":{}}],"usage":null}"#,
            r#"{"error":{"message":"overloaded"}}"#,
            "not json at all",
            r#"{"choices":[{"delta":{"content":"cut"#,
        ];
        for chunk in read {
            assert!(!plain_text_chunk(chunk), "{chunk}");
        }
        // Forwarded as they came, with nothing read from them.
        let mut t = PassThrough::new("c");
        let mut out = Vec::new();
        let ev = SseEvent {
            event: String::new(),
            data: plain[0].into(),
        };
        assert_eq!(t.frame(ev, &mut out).unwrap(), Flow::Continue);
        assert_eq!(out[0].data, plain[0].as_bytes());
        assert!(out[0].usage.is_none() && !out[0].usage_only);
        assert!(
            t.end(&mut out).is_err(),
            "a plain chunk does not finish the answer"
        );
    }

    #[test]
    fn pass_through_keeps_bytes_and_flags_the_usage_chunk() {
        let mut t = PassThrough::new("c");
        let mut out = Vec::new();
        let chunk = r#"{"id":"c","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}],"usage":null}"#;
        let usage = r#"{"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#;
        for data in [chunk, usage] {
            let ev = SseEvent {
                event: String::new(),
                data: data.into(),
            };
            assert_eq!(t.frame(ev, &mut out).unwrap(), Flow::Continue);
        }
        assert_eq!(out[0].data, chunk.as_bytes());
        assert!(!out[0].usage_only);
        assert!(out[1].usage_only);
        assert_eq!(out[1].usage.unwrap().total_tokens, 4);
        assert!(t.end(&mut out).is_ok());
    }

    #[test]
    fn pass_through_chunks_name_the_model_the_client_asked_for() {
        let mut t = PassThrough::new("alias");
        let mut out = Vec::new();
        let chunk = r#"{"id":"c","object":"chat.completion.chunk","model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"content":"\"model\": \"x\""},"finish_reason":null}]}"#;
        let ev = SseEvent {
            event: String::new(),
            data: chunk.into(),
        };
        t.frame(ev, &mut out).unwrap();
        assert_eq!(
            out[0].data,
            chunk.replace("gpt-4o-2024-08-06", "alias").as_bytes()
        );
    }
}
