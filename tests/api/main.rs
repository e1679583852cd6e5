//! Black-box tests: the gateway on a random port with a fresh database, driven over HTTP.
//! One test binary, so the 2-core machine links the world once.
//! Panicking on a broken expectation is what a test is for.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod alerts;
mod announcements;
mod audit;
mod billing;
mod cli;
mod console;
mod dataplane;
mod identity;
mod metering;
mod openapi;
mod reload;
mod replicas;
mod scim;
mod support;
mod webhooks;
