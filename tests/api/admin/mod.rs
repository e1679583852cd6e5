//! The admin API, route by route, on SQLite and PostgreSQL alike.

mod access;
mod issuers;
mod models;
mod quotas;
mod tenants;
mod users;
