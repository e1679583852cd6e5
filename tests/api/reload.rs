//! Reloading the configuration under a running gateway (issue 19): new requests take the new
//! targets and prices, requests in flight finish on what they began with and are billed at
//! their own price, provider keys are read again, and a broken file changes nothing.

use serde_json::{Value, json};
use tollgate::store::Store;
use tollgate_testkit::{Answer, Gate, Pace, Reply, Stream, Upstream, Usage, openai};

use crate::dataplane::{ask, ask_stream, events};
use crate::metering::gateway::{chat as post, stored};
use crate::support::{Backend, TestApp, error_code};

/// What the held stream's upstream reports: 10 + 20 tokens.
const STREAMED: Usage = Usage::new(10, 20);

/// Two providers and a model `m` routed to `target` at `price` USD per million tokens (input
/// and output alike, so a request costs its total tokens × price micro-dollars).
fn models(first: &str, second: &str, key_file: &str, target: &str, price: u32) -> String {
    format!(
        r#"
[[providers]]
name = "first"
kind = "openai"
base_url = "{first}"

[[providers]]
name = "second"
kind = "openai"
base_url = "{second}"
api_key_file = "{key_file}"

[[models]]
name = "m"
targets = [{{ provider = "{target}", model = "real-m" }}]
price = {{ input_per_mtok = {price}, output_per_mtok = {price} }}
"#
    )
}

#[tokio::test]
async fn a_reload_moves_new_requests_while_a_stream_in_flight_finishes_at_its_price() {
    // The first upstream's stream sends its first chunk, then waits for the gate.
    let gate = Gate::closed();
    let answer = Answer {
        usage: Some(STREAMED),
        ..Answer::hello("real-m")
    };
    let frames = openai::chat_stream(&answer).whole();
    let first = Upstream::replying(Reply::Stream(
        Stream::sse(frames).paced(Pace::Held(gate.clone())),
    ))
    .await;
    let second = Upstream::healthy().await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("second.key");
    std::fs::write(&key_file, "sk-second-first-key\n").unwrap();
    let key_file = key_file.display().to_string();
    let config = |target: &str, price: u32| {
        models(&first.base_url, &second.base_url, &key_file, target, price)
    };
    let app = TestApp::spawn_from_file(Backend::Sqlite, &config("first", 1)).await;
    let key = app.api_key("acme", "jane").await;

    let stream = post(&app, &key, "in-flight", &ask_stream("m")).await;
    assert_eq!(stream.status(), 200);

    // Another target and twice the price, while the stream is held half-way.
    app.write_config(&config("second", 2));
    let (status, body) = app.reload().await;
    assert_eq!(status, 200, "{body}");
    let applied: Vec<&str> = body["applied"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        applied.contains(&"models[0].targets[0].provider")
            && applied.contains(&"models[0].price.input_per_mtok"),
        "{body}"
    );
    assert_eq!(body["restart_required"], json!([]), "{body}");

    // The next request goes to the new target, with the key read from its file.
    let after = post(&app, &key, "after", &ask("m")).await;
    assert_eq!(after.status(), 200);
    assert_eq!(second.hits(), 1);
    assert_eq!(
        second.request().headers["authorization"],
        "Bearer sk-second-first-key"
    );
    assert_eq!(
        first.hits(),
        1,
        "the new request must not reach the old target"
    );

    // The stream goes on to its end on the old target.
    gate.open();
    let events = events(stream).await;
    assert_eq!(events.last().map(String::as_str), Some("data: [DONE]"));
    assert!(
        events.iter().all(|event| !event.contains("\"error\"")),
        "{events:?}"
    );

    let store = Store::connect(&app.config.database.url, 2).await.unwrap();
    let in_flight = stored(&store, "in-flight").await;
    assert_eq!(in_flight.provider, "first");
    assert_eq!(in_flight.tally.total_tokens, STREAMED.total() as i64);
    assert_eq!(
        in_flight.tally.cost_micro_usd, in_flight.tally.total_tokens,
        "the stream is billed at the price it began under (1 USD/Mtok)"
    );
    let after = stored(&store, "after").await;
    assert_eq!(after.provider, "second");
    assert!(after.tally.total_tokens > 0);
    assert_eq!(
        after.tally.cost_micro_usd,
        2 * after.tally.total_tokens,
        "the next request is billed at the new price (2 USD/Mtok)"
    );

    // A rotated key file is read on the next reload, with nothing else changed.
    std::fs::write(dir.path().join("second.key"), "sk-second-rotated-key").unwrap();
    let (status, body) = app.reload().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["applied"], json!([]), "{body}");
    assert_eq!(post(&app, &key, "rotated", &ask("m")).await.status(), 200);
    assert_eq!(
        second.recorded().last().unwrap().headers["authorization"],
        "Bearer sk-second-rotated-key"
    );
    store.close().await;
}

