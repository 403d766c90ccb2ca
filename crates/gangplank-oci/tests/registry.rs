//! The client against Debian's docker-registry (CNCF distribution), anonymous and with
//! htpasswd: it pushes a tiny image of its own, then resolves, lists, copies and mounts, and
//! `skopeo` confirms the digests independently.

use gangplank_oci::{Client, Credentials, Manifest, OciError, sha256_digest};
use gangplank_testkit::Registry;

/// A minimal valid image: a config and one (tiny) layer; returns the manifest.
async fn push_image(client: &Client, repository: &str, tag: &str, content: &str) -> Manifest {
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Labels":{{"content":"{content}"}}}},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
    );
    let layer = format!("layer {content}").into_bytes();
    let config_digest = client
        .push_blob(repository, config.as_bytes())
        .await
        .unwrap();
    let layer_digest = client.push_blob(repository, &layer).await.unwrap();
    let bytes = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_digest}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    )
    .into_bytes();
    let manifest = Manifest {
        media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
        digest: sha256_digest(&bytes),
        bytes,
    };
    client
        .put_manifest(repository, tag, &manifest)
        .await
        .unwrap();
    manifest
}

#[tokio::test]
async fn resolves_lists_copies_and_mounts_on_an_anonymous_registry() {
    let registry = Registry::start(None);
    let client = Client::new(reqwest::Client::new(), &registry.host(), None, true);
    client.ping().await.unwrap();
    let manifest = push_image(&client, "team/app", "1.0", "one").await;
    for n in 2..=7 {
        push_image(&client, "team/app", &format!("1.{n}"), &format!("v{n}")).await;
    }

    let digest = client.resolve_digest("team/app", "1.0").await.unwrap();
    assert_eq!(digest, manifest.digest);
    assert_eq!(
        digest,
        registry.skopeo_digest("team/app", "1.0", None),
        "skopeo agrees"
    );

    let mut tags = client.list_tags("team/app", 3).await.unwrap();
    tags.sort();
    assert_eq!(tags.len(), 7, "three pages of at most 3: {tags:?}");

    // Copy to another repository: blobs are mounted, the manifest bytes are kept.
    let pulled = client.get_manifest("team/app", "1.0").await.unwrap();
    assert_eq!(pulled.bytes, manifest.bytes);
    let parsed: serde_json::Value = serde_json::from_slice(&pulled.bytes).unwrap();
    let mut digests = vec![parsed["config"]["digest"].as_str().unwrap().to_owned()];
    digests.extend(
        parsed["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_owned()),
    );
    for blob in &digests {
        assert!(
            client
                .mount_or_copy_blob("team/app", "prod/app", blob)
                .await
                .unwrap(),
            "mounted {blob}"
        );
        assert!(client.blob_exists("prod/app", blob).await.unwrap());
    }
    client
        .put_manifest("prod/app", "1.0", &pulled)
        .await
        .unwrap();
    assert_eq!(
        registry.skopeo_digest("prod/app", "1.0", None),
        manifest.digest,
        "the copy has the same digest"
    );

    let missing = client.resolve_digest("team/app", "9.9").await.unwrap_err();
    assert!(
        matches!(missing, OciError::Status { status: 404, .. }),
        "{missing}"
    );
    assert!(
        missing.to_string().contains(&registry.host()),
        "names the registry: {missing}"
    );
}

#[tokio::test]
async fn basic_auth_and_a_clear_error_for_wrong_credentials() {
    let registry = Registry::start(Some(("robot", "s3cret-pass")));
    let creds = Credentials {
        username: "robot".to_owned(),
        password: "s3cret-pass".to_owned(),
    };
    let client = Client::new(reqwest::Client::new(), &registry.host(), Some(creds), true);
    let manifest = push_image(&client, "team/app", "2.0", "two").await;
    assert_eq!(
        client.resolve_digest("team/app", "2.0").await.unwrap(),
        manifest.digest
    );
    assert_eq!(
        registry.skopeo_digest("team/app", "2.0", Some(("robot", "s3cret-pass"))),
        manifest.digest
    );

    let wrong = Credentials {
        username: "robot".to_owned(),
        password: "nope".to_owned(),
    };
    let client = Client::new(reqwest::Client::new(), &registry.host(), Some(wrong), true);
    let error = client.resolve_digest("team/app", "2.0").await.unwrap_err();
    assert!(matches!(error, OciError::Auth { .. }), "{error}");
    let text = error.to_string();
    assert!(
        text.contains(&registry.host()) && !text.contains("nope"),
        "{text}"
    );
}

/// A proxy in front of the real registry that answers the first `throttle` requests with 429
/// and `Retry-After: 1`, then forwards everything; returns its host and a request counter.
async fn throttling_proxy(
    upstream: String,
    throttle: usize,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::body::Body;
    use axum::extract::{Request, State};
    use axum::response::Response;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let seen = Arc::new(AtomicUsize::new(0));
    let state = (upstream, seen.clone(), reqwest::Client::new());
    let handler =
        move |State((upstream, seen, http)): State<(String, Arc<AtomicUsize>, reqwest::Client)>,
              request: Request| async move {
            if seen.fetch_add(1, Ordering::SeqCst) < throttle {
                return Response::builder()
                    .status(429)
                    .header("retry-after", "1")
                    .body(Body::empty())
                    .unwrap();
            }
            let url = format!("http://{upstream}{}", request.uri());
            let method = request.method().clone();
            let mut forward = http.request(method, url);
            for (name, value) in request.headers() {
                if name != "host" {
                    forward = forward.header(name, value);
                }
            }
            let body = axum::body::to_bytes(request.into_body(), usize::MAX)
                .await
                .unwrap();
            let answer = forward.body(body).send().await.unwrap();
            let mut builder = Response::builder().status(answer.status().as_u16());
            for (name, value) in answer.headers() {
                builder = builder.header(name, value);
            }
            builder
                .body(Body::from(answer.bytes().await.unwrap()))
                .unwrap()
        };
    let app = axum::Router::new().fallback(handler).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (host, seen)
}

#[tokio::test]
async fn too_many_requests_is_retried_after_the_delay() {
    let registry = Registry::start(None);
    let direct = Client::new(reqwest::Client::new(), &registry.host(), None, true);
    let manifest = push_image(&direct, "team/app", "3.0", "three").await;
    let (proxy, seen) = throttling_proxy(registry.host(), 2).await;
    let client = Client::new(reqwest::Client::new(), &proxy, None, true);
    let started = std::time::Instant::now();
    let digest = client.resolve_digest("team/app", "3.0").await.unwrap();
    assert_eq!(digest, manifest.digest);
    assert_eq!(
        seen.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "two 429s, then the real answer"
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "Retry-After: 1 was honoured twice"
    );
}

#[tokio::test]
async fn token_auth_mounts_across_repositories_with_one_multi_scope_token() {
    let registry =
        gangplank_testkit::Registry::start_with(gangplank_testkit::Auth::Token("bob", "hunter2"));
    let creds = Credentials {
        username: "bob".to_owned(),
        password: "hunter2".to_owned(),
    };
    let client = Client::new(reqwest::Client::new(), &registry.host(), Some(creds), true);
    let manifest = push_image(&client, "team/app", "v1", "token").await;
    assert_eq!(
        client.resolve_digest("team/app", "v1").await.unwrap(),
        manifest.digest
    );
    assert_eq!(
        registry.skopeo_digest("team/app", "v1", Some(("bob", "hunter2"))),
        manifest.digest
    );

    let parsed: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap();
    let mut blobs = vec![parsed["config"]["digest"].as_str().unwrap().to_owned()];
    blobs.extend(
        parsed["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_owned()),
    );
    for blob in &blobs {
        // The registry needs pull on team/app and push on team/other in one token; a mount
        // (201) rather than a copy proves the token carried both.
        assert!(
            client
                .mount_or_copy_blob("team/app", "team/other", blob)
                .await
                .unwrap(),
            "mounted {blob}"
        );
    }
    client
        .put_manifest("team/other", "v1", &manifest)
        .await
        .unwrap();
    assert_eq!(
        registry.skopeo_digest("team/other", "v1", Some(("bob", "hunter2"))),
        manifest.digest
    );

    let wrong = Credentials {
        username: "bob".to_owned(),
        password: "wrong".to_owned(),
    };
    let client = Client::new(reqwest::Client::new(), &registry.host(), Some(wrong), true);
    let error = client.resolve_digest("team/app", "v1").await.unwrap_err();
    assert!(matches!(error, OciError::Auth { .. }), "{error}");
    assert!(error.to_string().contains("token service"), "{error}");
}

#[tokio::test]
async fn copies_images_by_mount_within_a_registry_and_by_stream_across() {
    let one = Registry::start(None);
    let two = Registry::start(Some(("robot", "s3cret-pass")));
    let source = Client::new(reqwest::Client::new(), &one.host(), None, true);
    let creds = Credentials {
        username: "robot".to_owned(),
        password: "s3cret-pass".to_owned(),
    };
    let target = Client::new(reqwest::Client::new(), &two.host(), Some(creds), true);
    let manifest = push_image(&source, "dev/app", "1.0", "copy me").await;

    let same = source
        .copy_image(&source, "dev/app", "1.0", "prod/app", "1.0")
        .await
        .unwrap();
    assert_eq!((same.mounted, same.bytes_moved), (2, 0), "{same:?}");
    assert_eq!(one.skopeo_digest("prod/app", "1.0", None), manifest.digest);

    let across = target
        .copy_image(&source, "dev/app", "1.0", "prod/app", "1.0")
        .await
        .unwrap();
    assert!(across.bytes_moved > 0 && across.mounted == 0, "{across:?}");
    assert_eq!(
        two.skopeo_digest("prod/app", "1.0", Some(("robot", "s3cret-pass"))),
        manifest.digest
    );
    let again = target
        .copy_image(&source, "dev/app", "1.0", "prod/app", "1.0")
        .await
        .unwrap();
    assert_eq!(
        (again.skipped, again.bytes_moved),
        (2, 0),
        "blobs already there are skipped"
    );
}

#[tokio::test]
async fn insecure_means_an_unverified_certificate_too() {
    let registry = gangplank_testkit::Registry::start_tls(gangplank_testkit::Auth::Anonymous);
    let pushed = registry.push_tiny_image("team/tls", "1.0", "over tls");
    let insecure = Client::new(reqwest::Client::new(), &registry.host(), None, true);
    assert_eq!(
        insecure.resolve_digest("team/tls", "1.0").await.unwrap(),
        pushed,
        "https without verification"
    );
    let strict = Client::new(reqwest::Client::new(), &registry.host(), None, false);
    let error = strict.resolve_digest("team/tls", "1.0").await.unwrap_err();
    assert!(
        matches!(error, OciError::Transport { .. }),
        "a self-signed certificate is refused: {error}"
    );
    assert!(error.to_string().contains(&registry.host()), "{error}");
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn manifest_of(media_type: &str, json: String) -> Manifest {
    let bytes = json.into_bytes();
    Manifest {
        media_type: media_type.to_owned(),
        digest: sha256_digest(&bytes),
        bytes,
    }
}

/// Pushes `config` and `layers` (media type, bytes) and an OCI manifest naming them, with the
/// `extra` JSON members (`"annotations":{…},`) first, stored by its digest only.
async fn push_by_digest(
    client: &Client,
    repository: &str,
    extra: &str,
    config: (&str, &[u8]),
    layers: &[(&str, &[u8])],
) -> Manifest {
    let mut descriptors = Vec::new();
    for (media_type, bytes) in std::iter::once(&config).chain(layers) {
        let digest = client.push_blob(repository, bytes).await.unwrap();
        descriptors.push(format!(
            r#"{{"mediaType":"{media_type}","digest":"{digest}","size":{}}}"#,
            bytes.len()
        ));
    }
    let manifest = manifest_of(
        OCI_MANIFEST,
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}",{extra}"config":{},"layers":[{}]}}"#,
            descriptors[0],
            descriptors[1..].join(",")
        ),
    );
    client
        .put_manifest(repository, &manifest.digest, &manifest)
        .await
        .unwrap();
    manifest
}

/// A single-platform image of `arch`, stored by digest.
async fn push_platform_image(client: &Client, repository: &str, arch: &str) -> Manifest {
    let config = format!(
        r#"{{"architecture":"{arch}","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}}}}"#
    );
    let layer = format!("layer for {arch}");
    push_by_digest(
        client,
        repository,
        "",
        (
            "application/vnd.oci.image.config.v1+json",
            config.as_bytes(),
        ),
        &[("application/vnd.oci.image.layer.v1.tar", layer.as_bytes())],
    )
    .await
}

/// An OCI image index of `children` (each with its `platform` JSON) under `tag`.
async fn push_index(
    client: &Client,
    repository: &str,
    tag: &str,
    children: &[(&Manifest, &str)],
) -> Manifest {
    let entries: Vec<String> = children
        .iter()
        .map(|(child, platform)| {
            format!(
                r#"{{"mediaType":"{}","digest":"{}","size":{},"platform":{platform}}}"#,
                child.media_type,
                child.digest,
                child.bytes.len()
            )
        })
        .collect();
    let index = manifest_of(
        OCI_INDEX,
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
            entries.join(",")
        ),
    );
    client.put_manifest(repository, tag, &index).await.unwrap();
    index
}

