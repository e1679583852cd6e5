//! The scopes an issuer requires every token to hold (`required_scopes`). Identity providers
//! put granted scopes in `scope`, a space-separated string (RFC 9068 §2.2.3), or in `scp`: a
//! string the same way (Entra ID) or an array of strings (Okta). Either claim is read in
//! either shape; a scope matches only whole and in the same case.

use serde_json::{Map, Value};

/// The required scopes the claims do not hold, in the issuer's order.
pub fn missing<'a>(claims: &Map<String, Value>, required: &'a [String]) -> Vec<&'a str> {
    if required.is_empty() {
        return Vec::new();
    }
    let held = |scope: &str| {
        ["scope", "scp"]
            .iter()
            .any(|claim| match claims.get(*claim) {
                Some(Value::String(list)) => list.split(' ').any(|held| held == scope),
                Some(Value::Array(list)) => list.iter().any(|held| held.as_str() == Some(scope)),
                _ => false,
            })
    };
    required
        .iter()
        .map(String::as_str)
        .filter(|scope| !held(scope))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn scopes_are_read_from_scope_and_scp() {
        let required = ["llm.invoke".to_owned(), "openid".to_owned()];
        let spaced = claims(json!({"scope": "openid llm.invoke profile"}));
        assert!(missing(&spaced, &required).is_empty());
        let listed = claims(json!({"scp": ["llm.invoke", "openid"]}));
        assert!(missing(&listed, &required).is_empty());
        let entra = claims(json!({"scp": "openid llm.invoke"}));
        assert!(missing(&entra, &required).is_empty());
        let split = claims(json!({"scope": "openid", "scp": ["llm.invoke"]}));
        assert!(missing(&split, &required).is_empty());
    }

    #[test]
    fn a_scope_must_match_whole() {
        let required = ["llm.invoke".to_owned()];
        for held in [
            json!({}),
            json!({"scope": "llm.invoke.admin llm"}),
            json!({"scp": "LLM.INVOKE"}),
            json!({"scp": [["llm.invoke"]]}),
        ] {
            assert_eq!(
                missing(&claims(held.clone()), &required),
                ["llm.invoke"],
                "{held}"
            );
        }
        assert!(missing(&claims(json!({})), &[]).is_empty());
    }
}
