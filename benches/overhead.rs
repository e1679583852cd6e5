//! End-to-end overhead: the same load sent straight to a mock OpenAI upstream and through the
//! release `tollgate` binary (authenticating an API key on every request), non-streaming and
//! streaming, at each concurrency. Prints a markdown table.
//!
//! `cargo bench --bench overhead`. Knobs (environment):
//! - `TOLLGATE_BENCH_CONCURRENCY` (default `1,32`), `TOLLGATE_BENCH_SECONDS` per run (default 4),
//!   `TOLLGATE_BENCH_REQUESTS` cap per run (default none), `TOLLGATE_BENCH_CHUNKS` per stream
//!   (default 20);
//! - `TOLLGATE_BENCH_GATEWAY_CPUS`, e.g. `1`: run the gateway under `taskset -c 1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::response::Response;
use axum::routing::post;
use futures_util::StreamExt;
use serde_json::{Value, json};

const ADMIN_TOKEN: &str = "bench-admin-token-0123456789abcdef0123456789";

struct Knobs {
    concurrency: Vec<usize>,
    seconds: f64,
    max_requests: Option<usize>,
    chunks: usize,
    gateway_cpus: Option<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Json,
    Stream,
}

/// One run's measurements.
struct Run {
    requests: usize,
    /// Failed requests (connection errors, bad statuses, streams without `[DONE]`).
    errors: usize,
    first_error: Option<String>,
    elapsed: Duration,
    latencies: Vec<Duration>,
    first_bytes: Vec<Duration>,
}

fn main() {
    let knobs = Knobs::from_env();
    // The upstream gets its own runtime and thread, as a separate server would.
    let upstream_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let upstream = upstream_runtime.block_on(start_upstream(knobs.chunks));
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut gateway = Gateway::start(&dir, upstream, knobs.gateway_cpus.as_deref());
    let key = client_runtime.block_on(gateway.api_key());

    let mut rows = Vec::new();
    for mode in [Mode::Json, Mode::Stream] {
        for &concurrency in &knobs.concurrency {
            let direct = Target {
                url: format!("http://{upstream}/v1/chat/completions"),
                bearer: "sk-bench".to_owned(),
                model: "real-model",
            };
            let through = Target {
                url: format!("http://{}/v1/chat/completions", gateway.addr),
                bearer: key.clone(),
                model: "bench",
            };
            let direct = client_runtime.block_on(load(&direct, mode, concurrency, &knobs));
            let through = client_runtime.block_on(load(&through, mode, concurrency, &knobs));
            gateway.check_alive();
            rows.push((mode, concurrency, direct, through));
        }
    }
    gateway.stop();
    print_table(&knobs, &rows);
}

// === the upstream ===

