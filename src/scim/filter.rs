//! SCIM filters (RFC 7644 §3.4.2.2) and attribute paths (§3.5.2), evaluated on a resource as
//! JSON. Identity providers send little more than `userName eq "…"`, but a filter is parsed in
//! full — `and`, `or`, `not`, parentheses, `pr`, every comparison, value paths — so any client
//! gets an answer or a clear `invalidFilter`, never a silent mismatch.

use serde_json::Value;

use super::ScimFault;

/// `urn:…:User:name.givenName` → attribute `name`, sub-attribute `givenName`, and the extension
/// schema when the URN is not a core one.
#[derive(Debug, Clone, PartialEq)]
pub struct AttrPath {
    /// An extension schema URN whose object holds the attribute; `None` for core attributes.
    pub extension: Option<String>,
    pub attribute: String,
    pub sub_attribute: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Present(AttrPath),
    Compare(AttrPath, Op, Value),
    /// `emails[type eq "work"]`: some element of the multi-valued attribute matches.
    ValuePath(AttrPath, Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

/// The core schemas: a path prefixed with one of them names a core attribute.
const CORE_SCHEMAS: [&str; 2] = [
    "urn:ietf:params:scim:schemas:core:2.0:User",
    "urn:ietf:params:scim:schemas:core:2.0:Group",
];

/// Attributes compared case-sensitively (`caseExact` in the schemas we publish).
const CASE_EXACT: [&str; 3] = ["id", "externalId", "value"];

impl AttrPath {
    /// `attr`, `attr.sub`, or either behind a schema URN.
    pub fn parse(text: &str) -> Result<Self, ScimFault> {
        let text = text.trim();
        let (extension, rest) = split_urn(text);
        let (attribute, sub_attribute) = match rest.split_once('.') {
            Some((attribute, sub)) => (attribute, Some(sub)),
            None => (rest, None),
        };
        if extension.is_none() && EXTENSIONS.contains(&rest) {
            return Ok(Self {
                extension: None,
                attribute: rest.to_owned(),
                sub_attribute: None,
            });
        }
        let valid = |name: &str| {
            !name.is_empty()
                && name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '$')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "$_-".contains(c))
        };
        if !valid(attribute) || sub_attribute.is_some_and(|sub| !valid(sub)) {
            return Err(ScimFault::invalid_path(format!(
                "`{text}` is not an attribute path"
            )));
        }
        Ok(Self {
            extension,
            attribute: attribute.to_owned(),
            sub_attribute: sub_attribute.map(str::to_owned),
        })
    }

    /// The object the attribute lives in: the resource, or its extension's object.
    pub fn container<'a>(&self, resource: &'a Value) -> Option<&'a Value> {
        match &self.extension {
            None => Some(resource),
            Some(urn) => get(resource, urn),
        }
    }

    /// Every value the path reaches, flattening multi-valued attributes.
    fn values<'a>(&self, resource: &'a Value) -> Vec<&'a Value> {
        let Some(value) = self
            .container(resource)
            .and_then(|c| get(c, &self.attribute))
        else {
            return Vec::new();
        };
        let top: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        match &self.sub_attribute {
            None => top,
            Some(sub) => top
                .into_iter()
                .filter_map(|item| get(item, sub))
                .flat_map(|value| match value {
                    Value::Array(items) => items.iter().collect(),
                    other => vec![other],
                })
                .collect(),
        }
    }

    fn case_exact(&self) -> bool {
        let name = self.sub_attribute.as_deref().unwrap_or(&self.attribute);
        self.extension.is_none()
            && CASE_EXACT
                .iter()
                .any(|exact| exact.eq_ignore_ascii_case(name))
    }
}

/// Extension schemas a path may name whole (`urn:…:enterprise:2.0:User` is the extension's
/// object, not an attribute `User` of a schema `urn:…:2.0`).
const EXTENSIONS: [&str; 1] = [super::resource::ENTERPRISE_SCHEMA];

/// Splits `urn:…:Schema:attr.sub` into the schema (`None` for a core one) and `attr.sub`.
fn split_urn(text: &str) -> (Option<String>, &str) {
    if !text.to_ascii_lowercase().starts_with("urn:") {
        return (None, text);
    }
    if let Some(whole) = EXTENSIONS.iter().find(|urn| urn.eq_ignore_ascii_case(text)) {
        // The extension as one attribute of the resource, keyed by its URN.
        return (None, whole);
    }
    match text.rfind(':') {
        Some(at) => {
            let urn = &text[..at];
            let rest = &text[at + 1..];
            if CORE_SCHEMAS
                .iter()
                .any(|core| core.eq_ignore_ascii_case(urn))
            {
                (None, rest)
            } else {
                (Some(urn.to_owned()), rest)
            }
        }
        None => (None, text),
    }
}

/// A key of a JSON object, matched without regard to case (SCIM attribute names are
/// case-insensitive).
pub fn get<'a>(object: &'a Value, key: &str) -> Option<&'a Value> {
    let map = object.as_object()?;
    map.get(key).or_else(|| {
        map.iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, value)| value)
    })
}

