//! OpenAI's chat completions (Azure's too) and embeddings: a `chat.completion`, its chunks with
//! the usage chunk and `data: [DONE]`, an embeddings list, the error envelope.

use serde_json::{Value, json};

use crate::{Answer, Frames, TOOL_ARGUMENTS, Usage};

/// The vector every input is embedded as.
pub const EMBEDDING: [f64; 3] = [0.1, 0.2, 0.3];

pub const DONE: &str = "data: [DONE]\n\n";

/// A whole `chat.completion`: the text, or a call of the answer's tool (with no text).
pub fn chat(answer: &Answer) -> Value {
    let (message, finish) = match &answer.tool {
        Some(name) => (
            json!({"role": "assistant", "content": null, "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": name, "arguments": TOOL_ARGUMENTS}}]}),
            "tool_calls",
        ),
        None => (json!({"role": "assistant", "content": answer.text}), "stop"),
    };
    let mut doc = json!({
        "id": "chatcmpl-upstream", "object": "chat.completion", "created": 1, "model": answer.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}]
    });
    if let Some(usage) = answer.usage {
        doc["usage"] = self::usage(usage);
    }
    doc
}

/// A streamed answer: the role chunk, a chunk per piece (or the tool call's name, then its
/// arguments in two pieces), the finish chunk, the usage chunk if the answer has usage, and
/// `[DONE]`.
pub fn chat_stream(answer: &Answer) -> Frames {
    let model = answer.model.as_str();
    let head = vec![chunk(
        model,
        json!({"role": "assistant", "content": ""}),
        None,
    )];
    let (pieces, finish) = match &answer.tool {
        Some(name) => {
            let call = json!({"index": 0, "id": "call_1", "type": "function",
                              "function": {"name": name, "arguments": ""}});
            let mut pieces = vec![chunk(model, json!({"tool_calls": [call]}), None)];
            for part in ["{\"city\":", "\"Paris\"}"] {
                let call = json!({"index": 0, "function": {"arguments": part}});
                pieces.push(chunk(model, json!({"tool_calls": [call]}), None));
            }
            (pieces, "tool_calls")
        }
        None => (
            answer
                .pieces
                .iter()
                .map(|piece| chunk(model, json!({"content": piece}), None))
                .collect(),
            "stop",
        ),
    };
    let mut tail = vec![chunk(model, json!({}), Some(finish))];
    if let Some(usage) = answer.usage {
        let rest = format!(r#""choices":[],"usage":{}"#, self::usage(usage));
        tail.push(chunk_with(model, &rest));
    }
    tail.push(DONE.to_owned());
    Frames { head, pieces, tail }
}

/// One `data:` event with a `chat.completion.chunk`.
pub fn chunk(model: &str, delta: Value, finish: Option<&str>) -> String {
    let choices = json!([{"index": 0, "delta": delta, "finish_reason": finish}]);
    chunk_with(model, &format!(r#""choices":{choices}"#))
}

/// A chunk's event with its keys in OpenAI's order — `id`, `object`, `created`, `model`, then
/// `rest` — as the API writes them (`json!` would sort them, putting `choices` first).
fn chunk_with(model: &str, rest: &str) -> String {
    format!(
        r#"data: {{"id":"chatcmpl-upstream","object":"chat.completion.chunk","created":1,"model":{},{rest}}}"#,
        Value::from(model)
    ) + "\n\n"
}

/// `prompt_tokens`, `completion_tokens`, `total_tokens`, and the cached and reasoning details
/// when there are any.
pub fn usage(usage: Usage) -> Value {
    let mut doc = json!({"prompt_tokens": usage.prompt, "completion_tokens": usage.completion,
                         "total_tokens": usage.total()});
    if usage.cached > 0 {
        doc["prompt_tokens_details"] = json!({"cached_tokens": usage.cached});
    }
    if usage.reasoning > 0 {
        doc["completion_tokens_details"] = json!({"reasoning_tokens": usage.reasoning});
    }
    doc
}

/// An embeddings list of `inputs` [`EMBEDDING`]s.
pub fn embeddings(model: &str, inputs: usize, usage: Usage) -> Value {
    let data: Vec<Value> = (0..inputs)
        .map(|i| json!({"object": "embedding", "index": i, "embedding": EMBEDDING}))
        .collect();
    json!({"object": "list", "data": data, "model": model,
           "usage": {"prompt_tokens": usage.prompt, "total_tokens": usage.prompt}})
}

/// OpenAI's error envelope (which the Responses API and legacy completions share).
pub fn error(message: &str) -> Value {
    json!({"error": {"message": message, "type": "server_error", "code": null}})
}
