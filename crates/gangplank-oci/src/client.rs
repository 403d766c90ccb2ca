//! The registry client: one registry host, its credentials, and the calls Gangplank needs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, LOCATION, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use tokio::sync::Semaphore;

use crate::auth::{Challenge, Credentials, parse_challenge};
use crate::contents::{Contents, contents};
use crate::{MANIFEST_ACCEPT, sha256_digest};

/// Requests in flight at once, per client (per registry).
const CONCURRENCY: usize = 8;
/// How many 429 answers one call sits out before giving up.
const MAX_THROTTLED: usize = 5;
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Why a registry call failed; the message names the registry.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("registry {registry}: {message}")]
    Transport { registry: String, message: String },
    #[error("registry {registry}: {method} {path} answered {status}: {body}")]
    Status {
        registry: String,
        method: String,
        path: String,
        status: u16,
        body: String,
    },
    #[error("registry {registry}: authentication failed: {message}")]
    Auth { registry: String, message: String },
    #[error("registry {registry}: {message}")]
    Invalid { registry: String, message: String },
    /// A manifest Gangplank does not copy (a nested or too large image index, a manifest
    /// without config or layers): asking again will not help.
    #[error("registry {registry}: {message}")]
    Unsupported { registry: String, message: String },
}

/// A manifest as the registry stores it: exact bytes, so its digest never changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub digest: String,
}

/// A client for one registry.
pub struct Client {
    http: reqwest::Client,
    host: String,
    /// `https://host`, or for an insecure registry whichever of https (certificate not
    /// verified) and http it answers on, found by one probe on first use.
    base: tokio::sync::OnceCell<String>,
    insecure: bool,
    creds: Option<Credentials>,
    limit: Arc<Semaphore>,
    challenge: Mutex<Option<Challenge>>,
    tokens: Mutex<HashMap<String, String>>,
}

