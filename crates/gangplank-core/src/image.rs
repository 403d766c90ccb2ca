//! OCI image repository names: parsing by the distribution reference grammar, and the
//! normalisation that makes `nginx`, `docker.io/library/nginx` and `index.docker.io/nginx` equal.

use std::fmt;

/// The registry host Docker Hub images normalise to.
pub const DOCKER_HUB: &str = "docker.io";

/// The longest repository name the distribution grammar allows.
const MAX_NAME_LEN: usize = 255;

/// An image repository without tag or digest, split into registry host and path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepositoryName {
    domain: String,
    path: String,
}

impl RepositoryName {
    /// Parses `[domain/]path`, applying Docker's defaulting: no domain means Docker Hub, and
    /// a single-component Docker Hub path gains `library/`. Errors are messages for the caller.
    pub fn parse(value: &str) -> Result<Self, String> {
        if value.is_empty() || value.len() > MAX_NAME_LEN {
            return Err(format!("must be 1 to {MAX_NAME_LEN} characters"));
        }
        if value.contains('@') {
            return Err("must not include a tag or digest".to_owned());
        }
        let (domain, path) = match value.split_once('/') {
            Some((first, rest)) if looks_like_domain(first) => (Some(first), rest),
            _ => (None, value),
        };
        if path.contains(':') {
            return Err("must not include a tag or digest".to_owned());
        }
        if let Some(domain) = domain {
            check_domain(domain)?;
        }
        for component in path.split('/') {
            check_path_component(component)?;
        }
        let domain = match domain {
            None => DOCKER_HUB.to_owned(),
            Some(d) if is_docker_hub_alias(d) => DOCKER_HUB.to_owned(),
            Some(d) => d.to_ascii_lowercase(),
        };
        let path = if domain == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_owned()
        };
        Ok(RepositoryName { domain, path })
    }

    /// The registry host, with port, normalised.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path within the registry.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)
    }
}

/// A full image reference: repository, optional tag, optional digest
/// (`registry/path:tag@sha256:…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    pub repository: RepositoryName,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageReference {
    /// Splits off the digest (after `@`) and the tag (after the last `:` that follows the last
    /// `/`, so a registry port is not mistaken for a tag), then parses the repository.
    pub fn parse(value: &str) -> Result<Self, String> {
        let (rest, digest) = match value.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest.to_owned())),
            None => (value, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_owned()),
            ),
            None => (rest, None),
        };
        if tag.as_deref() == Some("") || digest.as_deref() == Some("") {
            return Err("an empty tag or digest".to_owned());
        }
        Ok(ImageReference {
            repository: RepositoryName::parse(repository)?,
            tag,
            digest,
        })
    }
}

/// The image string an artefact version deploys as: `name:version`, pinned with `@digest` when
/// the version has one.
pub fn pinned_image(name: &str, version: &str, digest: &str) -> String {
    let mut image = name.to_owned();
    if !version.is_empty() {
        image.push(':');
        image.push_str(version);
    }
    if !digest.is_empty() {
        image.push('@');
        image.push_str(digest);
    }
    image
}

/// Docker's rule: the first component is a registry host when it has a dot or a port, or is
/// `localhost`, or has upper-case letters (which a path may not).
fn looks_like_domain(first: &str) -> bool {
    first.contains('.')
        || first.contains(':')
        || first == "localhost"
        || first.starts_with('[')
        || first.bytes().any(|b| b.is_ascii_uppercase())
}

fn is_docker_hub_alias(domain: &str) -> bool {
    matches!(
        domain.to_ascii_lowercase().as_str(),
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com"
    )
}

fn check_domain(domain: &str) -> Result<(), String> {
    let invalid = || format!("registry host {domain:?} is not a valid host[:port]");
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        // An IPv6 literal: [addr]:port.
        let (addr, after) = rest.split_once(']').ok_or_else(invalid)?;
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(invalid());
        }
        (None, after.strip_prefix(':'))
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(domain), None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(invalid());
    }
    if let Some(host) = host {
        let label_ok = |label: &str| {
            let bytes = label.as_bytes();
            !bytes.is_empty()
                && bytes[0].is_ascii_alphanumeric()
                && bytes[bytes.len() - 1].is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if !host.split('.').all(label_ok) {
            return Err(invalid());
        }
    }
    Ok(())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn check_path_component(component: &str) -> Result<(), String> {
    let invalid = || {
        format!(
            "path component {component:?} must be lower-case alphanumerics separated by ., _, __ or -"
        )
    };
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err(invalid());
    }
    let mut index = 0;
    while index < bytes.len() {
        let b = bytes[index];
        if alnum(b) {
            index += 1;
            continue;
        }
        // A separator run: ".", "_", "__", or any number of "-".
        let start = index;
        while index < bytes.len() && !alnum(bytes[index]) {
            index += 1;
        }
        let separator = &component[start..index];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return Err(invalid());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
