//! The scripted upstream: each request gets the next [`Step`] of a script (then the default
//! step), answered in the wire format its path asks for.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::server::{Pace, Recorded, Reply, Stream, Then};
use crate::{Answer, Frames, Usages};
use crate::{anthropic, completions, gemini, ollama, openai, responses};

/// How the upstream answers one request.
#[derive(Debug, Clone)]
pub enum Step {
    /// A proper answer: JSON, or a stream when the request streams; a tool call when it
    /// declares tools (OpenAI chat, Anthropic, the Responses API).
    Answer,
    /// An error status in the format's error envelope, and `Retry-After` seconds if given.
    /// (OpenAI's echoes the request's `authorization`, as some upstreams do with a rejected
    /// key.)
    Status(u16, Option<u64>),
    /// 200 with a body that is not the answer: not JSON at all, or for Anthropic a JSON object
    /// that is not a message.
    Garbage,
    /// Waits, then answers properly.
    Delay(Duration),
    /// Streams the start of the answer and `n` pieces of it, then closes the body mid-answer.
    /// OpenAI chat streams the role chunk and `n` chunks `part0 `, `part1 `, …
    DieAfter(usize),
    /// Streams with this pause before every chunk.
    Slow(Duration),
    /// Streams the start of the answer and its first piece (OpenAI chat: one chunk
    /// "thinking"), then a keep-alive every 20 ms until the client goes away.
    Endless,
}

pub(crate) struct Script {
    steps: Mutex<VecDeque<Step>>,
    then: Step,
    usage: Usages,
}

/// What a request's path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// OpenAI chat completions, Azure's too; any path no other format claims.
    Chat,
    Embeddings,
    /// Anthropic Messages.
    Messages,
    CountTokens,
    Responses,
    Completions,
    Gemini,
    GeminiEmbeddings,
    Ollama,
}

impl Format {
    fn of(path: &str) -> Self {
        if path.ends_with("/v1/messages/count_tokens") {
            Self::CountTokens
        } else if path.ends_with("/v1/messages") {
            Self::Messages
        } else if path.contains(":batchEmbedContents") {
            Self::GeminiEmbeddings
        } else if path.contains(":generateContent") || path.contains(":streamGenerateContent") {
            Self::Gemini
        } else if path.ends_with("/api/chat") {
            Self::Ollama
        } else if path.ends_with("/embeddings") {
            Self::Embeddings
        } else if path.ends_with("/responses") {
            Self::Responses
        } else if path.ends_with("/v1/completions") {
            Self::Completions
        } else {
            Self::Chat
        }
    }
}

impl Script {
    pub(crate) fn new(usage: Usages, steps: Vec<Step>, then: Step) -> Self {
        Self {
            steps: Mutex::new(steps.into()),
            then,
            usage,
        }
    }

