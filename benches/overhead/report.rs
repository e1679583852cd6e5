//! The markdown table and the lines after it.

use std::time::Duration;

use crate::gateway::Usage;
use crate::knobs::{Dialect, Knobs, Mode};
use crate::load::Run;
use crate::streams::{Held, Paced};

/// One row of the table: a run straight to the upstream and one through the gateway.
pub struct Row {
    pub dialect: Dialect,
    pub mode: Mode,
    pub concurrency: usize,
    pub direct: Run,
    pub through: Run,
    pub usage: Usage,
}

pub fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn print_table(knobs: &Knobs, rows: &[Row], idle_rss: f64) {
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
        "| mode | conc | direct req/s | gateway req/s | ratio | p50 ms direct / gw (+added) | p90 ms direct / gw (+added) | p99 ms direct / gw (+added) | TTFB p50 ms direct / gw (+added) | gw CPU s (µs/req, % in kernel) | gw switches / req | gw peak RSS MiB | errors direct / gw |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
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
            "| {} | {} | {:.0} | {:.0} | {:.2} | {} | {} | {} | {} | {:.2} ({:.0}, {:.0} %) | {:.2} | {:.1} | {} / {} |",
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
            row.usage.system * 100.0 / row.usage.cpu.max(f64::EPSILON),
            row.usage.switches as f64 / through.requests.max(1) as f64,
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
        "gateway RSS idle (started and provisioned, before any request: no tokenizer vocabulary loaded): {idle_rss:.1} MiB"
    );
}

impl Held {
    pub fn print(&self) {
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

pub fn print_paced(knobs: &Knobs, direct: &Paced, through: &Paced) {
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
