//! End-to-end overhead: the same load sent straight to a mock upstream and through the release
//! `tollgate` binary, non-streaming and streaming, at each concurrency, in OpenAI's chat
//! completions and in Anthropic's Messages API (native to an Anthropic-kind upstream). The gateway does
//! its full work on every request: an RS256 JWT verified (one token per client, as real clients
//! reuse theirs; the verified-token cache serves repeats), a user quota admitted and settled,
//! a usage event written, a log line. Prints a markdown table with the gateway's RSS and CPU,
//! then holds many streams open at once and reports the RSS, then checks on a paced stream
//! that chunks are neither delayed nor batched.
//!
//! `cargo bench --bench overhead`. Knobs (environment):
//! - `TOLLGATE_BENCH_CONCURRENCY` (default `1,32,128`), `TOLLGATE_BENCH_SECONDS` per run
//!   (default 3), `TOLLGATE_BENCH_REQUESTS` cap per run (default none), `TOLLGATE_BENCH_CHUNKS`
//!   per stream (default 20);
//! - `TOLLGATE_BENCH_OPEN_STREAMS` held open at once for the RSS check (default 1000; 0 skips);
//! - `TOLLGATE_BENCH_PACE_MS` between chunks of the paced stream check (default 5; 0 skips);
//! - `TOLLGATE_BENCH_DIALECTS` (default `chat,messages`): which APIs get rows;
//! - `TOLLGATE_BENCH_GATEWAY_CPUS`, e.g. `1`: run the gateway under `taskset -c 1`;
//! - `TOLLGATE_BENCH_BUSY_POLL`, e.g. `150us`: the gateway's `server.busy_poll` (default off,
//!   as in the gateway's own default).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tollgate_testkit::{Answer, Gate, Pace, Recording, Reply, Stream, Upstream, anthropic, openai};

const ADMIN_TOKEN: &str = "bench-admin-token-0123456789abcdef0123456789";
const ISSUER: &str = "https://idp.bench.example";
const AUDIENCE: &str = "tollgate-bench";

struct Knobs {
    concurrency: Vec<usize>,
    seconds: f64,
    max_requests: Option<usize>,
    chunks: usize,
    open_streams: usize,
    pace: Duration,
    gateway_cpus: Option<String>,
    busy_poll: Option<String>,
    dialects: Vec<Dialect>,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Json,
    Stream,
}

/// Which API the client speaks: OpenAI's chat completions, or Anthropic's Messages (to an
/// Anthropic-kind upstream, natively).
#[derive(Clone, Copy, PartialEq)]
enum Dialect {
    Chat,
    Messages,
}

impl Dialect {
    fn path(self) -> &'static str {
        match self {
            Self::Chat => "/v1/chat/completions",
            Self::Messages => "/v1/messages",
        }
    }

    /// The model the gateway routes, and the upstream's name for it.
    fn models(self) -> (&'static str, &'static str) {
        match self {
            Self::Chat => ("bench", "real-model"),
            Self::Messages => ("bench-claude", "real-claude"),
        }
    }

    /// How a complete stream of this dialect ends.
    fn end(self) -> &'static str {
        match self {
            Self::Chat => "data: [DONE]\n\n",
            Self::Messages => "data: {\"type\":\"message_stop\"}\n\n",
        }
    }

    fn name(self, mode: Mode) -> &'static str {
        match (self, mode) {
            (Self::Chat, Mode::Json) => "json",
            (Self::Chat, Mode::Stream) => "stream",
            (Self::Messages, Mode::Json) => "messages json",
            (Self::Messages, Mode::Stream) => "messages stream",
        }
    }
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

/// What the gateway process used during one run.
#[derive(Default, Clone, Copy)]
struct Usage {
    /// CPU seconds (user + system) over the run.
    cpu: f64,
    /// Highest RSS sampled during the run, in MiB.
    peak_rss: f64,
}

struct Row {
    dialect: Dialect,
    mode: Mode,
    concurrency: usize,
    direct: Run,
    through: Run,
    usage: Usage,
}

