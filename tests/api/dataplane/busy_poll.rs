//! `server.busy_poll`: a gateway that keeps polling between requests still serves everything,
//! on a single-threaded runtime (where a poll loop that never yielded would stall it) and on a
//! multi-threaded one (where the polling task holds a worker).

use std::time::Duration;

use tollgate_testkit::Upstream;

use super::{DataPlane, ask, ask_stream, events, model, provider};

#[tokio::test]
async fn a_busy_polling_gateway_serves_requests_and_streams_on_one_thread() {
    serves_requests_and_streams().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_polling_gateway_serves_requests_and_streams_on_two_threads() {
    serves_requests_and_streams().await;
}

async fn serves_requests_and_streams() {
    let upstream = Upstream::healthy().await;
    let plane = DataPlane::start(
        vec![provider("up", &upstream.base_url)],
        vec![model("m", &[("up", "real-m")], &[])],
        |config| config.server.busy_poll = Duration::from_millis(5),
    )
    .await;
    for round in 0..20 {
        let response = tokio::time::timeout(Duration::from_secs(10), plane.chat(&ask("m")))
            .await
            .unwrap_or_else(|_| panic!("request {round} stalled"));
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(body["choices"][0]["message"]["content"].is_string());
    }
    // Idle for longer than the window, then a stream: the poller went back to sleep and wakes.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let stream = plane.chat(&ask_stream("m")).await;
    assert_eq!(stream.status(), 200);
    let events = events(stream).await;
    assert_eq!(events.last().map(String::as_str), Some("data: [DONE]"));
}
