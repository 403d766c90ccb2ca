//! Reading a pipeline's YAML into a JSON value within bounds (a node budget, because aliases
//! repeat their anchor's subtree; duplicate keys refused), and finding the line of a node by
//! its path. The parser does not expose positions on success, but it marks every error with
//! the position of the node being read, so `line_of` re-reads the text and fails on purpose
//! at the node it wants: errors are rare, so the second pass costs nothing on the happy path.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// How many values a definition may expand to (a large pipeline has a few thousand).
pub(super) const MAX_DEFINITION_NODES: usize = 100_000;

/// One step of a path into the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seg {
    /// The value under this key.
    Key(String),
    /// The key itself (for "unknown key" errors).
    KeyName(String),
    Index(usize),
}

/// A YAML error with its line, when the parser knows it.
pub(super) struct YamlError {
    pub line: Option<usize>,
    pub message: String,
}

/// Parses `text` into a JSON value.
pub(super) fn read(text: &str) -> Result<Value, YamlError> {
    crate::yaml::parse_bounded(
        serde_yaml_ng::Deserializer::from_str(text),
        MAX_DEFINITION_NODES,
    )
    .map_err(|error| YamlError {
        line: error.location().map(|at| at.line()),
        message: strip_position(&error.to_string()),
    })
}

/// The 1-based line of the node at `path`, or `None` when the path is not in the text.
pub(super) fn line_of(text: &str, path: &[Seg]) -> Option<usize> {
    let error = Locate { path }
        .deserialize(serde_yaml_ng::Deserializer::from_str(text))
        .err()?;
    error.location().map(|at| at.line())
}

/// serde_yaml_ng appends " at line N column M" to messages; the line is reported apart.
fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

const FOUND: &str = "found";

/// Fails (with the parser's position) at the node `path` leads to.
#[derive(Clone, Copy)]
struct Locate<'a> {
    path: &'a [Seg],
}

impl<'de> DeserializeSeed<'de> for Locate<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Locate<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any YAML value")
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        self.scalar()
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        self.scalar()
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        self.scalar()
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        self.scalar()
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        self.scalar()
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.scalar()
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.scalar()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let wanted = match self.path.split_first() {
            None => return Err(serde::de::Error::custom(FOUND)),
            Some((Seg::Index(i), rest)) => Some((*i, rest)),
            Some(_) => None,
        };
        // Everything else is read to the end: a half-read collection is an error of its own.
        let mut index = 0;
        loop {
            let more = match wanted {
                Some((i, rest)) if i == index => {
                    seq.next_element_seed(Locate { path: rest })?.is_some()
                }
                _ => seq.next_element::<IgnoredAny>()?.is_some(),
            };
            if !more {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.path.split_first() else {
            return Err(serde::de::Error::custom(FOUND));
        };
        let (wanted, at_key) = match first {
            Seg::Key(key) => (key.as_str(), false),
            Seg::KeyName(key) => (key.as_str(), true),
            Seg::Index(_) => ("", false),
        };
        let probe = || KeyProbe {
            wanted,
            fail: at_key,
            active: !matches!(first, Seg::Index(_)),
        };
        while let Some(key) = map.next_key_seed(probe())? {
            if key {
                map.next_value_seed(Locate { path: rest })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

impl Locate<'_> {
    fn scalar<E: serde::de::Error>(self) -> Result<(), E> {
        if self.path.is_empty() {
            Err(E::custom(FOUND))
        } else {
            Ok(())
        }
    }
}

/// Reads a key: true when it is the wanted one; fails on it when `fail` (to get its line).
struct KeyProbe<'a> {
    wanted: &'a str,
    fail: bool,
    /// False when the path goes on with an index, which no key matches.
    active: bool,
}

impl<'de> DeserializeSeed<'de> for KeyProbe<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyProbe<'_> {
    type Value = bool;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<bool, E> {
        if !self.active || key != self.wanted {
            return Ok(false);
        }
        if self.fail {
            Err(E::custom(FOUND))
        } else {
            Ok(true)
        }
    }
}

/// The keys of the mapping at `path`, in the order the text lists them (the JSON value keeps
/// keys sorted; job order matters to people reading runs).
pub(super) fn keys_in_order(text: &str, path: &[&str]) -> Vec<String> {
    let mut keys = Vec::new();
    let _ = KeysAt {
        path,
        keys: &mut keys,
    }
    .deserialize(serde_yaml_ng::Deserializer::from_str(text));
    keys
}

/// Collects the keys of the mapping at `path`, reading everything else to the end.
struct KeysAt<'a, 'k> {
    path: &'a [&'a str],
    keys: &'k mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for KeysAt<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeysAt<'_, '_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any YAML value")
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let KeysAt { path, keys } = self;
        while let Some(key) = map.next_key::<String>()? {
            match path.split_first() {
                None => {
                    keys.push(key);
                    map.next_value::<IgnoredAny>()?;
                }
                Some((first, rest)) if *first == key => {
                    map.next_value_seed(KeysAt {
                        path: rest,
                        keys: &mut *keys,
                    })?;
                }
                Some(_) => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}