fn main() {
    let knobs = Knobs::from_env();
    // The upstream gets its own runtime and thread, as a separate server would.
    let upstream_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // Holds the streams that ask for it after their first chunk (see `hold_streams`).
    let gate = Gate::closed();
    let upstream = upstream_runtime.block_on(start_upstream(knobs.chunks, gate.clone()));
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut gateway = Gateway::start(&dir, upstream, &knobs);
    let token = client_runtime.block_on(gateway.provision());
    // Idle means started, warmed up (the tokenizer loads in the background) and not serving.
    client_runtime.block_on(async { tokio::time::sleep(Duration::from_millis(1500)).await });
    let idle_rss = gateway.rss_mib();

    let mut rows = Vec::new();
    for &dialect in &knobs.dialects {
        for mode in [Mode::Json, Mode::Stream] {
            for &concurrency in &knobs.concurrency {
                let (model, upstream_model) = dialect.models();
                let direct = Target {
                    url: format!("http://{upstream}{}", dialect.path()),
                    bearer: "sk-bench".to_owned(),
                    model: upstream_model,
                    dialect,
                };
                let through = Target {
                    url: format!("http://{}{}", gateway.addr, dialect.path()),
                    bearer: token.clone(),
                    model,
                    dialect,
                };
                let direct = client_runtime.block_on(load(&direct, mode, concurrency, &knobs));
                let sampler = Sampler::start(gateway.pid());
                let through = client_runtime.block_on(load(&through, mode, concurrency, &knobs));
                let usage = sampler.stop();
                gateway.check_alive();
                rows.push(Row {
                    dialect,
                    mode,
                    concurrency,
                    direct,
                    through,
                    usage,
                });
            }
        }
    }
    print_table(&knobs, &rows, idle_rss);
    if knobs.open_streams > 0 {
        let held =
            client_runtime.block_on(hold_streams(&gateway, &token, &gate, knobs.open_streams));
        gateway.check_alive();
        held.print();
    }
    if !knobs.pace.is_zero() {
        let direct = client_runtime.block_on(paced(
            &format!("http://{upstream}/v1/chat/completions"),
            "sk-bench",
            "real-model",
            &knobs,
        ));
        let through = client_runtime.block_on(paced(
            &format!("http://{}/v1/chat/completions", gateway.addr),
            &token,
            "bench",
            &knobs,
        ));
        gateway.check_alive();
        print_paced(&knobs, &direct, &through);
    }
    println!(
        "gateway RSS high-water mark over the whole bench: {:.1} MiB",
        gateway.status_mib("VmHWM:")
    );
    gateway.stop();
}

// === the upstream ===

/// The test kit's mock upstream, on whatever runtime calls this: OpenAI's chat completions and
/// Anthropic's Messages, each answer rendered once and every event its own body frame, as a
/// real upstream writes them. What a chat stream's request body says steers it (the gateway
/// forwards unknown fields): `bench_hold: true` holds it after its first chunk while `gate` is
/// closed, `bench_pace_ms` paces its chunks. It records nothing: a log would only grow.
async fn start_upstream(chunks: usize, gate: Arc<Gate>) -> SocketAddr {
    let answer = |model: &str, completion: usize| Answer {
        model: model.to_owned(),
        text: "Hello there, this is a benchmark answer.".to_owned(),
        pieces: (0..chunks).map(|i| format!("tok{i} ")).collect(),
        tool: None,
        usage: Some(tollgate_testkit::Usage::new(12, completion as u64)),
    };
    let frames =
        |frames: Vec<String>| -> Vec<Bytes> { frames.into_iter().map(Bytes::from).collect() };
    let completion = Bytes::from(openai::chat(&answer("real-model", 9)).to_string());
    // With the usage chunk, asked for or not.
    let completion_events = frames(openai::chat_stream(&answer("real-model", chunks)).whole());
    let message = Bytes::from(anthropic::message(&answer("real-claude", 9)).to_string());
    let mut events = anthropic::events(&answer("real-claude", chunks));
    // Without the kit's ping, as this bench's Anthropic streams always were.
    events
        .head
        .retain(|event| !event.starts_with("event: ping"));
    let message_events = frames(events.whole());

    let upstream = Upstream::serve(Recording::Off, move |request| {
        let streaming = request.body["stream"] == true;
        if request.path == "/v1/messages" {
            return match streaming {
                false => Reply::body(200, message.clone()),
                true => Reply::Stream(Stream::sse(message_events.iter().cloned())),
            };
        }
        if !streaming {
            return Reply::body(200, completion.clone());
        }
        let pace = if request.body["bench_hold"] == true {
            Pace::Held(gate.clone())
        } else if let Some(ms) = request.body["bench_pace_ms"].as_u64() {
            Pace::Between(Duration::from_millis(ms))
        } else {
            Pace::Free
        };
        Reply::Stream(Stream::sse(completion_events.iter().cloned()).paced(pace))
    })
    .await;
    upstream.addr()
}

