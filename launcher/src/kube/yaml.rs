//! YAML out, as kubectl prints it: timestamps quoted. serde_yaml_ng writes YAML 1.2,
//! where `2026-01-02T03:04:05Z` is a plain string; a YAML 1.1 reader (PyYAML, Ruby,
//! many tools) would read it as a timestamp, and a schema validator then finds a
//! datetime where the Pod schema wants a string.

use serde::Serialize;

/// `value` as YAML, with every timestamp-looking plain scalar in double quotes.
pub fn to_yaml<T: Serialize>(value: &T) -> Result<String, serde_yaml_ng::Error> {
    let text = serde_yaml_ng::to_string(value)?;
    let mut out = String::with_capacity(text.len() + 256);
    // Indentation of the line that opened a block scalar (`key: |-`): lines deeper
    // than it are the scalar's text, left as they are.
    let mut block: Option<usize> = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(open) = block {
            if line.trim().is_empty() || indent > open {
                out.push_str(line);
                out.push('\n');
                continue;
            }
            block = None;
        }
        let at = value_start(line);
        let value = &line[at..];
        if value.starts_with(['|', '>']) {
            block = Some(indent);
        }
        if looks_like_timestamp(value) {
            out.push_str(&line[..at]);
            out.push('"');
            out.push_str(value);
            out.push('"');
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    Ok(out)
}

/// Where a line's scalar starts: after `- ` items and the first `: `.
fn value_start(line: &str) -> usize {
    let mut at = line.len() - line.trim_start().len();
    while line[at..].starts_with("- ") {
        at += 2;
    }
    match line[at..].find(": ") {
        Some(colon) => at + colon + 2,
        None => at,
    }
}

/// YAML 1.1's timestamp: `YYYY-MM-DD`, optionally a time and zone after it.
fn looks_like_timestamp(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && v.bytes()
            .all(|c| c.is_ascii_digit() || b":-+.TtZz ".contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_quoted_and_nothing_else_changes() {
        let v = serde_json::json!({
            "metadata": {"creationTimestamp": "2026-11-22T22:01:39Z", "name": "p"},
            "status": {
                "conditions": [{"lastTransitionTime": "2026-11-22T22:01:39Z", "type": "Ready"}],
                "startTime": "2026-11-22T22:01:39.5+01:00",
            },
            "list": ["2026-11-22", "x"],
            "text": "line one\ncreated: 2026-11-22T22:01:39Z\n",
            "odd": "2026-11-22 is a date",
        });
        let y = to_yaml(&v).unwrap();
        assert!(
            y.contains("creationTimestamp: \"2026-11-22T22:01:39Z\"\n"),
            "{y}"
        );
        assert!(
            y.contains("- lastTransitionTime: \"2026-11-22T22:01:39Z\"\n"),
            "{y}"
        );
        assert!(
            y.contains("startTime: \"2026-11-22T22:01:39.5+01:00\"\n"),
            "{y}"
        );
        assert!(y.contains("- \"2026-11-22\"\n"), "{y}");
        assert!(
            y.contains("  created: 2026-11-22T22:01:39Z\n"),
            "block text untouched: {y}"
        );
        let back: serde_json::Value = serde_yaml_ng::from_str(&y).unwrap();
        assert_eq!(back, v);
    }
}
