//! Artefact versions: the validation rules of `POST /orgs/{org}/artefact-versions`.
//!
//! The rules follow Humanitec's API (reference §1), with two deliberate widenings that real CI
//! needs: commits may be up to 64 hex characters (SHA-256 repositories and tags used as commits),
//! and upper-case hex is accepted and stored lower-case.

use std::fmt;

use crate::ValidationError;
use crate::image::RepositoryName;

/// What an artefact holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArtefactType {
    /// A container image; the artefact name is the image repository without tag.
    Container,
    /// A Score workload specification.
    Workload,
}

impl ArtefactType {
    /// Parses the API spelling (`container` or `workload`).
    pub fn parse(field: &str, value: &str) -> Result<Self, ValidationError> {
        match value {
            "container" => Ok(ArtefactType::Container),
            "workload" => Ok(ArtefactType::Workload),
            _ => Err(ValidationError::new(
                field,
                "must be \"container\" or \"workload\"",
            )),
        }
    }

    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ArtefactType::Container => "container",
            ArtefactType::Workload => "workload",
        }
    }
}

impl fmt::Display for ArtefactType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest artefact name, version or ref accepted, in bytes.
pub const MAX_FIELD_LEN: usize = 512;

/// The raw scalar fields of an artefact-version request, as the caller sent them.
#[derive(Debug, Clone, Default)]
pub struct ArtefactVersionInput<'a> {
    /// `type`.
    pub kind: &'a str,
    /// `name`.
    pub name: &'a str,
    /// `version`.
    pub version: Option<&'a str>,
    /// `ref`.
    pub git_ref: Option<&'a str>,
    /// `commit`.
    pub commit: Option<&'a str>,
    /// `digest`.
    pub digest: Option<&'a str>,
    /// The `vcs` query parameter; absent means `git`.
    pub vcs: Option<&'a str>,
    /// Whether a workload `spec` was supplied.
    pub has_spec: bool,
    /// Names of workload-only fields (`image`, `overrides`, ...) that were supplied.
    pub workload_fields: Vec<&'static str>,
}

/// A validated artefact version, normalised for storage. Absent optional fields are empty
/// strings, which is also how they appear on the wire for containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtefactVersionFields {
    /// The artefact type.
    pub kind: ArtefactType,
    /// The artefact name (for containers, the image repository exactly as sent).
    pub name: String,
    /// The version (for containers, the tag), or empty.
    pub version: String,
    /// The VCS ref, or empty.
    pub git_ref: String,
    /// The lower-case commit, or empty.
    pub commit: String,
    /// The `sha256:` digest, or empty.
    pub digest: String,
}

impl ArtefactVersionFields {
    /// Applies every field rule; the first failure names its field.
    pub fn parse(input: &ArtefactVersionInput<'_>) -> Result<Self, ValidationError> {
        let kind = ArtefactType::parse("type", input.kind)?;
        let name = parse_name(kind, input.name)?;
        let version = bounded_text("version", input.version.unwrap_or(""))?;
        let git_ref = parse_git_ref(input.vcs, input.git_ref.unwrap_or(""))?;
        let commit = parse_commit(input.commit.unwrap_or(""))?;
        let digest = input.digest.unwrap_or("");
        match kind {
            ArtefactType::Container => {
                if input.has_spec {
                    return Err(ValidationError::new(
                        "spec",
                        "only allowed for type workload",
                    ));
                }
                if let Some(field) = input.workload_fields.first() {
                    return Err(ValidationError::new(
                        *field,
                        "only allowed for type workload",
                    ));
                }
                if !version.is_empty() {
                    parse_tag(&version)?;
                }
                if !digest.is_empty() {
                    parse_digest("digest", digest)?;
                }
            }
            ArtefactType::Workload => {
                if !input.has_spec {
                    return Err(ValidationError::new(
                        "spec",
                        "is required for type workload",
                    ));
                }
                if !digest.is_empty() {
                    return Err(ValidationError::new(
                        "digest",
                        "only allowed for type container",
                    ));
                }
            }
        }
        Ok(ArtefactVersionFields {
            kind,
            name,
            version,
            git_ref,
            commit,
            digest: digest.to_owned(),
        })
    }
}

fn bounded_text(field: &str, value: &str) -> Result<String, ValidationError> {
    if value.len() > MAX_FIELD_LEN {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_FIELD_LEN} bytes"),
        ));
    }
    if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ValidationError::new(
            field,
            "must not contain whitespace or control characters",
        ));
    }
    Ok(value.to_owned())
}

fn parse_name(kind: ArtefactType, value: &str) -> Result<String, ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::new("name", "is required"));
    }
    let name = bounded_text("name", value)?;
    if kind == ArtefactType::Container {
        RepositoryName::parse(&name).map_err(|message| ValidationError::new("name", message))?;
    }
    Ok(name)
}

fn parse_git_ref(vcs: Option<&str>, value: &str) -> Result<String, ValidationError> {
    let git_ref = bounded_text("ref", value)?;
    let is_git = matches!(vcs, None | Some("git"));
    if is_git && !git_ref.is_empty() && !git_ref.starts_with("refs/") {
        return Err(ValidationError::new(
            "ref",
            "must start with \"refs/\" when vcs is git (e.g. refs/heads/main)",
        ));
    }
    Ok(git_ref)
}

/// Validates a commit: 5 to 64 hex characters, returned lower-case. Empty stays empty.
pub fn parse_commit(value: &str) -> Result<String, ValidationError> {
    if value.is_empty() {
        return Ok(String::new());
    }
    let hex = value.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex || !(5..=64).contains(&value.len()) {
        return Err(ValidationError::new(
            "commit",
            "must be 5 to 64 hexadecimal characters",
        ));
    }
    Ok(value.to_ascii_lowercase())
}

/// Validates a content digest of the form `sha256:<64 lower-case hex>`.
pub fn parse_digest(field: &str, value: &str) -> Result<(), ValidationError> {
    let valid = value.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if valid {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            "must be sha256: followed by 64 lower-case hex characters",
        ))
    }
}

/// Validates an OCI tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn parse_tag(value: &str) -> Result<(), ValidationError> {
    let bytes = value.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let valid = !bytes.is_empty()
        && bytes.len() <= 128
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(ValidationError::new(
            "version",
            "must be a valid image tag for type container ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})",
        ))
    }
}

/// A `reference` filter: an artefact name with an optional version and optional digest, spelled
/// `name`, `name:version`, `name@digest` or `name:version@digest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtefactReference {
    /// The artefact name.
    pub name: String,
    /// The version, when given.
    pub version: Option<String>,
    /// The digest, when given.
    pub digest: Option<String>,
}

impl ArtefactReference {
    /// Splits a reference; a `:` only separates a version after the last `/` (so registry ports
    /// stay part of the name).
    pub fn parse(field: &str, value: &str) -> Result<Self, ValidationError> {
        let (rest, digest) = match value.split_once('@') {
            Some((rest, digest)) => {
                parse_digest(field, digest)?;
                (rest, Some(digest.to_owned()))
            }
            None => (value, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, version) = match rest[last_slash..].rfind(':') {
            Some(colon) => {
                let at = last_slash + colon;
                (&rest[..at], Some(rest[at + 1..].to_owned()))
            }
            None => (rest, None),
        };
        if name.is_empty() || version.as_deref() == Some("") {
            return Err(ValidationError::new(
                field,
                "must be name[:version][@digest]",
            ));
        }
        Ok(ArtefactReference {
            name: name.to_owned(),
            version,
            digest,
        })
    }
}

#[cfg(test)]
mod tests;
