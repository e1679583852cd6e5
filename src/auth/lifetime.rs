//! A token's lifetime claims: `exp` (required), `nbf` and `iat`, with the issuer's leeway.

use serde_json::{Map, Value};

use super::reason::Reason;

/// Checks `exp` (required), `nbf` and `iat` against `now` with `leeway`; returns `exp` and `iat`.
pub fn lifetime(
    claims: &Map<String, Value>,
    now: i64,
    leeway: i64,
) -> Result<(i64, Option<i64>), (Reason, String)> {
    let time = |name: &str| -> Result<Option<i64>, (Reason, String)> {
        match claims.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.is_finite())
                        .map(|f| f.floor() as i64)
                })
                .map(Some)
                .ok_or_else(|| {
                    (
                        Reason::MalformedToken,
                        format!("`{name}` is not a usable time"),
                    )
                }),
            Some(_) => Err((Reason::MalformedToken, format!("`{name}` is not a number"))),
        }
    };
    let Some(exp) = time("exp")? else {
        return Err((
            Reason::MalformedToken,
            "the token has no `exp`; tollgate requires one".into(),
        ));
    };
    if now > exp.saturating_add(leeway) {
        return Err((
            Reason::Expired,
            format!(
                "expired {} s ago (exp {exp}, now {now}, leeway {leeway} s)",
                now - exp
            ),
        ));
    }
    if let Some(nbf) = time("nbf")?
        && nbf > now.saturating_add(leeway)
    {
        return Err((
            Reason::NotYetValid,
            format!(
                "not valid for another {} s (nbf {nbf}, now {now}, leeway {leeway} s); check the clocks",
                nbf - now
            ),
        ));
    }
    let iat = time("iat")?;
    if let Some(iat) = iat
        && iat > now.saturating_add(leeway)
    {
        return Err((
            Reason::NotYetValid,
            format!(
                "issued {} s in the future (iat {iat}, now {now}, leeway {leeway} s); check the clocks",
                iat - now
            ),
        ));
    }
    Ok((exp, iat))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(json: Value) -> Map<String, Value> {
        json.as_object().unwrap().clone()
    }

    #[test]
    fn lifetime_needs_exp_and_honours_leeway() {
        let now = 1_000_000;
        let r = |c: Value| lifetime(&claims(c), now, 30).map_err(|e| e.0);
        assert_eq!(r(serde_json::json!({})), Err(Reason::MalformedToken));
        assert_eq!(
            r(serde_json::json!({"exp": "soon"})),
            Err(Reason::MalformedToken)
        );
        assert_eq!(
            r(serde_json::json!({"exp": now - 31})),
            Err(Reason::Expired)
        );
        assert!(r(serde_json::json!({"exp": now - 29})).is_ok());
        assert_eq!(
            r(serde_json::json!({"exp": now + 60, "nbf": now + 31})),
            Err(Reason::NotYetValid)
        );
        assert!(r(serde_json::json!({"exp": now + 60, "nbf": now + 29})).is_ok());
        assert_eq!(
            r(serde_json::json!({"exp": now + 60, "iat": now + 31})),
            Err(Reason::NotYetValid)
        );
        assert_eq!(
            r(serde_json::json!({"exp": now as f64 + 60.5, "iat": now})),
            Ok((now + 60, Some(now)))
        );
    }
}
