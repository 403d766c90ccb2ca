//! Promotion and rollback against real docker-registry processes with htpasswd auth, the
//! stages driven directly where a crash or a concurrent push is simulated.

use gangplank_oci::{Client, Credentials};
use gangplank_store::{Bootstrap, Store};
use gangplank_testkit::{Auth, Registry};

use super::PromotionError;
use super::promote::{self, Promotion};
use super::registry::Repo;
use super::rollback;

const DEV: (&str, &str) = ("dev-robot", "dev-password-1");
const PROD: (&str, &str) = ("prod-robot", "prod-password-2");

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let store = Store::connect(&url).await.unwrap();
    store
        .bootstrap(Bootstrap {
            org_id: "acme".into(),
            admin_user_id: "admin".into(),
            admin_name: "admin".into(),
            token_hash: "00".into(),
            env_types: vec![],
        })
        .await
        .unwrap();
    (dir, store)
}

fn repo(registry: &Registry, path: &str, creds: (&str, &str)) -> Repo {
    Repo {
        client: std::sync::Arc::new(Client::new(
            reqwest::Client::new(),
            &registry.host(),
            Some(Credentials {
                username: creds.0.into(),
                password: creds.1.into(),
            }),
            true,
        )),
        image: format!("{}/{path}", registry.host()),
        path: path.into(),
    }
}

fn request(key: &str, digest: &str) -> promote::Request {
    promote::Request {
        promotion_id: format!("p-{key}"),
        org_id: "acme".into(),
        app_id: "shop".into(),
        step_key: key.into(),
        run_id: format!("run-{key}"),
        job_id: "to-test".into(),
        step_index: 1,
        source_tag: "latest".into(),
        source_digest: digest.into(),
        live_tag: "latest".into(),
        created_by: "admin".into(),
        approvals: "[]".into(),
        automatic: true,
    }
}

async fn tags(repo: &Repo) -> Vec<String> {
    let mut tags = repo.client.all_tags(&repo.path).await.unwrap();
    tags.sort();
    tags
}

async fn digest(repo: &Repo, tag: &str) -> Option<String> {
    repo.client.tag_digest(&repo.path, tag).await.unwrap()
}

