//! Sealing secrets at rest (webhook signing keys and headers, registry credentials, the
//! server's own keys): AES-256-GCM with a random nonce per value, bound by associated data to
//! the record it belongs to, so a sealed value copied onto another row does not open.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use aws_lc_rs::aead::{AES_256_GCM, Aad, Nonce, RandomizedNonceKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::{ExposeSecret, SecretString};

const NONCE_LEN: usize = 12;

/// The server's sealing key. Sealed values are `k1:<key id>:<base64 nonce ‖ ciphertext>`; the
/// key id (a hash prefix of the key) lets a start with the wrong key, and a rotation, be told
/// apart from damage.
pub struct SecretBox {
    key: RandomizedNonceKey,
    key_id: String,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox([redacted])")
    }
}

/// A sealed value did not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "a stored secret was sealed with master key {sealed}, but this server's master key is {current}"
    )]
    WrongKey { sealed: String, current: String },
    #[error("a stored secret is damaged or belongs to another record")]
    Damaged,
}

impl SecretBox {
    /// The configured key (base64 of 32 bytes), or the one in `<data_dir>/master-key`, created
    /// with mode 0600 on first start.
    pub fn load(configured: Option<&SecretString>, data_dir: &Path) -> anyhow::Result<Self> {
        let bytes = match configured {
            Some(key) => BASE64
                .decode(key.expose_secret().trim())
                .context("GANGPLANK_MASTER_KEY is not base64")?,
            None => key_file(&data_dir.join("master-key"))?,
        };
        SecretBox::from_key(&bytes)
    }

    /// A box over raw key bytes (32).
    pub fn from_key(bytes: &[u8]) -> anyhow::Result<Self> {
        if bytes.len() != 32 {
            bail!("the master key must be 32 bytes (base64-encoded)");
        }
        let key = RandomizedNonceKey::new(&AES_256_GCM, bytes)
            .map_err(|_| anyhow::anyhow!("the master key was refused"))?;
        Ok(SecretBox {
            key,
            key_id: key_id(bytes),
        })
    }

    /// This key's id.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The key id a sealed value names, if it has the sealed form.
    pub fn sealed_key_id(sealed: &str) -> Option<&str> {
        sealed
            .strip_prefix("k1:")?
            .split_once(':')
            .map(|(id, _)| id)
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
        format!("k1:{}:{}", self.key_id, BASE64.encode(out))
    }

    /// Opens a value sealed for `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, OpenError> {
        let rest = sealed.strip_prefix("k1:").ok_or(OpenError::Damaged)?;
        let (id, encoded) = rest.split_once(':').ok_or(OpenError::Damaged)?;
        if id != self.key_id {
            return Err(OpenError::WrongKey {
                sealed: id.to_owned(),
                current: self.key_id.clone(),
            });
        }
        let mut data = BASE64.decode(encoded).map_err(|_| OpenError::Damaged)?;
        if data.len() < NONCE_LEN {
            return Err(OpenError::Damaged);
        }
        let mut body = data.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&data).map_err(|_| OpenError::Damaged)?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut body)
            .map_err(|_| OpenError::Damaged)?;
        Ok(plain.to_vec())
    }
}

/// The associated data a sealed value is bound to: its kind and row.
pub fn context(kind: &str, org_id: &str, id: &str) -> String {
    format!("{kind}:{org_id}/{id}")
}

/// The server secret `id` (32 random bytes), generated and stored sealed on first use. It lives
/// in the database, not beside it, so every replica on one PostgreSQL shares it, and
/// `gangplank admin rotate-key` re-seals it with the rest (kind `server-secret`).
pub async fn server_secret(
    store: &gangplank_store::Store,
    secrets: &SecretBox,
    id: &str,
) -> anyhow::Result<Vec<u8>> {
    let context = context("server-secret", "", id);
    let sealed = match store.server_secret(id).await? {
        Some(sealed) => sealed,
        None => {
            let fresh = secrets.seal(&context, &random_bytes(32));
            store.add_server_secret(id, &fresh).await?
        }
    };
    secrets
        .open(&context, &sealed)
        .with_context(|| format!("opening the server secret {id}"))
}

/// Writes a new key file with mode 0600; fails if it exists.
pub fn write_key_file(path: &Path, key: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(file, "{}", BASE64.encode(key))?;
    file.sync_all()?;
    Ok(())
}

/// Creates `path` (and missing parents) readable only by its owner; an existing directory is
/// left as the operator made it.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// A key's id: the first 8 hex digits of its SHA-256 (safe to show; it does not reveal the key).
fn key_id(key: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(key)[..4])
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
    write_key_file(path, &key)?;
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
        let mode = std::fs::metadata(dir.path().join("master-key")).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
        assert!(secrets.open("webhook:acme/a", "k1:0000:AAAA").is_err());
        let other = tempfile::tempdir().unwrap();
        let wrong = SecretBox::load(None, other.path()).unwrap();
        let error = wrong
            .open("webhook:acme/a", &sealed)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(secrets.key_id()) && error.contains(wrong.key_id()),
            "{error}"
        );
        assert_eq!(SecretBox::sealed_key_id(&sealed), Some(secrets.key_id()));
    }
}
