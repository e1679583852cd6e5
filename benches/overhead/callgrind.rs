//! The callgrind mode (`TOLLGATE_BENCH_CALLGRIND=N`): instructions and heap allocations per
//! request, counted instead of timed, so they hold still where timings move by 5–10 % from run
//! to run. The gateway runs under valgrind's callgrind, counting nothing until it is warmed up;
//! then for each dialect and mode the counters are zeroed, N sequential requests sent (each read
//! to its end), and the counters dumped and read. Callgrind counts the whole process: every
//! thread of the gateway, so the usage writer, the log and the timers are in the figures along
//! with the request path. Each thread is dumped apart (`--separate-threads`), so the table also
//! shows the runtime's thread alone: the request path, the usage writer's task and the timers,
//! without SQLite's worker threads, whose share moves from run to run (a connection of the pool
//! that meets one of the writer's statement shapes for the first time prepares it then, at about
//! 350,000 instructions a time).

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::gateway::Gateway;
use crate::knobs::{Dialect, Knobs, Mode};
use crate::load::{Target, one, request_body};

/// Requests of each kind before counting starts: connections open, the tokenizer loaded, the
/// caches filled, whatever initialises lazily initialised.
const WARM_UP: usize = 200;
/// Well over the usage writer's flush interval (200 ms) even at valgrind's pace: a phase's
/// events are written before its dump, and the phase before's before its zeroing.
const SETTLE: Duration = Duration::from_secs(1);
/// How long the idle gateway is counted: what its timers cost on their own.
const IDLE: Duration = Duration::from_secs(5);

/// jemalloc's entry points that hand out a new block (tikv-jemallocator prefixes them `_rjem_`):
/// Rust's allocations call `malloc`, or `mallocx` when over-aligned, zeroed ones `calloc`.
const ALLOCATE: [&str; 3] = ["_rjem_malloc", "_rjem_mallocx", "_rjem_calloc"];
/// Those that resize a block: a `Vec` or `String` outgrowing its capacity.
const REALLOCATE: [&str; 2] = ["_rjem_realloc", "_rjem_rallocx"];
/// glibc's allocator, which C code calls directly (jemalloc's prefixed symbols leave `malloc`
/// to glibc): SQLite's heap, of the usage writer and every other query.
const C_HEAP: [&str; 3] = ["malloc", "calloc", "realloc"];

/// The command that wraps the gateway: callgrind, counting nothing until told to, its dumps in
/// `out_dir`.
pub fn wrapper(out_dir: &Path) -> Vec<OsString> {
    let mut out_file = OsString::from("--callgrind-out-file=");
    out_file.push(out_dir.join("callgrind.out.%p"));
    vec![
        "valgrind".into(),
        "--tool=callgrind".into(),
        "--instr-atstart=no".into(),
        "--separate-threads=yes".into(),
        out_file,
    ]
}

/// Warms the gateway up, counts the idle gateway and then each dialect and mode over `requests`
/// sequential requests, and prints the table.
pub fn run(
    gateway: &mut Gateway,
    token: &str,
    out_dir: &Path,
    knobs: &Knobs,
    requests: usize,
    runtime: &tokio::runtime::Runtime,
) {
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let send = |dialect: Dialect, mode: Mode, n: usize| {
        let target = Target::gateway(gateway.addr, token, dialect);
        let body = request_body(
            target.model,
            dialect,
            mode == Mode::Stream,
            serde_json::Value::Null,
        );
        runtime.block_on(async {
            for _ in 0..n {
                if let Err(error) = one(&client, &target, &body, mode).await {
                    panic!("{error}\nthe gateway's log:\n{}", gateway.log());
                }
            }
        });
    };
    let phases: Vec<(Dialect, Mode)> = knobs
        .dialects
        .iter()
        .flat_map(|&dialect| [Mode::Json, Mode::Stream].map(|mode| (dialect, mode)))
        .collect();
    for &(dialect, mode) in &phases {
        send(dialect, mode, WARM_UP);
    }
    let mut callgrind = Callgrind {
        pid: gateway.pid(),
        out_dir,
        dumps: 0,
    };
    callgrind.control(&["-i", "on"]);
    let idle = callgrind.count("idle", || sleep(IDLE));
    let rows: Vec<Row> = phases
        .iter()
        .map(|&(dialect, mode)| {
            let label = format!("{}-{}", dialect.key(), mode.key());
            let counted = callgrind.count(&label, || send(dialect, mode, requests));
            Row {
                dialect,
                mode,
                counted,
            }
        })
        .collect();
    gateway.check_alive();
    print_table(knobs, requests, &rows, &idle);
}

