//! The CLI verbs against a real server: config, create, get, delete, api, and error paths.

use assert_cmd::Command;
use serde_json::Value;

use crate::support::{ADMIN, SHA64, Server};

/// A `gangplank` command with its own config dir and no inherited GANGPLANK_* settings.
pub(crate) fn gangplank(config_home: &std::path::Path) -> Command {
    let mut command = Command::new(assert_cmd::cargo::cargo_bin!("gangplank"));
    command
        .env("XDG_CONFIG_HOME", config_home)
        .env("HOME", config_home);
    for name in [
        "GANGPLANK_URL",
        "GANGPLANK_TOKEN",
        "GANGPLANK_ORG",
        "GANGPLANK_APP",
        "GANGPLANK_ENV",
    ] {
        command.env_remove(name);
    }
    command
}

fn json_of(output: &[u8]) -> Value {
    serde_json::from_slice(output)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(output)))
}

#[test]
fn config_create_get_api_and_delete() {
    let server = Server::start();
    let home = tempfile::tempdir().unwrap();
    for (key, value) in [
        ("url", server.base.as_str()),
        ("token", ADMIN),
        ("org", "default"),
    ] {
        gangplank(home.path())
            .args(["config", "set", key, value])
            .assert()
            .success();
    }
    let view = gangplank(home.path())
        .args(["config", "view"])
        .assert()
        .success();
    let view = String::from_utf8_lossy(&view.get_output().stdout).into_owned();
    assert!(
        view.contains("org = \"default\"") && view.contains("<redacted>") && !view.contains(ADMIN),
        "{view}"
    );

    let created = gangplank(home.path())
        .args([
            "create",
            "artefact-version",
            "-t",
            "container",
            "-n",
            "reg.io/team/app",
            "--version",
            SHA64,
            "--ref",
            "refs/heads/main",
            "--commit",
            SHA64,
            "-o",
            "json",
        ])
        .assert()
        .success();
    let created = json_of(&created.get_output().stdout);
    assert_eq!(created["version"], SHA64);

    let score = home.path().join("score.yaml");
    std::fs::write(
        &score,
        "apiVersion: score.dev/v1b1\nmetadata:\n  name: web\ncontainers:\n  web:\n    image: .\n",
    )
    .unwrap();
    gangplank(home.path())
        .args([
            "create",
            "artefact-version",
            "-t",
            "workload",
            "-n",
            "team/web",
            "--version",
            "1.0.0",
            "--spec",
        ])
        .arg(&score)
        .assert()
        .success();

    let listed = gangplank(home.path())
        .args(["get", "artefact-versions", "-o", "json"])
        .assert()
        .success();
    let listed = json_of(&listed.get_output().stdout);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let table = gangplank(home.path())
        .args(["get", "artefact-versions", "-o", "table"])
        .assert()
        .success();
    let table = String::from_utf8_lossy(&table.get_output().stdout).into_owned();
    assert!(
        table.starts_with("ID") && table.contains("team/web"),
        "{table}"
    );
    let yaml = gangplank(home.path())
        .args(["get", "artefacts", "-o", "yaml"])
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&yaml.get_output().stdout).contains("name: reg.io/team/app"));

    gangplank(home.path())
        .args(["create", "app", "shop", "-o", "json"])
        .assert()
        .success();
    gangplank(home.path())
        .args(["--app", "shop", "create", "env", "staging"])
        .assert()
        .success();
    let envs = gangplank(home.path())
        .env("GANGPLANK_APP", "shop")
        .args(["get", "envs", "-o", "json"])
        .assert()
        .success();
    let envs = json_of(&envs.get_output().stdout);
    let ids: Vec<&str> = envs
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["development", "staging"]);

    let me = gangplank(home.path())
        .args(["api", "GET", "/current-user"])
        .assert()
        .success();
    assert_eq!(
        json_of(&me.get_output().stdout)["roles"]["/orgs/default"],
        "administrator"
    );
    gangplank(home.path())
        .args([
            "api",
            "post",
            "/orgs/default/apps",
            "-d",
            r#"{"id": "blog", "name": "Blog"}"#,
        ])
        .assert()
        .success();
    gangplank(home.path())
        .args(["api", "patch", "/orgs/default/apps/blog", "-f", "-"])
        .write_stdin(r#"{"name": "The Blog"}"#)
        .assert()
        .success();
    let blog = gangplank(home.path())
        .args(["get", "app", "blog", "-o", "json"])
        .assert()
        .success();
    assert_eq!(json_of(&blog.get_output().stdout)["name"], "The Blog");
    gangplank(home.path())
        .args(["delete", "app", "blog"])
        .assert()
        .success();
    gangplank(home.path())
        .args(["get", "app", "blog"])
        .assert()
        .code(1);
}

