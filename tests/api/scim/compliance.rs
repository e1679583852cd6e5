//! The python-scim project's RFC 7643/7644 compliance checker (`scim2 … test` from scim2-cli
//! 0.6, over scim2-tester 0.5.2) against a live gateway. The CLI exits 1 on any result that is
//! not SUCCESS, skipped checks included, so its lines are read instead: any ERROR or CRITICAL
//! fails the test, and the checks that must have run are named.

use std::process::Command;

use crate::support::{Backend, TestApp};

/// Checks that must be among the results: discovery, CRUD, PATCH add/replace/remove, queries
/// with attributes, `.search`, and a random URL answered with a SCIM error.
const REQUIRED: [&str; 12] = [
    "service_provider_config_endpoint",
    "query_all_resource_types",
    "query_all_schemas",
    "object_creation",
    "object_query",
    "object_query_without_id",
    "object_replacement",
    "object_deletion",
    "check_add_attribute",
    "check_replace_attribute",
    "check_remove_attribute",
    "search_with_attributes",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim2_tester_finds_no_failure() {
    if Command::new("scim2").arg("--help").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the SCIM compliance check: pip install 'scim2-cli==0.6.0' 'scim2-tester==0.5.2'"
        );
        eprintln!(
            "skipped: `scim2` is not installed (pip install 'scim2-cli==0.6.0' 'scim2-tester==0.5.2')"
        );
        return;
    }
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.create_tenant("acme").await;
    let scim = app.scim("acme").await;
    let url = scim.url("");
    let token = scim.token.clone();
    // The checker is synchronous and takes a while; the gateway keeps serving meanwhile.
    let output = tokio::task::spawn_blocking(move || {
        Command::new("scim2")
            .args(["--url", &url, "test"])
            // The token in the environment, not on a command line other users can read.
            .env("SCIM_CLI_HEADERS", format!("Authorization: Bearer {token}"))
            .output()
            .expect("run scim2")
    })
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let results: Vec<(&str, &str)> = report
        .lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(status, _)| {
            [
                "SUCCESS",
                "COMPLIANT",
                "ACCEPTABLE",
                "SKIPPED",
                "ERROR",
                "CRITICAL",
            ]
            .contains(status)
        })
        .collect();
    let failures: Vec<_> = report
        .lines()
        .enumerate()
        .filter(|(_, line)| line.starts_with("ERROR") || line.starts_with("CRITICAL"))
        .flat_map(|(at, _)| report.lines().skip(at).take(3))
        .collect();
    assert!(
        failures.is_empty(),
        "scim2-tester failures:\n{}",
        failures.join("\n")
    );
    for check in REQUIRED {
        assert!(
            results
                .iter()
                .any(|(status, name)| *status == "SUCCESS" && *name == check),
            "no successful `{check}` in the report:\n{report}"
        );
    }
    assert!(
        results.len() >= 100,
        "only {} results:\n{report}",
        results.len()
    );
}
