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
