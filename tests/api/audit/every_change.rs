//! Every kind of change, one row each, made through the door it comes through: the admin API
//! (as the platform or as a tenant admin), SCIM, the data plane (just-in-time provisioning)
//! and the console. After each, exactly one new event must be there, naming the action, the
//! actor, the tenant, the target and the request id the response carried; at the end, no
//! event may contain any secret the test saw.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};

use super::{Sent, send};
use crate::identity::{HS_SECRET, hs_token};
use crate::scim::{GROUP_SCHEMA, PATCH_OP, USER_SCHEMA};
use crate::support::{ADMIN_TOKEN, Backend, TestApp, on_both_backends};

on_both_backends!(every_change_records_exactly_one_event_without_secrets);

const ISS: &str = "https://idp.audit.test";
const TENANT: &str = "acme";
/// The tenant admin who makes the tenant-scoped changes.
const ADMIN: &str = "alice";
const SCIM_PASSWORD_SECRET: &str = "a-scim-password-never-kept";

/// Whom a row's event must name.
#[derive(Debug, Clone, Copy)]
enum By {
    Platform,
    TenantAdmin,
    /// The SCIM token the test created.
    Scim,
    /// tollgate itself, provisioning just in time.
    Jit,
}

/// Every kind of change there is.
#[derive(Debug, Clone, Copy)]
enum Change {
    CreateTenant,
    RenameTenant,
    DisableTenant,
    EnableTenant,
    SetModels,
    CreateIssuer,
    CreateAdmin,
    CreateAdminKey,
    CreateUser,
    UpdateUser,
    SuspendUser,
    ReactivateUser,
    CreateKey,
    RevokeKey,
    SetTenantQuota,
    SetDefaultQuota,
    SetUserQuota,
    RemoveUserQuota,
    RevokeUserTokens,
    RevokeToken,
    CreateScimToken,
    SetScimSettings,
    ScimCreateUser,
    ScimDeactivateUser,
    ScimReactivateUser,
    ScimRenameUser,
    ScimCreateGroup,
    ScimUpdateGroup,
    ScimDeleteGroup,
    ScimDeleteUser,
    RevokeScimToken,
    SaveGroup,
    DeleteGroup,
    CreateWebhook,
    DeleteWebhook,
    JitUser,
    ConsoleSignIn,
    DeleteUser,
    RestoreUser,
    DeleteIssuer,
    DeleteTenant,
}

use By::*;
use Change::*;

impl Change {
    /// The service-layer write (`tollgate::admin::Admin`) the change goes through; just-in-time
    /// provisioning is the data plane's own.
    fn write(self) -> &'static str {
        match self {
            CreateTenant => "create_tenant",
            RenameTenant | DisableTenant | EnableTenant => "update_tenant",
            SetModels => "set_allowed_models",
            CreateIssuer => "create_issuer",
            CreateAdmin | CreateUser | UpdateUser | SuspendUser | ReactivateUser | RestoreUser => {
                "upsert_user"
            }
            CreateAdminKey | CreateKey => "create_api_key",
            RevokeKey => "revoke_api_key",
            SetTenantQuota => "set_tenant_quota",
            SetDefaultQuota => "set_default_user_quota",
            SetUserQuota | RemoveUserQuota => "set_user_quota",
            RevokeUserTokens => "revoke_user_tokens",
            RevokeToken => "revoke_token",
            CreateScimToken => "create_scim_token",
            SetScimSettings => "set_scim_subject_attribute",
            ScimCreateUser | ScimDeactivateUser | ScimReactivateUser | ScimRenameUser => {
                "scim_save_user"
            }
            ScimCreateGroup | ScimUpdateGroup => "scim_save_group",
            ScimDeleteGroup => "scim_delete_group",
            ScimDeleteUser => "scim_delete_user",
            RevokeScimToken => "revoke_scim_token",
            SaveGroup => "save_group",
            DeleteGroup => "delete_group",
            CreateWebhook => "create_webhook",
            DeleteWebhook => "remove_webhook",
            JitUser => "(just-in-time provisioning)",
            ConsoleSignIn => "open_console_session",
            DeleteUser => "delete_user",
            DeleteIssuer => "delete_issuer",
            DeleteTenant => "delete_tenant",
        }
    }
}