/// The key as the object spells it, if present in any case.
pub fn key_in(object: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    if object.contains_key(key) {
        return Some(key.to_owned());
    }
    object
        .keys()
        .find(|name| name.eq_ignore_ascii_case(key))
        .cloned()
}

impl Filter {
    pub fn parse(text: &str) -> Result<Self, ScimFault> {
        let mut parser = Parser { text, at: 0 };
        let filter = parser.or()?;
        parser.skip_spaces();
        if parser.at != text.len() {
            return Err(parser.fault("unexpected text"));
        }
        Ok(filter)
    }

    pub fn matches(&self, resource: &Value) -> bool {
        match self {
            Filter::Present(path) => path.values(resource).iter().any(|value| match value {
                Value::Null => false,
                Value::String(text) => !text.is_empty(),
                Value::Array(items) => !items.is_empty(),
                Value::Object(map) => !map.is_empty(),
                _ => true,
            }),
            Filter::Compare(path, op, expected) => {
                let exact = path.case_exact();
                let values = path.values(resource);
                if values.is_empty() {
                    // Only `ne` holds for an absent attribute, except `ne null`.
                    return *op == Op::Ne && !expected.is_null();
                }
                values
                    .iter()
                    .any(|value| compare(value, *op, expected, exact))
            }
            Filter::ValuePath(path, inner) => {
                let Some(Value::Array(items)) = path
                    .container(resource)
                    .and_then(|c| get(c, &path.attribute))
                else {
                    return path
                        .container(resource)
                        .and_then(|c| get(c, &path.attribute))
                        .is_some_and(|single| inner.matches(single));
                };
                items.iter().any(|item| inner.matches(item))
            }
            Filter::And(a, b) => a.matches(resource) && b.matches(resource),
            Filter::Or(a, b) => a.matches(resource) || b.matches(resource),
            Filter::Not(inner) => !inner.matches(resource),
        }
    }
}