async fn start_upstream(chunks: usize) -> SocketAddr {
    let completion = Bytes::from(
        json!({
            "id": "chatcmpl-bench", "object": "chat.completion", "created": 1, "model": "real-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there, this is a benchmark answer."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}
        })
        .to_string(),
    );
    let mut sse = String::new();
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": "real-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    sse.push_str(&format!(
        "data: {}\n\n",
        chunk(json!({"role": "assistant", "content": ""}), Value::Null)
    ));
    for i in 0..chunks {
        sse.push_str(&format!(
            "data: {}\n\n",
            chunk(json!({"content": format!("tok{i} ")}), Value::Null)
        ));
    }
    sse.push_str(&format!("data: {}\n\n", chunk(json!({}), json!("stop"))));
    let usage = json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": "real-model",
        "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks}});
    sse.push_str(&format!("data: {usage}\n\n"));
    sse.push_str("data: [DONE]\n\n");
    // One write per event, as a real upstream sends them.
    let events: Arc<Vec<Bytes>> = Arc::new(
        sse.split_inclusive("\n\n")
            .map(|e| Bytes::from(e.to_owned()))
            .collect(),
    );

    let app = Router::new().route(
        "/v1/chat/completions",
        post(move |body: Bytes| {
            let completion = completion.clone();
            let events = events.clone();
            async move {
                let streaming = serde_json::from_slice::<Value>(&body)
                    .map(|v| v["stream"] == true)
                    .unwrap_or(false);
                if streaming {
                    let stream = futures_util::stream::iter(
                        (0..events.len()).map(move |i| Ok::<_, Infallible>(events[i].clone())),
                    );
                    Response::builder()
                        .header("content-type", "text/event-stream")
                        .body(Body::from_stream(stream))
                        .unwrap()
                } else {
                    Response::builder()
                        .header("content-type", "application/json")
                        .body(Body::from(completion))
                        .unwrap()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

// === the gateway process ===

struct Gateway {
    addr: SocketAddr,
    child: Child,
    log: std::path::PathBuf,
}

impl Gateway {
    fn start(dir: &tempfile::TempDir, upstream: SocketAddr, cpus: Option<&str>) -> Self {
        let addr = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap()
        };
        let config = dir.path().join("tollgate.toml");
        let mut file = std::fs::File::create(&config).unwrap();
        write!(
            file,
            r#"
[server]
listen = "{addr}"
[database]
url = "sqlite://{db}"
[log]
level = "info"
[[providers]]
name = "upstream"
kind = "openai"
base_url = "http://{upstream}/v1"
api_key_env = "TOLLGATE_BENCH_UPSTREAM_KEY"
[[models]]
name = "bench"
targets = [{{ provider = "upstream", model = "real-model" }}]
"#,
            db = dir.path().join("tollgate.db").display(),
        )
        .unwrap();
        let binary = env!("CARGO_BIN_EXE_tollgate");
        let mut command = match cpus {
            Some(cpus) => {
                let mut command = Command::new("taskset");
                command.args(["-c", cpus, binary]);
                command
            }
            None => Command::new(binary),
        };
        let log = dir.path().join("gateway.log");
        command
            .args(["serve", "--config"])
            .arg(&config)
            .env("TOLLGATE_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("TOLLGATE_BENCH_UPSTREAM_KEY", "sk-bench")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let child = command.spawn().expect("start the tollgate binary");
        let mut gateway = Self { addr, child, log };
        gateway.wait_until_ready();
        gateway
    }

    // Blocking sleep is right here: this is the bench's main thread, not a runtime worker.
    #[allow(clippy::disallowed_methods)]
    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(self.addr).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the gateway exited ({status}):\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the gateway did not start:\n{}", self.log());
    }

    fn check_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("the gateway exited ({status}):\n{}", self.log());
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A tenant, a user and an API key through the admin API.
    async fn api_key(&self) -> String {
        let client = reqwest::Client::new();
        let admin = |path: &str| format!("http://{}/admin/v1{path}", self.addr);
        let ok = |r: reqwest::Response| {
            assert!(r.status().is_success(), "{}", r.status());
            r
        };
        ok(client
            .post(admin("/tenants"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"id": "bench", "name": "Bench"}))
            .send()
            .await
            .unwrap());
        ok(client
            .put(admin("/tenants/bench/users/load"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({}))
            .send()
            .await
            .unwrap());
        let key: Value = ok(client
            .post(admin("/tenants/bench/users/load/keys"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"name": "bench"}))
            .send()
            .await
            .unwrap())
        .json()
        .await
        .unwrap();
        key["key"].as_str().unwrap().to_owned()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop();
    }
}

// === the load ===

struct Target {
    url: String,
    bearer: String,
    model: &'static str,
}

async fn load(target: &Target, mode: Mode, concurrency: usize, knobs: &Knobs) -> Run {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let body = Bytes::from(
        json!({
            "model": target.model,
            "messages": [{"role": "user", "content": "Say hello to the benchmark."}],
            "stream": mode == Mode::Stream,
        })
        .to_string(),
    );
    // Warm the connection pools (and the gateway's key cache) before measuring.
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
            let target = Target {
                url: target.url.clone(),
                bearer: target.bearer.clone(),
                model: target.model,
            };
            tokio::spawn(async move {
                let mut samples = Vec::new();
                while Instant::now() < until
                    && budget
                        .fetch_update(
                            std::sync::atomic::Ordering::Relaxed,
                            std::sync::atomic::Ordering::Relaxed,
                            |n| n.checked_sub(1),
                        )
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
async fn one(
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
            if !String::from_utf8_lossy(&tail).ends_with("data: [DONE]\n\n") {
                return Err(format!("{}: a stream without [DONE]", target.url));
            }
            Ok((started.elapsed(), first))
        }
    }
}

// === the report ===

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn print_table(knobs: &Knobs, rows: &[(Mode, usize, Run, Run)]) {
    println!();
    println!(
        "tollgate overhead: {:.1} s per run, {} chunks per stream, gateway on {}",
        knobs.seconds,
        knobs.chunks,
        knobs
            .gateway_cpus
            .as_deref()
            .map_or("any CPU".to_owned(), |c| format!("CPU {c} (taskset)"))
    );
    println!();
    println!(
        "| mode | conc | direct req/s | gateway req/s | ratio | p50 ms direct / gw (+added) | p90 ms direct / gw (+added) | p99 ms direct / gw (+added) | TTFB p50 ms direct / gw | errors direct / gw |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (mode, concurrency, direct, through) in rows {
        let rps = |run: &Run| run.requests as f64 / run.elapsed.as_secs_f64();
        let cell = |p: f64| {
            let (d, g) = (
                percentile(&direct.latencies, p),
                percentile(&through.latencies, p),
            );
            format!("{:.3} / {:.3} (+{:.3})", ms(d), ms(g), ms(g) - ms(d))
        };
        let ttfb = if *mode == Mode::Stream {
            format!(
                "{:.3} / {:.3}",
                ms(percentile(&direct.first_bytes, 0.5)),
                ms(percentile(&through.first_bytes, 0.5))
            )
        } else {
            "–".to_owned()
        };
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.2} | {} | {} | {} | {} | {} / {} |",
            if *mode == Mode::Json {
                "json"
            } else {
                "stream"
            },
            concurrency,
            rps(direct),
            rps(through),
            rps(through) / rps(direct),
            cell(0.5),
            cell(0.9),
            cell(0.99),
            ttfb,
            direct.errors,
            through.errors,
        );
    }
    for (_, _, direct, through) in rows {
        for error in [&direct.first_error, &through.first_error]
            .into_iter()
            .flatten()
        {
            println!("first error: {error}");
        }
    }
    println!();
}

impl Knobs {
    fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self {
            concurrency: var("TOLLGATE_BENCH_CONCURRENCY")
                .unwrap_or_else(|| "1,32".into())
                .split(',')
                .map(|c| {
                    c.trim()
                        .parse()
                        .expect("TOLLGATE_BENCH_CONCURRENCY: numbers")
                })
                .collect(),
            seconds: var("TOLLGATE_BENCH_SECONDS").map_or(4.0, |s| s.parse().expect("seconds")),
            max_requests: var("TOLLGATE_BENCH_REQUESTS").map(|n| n.parse().expect("a count")),
            chunks: var("TOLLGATE_BENCH_CHUNKS").map_or(20, |n| n.parse().expect("a count")),
            gateway_cpus: var("TOLLGATE_BENCH_GATEWAY_CPUS"),
        }
    }
}
