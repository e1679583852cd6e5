//! What the SCIM endpoint says about itself (RFC 7643 §5–7): the features it supports, the
//! resource types it serves and the schemas of their attributes. Identity providers and
//! compliance checkers shape every later request by these, so they describe exactly what the
//! server keeps: `password` is not offered (tollgate never stores one) and `groups` on a User
//! is read-only (membership is changed through the Group).

use serde_json::{Map, Value, json};

use super::resource::{ENTERPRISE_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};

pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const CONFIG_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
/// The most resources one list answer holds; `count` above it is cut to it.
pub const MAX_RESULTS: usize = 1000;

pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [CONFIG_SCHEMA],
        "documentationUri": "https://github.com/tollgate-gateway/tollgate#scim-provisioning",
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": false},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "A SCIM token made for this tenant with POST /admin/v1/tenants/{tenant}/scim-tokens",
            "primary": true,
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")},
    })
}

pub fn resource_types(base: &str) -> Vec<Value> {
    vec![
        json!({
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "A user of the tenant; its subject is the tenant's SCIM subject attribute",
            "schema": USER_SCHEMA,
            "schemaExtensions": [{"schema": ENTERPRISE_SCHEMA, "required": false}],
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User")},
        }),
        json!({
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "A group of users; groups can carry a model allow-list and the tenant-admin role",
            "schema": GROUP_SCHEMA,
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group")},
        }),
    ]
}

pub fn schemas(base: &str) -> Vec<Value> {
    let schema = |id: &str, name: &str, description: &str, attributes: Vec<Value>| {
        json!({
            "schemas": [SCHEMA_SCHEMA],
            "id": id,
            "name": name,
            "description": description,
            "attributes": attributes,
            "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{id}")},
        })
    };
    let multi_valued = |name: &str, types: &[&str]| {
        Attr::new(name, "complex").multi().subs(vec![
            Attr::new("value", "string").done(),
            Attr::new("display", "string").done(),
            Attr::new("type", "string").canonical(types).done(),
            Attr::new("primary", "boolean").done(),
        ])
    };
    vec![
        schema(
            USER_SCHEMA,
            "User",
            "User Account",
            vec![
                Attr::new("userName", "string").required().unique().done(),
                Attr::new("name", "complex").subs(vec![
                    Attr::new("formatted", "string").done(),
                    Attr::new("familyName", "string").done(),
                    Attr::new("givenName", "string").done(),
                    Attr::new("middleName", "string").done(),
                    Attr::new("honorificPrefix", "string").done(),
                    Attr::new("honorificSuffix", "string").done(),
                ]),
                Attr::new("displayName", "string").done(),
                Attr::new("nickName", "string").done(),
                Attr::new("title", "string").done(),
                Attr::new("userType", "string").done(),
                Attr::new("preferredLanguage", "string").done(),
                Attr::new("locale", "string").done(),
                Attr::new("timezone", "string").done(),
                Attr::new("active", "boolean").done(),
                multi_valued("emails", &["work", "home", "other"]),
                multi_valued(
                    "phoneNumbers",
                    &["work", "home", "mobile", "fax", "pager", "other"],
                ),
                Attr::new("groups", "complex")
                    .multi()
                    .read_only()
                    .subs(vec![
                        Attr::new("value", "string").read_only().done(),
                        Attr::new("$ref", "reference")
                            .refs(&["Group"])
                            .read_only()
                            .done(),
                        Attr::new("display", "string").read_only().done(),
                        Attr::new("type", "string")
                            .canonical(&["direct", "indirect"])
                            .read_only()
                            .done(),
                    ]),
            ],
        ),
        schema(
            GROUP_SCHEMA,
            "Group",
            "Group",
            vec![
                Attr::new("displayName", "string").required().done(),
                Attr::new("members", "complex").multi().subs(vec![
                    Attr::new("value", "string").immutable().done(),
                    Attr::new("$ref", "reference")
                        .refs(&["User"])
                        .immutable()
                        .done(),
                    Attr::new("display", "string").read_only().done(),
                    Attr::new("type", "string")
                        .canonical(&["User"])
                        .immutable()
                        .done(),
                ]),
            ],
        ),
        schema(
            ENTERPRISE_SCHEMA,
            "EnterpriseUser",
            "Enterprise User",
            vec![
                Attr::new("employeeNumber", "string").done(),
                Attr::new("costCenter", "string").done(),
                Attr::new("organization", "string").done(),
                Attr::new("division", "string").done(),
                Attr::new("department", "string").done(),
            ],
        ),
    ]
}

/// One attribute definition, with RFC 7643's defaults unless told otherwise.
struct Attr(Map<String, Value>);

impl Attr {
    fn new(name: &str, kind: &str) -> Self {
        let mut map = Map::new();
        map.insert("name".into(), json!(name));
        map.insert("type".into(), json!(kind));
        map.insert("multiValued".into(), json!(false));
        map.insert("description".into(), json!(""));
        map.insert("required".into(), json!(false));
        map.insert("caseExact".into(), json!(false));
        map.insert("mutability".into(), json!("readWrite"));
        map.insert("returned".into(), json!("default"));
        map.insert("uniqueness".into(), json!("none"));
        Self(map)
    }

    fn set(mut self, key: &str, value: Value) -> Self {
        self.0.insert(key.into(), value);
        self
    }

    fn multi(self) -> Self {
        self.set("multiValued", json!(true))
    }

    fn required(self) -> Self {
        self.set("required", json!(true))
    }

    fn unique(self) -> Self {
        self.set("uniqueness", json!("server"))
    }

    fn read_only(self) -> Self {
        self.set("mutability", json!("readOnly"))
    }

    fn immutable(self) -> Self {
        self.set("mutability", json!("immutable"))
    }

    fn canonical(self, values: &[&str]) -> Self {
        self.set("canonicalValues", json!(values))
    }

    fn refs(self, types: &[&str]) -> Self {
        self.set("referenceTypes", json!(types))
    }

    fn subs(self, attributes: Vec<Value>) -> Value {
        self.set("subAttributes", Value::Array(attributes)).done()
    }

    fn done(self) -> Value {
        Value::Object(self.0)
    }
}

/// A list answer (RFC 7644 §3.4.2).
pub fn list(resources: Vec<Value>, total: usize, start_index: usize) -> Value {
    json!({
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}
