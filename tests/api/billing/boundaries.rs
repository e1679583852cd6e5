//! The last millisecond of a day or month and the first of the next land on their own sides.

use reqwest::Method;
use tollgate::clock::Timestamp;

use super::{Rng, export, parse_csv, random_event, store_events};
use crate::support::{Backend, TestApp, json, on_both_backends};

on_both_backends!(events_at_midnight_land_in_the_right_day_and_month);

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

async fn events_at_midnight_land_in_the_right_day_and_month(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_tenant("acme").await;
    let mut rng = Rng::new(3);
    // Token counts 1, 10, 100, … say which event a sum holds.
    let times = [
        "2026-10-15T23:59:59.999Z",
        "2026-10-16T00:00:00.000Z",
        "2026-10-31T23:59:59.999Z",
        "2026-11-01T00:00:00.000Z",
        "2026-12-31T23:59:59.999Z",
        "2027-01-01T00:00:00.000Z",
    ];
    let events: Vec<_> = times
        .iter()
        .enumerate()
        .map(|(i, time)| {
            let mut event = random_event(&mut rng, i as u64);
            event.tenant_id = "acme".into();
            event.at = at(time);
            event.tally.prompt_tokens = 10_i64.pow(i as u32);
            event.tally.completion_tokens = 0;
            event.tally.total_tokens = event.tally.prompt_tokens;
            event
        })
        .collect();
    store_events(&app, &events).await;

    let report = |group_by: &'static str, from: &'static str, to: &'static str| {
        let app = &app;
        async move {
            let (status, body) = json(
                app.admin(
                    Method::GET,
                    &format!("/tenants/acme/usage?from={from}&to={to}&group_by={group_by}"),
                )
                .send()
                .await
                .unwrap(),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            body["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|row| {
                    (
                        row["period_start"].as_str().unwrap().to_owned(),
                        row["total_tokens"].as_i64().unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let days = report("day", "2026-10-01", "2027-02-01").await;
    assert_eq!(
        days,
        vec![
            ("2026-10-15T00:00:00.000Z".to_owned(), 1),
            ("2026-10-16T00:00:00.000Z".to_owned(), 10),
            ("2026-10-31T00:00:00.000Z".to_owned(), 100),
            ("2026-11-01T00:00:00.000Z".to_owned(), 1_000),
            ("2026-12-31T00:00:00.000Z".to_owned(), 10_000),
            ("2027-01-01T00:00:00.000Z".to_owned(), 100_000),
        ]
    );
    let months = report("month", "2026-10-01", "2027-02-01").await;
    assert_eq!(
        months,
        vec![
            ("2026-10-01T00:00:00.000Z".to_owned(), 111),
            ("2026-11-01T00:00:00.000Z".to_owned(), 1_000),
            ("2026-12-01T00:00:00.000Z".to_owned(), 10_000),
            ("2027-01-01T00:00:00.000Z".to_owned(), 100_000),
        ]
    );
    let hours = report("hour", "2026-10-31T23:00:00Z", "2026-11-01T01:00:00Z").await;
    assert_eq!(
        hours,
        vec![
            ("2026-10-31T23:00:00.000Z".to_owned(), 100),
            ("2026-11-01T00:00:00.000Z".to_owned(), 1_000),
        ]
    );

    // `to` is exclusive: October's export holds the 23:59:59.999 event, not the midnight one.
    let (status, body) = export(&app, "from=2026-10-01&to=2026-11-01&group_by=month").await;
    assert_eq!(status, 200);
    let records = parse_csv(&body);
    assert_eq!(records.len(), 2, "{body}");
    assert_eq!(records[1][0], "2026-10-01T00:00:00.000Z");
    assert_eq!(records[1][4], "111", "total_tokens of October");

    // A time that is not on an hour is refused, naming the field.
    let (status, body) = json(
        app.admin(
            Method::GET,
            "/tenants/acme/usage?from=2026-10-01T00:30:00Z&to=2026-11-01",
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`from`"),
        "{body}"
    );
}