#[tokio::test]
async fn promotions_copy_by_digest_and_number_the_replaced_image() {
    let (_dir, store) = store().await;
    let registry = Registry::start_with(Auth::Htpasswd(DEV.0, DEV.1));
    let dev = repo(&registry, "ecr-dev/repo-1", DEV);
    let test = repo(&registry, "ecr-test/repo-1", DEV);
    let mut pushed = Vec::new();
    for (i, content) in ["one", "two", "three"].iter().enumerate() {
        let digest = registry.push_tiny_image_as("ecr-dev/repo-1", "latest", content, Some(DEV));
        let row = promote::promote(&store, &dev, &test, request(&format!("k{i}"), &digest))
            .await
            .unwrap();
        assert_eq!(row.status, "applied");
        assert_eq!(row.bytes_moved, 0, "same registry: mounted, no blob bytes");
        assert_eq!(row.blobs_mounted + row.blobs_skipped, 2);
        assert_eq!(
            registry.skopeo_digest("ecr-test/repo-1", "latest", Some(DEV)),
            digest,
            "the digest is unchanged"
        );
        pushed.push((digest, row));
    }
    assert_eq!(tags(&test).await, ["0.1", "0.2", "latest"]);
    assert_eq!(
        digest(&test, "0.1").await.as_deref(),
        Some(pushed[0].0.as_str())
    );
    assert_eq!(
        digest(&test, "0.2").await.as_deref(),
        Some(pushed[1].0.as_str())
    );
    let versions: Vec<(String, String, String)> = pushed
        .iter()
        .map(|(_, r)| {
            (
                r.archive_tag.clone(),
                r.version_before.clone(),
                r.version_after.clone(),
            )
        })
        .collect();
    assert_eq!(
        versions,
        [
            ("".into(), "".into(), "0.1".into()),
            ("0.1".into(), "0.1".into(), "0.2".into()),
            ("0.2".into(), "0.2".into(), "0.3".into()),
        ]
    );

    // The same step again is the recorded outcome, and a new step with the live digest a no-op.
    let again = promote::promote(&store, &dev, &test, request("k2", &pushed[2].0))
        .await
        .unwrap();
    assert_eq!(again.id, pushed[2].1.id);
    let noop = promote::promote(&store, &dev, &test, request("k9", &pushed[2].0))
        .await
        .unwrap();
    assert_eq!(noop.archive_tag, "");
    assert_eq!(tags(&test).await, ["0.1", "0.2", "latest"]);

    // The live moves were recorded as expected writes: consumed once each.
    for (digest, _) in &pushed {
        assert!(
            store
                .consume_expected_write(
                    "acme",
                    &test.image,
                    "latest",
                    digest,
                    "",
                    gangplank_store::now_millis()
                )
                .await
                .unwrap()
        );
    }
    // So were the archive tags: registering 0.1 or 0.2 starts no pipeline either.
    for (tag, (digest, _)) in ["0.1", "0.2"].iter().zip(&pushed) {
        assert!(
            store
                .consume_expected_write(
                    "acme",
                    &test.image,
                    tag,
                    digest,
                    "",
                    gangplank_store::now_millis()
                )
                .await
                .unwrap(),
            "the archive tag {tag} is an expected write"
        );
    }
    assert!(
        !store
            .consume_expected_write(
                "acme",
                &test.image,
                "latest",
                &pushed[2].0,
                "",
                gangplank_store::now_millis()
            )
            .await
            .unwrap()
    );

    // Rollback: live back to 0.2's image, 0.2 dropped, from v0.3 to v0.2.
    let rolled = rollback::rollback(&store, &test, rollback_request("rb1"))
        .await
        .unwrap();
    assert_eq!(
        (
            rolled.version_before.as_str(),
            rolled.version_after.as_str()
        ),
        ("0.3", "0.2")
    );
    // docker-registry deletes manifests by digest only: the dropped tag is kept (deleting the
    // manifest would take latest down with it), and the image rolled back from keeps a tag.
    assert_eq!(
        tags(&test).await,
        ["0.1", "0.2", "latest", "rolled-back-0.3"]
    );
    assert!(
        rolled.status_message.contains("0.2 was kept"),
        "{}",
        rolled.status_message
    );
    assert_eq!(
        digest(&test, "latest").await.as_deref(),
        Some(pushed[1].0.as_str())
    );
    assert_eq!(
        digest(&test, "rolled-back-0.3").await.as_deref(),
        Some(pushed[2].0.as_str())
    );
    let undone = store.get_promotion("acme", &pushed[2].1.id).await.unwrap();
    assert_eq!(
        (undone.status.as_str(), undone.rolled_back_by.as_str()),
        ("rolled_back", rolled.id.as_str())
    );
    assert!(
        store
            .promotion_hold("acme", &test.image, "latest")
            .await
            .unwrap()
            .is_some(),
        "a manual rollback holds automatic promotion"
    );
    assert!(
        store
            .consume_expected_write(
                "acme",
                &test.image,
                "latest",
                &pushed[1].0,
                "",
                gangplank_store::now_millis()
            )
            .await
            .unwrap(),
        "the rollback's own write is expected"
    );
    let held = promote::promote(&store, &dev, &test, request("k10", &pushed[0].0)).await;
    assert!(matches!(held, Err(PromotionError::Held { .. })), "{held:?}");

    // Again: v0.2 → v0.1; then nothing is left to roll back to.
    let rolled = rollback::rollback(&store, &test, rollback_request("rb2"))
        .await
        .unwrap();
    assert_eq!(
        (
            rolled.version_before.as_str(),
            rolled.version_after.as_str()
        ),
        ("0.2", "0.1")
    );
    assert_eq!(
        digest(&test, "latest").await.as_deref(),
        Some(pushed[0].0.as_str())
    );
    assert_eq!(
        tags(&test).await,
        ["0.1", "0.2", "latest", "rolled-back-0.2", "rolled-back-0.3"]
    );
    let nothing = rollback::rollback(&store, &test, rollback_request("rb3")).await;
    assert!(
        matches!(nothing, Err(PromotionError::Refused(_))),
        "{nothing:?}"
    );
}

