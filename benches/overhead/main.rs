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
//! - `TOLLGATE_BENCH_CLIENT_CPUS`, e.g. `0`: pin this process (load generator and mock
//!   upstream, every thread) to those CPUs, so they never run on the gateway's;
//! - `TOLLGATE_BENCH_KEEP=1`: keep the bench's directory (config, database, log, callgrind dumps)
//!   and print where it is;
//! - `TOLLGATE_BENCH_BUSY_POLL`, e.g. `150us`: the gateway's `server.busy_poll` (default off,
//!   as in the gateway's own default).
//! - `TOLLGATE_BENCH_CALLGRIND`, e.g. `200`: instead of all the above, run the gateway under
//!   valgrind's callgrind and count instructions and allocations per request over that many
//!   sequential requests of each dialect and mode (see `callgrind.rs`; `scripts/instructions.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod callgrind;
mod gateway;
mod knobs;
mod load;
mod report;
mod streams;
mod upstream;

use std::time::Duration;

use tollgate_testkit::Gate;

use gateway::{Gateway, Sampler};
use knobs::{Knobs, Mode};
use load::{Target, load};
use report::{Row, print_paced, print_table};
use streams::{hold_streams, paced};
use upstream::start_upstream;

fn main() {
    let knobs = Knobs::from_env();
    if let Some(cpus) = &knobs.client_cpus {
        // Every thread there is now; the runtimes' threads, started below, inherit it.
        let pinned = std::process::Command::new("taskset")
            .args(["-a", "-c", "-p", cpus, &std::process::id().to_string()])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("taskset runs");
        assert!(pinned.success(), "taskset -acp {cpus} failed");
    }
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
    if let Some(requests) = knobs.callgrind {
        callgrind::run(
            &mut gateway,
            &token,
            dir.path(),
            &knobs,
            requests,
            &client_runtime,
        );
        keep(dir, &knobs);
        return;
    }
    // Idle means started and provisioned, before any request: no tokenizer vocabulary loaded yet
    // (the first request that needs one loads it).
    client_runtime.block_on(async { tokio::time::sleep(Duration::from_millis(1500)).await });
    let idle_rss = gateway.rss_mib();

    let mut rows = Vec::new();
    for &dialect in &knobs.dialects {
        for mode in [Mode::Json, Mode::Stream] {
            for &concurrency in &knobs.concurrency {
                let direct = Target::upstream(upstream, dialect);
                let through = Target::gateway(gateway.addr, &token, dialect);
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
            "gpt-4o-mini",
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
    keep(dir, &knobs);
}

/// Keeps the bench's directory when asked (see `TOLLGATE_BENCH_KEEP`).
fn keep(dir: tempfile::TempDir, knobs: &Knobs) {
    if knobs.keep {
        println!("kept the bench's directory: {}", dir.keep().display());
    }
}
