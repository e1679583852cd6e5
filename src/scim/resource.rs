//! SCIM resources as tollgate reads and writes them: what an incoming User or Group means for
//! the user store, and the resource answered back (the identity provider's document plus our
//! `id`, `schemas` and `meta`).

use serde_json::{Map, Value, json};

use super::ScimFault;
use super::filter::{get, key_in};
use super::patch::normalise_booleans;
use crate::ids;
use crate::store::{ScimGroup, ScimMember, ScimUser, SubjectAttribute};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Attributes the server owns or never keeps: `password` is a secret tollgate has no use for.
const NOT_STORED: [&str; 5] = ["id", "meta", "schemas", "groups", "password"];

/// What a User resource means for the user store.
#[derive(Debug)]
pub struct UserFields {
    /// The document to keep: what the identity provider sent, less what we own or never keep.
    pub resource: Value,
    pub user_name: String,
    pub external_id: Option<String>,
    pub active: bool,
    pub email: Option<String>,
    pub display_name: Option<String>,
}

impl UserFields {
    pub fn read(resource: Value) -> Result<Self, ScimFault> {
        let resource = stored(resource)?;
        let text = |key: &str| {
            get(&resource, key)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let user_name = text("userName")
            .filter(|name| !name.trim().is_empty())
            .ok_or_else(|| ScimFault::invalid_value("`userName` is required"))?;
        let external_id = text("externalId").filter(|id| !id.is_empty());
        let active = match get(&resource, "active") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(active)) => *active,
            Some(_) => return Err(ScimFault::invalid_value("`active` must be a boolean")),
        };
        let emails = get(&resource, "emails").and_then(Value::as_array);
        let email = emails
            .and_then(|emails| {
                emails
                    .iter()
                    .find(|email| get(email, "primary") == Some(&Value::Bool(true)))
                    .or_else(|| emails.first())
            })
            .and_then(|email| get(email, "value"))
            .and_then(Value::as_str)
            .filter(|email| email.contains('@') && email.len() <= 254)
            .map(str::to_owned);
        let display_name = text("displayName")
            .or_else(|| {
                get(&resource, "name")
                    .and_then(|name| get(name, "formatted"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .map(|name| name.chars().take(ids::MAX_TEXT).collect());
        Ok(Self {
            resource,
            user_name,
            external_id,
            active,
            email,
            display_name,
        })
    }

    /// A user created without `active` is active, and reads back so. (Removed later, the
    /// attribute stays removed; the user stays as they were.)
    pub fn active_by_default(&mut self) {
        if let Some(root) = self.resource.as_object_mut()
            && key_in(root, "active").is_none_or(|key| root[&key].is_null())
        {
            root.retain(|key, _| !key.eq_ignore_ascii_case("active"));
            root.insert("active".into(), Value::Bool(true));
        }
    }

    /// The subject the user's tokens carry, by the tenant's setting.
    pub fn subject(&self, attribute: SubjectAttribute) -> Result<String, ScimFault> {
        let subject = match attribute {
            SubjectAttribute::ExternalId => self.external_id.as_deref().unwrap_or(&self.user_name),
            SubjectAttribute::UserName => &self.user_name,
        };
        ids::subject(attribute.as_str(), subject)
            .map_err(|_| ScimFault::invalid_value(format!(
                "the subject `{}` ({}) is not a valid subject: at most {} characters, no control characters",
                subject.chars().take(64).collect::<String>(),
                attribute.as_str(),
                ids::MAX_SUBJECT,
            )))?;
        Ok(subject.to_owned())
    }
}

/// What a Group resource means: its name, its members by SCIM id, and the document to keep.
#[derive(Debug)]
pub struct GroupFields {
    pub resource: Value,
    pub name: String,
    pub members: Vec<String>,
}

impl GroupFields {
    pub fn read(mut resource: Value) -> Result<Self, ScimFault> {
        let members = match resource.as_object_mut().and_then(|root| {
            let key = key_in(root, "members")?;
            root.remove(&key)
        }) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                let mut ids = Vec::with_capacity(items.len());
                for item in &items {
                    let id = get(item, "value").and_then(Value::as_str).ok_or_else(|| {
                        ScimFault::invalid_value("each member needs a `value`: a User's id")
                    })?;
                    if !ids.iter().any(|known| known == id) {
                        ids.push(id.to_owned());
                    }
                }
                ids
            }
            Some(_) => return Err(ScimFault::invalid_value("`members` must be a list")),
        };
        let resource = stored(resource)?;
        let name = get(&resource, "displayName")
            .and_then(Value::as_str)
            .filter(|name| !name.trim().is_empty())
            .ok_or_else(|| ScimFault::invalid_value("`displayName` is required"))?
            .to_owned();
        ids::text("displayName", &name, ids::MAX_TEXT).map_err(|_| {
            ScimFault::invalid_value("`displayName` is too long or has control characters")
        })?;
        Ok(Self {
            resource,
            name,
            members,
        })
    }
}

/// The document less what we own or never keep, with Entra's string booleans made booleans.
fn stored(mut resource: Value) -> Result<Value, ScimFault> {
    let Some(root) = resource.as_object_mut() else {
        return Err(ScimFault::invalid_syntax(
            "a resource must be a JSON object",
        ));
    };
    root.retain(|key, _| !NOT_STORED.iter().any(|gone| gone.eq_ignore_ascii_case(key)));
    normalise_booleans(&mut resource);
    Ok(resource)
}

/// Where resources are found: `https://gateway/scim/v2/{tenant}`.
pub struct Base<'a>(pub &'a str);

