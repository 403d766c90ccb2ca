//! The compose override file the agent owns: `services.<name>.image` for each service it has
//! deployed. It is JSON (which YAML, and so compose, reads), written beside the user's files,
//! which are never rewritten.

use serde_json::{Map, Value, json};

/// The override document with `service` pinned to `image`, or unpinned when `image` is `None`
/// (compose then uses the user's file). `version` copies the user's file's `version` key, since
/// compose v1 refuses files of different versions.
pub fn with_image(
    current: &Value,
    version: Option<&str>,
    service: &str,
    image: Option<&str>,
) -> Value {
    let mut services = current
        .get("services")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    match image {
        Some(image) => {
            services.insert(service.to_owned(), json!({ "image": image }));
        }
        None => {
            services.remove(service);
        }
    }
    let mut doc = Map::new();
    if let Some(version) = version {
        doc.insert("version".to_owned(), Value::String(version.to_owned()));
    }
    doc.insert("services".to_owned(), Value::Object(services));
    Value::Object(doc)
}

/// The image the override pins for `service`, if any.
pub fn override_image<'a>(doc: &'a Value, service: &str) -> Option<&'a str> {
    doc.get("services")?.get(service)?.get("image")?.as_str()
}
