//! HTTP handlers: the OpenAI-compatible data plane and the admin API.

pub mod admin;
pub mod health;
pub mod json;
