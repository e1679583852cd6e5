//! One row of an export as bytes: CSV, JSON Lines, or a CSV in FinOps FOCUS 1.0 columns.
//!
//! Writers append to a caller's buffer, so the export decides when bytes leave (in chunks) and
//! nothing here holds more than one row.

use super::BillingError;
use super::money::dollars;
use crate::clock::Timestamp;
use crate::quota::Window;
use crate::store::{Dimension, RollupRow};

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
    /// FinOps FOCUS 1.0 columns in CSV.
    Focus,
}

impl Format {
    pub fn parse(text: Option<&str>) -> Result<Self, BillingError> {
        match text.map(str::trim).unwrap_or("csv") {
            "csv" | "" => Ok(Self::Csv),
            "jsonl" => Ok(Self::Jsonl),
            "focus" => Ok(Self::Focus),
            other => Err(BillingError::invalid(
                "format",
                format!("unknown `{other}`; use csv, jsonl or focus"),
            )),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv | Self::Focus => "text/csv; charset=utf-8",
            Self::Jsonl => "application/x-ndjson",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv | Self::Focus => "csv",
            Self::Jsonl => "jsonl",
        }
    }
}

/// Writes the header and the rows of one export.
pub struct Encoder {
    format: Format,
    group_by: Vec<Dimension>,
}

impl Encoder {
    pub fn new(format: Format, group_by: &[Dimension]) -> Self {
        Self {
            format,
            group_by: group_by.to_vec(),
        }
    }

    fn has(&self, dimension: Dimension) -> bool {
        self.group_by.contains(&dimension)
    }

    fn period(&self) -> Option<Dimension> {
        self.group_by
            .iter()
            .copied()
            .find(|d| matches!(d, Dimension::Month | Dimension::Day | Dimension::Hour))
    }

    /// The CONTRACT.md columns this export has, in order.
    pub fn columns(&self) -> Vec<&'static str> {
        let mut columns = Vec::new();
        if self.period().is_some() {
            columns.push("period_start");
        }
        for (dimension, column) in [
            (Dimension::Tenant, "tenant_id"),
            (Dimension::User, "subject"),
            (Dimension::Model, "model"),
            (Dimension::Provider, "provider"),
        ] {
            if self.has(dimension) {
                columns.push(column);
            }
        }
        columns.extend([
            "requests",
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "cost_usd",
        ]);
        columns
    }

    /// What goes before the first row (JSON Lines has no header).
    pub fn header(&self, out: &mut Vec<u8>) {
        match self.format {
            Format::Csv => csv_line(out, self.columns()),
            Format::Jsonl => {}
            Format::Focus => csv_line(out, super::focus::COLUMNS.iter().copied()),
        }
    }

    pub fn row(&self, row: &RollupRow, out: &mut Vec<u8>) {
        match self.format {
            Format::Csv => {
                let values = self.values(row);
                csv_line(out, values.iter().map(|(_, v)| v.as_str()));
            }
            Format::Jsonl => {
                out.push(b'{');
                for (i, (column, value)) in self.values(row).iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(format!("\"{column}\":").as_bytes());
                    if is_number(column) {
                        out.extend_from_slice(value.as_bytes());
                    } else {
                        json_string(out, value);
                    }
                }
                out.extend_from_slice(b"}\n");
            }
            Format::Focus => {
                let (start, end) = self.charge_period(row);
                let values = super::focus::values(row, start, end);
                csv_line(out, values.iter().map(|v| v.as_deref().unwrap_or("")));
            }
        }
    }

    /// The row's values by column name, in [`Encoder::columns`] order.
    fn values(&self, row: &RollupRow) -> Vec<(&'static str, String)> {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let mut values = Vec::new();
        if self.period().is_some() {
            let start = row.period_start.map(Timestamp::to_rfc3339);
            values.push(("period_start", start.unwrap_or_default()));
        }
        for (dimension, column, value) in [
            (Dimension::Tenant, "tenant_id", &row.tenant_id),
            (Dimension::User, "subject", &row.subject),
            (Dimension::Model, "model", &row.model),
            (Dimension::Provider, "provider", &row.provider),
        ] {
            if self.has(dimension) {
                values.push((column, text(value)));
            }
        }
        let tally = &row.tally;
        values.extend([
            ("requests", tally.requests.to_string()),
            ("prompt_tokens", tally.prompt_tokens.to_string()),
            ("completion_tokens", tally.completion_tokens.to_string()),
            ("total_tokens", tally.total_tokens.to_string()),
            ("cost_usd", dollars(tally.cost_micro_usd)),
        ]);
        values
    }

    /// `[start, end)` of the row's period. FOCUS exports always group by a period (see
    /// [`super::ExportRequest`]), so the fallback is never a multi-month span in practice.
    fn charge_period(&self, row: &RollupRow) -> (Timestamp, Timestamp) {
        let start = row.period_start.unwrap_or(Timestamp(0));
        let end = match self.period() {
            Some(Dimension::Hour) => Timestamp(start.0 + 3_600_000),
            Some(Dimension::Day) => Timestamp(start.0 + 86_400_000),
            _ => Window::Month.end(start),
        };
        (start, end)
    }
}

/// Token counts are JSON numbers; ids, times and money (exact decimal text) are strings.
fn is_number(column: &str) -> bool {
    matches!(
        column,
        "requests" | "prompt_tokens" | "completion_tokens" | "total_tokens"
    )
}

/// One CSV record (RFC 4180): fields with a comma, quote or line break are quoted.
fn csv_line<'a>(out: &mut Vec<u8>, fields: impl IntoIterator<Item = &'a str>) {
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if field.contains([',', '"', '\n', '\r']) {
            out.push(b'"');
            out.extend_from_slice(field.replace('"', "\"\"").as_bytes());
            out.push(b'"');
        } else {
            out.extend_from_slice(field.as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
}

fn json_string(out: &mut Vec<u8>, value: &str) {
    // Serialising a &str cannot fail; the fallback keeps the line valid JSON regardless.
    match serde_json::to_string(value) {
        Ok(text) => out.extend_from_slice(text.as_bytes()),
        Err(_) => out.extend_from_slice(b"\"\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::Tally;

    fn row() -> RollupRow {
        RollupRow {
            period_start: Some(Timestamp(1_795_996_800_000)), // 2026-11-30
            tenant_id: Some("acme".into()),
            subject: Some("jane,\"doe\"".into()),
            model: None,
            provider: None,
            tally: Tally {
                requests: 2,
                prompt_tokens: 10,
                completion_tokens: 5,
                cached_tokens: 0,
                total_tokens: 15,
                cost_micro_usd: 1_500_001,
            },
        }
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let encoder = Encoder::new(
            Format::Csv,
            &[Dimension::Day, Dimension::Tenant, Dimension::User],
        );
        let mut out = Vec::new();
        encoder.header(&mut out);
        encoder.row(&row(), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "period_start,tenant_id,subject,requests,prompt_tokens,completion_tokens,\
             total_tokens,cost_usd\r\n2026-11-30T00:00:00.000Z,acme,\"jane,\"\"doe\"\"\",2,10,5,\
             15,1.500001\r\n"
        );
    }

    #[test]
    fn jsonl_keeps_the_column_order_and_money_as_text() {
        let encoder = Encoder::new(Format::Jsonl, &[Dimension::Tenant]);
        let mut out = Vec::new();
        encoder.header(&mut out);
        encoder.row(&row(), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"tenant_id\":\"acme\",\"requests\":2,\"prompt_tokens\":10,\
             \"completion_tokens\":5,\"total_tokens\":15,\"cost_usd\":\"1.500001\"}\n"
        );
    }
}