// === the gateway process ===

struct Gateway {
    addr: SocketAddr,
    child: Child,
    log: std::path::PathBuf,
}

impl Gateway {
    fn start(dir: &tempfile::TempDir, upstream: SocketAddr, knobs: &Knobs) -> Self {
        let cpus = knobs.gateway_cpus.as_deref();
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
busy_poll = "{busy_poll}"
[database]
url = "sqlite://{db}"
[log]
level = "info"
[metering]
spill_dir = "{spill}"
[[providers]]
name = "upstream"
kind = "openai"
base_url = "http://{upstream}/v1"
api_key_env = "TOLLGATE_BENCH_UPSTREAM_KEY"
[[providers]]
name = "claude-upstream"
kind = "anthropic"
base_url = "http://{upstream}"
api_key_env = "TOLLGATE_BENCH_UPSTREAM_KEY"
[[models]]
name = "bench"
targets = [{{ provider = "upstream", model = "real-model" }}]
price = {{ input_per_mtok = 0.15, output_per_mtok = 0.60 }}
[[models]]
name = "bench-claude"
targets = [{{ provider = "claude-upstream", model = "real-claude" }}]
price = {{ input_per_mtok = 0.15, output_per_mtok = 0.60 }}
"#,
            db = dir.path().join("tollgate.db").display(),
            busy_poll = knobs.busy_poll.as_deref().unwrap_or("0s"),
            spill = dir.path().join("spill").display(),
        )
        .unwrap();
        let binary = env!("CARGO_BIN_EXE_tollgate");
        let mut command = match cpus {
            Some(cpus) => {
                // taskset execs the gateway: the child's pid is the gateway's.
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

    fn pid(&self) -> u32 {
        self.child.id()
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

    fn rss_mib(&self) -> f64 {
        self.status_mib("VmRSS:")
    }

    /// A `kB` line of `/proc/<pid>/status`, in MiB.
    fn status_mib(&self, field: &str) -> f64 {
        status_kib(self.pid(), field) / 1024.0
    }

    /// A tenant, an RS256 issuer with a PEM public key, a user with a quota; returns a token
    /// for that user (valid for an hour).
    async fn provision(&self) -> String {
        let client = reqwest::Client::new();
        let admin = |method: reqwest::Method, path: &str, body: Value| {
            client
                .request(method, format!("http://{}/admin/v1{path}", self.addr))
                .bearer_auth(ADMIN_TOKEN)
                .json(&body)
                .send()
        };
        let ok = |r: reqwest::Response| {
            assert!(r.status().is_success(), "{}", r.status());
            r
        };
        let fixture = |name: &str| {
            std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/fixtures/keys")
                    .join(name),
            )
            .unwrap()
        };
        use reqwest::Method;
        ok(admin(
            Method::POST,
            "/tenants",
            json!({"id": "bench", "name": "Bench"}),
        )
        .await
        .unwrap());
        ok(admin(
            Method::POST,
            "/issuers",
            json!({"issuer": ISSUER, "tenant": "bench", "audiences": [AUDIENCE],
                   "public_key_pem": fixture("rsa_public.pem"), "algorithms": ["RS256"]}),
        )
        .await
        .unwrap());
        ok(admin(Method::PUT, "/tenants/bench/users/load", json!({}))
            .await
            .unwrap());
        // Limits far above what the bench uses, so every request is admitted after real work:
        // the prompt is estimated, every window reserved and settled.
        ok(admin(
            Method::PUT,
            "/tenants/bench/users/load/quota",
            json!({"tokens_per_day": 1_000_000_000_000_i64, "tokens_per_month": 1_000_000_000_000_i64,
                   "requests_per_minute": 1_000_000_000_i64, "tokens_per_minute": 1_000_000_000_000_i64,
                   "cost_usd_per_month": 1_000_000}),
        )
        .await
        .unwrap());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = json!({"iss": ISSUER, "sub": "load", "aud": AUDIENCE, "iat": now,
                            "exp": now + 3600, "jti": "bench-token-1"});
        let key =
            jsonwebtoken::EncodingKey::from_rsa_pem(fixture("rsa_private.pem").as_bytes()).unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some("bench".into());
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
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

fn status_kib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may hold spaces; the fields after it are space-separated.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: state is field 3, utime 14 and stime 15 (1-based in proc(5)).
    let ticks = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15)) / clock_ticks()
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Samples the gateway's RSS every 20 ms on its own thread, and its CPU time at both ends.
struct Sampler {
    pid: u32,
    cpu_before: f64,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<f64>,
}

impl Sampler {
    // Blocking sleep is right here: a plain thread, not a runtime worker.
    #[allow(clippy::disallowed_methods)]
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak: f64 = 0.0;
            while !flag.load(Ordering::Relaxed) {
                peak = peak.max(status_kib(pid, "VmRSS:"));
                std::thread::sleep(Duration::from_millis(20));
            }
            peak.max(status_kib(pid, "VmRSS:"))
        });
        Self {
            pid,
            cpu_before: cpu_seconds(pid),
            stop,
            thread,
        }
    }

    fn stop(self) -> Usage {
        self.stop.store(true, Ordering::Relaxed);
        let peak = self.thread.join().unwrap();
        Usage {
            cpu: cpu_seconds(self.pid) - self.cpu_before,
            peak_rss: peak / 1024.0,
        }
    }
}

