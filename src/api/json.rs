//! Reading request bodies as JSON objects and picking string fields, with errors that name the field.

use crate::error::ErrorReply;
use serde_json::{Map, Value};

/// A body's fields, however it was encoded (JSON, or a form: `Request::fields`).
pub(crate) type Fields = Map<String, Value>;

/// The body as a JSON object.
pub(crate) fn object(body: &[u8]) -> Result<Map<String, Value>, ErrorReply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ErrorReply::MalformedJson(
            "the body is empty; expected a JSON object".into(),
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ErrorReply::MalformedJson("expected a JSON object".into())),
        // serde_json's message gives line and column, never the input itself.
        Err(e) => Err(ErrorReply::MalformedJson(e.to_string())),
    }
}

/// A required string field.
pub(crate) fn string(obj: &Map<String, Value>, field: &'static str) -> Result<String, ErrorReply> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(ErrorReply::MissingField(field)),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ErrorReply::invalid_field(field, "must be a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field() {
        let o = object(br#"{"a": 1}"#).unwrap();
        assert!(matches!(
            string(&o, "email"),
            Err(ErrorReply::MissingField("email"))
        ));
        assert!(matches!(
            string(&o, "a"),
            Err(ErrorReply::InvalidField { field: "a", .. })
        ));
        assert!(matches!(object(b"[1]"), Err(ErrorReply::MalformedJson(_))));
        assert!(matches!(object(b"{"), Err(ErrorReply::MalformedJson(_))));
        assert!(matches!(object(b""), Err(ErrorReply::MalformedJson(_))));
    }
}