#[test]
fn errors_are_one_line_with_the_right_exit_code() {
    let server = Server::start();
    let home = tempfile::tempdir().unwrap();
    let one_line = |output: &std::process::Output| {
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        stderr
    };
    // No organization configured: a usage error.
    let out = gangplank(home.path())
        .args(["--url", &server.base, "--token", ADMIN, "get", "apps"])
        .assert()
        .code(2);
    assert!(one_line(out.get_output()).contains("organization"));
    // Unknown kind, bad method, bad JSON: usage errors.
    gangplank(home.path())
        .args(["--org", "default", "get", "nonsense"])
        .assert()
        .code(2);
    gangplank(home.path())
        .args(["api", "fetch", "/x"])
        .assert()
        .code(2);
    gangplank(home.path())
        .args(["--url", &server.base, "api", "post", "/x", "-d", "{nope"])
        .assert()
        .code(2);
    // Clap's own usage errors.
    gangplank(home.path())
        .args(["create", "artefact-version", "-n", "x"])
        .assert()
        .code(2);
    // A wrong token: the server's message, exit 1.
    let out = gangplank(home.path())
        .args([
            "--url",
            &server.base,
            "--token",
            "gp_wrong",
            "--org",
            "default",
            "get",
            "apps",
        ])
        .assert()
        .code(1);
    assert!(one_line(out.get_output()).contains("invalid token"));
    // A rejected value names the field.
    let out = gangplank(home.path())
        .args([
            "--url",
            &server.base,
            "--token",
            ADMIN,
            "--org",
            "default",
            "create",
            "artefact-version",
            "-t",
            "container",
            "-n",
            "app",
            "--version",
            "1.0.0",
            "--commit",
            "xyz",
        ])
        .assert()
        .code(1);
    assert!(one_line(out.get_output()).contains("commit"));
    // Nobody listening.
    let out = gangplank(home.path())
        .args([
            "--url",
            "http://127.0.0.1:9",
            "--org",
            "default",
            "get",
            "apps",
        ])
        .assert()
        .code(1);
    assert!(one_line(out.get_output()).contains("cannot reach"));
}

#[test]
fn serve_prints_its_config_with_secrets_redacted() {
    let home = tempfile::tempdir().unwrap();
    let out = gangplank(home.path())
        .env(
            "GANGPLANK_DATABASE_URL",
            "postgres://gp:s3cretpassw0rd@db/gp",
        )
        .env("GANGPLANK_BOOTSTRAP_TOKEN", "a-bootstrap-token-nobody-sees")
        .args(["serve", "--print-config"])
        .assert()
        .success();
    let printed = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(printed.contains("listen = \"127.0.0.1:8080\""), "{printed}");
    assert!(
        !printed.contains("s3cretpassw0rd") && !printed.contains("a-bootstrap-token-nobody-sees"),
        "{printed}"
    );
    let parsed: toml::Table = toml::from_str(&printed)
        .unwrap_or_else(|e| panic!("--print-config is not TOML ({e}):\n{printed}"));
    assert_eq!(parsed["bootstrap_token"].as_str(), Some("<redacted>"));
    assert_eq!(parsed["webhook"]["allow_private"].as_bool(), Some(false));
}

#[test]
fn print_config_is_toml_when_secrets_are_unset() {
    let home = tempfile::tempdir().unwrap();
    let out = gangplank(home.path())
        .env_remove("GANGPLANK_BOOTSTRAP_TOKEN")
        .env_remove("GANGPLANK_MASTER_KEY")
        .env("GANGPLANK_DATA_DIR", "./data \"quoted\" \u{7f}")
        .args(["serve", "--print-config"])
        .assert()
        .success();
    let printed = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let parsed: toml::Table = toml::from_str(&printed)
        .unwrap_or_else(|e| panic!("--print-config is not TOML ({e}):\n{printed}"));
    assert_eq!(parsed["listen"].as_str(), Some("127.0.0.1:8080"));
    assert_eq!(
        parsed["data_dir"].as_str(),
        Some("./data \"quoted\" \u{7f}")
    );
    assert!(
        !parsed.contains_key("bootstrap_token") && !parsed.contains_key("master_key"),
        "unset secrets are comments: {printed}"
    );
    assert!(printed.contains("# bootstrap_token is unset"), "{printed}");
    assert_eq!(parsed["automation"]["debounce"].as_str(), Some("2s"));
}