fn rollback_request(id: &str) -> rollback::Request {
    rollback::Request {
        promotion_id: id.into(),
        org_id: "acme".into(),
        app_id: "shop".into(),
        step_key: format!("manual:{id}"),
        run_id: String::new(),
        job_id: String::new(),
        step_index: 0,
        live_tag: "latest".into(),
        to: None,
        comment: String::new(),
        created_by: "admin".into(),
        hold: true,
    }
}

#[tokio::test]
async fn across_registries_the_bytes_stream_and_the_digest_stays() {
    let (_dir, store) = store().await;
    let dev_registry = Registry::start_with(Auth::Htpasswd(DEV.0, DEV.1));
    let prod_registry = Registry::start_with(Auth::Htpasswd(PROD.0, PROD.1));
    let dev = repo(&dev_registry, "ecr-dev/repo-1", DEV);
    let prod = repo(&prod_registry, "ecr-prod/repo-1", PROD);
    let digest = dev_registry.push_tiny_image_as("ecr-dev/repo-1", "latest", "across", Some(DEV));
    let row = promote::promote(&store, &dev, &prod, request("x1", &digest))
        .await
        .unwrap();
    assert!(row.bytes_moved > 0, "{row:?}");
    assert_eq!(row.blobs_mounted, 0);
    assert_eq!(
        prod_registry.skopeo_digest("ecr-prod/repo-1", "latest", Some(PROD)),
        digest
    );
}

#[tokio::test]
async fn a_crash_between_the_archive_tag_and_the_live_move_resumes_without_doubling() {
    let (_dir, store) = store().await;
    let registry = Registry::start_with(Auth::Htpasswd(DEV.0, DEV.1));
    let dev = repo(&registry, "ecr-dev/repo-1", DEV);
    let test = repo(&registry, "ecr-test/repo-1", DEV);
    let first = registry.push_tiny_image_as("ecr-dev/repo-1", "latest", "a", Some(DEV));
    promote::promote(&store, &dev, &test, request("c0", &first))
        .await
        .unwrap();
    let second = registry.push_tiny_image_as("ecr-dev/repo-1", "latest", "b", Some(DEV));

    // The step runs up to the archive tag, then its worker dies.
    let mut promotion = Promotion::begin(&store, &dev, &test, request("c1", &second))
        .await
        .unwrap();
    promotion.copy().await.unwrap();
    assert!(!promotion.plan().await.unwrap());
    promotion.archive().await.unwrap();
    drop(promotion);
    assert_eq!(tags(&test).await, ["0.1", "latest"]);
    assert_eq!(
        digest(&test, "latest").await.as_deref(),
        Some(first.as_str())
    );

    // The lease lapses or the same step's key takes it again; the step runs once more.
    let row = promote::promote(&store, &dev, &test, request("c1", &second))
        .await
        .unwrap();
    assert_eq!(row.status, "applied");
    assert_eq!(
        tags(&test).await,
        ["0.1", "latest"],
        "no 0.2: 0.1 was not doubled"
    );
    assert_eq!(digest(&test, "0.1").await.as_deref(), Some(first.as_str()));
    assert_eq!(
        digest(&test, "latest").await.as_deref(),
        Some(second.as_str())
    );
    let ops = store.tag_ops(&row.id).await.unwrap();
    let journal: Vec<(i64, &str, &str)> = ops
        .iter()
        .map(|o| (o.seq, o.tag.as_str(), o.state.as_str()))
        .collect();
    assert_eq!(
        journal,
        [
            (1, second.as_str(), "done"),
            (2, "0.1", "done"),
            (3, "latest", "done")
        ]
    );

    // A crash after the live move but before the journal said so: found done, not redone.
    let third = registry.push_tiny_image_as("ecr-dev/repo-1", "latest", "c", Some(DEV));
    let mut promotion = Promotion::begin(&store, &dev, &test, request("c2", &third))
        .await
        .unwrap();
    promotion.copy().await.unwrap();
    promotion.plan().await.unwrap();
    promotion.archive().await.unwrap();
    let manifest = dev.client.get_manifest(&dev.path, &third).await.unwrap();
    test.client
        .put_manifest(&test.path, "latest", &manifest)
        .await
        .unwrap();
    drop(promotion);
    let row = promote::promote(&store, &dev, &test, request("c2", &third))
        .await
        .unwrap();
    assert_eq!(row.status, "applied");
    assert_eq!(tags(&test).await, ["0.1", "0.2", "latest"]);
}

