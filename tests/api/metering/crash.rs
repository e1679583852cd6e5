//! `kill -9` under load: the usage journal hands every finished request's event to the
//! operating system as it is recorded, so a crashed process loses none of the usage it had
//! finished — it is replayed on the next start, once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tollgate::store::Store;
use tollgate_testkit::Upstream;

use super::lifecycle::{jane_key, serve_on};
use crate::support::{Backend, on_both_backends};

on_both_backends!(kill_9_under_load_loses_no_finished_request);

/// Requests that finished this long before the kill must be billed.
const MARGIN: Duration = Duration::from_millis(50);

async fn kill_9_under_load_loses_no_finished_request(backend: Backend) {
    let upstream = Upstream::healthy().await;
    let dir = tempfile::tempdir().unwrap();
    let database = backend.fresh_database(&dir).await;
    let (mut child, base) = serve_on(dir.path(), &database, &upstream.base_url, "");
    let key = jane_key(&base).await;

    // 20 clients in a loop; every request sent, and each finished one with when it finished.
    let finished: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let sent: Arc<Mutex<Vec<String>>> = Arc::default();
    let clients: Vec<_> = (0..20)
        .map(|client| {
            let (base, key) = (base.clone(), key.clone());
            let (finished, sent) = (finished.clone(), sent.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                for n in 0.. {
                    let id = format!("k-{client}-{n}");
                    sent.lock().unwrap().push(id.clone());
                    let response = http
                        .post(format!("{base}/v1/chat/completions"))
                        .bearer_auth(&key)
                        .header("x-request-id", &id)
                        .json(
                            &json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
                        )
                        .send()
                        .await;
                    let Ok(response) = response else { return };
                    if response.status() != 200 || response.bytes().await.is_err() {
                        return;
                    }
                    finished.lock().unwrap().push((id, Instant::now()));
                }
            })
        })
        .collect();
    // Under load until well past the bar below (on a busy machine that takes longer than on
    // an idle one), then killed mid-stride.
    let loaded = Instant::now();
    while finished.lock().unwrap().len() < 300 && loaded.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = std::process::Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    let killed = Instant::now();
    assert!(status.success());
    child.wait().unwrap();
    for client in clients {
        client.await.unwrap();
    }
    let finished = finished.lock().unwrap().clone();
    let must_be_billed: Vec<&String> = finished
        .iter()
        .filter(|(_, at)| *at + MARGIN <= killed)
        .map(|(id, _)| id)
        .collect();
    let recent = finished.len() - must_be_billed.len();
    assert!(
        must_be_billed.len() > 100,
        "the load ran: {} requests finished",
        finished.len()
    );

    // The next start replays what the crashed run had journaled.
    let (mut restarted, _) = serve_on(dir.path(), &database, &upstream.base_url, "");
    let store = Store::connect(&database, 2).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut missing = must_be_billed.len();
    while missing > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        missing = 0;
        for id in &must_be_billed {
            if store.usage_event(id).await.unwrap().is_none() {
                missing += 1;
            }
        }
    }
    crate::cli::terminate(&restarted);
    assert!(restarted.wait().unwrap().success());
    assert_eq!(
        missing,
        0,
        "of {} requests finished >= 50 ms before the kill ({recent} finished later), {missing} were never billed",
        must_be_billed.len()
    );
    // And none twice: every stored event is one distinct request.
    let sent = sent.lock().unwrap().clone();
    let mut billed = 0;
    for id in &sent {
        if store.usage_event(id).await.unwrap().is_some() {
            billed += 1;
        }
    }
    assert_eq!(
        store.usage_count().await.unwrap(),
        billed,
        "an event stored twice"
    );
}
