//! Beyond the table: many streams held open at once (the gateway's RSS), and paced streams
//! (chunks neither delayed nor batched).

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use tollgate_testkit::Gate;

use crate::gateway::Gateway;
use crate::knobs::{Dialect, Knobs};
use crate::load::request_body;

/// What holding many streams open at once cost the gateway.
pub struct Held {
    pub streams: usize,
    pub opened: usize,
    pub rss_open: f64,
    pub completed: usize,
    pub open_time: Duration,
}

/// Opens `n` streams through the gateway that the upstream holds after their first chunk,
/// measures the gateway's RSS with all of them open, then lets them finish.
pub async fn hold_streams(gateway: &Gateway, token: &str, gate: &Gate, n: usize) -> Held {
    gate.close();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(n)
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let body = request_body(
        "gpt-4o-mini",
        Dialect::Chat,
        true,
        json!({"bench_hold": true}),
    );
    let url = format!("http://{}/v1/chat/completions", gateway.addr);
    let started = Instant::now();
    let (opened_tx, mut opened_rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (client, body, url, token, opened) = (
                client.clone(),
                body.clone(),
                url.clone(),
                token.to_owned(),
                opened_tx.clone(),
            );
            tokio::spawn(async move {
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                let Ok(response) = response.and_then(|r| r.error_for_status()) else {
                    let _ = opened.send(false);
                    return false;
                };
                let mut stream = response.bytes_stream();
                let mut tail = Vec::new();
                let mut first = true;
                while let Some(Ok(chunk)) = stream.next().await {
                    if std::mem::take(&mut first) {
                        let _ = opened.send(true);
                    }
                    tail.extend_from_slice(&chunk);
                    if tail.len() > 64 {
                        tail.drain(..tail.len() - 64);
                    }
                }
                if first {
                    let _ = opened.send(false);
                }
                String::from_utf8_lossy(&tail).ends_with("data: [DONE]\n\n")
            })
        })
        .collect();
    drop(opened_tx);
    let mut opened = 0;
    for _ in 0..n {
        if let Ok(Some(true)) =
            tokio::time::timeout(Duration::from_secs(60), opened_rx.recv()).await
        {
            opened += 1;
        }
    }
    let open_time = started.elapsed();
    // Let the gateway settle (buffers for every connection are allocated by now).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_open = gateway.rss_mib();
    gate.open();
    let mut completed = 0;
    for task in tasks {
        if task.await.unwrap_or(false) {
            completed += 1;
        }
    }
    Held {
        streams: n,
        opened,
        rss_open,
        completed,
        open_time,
    }
}

/// Chunk arrival on paced streams: how many body reads a stream took (one per event means
/// nothing was batched) and the gaps between consecutive reads (a relay that held chunks back
/// and sent them together would show gaps near zero next to gaps of several paces).
pub struct Paced {
    pub streams: usize,
    pub events: usize,
    pub reads: Vec<usize>,
    /// Between consecutive body reads of the answer's events.
    pub gaps: Vec<Duration>,
}

pub async fn paced(url: &str, bearer: &str, model: &str, knobs: &Knobs) -> Paced {
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let pace = knobs.pace;
    let body = request_body(
        model,
        Dialect::Chat,
        true,
        json!({"bench_pace_ms": pace.as_millis() as u64}),
    );
    let streams = 10;
    let mut out = Paced {
        streams,
        // the role chunk, the content chunks, the finish chunk
        events: knobs.chunks + 2,
        reads: Vec::new(),
        gaps: Vec::new(),
    };
    for _ in 0..streams {
        let response = client
            .post(url)
            .bearer_auth(bearer)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let mut stream = response.bytes_stream();
        let mut last: Option<Instant> = None;
        let mut reads = 0;
        let mut events = 0usize;
        while let Some(Ok(chunk)) = stream.next().await {
            let now = Instant::now();
            reads += 1;
            // Only the answer's events: the gateway drops the usage chunk nobody asked for.
            if events < out.events
                && let Some(last) = last
            {
                out.gaps.push(now - last);
            }
            last = Some(now);
            events += chunk.windows(2).filter(|w| w == b"\n\n").count();
        }
        out.reads.push(reads);
    }
    out.gaps.sort();
    out.reads.sort();
    out
}
