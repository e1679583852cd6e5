//! What a caller's groups give them: a narrower model list and the tenant-admin role.
//!
//! A caller's groups are the ones the identity provider made them a member of over SCIM, and
//! the ones their token's groups claim (the issuer's `groups_claim`) names, matched exactly
//! against the names of the tenant's groups; a claimed name the tenant has no group for gives
//! nothing. An API key brings no claim: its holder has their SCIM groups only.
//!
//! The hot path reads a tenant's groups and memberships from one snapshot per tenant held by
//! the directory, dropped when a write announces [`crate::changes::Change::Groups`].

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::store::{Group, GroupRole};

/// The most names read from one token's groups claim. Identity providers cap theirs lower
/// (Entra ID sends at most 200 and an overage marker after that).
const MAX_CLAIMED: usize = 256;

/// What one group gives its members.
#[derive(Debug)]
struct Grant {
    name: String,
    models: Option<Arc<[String]>>,
    admin: bool,
}

/// A tenant's groups that give anything, by name, and who is in them over SCIM.
#[derive(Debug, Default)]
pub struct TenantGroups {
    by_name: HashMap<String, Arc<Grant>>,
    /// Subject → the groups SCIM made them a member of.
    members: HashMap<String, Vec<Arc<Grant>>>,
}

/// What a caller's groups give them.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// The union of the model lists of the caller's groups that carry one; `None` when none
    /// does, and then the tenant's allow-list alone decides.
    pub models: Option<Arc<[String]>>,
    /// One of the groups gives the tenant-admin role.
    pub admin: bool,
}

impl TenantGroups {
    /// The snapshot of `groups` and their `members` (`(group id, subject)`). Groups that give
    /// nothing are left out: being in one changes nothing.
    pub fn new(groups: Vec<Group>, members: Vec<(String, String)>) -> Self {
        let mut by_id = HashMap::new();
        let mut by_name = HashMap::new();
        for group in groups {
            if group.policy.is_empty() {
                continue;
            }
            let grant = Arc::new(Grant {
                models: group.policy.models.map(Arc::from),
                admin: group.policy.role == Some(GroupRole::Admin),
                name: group.name.clone(),
            });
            by_id.insert(group.id, grant.clone());
            by_name.insert(group.name, grant);
        }
        let mut of_subject: HashMap<String, Vec<Arc<Grant>>> = HashMap::new();
        for (group_id, subject) in members {
            if let Some(grant) = by_id.get(&group_id) {
                of_subject.entry(subject).or_default().push(grant.clone());
            }
        }
        Self {
            by_name,
            members: of_subject,
        }
    }

    /// The groups of `subject` whose token claims `claimed`.
    fn of<'a>(
        &'a self,
        subject: &str,
        claimed: &'a [String],
    ) -> impl Iterator<Item = &'a Arc<Grant>> {
        let scim = self.members.get(subject).into_iter().flatten();
        let named = claimed.iter().filter_map(|name| self.by_name.get(name));
        scim.chain(named)
    }

    /// What `subject`'s groups give them. Costs nothing for a tenant without such groups, and
    /// allocates only when two groups' model lists must be merged.
    pub fn access(&self, subject: &str, claimed: &[String]) -> Access {
        let mut access = Access::default();
        if self.by_name.is_empty() {
            return access;
        }
        let mut merged: Option<Vec<String>> = None;
        for grant in self.of(subject, claimed) {
            access.admin |= grant.admin;
            let Some(list) = &grant.models else {
                continue;
            };
            match (&access.models, &mut merged) {
                (None, _) => access.models = Some(list.clone()),
                (Some(first), None) if Arc::ptr_eq(first, list) => {}
                (Some(first), None) => {
                    let mut all = first.to_vec();
                    add(&mut all, list);
                    merged = Some(all);
                }
                (_, Some(all)) => add(all, list),
            }
        }
        if let Some(all) = merged {
            access.models = Some(Arc::from(all));
        }
        access
    }

    /// `subject`'s groups that give anything, by name, for `explain`.
    pub fn names(&self, subject: &str, claimed: &[String]) -> Vec<String> {
        let mut names: Vec<String> = self
            .of(subject, claimed)
            .map(|grant| grant.name.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// Adds the names of `list` that `all` does not have yet.
fn add(all: &mut Vec<String>, list: &[String]) {
    for name in list {
        if !all.contains(name) {
            all.push(name.clone());
        }
    }
}

/// The group names a token's groups claim holds: an array of strings, or one string.
pub fn claimed(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(name)) => vec![name.clone()],
        Some(Value::Array(names)) => names
            .iter()
            .filter_map(Value::as_str)
            .take(MAX_CLAIMED)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::clock::Timestamp;
    use crate::store::GroupPolicy;

    fn group(id: &str, models: Option<&[&str]>, role: Option<GroupRole>) -> Group {
        Group {
            id: id.into(),
            name: id.into(),
            policy: GroupPolicy {
                models: models.map(|list| list.iter().map(|m| m.to_string()).collect()),
                role,
            },
            scim: false,
            created_at: Timestamp::now(),
            updated_at: Timestamp::now(),
        }
    }

    fn models(access: &Access) -> Option<Vec<&str>> {
        let mut list: Vec<&str> = access
            .models
            .as_deref()?
            .iter()
            .map(String::as_str)
            .collect();
        list.sort();
        Some(list)
    }

    #[test]
    fn lists_of_every_group_that_has_one_are_united() {
        let groups = TenantGroups::new(
            vec![
                group("eng", Some(&["a"]), None),
                group("ml", Some(&["b", "a"]), None),
                group("ops", None, Some(GroupRole::Admin)),
                group("empty", None, None),
            ],
            vec![("eng".into(), "jane".into()), ("ops".into(), "jane".into())],
        );
        let jane = groups.access("jane", &[]);
        assert_eq!(models(&jane), Some(vec!["a"]));
        assert!(jane.admin);
        let both = groups.access("jane", &["ml".into(), "unknown".into()]);
        assert_eq!(models(&both), Some(vec!["a", "b"]));
        let nobody = groups.access("bob", &["empty".into(), "ops".into()]);
        assert_eq!(models(&nobody), None, "groups without a list do not narrow");
        assert!(nobody.admin, "a claimed group gives its role");
        assert_eq!(groups.names("jane", &["ml".into()]), ["eng", "ml", "ops"]);
    }

    #[test]
    fn a_claim_is_a_list_of_names_or_one_name() {
        assert_eq!(claimed(Some(&json!(["a", 1, "b"]))), ["a", "b"]);
        assert_eq!(claimed(Some(&json!("a"))), ["a"]);
        assert!(claimed(Some(&json!({"a": 1}))).is_empty());
        assert!(claimed(None).is_empty());
    }
}
