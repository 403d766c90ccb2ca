//! The documented payloads (wire formats §2–§5), read.

use super::*;

const PING: &str = r#"{"zen":"Keep it logically awesome.","hook_id":4242,"hook":{"type":"Repository","id":4242,"name":"web","active":true,"events":["push"],"config":{"content_type":"json","insecure_ssl":"0","url":"http://127.0.0.1:8080/hooks/github"}},"repository":{"id":1001,"name":"shop","full_name":"acme/shop"},"sender":{"login":"octo-dev","id":7}}"#;
const PUSH: &str = r#"{"ref":"refs/heads/main","before":"1111111111111111111111111111111111111111","after":"2222222222222222222222222222222222222222","created":false,"deleted":false,"forced":false,"base_ref":null,"compare":"https://github.com/acme/shop/compare/111111111111...222222222222","commits":[],"head_commit":null,"repository":{"id":1001,"name":"shop","full_name":"acme/shop","clone_url":"https://github.com/acme/shop.git","private":true,"default_branch":"main","created_at":1735689600,"pushed_at":1767607200},"pusher":{"name":"octo-dev","email":"dev@example.com"},"sender":{"login":"octo-dev","id":7}}"#;

#[test]
fn github_signatures_follow_the_documented_vectors() {
    let vector = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let secret = b"It's a Secret to Everybody";
    assert!(github_signature_valid(
        secret,
        b"Hello, World!",
        Some(vector)
    ));
    assert!(!github_signature_valid(
        secret,
        b"Hello, World?",
        Some(vector)
    ));
    assert!(!github_signature_valid(
        b"other",
        b"Hello, World!",
        Some(vector)
    ));
    assert!(!github_signature_valid(secret, b"Hello, World!", None));
    for hostile in [
        "",
        "sha256=",
        "sha256=zz",
        "sha1=757107",
        "sha256=7",
        &vector[..20],
    ] {
        assert!(
            !github_signature_valid(secret, b"Hello, World!", Some(hostile)),
            "{hostile}"
        );
    }
    let ping = "sha256=3d83473d17e1d11deed1eecde8dbbbfae943408955dd49b29cbc1b6b9835fb97";
    assert!(github_signature_valid(
        b"test-secret",
        PING.as_bytes(),
        Some(ping)
    ));
}

#[test]
fn github_pushes_are_read_as_json_and_form_encoded() {
    let expected = GithubEvent::Push(GithubPush {
        git_ref: "refs/heads/main".into(),
        after: "2222222222222222222222222222222222222222".into(),
        clone_url: "https://github.com/acme/shop.git".into(),
        full_name: "acme/shop".into(),
    });
    assert_eq!(
        parse_github("push", "application/json", PUSH.as_bytes()),
        Ok(expected.clone())
    );
    let form = format!(
        "payload={}",
        PUSH.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' =>
                    (b as char).to_string(),
                b' ' => "+".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    );
    assert_eq!(
        parse_github(
            "push",
            "application/x-www-form-urlencoded; charset=utf-8",
            form.as_bytes()
        ),
        Ok(expected)
    );
    assert_eq!(
        parse_github("ping", "application/json", PING.as_bytes()),
        Ok(GithubEvent::Ping)
    );
    assert_eq!(
        parse_github("issues", "application/json", b"{}"),
        Ok(GithubEvent::Other("issues".into()))
    );
    for (content_type, body) in [
        ("application/json", "not json"),
        ("application/json", "{}"),
        ("application/x-www-form-urlencoded", "other=1"),
        ("application/x-www-form-urlencoded", "payload=%zz"),
        ("application/x-www-form-urlencoded", "payload=%7"),
    ] {
        assert!(
            parse_github("push", content_type, body.as_bytes()).is_err(),
            "{body}"
        );
    }
}

fn claimed(host: &str, repository: &str, tag: &str) -> Claim {
    Claim::Push(Claimed {
        host: Some(host.into()),
        repository: repository.into(),
        tag: tag.into(),
    })
}

const DISTRIBUTION: &str = r#"{
   "events": [
      {
         "id": "7d0c5a4e-3f1b-4c2a-9e8d-6b5a4c3d2e1f",
         "timestamp": "2026-01-05T10:01:02.123456789Z",
         "action": "push",
         "target": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "size": 418,
            "digest": "sha256:cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34",
            "length": 418,
            "repository": "acme/web",
            "url": "http://registry.local:5000/v2/acme/web/manifests/sha256:cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34",
            "tag": "1.4.2"
         },
         "request": {"id": "0e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b", "addr": "10.0.0.7:51234", "host": "registry.local:5000", "method": "PUT", "useragent": "skopeo/1.9.3"},
         "actor": {"name": "ci-bot"},
         "source": {"addr": "registry-1:5000", "instanceID": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"}
      }
   ]
}"#;

