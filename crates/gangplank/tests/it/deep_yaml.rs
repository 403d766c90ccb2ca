//! A deeply nested YAML spec in a multipart upload is refused at once, and the server keeps
//! answering `/health` while such uploads are in flight.

use std::time::{Duration, Instant};

use crate::support::{ADMIN, Server, error_message};

const BOUNDARY: &str = "gangplank-deep-yaml";

fn multipart(spec: &str) -> Vec<u8> {
    let mut body = String::new();
    for (name, value) in [("type", "workload"), ("name", "deep")] {
        body.push_str(&format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"spec\"; filename=\"score.yaml\"\r\n\
         Content-Type: application/yaml\r\n\r\n{spec}\r\n--{BOUNDARY}--\r\n"
    ));
    body.into_bytes()
}

#[test]
fn deep_yaml_is_refused_while_health_answers() {
    let server = Server::start();
    let depth = 100_000;
    let documents = [
        (
            "flow mappings",
            format!("{}x{}", "{a: ".repeat(depth), "}".repeat(depth)),
        ),
        (
            "flow sequences",
            format!("{}{}", "[".repeat(depth), "]".repeat(depth)),
        ),
        ("block sequences", format!("{}x\n", "- ".repeat(depth))),
        // libyaml ends a comment at CR, NEL, LS and PS as well as LF.
        (
            "after a comment ended by CR",
            format!("# x\r{}{}", "[".repeat(depth), "]".repeat(depth)),
        ),
        (
            "after a comment ended by NEL",
            format!("# x\u{85}{}{}", "[".repeat(depth), "]".repeat(depth)),
        ),
        (
            "after a comment ended by LS",
            format!("# x\u{2028}{}{}", "[".repeat(depth), "]".repeat(depth)),
        ),
        ("wide and deep", {
            let unit = format!("{}x{}, ", "{a: ".repeat(126), "}".repeat(126));
            format!("[{}]", unit.repeat(1_000_000 / unit.len()))
        }),
    ];
    // As many uploads at once as the server has worker threads, so a parse on the workers
    // would leave none for /health.
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    for (style, spec) in documents {
        let body = multipart(&spec);
        let uploads: Vec<_> = (0..parallel)
            .map(|_| {
                let (http, base, body) = (server.http.clone(), server.base.clone(), body.clone());
                std::thread::spawn(move || {
                    let start = Instant::now();
                    let response = http
                        .post(format!("{base}/orgs/default/artefact-versions"))
                        .bearer_auth(ADMIN)
                        .header(
                            "content-type",
                            format!("multipart/form-data; boundary={BOUNDARY}"),
                        )
                        .body(body)
                        .send()
                        .expect("the upload is answered");
                    let status = response.status().as_u16();
                    let text = response.text().unwrap_or_default();
                    (status, text, start.elapsed())
                })
            })
            .collect();
        let start = Instant::now();
        let health = server
            .http
            .get(format!("{}/health", server.base))
            .timeout(Duration::from_secs(5))
            .send()
            .expect("/health answers during the uploads");
        assert_eq!(health.status().as_u16(), 200);
        println!("{style}: /health answered in {:?}", start.elapsed());
        for upload in uploads {
            let (status, text, took) = upload.join().unwrap();
            println!("{style}: {status} in {took:?}");
            assert_eq!(status, 400, "{style}: {text}");
            let body: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert!(error_message(&body).starts_with("spec: nests "), "{body}");
        }
    }
    // Aliases repeating a large anchor: 20 KB standing for ten million values.
    let leaf: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    let aliases = vec!["*l"; 10_000].join(",");
    let bomb = format!("a: &l [{}]\nb: [{aliases}]\n", leaf.join(","));
    let (status, body) = server.raw(
        "POST",
        "/orgs/default/artefact-versions",
        Some(ADMIN),
        &format!("multipart/form-data; boundary={BOUNDARY}"),
        multipart(&bomb),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        error_message(&body).contains("expands to more than"),
        "{body}"
    );
    // An ordinary spec still goes through the same path.
    let ok = multipart(
        "apiVersion: score.dev/v1b1\nmetadata:\n  name: shallow\ncontainers:\n  main:\n    image: nginx\n",
    );
    let (status, version) = server.raw(
        "POST",
        "/orgs/default/artefact-versions",
        Some(ADMIN),
        &format!("multipart/form-data; boundary={BOUNDARY}"),
        ok,
    );
    assert_eq!(status, 200, "{version}");
}