// === the load ===

struct Target {
    url: String,
    bearer: String,
    model: &'static str,
    dialect: Dialect,
}

fn request_body(model: &str, dialect: Dialect, stream: bool, extra: Value) -> Bytes {
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

async fn load(target: &Target, mode: Mode, concurrency: usize, knobs: &Knobs) -> Run {
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
            let target = Target {
                url: target.url.clone(),
                bearer: target.bearer.clone(),
                model: target.model,
                dialect: target.dialect,
            };
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
            if !String::from_utf8_lossy(&tail).ends_with(target.dialect.end()) {
                return Err(format!("{}: a stream without its end", target.url));
            }
            Ok((started.elapsed(), first))
        }
    }
}

/// What holding many streams open at once cost the gateway.
struct Held {
    streams: usize,
    opened: usize,
    rss_open: f64,
    completed: usize,
    open_time: Duration,
}

/// Opens `n` streams through the gateway that the upstream holds after their first chunk,
/// measures the gateway's RSS with all of them open, then lets them finish.
async fn hold_streams(gateway: &Gateway, token: &str, gate: &Gate, n: usize) -> Held {
    gate.close();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(n)
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let body = request_body("bench", Dialect::Chat, true, json!({"bench_hold": true}));
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
struct Paced {
    streams: usize,
    events: usize,
    reads: Vec<usize>,
    /// Between consecutive body reads of the answer's events.
    gaps: Vec<Duration>,
}

async fn paced(url: &str, bearer: &str, model: &str, knobs: &Knobs) -> Paced {
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

// === the report ===

fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn print_table(knobs: &Knobs, rows: &[Row], idle_rss: f64) {
    println!();
    println!(
        "tollgate overhead: RS256 JWT + user quota + metering on; {:.1} s per run, {} chunks per stream, gateway on {}, busy_poll {}",
        knobs.seconds,
        knobs.chunks,
        knobs
            .gateway_cpus
            .as_deref()
            .map_or("any CPU".to_owned(), |c| format!("CPU {c} (taskset)")),
        knobs.busy_poll.as_deref().unwrap_or("off"),
    );
    println!();
    println!(
        "| mode | conc | direct req/s | gateway req/s | ratio | p50 ms direct / gw (+added) | p90 ms direct / gw (+added) | p99 ms direct / gw (+added) | TTFB p50 ms direct / gw (+added) | gw CPU s (µs/req) | gw peak RSS MiB | errors direct / gw |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let (direct, through) = (&row.direct, &row.through);
        let rps = |run: &Run| run.requests as f64 / run.elapsed.as_secs_f64();
        let cell = |p: f64| {
            let (d, g) = (
                percentile(&direct.latencies, p),
                percentile(&through.latencies, p),
            );
            format!("{:.3} / {:.3} (+{:.3})", ms(d), ms(g), ms(g) - ms(d))
        };
        let ttfb = if row.mode == Mode::Stream {
            let (d, g) = (
                ms(percentile(&direct.first_bytes, 0.5)),
                ms(percentile(&through.first_bytes, 0.5)),
            );
            format!("{d:.3} / {g:.3} (+{:.3})", g - d)
        } else {
            "–".to_owned()
        };
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.2} | {} | {} | {} | {} | {:.2} ({:.0}) | {:.1} | {} / {} |",
            row.dialect.name(row.mode),
            row.concurrency,
            rps(direct),
            rps(through),
            rps(through) / rps(direct),
            cell(0.5),
            cell(0.9),
            cell(0.99),
            ttfb,
            row.usage.cpu,
            row.usage.cpu * 1e6 / through.requests.max(1) as f64,
            row.usage.peak_rss,
            direct.errors,
            through.errors,
        );
    }
    for row in rows {
        for error in [&row.direct.first_error, &row.through.first_error]
            .into_iter()
            .flatten()
        {
            println!("first error: {error}");
        }
    }
    println!();
    println!(
        "gateway RSS idle (started, provisioned, warmed up, before any load): {idle_rss:.1} MiB"
    );
}

