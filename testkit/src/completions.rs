//! OpenAI's legacy completions: a `text_completion` with a choice per `n`, and its chunks, the
//! usage chunk when the answer has usage, `data: [DONE]`.

use serde_json::{Value, json};

use crate::openai::DONE;
use crate::{Answer, Frames};

/// A whole `text_completion` with `n` choices, the text numbered in each.
pub fn completion(answer: &Answer, n: u64) -> Value {
    let choices: Vec<Value> = (0..n)
        .map(|i| {
            json!({"text": format!("{} #{i}", answer.text), "index": i,
                   "logprobs": null, "finish_reason": "stop"})
        })
        .collect();
    let mut doc = document(answer, Value::Array(choices));
    doc["usage"] = crate::openai::usage(answer.usage.unwrap_or_default());
    doc
}

/// A streamed completion: a chunk per piece, the finish chunk, the usage chunk if the answer
/// has usage, `[DONE]`.
pub fn chunks(answer: &Answer) -> Frames {
    let chunk = |text: &str, finish: Option<&str>| {
        let choice = json!([{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}]);
        format!("data: {}\n\n", document(answer, choice))
    };
    let pieces = answer
        .pieces
        .iter()
        .map(|piece| chunk(piece, None))
        .collect();
    let mut tail = vec![chunk("", Some("stop"))];
    if let Some(usage) = answer.usage {
        let mut doc = document(answer, json!([]));
        doc["usage"] = crate::openai::usage(usage);
        tail.push(format!("data: {doc}\n\n"));
    }
    tail.push(DONE.to_owned());
    Frames {
        head: Vec::new(),
        pieces,
        tail,
    }
}

fn document(answer: &Answer, choices: Value) -> Value {
    json!({"id": "cmpl-upstream", "object": "text_completion", "created": 1,
           "model": answer.model, "choices": choices})
}