struct Row {
    dialect: Dialect,
    mode: Mode,
    counted: Counted,
}

fn print_table(knobs: &Knobs, requests: usize, rows: &[Row], idle: &Counted) {
    println!();
    println!(
        "tollgate per request, counted by callgrind: RS256 JWT + user quota + metering on; {requests} sequential requests per row (after {WARM_UP} of each kind to warm up), {} chunks per stream",
        knobs.chunks,
    );
    println!();
    println!(
        "| dialect | mode | instructions / request | of which the runtime's thread | allocations / request | reallocations / request | C heap calls / request |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    let per_request = |n: u64| n as f64 / requests as f64;
    // The first thread runs the gateway's runtime only when it has one CPU (a current-thread
    // scheduler); with more, the runtime's workers are threads of their own.
    let one_cpu = knobs
        .gateway_cpus
        .as_deref()
        .is_some_and(|cpus| cpus.trim().parse::<u32>().is_ok());
    for Row {
        dialect,
        mode,
        counted,
    } in rows
    {
        println!(
            "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} |",
            dialect.key(),
            mode.key(),
            thousands(per_request(counted.instructions).round() as u64),
            if one_cpu {
                thousands(per_request(counted.runtime_instructions).round() as u64)
            } else {
                "–".to_owned()
            },
            per_request(counted.allocations),
            per_request(counted.reallocations),
            per_request(counted.c_heap),
        );
    }
    let idle_rate = idle.instructions as f64 / idle.seconds;
    let seconds =
        rows.iter().map(|row| row.counted.seconds).sum::<f64>() / rows.len().max(1) as f64;
    println!();
    println!(
        "Every thread of the gateway process is counted: the request path and what runs beside it (the usage writer, the log, timers). With the gateway on one CPU, the runtime's thread (a current-thread scheduler) is also shown alone: it leaves out SQLite's worker threads, the journal's and the log's, and moves far less between runs. Allocations are calls to jemalloc's {}; reallocations ({}) are counted apart; C heap calls are calls to glibc's {} (SQLite's). The idle gateway runs {} instructions/s; a row took {seconds:.1} s under valgrind, so its timers alone account for about {} instructions of each request's figure.",
        ALLOCATE.join(", "),
        REALLOCATE.join(", "),
        C_HEAP.join(", "),
        thousands(idle_rate.round() as u64),
        thousands((idle_rate * seconds / requests as f64).round() as u64),
    );
}

/// The gateway's callgrind, driven with `callgrind_control`.
struct Callgrind<'a> {
    pid: u32,
    out_dir: &'a Path,
    /// Callgrind numbers its dumps from 1, and the threads of each from 01:
    /// `callgrind.out.<pid>.<n>-<thread>`.
    dumps: usize,
}

/// What one dump counted.
struct Counted {
    /// Wall time between zeroing and dumping.
    seconds: f64,
    instructions: u64,
    /// Those of the process's first thread, which runs the gateway's runtime.
    runtime_instructions: u64,
    allocations: u64,
    reallocations: u64,
    c_heap: u64,
}