/// Runs `gangplank ARGS`, expects exit `code` and one `error: …` line on stderr, returns it.
fn one_error_line(command: &mut Command, code: i32) -> String {
    let out = command.assert().code(code);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

#[test]
fn a_server_url_without_a_scheme_says_to_add_one() {
    let home = tempfile::tempdir().unwrap();
    let line = one_error_line(
        gangplank(home.path()).args(["--url", "127.0.0.1:8080", "--org", "default", "get", "apps"]),
        2,
    );
    assert!(
        line.contains(r#"invalid server URL "127.0.0.1:8080": add http:// or https://"#),
        "{line}"
    );
    assert!(!line.contains("builder error"), "{line}");
    // `host:port` parses as a URL with the scheme `localhost`: still no usable scheme.
    let line = one_error_line(
        gangplank(home.path())
            .env("GANGPLANK_URL", "localhost:8080")
            .args(["--org", "default", "get", "apps"]),
        2,
    );
    assert!(line.contains("add http:// or https://"), "{line}");
    let line = one_error_line(
        gangplank(home.path()).args(["config", "set", "url", "ftp://example.com"]),
        2,
    );
    assert!(line.contains("use http:// or https://"), "{line}");
    assert!(
        !home.path().join("gangplank/config.toml").exists(),
        "nothing saved"
    );
}

#[test]
fn an_unreachable_server_is_named_once_with_what_to_do() {
    let home = tempfile::tempdir().unwrap();
    let line = one_error_line(
        gangplank(home.path()).args([
            "--url",
            "http://127.0.0.1:9",
            "--org",
            "default",
            "get",
            "apps",
        ]),
        1,
    );
    assert!(line.contains("cannot reach http://127.0.0.1:9/"), "{line}");
    assert_eq!(
        line.matches("127.0.0.1:9").count(),
        1,
        "the URL once: {line}"
    );
    assert_eq!(
        line.to_lowercase().matches("refused").count(),
        1,
        "the cause once: {line}"
    );
    assert!(line.contains("GANGPLANK_URL"), "what to do: {line}");
}

#[test]
fn a_private_webhook_target_names_the_setting_that_allows_it() {
    let server = Server::start();
    let home = tempfile::tempdir().unwrap();
    let client = |command: &mut Command| {
        command.args([
            "--url",
            server.base.as_str(),
            "--token",
            ADMIN,
            "--org",
            "default",
            "--app",
            "hooks",
        ]);
    };
    let mut create = gangplank(home.path());
    client(&mut create);
    create.args(["create", "app", "hooks"]).assert().success();
    for url in [
        "http://hooks.example.com/x",
        "https://10.0.0.8/x",
        "https://localhost/x",
    ] {
        let mut command = gangplank(home.path());
        client(&mut command);
        command.args(["create", "webhook", "hook", "--target-url", url]);
        let line = one_error_line(&mut command, 1);
        assert!(
            line.contains("GANGPLANK_WEBHOOK_ALLOW_PRIVATE=true"),
            "{url}: {line}"
        );
    }
}

#[test]
fn a_container_version_needs_its_tag() {
    let server = Server::start();
    let home = tempfile::tempdir().unwrap();
    let base = [
        "--url",
        server.base.as_str(),
        "--token",
        ADMIN,
        "--org",
        "default",
    ];
    for version in [None, Some("")] {
        let mut command = gangplank(home.path());
        command.args(base).args([
            "create",
            "artefact-version",
            "-t",
            "container",
            "-n",
            "registry.example.com/team/app",
        ]);
        if let Some(version) = version {
            command.args(["--version", version]);
        }
        let line = one_error_line(&mut command, 2);
        assert!(line.contains("--version"), "{line}");
    }
    let listed = gangplank(home.path())
        .args(base)
        .args(["get", "artefact-versions", "-o", "json"])
        .assert()
        .success();
    assert_eq!(json_of(&listed.get_output().stdout), serde_json::json!([]));
}

#[test]
fn config_view_honours_the_output_format() {
    let home = tempfile::tempdir().unwrap();
    for (key, value) in [("org", "default"), ("token", ADMIN)] {
        gangplank(home.path())
            .args(["config", "set", key, value])
            .assert()
            .success();
    }
    let json = gangplank(home.path())
        .args(["config", "view", "-o", "json"])
        .assert()
        .success();
    let json = json_of(&json.get_output().stdout);
    assert_eq!(
        json,
        serde_json::json!({"org": "default", "token": "<redacted>"})
    );
    let yaml = gangplank(home.path())
        .args(["-o", "yaml", "config", "view"])
        .assert()
        .success();
    let yaml = String::from_utf8_lossy(&yaml.get_output().stdout).into_owned();
    assert!(
        yaml.contains("org: default") && !yaml.contains(ADMIN),
        "{yaml}"
    );
}

#[test]
fn server_verbs_refuse_client_flags() {
    let home = tempfile::tempdir().unwrap();
    for args in [
        &["serve", "--url", "http://127.0.0.1:1", "--print-config"][..],
        &["--token", "x", "serve", "--print-config"],
        &["serve", "--print-config", "-o", "json"],
        &["agent", "--org", "default"],
        &["--app", "shop", "agent"],
        &["admin", "--env", "development", "rotate-key"],
    ] {
        let line = one_error_line(gangplank(home.path()).args(args), 2);
        assert!(line.contains("is a client option"), "{args:?}: {line}");
    }
    // Below `admin`, clap itself refuses them: they are not defined there.
    gangplank(home.path())
        .args(["admin", "rotate-key", "--env", "development"])
        .assert()
        .code(2);
    for verb in ["serve", "agent"] {
        let help = gangplank(home.path())
            .args([verb, "--help"])
            .assert()
            .success();
        let help = String::from_utf8_lossy(&help.get_output().stdout).into_owned();
        for flag in ["--url", "--token", "--org", "--app", "--env", "--output"] {
            assert!(!help.contains(flag), "{verb} --help shows {flag}:\n{help}");
        }
    }
    let help = gangplank(home.path())
        .args(["get", "--help"])
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&help.get_output().stdout).contains("--url"));
    // From the environment they are not the server's business, and not an error.
    gangplank(home.path())
        .env("GANGPLANK_URL", "http://127.0.0.1:1")
        .env("GANGPLANK_ORG", "default")
        .args(["serve", "--print-config"])
        .assert()
        .success();
}

