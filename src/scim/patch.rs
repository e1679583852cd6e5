//! SCIM PATCH (RFC 7644 §3.5.2) applied to a resource as JSON, in the shapes identity providers
//! really send: Okta's path-less `replace` of `{"active": false}`, Entra's capitalised `Replace`
//! with `"False"` as a string, `emails[type eq "work"].value` for an attribute that is not
//! there yet, and `remove` of `members` with the members to remove as the value.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::ScimFault;
use super::filter::{AttrPath, Filter, get, key_in};

#[derive(Debug, Deserialize)]
pub struct PatchRequest {
    #[serde(rename = "Operations", alias = "operations")]
    pub operations: Vec<Operation>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Operation {
    pub op: String,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub value: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Add,
    Replace,
    Remove,
}

/// Attributes the server owns: a patch that names them changes nothing.
const READ_ONLY: [&str; 4] = ["id", "meta", "schemas", "groups"];

/// Applies the operations in order; any failure leaves the caller's copy half-changed, so the
/// caller applies them to a copy and keeps it only on success.
pub fn apply(resource: &mut Value, operations: &[Operation]) -> Result<(), ScimFault> {
    if operations.is_empty() {
        return Err(ScimFault::invalid_syntax(
            "a PATCH needs at least one operation",
        ));
    }
    for operation in operations {
        let kind = match operation.op.to_ascii_lowercase().as_str() {
            "add" => Kind::Add,
            "replace" => Kind::Replace,
            "remove" => Kind::Remove,
            other => {
                return Err(ScimFault::invalid_syntax(format!(
                    "`{other}` is not a PATCH operation (add, replace, remove)"
                )));
            }
        };
        match operation
            .path
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            Some(path) => at_path(resource, kind, path, operation.value.clone())?,
            None => {
                if kind == Kind::Remove {
                    return Err(ScimFault::no_target("`remove` needs a `path`"));
                }
                let Some(Value::Object(values)) = &operation.value else {
                    return Err(ScimFault::invalid_value(
                        "an operation without `path` needs an object as its `value`",
                    ));
                };
                for (key, value) in values {
                    if key.contains(':') && value.is_object() {
                        // An extension's attributes, by the extension's URN.
                        for (attribute, value) in value.as_object().into_iter().flatten() {
                            at_path(
                                resource,
                                kind,
                                &format!("{key}:{attribute}"),
                                Some(value.clone()),
                            )?;
                        }
                    } else {
                        at_path(resource, kind, key, Some(value.clone()))?;
                    }
                }
            }
        }
    }
    normalise_booleans(resource);
    Ok(())
}

/// `attr`, `attr.sub`, `attr[filter]`, `attr[filter].sub`, each possibly behind a schema URN.
fn at_path(
    resource: &mut Value,
    kind: Kind,
    text: &str,
    value: Option<Value>,
) -> Result<(), ScimFault> {
    let (path, filter, sub) = match text.find('[') {
        Some(open) => {
            let close = text
                .rfind(']')
                .filter(|&close| close > open)
                .ok_or_else(|| ScimFault::invalid_path(format!("`{text}`: missing `]`")))?;
            let filter = Filter::parse(&text[open + 1..close])
                .map_err(|fault| ScimFault::invalid_path(fault.detail))?;
            let after = &text[close + 1..];
            let sub = match after.strip_prefix('.') {
                Some(sub) if !sub.is_empty() => Some(sub.to_owned()),
                None if after.is_empty() => None,
                _ => return Err(ScimFault::invalid_path(format!("`{text}` is not a path"))),
            };
            (AttrPath::parse(&text[..open])?, Some(filter), sub)
        }
        None => {
            let path = AttrPath::parse(text)?;
            let sub = path.sub_attribute.clone();
            (path, None, sub)
        }
    };
    if path.extension.is_none()
        && READ_ONLY
            .iter()
            .any(|ro| ro.eq_ignore_ascii_case(&path.attribute))
    {
        return Ok(());
    }
    if kind != Kind::Remove && value.is_none() {
        return Err(ScimFault::invalid_value(format!(
            "`{}` needs a `value`",
            path.attribute
        )));
    }
    let Some(container) = container_mut(resource, &path, kind != Kind::Remove) else {
        return Ok(());
    };
    let key = key_in(container, &path.attribute).unwrap_or_else(|| path.attribute.clone());
    match (filter, sub) {
        (None, None) => whole(container, kind, &key, value),
        (None, Some(sub)) => sub_attribute(container, kind, &key, &sub, value),
        (Some(filter), sub) => filtered(container, kind, &key, &filter, sub.as_deref(), value),
    }
    .map(|()| drop_empty(resource, &path))
}

/// The object an attribute lives in: the resource itself or its extension's object (made when
/// a value is being set).
fn container_mut<'a>(
    resource: &'a mut Value,
    path: &AttrPath,
    create: bool,
) -> Option<&'a mut Map<String, Value>> {
    let root = resource.as_object_mut()?;
    match &path.extension {
        None => Some(root),
        Some(urn) => {
            let key = key_in(root, urn).unwrap_or_else(|| urn.clone());
            if !root.contains_key(&key) {
                if !create {
                    return None;
                }
                root.insert(key.clone(), Value::Object(Map::new()));
            }
            root.get_mut(&key)?.as_object_mut()
        }
    }
}

