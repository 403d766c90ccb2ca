//! Registry authentication: parsing `WWW-Authenticate` challenges and the token request.

use base64::Engine;

/// Username and password for a registry (or for its token service).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

impl Credentials {
    /// The `Authorization: Basic …` value.
    pub fn basic(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

/// What a registry's 401 asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value: `Basic realm="…"` or
/// `Bearer realm="…",service="…",scope="…"`.
pub fn parse_challenge(value: &str) -> Option<Challenge> {
    let (scheme, params) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    let mut rest = params;
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        match key {
            "realm" => realm = Some(value.to_owned()),
            "service" => service = Some(value.to_owned()),
            _ => {}
        }
        rest = next;
    }
    Some(Challenge::Bearer {
        realm: realm?,
        service,
    })
}

#[cfg(test)]
mod tests {
    use super::{Challenge, parse_challenge};

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(r#"Basic realm="basic-realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="http://127.0.0.1:5003/token",service="test-registry",scope="repository:a:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:5003/token".to_owned(),
                service: Some("test-registry".to_owned())
            })
        );
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(
            parse_challenge(r#"Bearer service="x""#),
            None,
            "a realm is required"
        );
    }
}
