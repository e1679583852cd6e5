//! The FinOps FOCUS 1.0 mapping: one export row as one FOCUS cost-and-usage row.
//!
//! tollgate is the provider and invoice issuer that bills its tenants; each tenant is a
//! sub-account; the upstream (openai, anthropic, …) is the publisher and the service; the model
//! is the resource and the SKU; tokens are the consumed and priced quantity; cost is billed,
//! effective, list and contracted cost alike (tollgate has no discounts or commitments).
//!
//! Besides the 1.0 names, five columns carry the names that the FinOps Foundation's validator
//! (`focus-validator` 1.0.0) still checks for version 1.0 — `ChargeType`, `Provider`,
//! `Publisher`, `InvoiceIssuer`, `ResourceID` (the 1.0-preview names) — with the same values,
//! so the file validates and also reads right in tools that follow the published 1.0 text.
//! Our own figures that FOCUS has no column for follow as `x_` columns, as the spec allows.

use super::money::dollars;
use crate::clock::Timestamp;
use crate::quota::Window;
use crate::store::RollupRow;

/// Who bills the tenants.
const ISSUER: &str = "tollgate";

pub const COLUMNS: &[&str] = &[
    "AvailabilityZone",
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "CommitmentDiscountCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountName",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "SkuId",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "Tags",
    // The validator's 1.0 rule set (1.0-preview names).
    "ChargeType",
    "InvoiceIssuer",
    "Provider",
    "Publisher",
    "ResourceID",
    // tollgate's own figures.
    "x_Requests",
    "x_PromptTokens",
    "x_CompletionTokens",
    "x_CachedTokens",
];

/// The values of one row, in [`COLUMNS`] order; `None` is an empty (null) cell.
pub fn values(row: &RollupRow, start: Timestamp, end: Timestamp) -> Vec<Option<String>> {
    let tally = &row.tally;
    let cost = dollars(tally.cost_micro_usd);
    // A decimal, not an integer: the validator reads a column of whole numbers as integers and
    // refuses it as a quantity.
    let tokens = format!("{}.0", tally.total_tokens);
    let publisher = row.provider.clone().unwrap_or_else(|| ISSUER.to_owned());
    let sku = match (&row.provider, &row.model) {
        (Some(provider), Some(model)) => format!("{provider}/{model}"),
        (None, Some(model)) => model.clone(),
        _ => "tokens".to_owned(),
    };
    let description = match &row.model {
        Some(model) => format!("{model} tokens via {publisher}"),
        None => format!("LLM tokens via {publisher}"),
    };
    let tags = row
        .subject
        .as_ref()
        .map(|subject| serde_json::json!({ "x_tollgate/subject": subject }).to_string())
        .unwrap_or_else(|| "{}".to_owned());
    let some = |text: &str| Some(text.to_owned());
    vec![
        None,                                           // AvailabilityZone
        Some(cost.clone()),                             // BilledCost
        some(ISSUER),                                   // BillingAccountId
        some(ISSUER),                                   // BillingAccountName
        some("USD"),                                    // BillingCurrency
        Some(Window::Month.end(start).to_rfc3339()),    // BillingPeriodEnd
        Some(Window::Month.start(start).to_rfc3339()),  // BillingPeriodStart
        some("Usage"),                                  // ChargeCategory
        None,                                           // ChargeClass
        Some(description),                              // ChargeDescription
        some("Usage-Based"),                            // ChargeFrequency
        Some(end.to_rfc3339()),                         // ChargePeriodEnd
        Some(start.to_rfc3339()),                       // ChargePeriodStart
        None,                                           // CommitmentDiscountCategory
        None,                                           // CommitmentDiscountId
        None,                                           // CommitmentDiscountName
        None,                                           // CommitmentDiscountStatus
        None,                                           // CommitmentDiscountType
        Some(tokens.clone()),                           // ConsumedQuantity
        some("Tokens"),                                 // ConsumedUnit
        Some(cost.clone()),                             // ContractedCost
        None,                                           // ContractedUnitPrice
        Some(cost.clone()),                             // EffectiveCost
        some(ISSUER),                                   // InvoiceIssuerName
        Some(cost),                                     // ListCost
        None,                                           // ListUnitPrice
        some("Standard"),                               // PricingCategory
        Some(tokens),                                   // PricingQuantity
        some("Tokens"),                                 // PricingUnit
        some(ISSUER),                                   // ProviderName
        Some(publisher.clone()),                        // PublisherName
        None,                                           // RegionId
        None,                                           // RegionName
        row.model.clone(),                              // ResourceId
        row.model.clone(),                              // ResourceName
        row.model.as_ref().map(|_| "Model".to_owned()), // ResourceType
        some("AI and Machine Learning"),                // ServiceCategory
        Some(publisher.clone()),                        // ServiceName
        Some(sku.clone()),                              // SkuId
        Some(sku),                                      // SkuPriceId
        row.tenant_id.clone(),                          // SubAccountId
        row.tenant_id.clone(),                          // SubAccountName
        Some(tags),                                     // Tags
        some("Usage"),                                  // ChargeType
        some(ISSUER),                                   // InvoiceIssuer
        some(ISSUER),                                   // Provider
        Some(publisher),                                // Publisher
        row.model.clone(),                              // ResourceID
        Some(tally.requests.to_string()),               // x_Requests
        Some(tally.prompt_tokens.to_string()),          // x_PromptTokens
        Some(tally.completion_tokens.to_string()),      // x_CompletionTokens
        Some(tally.cached_tokens.to_string()),          // x_CachedTokens
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::Tally;

    #[test]
    fn one_value_per_column() {
        let row = RollupRow {
            period_start: None,
            tenant_id: None,
            subject: None,
            model: None,
            provider: None,
            tally: Tally::default(),
        };
        assert_eq!(
            values(&row, Timestamp(0), Timestamp(1)).len(),
            COLUMNS.len()
        );
    }
}
