//! Who may deploy: bearer JWTs verified against trusted keys, each key pinned to one algorithm
//! (RS256, ES256 or EdDSA by its type; `none` and HMAC never), the claims policy of
//! `gangplank_core::agent`, and a replay cache of `jti`s until they expire.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use gangplank_core::agent::{ClaimsPolicy, check_claims};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::config::AuthConfig;

/// Why a request was refused. Every variant answers `401`; the seed's text callers get only
/// `unauthorized`, JSON callers (the server) get [`AuthError::public_reason`].
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token")]
    Missing,
    #[error("the token's header is unreadable or names an unsupported algorithm: {0}")]
    Header(jsonwebtoken::errors::Error),
    #[error("no trusted key for algorithm {0:?}")]
    NoKey(Algorithm),
    #[error("the signature does not verify with any trusted key")]
    Signature,
    #[error(transparent)]
    Claims(#[from] gangplank_core::agent::ClaimsError),
    #[error("the token's jti was already used")]
    Replayed,
}

impl AuthError {
    /// The reason told to the caller: never the token, nor anything read from it (a header
    /// parse error or an untrusted issuer is named, not quoted), only what the agent requires.
    pub fn public_reason(&self) -> String {
        match self {
            AuthError::Header(_) => {
                "the token's header is unreadable or names an unsupported algorithm".to_owned()
            }
            AuthError::Claims(gangplank_core::agent::ClaimsError::Issuer(_)) => {
                "the token's issuer is not trusted".to_owned()
            }
            other => other.to_string(),
        }
    }
}

/// One trusted key and the only algorithm it verifies.
#[derive(Clone)]
struct TrustedKey {
    alg: Algorithm,
    kid: Option<String>,
    key: DecodingKey,
}

/// A PEM file, parsed again whenever its modification time or size changes.
struct PemFile {
    path: PathBuf,
    seen: Option<(SystemTime, u64)>,
    key: Option<TrustedKey>,
}

struct JwksCache {
    url: String,
    keys: Vec<TrustedKey>,
    fetched: Option<Instant>,
}

/// How often the JWKS is fetched again, and the least time between refetches forced by an
/// unknown `kid` (so a flood of bad tokens cannot make the agent hammer the server).
const JWKS_MAX_AGE: Duration = Duration::from_secs(300);
const JWKS_MIN_REFETCH: Duration = Duration::from_secs(10);

pub struct Verifier {
    pem: Mutex<Vec<PemFile>>,
    jwks: Option<tokio::sync::Mutex<JwksCache>>,
    policy: ClaimsPolicy,
    /// jti → exp (Unix seconds); entries leave once expired.
    seen_jti: Mutex<HashMap<String, i64>>,
}

impl Verifier {
    pub fn new(config: &AuthConfig) -> Verifier {
        Verifier {
            pem: Mutex::new(
                config
                    .public_keys
                    .iter()
                    .map(|path| PemFile {
                        path: path.clone(),
                        seen: None,
                        key: None,
                    })
                    .collect(),
            ),
            jwks: config.jwks_url.clone().map(|url| {
                tokio::sync::Mutex::new(JwksCache {
                    url,
                    keys: Vec::new(),
                    fetched: None,
                })
            }),
            policy: ClaimsPolicy {
                audience: config.audience.clone(),
                issuers: config.issuers.clone(),
                require_jti: config.require_jti,
            },
            seen_jti: Mutex::new(HashMap::new()),
        }
    }

    /// Verifies an `Authorization` header value. `consume` records the token's `jti`, so the
    /// same token cannot deploy twice; reads (status polls) pass `false`.
    pub async fn verify(
        &self,
        authorization: Option<&str>,
        consume: bool,
    ) -> Result<Map<String, Value>, AuthError> {
        let token = bearer(authorization.unwrap_or_default()).ok_or(AuthError::Missing)?;
        let header = jsonwebtoken::decode_header(token).map_err(AuthError::Header)?;
        let mut candidates = self.pem_keys(header.alg);
        if let Some(jwks) = &self.jwks {
            candidates.extend(
                self.jwks_keys(jwks, header.alg, header.kid.as_deref())
                    .await,
            );
        }
        if candidates.is_empty() {
            return Err(AuthError::NoKey(header.alg));
        }
        let claims = candidates
            .iter()
            .find_map(|k| {
                jsonwebtoken::decode::<Map<String, Value>>(token, &k.key, &validation(k.alg))
                    .ok()
                    .map(|data| data.claims)
            })
            .ok_or(AuthError::Signature)?;
        let now = unix_now();
        let (jti, exp) = check_claims(&claims, &self.policy, now)?;
        if consume && let Some(jti) = jti {
            let mut seen = self.seen_jti.lock().unwrap_or_else(|p| p.into_inner());
            if seen.len() > 10_000 {
                seen.retain(|_, exp| *exp > now);
            }
            if seen.get(&jti).is_some_and(|exp| *exp > now) {
                return Err(AuthError::Replayed);
            }
            seen.insert(jti, exp);
        }
        Ok(claims)
    }