#[tokio::test]
async fn a_live_tag_that_moved_since_the_plan_is_refused() {
    let (_dir, store) = store().await;
    let registry = Registry::start_with(Auth::Htpasswd(DEV.0, DEV.1));
    let dev = repo(&registry, "ecr-dev/repo-1", DEV);
    let test = repo(&registry, "ecr-test/repo-1", DEV);
    let first = registry.push_tiny_image_as("ecr-dev/repo-1", "latest", "a", Some(DEV));
    promote::promote(&store, &dev, &test, request("d0", &first))
        .await
        .unwrap();
    let second = registry.push_tiny_image_as("ecr-dev/repo-1", "latest", "b", Some(DEV));
    let mut promotion = Promotion::begin(&store, &dev, &test, request("d1", &second))
        .await
        .unwrap();
    promotion.copy().await.unwrap();
    promotion.plan().await.unwrap();
    promotion.archive().await.unwrap();
    // Someone pushes straight into the test repository meanwhile: the live tag is checked
    // right before it moves, and does not.
    let stranger = registry.push_tiny_image_as("ecr-test/repo-1", "latest", "x", Some(DEV));
    let drift = promotion.move_live().await;
    assert!(
        matches!(&drift, Err(PromotionError::Drift { found, .. }) if *found == stranger),
        "{drift:?}"
    );
    let row = promotion.end(drift).await;
    assert!(row.is_err());
    assert_eq!(tags(&test).await, ["0.1", "latest"]);
    assert_eq!(
        digest(&test, "0.1").await.as_deref(),
        Some(first.as_str()),
        "the version names the image that was live when it was written"
    );
    assert_eq!(
        digest(&test, "latest").await.as_deref(),
        Some(stranger.as_str())
    );
    let record = store.get_promotion("acme", "p-d1").await.unwrap();
    assert_eq!(record.status, "failed");
    assert!(
        record.status_message.starts_with("drift"),
        "{}",
        record.status_message
    );
}

#[tokio::test]
async fn a_rollback_is_refused_while_a_run_holds_the_repository() {
    let (_dir, store) = store().await;
    let registry = Registry::start_with(Auth::Htpasswd(DEV.0, DEV.1));
    let dev = repo(&registry, "ecr-dev/repo-1", DEV);
    let test = repo(&registry, "ecr-test/repo-1", DEV);
    for (i, content) in ["a", "b"].iter().enumerate() {
        let digest = registry.push_tiny_image_as("ecr-dev/repo-1", "latest", content, Some(DEV));
        promote::promote(&store, &dev, &test, request(&format!("l{i}"), &digest))
            .await
            .unwrap();
    }
    let third = registry.push_tiny_image_as("ecr-dev/repo-1", "latest", "c", Some(DEV));
    let promotion = Promotion::begin(&store, &dev, &test, request("l2", &third))
        .await
        .unwrap();
    drop(promotion);
    let refused = rollback::rollback(&store, &test, rollback_request("rbx")).await;
    assert!(
        matches!(&refused, Err(PromotionError::Locked { holder, .. }) if holder == "l2"),
        "{refused:?}"
    );
    store
        .unlock_repository("acme", &test.image, "l2")
        .await
        .unwrap();
    let rolled = rollback::rollback(&store, &test, rollback_request("rby"))
        .await
        .unwrap();
    assert_eq!(rolled.version_after, "0.1");
}

