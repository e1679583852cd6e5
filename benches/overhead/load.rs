//! The load: requests through the gateway or straight to the upstream, timed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::knobs::{Dialect, Knobs, Mode};

/// Where requests go, as whom, for which model, in which API.
#[derive(Clone)]
pub struct Target {
    pub url: String,
    pub bearer: String,
    pub model: &'static str,
    pub dialect: Dialect,
}

impl Target {
    /// Straight to the mock upstream, with its key and its name for the model.
    pub fn upstream(addr: SocketAddr, dialect: Dialect) -> Self {
        Self {
            url: format!("http://{addr}{}", dialect.path()),
            bearer: "sk-bench".to_owned(),
            model: dialect.models().1,
            dialect,
        }
    }

    /// Through the gateway, with a user's token and the model name the gateway routes.
    pub fn gateway(addr: SocketAddr, token: &str, dialect: Dialect) -> Self {
        Self {
            url: format!("http://{addr}{}", dialect.path()),
            bearer: token.to_owned(),
            model: dialect.models().0,
            dialect,
        }
    }
}

pub fn request_body(model: &str, dialect: Dialect, stream: bool, extra: Value) -> Bytes {
    let mut body = json!({
        "model": model,
        "messages": [{"role": "user", "content": "Say hello to the benchmark."}],
        "stream": stream,
    });
    if dialect == Dialect::Messages {
        body["max_tokens"] = json!(256);
    }
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    Bytes::from(body.to_string())
}

pub async fn load(target: &Target, mode: Mode, concurrency: usize, knobs: &Knobs) -> Run {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let body = request_body(
        target.model,
        target.dialect,
        mode == Mode::Stream,
        Value::Null,
    );
    // Warm the connection pools (and the gateway's caches) before measuring.
    let warm_until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < warm_until {
        let _ = one(&client, target, &body, mode).await;
    }
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(knobs.seconds);
    let budget = Arc::new(std::sync::atomic::AtomicUsize::new(
        knobs.max_requests.unwrap_or(usize::MAX),
    ));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, body, budget) = (client.clone(), body.clone(), budget.clone());
            let target = target.clone();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                while Instant::now() < until
                    && budget
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                        .is_ok()
                {
                    samples.push(one(&client, &target, &body, mode).await);
                }
                samples
            })
        })
        .collect();
    let mut run = Run {
        requests: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        first_bytes: Vec::new(),
    };
    for worker in workers {
        for sample in worker.await.unwrap() {
            match sample {
                Ok((latency, first_byte)) => {
                    run.latencies.push(latency);
                    run.first_bytes.extend(first_byte);
                }
                Err(error) => {
                    run.errors += 1;
                    run.first_error.get_or_insert(error);
                }
            }
        }
    }
    run.elapsed = started.elapsed();
    run.requests = run.latencies.len();
    run.latencies.sort();
    run.first_bytes.sort();
    run
}

/// One request: its latency, and for a stream the time to the first body bytes.
pub async fn one(
    client: &reqwest::Client,
    target: &Target,
    body: &Bytes,
    mode: Mode,
) -> Result<(Duration, Option<Duration>), String> {
    let started = Instant::now();
    let response = client
        .post(&target.url)
        .bearer_auth(&target.bearer)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .map_err(|e| format!("{}: {e:?}", target.url))?;
    if !response.status().is_success() {
        return Err(format!("{}: status {}", target.url, response.status()));
    }
    match mode {
        Mode::Json => {
            response
                .bytes()
                .await
                .map_err(|e| format!("{}: {e:?}", target.url))?;
            Ok((started.elapsed(), None))
        }
        Mode::Stream => {
            let mut stream = response.bytes_stream();
            let mut first = None;
            let mut tail = Vec::new();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| format!("{}: {e:?}", target.url))?;
                first.get_or_insert_with(|| started.elapsed());
                tail.extend_from_slice(&chunk);
                if tail.len() > 64 {
                    tail.drain(..tail.len() - 64);
                }
            }
            if !String::from_utf8_lossy(&tail).ends_with(target.dialect.end()) {
                return Err(format!("{}: a stream without its end", target.url));
            }
            Ok((started.elapsed(), first))
        }
    }
}

/// One run's measurements.
pub struct Run {
    pub requests: usize,
    /// Failed requests (connection errors, bad statuses, streams without `[DONE]`).
    pub errors: usize,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
    pub first_bytes: Vec<Duration>,
}
