//! Finding (and removing) a field in a request body: form-encoded, JSON or multipart.

/// The value of `name` in the body and the body without it; `None` when absent or unreadable.
pub fn take_field(content_type: &str, body: &[u8], name: &str) -> Option<(String, Vec<u8>)> {
    let mime = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/x-www-form-urlencoded" => {
            let text = std::str::from_utf8(body).ok()?;
            let value = form_urlencoded::parse(text.as_bytes()).find(|(k, _)| k == name)?.1.into_owned();
            Some((value, without_form_field(text, name).into_bytes()))
        }
        "application/json" => {
            let mut json: serde_json::Value = serde_json::from_slice(body).ok()?;
            let value = match json.as_object_mut()?.remove(name)? {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            Some((value, serde_json::to_vec(&json).ok()?))
        }
        "multipart/form-data" => {
            let boundary = content_type.split(';').find_map(|p| p.trim().strip_prefix("boundary="))?.trim_matches('"');
            multipart_take(body, boundary, name)
        }
        _ => None,
    }
}

/// `a=1&key=2&b=3` without the pairs named `name` (the others keep their raw encoding).
pub fn without_form_field(encoded: &str, name: &str) -> String {
    encoded
        .split('&')
        .filter(|pair| {
            let key = pair.split('=').next().unwrap_or_default();
            form_urlencoded::parse(key.as_bytes()).next().map(|(k, _)| k != name).unwrap_or(true) && !pair.is_empty()
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn multipart_take(body: &[u8], boundary: &str, name: &str) -> Option<(String, Vec<u8>)> {
    let text = std::str::from_utf8(body).ok()?;
    let delimiter = format!("--{boundary}");
    let wanted = format!("name=\"{name}\"");
    let mut parts = text.split(delimiter.as_str());
    let preamble = parts.next()?;
    let mut value = None;
    let mut kept = Vec::new();
    for part in parts {
        let (head, content) = part.split_once("\r\n\r\n").unwrap_or((part, ""));
        if value.is_none()
            && head.lines().any(|l| l.to_ascii_lowercase().starts_with("content-disposition") && l.contains(&wanted))
        {
            value = Some(content.strip_suffix("\r\n").unwrap_or(content).to_string());
        } else {
            kept.push(part);
        }
    }
    let stripped = format!("{preamble}{}", kept.iter().map(|p| format!("{delimiter}{p}")).collect::<String>());
    Some((value?, stripped.into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_and_query() {
        let (v, rest) = take_field("application/x-www-form-urlencoded", b"a=1&apikey=s%20ecret&b=2", "apikey").unwrap();
        assert_eq!((v.as_str(), rest.as_slice()), ("s ecret", b"a=1&b=2".as_slice()));
        assert_eq!(without_form_field("apikey=1", "apikey"), "");
        assert_eq!(without_form_field("x=%20&api%6Bey=1&y", "apikey"), "x=%20&y");
    }

    #[test]
    fn json() {
        let (v, rest) = take_field("application/json; charset=utf-8", br#"{"apikey":"k","n":1}"#, "apikey").unwrap();
        assert_eq!(v, "k");
        assert_eq!(rest, br#"{"n":1}"#);
        assert!(take_field("application/json", b"[1]", "apikey").is_none());
    }

    #[test]
    fn multipart() {
        let body = "--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XX\r\nContent-Disposition: form-data; name=\"apikey\"\r\n\r\nsecret\r\n--XX--\r\n";
        let (v, rest) = take_field("multipart/form-data; boundary=XX", body.as_bytes(), "apikey").unwrap();
        assert_eq!(v, "secret");
        let rest = String::from_utf8(rest).unwrap();
        assert!(!rest.contains("apikey") && rest.contains("name=\"a\"") && rest.ends_with("--XX--\r\n"), "{rest}");
    }
}
