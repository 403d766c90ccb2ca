//! Sealing secrets at rest (webhook signing keys now, registry credentials later): AES-256-GCM
//! with a random nonce per value, bound by associated data to the record it belongs to, so a
//! sealed value copied onto another row does not open.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use aws_lc_rs::aead::{AES_256_GCM, Aad, Nonce, RandomizedNonceKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::{ExposeSecret, SecretString};

const VERSION_PREFIX: &str = "v1:";
const NONCE_LEN: usize = 12;

/// The server's sealing key.
pub struct SecretBox {
    key: RandomizedNonceKey,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox([redacted])")
    }
}

/// A sealed value did not open: wrong key, wrong record, or damaged.
#[derive(Debug, thiserror::Error)]
#[error("a stored secret could not be decrypted (was the secret key changed?)")]
pub struct OpenError;

impl SecretBox {
    /// The configured key (base64 of 32 bytes), or the one in `<data_dir>/secret-key`, created
    /// with mode 0600 on first start.
    pub fn load(configured: Option<&SecretString>, data_dir: &Path) -> anyhow::Result<Self> {
        let bytes = match configured {
            Some(key) => BASE64
                .decode(key.expose_secret().trim())
                .context("GANGPLANK_SECRET_KEY is not base64")?,
            None => key_file(&data_dir.join("secret-key"))?,
        };
        if bytes.len() != 32 {
            bail!("the secret key must be 32 bytes (base64-encoded)");
        }
        let key = RandomizedNonceKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| anyhow::anyhow!("the secret key was refused"))?;
        Ok(SecretBox { key })
    }

    /// Seals `plain` for the record named by `context`.
    pub fn seal(&self, context: &str, plain: &[u8]) -> String {
        let mut data = plain.to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(context.as_bytes()), &mut data)
            .expect("AES-GCM sealing does not fail for in-memory input");
        let mut out = nonce.as_ref().to_vec();
        out.extend_from_slice(&data);
        format!("{VERSION_PREFIX}{}", BASE64.encode(out))
    }

    /// Opens a value sealed for `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, OpenError> {
        let encoded = sealed.strip_prefix(VERSION_PREFIX).ok_or(OpenError)?;
        let mut data = BASE64.decode(encoded).map_err(|_| OpenError)?;
        if data.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let mut body = data.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&data).map_err(|_| OpenError)?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut body)
            .map_err(|_| OpenError)?;
        Ok(plain.to_vec())
    }
}

/// Random bytes from the system's secure source.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random source works");
    bytes
}

fn key_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path.exists() {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return BASE64
            .decode(text.trim())
            .with_context(|| format!("{} is not base64", path.display()));
    }
    let key = random_bytes(32);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(file, "{}", BASE64.encode(&key))?;
    file.sync_all()?;
    tracing::info!(path = %path.display(), "generated the secret key (back it up: sealed secrets need it)");
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_context_binding() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = SecretBox::load(None, dir.path()).unwrap();
        let sealed = secrets.seal("webhook:acme/a", b"key bytes");
        assert!(!sealed.contains("key bytes"));
        assert_eq!(
            secrets.open("webhook:acme/a", &sealed).unwrap(),
            b"key bytes"
        );
        assert!(
            secrets.open("webhook:acme/b", &sealed).is_err(),
            "bound to its record"
        );
        let again = SecretBox::load(None, dir.path()).unwrap();
        assert_eq!(
            again.open("webhook:acme/a", &sealed).unwrap(),
            b"key bytes",
            "key persisted"
        );
        let mode = std::fs::metadata(dir.path().join("secret-key")).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
        assert!(secrets.open("webhook:acme/a", "v1:AAAA").is_err());
    }
}
