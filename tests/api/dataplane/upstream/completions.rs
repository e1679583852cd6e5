//! OpenAI's legacy completions wire format: a `text_completion` with a choice per `n`, and its
//! chunks, the usage chunk when asked, `data: [DONE]`.

use super::*;

/// The usage every answer reports: 5 prompt tokens, 4 completion tokens.
pub const USAGE: (u64, u64) = (5, 4);

pub(super) async fn answer(
    shared: &Arc<Shared>,
    step: Step,
    body: &Value,
    streaming: bool,
) -> Response {
    match step {
        Step::Delay(delay) => {
            tokio::time::sleep(delay).await;
            whole(shared, body, streaming, None, None)
        }
        Step::Slow(gap) => whole(shared, body, streaming, Some(gap), None),
        Step::DieAfter(n) => whole(shared, body, true, None, Some(n)),
        _ => whole(shared, body, streaming, None, None),
    }
}

fn usage() -> Value {
    let (prompt, completion) = USAGE;
    json!({"prompt_tokens": prompt, "completion_tokens": completion,
           "total_tokens": prompt + completion})
}

fn whole(
    shared: &Arc<Shared>,
    body: &Value,
    streaming: bool,
    gap: Option<Duration>,
    die_after: Option<usize>,
) -> Response {
    let model = body["model"].as_str().unwrap_or("unknown");
    let document = |choices: Value| {
        json!({"id": "cmpl-upstream", "object": "text_completion", "created": 1,
               "model": model, "choices": choices})
    };
    if !streaming {
        let n = body["n"].as_u64().unwrap_or(1);
        let choices: Vec<Value> = (0..n)
            .map(|i| {
                json!({"text": format!("Hello from {model} #{i}"), "index": i,
                            "logprobs": null, "finish_reason": "stop"})
            })
            .collect();
        let mut doc = document(Value::Array(choices));
        doc["usage"] = usage();
        return json_response(&doc);
    }
    let chunk = |text: &str, finish: Option<&str>| {
        let choice = json!([{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}]);
        format!("data: {}\n\n", document(choice))
    };
    let mut chunks = Vec::new();
    for (i, word) in ["Hello", " from", " upstream"].iter().enumerate() {
        if die_after == Some(i) {
            return sse(shared, chunks, gap, Tail::End);
        }
        chunks.push(chunk(word, None));
    }
    chunks.push(chunk("", Some("stop")));
    if body["stream_options"]["include_usage"] == true {
        let mut doc = document(json!([]));
        doc["usage"] = usage();
        chunks.push(format!("data: {doc}\n\n"));
    }
    chunks.push("data: [DONE]\n\n".to_owned());
    sse(shared, chunks, gap, Tail::End)
}