#[test]
fn deploy_rule_webhook_rollback_resume_explain_and_diff() {
    let server = Server::start();
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: Option<&str>| -> Value {
        let mut command = gangplank(home.path());
        command
            .args([
                "--url",
                server.base.as_str(),
                "--token",
                ADMIN,
                "--org",
                "default",
                "--app",
                "cli",
                "--env",
                "development",
                "-o",
                "json",
            ])
            .args(args);
        if let Some(stdin) = stdin {
            command.write_stdin(stdin);
        }
        let output = command.assert().success().get_output().stdout.clone();
        if output.is_empty() {
            Value::Null
        } else {
            json_of(&output)
        }
    };
    run(&["create", "app", "cli"], None);
    let deploy_image = |version: &str| -> Value {
        let delta = run(
            &["create", "delta", "-f", "-"],
            Some(&format!(
                r#"{{"modules":{{"add":{{"web":{{"spec":{{"containers":{{"main":{{"image":"registry.test/cli/web:{version}"}}}}}}}}}}}}}}"#
            )),
        );
        let deploy = run(
            &[
                "deploy",
                "--delta",
                delta["id"].as_str().unwrap(),
                "-m",
                version,
            ],
            None,
        );
        crate::support::poll("the deployment to succeed", || {
            let list = run(&["get", "deploys"], None);
            list.as_array()
                .unwrap()
                .iter()
                .any(|d| d["id"] == deploy["id"] && d["status"] == "succeeded")
                .then_some(())
        });
        deploy
    };
    let v1 = deploy_image("1");
    let v2 = deploy_image("2");
    let rule = run(
        &[
            "create",
            "rule",
            "--match-ref",
            "^refs/heads/main$",
            "--semver",
            "^2",
        ],
        None,
    );
    assert_eq!(rule["version_policy"]["constraint"], "^2");
    let hook = run(
        &[
            "create",
            "webhook",
            "notify",
            "--target-url",
            "https://hooks.example.com/x",
            "--trigger",
            "deployment.finished",
            "--header",
            "X-Team=core",
        ],
        None,
    );
    assert!(hook["secret"].as_str().unwrap().starts_with("whsec_"));

    let rollback = run(&["rollback"], None);
    assert_eq!(
        rollback["set_id"], v1["set_id"],
        "back to the previous succeeded deployment"
    );
    let env: Value = run(&["get", "envs", "development"], None);
    assert_eq!(env["automation"]["held"], true);
    run(&["resume"], None);
    let env: Value = run(&["get", "envs", "development"], None);
    assert_eq!(env["automation"]["held"], false);

    let diff = run(
        &[
            "diff",
            "sets",
            v1["set_id"].as_str().unwrap(),
            v2["set_id"].as_str().unwrap(),
        ],
        None,
    );
    assert_eq!(
        diff["modules"]["update"]["web"][0]["value"],
        "registry.test/cli/web:2"
    );
    run(
        &[
            "create",
            "artefact-version",
            "-t",
            "container",
            "-n",
            "registry.test/cli/web",
            "--version",
            "3.0.0",
            "--ref",
            "refs/heads/main",
        ],
        None,
    );
    let log = crate::support::poll("an explanation", || {
        let log = run(&["explain"], None);
        log.as_array()
            .unwrap()
            .first()
            .filter(|e| e["outcome"] != "queued")
            .cloned()
    });
    assert_eq!(log["code"], "policy", "3.0.0 is outside ^2: {log}");

    let mut bad = gangplank(home.path());
    bad.args([
        "--url",
        server.base.as_str(),
        "--token",
        ADMIN,
        "--org",
        "default",
        "--app",
        "cli",
        "--env",
        "development",
        "rollback",
        "--to",
        "nope",
    ]);
    let failure = bad.assert().failure();
    let stderr = String::from_utf8_lossy(&failure.get_output().stderr).into_owned();
    assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
}

