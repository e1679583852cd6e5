//! Billing: usage reports and exports, read from the hourly rollup.
//!
//! - [`params`]: `from`/`to`/`group_by`/`format` as the HTTP API and the CLI take them.
//! - [`money`]: integer micro-dollars printed as dollars, never through a float.
//! - [`format`]: one row as CSV, JSON Lines or FinOps FOCUS 1.0 CSV.
//! - [`export`]: the streamed export, shared by `GET /admin/v1/usage/export` and `tollgate export`.
//! - [`report`]: the JSON report of `GET /admin/v1/tenants/{tenant}/usage`.

pub mod export;
pub mod focus;
pub mod format;
pub mod money;
pub mod params;
pub mod report;

pub use export::{ExportRequest, export_chunks};
pub use format::Format;
pub use params::{Period, parse_group_by, parse_instant};

use crate::store::StoreError;

/// What can go wrong building a report or an export.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// A query parameter (or CLI flag) that does not parse; names the field.
    #[error("`{field}`: {message}")]
    InvalidParameter {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl BillingError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidParameter {
            field,
            message: message.into(),
        }
    }
}