#[tokio::test]
async fn a_broken_file_changes_nothing_and_says_which_key() {
    let first = Upstream::healthy().await;
    let second = Upstream::healthy().await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("second.key");
    std::fs::write(&key_file, "sk-second").unwrap();
    let key_file = key_file.display().to_string();
    let good = models(&first.base_url, &second.base_url, &key_file, "first", 1);
    let app = TestApp::spawn_from_file(Backend::Sqlite, &good).await;
    let key = app.api_key("acme", "jane").await;
    let invalid_before = reloads(&app.metrics().await, "invalid");

    let broken = [
        // A target naming no provider.
        (
            models(&first.base_url, &second.base_url, &key_file, "nobody", 5),
            "models[0].targets[0].provider",
        ),
        // Not TOML at all.
        (format!("{good}\n[[models]\nname = "), "tollgate.toml"),
        // A key file that is gone.
        (
            models(
                &first.base_url,
                &second.base_url,
                "/nonexistent/key",
                "second",
                5,
            ),
            "providers[1].api_key_file",
        ),
        // A negative price.
        (
            models(&first.base_url, &second.base_url, &key_file, "second", 1)
                .replace("input_per_mtok = 1", "input_per_mtok = -1"),
            "models[0].price",
        ),
    ];
    for (i, (text, key_at_fault)) in broken.iter().enumerate() {
        app.write_config(text);
        let (status, body) = app.reload().await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(error_code(&body), "invalid_config");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(key_at_fault), "{message}");

        // Still served as before: the first target, at the first price.
        let id = format!("still-{i}");
        assert_eq!(post(&app, &key, &id, &ask("m")).await.status(), 200);
        assert_eq!(first.hits(), i + 1);
    }
    assert_eq!(second.hits(), 0);
    let invalid = reloads(&app.metrics().await, "invalid") - invalid_before;
    assert!(invalid >= 4, "{invalid} invalid reloads counted");
    let store = Store::connect(&app.config.database.url, 2).await.unwrap();
    let event = stored(&store, "still-3").await;
    assert_eq!(event.provider, "first");
    assert_eq!(event.tally.cost_micro_usd, event.tally.total_tokens);
    store.close().await;

    // Keys that cannot change live are named, and the rest is applied.
    let moved = models(&first.base_url, &second.base_url, &key_file, "second", 1);
    app.write_config(&format!("[auth]\ncache_ttl = \"2s\"\n{moved}"));
    let (status, body) = app.reload().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["restart_required"],
        json!(["auth.cache_ttl"]),
        "{body}"
    );
    assert_eq!(post(&app, &key, "moved", &ask("m")).await.status(), 200);
    assert_eq!(second.hits(), 1);
}

/// `tollgate_config_reloads_total{result}` in a scrape (every gateway of the test process shares
/// the recorder, so tests compare before and after).
fn reloads(metrics: &str, result: &str) -> u64 {
    let series = format!("tollgate_config_reloads_total{{result=\"{result}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}