impl Callgrind<'_> {
    fn control(&self, args: &[&str]) {
        let output = Command::new("callgrind_control")
            .args(args)
            .arg(self.pid.to_string())
            .output()
            .expect("run callgrind_control (it comes with valgrind)");
        assert!(
            output.status.success(),
            "callgrind_control {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }

    /// Zeroes the counters, lets `work` run, dumps the counters under `label` and reads them.
    fn count(&mut self, label: &str, work: impl FnOnce()) -> Counted {
        sleep(SETTLE);
        self.control(&["-z"]);
        let started = Instant::now();
        work();
        sleep(SETTLE);
        self.control(&["-d", label]);
        let seconds = started.elapsed().as_secs_f64();
        self.dumps += 1;
        let prefix = format!("callgrind.out.{}.{}-", self.pid, self.dumps);
        let mut counted = Counted {
            seconds,
            instructions: 0,
            runtime_instructions: 0,
            allocations: 0,
            reallocations: 0,
            c_heap: 0,
        };
        let entries = std::fs::read_dir(self.out_dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", self.out_dir.display()));
        let mut threads = 0;
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            let Some(thread) = path
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| name.strip_prefix(&prefix))
            else {
                continue;
            };
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            assert!(
                text.contains(&format!("\ndesc: Trigger: dump {label}\n")),
                "{} is not the dump of {label}",
                path.display()
            );
            let dump = Dump::parse(&text);
            let calls = |names: &[&str]| -> u64 { names.iter().map(|name| dump.calls(name)).sum() };
            counted.instructions += dump.instructions;
            if thread.parse::<u32>() == Ok(1) {
                counted.runtime_instructions = dump.instructions;
            }
            counted.allocations += calls(&ALLOCATE);
            counted.reallocations += calls(&REALLOCATE);
            counted.c_heap += calls(&C_HEAP);
            threads += 1;
        }
        assert!(
            threads > 0,
            "no dump {prefix}* in {}",
            self.out_dir.display()
        );
        counted
    }
}

/// A callgrind dump, read for its total instructions and how often each function was called.
struct Dump {
    instructions: u64,
    /// Calls by callee, summed over every caller.
    calls: HashMap<String, u64>,
}

impl Dump {
    /// Callgrind's format: `fn=` starts a function's costs, `cfn=` names the callee of the
    /// `calls=<count> <position>` line after it. Names are compressed: the first mention is
    /// `(id) name`, later ones `(id)` alone, in one table shared by `fn=` and `cfn=`.
    fn parse<'a>(text: &'a str) -> Self {
        let mut names: HashMap<&'a str, &'a str> = HashMap::new();
        let mut resolve = |spec: &'a str| -> &'a str {
            match spec.strip_prefix('(').and_then(|rest| rest.split_once(')')) {
                Some((id, "")) => names.get(id).copied().unwrap_or(spec),
                Some((id, name)) => {
                    let name = name.trim_start();
                    names.insert(id, name);
                    name
                }
                None => spec,
            }
        };
        let mut callee = None;
        let (mut totals, mut summary) = (None, None);
        let mut calls: HashMap<String, u64> = HashMap::new();
        for line in text.lines() {
            if let Some(spec) = line.strip_prefix("fn=") {
                resolve(spec);
                callee = None;
            } else if let Some(spec) = line.strip_prefix("cfn=") {
                callee = Some(resolve(spec));
            } else if let Some(rest) = line.strip_prefix("calls=") {
                let count: u64 = first_number(rest).expect("calls=<count> <position>");
                let callee = callee.expect("calls= after cfn=");
                *calls.entry(callee.to_owned()).or_default() += count;
            } else if let Some(rest) = line.strip_prefix("totals:") {
                totals = first_number(rest);
            } else if let Some(rest) = line.strip_prefix("summary:") {
                summary = first_number(rest);
            }
        }
        Self {
            instructions: totals.or(summary).expect("a dump with totals"),
            calls,
        }
    }

    fn calls(&self, function: &str) -> u64 {
        self.calls.get(function).copied().unwrap_or(0)
    }
}

fn first_number(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

// Blocking sleep is right here: this is the bench's main thread, not a runtime worker.
#[allow(clippy::disallowed_methods)]
fn sleep(duration: Duration) {
    std::thread::sleep(duration);
}
