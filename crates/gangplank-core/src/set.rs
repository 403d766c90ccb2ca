//! Sets: the immutable, content-addressed description of everything deployed in an
//! environment, and the images its workloads run.
//!
//! A set's ID is the SHA-256 of a canonical serialisation (keys sorted, no whitespace), in
//! unpadded base64url: the same content gives the same ID on every server, and clients treat it
//! as opaque (reference §5.7).

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::image::ImageReference;

/// The content of a set.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Set {
    /// Module (workload) ID → `{profile, spec, externals, deploy?}`.
    #[serde(default)]
    pub modules: BTreeMap<String, Value>,
    #[serde(default)]
    pub shared: Map<String, Value>,
    /// Only 0 exists.
    #[serde(default)]
    pub version: u32,
}

/// One container of one workload, and the image it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerImage {
    pub workload: String,
    pub container: String,
    pub image: String,
}

impl Set {
    /// The content hash that is this set's ID.
    pub fn id(&self) -> String {
        let value = serde_json::to_value(self).unwrap_or(Value::Null);
        let mut canonical = String::new();
        write_canonical(&value, &mut canonical);
        let digest = Sha256::digest(canonical.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    }

    /// Every `modules.<workload>.spec.containers.<container>.image` that is a string.
    pub fn container_images(&self) -> Vec<ContainerImage> {
        let mut out = Vec::new();
        for (workload, module) in &self.modules {
            let containers = module
                .pointer("/spec/containers")
                .and_then(Value::as_object);
            for (container, spec) in containers.into_iter().flatten() {
                if let Some(image) = spec.get("image").and_then(Value::as_str) {
                    out.push(ContainerImage {
                        workload: workload.clone(),
                        container: container.clone(),
                        image: image.to_owned(),
                    });
                }
            }
        }
        out
    }

    /// The normalised repositories (`docker.io/library/nginx`) the set's containers run,
    /// sorted and without repeats. Images that do not parse are left out.
    pub fn repositories(&self) -> Vec<String> {
        let mut repos: Vec<String> = self
            .container_images()
            .iter()
            .filter_map(|c| ImageReference::parse(&c.image).ok())
            .map(|r| r.repository.to_string())
            .collect();
        repos.sort();
        repos.dedup();
        repos
    }
}

/// Serialises with object keys in byte order and no whitespace, so equal content gives equal
/// text whatever map type produced it.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests;
