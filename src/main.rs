//! The `tollgate` command line. Parsing only: the work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tollgate::cli::{ExportArgs, MintArgs, check_config, explain, export, mint, reload};
use tollgate::config::{Config, DEMO_MODEL, Loaded};
use tollgate::server::{Gateway, open_store};

/// glibc's allocator spent an eighth of the gateway's CPU under load (arena locks, consolidation
/// on free). jemalloc's thread caches make a request's many small, short-lived allocations
/// cheap, and it keeps the idle footprint where glibc had it (mimalloc, as fast, held ~20 MiB
/// more after the tokenizer's vocabularies were loaded).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// tollgate — a multi-tenant LLM gateway.
///
/// Applications send OpenAI-style requests to one endpoint. tollgate works out who is calling
/// (a tenant and a user, from a JWT or an API key, checked against its own user store), then
/// routes the request to a model provider and counts every token per user.
///
/// Start here:  tollgate serve            (no config needed: SQLite in ./tollgate.db,
///                                          listening on 127.0.0.1:8080)
#[derive(Parser)]
#[command(name = "tollgate", version, about, long_about, verbatim_doc_comment)]
struct Cli {
    /// Configuration file (TOML). Any key can also be set with an environment variable
    /// TOLLGATE__SECTION__KEY, e.g. TOLLGATE__DATABASE__URL=postgres://localhost/tollgate.
    #[arg(
        long,
        short,
        global = true,
        env = "TOLLGATE_CONFIG",
        value_name = "FILE"
    )]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (applies database migrations first). Stops gracefully on SIGTERM/Ctrl-C;
    /// SIGHUP reads the configuration again (see `reload`).
    ///
    /// The admin API (/admin/v1) is enabled when the variable named by [admin] token_env
    /// (default TOLLGATE_ADMIN_TOKEN) holds a token; send it as `Authorization: Bearer …`.
    Serve,
    /// Check a configuration file (and the environment) as the gateway would at start or on a
    /// reload, without starting anything; exits non-zero with the key at fault.
    ///
    /// Example: tollgate check-config --config tollgate.toml
    CheckConfig,
    /// Make the running gateway read its configuration again: providers, models, prices,
    /// routing and quota settings change for new requests, requests in flight finish on the old
    /// ones. Sends POST /admin/v1/config/reload with the admin token (as `kill -HUP` does
    /// without an answer) and prints what changed, or why nothing did.
    Reload {
        /// The gateway's address (default: http:// and [server] listen).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Walk one bearer token (JWT or API key) through every authentication step and print each
    /// step's verdict, with hints for near misses. Exits 0 if accepted, 1 if refused.
    Explain {
        /// The token, with or without a leading "Bearer ".
        token: String,
        /// Print the explanation as JSON (the shape of POST /admin/v1/auth/explain).
        #[arg(long)]
        json: bool,
    },
    /// Write a billing export (the rows of GET /admin/v1/usage/export) to a file or stdout.
    ///
    /// Example: tollgate export --from 2026-11-01 --to 2026-12-01 --format focus --out nov.csv
    Export(ExportArgs),
    /// Make tokens for trying things out and for tests.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Mint an HS256 JWT signed with a secret read from an environment variable; prints it.
    ///
    /// Example: tollgate token mint --issuer https://idp.example.com --secret-env IDP_SECRET --sub jane --aud tollgate
    Mint(MintArgs),
}

/// On one CPU (a container's limit, `taskset`) a single-threaded scheduler: the work-stealing
/// one's hand-offs between threads buy nothing there and cost on every wake-up.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if cpus == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Runtime::new()
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Minting needs no configuration, database or runtime.
    if let Command::Token {
        command: TokenCommand::Mint(args),
    } = &cli.command
    {
        return match mint(args) {
            Ok(token) => {
                println!("{token}");
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("error: {message}");
                ExitCode::from(2)
            }
        };
    }
    let loaded = match Config::load_written(cli.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("error: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    let config = loaded.config.clone();
    // Flushes the log queue when main returns.
    let _logs = tollgate::telemetry::init_logging(&config.log);
    // reqwest, sqlx and redis all speak TLS through rustls; give them one crypto provider.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    if let Command::CheckConfig = cli.command {
        return match check_config(&config) {
            Ok(summary) => {
                println!("{summary}");
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("error: invalid configuration: {message}");
                ExitCode::from(2)
            }
        };
    }

    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve => serve(loaded, cli.config).await,
            Command::Reload { url } => match reload(&config, url.as_deref()).await {
                Ok(summary) => {
                    print!("{summary}");
                    Ok(())
                }
                Err(message) => Err(Some(message)),
            },
            Command::Migrate => migrate(config).await,
            Command::Explain { token, json } => match explain(&config, &token, json).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(None),
                Err(message) => Err(Some(message)),
            },
            Command::Export(args) => export(&config, &args).await.map_err(Some),
            Command::Token { .. } | Command::CheckConfig => Ok(()),
        }
        .map_err(|message: Option<String>| message)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A refused token: explain already said why.
        Err(None) => ExitCode::FAILURE,
        Err(Some(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(loaded: Loaded, path: Option<PathBuf>) -> Result<(), Option<String>> {
    let config = &loaded.config;
    if path.is_none() && config.models.iter().any(|m| m.name == DEMO_MODEL) {
        tracing::warn!(
            model = DEMO_MODEL,
            "no config file: serving only the offline demo model `{DEMO_MODEL}` (a mock that \
             echoes the last message, no network needed). To call a real model, write a config \
             file with [[providers]] and [[models]] (see the README's Configuration section) and \
             start with --config FILE or TOLLGATE_CONFIG=FILE"
        );
    }
    let admin_token = std::env::var(&config.admin.token_env).ok();
    let gateway = Gateway::start_from(loaded, path, admin_token)
        .await
        .map_err(|e| Some(e.to_string()))?;
    gateway
        .run_until_signal()
        .await
        .map_err(|e| Some(e.to_string()))
}

async fn migrate(config: Config) -> Result<(), Option<String>> {
    let store = open_store(&config).await.map_err(|e| Some(e.to_string()))?;
    store.close().await;
    println!(
        "migrations applied to {}",
        tollgate::store::redact_url(&config.database.url)
    );
    Ok(())
}