impl Base<'_> {
    fn location(&self, kind: &str, id: &str) -> String {
        format!("{}/{kind}/{id}", self.0)
    }

    pub fn user(&self, user: &ScimUser, groups: &[(String, String)]) -> Value {
        let mut resource = parse(&user.resource);
        let extensions = schemas_of(&resource, USER_SCHEMA);
        let root = object(&mut resource);
        root.insert("schemas".into(), extensions);
        root.insert("id".into(), Value::String(user.id.clone()));
        if !groups.is_empty() {
            let groups = groups
                .iter()
                .map(|(id, name)| {
                    json!({"value": id, "display": name, "$ref": self.location("Groups", id), "type": "direct"})
                })
                .collect();
            root.insert("groups".into(), Value::Array(groups));
        }
        root.insert(
            "meta".into(),
            meta(
                "User",
                self.location("Users", &user.id),
                user.created_at,
                user.updated_at,
                user.version,
            ),
        );
        resource
    }

    pub fn group(&self, group: &ScimGroup, members: &[&ScimMember]) -> Value {
        let mut resource = group
            .resource
            .as_deref()
            .map(parse)
            .unwrap_or_else(|| json!({}));
        let schemas = schemas_of(&resource, GROUP_SCHEMA);
        let root = object(&mut resource);
        root.insert("schemas".into(), schemas);
        root.insert("id".into(), Value::String(group.id.clone()));
        root.insert("displayName".into(), Value::String(group.name.clone()));
        if !members.is_empty() {
            let members = members
                .iter()
                .map(|member| {
                    json!({
                        "value": member.user_id,
                        "$ref": self.location("Users", &member.user_id),
                        "type": "User",
                    })
                })
                .collect();
            root.insert("members".into(), Value::Array(members));
        }
        root.insert(
            "meta".into(),
            meta(
                "Group",
                self.location("Groups", &group.id),
                group.created_at,
                group.updated_at,
                group.version,
            ),
        );
        resource
    }
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| json!({}))
}

fn object(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = json!({});
    }
    match value {
        Value::Object(map) => map,
        _ => unreachable!("made an object just above"),
    }
}

/// The core schema and every extension the document has attributes of.
fn schemas_of(resource: &Value, core: &str) -> Value {
    let mut schemas = vec![Value::String(core.to_owned())];
    for key in resource
        .as_object()
        .into_iter()
        .flat_map(|root| root.keys())
    {
        if key.to_ascii_lowercase().starts_with("urn:") {
            schemas.push(Value::String(key.clone()));
        }
    }
    Value::Array(schemas)
}

fn meta(
    kind: &str,
    location: String,
    created: crate::clock::Timestamp,
    modified: crate::clock::Timestamp,
    version: i64,
) -> Value {
    json!({
        "resourceType": kind,
        "created": created.to_rfc3339(),
        "lastModified": modified.to_rfc3339(),
        "location": location,
        "version": format!("W/\"{version}\""),
    })
}

/// `attributes=` keeps only the named attributes (and `id`, `schemas`, which are always
/// returned); `excludedAttributes=` drops the named ones (RFC 7644 §3.9).
pub fn project(mut resource: Value, attributes: Option<&str>, excluded: Option<&str>) -> Value {
    let names = |list: &str| -> Vec<(Option<String>, String, Option<String>)> {
        list.split(',')
            .filter_map(|name| super::filter::AttrPath::parse(name).ok())
            .map(|path| (path.extension, path.attribute, path.sub_attribute))
            .collect()
    };
    let Some(root) = resource.as_object_mut() else {
        return resource;
    };
    if let Some(list) = attributes.filter(|list| !list.trim().is_empty()) {
        let wanted = names(list);
        let always = ["id", "schemas"];
        let mut kept = Map::new();
        for (key, value) in std::mem::take(root) {
            if always.contains(&key.as_str()) {
                kept.insert(key, value);
                continue;
            }
            let matching: Vec<_> = wanted
                .iter()
                .filter(|(extension, attribute, _)| match extension {
                    Some(urn) => urn.eq_ignore_ascii_case(&key),
                    None => attribute.eq_ignore_ascii_case(&key),
                })
                .collect();
            if matching.is_empty() {
                continue;
            }
            let whole = matching
                .iter()
                .any(|(extension, _, sub)| extension.is_some() || sub.is_none());
            if whole {
                kept.insert(key, value);
            } else {
                let subs: Vec<&str> = matching
                    .iter()
                    .filter_map(|(_, _, sub)| sub.as_deref())
                    .collect();
                let keep_subs = |item: Value| match item {
                    Value::Object(map) => Value::Object(
                        map.into_iter()
                            .filter(|(name, _)| {
                                subs.iter().any(|sub| sub.eq_ignore_ascii_case(name))
                            })
                            .collect(),
                    ),
                    other => other,
                };
                let value = match value {
                    Value::Array(items) => Value::Array(items.into_iter().map(keep_subs).collect()),
                    other => keep_subs(other),
                };
                kept.insert(key, value);
            }
        }
        *root = kept;
    } else if let Some(list) = excluded.filter(|list| !list.trim().is_empty()) {
        for (extension, attribute, sub) in names(list) {
            if attribute == "id" || attribute == "schemas" {
                continue;
            }
            let Some(key) = key_in(root, extension.as_deref().unwrap_or(&attribute)) else {
                continue;
            };
            match (&extension, sub) {
                (None, Some(sub)) => {
                    if let Some(Value::Object(object)) = root.get_mut(&key)
                        && let Some(sub) = key_in(object, &sub)
                    {
                        object.remove(&sub);
                    }
                }
                (Some(_), _) => {
                    if let Some(Value::Object(object)) = root.get_mut(&key)
                        && let Some(attribute) = key_in(object, &attribute)
                    {
                        object.remove(&attribute);
                    }
                }
                (None, None) => {
                    root.remove(&key);
                }
            }
        }
    }
    resource
}
