//! A randomised month of usage adds up, in every format and the report, to the usage events.

use reqwest::Method;

use super::{ExportSums, Rng, export, export_sums, random_event, store_events};
use crate::support::{Backend, TestApp, json, on_both_backends};

on_both_backends!(
    every_export_and_the_report_reconcile_to_the_events,
    a_closed_month_exports_identical_bytes,
);

async fn every_export_and_the_report_reconcile_to_the_events(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut rng = Rng::new(0x5eed);
    let events: Vec<_> = (0..1500).map(|i| random_event(&mut rng, i)).collect();
    let store = store_events(&app, &events).await;
    let from_events = ExportSums::from(store.usage_event_sums().await.unwrap());
    assert_eq!(from_events.requests, 1500);

    for format in ["csv", "jsonl", "focus"] {
        for group_by in [
            "tenant,user,model,day",
            "tenant,provider,hour",
            "month",
            "model",
        ] {
            let (status, body) = export(
                &app,
                &format!("from=2026-10-01&to=2026-11-01&format={format}&group_by={group_by}"),
            )
            .await;
            assert_eq!(status, 200, "{format} {group_by}: {body}");
            assert_eq!(
                export_sums(format, &body),
                from_events,
                "{format} grouped by {group_by}"
            );
        }
    }

    // Per tenant: the report and the tenant's export both match that tenant's events.
    let mut total = ExportSums::default();
    for tenant in ["tenant-0", "tenant-1", "tenant-2"] {
        app.create_tenant(tenant).await;
        let mut expected = ExportSums::default();
        for event in events.iter().filter(|e| e.tenant_id == tenant) {
            expected.requests += 1;
            expected.total_tokens += event.tally.total_tokens;
            expected.cost_micro_usd += event.tally.cost_micro_usd;
        }
        let (status, report) = json(
            app.admin(
                Method::GET,
                &format!("/tenants/{tenant}/usage?from=2026-10-01&to=2026-11-01&group_by=user,model,provider,day"),
            )
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{report}");
        let mut from_rows = ExportSums::default();
        for row in report["rows"].as_array().unwrap() {
            from_rows.requests += row["requests"].as_i64().unwrap();
            from_rows.total_tokens += row["total_tokens"].as_i64().unwrap();
            from_rows.cost_micro_usd +=
                tollgate::billing::money::parse_dollars(row["cost_usd"].as_str().unwrap()).unwrap();
        }
        assert_eq!(from_rows, expected, "{tenant}: report rows");
        assert_eq!(report["totals"]["total_tokens"], expected.total_tokens);
        assert_eq!(report["totals"]["cost_micro_usd"], expected.cost_micro_usd);

        let (_, body) = export(
            &app,
            &format!("from=2026-10-01&to=2026-11-01&tenant={tenant}&format=jsonl"),
        )
        .await;
        assert_eq!(export_sums("jsonl", &body), expected, "{tenant}: export");
        total.requests += expected.requests;
        total.total_tokens += expected.total_tokens;
        total.cost_micro_usd += expected.cost_micro_usd;
    }
    assert_eq!(total, from_events);
}

async fn a_closed_month_exports_identical_bytes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut rng = Rng::new(77);
    let events: Vec<_> = (0..400).map(|i| random_event(&mut rng, i)).collect();
    store_events(&app, &events).await;
    for format in ["csv", "jsonl", "focus"] {
        let query = format!(
            "from=2026-10-01&to=2026-11-01&format={format}&group_by=tenant,user,model,provider,hour"
        );
        let (_, first) = export(&app, &query).await;
        let (_, second) = export(&app, &query).await;
        assert!(first.lines().count() > 100, "{format}: a real export");
        assert_eq!(first, second, "{format}: same bytes twice");
    }
}
