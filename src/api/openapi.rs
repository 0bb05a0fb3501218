//! GET /openapi.json: the OpenAPI 3.1 document of this API, the file `src/api/openapi.json` itself.

use super::Reply;
use crate::error::ErrorReply;
use serde_json::Value;
use std::sync::LazyLock;

/// The document as written: `tests/api/contract.rs` checks the running gateway against this file.
const DOCUMENT: &str = include_str!("openapi.json");

/// How long a cache may keep it: it changes only with a new build.
pub(super) const MAX_AGE_SECONDS: u64 = 300;

/// Parsed once; `serde_json`'s `preserve_order` keeps the file's member order.
static PARSED: LazyLock<Result<Value, String>> =
    LazyLock::new(|| serde_json::from_str(DOCUMENT).map_err(|e| e.to_string()));

pub(super) fn get() -> Result<Reply, ErrorReply> {
    match &*PARSED {
        Ok(doc) => Ok(Reply::ok(doc.clone())),
        // Cannot happen with the file in the repo (the unit test below parses it).
        Err(e) => Err(ErrorReply::internal(format!("openapi.json: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_json_and_lists_every_endpoint() {
        let doc: Value = serde_json::from_str(DOCUMENT).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        for (path, item) in doc["paths"].as_object().unwrap() {
            let concrete = path.replace("{id}", "0123456789abcdef0123456789abcdef");
            let endpoint = super::super::Endpoint::for_path(&concrete)
                .unwrap_or_else(|| panic!("{path} is no endpoint"));
            assert_eq!(item["x-allow"], endpoint.allow(), "{path}");
        }
    }
}
