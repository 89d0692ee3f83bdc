//! Labels and label selectors, as Kubernetes validates and kubectl takes them
//! (`ps -l 'app=web,tier!=db,env in (prod,stage),!canary'`).
//!
//! A selector is requirements joined by commas, all of which must hold:
//! `k=v` / `k==v` (the label is v), `k!=v` (absent or not v), `k in (a,b)`,
//! `k notin (a,b)` (absent or none of them), `k` (present), `!k` (absent).

use std::collections::BTreeMap;

/// A label: its key and its value.
pub fn validate_label(key: &str, value: &str) -> Result<(), String> {
    validate_key("label", key)?;
    validate_value(key, value)
}

/// A label's or annotation's (`what`) key, `[prefix/]name`: name at most 63
/// characters of alphanumerics, '-', '_' and '.', beginning and ending alphanumeric;
/// prefix a DNS subdomain of at most 253.
pub fn validate_key(what: &str, key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if p.is_empty() || p.len() > 253 || !p.split('.').all(label) {
            return Err(format!(
                "invalid {what} key {key:?}: the prefix must be a DNS subdomain (lowercase alphanumerics, '-' and '.', at most 253 characters)"
            ));
        }
    }
    if name.is_empty() || !valid_name_part(name) {
        return Err(format!(
            "invalid {what} key {key:?}: the name must be at most 63 characters of alphanumerics, '-', '_' or '.', beginning and ending with an alphanumeric"
        ));
    }
    Ok(())
}

/// Empty, or at most 63 characters as a key's name part.
pub fn validate_value(key: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || valid_name_part(value) {
        Ok(())
    } else {
        Err(format!(
            "invalid value {value:?} for label {key:?}: at most 63 characters of alphanumerics, '-', '_' or '.', beginning and ending with an alphanumeric"
        ))
    }
}

fn valid_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() <= 63
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Selector(Vec<Requirement>);

impl Selector {
    pub fn parse(text: &str) -> Result<Selector, String> {
        let mut reqs = Vec::new();
        for part in split_top_level(text)? {
            let part = part.trim();
            if part.is_empty() {
                return Err(format!("invalid selector {text:?}: an empty requirement"));
            }
            reqs.push(requirement(part)?);
        }
        Ok(Selector(reqs))
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Requirement::NotIn(k, vs) => !labels.get(k).is_some_and(|l| vs.contains(l)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
        })
    }
}

/// Splits at the commas that are not inside a `(...)` value set.
fn split_top_level(text: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return Err(format!("invalid selector {text:?}: unbalanced parentheses"));
        }
    }
    if depth != 0 {
        return Err(format!("invalid selector {text:?}: unbalanced parentheses"));
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn requirement(part: &str) -> Result<Requirement, String> {
    let key = |k: &str| -> Result<String, String> {
        let k = k.trim();
        validate_key("label", k)?;
        Ok(k.to_string())
    };
    let value = |k: &str, v: &str| -> Result<String, String> {
        let v = v.trim();
        validate_value(k, v)?;
        Ok(v.to_string())
    };
    if let Some(k) = part.strip_prefix('!') {
        return Ok(Requirement::NotExists(key(k)?));
    }
    if let Some((k, v)) = part.split_once("!=") {
        let k = key(k)?;
        return Ok(Requirement::NotEquals(k.clone(), value(&k, v)?));
    }
    if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
        let k = key(k)?;
        return Ok(Requirement::Equals(k.clone(), value(&k, v)?));
    }
    if let Some(open) = part.find('(') {
        let (head, set) = part.split_at(open);
        let mut words = head.split_whitespace();
        let (Some(k), Some(op), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!(
                "invalid requirement {part:?}: expected KEY in (V,...) or KEY notin (V,...)"
            ));
        };
        let k = key(k)?;
        let Some(inner) = set
            .strip_prefix('(')
            .and_then(|s| s.trim_end().strip_suffix(')'))
        else {
            return Err(format!(
                "invalid requirement {part:?}: the value set must end with ')'"
            ));
        };
        let values = inner
            .split(',')
            .map(|v| value(&k, v))
            .collect::<Result<Vec<_>, _>>()?;
        return match op {
            "in" => Ok(Requirement::In(k, values)),
            "notin" => Ok(Requirement::NotIn(k, values)),
            _ => Err(format!(
                "invalid requirement {part:?}: {op:?} is not an operator (in, notin)"
            )),
        };
    }
    Ok(Requirement::Exists(key(part)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selects_as_kubectl_does() {
        let web = labels(&[("app", "web"), ("tier", "front"), ("env", "prod")]);
        let db = labels(&[("app", "db"), ("tier", "db")]);
        let bare = labels(&[]);
        let cases: &[(&str, [bool; 3])] = &[
            ("app=web", [true, false, false]),
            ("app==web", [true, false, false]),
            ("tier!=db", [true, false, true]),
            ("app=web,tier!=db", [true, false, false]),
            ("env in (prod, stage)", [true, false, false]),
            ("env notin (prod)", [false, true, true]),
            ("tier", [true, true, false]),
            ("!env", [false, true, true]),
            ("app in (web,db),!env", [false, true, false]),
            ("", [true, true, true]),
        ];
        for (text, want) in cases {
            let s = if text.is_empty() {
                Selector::default()
            } else {
                Selector::parse(text).unwrap()
            };
            let got = [s.matches(&web), s.matches(&db), s.matches(&bare)];
            assert_eq!(&got, want, "{text}");
        }
    }

    #[test]
    fn bad_selectors_and_labels_are_named() {
        for (text, says) in [
            ("app=web,", "an empty requirement"),
            ("app in (web", "unbalanced parentheses"),
            ("app within (web)", "\"within\" is not an operator"),
            ("-app=web", "invalid label key \"-app\""),
            ("app=we b", "invalid value \"we b\""),
            ("Example.com/app=x", "the prefix must be a DNS subdomain"),
        ] {
            let e = Selector::parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
        assert!(validate_key("label", "app.kubernetes.io/name").is_ok());
        assert!(validate_key("label", &"a".repeat(64)).is_err());
        assert!(validate_value("k", "").is_ok());
    }
}