#[tokio::test]
async fn the_repository_lock_is_renewed_a_third_through_its_lease() {
    let (_dir, store) = store().await;
    let registry = Registry::start_with(Auth::Htpasswd(DEV.0, DEV.1));
    let dev = repo(&registry, "ecr-dev/repo-1", DEV);
    let test = repo(&registry, "ecr-test/repo-1", DEV);
    let first = registry.push_tiny_image_as("ecr-dev/repo-1", "latest", "a", Some(DEV));
    let mut promotion = Promotion::begin(&store, &dev, &test, request("r1", &first))
        .await
        .unwrap();
    promotion.copy().await.unwrap();
    // A long copy: half the lease is gone, and the lock is about to lapse. The plan's write
    // renews it first.
    promotion.backdate_lock(super::LOCK_LEASE_MS / 2);
    let now = gangplank_store::now_millis();
    assert!(
        store
            .lock_repository("acme", &test.image, "r1", "run-r1", now, now + 1)
            .await
            .unwrap()
    );
    assert!(!promotion.plan().await.unwrap());
    let later = gangplank_store::now_millis() + 60_000;
    let lock = store
        .repository_lock("acme", &test.image, later)
        .await
        .unwrap();
    assert_eq!(lock.map(|l| l.holder).as_deref(), Some("r1"));

    // Taken over by another writer after lapsing: the stage stops, nothing is written.
    let now = gangplank_store::now_millis();
    store
        .lock_repository("acme", &test.image, "r1", "run-r1", now, now)
        .await
        .unwrap();
    assert!(
        store
            .lock_repository("acme", &test.image, "other", "", now, now + 60_000)
            .await
            .unwrap()
    );
    let refused = promotion.renew_lock().await;
    assert!(
        matches!(&refused, Err(PromotionError::Locked { holder, .. }) if holder == "other"),
        "{refused:?}"
    );
    let row = promotion.end(refused).await;
    assert!(row.is_err());
    assert_eq!(
        store
            .repository_lock("acme", &test.image, now)
            .await
            .unwrap()
            .map(|l| l.holder)
            .as_deref(),
        Some("other"),
        "the other writer keeps its lock"
    );
}

#[tokio::test]
async fn only_the_promoting_app_rolls_back_and_only_what_it_left_live() {
    let (_dir, store) = store().await;
    let registry = Registry::start_with(Auth::Htpasswd(DEV.0, DEV.1));
    let dev = repo(&registry, "ecr-dev/repo-1", DEV);
    let test = repo(&registry, "ecr-test/repo-1", DEV);
    // Pushed straight, never promoted: no app may roll it back.
    registry.push_tiny_image_as("ecr-test/repo-1", "0.1", "pushed", Some(DEV));
    registry.push_tiny_image_as("ecr-test/repo-1", "latest", "pushed-2", Some(DEV));
    let refused = rollback::rollback(&store, &test, rollback_request("o0")).await;
    assert!(
        matches!(refused, Err(PromotionError::Forbidden(_))),
        "{refused:?}"
    );
    for (i, content) in ["a", "b"].iter().enumerate() {
        let digest = registry.push_tiny_image_as("ecr-dev/repo-1", "latest", content, Some(DEV));
        promote::promote(
            &store,
            &dev,
            &test,
            request(&format!("o{}", i + 1), &digest),
        )
        .await
        .unwrap();
    }
    let mut other = rollback_request("o3");
    other.app_id = "other".into();
    let refused = rollback::rollback(&store, &test, other).await;
    assert!(
        matches!(&refused, Err(PromotionError::Forbidden(m)) if m.contains("app shop")),
        "{refused:?}"
    );
    // Someone moved latest since the last promotion: 409-worthy drift, nothing written.
    let stranger = registry.push_tiny_image_as("ecr-test/repo-1", "latest", "x", Some(DEV));
    let drift = rollback::rollback(&store, &test, rollback_request("o4")).await;
    assert!(
        matches!(&drift, Err(PromotionError::Drift { found, .. }) if *found == stranger),
        "{drift:?}"
    );
    assert_eq!(
        digest(&test, "latest").await.as_deref(),
        Some(stranger.as_str())
    );
}

/// Pushes an OCI image index to `repo:tag` naming `children` (digests in `repo`) with a
/// platform each; returns its digest.
async fn push_index(repo: &Repo, tag: &str, children: &[(&str, &str)]) -> String {
    let mut entries = Vec::new();
    for (digest, arch) in children {
        let child = repo.client.get_manifest(&repo.path, digest).await.unwrap();
        entries.push(format!(
            r#"{{"mediaType":"{}","digest":"{digest}","size":{},"platform":{{"architecture":"{arch}","os":"linux"}}}}"#,
            child.media_type,
            child.bytes.len()
        ));
    }
    let media_type = "application/vnd.oci.image.index.v1+json";
    let bytes = format!(
        r#"{{"schemaVersion":2,"mediaType":"{media_type}","manifests":[{}]}}"#,
        entries.join(",")
    )
    .into_bytes();
    let index = gangplank_oci::Manifest {
        media_type: media_type.into(),
        digest: gangplank_oci::sha256_digest(&bytes),
        bytes,
    };
    repo.client
        .put_manifest(&repo.path, tag, &index)
        .await
        .unwrap();
    index.digest
}

