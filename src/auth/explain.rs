//! `explain`: walk one credential through every step and say what each found, with the hints an
//! operator needs for the classic "valid token, unknown user" puzzles.

use serde::Serialize;
use serde_json::Value;

use super::authenticator::{AuthError, Authenticator};
use super::reason::Reason;
use super::token;
use super::trace::{Recorder, StepReport};
use crate::store::StoreError;

/// What `explain` reports (the body of `POST /admin/v1/auth/explain`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Explanation {
    pub accepted: bool,
    pub reason: Option<Reason>,
    pub tenant: Option<String>,
    pub subject: Option<String>,
    pub steps: Vec<StepReport>,
    /// Near misses worth a look: a subject in another case or another tenant, an issuer that
    /// differs by a slash, a claim that names an existing user.
    pub hints: Vec<String>,
}

/// Claims that never name a user.
const NOT_SUBJECTS: [&str; 9] = [
    "iss", "aud", "exp", "nbf", "iat", "jti", "azp", "scope", "typ",
];

impl Authenticator {
    pub async fn explain(
        &self,
        credential: &str,
    ) -> Result<Explanation, std::sync::Arc<StoreError>> {
        let mut recorder = Recorder::default();
        let outcome = self.run(credential, &mut recorder).await;
        let mut explanation = Explanation {
            accepted: false,
            reason: None,
            tenant: None,
            subject: None,
            steps: recorder.steps,
            hints: Vec::new(),
        };
        match outcome {
            Ok(principal) => {
                explanation.accepted = true;
                explanation.tenant = Some(principal.tenant.id.clone());
                explanation.subject = Some(principal.subject.to_string());
            }
            Err(AuthError::Unavailable(error)) => return Err(error),
            Err(AuthError::Rejected(rejection)) => {
                explanation.reason = Some(rejection.reason);
                explanation.tenant = rejection.tenant.clone();
                explanation.subject = rejection.subject.clone();
                explanation.hints = self.hints(credential, &rejection).await?;
            }
        }
        Ok(explanation)
    }

    async fn hints(
        &self,
        credential: &str,
        rejection: &super::authenticator::Rejection,
    ) -> Result<Vec<String>, std::sync::Arc<StoreError>> {
        let store = self.directory().store();
        let mut hints = Vec::new();
        match rejection.reason {
            Reason::UnknownIssuer => {
                if let Some(iss) = &rejection.issuer {
                    let wanted = loose(iss);
                    for registered in self.directory().issuers().by_iss.keys() {
                        if loose(registered) == wanted {
                            hints.push(format!(
                                "`{iss}` differs from the registered issuer `{registered}` only by case, scheme or a trailing slash; `iss` must match exactly"
                            ));
                        }
                    }
                }
            }
            Reason::UnknownUser => {
                let (Some(tenant), Some(subject)) = (&rejection.tenant, &rejection.subject) else {
                    return Ok(hints);
                };
                let near = store
                    .users_like(subject)
                    .await
                    .map_err(std::sync::Arc::new)?;
                for user in near {
                    let same_tenant = user.tenant_id == *tenant;
                    let same_case = user.subject == *subject;
                    let hint = match (same_tenant, same_case) {
                        (true, true) => continue,
                        (true, false) => format!(
                            "tenant `{tenant}` has a user `{}` that differs only in case; if the identity provider's case varies, set the issuer's subject_case to `lowercase` (and store subjects in lower case)",
                            user.subject
                        ),
                        (false, true) => format!(
                            "`{subject}` exists in tenant `{}` ({}), not in `{tenant}`",
                            user.tenant_id,
                            user.status.as_str()
                        ),
                        (false, false) => format!(
                            "`{}` exists in tenant `{}` (another tenant and another case)",
                            user.subject, user.tenant_id
                        ),
                    };
                    hints.push(hint);
                }
                // The identity provider may put its identifier in another claim.
                if let Ok(parsed) = token::parse(credential) {
                    for (claim, value) in parsed.claims.iter().take(32) {
                        let Value::String(value) = value else {
                            continue;
                        };
                        if NOT_SUBJECTS.contains(&claim.as_str()) || value == subject {
                            continue;
                        }
                        if let Ok(Some(user)) = store.user(tenant, value).await {
                            hints.push(format!(
                                "the token's `{claim}` claim (`{value}`) names user `{}` of tenant `{tenant}`; should the issuer's subject_claim be `{claim}`?",
                                user.subject
                            ));
                        }
                    }
                }
                if hints.is_empty() {
                    hints.push(format!(
                        "no user resembles `{subject}` in any tenant: create it with PUT /admin/v1/tenants/{tenant}/users/{{subject}}, or enable jit_provisioning on the issuer"
                    ));
                }
            }
            _ => {}
        }
        Ok(hints)
    }
}

/// An issuer URL without scheme, trailing slashes or case: for spotting near misses only.
fn loose(iss: &str) -> String {
    let iss = iss.trim().to_lowercase();
    let iss = iss
        .strip_prefix("https://")
        .or_else(|| iss.strip_prefix("http://"))
        .unwrap_or(&iss);
    iss.trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_issuers_ignore_scheme_case_and_slash() {
        assert_eq!(
            loose("https://IdP.example.com/"),
            loose("http://idp.example.com")
        );
        assert_ne!(
            loose("https://idp.example.com/a"),
            loose("https://idp.example.com/b")
        );
    }
}
