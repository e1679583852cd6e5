//! `quota.threshold`: a user driven to a 1,000-token day quota through real requests fires
//! each threshold once, redeliveries keep their `webhook-id`, and another period fires again.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use tollgate::clock::Timestamp;
use tollgate::metering::{Ending, Tally, UsageEvent};
use tollgate::quota::Window;
use tollgate_testkit::{Step, Upstream, Usage, Usages};

use super::{Behaviour, Receiver, deliveries, fast_webhooks, register};
use crate::dataplane::{DataPlane, model, provider};

/// Each request settles at 100 tokens (what the upstream reports), and reserves far fewer
/// (a two-letter prompt, `max_tokens` 5), so ten of them reach a 1,000-token limit exactly.
async fn hundred_token_gateway() -> (Upstream, DataPlane) {
    let usage = Usages {
        chat: Some(Usage::new(90, 10)),
        ..Usages::DEFAULT
    };
    let upstream = Upstream::scripted(usage, vec![], Step::Answer).await;
    let plane = DataPlane::start(
        vec![provider("up", &upstream.base_url)],
        vec![model("m", &[("up", "real-m")], &[])],
        fast_webhooks,
    )
    .await;
    (upstream, plane)
}

/// The thresholds the receiver was told about, by period, each with the events' data.
fn by_period(events: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let mut periods: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for delivered in events {
        let data = &delivered["event"]["data"];
        periods
            .entry(data["period_start"].as_str().unwrap().to_owned())
            .or_default()
            .push(data.clone());
    }
    for events in periods.values_mut() {
        events.sort_by_key(|data| data["threshold_percent"].as_i64());
    }
    periods
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_quota_fires_each_threshold_once_per_period() {
    let dir = tempfile::tempdir().unwrap();
    let Some(receiver) = Receiver::start(
        dir.path(),
        Behaviour {
            fail_first: true,
            ..Behaviour::default()
        },
    ) else {
        return;
    };
    let (_upstream, plane) = hundred_token_gateway().await;
    let app = &plane.app;
    let endpoint = register(
        app,
        "acme",
        &receiver,
        json!({"events": ["quota.threshold"], "thresholds": [50, 80, 100]}),
    )
    .await;
    app.put_user_quota("acme", "jane", json!({"tokens_per_day": 1000}))
        .await;

    let ask =
        json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    let mut admitted = 0;
    for _ in 0..15 {
        let status = plane.chat(&ask).await.status().as_u16();
        if status == 429 {
            break;
        }
        assert_eq!(status, 200);
        admitted += 1;
    }
    assert_eq!(
        admitted, 10,
        "ten 100-token requests fill the 1,000-token day"
    );

    let delivered = receiver.delivered(3).await;
    // Settled usage cannot cross a threshold twice: nothing more comes.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let delivered_later = receiver.delivered(3).await;
    assert_eq!(delivered_later.len(), 3, "{delivered_later:#?}");

    let today = Window::Day.start(Timestamp::now()).to_rfc3339();
    let periods = by_period(&delivered);
    assert_eq!(periods.keys().collect::<Vec<_>>(), vec![&today]);
    let fired = &periods[&today];
    for (data, threshold) in fired.iter().zip([50, 80, 100]) {
        assert_eq!(data["threshold_percent"], threshold, "{data}");
        assert_eq!(data["tenant"], "acme");
        assert_eq!(data["subject"], "jane");
        assert_eq!(data["scope"], "user");
        assert_eq!(data["limit"], "tokens_per_day");
        assert_eq!(data["limit_value"], 1000);
        let used = data["used"].as_i64().unwrap();
        assert!(used >= threshold * 10 && used <= 1000, "{data}");
    }
    for delivered in &delivered {
        assert_eq!(delivered["event"]["type"], "quota.threshold");
    }

    // The receiver refused each first attempt: the retry carried the same webhook-id.
    let received = receiver.received();
    for event in &delivered {
        let attempts: Vec<u64> = received
            .iter()
            .filter(|r| r["id"] == event["id"])
            .map(|r| r["answered"].as_u64().unwrap())
            .collect();
        assert_eq!(attempts, vec![500, 200], "attempts of {}", event["id"]);
    }
    let log = deliveries(app, "acme", &endpoint).await;
    assert_eq!(log.len(), 3, "{log:#?}");
    for entry in &log {
        assert_eq!(entry["status"], "delivered", "{entry}");
        assert_eq!(entry["attempts"], 2, "{entry}");
        assert_eq!(entry["last_status"], 200, "{entry}");
        assert_eq!(entry["event"]["type"], "quota.threshold");
    }

    // Another period (yesterday's usage, arriving late — a replayed spill, say) fires again.
    let yesterday = Timestamp(Window::Day.start(Timestamp::now()).0 - 86_400_000);
    let events: Vec<UsageEvent> = (0..10).map(|i| late_event(i, yesterday)).collect();
    let store = tollgate::store::Store::connect(&app.config.database.url, 2)
        .await
        .unwrap();
    store.insert_usage_batch(&events[..6]).await.unwrap();
    store.insert_usage_batch(&events[6..]).await.unwrap();
    let delivered = receiver.delivered(6).await;
    let periods = by_period(&delivered);
    let thresholds = |period: &str| -> Vec<i64> {
        periods[period]
            .iter()
            .map(|data| data["threshold_percent"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(thresholds(&today), vec![50, 80, 100]);
    assert_eq!(thresholds(&yesterday.to_rfc3339()), vec![50, 80, 100]);
    // A replay of the same events is not new usage and fires nothing.
    assert_eq!(store.insert_usage_batch(&events).await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.delivered(6).await.len(), 6);
}

/// 100 tokens of jane's, at noon of `day`.
fn late_event(i: u64, day: Timestamp) -> UsageEvent {
    UsageEvent {
        event_id: format!("late-{i}"),
        request_id: format!("late-{i}"),
        at: Timestamp(day.0 + 12 * 3_600_000 + i as i64),
        tenant_id: "acme".into(),
        subject: "jane".into(),
        credential_id: "key".into(),
        model: "m".into(),
        provider: "up".into(),
        upstream_model: "real-m".into(),
        tally: Tally {
            requests: 1,
            prompt_tokens: 90,
            completion_tokens: 10,
            cached_tokens: 0,
            total_tokens: 100,
            cost_micro_usd: 0,
        },
        reasoning_tokens: 0,
        status: Ending::Ok,
        http_status: 200,
        latency_ms: 10,
        ttft_ms: None,
        streamed: false,
        estimated: false,
    }
}

/// The tenant's own limit fires for the tenant scope (subject null), apart from the user's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_limit_fires_for_the_tenant_scope() {
    let dir = tempfile::tempdir().unwrap();
    let Some(receiver) = Receiver::start(dir.path(), Behaviour::default()) else {
        return;
    };
    let (_upstream, plane) = hundred_token_gateway().await;
    let app = &plane.app;
    register(
        app,
        "acme",
        &receiver,
        json!({"events": ["quota.threshold"], "thresholds": [50]}),
    )
    .await;
    let response = app
        .admin(reqwest::Method::PUT, "/tenants/acme/quota")
        .json(&json!({"tokens_per_month": 400}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let ask =
        json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    for _ in 0..2 {
        assert_eq!(plane.chat(&ask).await.status(), 200);
    }
    let delivered = receiver.delivered(1).await;
    let data = &delivered[0]["event"]["data"];
    assert_eq!(data["scope"], "tenant");
    assert_eq!(data["subject"], Value::Null);
    assert_eq!(data["limit"], "tokens_per_month");
    assert_eq!(data["threshold_percent"], 50);
    assert_eq!(data["used"], 200);
    assert_eq!(
        data["period_start"],
        Window::Month.start(Timestamp::now()).to_rfc3339()
    );
}