/// A write of the service with no row in [`TABLE`] fails the test: a new write states which
/// event it records.
#[test]
fn every_write_of_the_service_has_a_row() {
    let covered: std::collections::BTreeSet<String> = TABLE
        .iter()
        .map(|(change, _, _)| change.write().to_owned())
        .collect();
    let missing: Vec<_> = crate::announcements::service_writes()
        .difference(&covered)
        .cloned()
        .collect();
    assert!(missing.is_empty(), "writes with no row here: {missing:?}");
}

/// Each change, in an order that works, with the action and the actor its event must name.
const TABLE: &[(Change, &str, By)] = &[
    (CreateTenant, "tenant.created", Platform),
    (RenameTenant, "tenant.updated", Platform),
    (DisableTenant, "tenant.disabled", Platform),
    (EnableTenant, "tenant.enabled", Platform),
    (SetModels, "tenant.models_set", Platform),
    (CreateIssuer, "issuer.created", Platform),
    (CreateAdmin, "user.created", Platform),
    (CreateAdminKey, "key.created", Platform),
    (CreateUser, "user.created", TenantAdmin),
    (UpdateUser, "user.updated", TenantAdmin),
    (SuspendUser, "user.suspended", TenantAdmin),
    (ReactivateUser, "user.reactivated", TenantAdmin),
    (CreateKey, "key.created", TenantAdmin),
    (RevokeKey, "key.revoked", TenantAdmin),
    (SetTenantQuota, "quota.set", Platform),
    (SetDefaultQuota, "quota.set", TenantAdmin),
    (SetUserQuota, "quota.set", TenantAdmin),
    (RemoveUserQuota, "quota.removed", TenantAdmin),
    (RevokeUserTokens, "user.tokens_revoked", TenantAdmin),
    (RevokeToken, "token.revoked", TenantAdmin),
    (CreateScimToken, "scim_token.created", TenantAdmin),
    (SetScimSettings, "scim.settings_set", TenantAdmin),
    (ScimCreateUser, "user.created", Scim),
    (ScimDeactivateUser, "user.suspended", Scim),
    (ScimReactivateUser, "user.reactivated", Scim),
    (ScimRenameUser, "user.renamed", Scim),
    (ScimCreateGroup, "group.created", Scim),
    (ScimUpdateGroup, "group.updated", Scim),
    (ScimDeleteGroup, "group.deleted", Scim),
    (ScimDeleteUser, "user.deleted", Scim),
    (RevokeScimToken, "scim_token.revoked", TenantAdmin),
    (SaveGroup, "group.saved", TenantAdmin),
    (DeleteGroup, "group.deleted", TenantAdmin),
    (CreateWebhook, "webhook.created", TenantAdmin),
    (DeleteWebhook, "webhook.deleted", TenantAdmin),
    (JitUser, "user.created", Jit),
    (ConsoleSignIn, "console.signed_in", Platform),
    (DeleteUser, "user.deleted", TenantAdmin),
    (RestoreUser, "user.restored", TenantAdmin),
    (DeleteIssuer, "issuer.deleted", Platform),
    (DeleteTenant, "tenant.deleted", Platform),
];

/// What the rows so far made, and every secret the test has seen.
struct Ctx<'a> {
    app: &'a TestApp,
    admin_key: String,
    issuer_id: String,
    key_id: String,
    scim_token: String,
    scim_token_id: String,
    scim_user_id: String,
    scim_group_id: String,
    webhook_id: String,
    secrets: Vec<String>,
}

/// A change made: the response, and the target its event must name.
struct Done {
    sent: Sent,
    tenant: Option<&'static str>,
    target: Option<String>,
}

