//! The test git server against the real git client: a token-protected clone, a refused one,
//! and a shallow fetch of an older commit by id after the branch moved on.

use std::process::Command;

use gangplank_testkit::{GitServer, WorkTree};

fn git(dir: &std::path::Path, args: &[&str], header: Option<&str>) -> std::process::Output {
    let mut command = Command::new("git");
    command
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0");
    if let Some(header) = header {
        command
            .env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "http.extraHeader")
            .env("GIT_CONFIG_VALUE_0", header);
    }
    command.output().unwrap()
}

#[test]
fn clones_with_the_token_and_fetches_an_older_commit_by_id() {
    use base64::Engine as _;
    let server = GitServer::start(Some("tok-Q1"));
    let bare = server.create_repo("shop.git");
    let tree = WorkTree::new(&bare);
    let old = tree.commit(&[("a.txt", b"one".as_slice())], "one");
    tree.push("main");
    let new = tree.commit(&[("a.txt", b"two".as_slice())], "two");
    tree.push("main");
    assert_ne!(old, new);
    let auth = format!(
        "Authorization: Basic {}",
        base64::engine::general_purpose::STANDARD.encode("x-access-token:tok-Q1")
    );
    let dir = tempfile::tempdir().unwrap();
    assert!(git(dir.path(), &["init", "-q"], None).status.success());
    let url = server.url("shop.git");
    let fetched = git(
        dir.path(),
        &["fetch", "--depth", "1", "--no-tags", "--", &url, &old],
        Some(&auth),
    );
    assert!(
        fetched.status.success(),
        "{}",
        String::from_utf8_lossy(&fetched.stderr)
    );
    assert!(
        git(dir.path(), &["checkout", "-q", "--detach", &old], None)
            .status
            .success()
    );
    assert_eq!(std::fs::read(dir.path().join("a.txt")).unwrap(), b"one");
    let refused = git(
        dir.path(),
        &[
            "fetch",
            "--depth",
            "1",
            "--no-tags",
            "--",
            &url,
            "refs/heads/main",
        ],
        Some("Authorization: Basic eDp3cm9uZw=="),
    );
    assert!(!refused.status.success());
    assert!(server.refused() > 0);
}