#[test]
fn registry_create_get_and_creds_for_docker_login() {
    let server = Server::start();
    let home = tempfile::tempdir().unwrap();
    let base = [
        "--url",
        server.base.as_str(),
        "--token",
        ADMIN,
        "--org",
        "default",
    ];
    gangplank(home.path())
        .args(base)
        .args([
            "create",
            "registry",
            "local",
            "--registry",
            "localhost:5000/team",
            "--type",
            "basic",
            "--username",
            "ci",
            "--enable-ci",
        ])
        .env("GANGPLANK_REGISTRY_PASSWORD", "pw-from-env-123")
        .assert()
        .success();
    let listed = gangplank(home.path())
        .args(base)
        .args(["-o", "json", "get", "registries"])
        .assert()
        .success();
    let listed = json_of(&listed.get_output().stdout);
    assert_eq!(listed[0]["registry"], "localhost:5000/team");
    assert_eq!(listed[0]["has_creds"], true);
    let login = gangplank(home.path())
        .args(base)
        .args(["registry", "creds", "local", "--docker-login"])
        .assert()
        .success();
    assert_eq!(
        String::from_utf8_lossy(&login.get_output().stdout),
        "pw-from-env-123\n",
        "only the password on stdout"
    );
    let stderr = String::from_utf8_lossy(&login.get_output().stderr).into_owned();
    assert!(
        stderr
            .trim_end()
            .ends_with("docker login -u ci --password-stdin localhost:5000"),
        "docker login takes a host, not the registry's path: {stderr}"
    );
}

#[test]
fn a_next_page_on_another_origin_is_not_followed_with_the_token() {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    // A stand-in server whose list links its next page to another listener (another port: a
    // different origin), which must see no request at all.
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let foreign = TcpListener::bind("127.0.0.1:0").unwrap();
    let server_url = format!("http://{}", server.local_addr().unwrap());
    let foreign_url = format!("http://{}", foreign.local_addr().unwrap());
    let link = format!("<{foreign_url}/orgs/default/apps?page=2>; rel=\"next\"");
    let answering = std::thread::spawn(move || {
        let (stream, _) = server.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 2 {
            line.clear();
        }
        let body = r#"[{"id":"app_1","name":"shop"}]"#;
        write!(
            &stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Link: {link}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
    });
    let home = tempfile::tempdir().unwrap();
    let line = one_error_line(
        gangplank(home.path())
            .args([
                "--url",
                &server_url,
                "--token",
                ADMIN,
                "--org",
                "default",
                "get",
                "apps",
            ])
            // A client that followed the link would wait for an answer that never comes.
            .timeout(std::time::Duration::from_secs(30)),
        1,
    );
    answering.join().unwrap();
    assert!(line.contains("another origin"), "{line}");
    assert!(line.contains(&foreign_url), "{line}");
    // The CLI has exited: a connection it made would be waiting in the backlog.
    foreign.set_nonblocking(true).unwrap();
    assert!(
        foreign.accept().is_err(),
        "the CLI connected to the other origin"
    );
}