    pub(crate) fn respond(&self, request: &Recorded) -> Reply {
        let step = self
            .steps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
            .unwrap_or_else(|| self.then.clone());
        let format = Format::of(&request.path);
        if format == Format::CountTokens {
            return Reply::json(&json!({"input_tokens": 42}));
        }
        let streaming =
            request.body["stream"] == true || request.path.contains(":streamGenerateContent");
        match step {
            Step::Answer => self.answer(format, request, streaming),
            Step::Status(status, retry_after) => error(format, request, status, retry_after),
            Step::Garbage if format == Format::Messages => {
                Reply::json(&json!({"unexpected": true}))
            }
            Step::Garbage => Reply::body(200, "<html>502 Bad Gateway</html>"),
            Step::Delay(wait) => self.answer(format, request, streaming).after(wait),
            Step::Slow(gap) => match self.answer(format, request, streaming) {
                Reply::Stream(stream) => Reply::Stream(stream.paced(Pace::Before(gap))),
                whole => whole,
            },
            Step::DieAfter(n) => {
                let mut answer = self.prepare(format, request, true);
                if format == Format::Chat {
                    answer.tool = None;
                    answer.pieces = (0..n).map(|i| format!("part{i} ")).collect();
                }
                match frames(format, &answer, request) {
                    Some((frames, kind)) => Reply::Stream(Stream::new(kind, frames.cut(n))),
                    None => self.answer(format, request, streaming),
                }
            }
            Step::Endless => {
                let answer = self.prepare(format, request, true);
                let (frames, kind) = match frames(format, &answer, request) {
                    Some((_, kind)) if format == Format::Chat => {
                        let thinking = json!({"role": "assistant", "content": "thinking"});
                        (vec![openai::chunk(&answer.model, thinking, None)], kind)
                    }
                    Some((frames, kind)) => (frames.cut(1), kind),
                    None => return self.answer(format, request, streaming),
                };
                let filler: &'static [u8] = match format {
                    Format::Ollama => b"\n",
                    _ => b": ping\n\n",
                };
                let stream = Stream::new(kind, frames);
                Reply::Stream(stream.then(Then::KeepAlive(Bytes::from_static(filler))))
            }
        }
    }

    /// A proper answer: streamed if the request streams and the format can.
    fn answer(&self, format: Format, request: &Recorded, streaming: bool) -> Reply {
        let answer = self.prepare(format, request, streaming);
        if streaming && let Some((frames, kind)) = frames(format, &answer, request) {
            return Reply::Stream(Stream::new(kind, frames.whole()));
        }
        let body = &request.body;
        Reply::json(&match format {
            Format::Chat => openai::chat(&answer),
            Format::Embeddings => {
                let inputs = match &body["input"] {
                    Value::Array(items) => items.len(),
                    _ => 1,
                };
                openai::embeddings(&answer.model, inputs, self.usage.embeddings)
            }
            Format::Messages | Format::CountTokens => anthropic::message(&answer),
            Format::Responses => responses::response(&answer, body),
            Format::Completions => {
                completions::completion(&answer, body["n"].as_u64().unwrap_or(1))
            }
            Format::Gemini => gemini::response(&answer),
            Format::GeminiEmbeddings => {
                gemini::embeddings(body["requests"].as_array().map_or(0, Vec::len))
            }
            Format::Ollama => ollama::chat(&answer),
        })
    }

    /// "Hello from {model}", with the tool the request declares and the usage this upstream
    /// reports (for a stream of the OpenAI formats, only when the request asks for it).
    fn prepare(&self, format: Format, request: &Recorded, streaming: bool) -> Answer {
        let body = &request.body;
        let model = match format {
            Format::Gemini | Format::GeminiEmbeddings => request
                .path
                .rsplit_once("models/")
                .and_then(|(_, rest)| rest.split(':').next())
                .unwrap_or("unknown"),
            _ => body["model"].as_str().unwrap_or("unknown"),
        };
        let mut answer = Answer::hello(model);
        answer.tool = match format {
            Format::Chat => body["tools"][0]["function"]["name"].as_str(),
            Format::Messages | Format::Responses => body["tools"][0]["name"].as_str(),
            _ => None,
        }
        .map(str::to_owned);
        let asked = !streaming || body["stream_options"]["include_usage"] == true;
        answer.usage = match format {
            Format::Chat => self.usage.chat.filter(|_| asked),
            Format::Completions => Some(self.usage.completions).filter(|_| asked),
            Format::Embeddings => Some(self.usage.embeddings),
            Format::Messages | Format::CountTokens => Some(self.usage.messages),
            Format::Responses => Some(self.usage.responses),
            Format::Gemini => Some(self.usage.gemini),
            Format::GeminiEmbeddings => None,
            Format::Ollama => Some(self.usage.ollama),
        };
        answer
    }
}

/// A streamed answer's frames and their content type, if the format streams.
fn frames(format: Format, answer: &Answer, request: &Recorded) -> Option<(Frames, &'static str)> {
    const SSE: &str = "text/event-stream";
    Some(match format {
        Format::Chat => (openai::chat_stream(answer), SSE),
        Format::Messages => (anthropic::events(answer), SSE),
        Format::Responses => (responses::events(answer, &request.body), SSE),
        Format::Completions => (completions::chunks(answer), SSE),
        Format::Gemini => (gemini::stream(answer), SSE),
        Format::Ollama => (ollama::stream(answer), "application/x-ndjson"),
        Format::Embeddings | Format::CountTokens | Format::GeminiEmbeddings => return None,
    })
}

/// The format's error envelope with this status.
fn error(format: Format, request: &Recorded, status: u16, retry_after: Option<u64>) -> Reply {
    let injected = format!("injected {status}");
    let doc = match format {
        Format::Messages | Format::CountTokens => anthropic::error(status, &injected),
        Format::Gemini | Format::GeminiEmbeddings => gemini::error(status, &injected),
        Format::Ollama => ollama::error(&injected),
        Format::Chat | Format::Embeddings | Format::Responses | Format::Completions => {
            let auth = request
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            openai::error(&format!("{injected}; you sent {auth}"))
        }
    };
    let headers = retry_after
        .map(|seconds| ("retry-after", seconds.to_string()))
        .into_iter()
        .collect();
    Reply::Json {
        status,
        headers,
        body: Bytes::from(doc.to_string()),
    }
}
