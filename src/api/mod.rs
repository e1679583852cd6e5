//! HTTP handlers: the OpenAI-compatible data plane and the admin API.

pub mod admin;
pub mod authn;
pub mod health;
pub mod json;
pub mod v1;