async fn every_change_records_exactly_one_event_without_secrets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut ctx = Ctx {
        app: &app,
        admin_key: String::new(),
        issuer_id: String::new(),
        key_id: String::new(),
        scim_token: String::new(),
        scim_token_id: String::new(),
        scim_user_id: String::new(),
        scim_group_id: String::new(),
        webhook_id: String::new(),
        secrets: vec![
            ADMIN_TOKEN.to_owned(),
            HS_SECRET.to_owned(),
            SCIM_PASSWORD_SECRET.to_owned(),
        ],
    };
    let mut seen = HashSet::new();
    for &(change, action, by) in TABLE {
        let done = ctx.perform(change).await;
        assert!(
            (200..300).contains(&done.sent.status),
            "{change:?}: {} {}",
            done.sent.status,
            done.sent.body
        );
        let events = app.audit("limit=10000").await;
        let new: Vec<&Value> = events
            .iter()
            .filter(|event| !seen.contains(event["id"].as_str().unwrap()))
            .collect();
        assert_eq!(
            new.len(),
            1,
            "{change:?} recorded {} events: {new:#?}",
            new.len()
        );
        let event = new[0];
        seen.insert(event["id"].as_str().unwrap().to_owned());
        let (kind, id) = match by {
            Platform => ("platform", None),
            TenantAdmin => ("tenant_admin", Some(ADMIN.to_owned())),
            Scim => ("scim", Some(ctx.scim_token_id.clone())),
            Jit => ("system", Some("jit".to_owned())),
        };
        assert_eq!(event["action"], action, "{change:?}: {event:#}");
        assert_eq!(event["actor"]["kind"], kind, "{change:?}: {event:#}");
        assert_eq!(event["actor"]["id"], json!(id), "{change:?}: {event:#}");
        assert_eq!(event["tenant"], json!(done.tenant), "{change:?}: {event:#}");
        assert_eq!(event["target"], json!(done.target), "{change:?}: {event:#}");
        assert_eq!(
            event["request_id"], done.sent.request_id,
            "{change:?}: {event:#}"
        );
        let at = event["at"].as_str().unwrap();
        assert!(at.ends_with('Z') && at.len() == 24, "{change:?}: {at}");
    }

    // Before and after show what changed, as the admin API shows it.
    let events = app.audit("limit=10000").await;
    let find = |action: &str| {
        events
            .iter()
            .find(|event| event["action"] == action)
            .unwrap_or_else(|| panic!("no {action}"))
    };
    let models = find("tenant.models_set");
    assert_eq!(models["before"]["allowed_models"], Value::Null);
    assert_eq!(models["after"]["allowed_models"], json!(["m"]));
    let suspended = find("user.suspended");
    assert_eq!(suspended["before"]["status"], "active");
    assert_eq!(suspended["after"]["status"], "suspended");
    let quota = find("quota.set");
    assert_eq!(quota["before"], Value::Null, "no tenant quota before");
    assert_eq!(quota["after"]["scope"], "tenant");
    assert_eq!(quota["after"]["limits"]["tokens_per_day"], 1000);
    let issuer = find("issuer.created");
    assert_eq!(issuer["after"]["key_source"], "hs256_secret");
    assert_eq!(find("issuer.deleted")["before"]["id"], issuer["target"]);

    // No secret anywhere: not in the JSON answer, not in the JSON Lines export.
    let answer = serde_json::to_string(&events).unwrap();
    let export = app
        .admin(Method::GET, "/audit?format=jsonl")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(export.lines().count(), TABLE.len());
    let hashes: Vec<String> = ctx
        .secrets
        .iter()
        .map(|secret| tollgate::auth::api_keys::hash(secret))
        .collect();
    for secret in ctx.secrets.iter().chain(&hashes) {
        assert!(!secret.is_empty());
        assert!(!answer.contains(secret.as_str()), "{secret} in {answer}");
        assert!(!export.contains(secret.as_str()), "{secret} in the export");
    }
}

