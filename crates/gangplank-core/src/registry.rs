//! Registries: their types, and which registry an image belongs to, by the longest prefix of
//! its normalised reference (`docker.io` ≡ `index.docker.io` ≡ `registry-1.docker.io` ≡
//! `registry.hub.docker.com`; `library/` for single-name Docker Hub images; whole path
//! components only, so `reg.io/team` does not match `reg.io/teamwork/app`).

use std::fmt;

use crate::ValidationError;
use crate::image::{ImageReference, RepositoryName};

/// How a registry authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryType {
    Public,
    Basic,
    AmazonEcr,
    GoogleGcr,
    GoogleArtifactRegistry,
    AzureAcr,
    SecretRef,
}

impl RegistryType {
    pub const ALL: [RegistryType; 7] = [
        RegistryType::Public,
        RegistryType::Basic,
        RegistryType::AmazonEcr,
        RegistryType::GoogleGcr,
        RegistryType::GoogleArtifactRegistry,
        RegistryType::AzureAcr,
        RegistryType::SecretRef,
    ];

    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        RegistryType::ALL
            .into_iter()
            .find(|t| t.as_str() == value)
            .ok_or_else(|| {
                let names: Vec<&str> = RegistryType::ALL.iter().map(|t| t.as_str()).collect();
                ValidationError::new("type", format!("must be one of {}", names.join(", ")))
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RegistryType::Public => "public",
            RegistryType::Basic => "basic",
            RegistryType::AmazonEcr => "amazon_ecr",
            RegistryType::GoogleGcr => "google_gcr",
            RegistryType::GoogleArtifactRegistry => "google_artifact_registry",
            RegistryType::AzureAcr => "azure_acr",
            RegistryType::SecretRef => "secret_ref",
        }
    }

    /// The username CI logs in with, for types whose username is fixed (Google's JSON keys).
    pub fn fixed_username(self) -> Option<&'static str> {
        match self {
            RegistryType::GoogleGcr | RegistryType::GoogleArtifactRegistry => Some("_json_key"),
            _ => None,
        }
    }

    /// Whether the type needs stored credentials.
    pub fn needs_creds(self) -> bool {
        !matches!(self, RegistryType::Public | RegistryType::SecretRef)
    }
}

impl fmt::Display for RegistryType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks a registry ID (`^[a-z0-9][a-z0-9-]+[a-z0-9]$`).
pub fn check_id(id: &str) -> Result<(), ValidationError> {
    let bytes = id.as_bytes();
    let ok = bytes.len() >= 3
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-';
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "id",
            "must match ^[a-z0-9][a-z0-9-]+[a-z0-9]$ (3 to 63 characters)",
        ))
    }
}

/// A registry prefix in normal form: `domain` or `domain/path`, the domain lower-cased and
/// Docker Hub's aliases folded into `docker.io`. The first component is always the host.
pub fn normalise_prefix(prefix: &str) -> Result<String, ValidationError> {
    let trimmed = prefix
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(ValidationError::new("registry", "must not be empty"));
    }
    let (domain, path) = match trimmed.split_once('/') {
        Some((domain, path)) => (domain, Some(path)),
        None => (trimmed, None),
    };
    // Parse through the repository grammar with a placeholder path, to reuse its host rules.
    let probe = format!("{domain}/{}", path.unwrap_or("x"));
    let parsed = RepositoryName::parse(&probe)
        .map_err(|e| ValidationError::new("registry", format!("{prefix:?}: {e}")))?;
    let domain = parsed.domain();
    // A path is kept as given: `docker.io/acme` is the organization `acme`, not an image.
    Ok(match path {
        None => domain.to_owned(),
        Some(path) => format!("{domain}/{path}"),
    })
}

/// The host (`domain[:port]`) of a registry prefix such as `registry.example.com/acme`: what
/// `docker login` takes (it refuses an address with a path) and what names an ECR registry's
/// region.
pub fn registry_host(registry: &str) -> &str {
    registry.split_once('/').map_or(registry, |(host, _)| host)
}

/// The registry (by index into `prefixes`, which are in normal form) whose prefix is the
/// longest that covers `image` (any reference: with or without tag or digest), or `None`.
pub fn longest_prefix_match(image: &str, prefixes: &[String]) -> Option<usize> {
    let reference = ImageReference::parse(image).ok()?;
    let repository = reference.repository.to_string();
    prefixes
        .iter()
        .enumerate()
        .filter(|(_, prefix)| {
            repository == **prefix
                || repository
                    .strip_prefix(prefix.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        })
        .max_by_key(|(_, prefix)| prefix.len())
        .map(|(index, _)| index)
}

#[cfg(test)]
mod tests;
