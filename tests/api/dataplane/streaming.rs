//! Server-sent events: pass-through, usage, keep-alives, and a client that leaves.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tollgate_testkit::{Step, Upstream};

use super::{DataPlane, ask_stream, events, model, provider};

fn chunk(event: &str) -> Value {
    serde_json::from_str(event.strip_prefix("data: ").unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_pass_through_and_usage_only_when_asked() {
    let upstream = Upstream::healthy().await;
    let plane = DataPlane::single(&upstream.base_url).await;

    let response = plane.chat(&ask_stream("m")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    assert!(!response.headers()["x-request-id"].is_empty());
    let plain = events(response).await;
    assert_eq!(plain.len(), 6, "{plain:?}"); // role, 3 words, finish, [DONE]
    let text: String = plain[..5]
        .iter()
        .map(|e| {
            chunk(e)["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(text, "Hello from upstream");
    assert_eq!(plain[5], "data: [DONE]");
    assert!(
        !plain.iter().any(|e| e.contains("\"usage\":{")),
        "{plain:?}"
    );
    // The gateway asks for usage even so: it meters with it.
    assert_eq!(
        upstream.recorded()[0].body["stream_options"]["include_usage"],
        true
    );

    let mut body = ask_stream("m");
    body["stream_options"] = serde_json::json!({"include_usage": true});
    let with_usage = events(plane.chat(&body).await).await;
    assert_eq!(with_usage.len(), 7, "{with_usage:?}");
    let usage = chunk(&with_usage[5]);
    assert_eq!(usage["choices"], serde_json::json!([]));
    assert_eq!(usage["usage"]["total_tokens"], 10);
    assert_eq!(with_usage[6], "data: [DONE]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_comments_flow_while_the_upstream_is_silent() {
    let upstream = Upstream::always(Step::Slow(Duration::from_millis(400))).await;
    let plane = DataPlane::start(
        vec![provider("up", &upstream.base_url)],
        vec![model("m", &[("up", "real-m")], &[])],
        |config| config.server.sse_keep_alive = Duration::from_millis(100),
    )
    .await;
    let events = events(plane.chat(&ask_stream("m")).await).await;
    let keep_alives = events.iter().filter(|e| *e == ": keep-alive").count();
    assert!(keep_alives >= 4, "{events:?}");
    let data: Vec<&String> = events.iter().filter(|e| e.starts_with("data:")).collect();
    assert_eq!(data.len(), 6, "{events:?}");
    assert_eq!(data[5], "data: [DONE]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_disconnect_closes_the_upstream_and_is_still_metered() {
    let upstream = Upstream::always(Step::Endless).await;
    let plane = DataPlane::start(
        vec![provider("up", &upstream.base_url)],
        vec![model("disconnect-model", &[("up", "real-m")], &[])],
        |config| config.server.sse_keep_alive = Duration::from_millis(100),
    )
    .await;
    let response = plane.chat(&ask_stream("disconnect-model")).await;
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("thinking"));
    assert!(
        !upstream
            .wait_for_disconnect(Duration::from_millis(300))
            .await,
        "the upstream stream is alive while the client listens"
    );
    drop(body);
    assert!(
        upstream.wait_for_disconnect(Duration::from_secs(5)).await,
        "the upstream saw the disconnect"
    );

    // The request was metered even though it never finished.
    let mut metered = false;
    for _ in 0..50 {
        let text = plane.app.metrics().await;
        metered = text.lines().any(|line| {
            line.starts_with("tollgate_requests_total")
                && line.contains("model=\"disconnect-model\"")
                && line.contains("ending=\"client_disconnected\"")
        });
        if metered {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        metered,
        "tollgate_requests_total has the disconnected request"
    );
}
