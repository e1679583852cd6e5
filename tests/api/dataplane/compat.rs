//! What real OpenAI clients rely on beyond the happy path: answers name the model the client
//! asked for, translated messages carry `refusal`, embeddings honour `encoding_format: "base64"`,
//! and `GET /v1/models/{id}` answers for what the tenant may see.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::{Value, json};
use tollgate_testkit::{Step, Upstream};

use super::{DataPlane, ask, ask_stream, events, mock_provider, model, provider};
use crate::support::{error_code, json};

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

/// The vectors of an embeddings answer, decoded from base64 (little-endian f32) when they are
/// strings.
fn vectors(body: &Value) -> Vec<Vec<f32>> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| match &d["embedding"] {
            Value::String(packed) => STANDARD
                .decode(packed)
                .unwrap()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Value::Array(floats) => floats.iter().map(|f| f.as_f64().unwrap() as f32).collect(),
            other => panic!("not an embedding: {other}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_honour_encoding_format_base64() {
    let upstream = Upstream::healthy().await;
    let plane = DataPlane::start(
        vec![provider("up", &upstream.base_url), mock_provider("offline")],
        vec![
            model("e", &[("up", "real-e")], &[]),
            model("demo", &[("offline", "mock-1")], &[]),
        ],
        |_| {},
    )
    .await;
    let embed = |format: Option<&str>| {
        let mut body = json!({"model": "demo", "input": ["first", "second"]});
        if let Some(format) = format {
            body["encoding_format"] = format.into();
        }
        body
    };

    // A translating adapter (the built-in mock) packs the vectors itself.
    let (status, floats) = json(plane.post("/v1/embeddings", &embed(None)).await).await;
    assert_eq!(status, 200, "{floats}");
    assert!(floats["data"][0]["embedding"].is_array(), "{floats}");
    let (_, explicit) = json(plane.post("/v1/embeddings", &embed(Some("float"))).await).await;
    assert_eq!(explicit["data"], floats["data"]);
    let (status, packed) = json(plane.post("/v1/embeddings", &embed(Some("base64"))).await).await;
    assert_eq!(status, 200, "{packed}");
    assert!(
        packed["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["embedding"].is_string()),
        "{packed}"
    );
    assert_eq!(vectors(&packed), vectors(&floats));
    assert_eq!(vectors(&packed)[0].len(), 8);

    // A pass-through upstream is asked for base64 itself.
    let mut body = embed(Some("base64"));
    body["model"] = "e".into();
    let (status, _) = json(plane.post("/v1/embeddings", &body).await).await;
    assert_eq!(status, 200);
    assert_eq!(upstream.recorded()[0].body["encoding_format"], "base64");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_is_retrieved_only_when_the_tenant_may_see_it() {
    let plane = DataPlane::start(
        vec![mock_provider("offline")],
        vec![
            model("m", &[("offline", "mock-1")], &[]),
            model("meta/llama-3", &[("offline", "mock-1")], &[]),
            model("secret", &[("offline", "mock-1")], &[]),
        ],
        |_| {},
    )
    .await;
    let allow = plane
        .app
        .admin(Method::PUT, "/tenants/acme/models")
        .json(&json!(["m", "meta/llama-3"]))
        .send()
        .await
        .unwrap();
    assert_eq!(allow.status(), 200);

    let (_, list) = json(plane.get("/v1/models").await).await;
    let (status, m) = json(plane.get("/v1/models/m").await).await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(
        m,
        json!({"id": "m", "object": "model", "created": 0, "owned_by": "tollgate"})
    );
    assert_eq!(m, list["data"][0], "the same object as the list's");

    // An id with a slash, as sent raw and percent-encoded (the Python SDK encodes it).
    for path in ["/v1/models/meta/llama-3", "/v1/models/meta%2Fllama-3"] {
        let (status, body) = json(plane.get(path).await).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["id"], "meta/llama-3");
    }

    // Unknown and not allowed look the same: nobody learns what exists.
    let (status, unknown) = json(plane.get("/v1/models/nope").await).await;
    assert_eq!((status, error_code(&unknown)), (404, "model_not_found"));
    let (status, hidden) = json(plane.get("/v1/models/secret").await).await;
    assert_eq!((status, error_code(&hidden)), (404, "model_not_found"));
    assert_eq!(hidden["error"]["type"], unknown["error"]["type"]);
    assert_eq!(
        hidden["error"]["message"]
            .as_str()
            .unwrap()
            .replace("secret", "nope"),
        unknown["error"]["message"].as_str().unwrap(),
    );

    // A known route: the wrong method is a 405 naming the right one.
    let post = plane
        .app
        .client
        .post(plane.app.url("/v1/models/m"))
        .bearer_auth(&plane.key)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET,HEAD");

    // Behind the same authentication as the list.
    let anonymous = plane
        .app
        .client
        .get(plane.app.url("/v1/models/m"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}
