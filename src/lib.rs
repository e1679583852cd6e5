//! tollgate: a multi-tenant LLM gateway that works out who is calling — a tenant and a user,
//! from a JWT or an API key, against its own user store — before it calls a model.
//!
//! The binary (`main.rs`) only parses arguments; everything lives here so tests and benches
//! drive the same code.

pub mod admin;
pub mod api;
pub mod audit;
pub mod auth;
pub mod billing;
pub mod busy_poll;
pub mod changes;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod error;
pub mod ids;
pub mod listener;
pub mod metering;
pub mod quota;
pub mod reload;
pub mod routing;
pub mod scim;
pub mod server;
pub mod stale;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod webhooks;

pub use config::Config;
pub use server::Gateway;
