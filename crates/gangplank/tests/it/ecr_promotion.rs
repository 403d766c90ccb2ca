//! Cross-account promotion into ECR: a pipeline's `promote-image` copies from a registry with
//! plain credentials into an `amazon_ecr` registry whose record holds an AWS key, which the
//! server exchanges at moto (ECR's `GetAuthorizationToken`) for the registry password. ECR
//! itself is a local docker-registry whose htpasswd knows the token moto hands out.

use std::process::{Child, Command};

use gangplank_testkit::{Auth, Registry};
use serde_json::json;

use crate::pipeline_runs::{create_pipeline, start_run, wait_run};
use crate::registries::moto_with_an_ecr_user;
use crate::support::{ADMIN, Server};

const DEV_USER: &str = "dev-robot";
const DEV_PASSWORD: &str = "dev-registry-password-58";

/// Stops moto when the test ends, also when it fails.
struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The registry password moto's ECR hands the key (id, secret) out, asked with boto3 (not
/// Gangplank's code), as `AWS:PASSWORD`'s password.
fn moto_ecr_password(port: u16, key_id: &str, secret: &str) -> String {
    let script = r#"
import base64, boto3, sys
ecr = boto3.client("ecr", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])
token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
user, password = base64.b64decode(token).decode().split(":", 1)
assert user == "AWS", user
print(password)
"#;
    let output = Command::new("python3")
        .args([
            "-c",
            script,
            &format!("http://127.0.0.1:{port}"),
            key_id,
            secret,
        ])
        .output()
        .expect("python3 with boto3 (moto[server] brings it)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
fn promote_image_into_an_ecr_registry_logs_in_with_the_exchanged_token() {
    let (moto, moto_port, key_id, secret) = moto_with_an_ecr_user();
    let _moto = Moto(moto);
    let password = moto_ecr_password(moto_port, &key_id, &secret);
    assert_eq!(
        moto_ecr_password(moto_port, &key_id, &secret),
        password,
        "moto hands out one password per account, so the registry can know it in advance"
    );
    let dev = Registry::start_with(Auth::Htpasswd(DEV_USER, DEV_PASSWORD));
    let prod = Registry::start_with(Auth::Htpasswd("AWS", &password));
    let (dev_creds, prod_creds) = (
        Some((DEV_USER, DEV_PASSWORD)),
        Some(("AWS", password.as_str())),
    );
    assert!(
        !prod.skopeo_login(&key_id, &secret),
        "the AWS key itself is no login to the ECR stand-in"
    );

    // The local "ECR" has no `<account>.dkr.ecr.<region>.amazonaws.com` name: the region comes
    // from AWS_REGION, the endpoint from AWS_ENDPOINT_URL_ECR.
    let endpoint = format!("http://127.0.0.1:{moto_port}");
    let server = Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("AWS_ENDPOINT_URL_ECR", endpoint.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("RUST_LOG", "debug"),
    ]);
    for body in [
        json!({"id": "dev", "registry": dev.host(), "type": "basic", "insecure": true,
               "creds": {"username": DEV_USER, "password": DEV_PASSWORD}}),
        json!({"id": "prod-ecr", "registry": prod.host(), "type": "amazon_ecr", "insecure": true,
               "creds": {"username": key_id, "password": secret}}),
    ] {
        let (status, created) =
            server.call("POST", "/orgs/default/registries", Some(ADMIN), Some(body));
        assert_eq!(status, 201, "{created}");
    }
    server.create_app("shop");
    let destination = format!("{}/team/app", prod.host());
    let yaml = format!(
        "id: to-ecr\nname: To ECR\non:\n  pipeline_call:\n    inputs:\n      source: {{type: string, required: true}}\njobs:\n  promote:\n    steps:\n      - id: promote\n        uses: actions/gangplank/promote-image\n        with: {{source: \"${{{{ inputs.source }}}}\", destination: \"{destination}\"}}\n"
    );
    create_pipeline(&server, "shop", &yaml);

    let before = prod.push_tiny_image_as("team/app", "latest", "prod-before", prod_creds);
    let digest = dev.push_tiny_image_as("team/app", "latest", "release-1", dev_creds);
    let source = format!("{}/team/app@{digest}", dev.host());
    let run = start_run(
        &server,
        ADMIN,
        "shop",
        "to-ecr",
        json!({ "source": source }),
    );
    let run = wait_run(&server, "shop", &run, "finished", |r| {
        matches!(
            r["status"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        )
    });
    assert_eq!(run["status"], "succeeded", "{run}");

    assert_eq!(
        prod.skopeo_digest("team/app", "latest", prod_creds),
        digest,
        "the digest is preserved"
    );
    assert_eq!(
        prod.skopeo_digest("team/app", "0.1", prod_creds),
        before,
        "the image it replaced is archived"
    );
    let (status, records) = server.call(
        "GET",
        "/orgs/default/apps/shop/image-promotions",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{records}");
    let record = &records[0];
    assert_eq!(record["destination"], destination.as_str(), "{record}");
    assert_eq!(record["source"]["digest"], digest.as_str(), "{record}");
    assert_eq!(record["run_id"], run["id"], "{record}");
    assert!(
        record["bytes_moved"].as_u64().unwrap_or(0) > 0,
        "across registries the blobs stream: {record}"
    );

    let log = server.log();
    assert!(!log.contains(&secret), "no AWS secret in the log");
    for entry in std::fs::read_dir(server.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{} holds the AWS secret",
            path.display()
        );
    }
}