/// Two tiny single-platform images (pushed by skopeo under `tag-amd64` and `tag-arm64`) and
/// the index of both under `tag`: a multi-platform image. Returns the index's digest and the
/// children's.
async fn push_multi_platform(
    registry: &Registry,
    repo: &Repo,
    tag: &str,
    content: &str,
) -> (String, [String; 2]) {
    let [amd64, arm64] = ["amd64", "arm64"].map(|arch| {
        let content = format!("{content} {arch}");
        registry.push_tiny_image_as(&repo.path, &format!("{tag}-{arch}"), &content, Some(DEV))
    });
    let index = push_index(repo, tag, &[(&amd64, "amd64"), (&arm64, "arm64")]).await;
    (index, [amd64, arm64])
}

#[tokio::test]
async fn a_multi_platform_image_is_promoted_by_its_index_digest() {
    let (_dir, store) = store().await;
    let registry = Registry::start_with(Auth::Htpasswd(DEV.0, DEV.1));
    let dev = repo(&registry, "ecr-dev/repo-1", DEV);
    let test = repo(&registry, "ecr-test/repo-1", DEV);
    let single = registry.push_tiny_image_as("ecr-dev/repo-1", "latest", "single", Some(DEV));
    promote::promote(&store, &dev, &test, request("m0", &single))
        .await
        .unwrap();

    let (index, children) = push_multi_platform(&registry, &dev, "latest", "multi").await;
    let row = promote::promote(&store, &dev, &test, request("m1", &index))
        .await
        .unwrap();
    assert_eq!(row.status, "applied");
    assert_eq!(
        (row.blobs_mounted + row.blobs_skipped, row.bytes_moved),
        (4, 0),
        "both children's config and layer, mounted"
    );
    assert_eq!(row.new_live_digest, index);
    assert_eq!(
        row.new_live_media_type,
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(
        (row.archive_tag.as_str(), row.version_after.as_str()),
        ("0.1", "0.2")
    );
    assert_eq!(tags(&test).await, ["0.1", "latest"]);
    assert_eq!(
        digest(&test, "latest").await.as_deref(),
        Some(index.as_str())
    );
    assert_eq!(
        registry.skopeo_digest("ecr-test/repo-1", "latest", Some(DEV)),
        index,
        "skopeo reads the index (and the child for its platform) at the destination"
    );
    assert_eq!(digest(&test, "0.1").await.as_deref(), Some(single.as_str()));
    for child in &children {
        let manifest = test.client.get_manifest(&test.path, child).await.unwrap();
        assert_eq!(&manifest.digest, child, "the child resolves by its digest");
    }

    // Across registries the children's blobs stream, and the index keeps its digest.
    let prod_registry = Registry::start_with(Auth::Htpasswd(PROD.0, PROD.1));
    let prod = repo(&prod_registry, "ecr-prod/repo-1", PROD);
    let row = promote::promote(&store, &dev, &prod, request("m2", &index))
        .await
        .unwrap();
    assert!(row.bytes_moved > 0 && row.blobs_mounted == 0, "{row:?}");
    assert_eq!(
        prod_registry.skopeo_digest("ecr-prod/repo-1", "latest", Some(PROD)),
        index
    );

    // An index inside an index is refused: the step fails rather than retrying.
    let nested = push_index(&dev, "nested", &[(&index, "amd64")]).await;
    let refused = promote::promote(&store, &dev, &test, request("m3", &nested)).await;
    assert!(
        matches!(&refused, Err(PromotionError::Refused(m)) if m.contains("nested indexes are not copied")),
        "{refused:?}"
    );
    assert_eq!(
        digest(&test, "latest").await.as_deref(),
        Some(index.as_str())
    );
}
