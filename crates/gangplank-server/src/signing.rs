//! The server's own key pair for requests to host agents: ES256, generated on first start,
//! sealed at rest like every secret, its public half served as a JWKS at
//! `/.well-known/jwks.json`. Every replica signs with the oldest key, so they agree.

use anyhow::Context;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gangplank_store::{SigningKeyRow, Store};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::secrets::{SecretBox, context};

/// How long a token the server signs is valid: short, since each is made for one request.
const TOKEN_LIFETIME_SECS: i64 = 120;

pub struct ServerKeys {
    kid: String,
    key: EncodingKey,
    /// The JWKS document, ready to serve.
    pub jwks: Value,
}

impl std::fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerKeys {{ kid: {:?}, key: [redacted] }}", self.kid)
    }
}

impl ServerKeys {
    /// Loads the stored keys, generating the first one if there is none.
    pub async fn load(store: &Store, secrets: &SecretBox) -> anyhow::Result<ServerKeys> {
        let mut rows = store.signing_keys().await.context("reading signing keys")?;
        if rows.is_empty() {
            store
                .add_signing_key(generate(secrets)?)
                .await
                .context("storing the new signing key")?;
            rows = store.signing_keys().await.context("reading signing keys")?;
        }
        let oldest = rows.first().context("no signing key was stored")?;
        let pkcs8 = secrets
            .open(
                &context("signing-key", "", &oldest.id),
                &oldest.private_sealed,
            )
            .context("opening the signing key")?;
        let keys: Vec<Value> = rows
            .iter()
            .filter_map(|row| serde_json::from_str(&row.public_jwk).ok())
            .collect();
        Ok(ServerKeys {
            kid: oldest.id.clone(),
            key: EncodingKey::from_ec_der(&pkcs8),
            jwks: json!({ "keys": keys }),
        })
    }

    /// A token for one request to `audience` (an agent's URL), with a fresh `jti`.
    pub fn sign(&self, audience: &str, now_secs: i64) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let claims = json!({
            "iss": "gangplank",
            "aud": audience,
            "iat": now_secs,
            "exp": now_secs + TOKEN_LIFETIME_SECS,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        jsonwebtoken::encode(&header, &claims, &self.key).context("signing a token")
    }
}

fn generate(secrets: &SecretBox) -> anyhow::Result<SigningKeyRow> {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map_err(|_| anyhow::anyhow!("generating a P-256 key failed"))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .map_err(|_| anyhow::anyhow!("reading the generated key failed"))?;
    // An uncompressed point: 0x04, then 32 bytes of x and 32 of y.
    let point = pair.public_key().as_ref();
    anyhow::ensure!(point.len() == 65, "unexpected public key encoding");
    let id = uuid::Uuid::now_v7().simple().to_string();
    let jwk = json!({
        "kty": "EC",
        "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        "kid": id,
        "alg": "ES256",
        "use": "sig",
    });
    Ok(SigningKeyRow {
        private_sealed: secrets.seal(&context("signing-key", "", &id), pkcs8.as_ref()),
        id,
        alg: "ES256".to_owned(),
        public_jwk: jwk.to_string(),
        created_at: gangplank_store::now_millis(),
    })
}
