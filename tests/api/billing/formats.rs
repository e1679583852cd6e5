//! Exports as other tools read them: Python's `csv` and `json`, the FinOps Foundation's FOCUS
//! validator, and `tollgate export` on the command line giving the HTTP export's bytes.

use std::path::Path;
use std::process::Command;

use super::{Rng, export, random_event, store_events};
use crate::support::{Backend, TestApp};

const CONTRACT_COLUMNS: &str = "period_start,tenant_id,subject,model,provider,requests,\
                                prompt_tokens,completion_tokens,total_tokens,cost_usd";

async fn app_with_usage() -> TestApp {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut rng = Rng::new(42);
    let mut events: Vec<_> = (0..300).map(|i| random_event(&mut rng, i)).collect();
    // Names that need quoting or escaping still come out as one field.
    events[0].subject = "o'brien, \"jr\"\nsecond line".into();
    store_events(&app, &events).await;
    app
}

const PYTHON_CHECK: &str = r#"
import csv, json, sys
kind, path, expected = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
with open(path, newline="", encoding="utf-8") as f:
    if kind == "csv":
        rows = list(csv.reader(f))
        assert rows[0] == expected, rows[0]
        assert len(rows) > 1
        for row in rows[1:]:
            assert len(row) == len(expected), row
            int(row[expected.index("total_tokens")])
    else:
        lines = f.read().splitlines()
        assert lines
        for line in lines:
            obj = json.loads(line)
            assert list(obj.keys()) == expected, list(obj.keys())
            assert isinstance(obj["total_tokens"], int)
print("ok")
"#;

fn python_check(kind: &str, path: &Path, columns: &str) {
    let output = Command::new("python3")
        .args(["-c", PYTHON_CHECK, kind])
        .arg(path)
        .arg(columns)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{kind} with columns {columns}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_and_jsonl_parse_in_python_with_exactly_the_contract_columns() {
    let app = app_with_usage().await;
    let dir = tempfile::tempdir().unwrap();
    for (group_by, columns) in [
        ("tenant,user,model,provider,day", CONTRACT_COLUMNS),
        (
            "tenant,user,model,day",
            "period_start,tenant_id,subject,model,requests,prompt_tokens,completion_tokens,\
             total_tokens,cost_usd",
        ),
        (
            "provider",
            "provider,requests,prompt_tokens,completion_tokens,total_tokens,cost_usd",
        ),
    ] {
        for format in ["csv", "jsonl"] {
            let (status, body) = export(
                &app,
                &format!("from=2026-10-01&to=2026-11-01&format={format}&group_by={group_by}"),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            let path = dir.path().join(format!("export.{format}"));
            std::fs::write(&path, body).unwrap();
            python_check(format, &path, columns);
        }
    }
    // The default grouping is the contract's.
    let (_, body) = export(&app, "from=2026-10-01&to=2026-11-01").await;
    assert!(body.starts_with(
        "period_start,tenant_id,subject,model,requests,prompt_tokens,completion_tokens,\
         total_tokens,cost_usd\r\n"
    ));
}

/// Where `focus_validator` is installed: it reads its currency list from a path relative to
/// the working directory, so it must run from there. `None` when it is not installed.
fn validator_home() -> Option<String> {
    let output = Command::new("python3")
        .args([
            "-c",
            "import focus_validator, os; print(os.path.dirname(os.path.dirname(focus_validator.__file__)))",
        ])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Runs the validator; it exits 0 either way, so the verdict is read from its output.
fn validate(home: &str, file: &Path) -> (bool, String) {
    let output = Command::new("focus-validator")
        .current_dir(home)
        .arg("--data-file")
        .arg(file)
        .args(["--validate-version", "1.0"])
        .output()
        .expect("run focus-validator");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let ok = output.status.success()
        && text.contains("Validation succeeded")
        && !text.contains("failed");
    (ok, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn focus_export_passes_the_finops_validator() {
    let Some(home) = validator_home() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the FOCUS validator: pip install 'focus-validator==1.0.0' 'multimethod<1.11'"
        );
        eprintln!(
            "skipped: focus-validator is not installed (pip install 'focus-validator==1.0.0' 'multimethod<1.11')"
        );
        return;
    };
    let app = app_with_usage().await;
    let dir = tempfile::tempdir().unwrap();
    for group_by in [
        "tenant,user,model,provider,day",
        "tenant,hour",
        "model,month",
        "provider",
    ] {
        let (status, body) = export(
            &app,
            &format!("from=2026-10-01&to=2026-11-01&format=focus&group_by={group_by}"),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let path = dir.path().join("focus.csv");
        std::fs::write(&path, &body).unwrap();
        let (ok, report) = validate(&home, &path);
        assert!(ok, "group_by={group_by}: the validator says:\n{report}");
    }

    // The validator does check: the same file without BillingCurrency fails.
    let (_, body) = export(&app, "from=2026-10-01&to=2026-11-01&format=focus").await;
    let broken: String = body.replace("BillingCurrency", "x_Currency");
    let path = dir.path().join("broken.csv");
    std::fs::write(&path, broken).unwrap();
    let (ok, _) = validate(&home, &path);
    assert!(!ok, "a file without BillingCurrency must not validate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_writes_the_same_bytes_as_the_http_export() {
    let app = app_with_usage().await;
    let dir = tempfile::tempdir().unwrap();
    for format in ["csv", "jsonl", "focus"] {
        let out = dir.path().join(format!("cli.{format}"));
        let output = crate::cli::tollgate(dir.path())
            .env("TOLLGATE__DATABASE__URL", &app.config.database.url)
            .args([
                "export",
                "--from",
                "2026-10-01",
                "--to",
                "2026-11-01",
                "--format",
                format,
            ])
            .args(["--group-by", "tenant,user,model,provider,day", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let (_, http) = export(
            &app,
            &format!(
                "from=2026-10-01&to=2026-11-01&format={format}&group_by=tenant,user,model,provider,day"
            ),
        )
        .await;
        assert_eq!(std::fs::read_to_string(&out).unwrap(), http, "{format}");
    }
    // A bad flag is a clear error, not an empty file.
    let output = crate::cli::tollgate(dir.path())
        .env("TOLLGATE__DATABASE__URL", &app.config.database.url)
        .args([
            "export",
            "--from",
            "2026-10-01T00:30:00Z",
            "--to",
            "2026-11-01",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("`from`"));
}
