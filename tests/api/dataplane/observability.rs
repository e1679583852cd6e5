//! `/metrics` after a mixed workload: every metric the operator relies on is there, and no
//! label carries a user.

use reqwest::Method;
use serde_json::json;
use tollgate_testkit::{Step, Upstream};

use super::{DataPlane, ask, ask_stream, events, model, provider};

/// Every metric name the gateway promises, by area.
const METRICS: [&str; 16] = [
    // requests: by route and status class; by model, provider, endpoint and ending
    "tollgate_http_requests_total",
    "tollgate_requests_total",
    // latency histograms
    "tollgate_request_duration_seconds",
    "tollgate_upstream_duration_seconds",
    "tollgate_time_to_first_token_seconds",
    "tollgate_gateway_overhead_seconds",
    "tollgate_tokens_total",
    "tollgate_auth_failures_total",
    "tollgate_quota_rejections_total",
    // the usage writer
    "tollgate_usage_queue_depth",
    "tollgate_usage_batches_total",
    "tollgate_usage_retries_total",
    "tollgate_usage_spilled_events",
    "tollgate_jwks_fetches_total",
    // hits and misses of the auth, user and quota caches
    "tollgate_cache_requests_total",
    "tollgate_circuit_breaker_state",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_workload_shows_every_metric_with_bounded_labels() {
    let healthy = Upstream::healthy().await;
    let broken = Upstream::always(Step::Status(500, None)).await;
    let plane = DataPlane::start(
        vec![
            provider("up", &healthy.base_url),
            provider("down", &broken.base_url),
        ],
        vec![
            model("m", &[("up", "real-m")], &[]),
            model("broken", &[("down", "real-b")], &[]),
        ],
        |_| {},
    )
    .await;

    // ok, twice (the second is served from warm caches), and a stream
    for _ in 0..2 {
        assert_eq!(plane.chat(&ask("m")).await.status(), 200);
    }
    let streamed = events(plane.chat(&ask_stream("m")).await).await;
    assert_eq!(streamed.last().map(String::as_str), Some("data: [DONE]"));
    // 401
    let refused = plane
        .post_with("tg-not-a-key", "/v1/chat/completions", &ask("m"))
        .await;
    assert_eq!(refused.status(), 401);
    // 429: a user allowed no requests at all
    let limited = plane.app.user_key("acme", "observed-limited-user").await;
    let response = plane
        .app
        .admin(
            Method::PUT,
            "/tenants/acme/users/observed-limited-user/quota",
        )
        .json(&json!({"requests_per_minute": 0}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let response = plane
        .app
        .client
        .post(plane.app.url("/v1/chat/completions"))
        .bearer_auth(&limited)
        .json(&ask("m"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    // upstream error
    assert_eq!(plane.chat(&ask("broken")).await.status(), 502);

    let metrics = plane.app.metrics().await;
    let missing: Vec<&str> = METRICS
        .iter()
        .copied()
        .filter(|name| !metrics.lines().any(|line| line.starts_with(name)))
        .collect();
    assert!(
        missing.is_empty(),
        "missing from /metrics: {missing:?}\n{metrics}"
    );

    // The workload's labels, and never a user.
    for expected in [
        r#"route="/v1/chat/completions""#,
        r#"status="4xx""#,
        r#"status="5xx""#,
        r#"cache="auth_token""#,
        r#"result="hit""#,
        r#"limit="requests_per_minute""#,
        r#"provider="down""#,
    ] {
        assert!(metrics.contains(expected), "{expected} missing:\n{metrics}");
    }
    assert!(
        metrics.contains("tollgate_time_to_first_token_seconds_bucket"),
        "latencies are Prometheus histograms:\n{metrics}"
    );
    for user in ["jane", "observed-limited-user", "acme"] {
        assert!(
            !metrics.contains(user),
            "a user or tenant in a metric label: {user}"
        );
    }
    promtool_accepts(&metrics);
}

/// Every family has its `# HELP` line, and Prometheus's own linter accepts the scrape.
fn promtool_accepts(scrape: &str) {
    for family in scrape.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let name = family.split_whitespace().next().unwrap();
        assert!(
            scrape.contains(&format!("# HELP {name} ")),
            "{name} has no # HELP line"
        );
    }
    let Some(output) = crate::support::promtool(&["check", "metrics"], scrape) else {
        return;
    };
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
