//! The streamed export: rows come from the database one at a time, are encoded into a buffer,
//! and leave in chunks through a bounded channel. Memory stays flat whatever the row count; a
//! slow reader slows the query instead of filling memory; a reader that goes away stops it.

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::BillingError;
use super::format::{Encoder, Format};
use super::params::{Period, parse_group_by};
use crate::store::{Dimension, RollupQuery, Store};

/// Bytes collected before a chunk is sent.
const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks in flight between the query and the reader.
const CHANNEL_CHUNKS: usize = 4;
/// What an export groups by when it is not told.
pub const DEFAULT_GROUP_BY: &str = "tenant,user,model,day";

/// A parsed export request: what to read and how to write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRequest {
    pub query: RollupQuery,
    pub format: Format,
}

impl ExportRequest {
    /// Parses the parameters the HTTP route and the CLI share. A FOCUS export always has a
    /// period (every FOCUS row needs its charge period, inside one billing month): without one
    /// in `group_by`, `day` is added.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        tenant: Option<&str>,
        format: Option<&str>,
        group_by: Option<&str>,
    ) -> Result<Self, BillingError> {
        let period = Period::parse(from, to)?;
        let format = Format::parse(format)?;
        let mut group_by = parse_group_by(group_by.unwrap_or(DEFAULT_GROUP_BY))?;
        let has_period = group_by
            .iter()
            .any(|d| matches!(d, Dimension::Month | Dimension::Day | Dimension::Hour));
        if format == Format::Focus && !has_period {
            group_by.push(Dimension::Day);
            group_by.sort();
        }
        let tenant = tenant
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        Ok(Self {
            query: RollupQuery {
                from: period.from,
                to: period.to,
                tenant,
                group_by,
            },
            format,
        })
    }

    /// A file name for `Content-Disposition`: `usage-2026-11-01-2026-12-01.csv`.
    pub fn file_name(&self) -> String {
        let day = |t: crate::clock::Timestamp| t.to_rfc3339().chars().take(10).collect::<String>();
        format!(
            "usage-{}-{}.{}",
            day(self.query.from),
            day(self.query.to),
            self.format.extension()
        )
    }
}

/// Starts the export on its own task and returns the chunks as they are produced. A store
/// error ends the stream with that error (after any chunks already sent), so a consumer never
/// mistakes a cut-off export for a complete one.
pub fn export_chunks(
    store: Store,
    request: ExportRequest,
) -> mpsc::Receiver<Result<Bytes, BillingError>> {
    let (sender, receiver) = mpsc::channel(CHANNEL_CHUNKS);
    tokio::spawn(async move {
        if let Err(error) = produce(&store, &request, &sender).await {
            // The reader may be gone already; then nobody is left to tell.
            let _ = sender.send(Err(error)).await;
        }
    });
    receiver
}

async fn produce(
    store: &Store,
    request: &ExportRequest,
    sender: &mpsc::Sender<Result<Bytes, BillingError>>,
) -> Result<(), BillingError> {
    let encoder = Encoder::new(request.format, &request.query.group_by);
    let mut buffer = Vec::with_capacity(CHUNK_BYTES * 2);
    encoder.header(&mut buffer);
    let mut rows = store.rollup_rows(&request.query);
    while let Some(row) = rows.next().await {
        encoder.row(&row?, &mut buffer);
        if buffer.len() >= CHUNK_BYTES {
            let chunk = Bytes::from(std::mem::replace(
                &mut buffer,
                Vec::with_capacity(CHUNK_BYTES * 2),
            ));
            if sender.send(Ok(chunk)).await.is_err() {
                return Ok(()); // the reader went away: stop reading the database
            }
        }
    }
    if !buffer.is_empty() {
        let _ = sender.send(Ok(Bytes::from(buffer))).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn focus_always_has_a_period_and_the_default_grouping_is_the_contracts() {
        let request = ExportRequest::parse(
            Some("2026-11-01"),
            Some("2026-12-01"),
            None,
            Some("focus"),
            Some("model"),
        )
        .unwrap();
        assert_eq!(
            request.query.group_by,
            vec![Dimension::Day, Dimension::Model]
        );
        let request = ExportRequest::parse(
            Some("2026-11-01"),
            Some("2026-12-01"),
            Some(" "),
            None,
            None,
        )
        .unwrap();
        assert_eq!(
            request.query.group_by,
            vec![
                Dimension::Day,
                Dimension::Tenant,
                Dimension::User,
                Dimension::Model
            ]
        );
        assert_eq!(request.query.tenant, None);
        assert_eq!(request.format, Format::Csv);
        assert_eq!(request.file_name(), "usage-2026-11-01-2026-12-01.csv");
    }
}
