//! YAML (or JSON) form parts of a multipart upload, parsed within bounds: the nesting and
//! scanning work are checked before the parser runs (`gangplank_core::limits`), the parse runs
//! on a blocking thread, and the value is built with a node budget, because aliases repeat
//! their anchor's whole subtree: `[*a, *a, …]` over a thousand-item anchor is a few bytes per
//! thousand nodes.

use std::cell::Cell;
use std::fmt;

use gangplank_core::limits::{self, MAX_DOCUMENT_NODES};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::ApiError;

/// Parses form part `name` into a JSON value.
pub async fn parse_document(name: &str, bytes: axum::body::Bytes) -> Result<Value, ApiError> {
    limits::check_document_depth(name, &bytes)?;
    tokio::task::spawn_blocking(move || parse_counted(&bytes, MAX_DOCUMENT_NODES))
        .await
        .map_err(|error| ApiError::Internal(format!("parsing YAML: {error}")))?
        .map_err(|error| ApiError::invalid(name, format!("is not valid YAML or JSON: {error}")))
}

/// Parses `bytes`, failing once more than `max_nodes` values would be built.
fn parse_counted(bytes: &[u8], max_nodes: usize) -> Result<Value, serde_yaml_ng::Error> {
    let budget = Cell::new(max_nodes);
    Counted { budget: &budget }.deserialize(serde_yaml_ng::Deserializer::from_slice(bytes))
}

/// Builds a [`Value`] as serde_json's own visitor does, spending one unit of `budget` per node.
#[derive(Clone, Copy)]
struct Counted<'a> {
    budget: &'a Cell<usize>,
}

impl Counted<'_> {
    fn spend<E: serde::de::Error>(&self) -> Result<(), E> {
        match self.budget.get().checked_sub(1) {
            Some(left) => {
                self.budget.set(left);
                Ok(())
            }
            None => Err(E::custom(format!(
                "expands to more than {MAX_DOCUMENT_NODES} values (aliases repeat their anchor)"
            ))),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Counted<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Counted<'_> {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any YAML value")
    }

    fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Bool(value))
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Value, E> {
        self.spend()?;
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, value: String) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::String(value))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.spend()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.spend()?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            self.spend()?;
            let value = map.next_value_seed(self)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }

    fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<Value, E> {
        Err(E::custom("binary values are not supported"))
    }
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
