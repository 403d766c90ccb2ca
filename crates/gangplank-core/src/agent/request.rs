//! Decoding a `/deploy` body exactly as deployer-service does: trimmed standard base64 (padding
//! required, embedded line breaks skipped), then JSON whose keys match case-insensitively, last
//! one winning, unknown keys ignored. Gangplank's own requests send plain JSON.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

/// What a deploy request asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeployBody {
    pub service: String,
    /// The image to run; `None` pulls whatever the compose file names (the seed's behaviour).
    pub image: Option<String>,
    /// Gangplank's deployment id, which makes a repeated request idempotent.
    pub id: Option<String>,
    /// The compose project, when the agent has several that allow the service.
    pub project: Option<String>,
}

/// Why a body was refused; `Display` is the seed's response text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("invalid base64")]
    Base64,
    #[error("invalid json")]
    Json,
    #[error("service is required")]
    ServiceRequired,
}

/// Decodes a body. `json` says the request declared `Content-Type: application/json` (and the
/// body is an object); anything else is the seed's base64 text.
pub fn decode_deploy_body(raw: &[u8], json: bool) -> Result<DeployBody, BodyError> {
    let decoded;
    // deployer-service ignored Content-Type: base64 sent as JSON still works.
    let json = json && raw.trim_ascii_start().first() == Some(&b'{');
    let json_bytes = if json {
        raw
    } else {
        // Go's StdEncoding skips '\r' and '\n' anywhere; TrimSpace removes the rest at the ends.
        let text = raw.trim_ascii();
        let compact: Vec<u8> = text
            .iter()
            .copied()
            .filter(|b| *b != b'\r' && *b != b'\n')
            .collect();
        decoded = STANDARD.decode(compact).map_err(|_| BodyError::Base64)?;
        &decoded
    };
    let body = serde_json::from_slice::<GoStyle>(json_bytes)
        .map_err(|_| BodyError::Json)?
        .0;
    if body.service.trim().is_empty() {
        return Err(BodyError::ServiceRequired);
    }
    Ok(body)
}

/// `json.Unmarshal` into a struct: case-insensitive keys in document order, `null` leaves a
/// field alone, a top-level `null` is an empty struct.
struct GoStyle(DeployBody);

impl<'de> serde::Deserialize<'de> for GoStyle {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(GoVisitor)
    }
}

struct GoVisitor;

impl<'de> Visitor<'de> for GoVisitor {
    type Value = GoStyle;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_unit<E: de::Error>(self) -> Result<GoStyle, E> {
        Ok(GoStyle(DeployBody::default()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<GoStyle, A::Error> {
        let mut body = DeployBody::default();
        while let Some(key) = map.next_key::<String>()? {
            let slot = match key.to_ascii_lowercase().as_str() {
                "service" => Field::Service,
                "image" => Field::Image,
                "id" => Field::Id,
                "project" => Field::Project,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if let Some(value) = map.next_value::<Option<String>>()? {
                match slot {
                    Field::Service => body.service = value,
                    Field::Image => body.image = Some(value).filter(|v| !v.trim().is_empty()),
                    Field::Id => body.id = Some(value).filter(|v| !v.is_empty()),
                    Field::Project => body.project = Some(value).filter(|v| !v.is_empty()),
                }
            }
        }
        Ok(GoStyle(body))
    }
}

enum Field {
    Service,
    Image,
    Id,
    Project,
}
