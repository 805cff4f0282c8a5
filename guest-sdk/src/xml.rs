//! Just enough XML for storage services' responses (S3, EC2, Azure): the text of elements by
//! name, and escaping.

/// Undoes XML's five entity escapes and numeric character references.
pub fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let entity = &tail[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => out.push(c),
            None => out.push_str(&tail[..=end]),
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Escapes text for an XML element.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The raw contents of each `<name>…</name>` element in `xml`, in order (not nested in itself).
pub fn elements<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let body = &rest[start + open.len()..];
        let Some(end) = body.find(&close) else { break };
        out.push(&body[..end]);
        rest = &body[end + close.len()..];
    }
    out
}

/// The unescaped text of the first `<name>` element.
pub fn text(xml: &str, name: &str) -> Option<String> {
    elements(xml, name).first().map(|t| unescape(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_result() {
        let xml = "<ListBucketResult><Prefix>a/</Prefix><Contents><Key>a/x&amp;y</Key></Contents><CommonPrefixes><Prefix>a/b/</Prefix></CommonPrefixes><IsTruncated>false</IsTruncated></ListBucketResult>";
        let prefixes: Vec<String> = elements(xml, "CommonPrefixes").iter().filter_map(|c| text(c, "Prefix")).collect();
        assert_eq!(prefixes, ["a/b/"]);
        let keys: Vec<String> = elements(xml, "Contents").iter().filter_map(|c| text(c, "Key")).collect();
        assert_eq!(keys, ["a/x&y"]);
        assert_eq!(unescape("&#65;&#x42;&lt;"), "AB<");
    }
}