impl Held {
    fn print(&self) {
        println!(
            "open streams: {} of {} streams open at once (in {:.2} s): gateway RSS {:.1} MiB; {} completed with [DONE] after release",
            self.opened,
            self.streams,
            self.open_time.as_secs_f64(),
            self.rss_open,
            self.completed
        );
    }
}

fn print_paced(knobs: &Knobs, direct: &Paced, through: &Paced) {
    let line = |name: &str, p: &Paced| {
        format!(
            "{name}: {} streams of {} answer events, body reads per stream min {} / max {}, gap between chunks min {:.3} / p50 {:.3} / max {:.3} ms",
            p.streams,
            p.events,
            percentile(&p.reads, 0.0),
            percentile(&p.reads, 1.0),
            ms(percentile(&p.gaps, 0.0)),
            ms(percentile(&p.gaps, 0.5)),
            ms(percentile(&p.gaps, 1.0)),
        )
    };
    println!(
        "paced streams ({} ms between chunks):",
        knobs.pace.as_millis()
    );
    println!("  {}", line("direct ", direct));
    println!("  {}", line("gateway", through));
}

impl Knobs {
    fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self {
            concurrency: var("TOLLGATE_BENCH_CONCURRENCY")
                .unwrap_or_else(|| "1,32,128".into())
                .split(',')
                .map(|c| {
                    c.trim()
                        .parse()
                        .expect("TOLLGATE_BENCH_CONCURRENCY: numbers")
                })
                .collect(),
            seconds: var("TOLLGATE_BENCH_SECONDS").map_or(3.0, |s| s.parse().expect("seconds")),
            max_requests: var("TOLLGATE_BENCH_REQUESTS").map(|n| n.parse().expect("a count")),
            chunks: var("TOLLGATE_BENCH_CHUNKS").map_or(20, |n| n.parse().expect("a count")),
            open_streams: var("TOLLGATE_BENCH_OPEN_STREAMS")
                .map_or(1000, |n| n.parse().expect("a count")),
            pace: Duration::from_millis(
                var("TOLLGATE_BENCH_PACE_MS").map_or(5, |n| n.parse().expect("milliseconds")),
            ),
            gateway_cpus: var("TOLLGATE_BENCH_GATEWAY_CPUS"),
            dialects: var("TOLLGATE_BENCH_DIALECTS")
                .unwrap_or_else(|| "chat,messages".into())
                .split(',')
                .map(|d| match d.trim() {
                    "chat" => Dialect::Chat,
                    "messages" => Dialect::Messages,
                    other => panic!("TOLLGATE_BENCH_DIALECTS: chat or messages, not {other}"),
                })
                .collect(),
            busy_poll: var("TOLLGATE_BENCH_BUSY_POLL"),
        }
    }
}
