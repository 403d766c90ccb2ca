//! A small OCI distribution client on reqwest: the `/v2/` challenge flow for Basic and Bearer
//! token services (several scopes in one token request, which a cross-repository mount needs),
//! tag → digest by HEAD, tag listing that follows `Link` pages, manifests as exact bytes, blob
//! upload, mount with a fallback to a streamed copy, copies of images and image indexes by
//! digest (`contents` reads what a manifest refers to), a per-client concurrency limit, and
//! 429 answered by waiting for `Retry-After`.
//!
//! Written on reqwest rather than oci-client because that crate asks for one repository scope
//! per token, so a mount under token auth fails (oras-project/rust-oci-client#235).

mod auth;
mod client;
mod contents;

pub use auth::Credentials;
pub use client::{Client, CopyReport, Manifest, OciError, referenced_blobs};
pub use contents::MAX_INDEX_CHILDREN;

/// The manifest media types asked for when resolving or pulling.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}
