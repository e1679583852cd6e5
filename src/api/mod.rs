//! HTTP handlers: the OpenAI-compatible data plane and the admin API, and their OpenAPI
//! document.

pub mod admin;
pub mod authn;
pub mod health;
pub mod json;
pub mod openapi;
pub mod query;
pub mod v1;
