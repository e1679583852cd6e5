//! What real OpenAI clients rely on beyond the happy path: answers name the model the client
//! asked for, translated messages carry `refusal`, embeddings honour `encoding_format: "base64"`,
//! and `GET /v1/models/{id}` answers for what the tenant may see.

use serde_json::{Value, json};

use super::upstream::{Step, Upstream};
use super::{DataPlane, ask, ask_stream, events, mock_provider, model, provider};
use crate::support::json;

/// The JSON chunks of a streamed answer, `[DONE]` and keep-alives left out.
async fn chunks(response: reqwest::Response) -> Vec<Value> {
    events(response)
        .await
        .iter()
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str(data).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_name_the_model_the_client_asked_for() {
    // The upstream names whatever model it was asked for in every answer and chunk.
    let upstream = Upstream::healthy().await;
    let broken = Upstream::always(Step::Status(503, None)).await;
    let plane = DataPlane::start(
        vec![
            provider("up", &upstream.base_url),
            provider("broken", &broken.base_url),
            mock_provider("offline"),
        ],
        vec![
            model("m", &[("up", "gpt-4o-2024-08-06")], &[]),
            model("e", &[("up", "text-embedding-3-small")], &[]),
            // Served by m's target: the answer still names `primary`.
            model("primary", &[("broken", "real-primary")], &["m"]),
            model("demo", &[("offline", "mock-1")], &[]),
        ],
        |_| {},
    )
    .await;

    for alias in ["m", "primary", "demo"] {
        let (status, body) = json(plane.chat(&ask(alias)).await).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["model"], alias, "{body}");

        let mut streamed = ask_stream(alias);
        streamed["stream_options"] = json!({"include_usage": true});
        let chunks = chunks(plane.chat(&streamed).await).await;
        assert!(chunks.len() >= 3, "{chunks:?}");
        assert!(
            chunks.iter().all(|c| c["model"] == alias),
            "every chunk, the usage chunk too: {chunks:?}"
        );
    }
    for alias in ["e", "demo"] {
        let (status, body) = json(
            plane
                .post(
                    "/v1/embeddings",
                    &json!({"model": alias, "input": ["a", "b"]}),
                )
                .await,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["model"], alias);
    }
    // The upstream itself was asked for its own names.
    let asked: Vec<Value> = upstream
        .recorded()
        .iter()
        .map(|r| r.body["model"].clone())
        .collect();
    assert!(
        asked
            .iter()
            .all(|m| *m == "gpt-4o-2024-08-06" || *m == "text-embedding-3-small"),
        "{asked:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn translated_chat_messages_carry_a_null_refusal() {
    let plane = DataPlane::start(
        vec![mock_provider("offline")],
        vec![model("demo", &[("offline", "mock-1")], &[])],
        |_| {},
    )
    .await;
    let (status, body) = json(plane.chat(&ask("demo")).await).await;
    assert_eq!(status, 200, "{body}");
    let message = body["choices"][0]["message"].as_object().unwrap();
    assert_eq!(message.get("refusal"), Some(&Value::Null), "{body}");
}
