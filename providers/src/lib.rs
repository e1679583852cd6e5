//! Model provider adapters for tollgate.
//!
//! This crate knows nothing of tenants, HTTP servers or SQL: it takes an OpenAI-shaped request,
//! speaks one upstream's wire format, and hands back an OpenAI-shaped answer.