#[test]
fn registry_payloads_become_the_pushes_they_claim() {
    let ecr = r#"{"version":"0","id":"4e5f6a7b-8c9d-0e1f-2a3b-4c5d6e7f8a9b","detail-type":"ECR Image Action","source":"aws.ecr","account":"210987654321","time":"2026-01-05T10:02:03Z","region":"eu-west-1","resources":[],"detail":{"result":"SUCCESS","repository-name":"acme/web","image-digest":"sha256:ef56ef56ef56ef56ef56ef56ef56ef56ef56ef56ef56ef56ef56ef56ef56ef56","action-type":"PUSH","image-tag":"1.4.2"}}"#;
    let hub = r#"{"callback_url":"https://registry.hub.docker.com/u/acme/web/hook/00aa11bb22cc33dd/","push_data":{"pushed_at":1767607323,"pusher":"acmeci","tag":"1.4.2"},"repository":{"repo_name":"acme/web","name":"web","namespace":"acme","owner":"acme","repo_url":"https://hub.docker.com/r/acme/web","is_private":true,"is_official":false,"is_trusted":false,"status":"Active","star_count":0,"comment_count":0,"date_created":1700000000,"description":"","full_description":"","dockerfile":""}}"#;
    let harbor = r#"{"type":"PUSH_ARTIFACT","occur_at":1767607400,"operator":"robot$acme+ci","event_data":{"resources":[{"digest":"sha256:0a1b0a1b0a1b0a1b0a1b0a1b0a1b0a1b0a1b0a1b0a1b0a1b0a1b0a1b0a1b0a1b","tag":"1.4.2","resource_url":"harbor.acme.test/acme/web:1.4.2"}],"repository":{"date_created":1767000000,"name":"web","namespace":"acme","repo_full_name":"acme/web","repo_type":"private"}}}"#;
    let harbor_ce = r#"{"specversion":"1.0","id":"c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f","requestid":"f0e1d2c3-b4a5-4968-8776-5a4b3c2d1e0f","source":"/projects/3/webhook/policies/7","type":"harbor.artifact.pushed","datacontenttype":"application/json","time":"2026-01-05T10:03:20Z","data":{"resources":[{"digest":"sha256:0a1b0a1b0a1b0a1b0a1b0a1b0a1b0a1b0a1b0a1b0a1b0a1b0a1b0a1b0a1b0a1b","tag":"1.4.2","resource_url":"harbor.acme.test/acme/web:1.4.2"}],"repository":{"name":"web","namespace":"acme","repo_full_name":"acme/web","repo_type":"private"}},"operator":"robot$acme+ci"}"#;
    let quay = r#"{"repository":"acme/web","namespace":"acme","name":"web","docker_url":"quay.acme.test/acme/web","homepage":"https://quay.acme.test/repository/acme/web","updated_tags":["1.4.2","latest"]}"#;
    let gar = r#"{"message":{"attributes":{},"data":"eyJhY3Rpb24iOiJJTlNFUlQiLCJkaWdlc3QiOiJ1cy1lYXN0MS1kb2NrZXIucGtnLmRldi9hY21lLXByb2QvYXBwcy93ZWJAc2hhMjU2OjRmMWMwYjhlN2Q2YTVmNGUzZDJjMWIwYTk5ODg3NzY2NTU0NDMzMjIxMTAwZmZlZWRkY2NiYmFhMDA5OTg4NzciLCJ0YWciOiJ1cy1lYXN0MS1kb2NrZXIucGtnLmRldi9hY21lLXByb2QvYXBwcy93ZWI6MS40LjIifQ==","messageId":"7311540123","message_id":"7311540123","publishTime":"2026-01-05T10:04:05.678Z","publish_time":"2026-01-05T10:04:05.678Z"},"subscription":"projects/acme-prod/subscriptions/orchestrator-push"}"#;
    let cases: Vec<(HookKind, &str, &str, Vec<Claim>)> = vec![
        (
            HookKind::Distribution,
            DISTRIBUTION,
            "7d0c5a4e-3f1b-4c2a-9e8d-6b5a4c3d2e1f",
            vec![claimed("registry.local:5000", "acme/web", "1.4.2")],
        ),
        (
            HookKind::Ecr,
            ecr,
            "4e5f6a7b-8c9d-0e1f-2a3b-4c5d6e7f8a9b",
            vec![claimed(
                "210987654321.dkr.ecr.eu-west-1.amazonaws.com",
                "acme/web",
                "1.4.2",
            )],
        ),
        (
            HookKind::Dockerhub,
            hub,
            "",
            vec![claimed("docker.io", "acme/web", "1.4.2")],
        ),
        (
            HookKind::Harbor,
            harbor,
            "",
            vec![claimed("harbor.acme.test", "acme/web", "1.4.2")],
        ),
        (
            HookKind::Harbor,
            harbor_ce,
            "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f",
            vec![claimed("harbor.acme.test", "acme/web", "1.4.2")],
        ),
        (
            HookKind::Quay,
            quay,
            "",
            vec![
                claimed("quay.acme.test", "acme/web", "1.4.2"),
                claimed("quay.acme.test", "acme/web", "latest"),
            ],
        ),
        (
            HookKind::Gar,
            gar,
            "7311540123",
            vec![claimed(
                "us-east1-docker.pkg.dev",
                "acme-prod/apps/web",
                "1.4.2",
            )],
        ),
        (
            HookKind::Generic,
            r#"{"image":"127.0.0.1:5000/acme/web","tag":"7"}"#,
            "",
            vec![claimed("127.0.0.1:5000", "acme/web", "7")],
        ),
    ];
    for (kind, body, sender_id, claims) in cases {
        let parsed =
            parse_registry(kind, body.as_bytes()).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(
            parsed,
            Parsed {
                sender_id: sender_id.into(),
                claims
            },
            "{kind:?}"
        );
    }
}

