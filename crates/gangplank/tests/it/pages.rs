//! Every list pages: `per_page` (1–100, default 50), an opaque `page` cursor, and a
//! `Link: <…>; rel="next"` header while more items exist (issue 11, item 5).

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::support::{ADMIN, SHA64, Server, error_message, wait_deploy_final};

/// GETs `path` (or an absolute URL) and returns status, body and the `Link` header.
fn get(server: &Server, path_or_url: &str) -> (u16, Value, Option<String>) {
    let url = if path_or_url.starts_with("http") {
        path_or_url.to_owned()
    } else {
        format!("{}{path_or_url}", server.base)
    };
    let response = server.http.get(url).bearer_auth(ADMIN).send().unwrap();
    let status = response.status().as_u16();
    let link = response
        .headers()
        .get("link")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.json().unwrap_or(Value::Null);
    (status, body, link)
}

/// The target of a `<…>; rel="next"` header: path-absolute, as the server sends it.
fn next_of(link: &str) -> String {
    let (target, rel) = link
        .strip_prefix('<')
        .and_then(|l| l.split_once('>'))
        .unwrap_or_else(|| panic!("not a link: {link}"));
    assert_eq!(rel, "; rel=\"next\"", "{link}");
    assert!(target.starts_with('/'), "path-absolute: {link}");
    target.to_owned()
}

/// Walks every page from `path`; returns the pages' sizes, the items in order, and the
/// links followed.
fn walk(server: &Server, path: &str) -> (Vec<usize>, Vec<Value>, Vec<String>) {
    let (mut sizes, mut items, mut links) = (Vec::new(), Vec::new(), Vec::new());
    let mut next = Some(path.to_owned());
    while let Some(path) = next.take() {
        let (status, body, link) = get(server, &path);
        assert_eq!(status, 200, "{path}: {body}");
        let page = body.as_array().unwrap();
        sizes.push(page.len());
        items.extend(page.iter().cloned());
        if let Some(link) = link {
            let target = next_of(&link);
            links.push(target.clone());
            next = Some(target);
        }
        assert!(sizes.len() < 100, "the walk does not end");
    }
    (sizes, items, links)
}

fn post(server: &Server, path: &str, body: Value) -> Value {
    let (status, answer) = server.call("POST", path, Some(ADMIN), Some(body));
    assert!((200..300).contains(&status), "{path}: {status} {answer}");
    answer
}

