//! Form bodies (`application/x-www-form-urlencoded`, `multipart/form-data`), which the
//! original service's Django REST framework parsers accepted on every endpoint, read into
//! the object a JSON body gives, every value a string.

use crate::error::ErrorReply;
use serde_json::{Map, Value};

/// The fields the endpoints read: a repeated one is refused by name (DRF kept
/// the last; a repeat is more likely a client bug or a smuggling attempt).
const FIELDS: [&str; 7] = [
    "email",
    "return_to",
    "password",
    "refresh_token",
    "username",
    "current_password",
    "new_password",
];

/// A form encoding named by `Content-Type`.
pub(crate) enum Kind {
    /// `application/x-www-form-urlencoded`.
    UrlEncoded,
    /// `multipart/form-data` with its boundary.
    Multipart(Vec<u8>),
}

/// The form kind `content_type` names; `None` for anything else (read as JSON).
pub(crate) fn kind(content_type: Option<&[u8]>) -> Option<Kind> {
    let value = std::str::from_utf8(content_type?).ok()?;
    let mut parts = value.split(';');
    let media = parts.next()?.trim();
    if media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Some(Kind::UrlEncoded);
    }
    if !media.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let boundary = parts
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').as_bytes().to_vec())
        .unwrap_or_default();
    Some(Kind::Multipart(boundary))
}

/// The body of `kind` as an object of string fields.
pub(crate) fn object(kind: &Kind, body: &[u8]) -> Result<Map<String, Value>, ErrorReply> {
    let pairs = match kind {
        Kind::UrlEncoded => urlencoded(body)?,
        Kind::Multipart(boundary) => multipart(boundary, body)?,
    };
    let mut obj = Map::new();
    for (name, value) in pairs {
        if obj.contains_key(&name) {
            if let Some(field) = FIELDS.iter().find(|f| **f == name) {
                return Err(ErrorReply::invalid_field(
                    field,
                    "is repeated: send each field once",
                ));
            }
            continue;
        }
        obj.insert(name, Value::String(value));
    }
    Ok(obj)
}

fn malformed(what: &str) -> ErrorReply {
    ErrorReply::MalformedForm(what.to_owned())
}

fn urlencoded(body: &[u8]) -> Result<Vec<(String, String)>, ErrorReply> {
    body.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            Ok((percent_decoded(name)?, percent_decoded(value)?))
        })
        .collect()
}

/// `+` as space and `%XX` as its byte, the result UTF-8.
fn percent_decoded(s: &[u8]) -> Result<String, ErrorReply> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| malformed("a % not followed by two hex digits"))?;
                out.push(hex);
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| malformed("a value that is not UTF-8"))
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn multipart(boundary: &[u8], body: &[u8]) -> Result<Vec<(String, String)>, ErrorReply> {
    if boundary.is_empty() || boundary.len() > 70 {
        return Err(malformed("no boundary in Content-Type"));
    }
    let delimiter = [b"--", boundary].concat();
    let mut at = find(body, &delimiter, 0).ok_or_else(|| malformed("no part"))? + delimiter.len();
    let mut pairs = Vec::new();
    loop {
        if body.get(at..at + 2) == Some(b"--") {
            return Ok(pairs);
        }
        if body.get(at..at + 2) != Some(b"\r\n") {
            return Err(malformed("a boundary not followed by CRLF"));
        }
        let start = at + 2;
        let next = find(body, &[b"\r\n", delimiter.as_slice()].concat(), start)
            .ok_or_else(|| malformed("a part without its closing boundary"))?;
        let part = &body[start..next];
        let split =
            find(part, b"\r\n\r\n", 0).ok_or_else(|| malformed("a part without headers"))?;
        let name = disposition_name(&part[..split])?;
        let value = String::from_utf8(part[split + 4..].to_vec())
            .map_err(|_| malformed("a value that is not UTF-8"))?;
        pairs.push((name, value));
        at = next + 2 + delimiter.len();
    }
}

/// The `name` of a part's `Content-Disposition: form-data; name="..."`; a file part is refused.
fn disposition_name(headers: &[u8]) -> Result<String, ErrorReply> {
    let headers = std::str::from_utf8(headers).map_err(|_| malformed("part headers not UTF-8"))?;
    let disposition = headers
        .split("\r\n")
        .filter_map(|h| h.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-disposition"))
        .map(|(_, v)| v)
        .ok_or_else(|| malformed("a part without Content-Disposition"))?;
    let mut params = disposition.split(';');
    if !params
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("form-data"))
    {
        return Err(malformed("a part that is not form-data"));
    }
    let mut name = None;
    for p in params {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').to_owned();
        match k.trim().to_ascii_lowercase().as_str() {
            "name" => name = Some(v),
            "filename" => return Err(malformed("a file part (the endpoints take text fields)")),
            _ => {}
        }
    }
    name.ok_or_else(|| malformed("a part without a name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(ct: &str, body: &str) -> Result<Map<String, Value>, ErrorReply> {
        object(&kind(Some(ct.as_bytes())).unwrap(), body.as_bytes())
    }

    #[test]
    fn both_encodings_read_into_strings() {
        let o = read(
            "application/x-www-form-urlencoded",
            "email=a%40b.example&password=p+w%C3%A9&x",
        )
        .unwrap();
        assert_eq!(o["email"], "a@b.example");
        assert_eq!(o["password"], "p wé");
        assert_eq!(o["x"], "");
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\na@b.example\r\n--XyZ\r\ncontent-disposition: form-data; name=password\r\nContent-Type: text/plain\r\n\r\nsecret one\r\n--XyZ--\r\n";
        let o = read("multipart/form-data; boundary=\"XyZ\"", body).unwrap();
        assert_eq!(
            (&o["email"], &o["password"]),
            (&"a@b.example".into(), &"secret one".into())
        );
        assert!(kind(Some(b"application/json")).is_none() && kind(None).is_none());
    }

    #[test]
    fn repeats_and_malformed_bodies_are_refused() {
        assert!(matches!(
            read("application/x-www-form-urlencoded", "email=a&email=b"),
            Err(ErrorReply::InvalidField { field: "email", .. })
        ));
        assert!(read("application/x-www-form-urlencoded", "other=a&other=b").is_ok());
        for (ct, body) in [
            ("application/x-www-form-urlencoded", "email=%zz"),
            ("application/x-www-form-urlencoded", "email=%ff"),
            ("multipart/form-data", "--x\r\n\r\n"),
            (
                "multipart/form-data; boundary=x",
                "--x\r\nContent-Disposition: form-data; name=a\r\n\r\nv",
            ),
            (
                "multipart/form-data; boundary=x",
                "--x\r\nContent-Disposition: form-data; name=a; filename=f\r\n\r\nv\r\n--x--",
            ),
        ] {
            assert!(
                matches!(read(ct, body), Err(ErrorReply::MalformedForm(_))),
                "{body}"
            );
        }
    }
}