#[test]
fn pulls_deletes_blobs_and_untagged_pushes_are_ignored() {
    let with = |from: &str, to: &str| DISTRIBUTION.replace(from, to);
    let pull = with("\"action\": \"push\"", "\"action\": \"pull\"");
    let blob = with(
        "application/vnd.oci.image.manifest.v1+json",
        "application/octet-stream",
    );
    let untagged = with("\"tag\": \"1.4.2\"", "\"tag\": \"\"");
    let delete = r#"{"events":[{"id":"x","action":"delete","target":{"repository":"acme/web","tag":"v1"}}]}"#;
    for body in [pull.as_str(), blob.as_str(), untagged.as_str(), delete] {
        let parsed = parse_registry(HookKind::Distribution, body.as_bytes()).unwrap();
        assert!(
            matches!(parsed.claims.as_slice(), [Claim::Ignored(_)]),
            "{body}: {parsed:?}"
        );
    }
    let ecr_delete = r#"{"id":"1","detail-type":"ECR Image Action","source":"aws.ecr","account":"1","region":"r","detail":{"result":"SUCCESS","repository-name":"a","action-type":"DELETE","image-tag":"1"}}"#;
    let ecr_scan = r#"{"id":"1","detail-type":"ECR Image Scan","source":"aws.ecr","detail":{}}"#;
    let harbor_pull = r#"{"type":"PULL_ARTIFACT","event_data":{"resources":[{"tag":"1","resource_url":"h/a/b:1"}],"repository":{"repo_full_name":"a/b"}}}"#;
    let harbor_digest = r#"{"type":"PUSH_ARTIFACT","event_data":{"resources":[{"tag":"sha256:00","resource_url":"h/a/b@sha256:00"}],"repository":{"repo_full_name":"a/b"}}}"#;
    let hub_untagged = r#"{"push_data":{"tag":""},"repository":{"repo_name":"a/b"}}"#;
    for (kind, body) in [
        (HookKind::Ecr, ecr_delete),
        (HookKind::Ecr, ecr_scan),
        (HookKind::Harbor, harbor_pull),
        (HookKind::Harbor, harbor_digest),
        (HookKind::Dockerhub, hub_untagged),
    ] {
        let parsed = parse_registry(kind, body.as_bytes()).unwrap();
        assert!(
            matches!(parsed.claims.as_slice(), [Claim::Ignored(_)]),
            "{body}: {parsed:?}"
        );
    }
}

#[test]
fn hostile_payloads_are_errors_not_panics() {
    for kind in HookKind::ALL.into_iter().filter(|k| *k != HookKind::Github) {
        for body in [
            "",
            "null",
            "[]",
            "{}",
            "{\"events\":7}",
            "\u{0}",
            "{\"message\":{\"data\":\"!!\"}}",
        ] {
            // Either an error or a (possibly empty) reading: never a panic.
            let _ = parse_registry(kind, body.as_bytes());
        }
    }
    assert!(parse_registry(HookKind::Distribution, b"{}").is_err());
    assert!(parse_registry(HookKind::Generic, br#"{"image":"x"}"#).is_err());
}

#[test]
fn the_hook_registry_names_payloads_without_the_right_host() {
    let hub = Claimed {
        host: Some("docker.io".into()),
        repository: "acme/web".into(),
        tag: "1".into(),
    };
    assert_eq!(image_name(&hub, ""), "docker.io/acme/web");
    assert_eq!(
        image_name(&hub, "127.0.0.1:5000/"),
        "127.0.0.1:5000/acme/web"
    );
    let watches = vec!["acme/".to_owned()];
    assert!(watched(&watches, "docker.io/acme/web", "acme/web"));
    assert!(!watched(&watches, "docker.io/other/web", "other/web"));
    assert!(watched(
        &["docker.io/other".to_owned()],
        "docker.io/other/web",
        "other/web"
    ));
    assert!(watched(&[], "x/y", "y"));
}

#[test]
fn kinds_parse_by_name() {
    for kind in HookKind::ALL {
        assert_eq!(HookKind::parse(kind.as_str()), Ok(kind));
    }
    assert!(HookKind::parse("gitlab").is_err());
}
