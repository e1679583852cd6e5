//! `tollgate check-config` and `tollgate reload`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::Value;

use crate::config::Config;
use crate::routing::{Routes, read_keys};

/// `tollgate check-config`: what a start or a reload checks beyond parsing (which loading the
/// config already did) — every provider's key file reads and the routes build — without
/// opening the database or listening. The summary to print, or the message naming the key at
/// fault.
pub fn check_config(config: &Config) -> Result<String, String> {
    let keys = read_keys(&config.providers).map_err(|error| error.to_string())?;
    Routes::from_config(config, &keys).map_err(|error| error.to_string())?;
    Ok(format!(
        "configuration OK: {} provider(s), {} model(s)",
        config.providers.len(),
        config.models.len()
    ))
}

/// `tollgate reload`: asks the gateway at `url` (default: the configured listen address) to
/// read its configuration again, with the platform admin token from `admin.token_env`. What
/// changed, to print, or why nothing did.
pub async fn reload(config: &Config, url: Option<&str>) -> Result<String, String> {
    let variable = &config.admin.token_env;
    let token = std::env::var(variable)
        .ok()
        .filter(|token| !token.trim().is_empty())
        .ok_or_else(|| {
            format!(
                "the environment variable {variable} (admin.token_env) must hold the admin token"
            )
        })?;
    let base = match url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let mut addr = config.server.listen;
            // Listening everywhere: the gateway is reachable on this machine's loopback.
            if addr.ip().is_unspecified() {
                addr.set_ip(match addr.ip() {
                    IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
                });
            }
            format!("http://{addr}")
        }
    };
    let response = reqwest::Client::new()
        .post(format!("{base}/admin/v1/config/reload"))
        .bearer_auth(token.trim())
        .send()
        .await
        .map_err(|error| format!("cannot reach the gateway at {base}: {error}"))?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|error| {
        format!("the gateway at {base} answered {status} without JSON: {error}")
    })?;
    if !status.is_success() {
        let message = body["error"]["message"].as_str().unwrap_or("no message");
        return Err(format!("{status}: {message}"));
    }
    Ok(render(&body))
}

/// The answer of `POST /admin/v1/config/reload` as lines for a terminal.
fn render(body: &Value) -> String {
    let keys = |field: &str| -> Vec<String> {
        body[field]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .filter_map(|key| key.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (applied, restart) = (keys("applied"), keys("restart_required"));
    let mut out = if applied.is_empty() {
        "reloaded: no reloadable key changed\n".to_owned()
    } else {
        format!(
            "reloaded; in force for new requests: {}\n",
            applied.join(", ")
        )
    };
    if !restart.is_empty() {
        out.push_str(&format!(
            "changed but not applied until a restart: {}\n",
            restart.join(", ")
        ));
    }
    out
}
