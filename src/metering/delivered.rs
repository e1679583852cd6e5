//! The text a client received, read from OpenAI-shaped JSON: what a tokenizer counts when the
//! upstream reported no usage (or the client left before it could).

use serde::Deserialize;

#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(default, borrow)]
    choices: Vec<Choice<'a>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default, borrow)]
    delta: Option<Message<'a>>,
    #[serde(default, borrow)]
    message: Option<Message<'a>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(default, borrow)]
    content: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Vec<ToolCall<'a>>,
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(default, borrow)]
    function: Option<Function<'a>>,
}

#[derive(Deserialize)]
struct Function<'a> {
    #[serde(default, borrow)]
    name: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    arguments: Option<std::borrow::Cow<'a, str>>,
}

/// Appends the completion text of a chunk (`choices[].delta`) or of a whole answer
/// (`choices[].message`) to `out`. Anything unreadable adds nothing.
pub fn append(out: &mut String, json: &[u8]) {
    let Ok(answer) = serde_json::from_slice::<Answer<'_>>(json) else {
        return;
    };
    for choice in answer.choices {
        for message in [choice.delta, choice.message].into_iter().flatten() {
            if let Some(content) = message.content {
                out.push_str(&content);
            }
            for call in message.tool_calls {
                if let Some(function) = call.function {
                    for part in [function.name, function.arguments].into_iter().flatten() {
                        out.push_str(&part);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_chunks_answers_and_tool_calls() {
        let mut text = String::new();
        append(
            &mut text,
            br#"{"choices":[{"index":0,"delta":{"content":"Hel"}}]}"#,
        );
        append(
            &mut text,
            br#"{"choices":[{"index":0,"delta":{"content":"lo \"x\""}}]}"#,
        );
        append(&mut text, br#"{"choices":[],"usage":{"total_tokens":3}}"#);
        append(&mut text, br#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":"{\"a\":1}"}}]}}]}"#);
        append(
            &mut text,
            br#"{"choices":[{"message":{"role":"assistant","content":"!"}}]}"#,
        );
        append(&mut text, b"not json");
        assert_eq!(text, "Hello \"x\"f{\"a\":1}!");
    }
}
