//! Ollama's `/api/chat`: a whole answer, or NDJSON lines ending with the `done` line that holds
//! the counts; and its error envelope.

use serde_json::{Value, json};

use crate::{Answer, Frames, Usage};

/// A whole answer, done, with the counts.
pub fn chat(answer: &Answer) -> Value {
    let mut doc = line(answer, &answer.text, true);
    counts(&mut doc, answer.usage.unwrap_or_default());
    doc
}

/// A stream: a line per piece, then the `done` line with the counts.
pub fn stream(answer: &Answer) -> Frames {
    let pieces = answer
        .pieces
        .iter()
        .map(|piece| format!("{}\n", line(answer, piece, false)))
        .collect();
    let mut last = line(answer, "", true);
    counts(&mut last, answer.usage.unwrap_or_default());
    Frames {
        head: Vec::new(),
        pieces,
        tail: vec![format!("{last}\n")],
    }
}

/// `prompt_eval_count` (cached included), `eval_count` and `prompt_eval_cached_count`. Ollama
/// leaves a zero count out, as older releases do with the prompt count of a cached prompt.
fn counts(doc: &mut Value, usage: Usage) {
    for (name, count) in [
        ("prompt_eval_count", usage.prompt),
        ("eval_count", usage.completion),
        ("prompt_eval_cached_count", usage.cached),
    ] {
        if count > 0 {
            doc[name] = json!(count);
        }
    }
}

fn line(answer: &Answer, text: &str, done: bool) -> Value {
    let mut doc = json!({"model": answer.model, "created_at": "2026-11-30T00:00:00Z",
                         "message": {"role": "assistant", "content": text}, "done": done});
    if done {
        doc["done_reason"] = json!("stop");
    }
    doc
}

/// Ollama's error envelope: a bare message.
pub fn error(message: &str) -> Value {
    json!({ "error": message })
}
