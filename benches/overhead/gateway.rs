//! The release `tollgate` binary as its own process: its configuration, start, provisioning
//! (tenant, RS256 issuer, user, quota, a signed token), and what it uses (RSS, CPU time).

use std::ffi::OsString;
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::callgrind;
use crate::knobs::Knobs;

const ADMIN_TOKEN: &str = "bench-admin-token-0123456789abcdef0123456789";
const ISSUER: &str = "https://idp.bench.example";
const AUDIENCE: &str = "tollgate-bench";

pub struct Gateway {
    pub addr: SocketAddr,
    child: Child,
    log: std::path::PathBuf,
}

impl Gateway {
    pub fn start(dir: &tempfile::TempDir, upstream: SocketAddr, knobs: &Knobs) -> Self {
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
name = "gpt-4o-mini"
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
        // The wrappers exec what follows them (valgrind runs its guest in its own process): the
        // child's pid is the gateway's.
        let mut argv: Vec<OsString> = Vec::new();
        if let Some(cpus) = cpus {
            argv.extend(["taskset".into(), "-c".into(), cpus.into()]);
        }
        if knobs.callgrind.is_some() {
            argv.extend(callgrind::wrapper(dir.path()));
        }
        argv.push(binary.into());
        let mut command = Command::new(&argv[0]);
        command.args(&argv[1..]);
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
        // Valgrind translates the binary before it runs it: a startup of seconds becomes minutes.
        let startup = match knobs.callgrind {
            Some(_) => Duration::from_secs(300),
            None => Duration::from_secs(30),
        };
        gateway.wait_until_ready(startup);
        gateway
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    // Blocking sleep is right here: this is the bench's main thread, not a runtime worker.
    #[allow(clippy::disallowed_methods)]
    fn wait_until_ready(&mut self, startup: Duration) {
        let deadline = Instant::now() + startup;
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

    pub fn check_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("the gateway exited ({status}):\n{}", self.log());
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn rss_mib(&self) -> f64 {
        self.status_mib("VmRSS:")
    }

    /// A `kB` line of `/proc/<pid>/status`, in MiB.
    pub fn status_mib(&self, field: &str) -> f64 {
        status_kib(self.pid(), field) / 1024.0
    }

    /// A tenant, an RS256 issuer with a PEM public key, a user with a quota; returns a token
    /// for that user (valid for an hour).
    pub async fn provision(&self) -> String {
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

    pub fn stop(&mut self) {
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
/// CPU seconds used so far: (user, system).
fn cpu_seconds(pid: u32) -> (f64, f64) {
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
    (ticks(14) / clock_ticks(), ticks(15) / clock_ticks())
}

/// Context switches of every thread so far, voluntary (a thread blocked: each is a wake-up
/// later) and not: how often the gateway's threads took turns on the CPU.
fn context_switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    let mut switches = 0;
    for task in tasks.flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        for line in status.lines() {
            if let Some(rest) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                switches += rest.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    switches
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
pub struct Sampler {
    pid: u32,
    cpu_before: (f64, f64),
    switches_before: u64,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<f64>,
}

impl Sampler {
    // Blocking sleep is right here: a plain thread, not a runtime worker.
    #[allow(clippy::disallowed_methods)]
    pub fn start(pid: u32) -> Self {
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
            switches_before: context_switches(pid),
            stop,
            thread,
        }
    }

    pub fn stop(self) -> Usage {
        self.stop.store(true, Ordering::Relaxed);
        let peak = self.thread.join().unwrap();
        let (user, system) = cpu_seconds(self.pid);
        Usage {
            cpu: user + system - self.cpu_before.0 - self.cpu_before.1,
            system: system - self.cpu_before.1,
            // Threads that ended during the run take their counts with them: a lower bound.
            switches: context_switches(self.pid).saturating_sub(self.switches_before),
            peak_rss: peak / 1024.0,
        }
    }
}

/// What the gateway process used during one run.
#[derive(Default, Clone, Copy)]
pub struct Usage {
    /// CPU seconds (user + system) over the run.
    pub cpu: f64,
    /// Of which in the kernel.
    pub system: f64,
    /// Context switches of the gateway's threads over the run.
    pub switches: u64,
    /// Highest RSS sampled during the run, in MiB.
    pub peak_rss: f64,
}
