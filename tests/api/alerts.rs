//! The alert rules an operator loads, `docs/alerts.yml`: Prometheus accepts them, their unit
//! tests (`docs/alerts.test.yml`) pass, and every metric they read is one a live gateway
//! exports — a rule on a misspelt or renamed metric would never fire, and nothing else would say so.

use std::collections::BTreeSet;

use tollgate::config::RedisConfig;

use crate::dataplane::{DataPlane, ask, mock_provider, model};
use crate::replicas::RedisServer;
use crate::support::promtool;

const RULES: &str = "docs/alerts.yml";
const RULE_TESTS: &str = "docs/alerts.test.yml";

#[test]
fn promtool_accepts_the_rules_and_their_unit_tests_pass() {
    for command in [["check", "rules", RULES], ["test", "rules", RULE_TESTS]] {
        let Some(output) = promtool(&command, "") else {
            return;
        };
        assert!(
            output.status.success(),
            "promtool {}: {}{}",
            command.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_rules_read_is_exported() {
    // `tollgate_quota_degraded` exists only where quotas are counted in Redis.
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let plane = DataPlane::start(
        vec![mock_provider("mock")],
        vec![model("m", &[("mock", "mock-1")], &[])],
        |config| {
            config.redis = Some(RedisConfig {
                url: redis.url(),
                on_unavailable: Default::default(),
            });
        },
    )
    .await;
    // A request routed to an upstream, and one refused: the series that exist only once
    // something happened.
    assert_eq!(plane.chat(&ask("m")).await.status(), 200);
    let refused = plane
        .post_with("tg-not-a-key", "/v1/chat/completions", &ask("m"))
        .await;
    assert_eq!(refused.status(), 401);

    let scrape = plane.app.metrics().await;
    let exported: BTreeSet<&str> = scrape
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split(['{', ' ']).next())
        .collect();
    let rules =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/alerts.yml")).unwrap();
    let read = metrics_read(&rules);
    let unexported: Vec<&str> = read
        .iter()
        .map(String::as_str)
        .filter(|name| !exported.contains(name))
        .collect();
    assert!(
        unexported.is_empty(),
        "{RULES} reads metrics the gateway does not export: {unexported:?}\n{scrape}"
    );
}

/// The metric names the rules' expressions read. A reader for this file's layout, not all of
/// YAML: `expr:` followed by the expression, or by `|` or `>` and the expression on the more
/// deeply indented lines below. Every rule must have had its expression read.
fn metrics_read(rules: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut expressions = 0;
    let mut lines = rules.lines().peekable();
    while let Some(line) = lines.next() {
        let indent = line.len() - line.trim_start().len();
        let key = line.trim_start();
        let Some(value) = key.strip_prefix("- ").unwrap_or(key).strip_prefix("expr:") else {
            continue;
        };
        expressions += 1;
        let mut expression = value.to_owned();
        if value.trim_start().starts_with(['|', '>']) {
            while let Some(next) =
                lines.next_if(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
            {
                expression.push('\n');
                expression.push_str(next);
            }
        }
        names.extend(
            expression
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .filter(|word| word.starts_with("tollgate_"))
                .map(str::to_owned),
        );
    }
    let rule_count = rules
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("- alert:") || l.starts_with("- record:"))
        .count();
    assert_eq!(
        expressions, rule_count,
        "{RULES}: an expression per rule, each read by metrics_read"
    );
    names
}