impl Client {
    /// A client for `host` (`registry.example.com`, `127.0.0.1:5000`). `insecure` allows an
    /// unverified TLS certificate or plain HTTP (local and test registries): https is tried
    /// first, once.
    pub fn new(
        http: reqwest::Client,
        host: &str,
        creds: Option<Credentials>,
        insecure: bool,
    ) -> Client {
        let http = if insecure {
            reqwest::Client::builder()
                .danger_accept_invalid_certs(true)
                .build()
                .unwrap_or(http)
        } else {
            http
        };
        let base = tokio::sync::OnceCell::new();
        if !insecure {
            let _ = base.set(format!("https://{host}"));
        }
        Client {
            http,
            host: host.to_owned(),
            base,
            insecure,
            creds,
            limit: Arc::new(Semaphore::new(CONCURRENCY)),
            challenge: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// The scheme and host requests go to (see `base`).
    async fn base(&self) -> &str {
        self.base
            .get_or_init(|| async {
                let https = format!("https://{}", self.host);
                let answered = self.http.get(format!("{https}/v2/")).send().await.is_ok();
                if answered || !self.insecure {
                    https
                } else {
                    format!("http://{}", self.host)
                }
            })
            .await
    }

    fn transport(&self, message: impl std::fmt::Display) -> OciError {
        OciError::Transport {
            registry: self.host.clone(),
            message: message.to_string(),
        }
    }

    async fn status_error(&self, method: &Method, path: &str, response: Response) -> OciError {
        let status = response.status().as_u16();
        let body: String = response
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect();
        if status == 401 || status == 403 {
            return OciError::Auth {
                registry: self.host.clone(),
                message: format!("{method} {path} answered {status}: {}", body.trim()),
            };
        }
        OciError::Status {
            registry: self.host.clone(),
            method: method.to_string(),
            path: path.to_owned(),
            status,
            body: body.trim().to_owned(),
        }
    }

    /// Sends a request built by `build` (called again for each retry), authenticating as the
    /// registry asks for `scopes`, and sitting out 429s.
    async fn send(
        &self,
        method: Method,
        path: &str,
        scopes: &[String],
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, OciError> {
        let _permit = self.limit.acquire().await.map_err(|e| self.transport(e))?;
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base().await)
        };
        let mut throttled = 0;
        let mut challenged = false;
        loop {
            let mut request = build(self.http.request(method.clone(), &url));
            if let Some(header) = self.authorization(scopes).await? {
                request = request.header(AUTHORIZATION, header);
            }
            let response = request
                .send()
                .await
                .map_err(|e| self.transport(describe(&e)))?;
            match response.status() {
                StatusCode::UNAUTHORIZED if !challenged => {
                    challenged = true;
                    let challenge = response
                        .headers()
                        .get(WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_challenge)
                        .ok_or_else(|| OciError::Auth {
                            registry: self.host.clone(),
                            message: "401 without a Basic or Bearer challenge".to_owned(),
                        })?;
                    *self
                        .challenge
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(challenge);
                    self.tokens
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .clear();
                }
                StatusCode::TOO_MANY_REQUESTS if throttled < MAX_THROTTLED => {
                    throttled += 1;
                    let wait = retry_after(response.headers())
                        .unwrap_or(Duration::from_millis(250 << throttled))
                        .min(MAX_RETRY_AFTER);
                    tokio::time::sleep(wait).await;
                }
                _ => return Ok(response),
            }
        }
    }

    /// The `Authorization` value for `scopes` under the last challenge, fetching a token when
    /// the registry uses a token service.
    async fn authorization(&self, scopes: &[String]) -> Result<Option<String>, OciError> {
        let challenge = self
            .challenge
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.creds.as_ref().map(Credentials::basic)),
            Some(Challenge::Bearer { realm, service }) => {
                let mut sorted = scopes.to_vec();
                sorted.sort();
                let key = sorted.join(" ");
                if let Some(token) = self
                    .tokens
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get(&key)
                {
                    return Ok(Some(format!("Bearer {token}")));
                }
                let mut query: Vec<(&str, &str)> = Vec::new();
                if let Some(service) = &service {
                    query.push(("service", service));
                }
                for scope in &sorted {
                    query.push(("scope", scope));
                }
                let mut request = self.http.get(&realm).query(&query);
                if let Some(creds) = &self.creds {
                    request = request.header(AUTHORIZATION, creds.basic());
                }
                let response = request
                    .send()
                    .await
                    .map_err(|e| self.transport(describe(&e)))?;
                if !response.status().is_success() {
                    return Err(OciError::Auth {
                        registry: self.host.clone(),
                        message: format!(
                            "the token service at {realm} answered {}",
                            response.status()
                        ),
                    });
                }
                let body: serde_json::Value =
                    response.json().await.map_err(|e| self.transport(e))?;
                let token = body["token"]
                    .as_str()
                    .or(body["access_token"].as_str())
                    .ok_or_else(|| OciError::Auth {
                        registry: self.host.clone(),
                        message: "the token service answered without a token".to_owned(),
                    })?
                    .to_owned();
                self.tokens
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(key, token.clone());
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// Checks the registry answers and the credentials are accepted.
    pub async fn ping(&self) -> Result<(), OciError> {
        let response = self.send(Method::GET, "/v2/", &[], |r| r).await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(self.status_error(&Method::GET, "/v2/", response).await)
        }
    }

    /// The digest `tag` points at (an image index's own digest for multi-platform images), by
    /// HEAD; falls back to GET and hashing when the registry sends no digest header.
    pub async fn resolve_digest(&self, repository: &str, tag: &str) -> Result<String, OciError> {
        let path = format!("/v2/{repository}/manifests/{tag}");
        let scopes = [pull(repository)];
        let response = self
            .send(Method::HEAD, &path, &scopes, |r| {
                r.header(ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        if !response.status().is_success() {
            return Err(self.status_error(&Method::HEAD, &path, response).await);
        }
        if let Some(digest) = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            return Ok(digest.to_owned());
        }
        Ok(self.get_manifest(repository, tag).await?.digest)
    }

    /// The manifest `reference` (tag or digest) names, as exact bytes.
    pub async fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Manifest, OciError> {
        let path = format!("/v2/{repository}/manifests/{reference}");
        let response = self
            .send(Method::GET, &path, &[pull(repository)], |r| {
                r.header(ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        if !response.status().is_success() {
            return Err(self.status_error(&Method::GET, &path, response).await);
        }
        let media_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport(e))?
            .to_vec();
        let digest = sha256_digest(&bytes);
        if reference.starts_with("sha256:") && reference != digest {
            return Err(OciError::Invalid {
                registry: self.host.clone(),
                message: format!("manifest {reference} arrived with digest {digest}"),
            });
        }
        Ok(Manifest {
            media_type,
            bytes,
            digest,
        })
    }

    /// Stores `manifest` under `reference` (a tag or its digest), byte for byte.
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        manifest: &Manifest,
    ) -> Result<String, OciError> {
        self.put_manifest_confirmed(repository, reference, manifest)
            .await?;
        Ok(manifest.digest.clone())
    }

    /// [`Client::put_manifest`], saying whether the registry confirmed the digest it stored
    /// (its `Docker-Content-Digest` answer, which registries may leave out): true then, and
    /// the caller needs no look at the tag to know what it names now.
    pub async fn put_manifest_confirmed(
        &self,
        repository: &str,
        reference: &str,
        manifest: &Manifest,
    ) -> Result<bool, OciError> {
        let path = format!("/v2/{repository}/manifests/{reference}");
        let response = self
            .send(Method::PUT, &path, &[push(repository)], |r| {
                r.header(CONTENT_TYPE, &manifest.media_type)
                    .body(manifest.bytes.clone())
            })
            .await?;
        if !response.status().is_success() {
            return Err(self.status_error(&Method::PUT, &path, response).await);
        }
        // The registry must store the exact bytes; a different digest means it did not.
        let Some(stored) = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        else {
            return Ok(false);
        };
        if stored != manifest.digest {
            return Err(OciError::Invalid {
                registry: self.host.clone(),
                message: format!(
                    "{repository}:{reference} was stored as {stored}, not {}",
                    manifest.digest
                ),
            });
        }
        Ok(true)
    }

    /// The digest `tag` points at, `None` when the repository has no such tag (or no such
    /// repository yet).
    pub async fn tag_digest(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<String>, OciError> {
        match self.resolve_digest(repository, tag).await {
            Ok(digest) => Ok(Some(digest)),
            Err(OciError::Status { status: 404, .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The manifest `reference` names, `None` when the repository has no such tag (or no such
    /// repository yet).
    pub async fn find_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<Manifest>, OciError> {
        match self.get_manifest(repository, reference).await {
            Ok(manifest) => Ok(Some(manifest)),
            Err(OciError::Status { status: 404, .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Every tag of `repository`, or none when the repository does not exist yet.
    pub async fn all_tags(&self, repository: &str) -> Result<Vec<String>, OciError> {
        match self.list_tags(repository, 1000).await {
            Ok(tags) => Ok(tags),
            Err(OciError::Status { status: 404, .. }) => Ok(Vec::new()),
            Err(error) => Err(error),
        }
    }

    /// Removes `tag` from `repository` (`DELETE /v2/<name>/manifests/<tag>`); a tag already
    /// gone is not an error. Registries that refuse tag deletion answer 400/405 (an error).
    pub async fn delete_tag(&self, repository: &str, tag: &str) -> Result<(), OciError> {
        let path = format!("/v2/{repository}/manifests/{tag}");
        let response = self
            .send(Method::DELETE, &path, &[push(repository)], |r| r)
            .await?;
        match response.status() {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Ok(()),
            _ => Err(self.status_error(&Method::DELETE, &path, response).await),
        }
    }

    /// Every tag of `repository`, following `Link: <…>; rel="next"` pages of `page` tags.
    pub async fn list_tags(&self, repository: &str, page: usize) -> Result<Vec<String>, OciError> {
        let mut tags = Vec::new();
        let mut next = Some(format!("/v2/{repository}/tags/list?n={page}"));
        while let Some(path) = next.take() {
            let response = self
                .send(Method::GET, &path, &[pull(repository)], |r| r)
                .await?;
            if !response.status().is_success() {
                return Err(self.status_error(&Method::GET, &path, response).await);
            }
            next = response
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            let body: serde_json::Value = response.json().await.map_err(|e| self.transport(e))?;
            tags.extend(
                body["tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(str::to_owned)),
            );
        }
        Ok(tags)
    }

    /// Whether the repository has the blob.
    pub async fn blob_exists(&self, repository: &str, digest: &str) -> Result<bool, OciError> {
        let path = format!("/v2/{repository}/blobs/{digest}");
        let response = self
            .send(Method::HEAD, &path, &[pull(repository)], |r| r)
            .await?;
        match response.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.status_error(&Method::HEAD, &path, response).await),
        }
    }

    /// Fetches a blob.
    pub async fn get_blob(&self, repository: &str, digest: &str) -> Result<Vec<u8>, OciError> {
        let path = format!("/v2/{repository}/blobs/{digest}");
        let response = self
            .send(Method::GET, &path, &[pull(repository)], |r| r)
            .await?;
        if !response.status().is_success() {
            return Err(self.status_error(&Method::GET, &path, response).await);
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport(e))?
            .to_vec();
        if sha256_digest(&bytes) != digest {
            return Err(OciError::Invalid {
                registry: self.host.clone(),
                message: format!("blob {digest} arrived with another digest"),
            });
        }
        Ok(bytes)
    }

    /// Uploads a blob in one request (POST to open the upload, PUT with the digest); returns
    /// its digest.
    pub async fn push_blob(&self, repository: &str, bytes: &[u8]) -> Result<String, OciError> {
        let digest = sha256_digest(bytes);
        let path = format!("/v2/{repository}/blobs/uploads/");
        let scopes = [push(repository)];
        let response = self.send(Method::POST, &path, &scopes, |r| r).await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(self.status_error(&Method::POST, &path, response).await);
        }
        let location = self.location(response.headers()).await?;
        self.finish_upload(&location, &digest, bytes, &scopes)
            .await?;
        Ok(digest)
    }

    async fn finish_upload(
        &self,
        location: &str,
        digest: &str,
        bytes: &[u8],
        scopes: &[String],
    ) -> Result<(), OciError> {
        let separator = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{separator}digest={digest}");
        let body = bytes.to_vec();
        let response = self
            .send(Method::PUT, &url, scopes, |r| {
                r.header(CONTENT_TYPE, "application/octet-stream")
                    .body(body.clone())
            })
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(self.status_error(&Method::PUT, &url, response).await);
        }
        Ok(())
    }

    async fn location(&self, headers: &HeaderMap) -> Result<String, OciError> {
        let location = headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| OciError::Invalid {
                registry: self.host.clone(),
                message: "an upload was opened without a Location".to_owned(),
            })?;
        Ok(if location.starts_with('/') {
            format!("{}{location}", self.base().await)
        } else {
            location.to_owned()
        })
    }

    /// Mounts a blob from another repository of the same registry; `Ok(false)` when the
    /// registry declines (it then opened an upload, into which the bytes are streamed).
    pub async fn mount_or_copy_blob(
        &self,
        from: &str,
        to: &str,
        digest: &str,
    ) -> Result<bool, OciError> {
        Ok(self.mount_or_stream(from, to, digest).await?.is_none())
    }

    /// As `mount_or_copy_blob`: `None` when mounted, else the bytes streamed.
    async fn mount_or_stream(
        &self,
        from: &str,
        to: &str,
        digest: &str,
    ) -> Result<Option<u64>, OciError> {
        let path = format!("/v2/{to}/blobs/uploads/?mount={digest}&from={from}");
        // One token for both repositories: a mount needs pull on the source too.
        let scopes = [push(to), pull(from)];
        let response = self.send(Method::POST, &path, &scopes, |r| r).await?;
        match response.status() {
            StatusCode::CREATED => Ok(None),
            StatusCode::ACCEPTED => {
                let location = self.location(response.headers()).await?;
                let moved = self
                    .stream_into(self, from, &location, digest, &scopes)
                    .await?;
                Ok(Some(moved))
            }
            _ => Err(self.status_error(&Method::POST, &path, response).await),
        }
    }

    /// Streams blob `digest` of `source`'s repository `from` into the upload at `location` on
    /// this registry; returns the bytes moved.
    async fn stream_into(
        &self,
        source: &Client,
        from: &str,
        location: &str,
        digest: &str,
        scopes: &[String],
    ) -> Result<u64, OciError> {
        let path = format!("/v2/{from}/blobs/{digest}");
        let download = source
            .send(Method::GET, &path, &[pull(from)], |r| r)
            .await?;
        if !download.status().is_success() {
            return Err(source.status_error(&Method::GET, &path, download).await);
        }
        let size = download.content_length();
        let moved = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = moved.clone();
        let stream = futures::StreamExt::map(download.bytes_stream(), move |chunk| {
            if let Ok(bytes) = &chunk {
                counter.fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
            chunk
        });
        // A streamed body cannot be sent twice: the upload gets no retry on 401 or 429, which
        // is fine since the upload session was authorised when it was opened.
        let body = std::sync::Mutex::new(Some(reqwest::Body::wrap_stream(stream)));
        let separator = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{separator}digest={digest}");
        let response = self
            .send(Method::PUT, &url, scopes, |r| {
                let r = r.header(CONTENT_TYPE, "application/octet-stream");
                let r = match size {
                    Some(size) => r.header(reqwest::header::CONTENT_LENGTH, size),
                    None => r,
                };
                match body
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take()
                {
                    Some(body) => r.body(body),
                    None => r,
                }
            })
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(self.status_error(&Method::PUT, &url, response).await);
        }
        Ok(moved.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Copies `from_repo:reference` of `source` to `to_repo:to_tag` here, the manifest's bytes
    /// (and so its digest) unchanged: what it references ([`Client::copy_content`]), then the
    /// manifest.
    pub async fn copy_image(
        &self,
        source: &Client,
        from_repo: &str,
        reference: &str,
        to_repo: &str,
        to_tag: &str,
    ) -> Result<CopyReport, OciError> {
        let report = self
            .copy_content(source, from_repo, reference, to_repo)
            .await?;
        self.put_manifest(to_repo, to_tag, &report.manifest).await?;
        Ok(report)
    }

    /// Copies what `from_repo:reference` of `source` references into `to_repo` here, and
    /// returns its manifest for the caller to store under the tag it chooses (a promotion
    /// writes it straight under the live tag). See [`Client::copy_content_of`].
    pub async fn copy_content(
        &self,
        source: &Client,
        from_repo: &str,
        reference: &str,
        to_repo: &str,
    ) -> Result<CopyReport, OciError> {
        let manifest = source.get_manifest(from_repo, reference).await?;
        self.copy_content_of(source, from_repo, manifest, to_repo, &[])
            .await
    }

    /// Copies what `manifest` (of `source`'s `from_repo`) references into `to_repo` here, all
    /// but the manifest itself: an image's blobs; an image index's or manifest list's child
    /// manifests (stored by digest) and their blobs. Blobs in `present` are known to be there
    /// (a promotion passes the live image's, which successive versions mostly share); on the
    /// same registry each other blob is mounted at once (a registry answers the mount of a blob
    /// it has like any other); from another registry it is looked for first, then streamed.
    pub async fn copy_content_of(
        &self,
        source: &Client,
        from_repo: &str,
        manifest: Manifest,
        to_repo: &str,
        present: &[String],
    ) -> Result<CopyReport, OciError> {
        let (children, blobs) = match source.contents(from_repo, &manifest)? {
            Contents::Image(blobs) => (Vec::new(), blobs),
            Contents::Index(children) => source.read_children(from_repo, &children).await?,
        };
        let (known, unknown): (Vec<String>, Vec<String>) =
            blobs.into_iter().partition(|d| present.contains(d));
        let mut tally = self
            .copy_blobs(source, from_repo, to_repo, &unknown)
            .await?;
        let mut known = known;
        known.sort();
        known.dedup();
        tally.skipped += known.len();
        self.put_children(to_repo, &children).await?;
        Ok(tally.report(manifest))
    }

    /// What `manifest` of `repository` here refers to; `Unsupported` saying why when
    /// Gangplank does not copy it.
    fn contents(&self, repository: &str, manifest: &Manifest) -> Result<Contents, OciError> {
        contents(&manifest.media_type, &manifest.bytes)
            .map_err(|why| self.unsupported(format!("{repository}@{}: {why}", manifest.digest)))
    }

    /// The child manifests of an index of `repository` here, each named once, and the blobs
    /// they name. All are read before anything is written, so an index with a child that
    /// cannot be copied (an index itself: nested indexes are refused, not followed) is
    /// refused whole.
    async fn read_children(
        &self,
        repository: &str,
        children: &[String],
    ) -> Result<(Vec<Manifest>, Vec<String>), OciError> {
        let mut distinct = children.to_vec();
        distinct.sort();
        distinct.dedup();
        let manifests = futures::future::try_join_all(
            distinct
                .iter()
                .map(|digest| self.get_manifest(repository, digest)),
        )
        .await?;
        let mut blobs = Vec::new();
        for (digest, manifest) in distinct.iter().zip(&manifests) {
            let name = format!("{repository}@{digest}");
            // `get_manifest` checks sha256 digests only; a child under another algorithm
            // would be stored under a digest the index does not name.
            if manifest.digest != *digest {
                return Err(self.unsupported(format!(
                    "{name} arrived with digest {}: only sha256 children are copied",
                    manifest.digest
                )));
            }
            match self.contents(repository, manifest)? {
                Contents::Image(own) => blobs.extend(own),
                Contents::Index(_) => {
                    return Err(self.unsupported(format!(
                        "{name} is an image index inside an image index: nested indexes are not copied"
                    )));
                }
            }
        }
        Ok((manifests, blobs))
    }

    fn unsupported(&self, message: String) -> OciError {
        OciError::Unsupported {
            registry: self.host.clone(),
            message,
        }
    }

    /// Stores each child manifest of an index by its digest, side by side (their blobs are
    /// here already).
    async fn put_children(&self, repository: &str, children: &[Manifest]) -> Result<(), OciError> {
        futures::future::try_join_all(
            children
                .iter()
                .map(|child| self.put_manifest(repository, &child.digest, child)),
        )
        .await?;
        Ok(())
    }

    /// Copies each distinct blob of `blobs` once, side by side, each request waiting for a
    /// permit of `limit`: a promotion of a five-layer image costs two round trips, not twelve.
    /// Once, because two mounts of one blob into one repository at the same time can leave
    /// docker-registry's link to it empty for a moment, and a manifest stored then is refused
    /// as naming an unknown blob (children sharing a layer, a repeated empty layer).
    async fn copy_blobs(
        &self,
        source: &Client,
        from_repo: &str,
        to_repo: &str,
        blobs: &[String],
    ) -> Result<Tally, OciError> {
        let mut distinct = blobs.to_vec();
        distinct.sort();
        distinct.dedup();
        let same_registry = source.host == self.host;
        let copies = futures::future::try_join_all(
            distinct
                .iter()
                .map(|digest| self.copy_blob(source, from_repo, to_repo, digest, same_registry)),
        )
        .await?;
        Ok(copies.into_iter().fold(Tally::default(), Tally::count))
    }

    /// One blob of `copy_blobs`: mounted from the source repository on the same registry,
    /// else skipped when this repository has it, or streamed through.
    async fn copy_blob(
        &self,
        source: &Client,
        from_repo: &str,
        to_repo: &str,
        digest: &str,
        same_registry: bool,
    ) -> Result<BlobCopy, OciError> {
        if same_registry {
            return Ok(
                match self.mount_or_stream(from_repo, to_repo, digest).await? {
                    None => BlobCopy::Mounted,
                    Some(moved) => BlobCopy::Moved(moved),
                },
            );
        }
        if self.blob_exists(to_repo, digest).await? {
            return Ok(BlobCopy::Present);
        }
        let path = format!("/v2/{to_repo}/blobs/uploads/");
        let scopes = [push(to_repo)];
        let response = self.send(Method::POST, &path, &scopes, |r| r).await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(self.status_error(&Method::POST, &path, response).await);
        }
        let location = self.location(response.headers()).await?;
        let moved = self
            .stream_into(source, from_repo, &location, digest, &scopes)
            .await?;
        Ok(BlobCopy::Moved(moved))
    }
}

/// How one blob reached the target repository.
enum BlobCopy {
    Present,
    Mounted,
    Moved(u64),
}

/// The blobs an image manifest references, config first; none for an image index (its
/// children's are not read) or a manifest Gangplank does not copy.
pub fn referenced_blobs(manifest: &Manifest) -> Vec<String> {
    match contents(&manifest.media_type, &manifest.bytes) {
        Ok(Contents::Image(blobs)) => blobs,
        _ => Vec::new(),
    }
}

/// The blob copies of a copy, counted as `CopyReport` shows them.
#[derive(Default)]
struct Tally {
    bytes_moved: u64,
    mounted: usize,
    skipped: usize,
}

impl Tally {
    fn count(mut self, blob: BlobCopy) -> Tally {
        match blob {
            BlobCopy::Present => self.skipped += 1,
            BlobCopy::Mounted => self.mounted += 1,
            BlobCopy::Moved(bytes) => self.bytes_moved += bytes,
        }
        self
    }

    fn report(self, manifest: Manifest) -> CopyReport {
        CopyReport {
            digest: manifest.digest.clone(),
            bytes_moved: self.bytes_moved,
            mounted: self.mounted,
            skipped: self.skipped,
            manifest,
        }
    }
}

/// What a copy did; each distinct blob is counted once (for an image index, over all its
/// children).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    pub digest: String,
    /// Blob bytes that went through Gangplank.
    pub bytes_moved: u64,
    /// Blobs the registry mounted from the source repository (on one registry, every blob
    /// not known to be there).
    pub mounted: usize,
    /// Blobs the target had: known to the caller, or found there (from another registry).
    pub skipped: usize,
    /// The source's manifest, byte for byte (for an image index, the index); stored by
    /// `copy_image`, not by `copy_content`.
    pub manifest: Manifest,
}

fn pull(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

fn push(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// `Retry-After` in seconds (HTTP dates are not sent by registries in practice).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

/// The target of `<…>; rel="next"` in a `Link` header.
fn next_link(value: &str) -> Option<String> {
    value.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn link_headers() {
        assert_eq!(
            super::next_link(r#"</v2/a/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?last=b&n=2")
        );
        assert_eq!(super::next_link(r#"</x>; rel="prev""#), None);
    }
}
