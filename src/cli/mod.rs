//! The work behind the commands other than `serve`: `explain`, `token mint`, `export`,
//! `check-config` and `reload`.

use std::collections::BTreeMap;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

use crate::auth::Authenticator;
use crate::auth::explain::Explanation;
use crate::config::{Config, duration};
use crate::server::open_store;

mod config;

pub use config::{check_config, reload};

/// Arguments of `tollgate token mint`.
#[derive(Debug, clap::Args)]
pub struct MintArgs {
    /// The `iss` claim: exactly the issuer registered with tollgate.
    #[arg(long)]
    pub issuer: String,
    /// Environment variable holding the HS256 secret (at least 32 bytes), so the secret never
    /// appears in the shell history or the process list.
    #[arg(long, value_name = "VAR")]
    pub secret_env: String,
    /// The `sub` claim.
    #[arg(long)]
    pub sub: String,
    /// The `aud` claim.
    #[arg(long, default_value = "tollgate")]
    pub aud: String,
    /// Lifetime: 30s, 15m, 2h, 1d.
    #[arg(long, default_value = "15m")]
    pub ttl: String,
    /// Extra claims, `key=value`; a value that parses as JSON is taken as JSON (numbers,
    /// booleans, arrays), anything else as a string. Repeatable.
    #[arg(long = "claim", value_name = "KEY=VALUE")]
    pub claims: Vec<String>,
}

/// Builds and signs the token `tollgate token mint` prints.
pub fn mint(args: &MintArgs) -> Result<String, String> {
    let secret = std::env::var(&args.secret_env)
        .map_err(|_| format!("the environment variable {} is not set", args.secret_env))?;
    if secret.len() < 32 {
        return Err(format!(
            "the secret in {} is {} bytes; HS256 secrets must be at least 32 bytes",
            args.secret_env,
            secret.len()
        ));
    }
    let ttl = duration::parse(&args.ttl)
        .ok_or_else(|| format!("--ttl `{}` is not a duration (e.g. 15m)", args.ttl))?;
    let now = crate::auth::authenticator::unix_now();
    let mut claims = BTreeMap::new();
    for pair in &args.claims {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("--claim `{pair}` is not KEY=VALUE"))?;
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.into()));
        claims.insert(key.to_owned(), value);
    }
    claims.insert("iss".into(), Value::from(args.issuer.clone()));
    claims.insert("sub".into(), Value::from(args.sub.clone()));
    claims.insert("aud".into(), Value::from(args.aud.clone()));
    claims.insert("iat".into(), Value::from(now));
    claims.insert(
        "exp".into(),
        Value::from(now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX))),
    );
    claims
        .entry("jti".into())
        .or_insert_with(|| Value::from(uuid::Uuid::new_v4().to_string()));
    let key = EncodingKey::from_secret(secret.as_bytes())
        .map_err(|e| format!("cannot use the secret: {e}"))?;
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)
        .map_err(|e| format!("cannot sign the token: {e}"))
}

/// Runs `explain` against the configured database; prints the steps. `Ok(true)` if accepted.
pub async fn explain(config: &Config, token: &str, as_json: bool) -> Result<bool, String> {
    let store = open_store(config).await.map_err(|e| e.to_string())?;
    let auth = Authenticator::from_config(store.clone(), &config.auth)
        .await
        .map_err(|e| e.to_string())?;
    let token = token.trim();
    let token = token.strip_prefix("Bearer ").unwrap_or(token);
    let explanation = auth.explain(token).await.map_err(|e| e.to_string())?;
    store.close().await;
    if as_json {
        let text = serde_json::to_string_pretty(&explanation).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print!("{}", render(&explanation));
    }
    Ok(explanation.accepted)
}

/// The human-readable form: one line a step, then the verdict and the hints.
pub fn render(explanation: &Explanation) -> String {
    let mut out = String::new();
    for step in &explanation.steps {
        let mark = if step.ok { "ok  " } else { "FAIL" };
        let name = serde_json::to_value(step.step)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        out.push_str(&format!("{mark} {name:<11} {}\n", step.detail));
    }
    match (explanation.accepted, explanation.reason) {
        (true, _) => out.push_str(&format!(
            "ACCEPTED: tenant `{}`, subject `{}`\n",
            explanation.tenant.as_deref().unwrap_or("?"),
            explanation.subject.as_deref().unwrap_or("?")
        )),
        (false, reason) => out.push_str(&format!(
            "REFUSED: {}\n",
            reason.map_or("unknown", |r| r.code())
        )),
    }
    for hint in &explanation.hints {
        out.push_str(&format!("hint: {hint}\n"));
    }
    out
}

/// Arguments of `tollgate export`: the same parameters as `GET /admin/v1/usage/export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// First hour included: a date (2026-11-01 = 00:00 UTC) or an RFC 3339 time on a whole hour.
    #[arg(long)]
    pub from: String,
    /// First hour not included (exclusive), in the same forms: --from 2026-11-01 --to
    /// 2026-12-01 is November.
    #[arg(long)]
    pub to: String,
    /// Only this tenant (default: every tenant).
    #[arg(long)]
    pub tenant: Option<String>,
    /// csv, jsonl or focus (FinOps FOCUS 1.0 CSV).
    #[arg(long, default_value = "csv")]
    pub format: String,
    /// Any of tenant,user,model,provider and one of month,day,hour.
    #[arg(long, default_value = crate::billing::export::DEFAULT_GROUP_BY)]
    pub group_by: String,
    /// Write here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
}

/// Runs `tollgate export`: the HTTP export's rows, written as they are read.
pub async fn export(config: &Config, args: &ExportArgs) -> Result<(), String> {
    use std::io::Write;

    let request = crate::billing::ExportRequest::parse(
        Some(&args.from),
        Some(&args.to),
        args.tenant.as_deref(),
        Some(&args.format),
        Some(&args.group_by),
    )
    .map_err(|e| e.to_string())?;
    let store = open_store(config).await.map_err(|e| e.to_string())?;
    // Plain blocking writes: this command owns its runtime, and the export task keeps reading
    // the database on another worker while a chunk is written.
    let mut out: Box<dyn Write + Send> = match &args.out {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    let mut chunks = crate::billing::export_chunks(store.clone(), request);
    let mut result = Ok(());
    while let Some(chunk) = chunks.recv().await {
        let written = match chunk {
            Ok(bytes) => out.write_all(&bytes).map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        if let Err(message) = written {
            result = Err(message);
            break;
        }
    }
    if result.is_ok() {
        result = out.flush().map_err(|e| e.to_string());
    }
    store.close().await;
    result
}
