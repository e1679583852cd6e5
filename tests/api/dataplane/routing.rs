//! Retries, fallbacks, deadlines and circuit breaking against fault-injecting upstreams.

use std::time::{Duration, Instant};

use tollgate_testkit::{Step, Upstream};

use super::{DataPlane, ask, ask_stream, events, model, provider};
use crate::support::{error_code, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retryable_failure_is_retried_on_the_same_target() {
    let upstream = Upstream::start(
        vec![Step::Status(503, None), Step::Status(500, None)],
        Step::Answer,
    )
    .await;
    let plane = DataPlane::start(
        vec![provider("up", &upstream.base_url)],
        vec![model("m", &[("up", "real-m")], &[])],
        |config| config.routing.attempts_per_target = 3,
    )
    .await;
    let (status, body) = json(plane.chat(&ask("m")).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(upstream.hits(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stop_at_the_bound_and_all_failing_is_a_502() {
    let upstream = Upstream::always(Step::Status(500, None)).await;
    let plane = DataPlane::start(
        vec![provider("up", &upstream.base_url)],
        vec![model("m", &[("up", "real-m")], &[])],
        |config| {
            config.routing.attempts_per_target = 10;
            config.routing.max_attempts = 3;
        },
    )
    .await;
    let (status, body) = json(plane.chat(&ask("m")).await).await;
    assert_eq!((status, error_code(&body)), (502, "upstream_error"));
    assert_eq!(upstream.hits(), 3, "max_attempts bounds the calls");

    // A non-retryable failure (400-class but not the client's fault: 404) is not retried.
    let not_found = Upstream::always(Step::Status(404, None)).await;
    let plane = DataPlane::single(&not_found.base_url).await;
    let (status, _) = json(plane.chat(&ask("m")).await).await;
    assert_eq!(status, 502);
    assert_eq!(not_found.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fallback_model_serves_when_every_target_fails() {
    let broken = Upstream::always(Step::Status(503, None)).await;
    let spare = Upstream::healthy().await;
    let plane = with_backup("broken", &broken, &spare).await;
    let (status, body) = json(plane.chat(&ask("m")).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from real-backup"
    );
    assert_eq!(broken.hits(), 2, "attempts_per_target on the first model");
    assert_eq!(spare.hits(), 1);

    // Streams fall back the same way before their first byte.
    let response = plane.chat(&ask_stream("m")).await;
    assert_eq!(response.status(), 200);
    let events = events(response).await;
    assert_eq!(spare.hits(), 2, "the spare served the stream");
    // The chunks name the model asked for, not the fallback's upstream model.
    assert!(
        events
            .iter()
            .filter(|e| e.starts_with("data: {"))
            .all(|e| e.contains(r#""model":"m""#)),
        "{events:?}"
    );
    assert_eq!(events.last().unwrap(), "data: [DONE]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fallback_the_tenant_may_not_use_is_skipped() {
    let broken = Upstream::always(Step::Status(503, None)).await;
    let spare = Upstream::healthy().await;
    let plane = DataPlane::start(
        vec![
            provider("broken", &broken.base_url),
            provider("spare", &spare.base_url),
        ],
        vec![
            model("m", &[("broken", "real-m")], &["premium"]),
            model("premium", &[("spare", "real-premium")], &[]),
        ],
        |_| {},
    )
    .await;
    let allow = plane
        .app
        .admin(reqwest::Method::PUT, "/tenants/acme/models")
        .json(&serde_json::json!(["m"]))
        .send()
        .await
        .unwrap();
    assert_eq!(allow.status(), 200);
    let (status, _) = json(plane.chat(&ask("m")).await).await;
    assert_eq!(status, 502);
    assert_eq!(spare.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_before_the_first_byte_are_retried_then_a_504() {
    let upstream = Upstream::always(Step::Delay(Duration::from_secs(3))).await;
    let mut slow = provider("up", &upstream.base_url);
    slow.first_byte_timeout = Duration::from_millis(200);
    let plane = DataPlane::start(
        vec![slow],
        vec![model("m", &[("up", "real-m")], &[])],
        |_| {},
    )
    .await;
    let started = Instant::now();
    let (status, body) = json(plane.chat(&ask("m")).await).await;
    assert_eq!((status, error_code(&body)), (504, "upstream_timeout"));
    assert_eq!(upstream.hits(), 2, "a first-byte timeout is retryable");
    assert!(started.elapsed() < Duration::from_secs(3));

    // The whole-attempt limit (`timeout`) also ends in a 504.
    let upstream = Upstream::always(Step::Delay(Duration::from_secs(3))).await;
    let mut capped = provider("up", &upstream.base_url);
    capped.timeout = Duration::from_millis(300);
    let plane = DataPlane::start(
        vec![capped],
        vec![model("m", &[("up", "real-m")], &[])],
        |_| {},
    )
    .await;
    let (status, body) = json(plane.chat(&ask("m")).await).await;
    assert_eq!((status, error_code(&body)), (504, "upstream_timeout"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured() {
    let upstream = Upstream::start(vec![Step::Status(429, Some(1))], Step::Answer).await;
    let plane = DataPlane::single(&upstream.base_url).await;
    let started = Instant::now();
    let (status, _) = json(plane.chat(&ask("m")).await).await;
    assert_eq!(status, 200);
    assert_eq!(upstream.hits(), 2);
    // Backoff alone would have waited at most 20 ms.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    // A Retry-After longer than routing.max_retry_after moves on instead of waiting; with
    // every target rate-limited, the caller is told to come back when the upstream said: a
    // 503 with Retry-After, not a 502.
    let upstream = Upstream::always(Step::Status(429, Some(60))).await;
    let plane = DataPlane::single(&upstream.base_url).await;
    let started = Instant::now();
    let response = plane.chat(&ask("m")).await;
    assert_eq!(response.headers()["retry-after"], "60");
    let (status, body) = json(response).await;
    assert_eq!((status, error_code(&body)), (503, "unavailable"));
    assert_eq!(upstream.hits(), 1);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_target_rate_limited_or_cooling_down_is_a_503_with_the_soonest_retry() {
    let limited = Upstream::always(Step::Status(429, Some(30))).await;
    let broken = Upstream::always(Step::Status(500, None)).await;
    let plane = DataPlane::start(
        vec![
            provider("limited", &limited.base_url),
            provider("broken", &broken.base_url),
        ],
        vec![
            model("m", &[("limited", "real-m")], &["b"]),
            model("b", &[("broken", "real-b")], &[]),
        ],
        |config| {
            config.routing.attempts_per_target = 1;
            config.routing.breaker_failures = 1;
            config.routing.breaker_cooldown = Duration::from_secs(20);
        },
    )
    .await;
    // One target rate-limited, the other broken: that is an upstream failure, a 502.
    let (status, body) = json(plane.chat(&ask("m")).await).await;
    assert_eq!((status, error_code(&body)), (502, "upstream_error"));
    // Now both breakers are open (one failure each): nothing is called, and the caller hears
    // when the first one lets a probe through (~20 s), not the 429's 30 s.
    let response = plane.chat(&ask("m")).await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((19..=20).contains(&retry_after), "{retry_after}");
    let (status, body) = json(response).await;
    assert_eq!((status, error_code(&body)), (503, "unavailable"));
    assert_eq!((limited.hits(), broken.hits()), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_dies_after_its_first_byte_is_not_retried() {
    let upstream = Upstream::start(vec![Step::DieAfter(2)], Step::Answer).await;
    let spare = Upstream::healthy().await;
    let plane = with_backup("up", &upstream, &spare).await;
    let response = plane.chat(&ask_stream("m")).await;
    assert_eq!(response.status(), 200);
    let events = events(response).await;
    assert!(events[1].contains("part0"), "{events:?}");
    assert!(events[2].contains("part1"), "{events:?}");
    let error = &events[events.len() - 2];
    assert!(error.starts_with("data: {\"error\""), "{events:?}");
    assert!(error.contains("upstream_error"), "{error}");
    assert_eq!(events.last().unwrap(), "data: [DONE]");
    assert_eq!(upstream.hits(), 1, "no retry after the first byte");
    assert_eq!(spare.hits(), 0, "no fallback either");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_circuit_keeps_a_failing_target_out_until_its_cooldown() {
    let upstream = Upstream::start(
        vec![
            Step::Status(500, None),
            Step::Status(500, None),
            Step::Status(500, None),
        ],
        Step::Answer,
    )
    .await;
    let plane = DataPlane::start(
        vec![provider("up", &upstream.base_url)],
        vec![model("m", &[("up", "real-m")], &[])],
        |config| {
            config.routing.attempts_per_target = 1;
            config.routing.breaker_failures = 2;
            config.routing.breaker_cooldown = Duration::from_millis(500);
        },
    )
    .await;
    for _ in 0..2 {
        let (status, _) = json(plane.chat(&ask("m")).await).await;
        assert_eq!(status, 502);
    }
    assert_eq!(upstream.hits(), 2);
    let response = plane.chat(&ask("m")).await;
    assert_eq!(
        response.headers()["retry-after"],
        "1",
        "the cooldown's rest"
    );
    let (status, body) = json(response).await;
    assert_eq!((status, error_code(&body)), (503, "unavailable"));
    assert_eq!(
        upstream.hits(),
        2,
        "the open breaker did not call the upstream"
    );

    tokio::time::sleep(Duration::from_millis(600)).await;
    // The probe fails (third scripted 500) and reopens the breaker.
    let (status, _) = json(plane.chat(&ask("m")).await).await;
    assert_eq!(status, 502);
    assert_eq!(upstream.hits(), 3);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (status, _) = json(plane.chat(&ask("m")).await).await;
    assert_eq!(status, 200, "a successful probe closes it");
    let (status, _) = json(plane.chat(&ask("m")).await).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_client_error_is_the_callers_400_and_not_retried() {
    let upstream = Upstream::always(Step::Status(400, None)).await;
    let spare = Upstream::healthy().await;
    let plane = with_backup("up", &upstream, &spare).await;
    let (status, body) = json(plane.chat(&ask("m")).await).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_request"));
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("injected 400"), "{message}");
    assert!(!message.contains(super::PROVIDER_KEY), "{message}");
    assert_eq!((upstream.hits(), spare.hits()), (1, 0));
}

/// Model `m` served by `primary` (a provider called `name`), falling back to model `backup`,
/// served by `spare`.
async fn with_backup(name: &str, primary: &Upstream, spare: &Upstream) -> DataPlane {
    DataPlane::start(
        vec![
            provider(name, &primary.base_url),
            provider("spare", &spare.base_url),
        ],
        vec![
            model("m", &[(name, "real-m")], &["backup"]),
            model("backup", &[("spare", "real-backup")], &[]),
        ],
        |_| {},
    )
    .await
}