    /// The PEM keys pinned to `alg`, re-reading files that changed (the seed re-reads its key
    /// on every request; a stat is enough to notice a rotation).
    fn pem_keys(&self, alg: Algorithm) -> Vec<TrustedKey> {
        let mut files = self.pem.lock().unwrap_or_else(|p| p.into_inner());
        let mut keys = Vec::new();
        for file in files.iter_mut() {
            let stamp = std::fs::metadata(&file.path)
                .ok()
                .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
            if stamp != file.seen {
                file.seen = stamp;
                file.key = stamp
                    .and_then(|_| std::fs::read(&file.path).ok())
                    .and_then(|pem| {
                        let key = parse_pem(&pem);
                        if key.is_none() {
                            tracing::warn!(path = %file.path.display(), "the public key file holds no RSA, P-256 or Ed25519 public key");
                        }
                        key
                    });
            }
            if let Some(key) = &file.key
                && key.alg == alg
            {
                keys.push(key.clone());
            }
        }
        keys
    }

    async fn jwks_keys(
        &self,
        jwks: &tokio::sync::Mutex<JwksCache>,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> Vec<TrustedKey> {
        let mut cache = jwks.lock().await;
        let known = |cache: &JwksCache| {
            kid.is_none_or(|kid| cache.keys.iter().any(|k| k.kid.as_deref() == Some(kid)))
        };
        let age = cache.fetched.map(|at| at.elapsed());
        let stale = age.is_none_or(|age| age > JWKS_MAX_AGE);
        let unknown_kid = !known(&cache) && age.is_none_or(|age| age > JWKS_MIN_REFETCH);
        if stale || unknown_kid {
            match self.fetch_jwks(&cache.url).await {
                Ok(keys) => cache.keys = keys,
                Err(error) => tracing::warn!(url = %cache.url, %error, "fetching the JWKS failed"),
            }
            cache.fetched = Some(Instant::now());
        }
        cache
            .keys
            .iter()
            .filter(|k| k.alg == alg && (kid.is_none() || k.kid.as_deref() == kid))
            .cloned()
            .collect()
    }

    async fn fetch_jwks(&self, url: &str) -> anyhow::Result<Vec<TrustedKey>> {
        let set: JwkSet = crate::http_client()
            .get(url)
            .timeout(Duration::from_secs(10))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(set
            .keys
            .iter()
            .filter_map(|jwk| {
                // The algorithm follows from the key's type: a JWKS cannot widen it.
                let alg = match &jwk.algorithm {
                    AlgorithmParameters::RSA(_) => Algorithm::RS256,
                    AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                        Algorithm::ES256
                    }
                    AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                        Algorithm::EdDSA
                    }
                    _ => return None,
                };
                Some(TrustedKey {
                    alg,
                    kid: jwk.common.key_id.clone(),
                    key: DecodingKey::from_jwk(jwk).ok()?,
                })
            })
            .collect())
    }
}

/// The seed's header rule: split on the first space into exactly two parts, the scheme
/// compared case-insensitively, the token taken as is.
fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

type PemParser = fn(&[u8]) -> jsonwebtoken::errors::Result<DecodingKey>;

/// The key in a PEM file and the one algorithm it may verify.
fn parse_pem(pem: &[u8]) -> Option<TrustedKey> {
    let attempts: [(Algorithm, PemParser); 3] = [
        (Algorithm::RS256, DecodingKey::from_rsa_pem),
        (Algorithm::ES256, DecodingKey::from_ec_pem),
        (Algorithm::EdDSA, DecodingKey::from_ed_pem),
    ];
    attempts.into_iter().find_map(|(alg, parse)| {
        parse(pem).ok().map(|key| TrustedKey {
            alg,
            kid: None,
            key,
        })
    })
}

/// Signature only: the claims are judged by `check_claims`, with no leeway.
fn validation(alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    validation
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bearer_follows_the_seed() {
        assert_eq!(super::bearer("Bearer abc"), Some("abc"));
        assert_eq!(super::bearer("bEaReR abc"), Some("abc"));
        assert_eq!(super::bearer("Bearer  abc"), Some(" abc"));
        assert_eq!(super::bearer("Bearer"), None);
        assert_eq!(super::bearer("Basic abc"), None);
        assert_eq!(super::bearer(""), None);
    }
}