fn whole(
    container: &mut Map<String, Value>,
    kind: Kind,
    key: &str,
    value: Option<Value>,
) -> Result<(), ScimFault> {
    match kind {
        Kind::Remove => {
            // Entra removes members by naming them in `value`.
            if let (Some(Value::Array(remove)), Some(Value::Array(items))) =
                (&value, container.get_mut(key))
            {
                items.retain(|item| !remove.iter().any(|gone| same_member(item, gone)));
            } else {
                container.remove(key);
            }
        }
        Kind::Add => match (container.get_mut(key), value) {
            (Some(Value::Array(items)), Some(Value::Array(new))) => {
                for item in new {
                    if !items.iter().any(|old| same_member(old, &item)) {
                        items.push(item);
                    }
                }
            }
            (Some(Value::Array(items)), Some(item)) => {
                if !items.iter().any(|old| same_member(old, &item)) {
                    items.push(item);
                }
            }
            (Some(Value::Object(old)), Some(Value::Object(new))) => old.extend(new),
            (_, Some(value)) => {
                container.insert(key.to_owned(), value);
            }
            (_, None) => {}
        },
        Kind::Replace => match (container.get_mut(key), value) {
            (Some(Value::Object(old)), Some(Value::Object(new))) => old.extend(new),
            (_, Some(value)) => {
                container.insert(key.to_owned(), value);
            }
            (_, None) => {}
        },
    }
    Ok(())
}

/// Two elements of a multi-valued attribute are the same when equal, or when both are objects
/// with the same `value` (a member, an e-mail address).
fn same_member(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    match (get(a, "value"), get(b, "value")) {
        (Some(a), Some(b)) => a == b && (a.is_string() || a.is_number()),
        _ => false,
    }
}

fn sub_attribute(
    container: &mut Map<String, Value>,
    kind: Kind,
    key: &str,
    sub: &str,
    value: Option<Value>,
) -> Result<(), ScimFault> {
    match container.get_mut(key) {
        Some(Value::Array(items)) => {
            for item in items.iter_mut().filter_map(Value::as_object_mut) {
                set_or_remove(item, kind, sub, value.clone());
            }
        }
        Some(Value::Object(object)) => set_or_remove(object, kind, sub, value),
        _ if kind == Kind::Remove => {}
        _ => {
            let mut object = Map::new();
            set_or_remove(&mut object, kind, sub, value);
            container.insert(key.to_owned(), Value::Object(object));
        }
    }
    Ok(())
}

fn set_or_remove(object: &mut Map<String, Value>, kind: Kind, key: &str, value: Option<Value>) {
    let key = key_in(object, key).unwrap_or_else(|| key.to_owned());
    match (kind, value) {
        (Kind::Remove, _) => {
            object.remove(&key);
        }
        (_, Some(value)) => {
            object.insert(key, value);
        }
        (_, None) => {}
    }
}

fn filtered(
    container: &mut Map<String, Value>,
    kind: Kind,
    key: &str,
    filter: &Filter,
    sub: Option<&str>,
    value: Option<Value>,
) -> Result<(), ScimFault> {
    let items = match container.get_mut(key) {
        Some(Value::Array(items)) => items,
        _ if kind == Kind::Remove => return Ok(()),
        _ => {
            container.insert(key.to_owned(), Value::Array(Vec::new()));
            match container.get_mut(key) {
                Some(Value::Array(items)) => items,
                _ => return Ok(()),
            }
        }
    };
    let matched: Vec<usize> = (0..items.len())
        .filter(|&i| filter.matches(&items[i]))
        .collect();
    if matched.is_empty() {
        return match (kind, sub) {
            (Kind::Remove, _) => Ok(()),
            // `emails[type eq "work"].value` when there is no work address yet: Entra expects
            // the element to be made from the filter's own equalities.
            (_, Some(sub)) => {
                let mut element = Map::new();
                seed(filter, &mut element);
                set_or_remove(&mut element, kind, sub, value);
                items.push(Value::Object(element));
                Ok(())
            }
            (Kind::Add, None) => {
                if let Some(value) = value {
                    items.push(value);
                }
                Ok(())
            }
            (Kind::Replace, None) => Err(ScimFault::no_target(format!(
                "no value of `{key}` matches the filter"
            ))),
        };
    }
    match (kind, sub) {
        (Kind::Remove, None) => {
            let mut index = 0;
            items.retain(|_| {
                let keep = !matched.contains(&index);
                index += 1;
                keep
            });
        }
        (_, Some(sub)) => {
            for &i in &matched {
                if let Some(object) = items[i].as_object_mut() {
                    set_or_remove(object, kind, sub, value.clone());
                }
            }
        }
        (_, None) => {
            for &i in &matched {
                match (&mut items[i], value.clone()) {
                    (Value::Object(old), Some(Value::Object(new))) => old.extend(new),
                    (slot, Some(new)) => *slot = new,
                    (_, None) => {}
                }
            }
        }
    }
    Ok(())
}

