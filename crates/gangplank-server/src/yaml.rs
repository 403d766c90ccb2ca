//! YAML (or JSON) form parts of a multipart upload, parsed within bounds: the nesting and
//! scanning work are checked before the parser runs (`gangplank_core::limits`), the parse runs
//! on a blocking thread, and the value is built with a node budget (`gangplank_core::yaml`),
//! because aliases repeat their anchor's whole subtree.

use gangplank_core::limits::{self, MAX_DOCUMENT_NODES};
use serde_json::Value;

use crate::error::ApiError;

/// Parses form part `name` into a JSON value.
pub async fn parse_document(name: &str, bytes: axum::body::Bytes) -> Result<Value, ApiError> {
    limits::check_document_depth(name, &bytes)?;
    tokio::task::spawn_blocking(move || parse_counted(&bytes, MAX_DOCUMENT_NODES))
        .await
        .map_err(|error| ApiError::Internal(format!("parsing YAML: {error}")))?
        .map_err(|error| ApiError::invalid(name, format!("is not valid YAML or JSON: {error}")))
}

/// Parses `bytes`, failing once more than `max_nodes` values would be built (or a key repeats).
fn parse_counted(bytes: &[u8], max_nodes: usize) -> Result<Value, serde_yaml_ng::Error> {
    gangplank_core::yaml::parse_bounded(serde_yaml_ng::Deserializer::from_slice(bytes), max_nodes)
}

#[cfg(test)]
mod tests {
    use super::parse_counted;

    #[test]
    fn values_match_the_plain_parse_and_aliases_count_their_expansion() {
        let text = "a: &x [1, two, {c: 3.5, d: null, e: true}]\nb: *x\n";
        let plain: serde_json::Value = serde_yaml_ng::from_str(text).unwrap();
        assert_eq!(parse_counted(text.as_bytes(), 100).unwrap(), plain);
        let leaf: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        let bomb = format!(
            "a: &l [{}]\nb: [{}]\n",
            leaf.join(","),
            vec!["*l"; 200].join(",")
        );
        let error = parse_counted(bomb.as_bytes(), 10_000)
            .unwrap_err()
            .to_string();
        assert!(error.contains("expands to more than"), "{error}");
    }
}