fn version(server: &Server, name: &str, n: usize) -> String {
    let body = json!({"name": name, "type": "container", "version": format!("1.0.{n}"),
                      "commit": SHA64, "ref": "refs/heads/main"});
    post(server, "/orgs/default/artefact-versions", body)["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn versions_walk_every_page_once_in_order_and_keep_filters() {
    let server = Server::start();
    // 120 of one artefact and 30 of another, interleaved: 150 in all.
    let mut created = Vec::new();
    let mut created_a = Vec::new();
    for n in 0..150 {
        let name = if n % 5 == 4 {
            "registry.example.com/b"
        } else {
            "registry.example.com/a"
        };
        let id = version(&server, name, n);
        if name.ends_with("/a") {
            created_a.push(id.clone());
        }
        created.push(id);
    }
    let newest_first = |ids: &[String]| ids.iter().rev().cloned().collect::<Vec<_>>();
    let ids = |items: &[Value]| {
        items
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };

    // 150 = 3 full pages: the third has no Link although it is full.
    let (sizes, items, _) = walk(&server, "/orgs/default/artefact-versions?per_page=50");
    assert_eq!(sizes, [50, 50, 50]);
    assert_eq!(
        ids(&items),
        newest_first(&created),
        "none missing, none doubled, in order"
    );

    // The default page is 50 as well, and a filter survives every page.
    let (sizes, items, links) = walk(
        &server,
        "/orgs/default/artefact-versions?name=registry.example.com%2Fa",
    );
    assert_eq!(sizes, [50, 50, 20]);
    assert_eq!(ids(&items), newest_first(&created_a));
    assert!(
        links
            .iter()
            .all(|l| l.contains("name=registry.example.com%2Fa") && l.contains("per_page=50")),
        "{links:?}"
    );
    assert_eq!(
        items
            .iter()
            .map(|v| v["id"].as_str().unwrap())
            .collect::<HashSet<_>>()
            .len(),
        120
    );

    // The per-artefact list pages the same way, and `limit` caps the whole listing.
    let artefact = items[0]["artefact_id"].as_str().unwrap().to_owned();
    let (sizes, items, _) = walk(
        &server,
        &format!("/orgs/default/artefacts/{artefact}/versions?per_page=100"),
    );
    assert_eq!(sizes, [100, 20]);
    assert_eq!(ids(&items), newest_first(&created_a));
    let (sizes, items, links) = walk(
        &server,
        &format!("/orgs/default/artefacts/{artefact}/versions?per_page=30&limit=70"),
    );
    assert_eq!(sizes, [30, 30, 10]);
    assert_eq!(ids(&items), newest_first(&created_a)[..70]);
    assert!(links[0].contains("limit=40"), "{links:?}");

    // A version registered between two pages appears on neither (it is newer than the
    // cursor) and the walk still ends with nothing doubled.
    let (_, first, link) = get(&server, "/orgs/default/artefact-versions?per_page=100");
    version(&server, "registry.example.com/a", 999);
    let (_, second, link) = get(&server, &next_of(&link.unwrap()));
    assert!(link.is_none());
    assert_eq!(
        first.as_array().unwrap().len() + second.as_array().unwrap().len(),
        150
    );
}

#[test]
fn bad_page_parameters_are_400_naming_the_parameter() {
    let server = Server::start();
    for n in 0..3 {
        version(&server, "registry.example.com/a", n);
    }
    let (_, _, link) = get(&server, "/orgs/default/artefact-versions?per_page=1");
    let target = next_of(&link.unwrap());
    let token = target
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("page="))
        .unwrap()
        .to_owned();
    let cases = [
        ("per_page=0", "per_page"),
        ("per_page=101", "per_page"),
        ("per_page=ten", "per_page"),
        ("per_page=-1", "per_page"),
        ("per_page=5&per_page=6", "per_page"),
        ("page=AAAAAAAAAA%3D%3D", "page"),
        ("page=not-a-token", "page"),
        ("page=", "page"),
    ];
    for (query, parameter) in cases {
        let (status, body, _) = get(&server, &format!("/orgs/default/artefact-versions?{query}"));
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            error_message(&body).starts_with(&format!("{parameter}:")),
            "{query}: {body}"
        );
    }
    // The real token works; edited, or taken to another list, it does not.
    let (status, _, _) = get(
        &server,
        &format!("/orgs/default/artefact-versions?page={token}"),
    );
    assert_eq!(status, 200);
    let mut edited = token.clone().into_bytes();
    edited[3] = if edited[3] == b'A' { b'B' } else { b'A' };
    let edited = String::from_utf8(edited).unwrap();
    let (status, body, _) = get(
        &server,
        &format!("/orgs/default/artefact-versions?page={edited}"),
    );
    assert_eq!(status, 400, "{body}");
    let (status, body, _) = get(&server, &format!("/orgs/default/apps?page={token}"));
    assert_eq!(status, 400, "{body}");
    assert!(error_message(&body).starts_with("page:"), "{body}");
}

/// Two of everything that can be listed, in an app `shop` with environment `development`.
fn two_of_everything(server: &Server) -> (String, String, String) {
    for app in ["shop", "other"] {
        post(server, "/orgs/default/apps", json!({"id": app}));
    }
    post(server, "/orgs/default/env-types", json!({"id": "qa"}));
    post(
        server,
        "/orgs/default/apps/shop/envs",
        json!({"id": "qa", "type": "qa"}),
    );
    let (member, _) = server.user("member");
    post(
        server,
        &format!("/users/{member}/tokens"),
        json!({"id": "second", "type": "static"}),
    );
    post(
        server,
        "/orgs/default/apps/shop/users",
        json!({"id": member, "role": "viewer"}),
    );
    version(server, "registry.example.com/a", 1);
    let artefact = post(
        server,
        "/orgs/default/artefact-versions",
        json!({"name": "registry.example.com/a", "type": "container", "version": "1.0.2", "commit": SHA64}),
    )["artefact_id"]
        .as_str()
        .unwrap()
        .to_owned();
    version(server, "registry.example.com/b", 1);
    for id in ["one", "two"] {
        post(
            server,
            "/orgs/default/registries",
            json!({"id": id, "registry": format!("{id}.example.com"), "type": "basic"}),
        );
        post(
            server,
            "/orgs/default/apps/shop/envs/development/rules",
            json!({"type": "update", "match_ref": format!("^refs/heads/{id}$")}),
        );
    }
    post(
        server,
        "/orgs/default/apps/shop/webhooks",
        json!({"id": "hook", "url": "http://127.0.0.1:9/", "triggers": [{"scope": "environment", "type": "created"}]}),
    );
    post(
        server,
        "/orgs/default/apps/shop/webhooks",
        json!({"id": "hook-2", "url": "http://127.0.0.1:9/", "triggers": [{"scope": "environment", "type": "created"}]}),
    );
    for env in ["staging", "production"] {
        post(
            server,
            "/orgs/default/apps/shop/envs",
            json!({"id": env, "type": "development"}),
        );
    }
    let mut deploy = String::new();
    for image in ["img:1", "img:2"] {
        let delta = post(
            server,
            "/orgs/default/apps/shop/deltas",
            json!({"metadata": {"env_id": "development"}, "modules": {"add": {"web": {"profile": "humanitec/default-module", "spec": {"containers": {"main": {"image": image}}}}}}}),
        );
        deploy = post(
            server,
            "/orgs/default/apps/shop/envs/development/deploys",
            json!({"delta_id": delta["id"]}),
        )["id"]
            .as_str()
            .unwrap()
            .to_owned();
        wait_deploy_final(server, "shop", "development", &deploy);
    }
    (member, artefact, deploy)
}