/// The `attr eq value` clauses of a filter, as the fields of a new element.
fn seed(filter: &Filter, element: &mut Map<String, Value>) {
    match filter {
        Filter::Compare(path, super::filter::Op::Eq, value) if path.sub_attribute.is_none() => {
            element.insert(path.attribute.clone(), value.clone());
        }
        Filter::And(a, b) => {
            seed(a, element);
            seed(b, element);
        }
        _ => {}
    }
}

/// A multi-valued attribute emptied by a removal is gone, as is an extension with nothing left.
fn drop_empty(resource: &mut Value, path: &AttrPath) {
    let Some(root) = resource.as_object_mut() else {
        return;
    };
    let empty = |value: &Value| match value {
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        Value::Null => true,
        _ => false,
    };
    if let Some(urn) = &path.extension {
        if let Some(key) = key_in(root, urn) {
            if let Some(Value::Object(extension)) = root.get_mut(&key) {
                extension.retain(|_, value| !empty(value));
            }
            if root.get(&key).is_some_and(empty) {
                root.remove(&key);
            }
        }
    } else {
        root.retain(|_, value| !empty(value));
    }
}

/// Entra sends booleans as the strings `"True"`/`"False"`; stored and answered, they are JSON
/// booleans.
pub fn normalise_booleans(resource: &mut Value) {
    let Some(root) = resource.as_object_mut() else {
        return;
    };
    let flip = |value: &mut Value| {
        if let Value::String(text) = value {
            if text.eq_ignore_ascii_case("true") {
                *value = Value::Bool(true);
            } else if text.eq_ignore_ascii_case("false") {
                *value = Value::Bool(false);
            }
        }
    };
    if let Some(key) = key_in(root, "active") {
        root.get_mut(&key).map(flip);
    }
    for value in root.values_mut() {
        if let Value::Array(items) = value {
            for item in items.iter_mut().filter_map(Value::as_object_mut) {
                if let Some(key) = key_in(item, "primary") {
                    item.get_mut(&key).map(flip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(mut resource: Value, operations: Value) -> Value {
        let operations: Vec<Operation> = serde_json::from_value(operations).unwrap();
        apply(&mut resource, &operations).unwrap();
        resource
    }

    #[test]
    fn okta_deactivates_without_a_path() {
        let out = patch(
            json!({"userName": "jane", "active": true}),
            json!([{"op": "replace", "value": {"active": false}}]),
        );
        assert_eq!(out["active"], json!(false));
    }

    #[test]
    fn entra_sends_capitalised_ops_and_string_booleans() {
        let out = patch(
            json!({"userName": "jane", "active": true}),
            json!([
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "jane@work"},
                {"op": "Replace", "path": "name.givenName", "value": "Jane"},
                {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "R&D"}
            ]),
        );
        assert_eq!(out["active"], json!(false));
        assert_eq!(
            out["emails"],
            json!([{"type": "work", "value": "jane@work"}])
        );
        assert_eq!(out["name"], json!({"givenName": "Jane"}));
        assert_eq!(
            out["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            json!({"department": "R&D"})
        );
    }

    #[test]
    fn members_are_added_once_and_removed_either_way() {
        let group = json!({"displayName": "eng", "members": [{"value": "a"}]});
        let out = patch(
            group,
            json!([
                {"op": "add", "path": "members", "value": [{"value": "a"}, {"value": "b"}, {"value": "c"}]},
                {"op": "remove", "path": "members[value eq \"b\"]"},
                {"op": "Remove", "path": "members", "value": [{"value": "c"}]}
            ]),
        );
        assert_eq!(out["members"], json!([{"value": "a"}]));
        let out = patch(out, json!([{"op": "remove", "path": "members"}]));
        assert!(out.get("members").is_none());
    }

    #[test]
    fn read_only_attributes_are_ignored_and_bad_operations_refused() {
        let out = patch(
            json!({"userName": "jane"}),
            json!([{"op": "replace", "value": {"id": "x", "displayName": "Jane"}}]),
        );
        assert_eq!(out, json!({"userName": "jane", "displayName": "Jane"}));
        let mut resource = json!({"userName": "jane"});
        for (bad, scim_type) in [
            (json!([{"op": "move", "path": "userName"}]), "invalidSyntax"),
            (json!([{"op": "remove"}]), "noTarget"),
            (
                json!([{"op": "replace", "path": "emails[type eq \"x\"]", "value": {}}]),
                "noTarget",
            ),
            (
                json!([{"op": "add", "path": "emails[type eq", "value": 1}]),
                "invalidPath",
            ),
        ] {
            let operations: Vec<Operation> = serde_json::from_value(bad).unwrap();
            assert_eq!(
                apply(&mut resource, &operations).unwrap_err().scim_type,
                scim_type
            );
        }
    }
}
