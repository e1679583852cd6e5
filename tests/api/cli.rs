//! The `tollgate` binary itself: start-up on defaults, bad configuration, graceful stop.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_tollgate");

/// A `tollgate` command with a clean environment: no inherited TOLLGATE_* variables.
pub fn tollgate(dir: &std::path::Path) -> Command {
    let mut command = Command::new(BIN);
    command.current_dir(dir).env_clear();
    if let Ok(path) = std::env::var("PATH") {
        command.env("PATH", path);
    }
    command
}

fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().expect("run tollgate")
}

/// Starts `tollgate serve` and waits for the line that says where it listens. Returns the
/// lines logged so far and a receiver for the rest.
pub fn serve(mut command: Command) -> (Child, String, Vec<String>, mpsc::Receiver<String>) {
    let mut child = command
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tollgate serve");
    let stderr = child.stderr.take().expect("stderr");
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let Ok(line) =
            received.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tollgate did not say where it listens; it logged: {seen:?}");
        };
        let json_addr = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v["addr"].as_str().map(str::to_owned));
        let text_addr = line
            .split("addr=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned);
        if let Some(addr) = json_addr.or(text_addr) {
            seen.push(line);
            return (child, addr, seen, received);
        }
        seen.push(line);
    }
}

pub fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[tokio::test]
async fn serve_starts_on_defaults_without_a_config_file_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = tollgate(dir.path());
    // Everything default but the port, so parallel tests do not collide on 8080.
    command.env("TOLLGATE__SERVER__LISTEN", "127.0.0.1:0");
    let (mut child, addr, mut log, lines) = serve(command);

    assert!(
        dir.path().join("tollgate.db").exists(),
        "./tollgate.db is created"
    );
    let health = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);

    terminate(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0: {status}");
    log.extend(lines.try_iter());
    let log = log.join("\n");
    assert!(
        log.contains("admin API disabled"),
        "the log says how to enable admin: {log}"
    );
    assert!(log.contains("TOLLGATE_ADMIN_TOKEN"));
}

#[test]
fn migrate_applies_migrations_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(tollgate(dir.path())
        .args(["migrate"])
        .env("TOLLGATE__DATABASE__URL", "sqlite://m.db"));
    assert!(output.status.success(), "{output:?}");
    assert!(dir.path().join("m.db").exists());
}

#[test]
fn bad_configuration_exits_non_zero_and_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let typo = write("typo.toml", "[server]\nlisen = \"127.0.0.1:1\"\n");
    let wrong_type = write("type.toml", "[server]\nlisten = 8080\n");
    let bad_ref = write(
        "ref.toml",
        "[[models]]\nname = \"m\"\ntargets = [{ provider = \"ghost\", model = \"m\" }]\n",
    );
    let not_toml = write("broken.toml", "[server\nlisten = ");
    let cases: Vec<(Command, &str)> = vec![
        (
            {
                let mut c = tollgate(dir.path());
                c.arg("--config").arg(&typo);
                c
            },
            "lisen",
        ),
        (
            {
                let mut c = tollgate(dir.path());
                c.arg("--config").arg(&wrong_type);
                c
            },
            "server.listen",
        ),
        (
            {
                let mut c = tollgate(dir.path());
                c.arg("--config").arg(&bad_ref);
                c
            },
            "models[0].targets[0].provider",
        ),
        (
            {
                let mut c = tollgate(dir.path());
                c.arg("--config").arg(&not_toml);
                c
            },
            "broken.toml",
        ),
        (
            {
                let mut c = tollgate(dir.path());
                c.args(["--config", "missing.toml"]);
                c
            },
            "missing.toml",
        ),
        (
            {
                let mut c = tollgate(dir.path());
                c.env("TOLLGATE_CONFIG", "gone.toml");
                c
            },
            "gone.toml",
        ),
        (
            {
                let mut c = tollgate(dir.path());
                c.env("TOLLGATE__SERVER__LISTEN", "nowhere");
                c
            },
            "server.listen",
        ),
        (
            {
                let mut c = tollgate(dir.path());
                c.env("TOLLGATE__DATABASE__URL", "mysql://db");
                c
            },
            "database.url",
        ),
        (
            {
                let mut c = tollgate(dir.path());
                c.env("TOLLGATE__SERVER__NOPE", "1");
                c
            },
            "nope",
        ),
    ];
    for (mut command, expected) in cases {
        let output = run(command.arg("serve"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{expected}: {stderr}");
        assert!(
            stderr.contains(expected),
            "message names `{expected}`: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!stderr.contains("backtrace"), "{stderr}");
    }
    assert!(!dir.path().join("tollgate.db").exists(), "nothing started");
}

#[test]
fn an_unreachable_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(tollgate(dir.path()).arg("migrate").env(
        "TOLLGATE__DATABASE__URL",
        "postgres://tollgate:hunter2@127.0.0.1:1/x",
    ));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot open the database"), "{stderr}");
    assert!(
        !stderr.contains("hunter2"),
        "the password is not printed: {stderr}"
    );
    assert!(!stderr.contains("panicked"));
}

#[test]
fn help_explains_the_commands() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(tollgate(dir.path()).arg("--help"));
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for word in [
        "serve",
        "migrate",
        "--config",
        "TOLLGATE_CONFIG",
        "TOLLGATE__",
    ] {
        assert!(help.contains(word), "--help mentions {word}: {help}");
    }
}