#[test]
fn every_list_endpoint_pages_with_a_link_while_more_exist() {
    let server = Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_WEBHOOK_ALLOW_PRIVATE", "true"),
    ]);
    let (member, artefact, deploy) = two_of_everything(&server);
    let env = "/orgs/default/apps/shop/envs/development";
    let with_two_or_more = [
        "/orgs/default/apps".to_owned(),
        "/orgs/default/apps/shop/users".to_owned(),
        "/orgs/default/artefact-versions".to_owned(),
        format!("/orgs/default/artefacts/{artefact}/versions"),
        "/orgs/default/artefacts".to_owned(),
        "/orgs/default/apps/shop/deltas".to_owned(),
        format!("{env}/deploys"),
        "/orgs/default/env-types".to_owned(),
        "/orgs/default/apps/shop/envs".to_owned(),
        "/orgs/default/registries".to_owned(),
        format!("{env}/rules"),
        "/orgs/default/apps/shop/sets".to_owned(),
        format!("/users/{member}/tokens"),
        "/orgs/default/users".to_owned(),
        "/orgs/default/apps/shop/webhooks".to_owned(),
        "/orgs/default/events".to_owned(),
        "/orgs/default/apps/shop/webhooks/hook/deliveries".to_owned(),
    ];
    for path in &with_two_or_more {
        let (status, whole, link) = get(&server, path);
        assert_eq!(status, 200, "{path}: {whole}");
        assert!(link.is_none(), "{path}: everything fits one default page");
        let whole = whole.as_array().unwrap().clone();
        assert!(whole.len() >= 2, "{path}: the set-up made two: {whole:?}");
        let (sizes, items, links) = walk(&server, &format!("{path}?per_page=1"));
        assert!(sizes.iter().all(|&n| n == 1), "{path}: {sizes:?}");
        // Deliveries change state while they are retried; identity is what must add up.
        let key = |v: &Value| v.get("id").cloned().unwrap_or_else(|| v.clone());
        assert_eq!(
            items.iter().map(key).collect::<Vec<_>>(),
            whole.iter().map(key).collect::<Vec<_>>(),
            "{path}: the pages add up to the whole list"
        );
        assert_eq!(
            links.len(),
            whole.len() - 1,
            "{path}: a Link on all but the last page"
        );
    }
    // Lists the set-up cannot easily fill still take the parameters and refuse bad ones.
    let (registry_audit, deploy_errors, log) = (
        "/orgs/default/registries/one/creds-audit".to_owned(),
        format!("{env}/deploys/{deploy}/errors"),
        format!("{env}/automation-log"),
    );
    for path in with_two_or_more
        .iter()
        .chain([&registry_audit, &deploy_errors, &log])
    {
        let (status, body, _) = get(&server, &format!("{path}?per_page=1"));
        assert_eq!(status, 200, "{path}: {body}");
        let (status, body, _) = get(&server, &format!("{path}?per_page=0"));
        assert_eq!(status, 400, "{path}: {body}");
        assert!(
            error_message(&body).starts_with("per_page:"),
            "{path}: {body}"
        );
    }
}

#[test]
fn the_cli_follows_pages_and_shows_everything() {
    let server = Server::start();
    for n in 0..60 {
        version(&server, "registry.example.com/a", n);
    }
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gangplank"))
        .args(["get", "artefact-versions", "-o", "json"])
        .env("GANGPLANK_URL", &server.base)
        .env("GANGPLANK_TOKEN", ADMIN)
        .env("GANGPLANK_ORG", "default")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let listed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        listed.as_array().unwrap().len(),
        60,
        "more than one page of 50"
    );
}