/// A multi-platform image as `docker buildx` pushes one: linux/amd64, linux/arm64 and an
/// attestation (an artifact of unknown media types, with config and layers) for amd64.
async fn push_multi_platform(
    client: &Client,
    repository: &str,
    tag: &str,
) -> (Manifest, Vec<Manifest>) {
    let amd64 = push_platform_image(client, repository, "amd64").await;
    let arm64 = push_platform_image(client, repository, "arm64").await;
    let attestation = push_by_digest(
        client,
        repository,
        r#""artifactType":"application/vnd.example.provenance+json","#,
        ("application/vnd.oci.empty.v1+json", b"{}"),
        &[(
            "application/vnd.in-toto+json",
            br#"{"predicateType":"https://slsa.dev/provenance/v1"}"#,
        )],
    )
    .await;
    let unknown = r#"{"architecture":"unknown","os":"unknown"}"#;
    let index = push_index(
        client,
        repository,
        tag,
        &[
            (&amd64, r#"{"architecture":"amd64","os":"linux"}"#),
            (
                &arm64,
                r#"{"architecture":"arm64","os":"linux","variant":"v8"}"#,
            ),
            (&attestation, unknown),
        ],
    )
    .await;
    (index, vec![amd64, arm64, attestation])
}

/// The bytes of every blob `manifests` name (their descriptors' sizes).
fn blob_bytes(manifests: &[Manifest]) -> u64 {
    manifests
        .iter()
        .map(|m| {
            let parsed: serde_json::Value = serde_json::from_slice(&m.bytes).unwrap();
            let layers = parsed["layers"].as_array().unwrap().iter();
            std::iter::once(&parsed["config"])
                .chain(layers)
                .map(|d| d["size"].as_u64().unwrap())
                .sum::<u64>()
        })
        .sum()
}

/// `skopeo inspect --raw` of `repository` `reference` (`:tag` or `@digest`): the manifest
/// bytes as the registry serves them to another client.
fn skopeo_raw(
    registry: &Registry,
    repository: &str,
    reference: &str,
    creds: Option<(&str, &str)>,
) -> Vec<u8> {
    let mut command = std::process::Command::new("skopeo");
    command.args(["inspect", "--raw", "--tls-verify=false"]);
    if let Some((user, password)) = creds {
        command.args(["--creds", &format!("{user}:{password}")]);
    }
    let output = command
        .arg(format!(
            "docker://{}/{repository}{reference}",
            registry.host()
        ))
        .output()
        .expect("skopeo is installed (cargo xtask test installs it)");
    assert!(
        output.status.success(),
        "skopeo inspect {repository}{reference}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// `repository:tag` is `index`, byte for byte, and each child resolves there by its digest.
fn assert_index_copied(
    registry: &Registry,
    repository: &str,
    tag: &str,
    index: &Manifest,
    children: &[Manifest],
    creds: Option<(&str, &str)>,
) {
    let raw = skopeo_raw(registry, repository, &format!(":{tag}"), creds);
    assert_eq!(
        sha256_digest(&raw),
        index.digest,
        "the index digest is kept"
    );
    assert_eq!(raw, index.bytes);
    for child in children {
        let raw = skopeo_raw(registry, repository, &format!("@{}", child.digest), creds);
        assert_eq!(raw, child.bytes, "{repository}@{}", child.digest);
    }
}

#[tokio::test]
async fn copies_an_image_index_with_every_child_within_a_registry_and_across() {
    let one = Registry::start(None);
    let two = Registry::start(Some(("robot", "s3cret-pass")));
    let source = Client::new(reqwest::Client::new(), &one.host(), None, true);
    let creds = Credentials {
        username: "robot".to_owned(),
        password: "s3cret-pass".to_owned(),
    };
    let target = Client::new(reqwest::Client::new(), &two.host(), Some(creds), true);
    let (index, children) = push_multi_platform(&source, "dev/app", "1.0").await;
    assert_index_copied(&one, "dev/app", "1.0", &index, &children, None);

    let same = source
        .copy_image(&source, "dev/app", "1.0", "prod/app", "1.0")
        .await
        .unwrap();
    assert_eq!(same.manifest, index, "the report's manifest is the index");
    assert_eq!(same.digest, index.digest);
    assert_eq!(
        (same.mounted, same.skipped, same.bytes_moved),
        (6, 0, 0),
        "two blobs of each of three children, all mounted"
    );
    assert_index_copied(&one, "prod/app", "1.0", &index, &children, None);

    let across = target
        .copy_image(&source, "dev/app", "1.0", "prod/app", "1.0")
        .await
        .unwrap();
    assert_eq!(across.digest, index.digest);
    assert_eq!(
        (across.mounted, across.skipped, across.bytes_moved),
        (0, 0, blob_bytes(&children)),
        "every blob of every child streamed"
    );
    let robot = Some(("robot", "s3cret-pass"));
    assert_index_copied(&two, "prod/app", "1.0", &index, &children, robot);

    // Again, by digest: every blob is there already.
    let again = target
        .copy_image(&source, "dev/app", &index.digest, "prod/app", &index.digest)
        .await
        .unwrap();
    assert_eq!(
        (again.mounted, again.skipped, again.bytes_moved),
        (0, 6, 0),
        "blobs already there are skipped"
    );
    let by_digest = skopeo_raw(&two, "prod/app", &format!("@{}", index.digest), robot);
    assert_eq!(by_digest, index.bytes);
}

#[tokio::test]
async fn an_index_of_too_many_children_or_a_nested_one_is_refused_before_any_write() {
    let registry = Registry::start(None);
    let client = Client::new(reqwest::Client::new(), &registry.host(), None, true);
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let mut images = Vec::new();
    for n in 0..=gangplank_oci::MAX_INDEX_CHILDREN {
        let extra = format!(r#""annotations":{{"n":"{n}"}},"#);
        let image = push_by_digest(
            &client,
            "dev/app",
            &extra,
            ("application/vnd.oci.image.config.v1+json", config),
            &[("application/vnd.oci.image.layer.v1.tar", b"shared layer")],
        )
        .await;
        images.push(image);
    }
    let platform = r#"{"architecture":"amd64","os":"linux"}"#;
    let children: Vec<(&Manifest, &str)> = images.iter().map(|m| (m, platform)).collect();

    // As many children as the bound allows: copied.
    let most = &children[..gangplank_oci::MAX_INDEX_CHILDREN];
    let index = push_index(&client, "dev/app", "most", most).await;
    let copied = client
        .copy_image(&client, "dev/app", "most", "prod/app", "most")
        .await
        .unwrap();
    assert_eq!(
        (copied.mounted, copied.bytes_moved),
        (2, 0),
        "the config and layer every child shares, mounted once"
    );
    assert_index_copied(
        &registry,
        "prod/app",
        "most",
        &index,
        &images[..gangplank_oci::MAX_INDEX_CHILDREN],
        None,
    );

    // One more: refused, naming the count and the bound, and nothing is written.
    push_index(&client, "dev/app", "too-many", &children).await;
    let refused = client
        .copy_image(&client, "dev/app", "too-many", "other/app", "1")
        .await
        .unwrap_err();
    assert!(matches!(refused, OciError::Unsupported { .. }), "{refused}");
    let text = refused.to_string();
    assert!(
        text.contains("an image index of 65 manifests: at most 64 are copied"),
        "{text}"
    );
    assert!(client.all_tags("other/app").await.unwrap().is_empty());
    assert!(
        !client
            .blob_exists("other/app", &sha256_digest(b"shared layer"))
            .await
            .unwrap()
    );

    // An index inside an index: refused once every child was read, before any child is
    // copied (the image beside it included).
    let inner = push_index(&client, "dev/app", "inner", &children[..2]).await;
    let image = images.last().unwrap();
    push_index(
        &client,
        "dev/app",
        "outer",
        &[(image, platform), (&inner, platform)],
    )
    .await;
    let nested = client
        .copy_image(&client, "dev/app", "outer", "other/app", "1")
        .await
        .unwrap_err();
    assert!(matches!(nested, OciError::Unsupported { .. }), "{nested}");
    assert!(
        nested.to_string().contains(&format!(
            "dev/app@{} is an image index inside an image index",
            inner.digest
        )),
        "{nested}"
    );
    let absent = client.get_manifest("other/app", &image.digest).await;
    assert!(
        matches!(absent, Err(OciError::Status { status: 404, .. })),
        "{absent:?}"
    );
    assert!(
        !client
            .blob_exists("other/app", &sha256_digest(b"shared layer"))
            .await
            .unwrap()
    );
}
