//! What the auth stage says about each step it takes. Requests pass [`Silent`], which compiles
//! to nothing; `explain` passes a [`Recorder`] and gets every step back with its detail.

use serde::Serialize;

/// The steps of authentication, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Format,
    Issuer,
    Algorithm,
    Key,
    Signature,
    Lifetime,
    Audience,
    Scope,
    Tenant,
    Subject,
    User,
    Status,
    Revocation,
    Groups,
    ApiKey,
}

pub trait Trace: Send {
    fn record(&mut self, step: Step, ok: bool, detail: impl FnOnce() -> String);
}

/// The hot path's trace: records nothing, costs nothing.
pub struct Silent;

impl Trace for Silent {
    #[inline(always)]
    fn record(&mut self, _: Step, _: bool, _: impl FnOnce() -> String) {}
}

/// One recorded step.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StepReport {
    pub step: Step,
    pub ok: bool,
    pub detail: String,
}

#[derive(Default)]
pub struct Recorder {
    pub steps: Vec<StepReport>,
}

impl Trace for Recorder {
    fn record(&mut self, step: Step, ok: bool, detail: impl FnOnce() -> String) {
        self.steps.push(StepReport {
            step,
            ok,
            detail: detail(),
        });
    }
}
