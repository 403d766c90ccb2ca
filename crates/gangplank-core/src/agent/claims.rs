//! Which verified token claims the agent accepts. The signature is checked elsewhere (by a
//! JWT library with the algorithm pinned per key); this is the policy on what it says.

use serde_json::{Map, Value};

/// The longest a token may live: a leaked token is worth at most this much.
pub const MAX_LIFETIME_SECS: i64 = 15 * 60;

/// What the agent requires of a token's claims.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimsPolicy {
    /// When set, `aud` must contain it.
    pub audience: Option<String>,
    /// When set, `iss` must equal one of these.
    pub issuers: Vec<String>,
    /// Refuse tokens without a `jti` (which disables replay protection for them).
    pub require_jti: bool,
}

/// Why claims were refused. All of them answer 401; the text goes to the log only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("the token has no numeric exp")]
    MissingExp,
    #[error("the token expired at {0}")]
    Expired(i64),
    #[error("the token expires more than 15 minutes from now ({0})")]
    TooLong(i64),
    #[error("the token is not valid before {0}")]
    NotYetValid(i64),
    #[error("the token has no string iss")]
    MissingIssuer,
    #[error("the token's issuer {0:?} is not trusted")]
    Issuer(String),
    #[error("the token's audience does not include {0:?}")]
    Audience(String),
    #[error("the token has no jti")]
    MissingJti,
    #[error("the token's {0} claim is malformed")]
    Malformed(&'static str),
}

/// Checks claims at `now` (Unix seconds). Returns the `jti` and `exp` for the replay cache.
pub fn check_claims(
    claims: &Map<String, Value>,
    policy: &ClaimsPolicy,
    now: i64,
) -> Result<(Option<String>, i64), ClaimsError> {
    let exp = numeric(claims, "exp")?.ok_or(ClaimsError::MissingExp)?;
    if exp <= now {
        return Err(ClaimsError::Expired(exp));
    }
    if exp > now + MAX_LIFETIME_SECS {
        return Err(ClaimsError::TooLong(exp));
    }
    if let Some(nbf) = numeric(claims, "nbf")?
        && nbf > now
    {
        return Err(ClaimsError::NotYetValid(nbf));
    }
    // deployer-service requires a string `iss` (any value); so do we.
    let Some(Value::String(iss)) = claims.get("iss") else {
        return Err(ClaimsError::MissingIssuer);
    };
    if !policy.issuers.is_empty() && !policy.issuers.iter().any(|i| i == iss) {
        return Err(ClaimsError::Issuer(iss.clone()));
    }
    if let Some(audience) = &policy.audience {
        let listed = match claims.get("aud") {
            Some(Value::String(aud)) => aud == audience,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        };
        if !listed {
            return Err(ClaimsError::Audience(audience.clone()));
        }
    }
    let jti = match claims.get("jti") {
        None => None,
        Some(Value::String(jti)) if !jti.is_empty() => Some(jti.clone()),
        Some(_) => return Err(ClaimsError::Malformed("jti")),
    };
    if jti.is_none() && policy.require_jti {
        return Err(ClaimsError::MissingJti);
    }
    Ok((jti, exp))
}

/// A NumericDate claim: absent is `None`, anything but a number is malformed.
fn numeric(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, ClaimsError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.floor() as i64)
            })
            .map(Some)
            .ok_or(ClaimsError::Malformed(name)),
        Some(_) => Err(ClaimsError::Malformed(name)),
    }
}