impl Ctx<'_> {
    fn platform(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.app.admin(method, path)
    }

    fn tenant_admin(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.app
            .client
            .request(method, self.app.url(&format!("/admin/v1{path}")))
            .bearer_auth(&self.admin_key)
    }

    fn scim(&self, method: Method, path: &str, body: Option<Value>) -> reqwest::RequestBuilder {
        let request = self
            .app
            .client
            .request(method, self.app.url(&format!("/scim/v2/{TENANT}{path}")))
            .bearer_auth(&self.scim_token);
        match body {
            Some(body) => request
                .header("content-type", "application/scim+json")
                .body(body.to_string()),
            None => request,
        }
    }

    async fn perform(&mut self, change: Change) -> Done {
        let tenant = format!("/tenants/{TENANT}");
        let bob = format!("{tenant}/users/bob");
        let (request, target) = match change {
            CreateTenant => (
                self.platform(Method::POST, "/tenants")
                    .json(&json!({"id": TENANT, "name": "Acme"})),
                Some(TENANT.to_owned()),
            ),
            RenameTenant => (
                self.platform(Method::PATCH, &tenant)
                    .json(&json!({"name": "Acme Inc"})),
                Some(TENANT.to_owned()),
            ),
            DisableTenant => (
                self.platform(Method::PATCH, &tenant)
                    .json(&json!({"status": "disabled"})),
                Some(TENANT.to_owned()),
            ),
            EnableTenant => (
                self.platform(Method::PATCH, &tenant)
                    .json(&json!({"status": "active"})),
                Some(TENANT.to_owned()),
            ),
            SetModels => (
                self.platform(Method::PUT, &format!("{tenant}/models"))
                    .json(&json!(["m"])),
                Some(TENANT.to_owned()),
            ),
            CreateIssuer => {
                let sent = send(self.platform(Method::POST, "/issuers").json(&json!({
                    "issuer": ISS, "tenant": TENANT, "audiences": [crate::identity::AUD],
                    "hs256_secret": HS_SECRET, "jit_provisioning": true,
                })))
                .await;
                self.issuer_id = sent.body["id"].as_str().unwrap().to_owned();
                let target = Some(self.issuer_id.clone());
                return self.done(sent, target);
            }
            CreateAdmin => (
                self.platform(Method::PUT, &format!("{tenant}/users/{ADMIN}"))
                    .json(&json!({"role": "admin"})),
                Some(ADMIN.to_owned()),
            ),
            CreateAdminKey => {
                let path = format!("{tenant}/users/{ADMIN}/keys");
                let sent = send(
                    self.platform(Method::POST, &path)
                        .json(&json!({"name": "admin"})),
                )
                .await;
                self.admin_key = sent.body["key"].as_str().unwrap().to_owned();
                self.secrets.push(self.admin_key.clone());
                let target = sent.body["id"].as_str().map(str::to_owned);
                return self.done(sent, target);
            }
            CreateUser => (
                self.tenant_admin(Method::PUT, &bob).json(&json!({})),
                Some("bob".to_owned()),
            ),
            UpdateUser => (
                self.tenant_admin(Method::PUT, &bob)
                    .json(&json!({"display_name": "Bob"})),
                Some("bob".to_owned()),
            ),
            SuspendUser => (
                self.tenant_admin(Method::PUT, &bob)
                    .json(&json!({"status": "suspended"})),
                Some("bob".to_owned()),
            ),
            ReactivateUser | RestoreUser => (
                self.tenant_admin(Method::PUT, &bob)
                    .json(&json!({"status": "active"})),
                Some("bob".to_owned()),
            ),
            CreateKey => {
                let request = self
                    .tenant_admin(Method::POST, &format!("{bob}/keys"))
                    .json(&json!({"name": "laptop"}));
                let sent = send(request).await;
                self.secrets
                    .push(sent.body["key"].as_str().unwrap().to_owned());
                self.key_id = sent.body["id"].as_str().unwrap().to_owned();
                let target = Some(self.key_id.clone());
                return self.done(sent, target);
            }
            RevokeKey => (
                self.tenant_admin(Method::DELETE, &format!("{bob}/keys/{}", self.key_id)),
                Some(self.key_id.clone()),
            ),
            SetTenantQuota => (
                self.platform(Method::PUT, &format!("{tenant}/quota"))
                    .json(&json!({"tokens_per_day": 1000})),
                None,
            ),
            SetDefaultQuota => (
                self.tenant_admin(Method::PUT, &format!("{tenant}/default-user-quota"))
                    .json(&json!({"tokens_per_day": 100})),
                None,
            ),
            SetUserQuota => (
                self.tenant_admin(Method::PUT, &format!("{bob}/quota"))
                    .json(&json!({"tokens_per_day": 10, "cost_usd_per_month": 1.5})),
                Some("bob".to_owned()),
            ),
            RemoveUserQuota => (
                self.tenant_admin(Method::PUT, &format!("{bob}/quota"))
                    .json(&json!({})),
                Some("bob".to_owned()),
            ),
            RevokeUserTokens => (
                self.tenant_admin(Method::POST, &format!("{bob}/revoke-tokens")),
                Some("bob".to_owned()),
            ),
            RevokeToken => (
                self.tenant_admin(Method::POST, &format!("{tenant}/revoked-tokens"))
                    .json(&json!({"jti": "jti-1", "expires_at": "2030-01-01T00:00:00Z"})),
                Some("jti-1".to_owned()),
            ),
            CreateScimToken => {
                let request = self
                    .tenant_admin(Method::POST, &format!("{tenant}/scim-tokens"))
                    .json(&json!({"name": "idp"}));
                let sent = send(request).await;
                self.scim_token = sent.body["token"].as_str().unwrap().to_owned();
                self.secrets.push(self.scim_token.clone());
                self.scim_token_id = sent.body["id"].as_str().unwrap().to_owned();
                let target = Some(self.scim_token_id.clone());
                return self.done(sent, target);
            }
            SetScimSettings => (
                self.tenant_admin(Method::PUT, &format!("{tenant}/scim"))
                    .json(&json!({"subject_attribute": "userName"})),
                None,
            ),
            ScimCreateUser => {
                let request = self.scim(
                    Method::POST,
                    "/Users",
                    Some(
                        json!({"schemas": [USER_SCHEMA], "userName": "carol@acme.test",
                        "externalId": "ext-carol", "password": SCIM_PASSWORD_SECRET, "active": true}),
                    ),
                );
                let sent = send(request).await;
                self.scim_user_id = sent.body["id"].as_str().unwrap().to_owned();
                return self.done(sent, Some("carol@acme.test".to_owned()));
            }
            ScimDeactivateUser | ScimReactivateUser => {
                let active = matches!(change, ScimReactivateUser);
                let operations = json!([{"op": "replace", "value": {"active": active}}]);
                (
                    self.scim(
                        Method::PATCH,
                        &format!("/Users/{}", self.scim_user_id),
                        Some(json!({"schemas": [PATCH_OP], "Operations": operations})),
                    ),
                    Some("carol@acme.test".to_owned()),
                )
            }
            ScimRenameUser => (
                self.scim(
                    Method::PUT,
                    &format!("/Users/{}", self.scim_user_id),
                    Some(
                        json!({"schemas": [USER_SCHEMA], "userName": "carol.new@acme.test",
                        "externalId": "ext-carol", "active": true}),
                    ),
                ),
                Some("carol.new@acme.test".to_owned()),
            ),
            ScimCreateGroup => {
                let request = self.scim(
                    Method::POST,
                    "/Groups",
                    Some(json!({"schemas": [GROUP_SCHEMA], "displayName": "eng",
                        "members": [{"value": self.scim_user_id}]})),
                );
                let sent = send(request).await;
                self.scim_group_id = sent.body["id"].as_str().unwrap().to_owned();
                let target = Some(self.scim_group_id.clone());
                return self.done(sent, target);
            }
            ScimUpdateGroup => {
                let operations =
                    json!([{"op": "replace", "path": "displayName", "value": "engineering"}]);
                (
                    self.scim(
                        Method::PATCH,
                        &format!("/Groups/{}", self.scim_group_id),
                        Some(json!({"schemas": [PATCH_OP], "Operations": operations})),
                    ),
                    Some(self.scim_group_id.clone()),
                )
            }
            SaveGroup => (
                self.tenant_admin(Method::PUT, &format!("{tenant}/groups/eng"))
                    .json(&json!({"models": ["m"], "role": null})),
                Some("eng".to_owned()),
            ),
            DeleteGroup => (
                self.tenant_admin(Method::DELETE, &format!("{tenant}/groups/eng")),
                Some("eng".to_owned()),
            ),
            CreateWebhook => {
                // A public address: registering sends nothing, and the endpoint asks only for
                // threshold events, which nothing here causes.
                let request = self
                    .tenant_admin(Method::POST, &format!("{tenant}/webhooks"))
                    .json(&json!({"url": "https://hooks.acme.example/tollgate",
                                  "events": ["quota.threshold"]}));
                let sent = send(request).await;
                self.secrets
                    .push(sent.body["secret"].as_str().unwrap().to_owned());
                self.webhook_id = sent.body["id"].as_str().unwrap().to_owned();
                let target = Some(self.webhook_id.clone());
                return self.done(sent, target);
            }
            DeleteWebhook => (
                self.tenant_admin(
                    Method::DELETE,
                    &format!("{tenant}/webhooks/{}", self.webhook_id),
                ),
                Some(self.webhook_id.clone()),
            ),
            ScimDeleteGroup => (
                self.scim(
                    Method::DELETE,
                    &format!("/Groups/{}", self.scim_group_id),
                    None,
                ),
                Some(self.scim_group_id.clone()),
            ),
            ScimDeleteUser => (
                self.scim(
                    Method::DELETE,
                    &format!("/Users/{}", self.scim_user_id),
                    None,
                ),
                Some("carol.new@acme.test".to_owned()),
            ),
            RevokeScimToken => (
                self.tenant_admin(
                    Method::DELETE,
                    &format!("{tenant}/scim-tokens/{}", self.scim_token_id),
                ),
                Some(self.scim_token_id.clone()),
            ),
            JitUser => (
                self.app
                    .client
                    .get(self.app.url("/v1/models"))
                    .bearer_auth(hs_token(ISS, "newcomer", json!({}))),
                Some("newcomer".to_owned()),
            ),
            ConsoleSignIn => {
                let request = self
                    .app
                    .client
                    .post(self.app.url("/console/session"))
                    .json(&json!({"token": ADMIN_TOKEN}));
                let sent = send(request).await;
                let cookie = sent.session_cookie.clone().expect("a session cookie");
                let token = cookie.strip_prefix("tg_session=").unwrap().to_owned();
                self.secrets.push(token);
                self.secrets
                    .push(sent.body["csrf"].as_str().unwrap().to_owned());
                return Done {
                    sent,
                    tenant: None,
                    target: None,
                };
            }
            DeleteUser => (
                self.tenant_admin(Method::DELETE, &bob),
                Some("bob".to_owned()),
            ),
            DeleteIssuer => (
                self.platform(Method::DELETE, &format!("/issuers/{}", self.issuer_id)),
                Some(self.issuer_id.clone()),
            ),
            DeleteTenant => (
                self.platform(Method::DELETE, &tenant),
                Some(TENANT.to_owned()),
            ),
        };
        let sent = send(request).await;
        self.done(sent, target)
    }

    /// A change in the test's tenant.
    fn done(&self, sent: Sent, target: Option<String>) -> Done {
        Done {
            sent,
            tenant: Some(TENANT),
            target,
        }
    }
}