/// The README's tour, run as written: its shell blocks against a real `serve` started with no
/// config file (only the port differs, so tests do not collide on 8080). It ends with a chat
/// call on the default offline model, which must answer without any network.
#[tokio::test]
async fn the_readme_tour_runs_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let tour = readme
        .split("\n## A short tour\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("the README has a tour");
    let blocks: Vec<&str> = tour
        .split("```sh\n")
        .skip(1)
        .filter_map(|block| block.split("\n```").next())
        .collect();
    assert!(
        blocks[0].contains("cargo run --release -- serve"),
        "the tour starts the gateway first: {blocks:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let admin_token = "tour-admin-token-0123456789abcdef0123";
    let mut command = tollgate(dir.path());
    command
        .env("TOLLGATE__SERVER__LISTEN", "127.0.0.1:0")
        .env("TOLLGATE_ADMIN_TOKEN", admin_token);
    let (mut child, addr, mut log, lines) = serve(command);
    let script = format!(
        "set -euo pipefail\n{}",
        blocks[1..].join("\n").replace("localhost:8080", &addr)
    );
    let output = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("TOLLGATE_ADMIN_TOKEN", admin_token)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("bash");
    terminate(&child);
    child.wait().unwrap();
    log.extend(lines.try_iter());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the tour failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(r#""id":"acme""#), "{stdout}");
    assert!(
        stdout.contains(r#""object":"chat.completion""#)
            && stdout.contains("You said: Hello, tollgate!"),
        "the chat call on the demo model answered: {stdout}"
    );
    assert!(
        stdout.contains(r#""status":"deleted""#),
        "the tour's last call deletes the user: {stdout}"
    );
    let log = log.join("\n");
    assert!(
        log.contains("offline demo model") && log.contains("--config"),
        "the start-up log says what serves and how to add a real provider: {log}"
    );
}

#[test]
fn a_config_file_replaces_the_demo_model() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tollgate.toml");
    std::fs::write(&file, "[server]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    assert!(
        tollgate::Config::load(Some(&file))
            .unwrap()
            .models
            .is_empty(),
        "a file brings its own models"
    );
    let defaults = tollgate::Config::load(None).unwrap();
    assert_eq!(defaults.models.len(), 1);
    assert_eq!(defaults.models[0].name, "demo");
    assert_eq!(defaults.providers[0].kind, "mock");
}

/// A config file for a binary: listening on port 0, SQLite in the directory, a mock provider
/// serving `models`.
fn config_with_models(listen: &str, models: &[&str]) -> String {
    let mut text = format!(
        "[server]\nlisten = \"{listen}\"\n[database]\nurl = \"sqlite://t.db\"\n\
         [[providers]]\nname = \"p\"\nkind = \"mock\"\n"
    );
    for model in models {
        text.push_str(&format!(
            "[[models]]\nname = \"{model}\"\ntargets = [{{ provider = \"p\", model = \"{model}\" }}]\n"
        ));
    }
    text
}

/// The names `GET /admin/v1/models` lists.
async fn catalogue(addr: &str, token: &str) -> Vec<String> {
    let models: serde_json::Value = reqwest::Client::new()
        .get(format!("http://{addr}/admin/v1/models"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut names: Vec<String> = models
        .as_array()
        .unwrap()
        .iter()
        .map(|model| model["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn sighup_and_tollgate_reload_change_a_running_gateway_and_check_config_agrees() {
    const TOKEN: &str = "cli-reload-admin-token-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tollgate.toml");
    std::fs::write(&file, config_with_models("127.0.0.1:0", &["one"])).unwrap();
    let mut command = tollgate(dir.path());
    command
        .arg("--config")
        .arg(&file)
        .env("TOLLGATE_ADMIN_TOKEN", TOKEN);
    let (mut child, addr, mut log, lines) = serve(command);
    assert_eq!(catalogue(&addr, TOKEN).await, ["one"]);

    // SIGHUP: the file is read again.
    std::fs::write(&file, config_with_models("127.0.0.1:0", &["one", "two"])).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let mut names = Vec::new();
    for _ in 0..100 {
        names = catalogue(&addr, TOKEN).await;
        if names.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(names, ["one", "two"]);

    // `tollgate reload` asks over HTTP and prints what changed, and what waits for a restart.
    std::fs::write(
        &file,
        config_with_models("127.0.0.1:1", &["one", "two", "three"]),
    )
    .unwrap();
    let reload = |file: &std::path::Path| {
        let mut command = tollgate(dir.path());
        command
            .arg("--config")
            .arg(file)
            .args(["reload", "--url", &format!("http://{addr}")])
            .env("TOLLGATE_ADMIN_TOKEN", TOKEN);
        run(&mut command)
    };
    let output = reload(&file);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.contains("models"), "{stdout}");
    assert!(
        stdout.contains("not applied until a restart: server.listen"),
        "{stdout}"
    );
    assert_eq!(catalogue(&addr, TOKEN).await, ["one", "three", "two"]);

    // A broken file: `check-config` and `reload` refuse it naming the key (`reload` before it
    // asks the gateway), and so does the gateway on SIGHUP; nothing changes.
    let broken = config_with_models("127.0.0.1:0", &["four"])
        .replace("provider = \"p\"", "provider = \"q\"");
    std::fs::write(&file, &broken).unwrap();
    for command in ["check-config", "reload"] {
        let output = if command == "reload" {
            reload(&file)
        } else {
            run(tollgate(dir.path()).arg("--config").arg(&file).arg(command))
        };
        assert_eq!(output.status.code(), Some(2), "{command}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("invalid configuration: `models[0].targets[0].provider`"),
            "{command}: {stderr}"
        );
    }
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !log.iter().any(|line| line.contains("reload refused")) {
        let wait = deadline.saturating_duration_since(std::time::Instant::now());
        log.push(
            lines
                .recv_timeout(wait)
                .expect("the refused reload is logged"),
        );
    }
    assert_eq!(catalogue(&addr, TOKEN).await, ["one", "three", "two"]);

    // A good file passes the check.
    std::fs::write(&file, config_with_models("127.0.0.1:0", &["one"])).unwrap();
    let check = run(tollgate(dir.path())
        .arg("--config")
        .arg(&file)
        .arg("check-config"));
    assert!(check.status.success(), "{check:?}");
    assert!(String::from_utf8_lossy(&check.stdout).contains("configuration OK"));

    terminate(&child);
    assert!(child.wait().unwrap().success());
    log.extend(lines.try_iter());
    let log = log.join("\n");
    assert!(log.contains("SIGHUP"), "{log}");
    assert!(log.contains("configuration reloaded"), "{log}");
    assert!(
        log.contains("configuration reload refused")
            && log.contains("models[0].targets[0].provider"),
        "{log}"
    );
    assert!(log.contains("server.listen"), "{log}");
}