fn compare(value: &Value, op: Op, expected: &Value, case_exact: bool) -> bool {
    use std::cmp::Ordering;
    let ordering = match (value, expected) {
        (Value::String(a), Value::String(b)) => {
            let (a, b) = if case_exact {
                (a.clone(), b.clone())
            } else {
                (a.to_lowercase(), b.to_lowercase())
            };
            match op {
                Op::Co => return a.contains(&b),
                Op::Sw => return a.starts_with(&b),
                Op::Ew => return a.ends_with(&b),
                _ => a.cmp(&b),
            }
        }
        (Value::Number(a), Value::Number(b)) => {
            match a
                .as_f64()
                .zip(b.as_f64())
                .and_then(|(a, b)| a.partial_cmp(&b))
            {
                Some(ordering) => ordering,
                None => return false,
            }
        }
        (Value::Bool(a), Value::Bool(b)) => {
            return match op {
                Op::Eq => a == b,
                Op::Ne => a != b,
                _ => false,
            };
        }
        (_, Value::Null) => return op == Op::Ne,
        _ => return op == Op::Ne,
    };
    match op {
        Op::Eq => ordering == Ordering::Equal,
        Op::Ne => ordering != Ordering::Equal,
        Op::Gt => ordering == Ordering::Greater,
        Op::Ge => ordering != Ordering::Less,
        Op::Lt => ordering == Ordering::Less,
        Op::Le => ordering != Ordering::Greater,
        Op::Co | Op::Sw | Op::Ew => false,
    }
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl Parser<'_> {
    fn fault(&self, what: &str) -> ScimFault {
        ScimFault::invalid_filter(format!(
            "{what} at character {} of the filter `{}`",
            self.at + 1,
            self.text
        ))
    }

    fn rest(&self) -> &str {
        &self.text[self.at..]
    }

    fn skip_spaces(&mut self) {
        let trimmed = self.rest().trim_start();
        self.at = self.text.len() - trimmed.len();
    }

    /// Consumes `keyword` (any case) if it comes next as a whole word.
    fn keyword(&mut self, keyword: &str) -> bool {
        self.skip_spaces();
        let rest = self.rest();
        // `get`: the text may hold a multi-byte character where the keyword would end.
        let matches = rest
            .get(..keyword.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(keyword))
            && !rest[keyword.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric());
        if matches {
            self.at += keyword.len();
        }
        matches
    }

    fn symbol(&mut self, symbol: char) -> bool {
        self.skip_spaces();
        if self.rest().starts_with(symbol) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Filter, ScimFault> {
        let mut filter = self.and()?;
        while self.keyword("or") {
            filter = Filter::Or(Box::new(filter), Box::new(self.and()?));
        }
        Ok(filter)
    }

    fn and(&mut self) -> Result<Filter, ScimFault> {
        let mut filter = self.unary()?;
        while self.keyword("and") {
            filter = Filter::And(Box::new(filter), Box::new(self.unary()?));
        }
        Ok(filter)
    }

    fn unary(&mut self) -> Result<Filter, ScimFault> {
        if self.keyword("not") {
            if !self.symbol('(') {
                return Err(self.fault("`not` must be followed by `(`"));
            }
            let inner = self.or()?;
            if !self.symbol(')') {
                return Err(self.fault("missing `)`"));
            }
            return Ok(Filter::Not(Box::new(inner)));
        }
        if self.symbol('(') {
            let inner = self.or()?;
            if !self.symbol(')') {
                return Err(self.fault("missing `)`"));
            }
            return Ok(inner);
        }
        let path = self.attr_path()?;
        if self.symbol('[') {
            let inner = self.or()?;
            if !self.symbol(']') {
                return Err(self.fault("missing `]`"));
            }
            return Ok(Filter::ValuePath(path, Box::new(inner)));
        }
        if self.keyword("pr") {
            return Ok(Filter::Present(path));
        }
        let op = self.op()?;
        let value = self.value()?;
        Ok(Filter::Compare(path, op, value))
    }

    fn attr_path(&mut self) -> Result<AttrPath, ScimFault> {
        self.skip_spaces();
        let rest = self.rest();
        let end = rest
            .find(|c: char| c.is_whitespace() || "[]()".contains(c))
            .unwrap_or(rest.len());
        if end == 0 {
            return Err(self.fault("an attribute name was expected"));
        }
        let path =
            AttrPath::parse(&rest[..end]).map_err(|_| self.fault("not an attribute path"))?;
        self.at += end;
        Ok(path)
    }

    fn op(&mut self) -> Result<Op, ScimFault> {
        const OPS: [(&str, Op); 9] = [
            ("eq", Op::Eq),
            ("ne", Op::Ne),
            ("co", Op::Co),
            ("sw", Op::Sw),
            ("ew", Op::Ew),
            ("gt", Op::Gt),
            ("ge", Op::Ge),
            ("lt", Op::Lt),
            ("le", Op::Le),
        ];
        for (word, op) in OPS {
            if self.keyword(word) {
                return Ok(op);
            }
        }
        Err(self
            .fault("a comparison operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) was expected"))
    }

    fn value(&mut self) -> Result<Value, ScimFault> {
        self.skip_spaces();
        for (word, value) in [
            ("true", Value::Bool(true)),
            ("false", Value::Bool(false)),
            ("null", Value::Null),
        ] {
            if self.keyword(word) {
                return Ok(value);
            }
        }
        let rest = self.rest();
        if rest.starts_with('"') {
            // A JSON string: find its closing quote, honouring escapes.
            let mut escaped = false;
            for (index, c) in rest.char_indices().skip(1) {
                match c {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => {
                        let value = serde_json::from_str(&rest[..=index])
                            .map_err(|_| self.fault("a malformed string"))?;
                        self.at += index + 1;
                        return Ok(value);
                    }
                    _ => escaped = false,
                }
            }
            return Err(self.fault("an unterminated string"));
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || "[]()".contains(c))
            .unwrap_or(rest.len());
        match serde_json::from_str::<serde_json::Number>(&rest[..end]) {
            Ok(number) if end > 0 => {
                self.at += end;
                Ok(Value::Number(number))
            }
            _ => Err(self.fault("a value (a string, number, true, false or null) was expected")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "userName": "Jane@Example.com",
            "externalId": "00u1",
            "active": true,
            "name": {"givenName": "Jane"},
            "emails": [{"value": "jane@work.example", "type": "work"}, {"value": "j@home", "type": "home"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "42"}
        })
    }

    fn check(filter: &str) -> bool {
        Filter::parse(filter).unwrap().matches(&user())
    }

    #[test]
    fn what_identity_providers_send() {
        assert!(
            check(r#"userName eq "jane@example.com""#),
            "userName ignores case"
        );
        assert!(check(r#"externalId eq "00u1""#));
        assert!(
            !check(r#"externalId eq "00U1""#),
            "externalId is case-exact"
        );
        assert!(check(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "Jane@Example.com""#
        ));
    }

    #[test]
    fn the_whole_grammar() {
        assert!(check(r#"name.givenName sw "ja" and active eq true"#));
        assert!(check(r#"emails[type eq "work" and value co "@work"]"#));
        assert!(!check(r#"emails[type eq "other"]"#));
        assert!(check(r#"emails.value ew "@home""#));
        assert!(check(
            r#"not (userName eq "bob") and (title pr or externalId pr)"#
        ));
        assert!(check(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "42""#
        ));
        assert!(
            !check("title ne null"),
            "an absent attribute is not `ne null`"
        );
        assert!(check(r#"userName gt "a""#));
        assert!(check("active ne false"));
    }

    #[test]
    fn bad_filters_are_invalid_filter_errors() {
        for bad in [
            "userName",
            r#"userName eq"#,
            r#"userName xx "a""#,
            r#"(userName eq "a""#,
            r#"userName eq "a" junk"#,
            r#"userName eq "a"#,
            // A multi-byte character where a keyword would end (it panicked).
            "\u{fc951}",
            "é",
            r#"userName eq "a" añd"#,
        ] {
            let fault = Filter::parse(bad).unwrap_err();
            assert_eq!(fault.scim_type, "invalidFilter", "{bad}");
        }
    }
}
