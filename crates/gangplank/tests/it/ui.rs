//! The dashboard over plain HTTP: security headers, session cookie flags, CSRF refusals, role
//! checks on the buttons and on forged POSTs, sign-out revoking the session, HTML error pages
//! beside the API's unchanged JSON errors.

use reqwest::blocking::{Client, Response};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use crate::support::{ADMIN, Server, wait_deploy_final};

/// A client that shows redirects instead of following them, and keeps no cookies itself.
pub fn browserless() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Percent-encodes a form value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The value of hidden input `name` in a page (the first).
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no hidden {name} in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// `name=value` of the `Set-Cookie` header for cookie `name`, and the whole header.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<(String, String)> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| (v.split(';').next().unwrap().to_owned(), v.to_owned()))
}

fn post(http: &Client, url: &str, cookie: &str, body: String, extra: &[(&str, &str)]) -> Response {
    let mut request = http
        .post(url)
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    for (k, v) in extra {
        request = request.header(*k, *v);
    }
    request.send().unwrap()
}

fn get(http: &Client, url: &str, cookie: &str) -> Response {
    http.get(url).header("cookie", cookie).send().unwrap()
}

/// Signs in with `token` through the form; returns the sign-in response.
fn sign_in_response(
    server: &Server,
    http: &Client,
    token: &str,
    extra: &[(&str, &str)],
) -> Response {
    let page = http
        .get(format!("{}/ui/sign-in", server.base))
        .send()
        .unwrap();
    let (pre, _) = set_cookie(page.headers(), "gp_sign_in").expect("the sign-in cookie");
    let html = page.text().unwrap();
    let csrf = hidden(&html, "csrf");
    post(
        http,
        &format!("{}/ui/sign-in", server.base),
        &pre,
        form(&[("csrf", &csrf), ("next", "/ui"), ("token", token)]),
        extra,
    )
}

/// Signs in with `token`; returns the session cookie (`gp_session=…`).
pub fn sign_in(server: &Server, http: &Client, token: &str) -> String {
    let response = sign_in_response(server, http, token, &[]);
    assert_eq!(response.status(), 303);
    set_cookie(response.headers(), "gp_session").unwrap().0
}

/// Deploys one image into `shop`/`development` (the `none` target) and waits for success.
pub fn deploy_image(server: &Server, image: &str) -> Value {
    let (status, delta) = server.call(
        "POST",
        "/orgs/default/apps/shop/deltas",
        Some(ADMIN),
        Some(json!({"metadata": {"env_id": "development"}, "modules": {"add": {
            "web": {"profile": "humanitec/default-module", "spec": {"containers": {"main": {"image": image}}}}
        }}})),
    );
    assert_eq!(status, 200, "{delta}");
    let (status, deploy) = server.call(
        "POST",
        "/orgs/default/apps/shop/envs/development/deploys",
        Some(ADMIN),
        Some(json!({"delta_id": delta["id"], "comment": format!("ship {image}")})),
    );
    assert_eq!(status, 201, "{deploy}");
    let done = wait_deploy_final(
        server,
        "shop",
        "development",
        deploy["id"].as_str().unwrap(),
    );
    assert_eq!(done["status"], "succeeded", "{done}");
    done
}

fn deploys(server: &Server) -> Vec<Value> {
    let (status, list) = server.call(
        "GET",
        "/orgs/default/apps/shop/envs/development/deploys",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200);
    list.as_array().unwrap().clone()
}

#[test]
fn pages_carry_security_headers_and_sessions_strict_cookies() {
    let server = Server::start();
    let http = browserless();
    // Signed out: the overview sends the browser to sign in, and back afterwards.
    let response = http.get(format!("{}/ui", server.base)).send().unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()[LOCATION], "/ui/sign-in?next=%2Fui");

    let page = http
        .get(format!("{}/ui/sign-in", server.base))
        .send()
        .unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let (_, pre) = set_cookie(&headers, "gp_sign_in").unwrap();
    assert!(
        pre.contains("HttpOnly") && pre.contains("SameSite=Strict"),
        "{pre}"
    );

    // A wrong token: the form again, 401, and no session.
    let refused = sign_in_response(&server, &http, "gp_not_a_token", &[]);
    assert_eq!(refused.status(), 401);
    assert!(set_cookie(refused.headers(), "gp_session").is_none());
    assert!(refused.text().unwrap().contains("That token is not valid"));

    // The right one: a session cookie, HTTP-only, strict, scoped, expiring; not Secure over
    // plain HTTP, Secure when a TLS proxy says the browser used HTTPS.
    let response = sign_in_response(&server, &http, ADMIN, &[]);
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()[LOCATION], "/ui");
    let (session, flags) = set_cookie(response.headers(), "gp_session").unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=43200"] {
        assert!(flags.contains(flag), "{flags}");
    }
    assert!(!flags.contains("Secure"), "{flags}");
    assert!(!flags.contains(ADMIN), "the token is not in the cookie");
    let behind_tls = sign_in_response(&server, &http, ADMIN, &[("x-forwarded-proto", "https")]);
    let (_, tls_flags) = set_cookie(behind_tls.headers(), "gp_session").unwrap();
    assert!(tls_flags.ends_with("; Secure"), "{tls_flags}");

    let overview = get(&http, &format!("{}/ui", server.base), &session);
    assert_eq!(overview.status(), 200);
    assert!(overview.text().unwrap().contains("Applications"));
    // Neither the session id nor the token is stored or logged in the clear.
    let session_id = session.split_once('=').unwrap().1;
    assert!(!server.log().contains(session_id) && !server.log().contains(ADMIN));

    // HTML error pages under /ui; the API keeps its JSON errors.
    let missing = get(&http, &format!("{}/ui/no/such/page", server.base), &session);
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["x-frame-options"], "DENY");
    assert!(missing.text().unwrap().contains("<h1>404"));
    let no_env = get(
        &http,
        &format!("{}/ui/apps/nope/envs/development", server.base),
        &session,
    );
    assert_eq!(no_env.status(), 404);
    assert!(
        no_env.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let (status, body) = server.call("GET", "/orgs/default/no/such/route", Some(ADMIN), None);
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found", "{body}");
    let (status, body) = server.call("GET", "/orgs/default/apps", None, None);
    assert_eq!(status, 401);
    assert_eq!(body["error"], "unauthorized", "{body}");
}

#[test]
fn forms_need_the_csrf_token_and_the_deploy_role() {
    let server = Server::start();
    server.create_app("shop");
    deploy_image(&server, "registry.example/shop/web:1.0.0");
    deploy_image(&server, "registry.example/shop/web:1.1.0");
    let first = deploys(&server).last().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A viewer of the app: a member of the org with the app's viewer role.
    let (viewer_id, viewer_token) = server.user("member");
    let (status, body) = server.call(
        "POST",
        "/orgs/default/apps/shop/users",
        Some(ADMIN),
        Some(json!({"id": viewer_id, "role": "viewer"})),
    );
    assert_eq!(status, 200, "{body}");
    let http = browserless();
    let env_url = format!("{}/ui/apps/shop/envs/development?org=default", server.base);
    let rollback_url = format!(
        "{}/ui/apps/shop/envs/development/rollback?org=default",
        server.base
    );

    // The viewer sees the history but no deploy buttons, and a forged POST (with the
    // viewer's own valid CSRF token) is refused all the same.
    let viewer = sign_in(&server, &http, &viewer_token);
    let page = get(&http, &env_url, &viewer).text().unwrap();
    assert!(page.contains("registry.example/shop/web:1.1.0"), "{page}");
    assert!(page.contains(&first));
    assert!(
        !page.contains("Roll back to this") && !page.contains(">Redeploy<"),
        "{page}"
    );
    let viewer_csrf = hidden(&page, "csrf");
    let forged = post(
        &http,
        &rollback_url,
        &viewer,
        form(&[("csrf", &viewer_csrf), ("deploy", &first)]),
        &[],
    );
    assert_eq!(forged.status(), 403);
    assert!(forged.text().unwrap().contains("<h1>403"));
    assert_eq!(deploys(&server).len(), 2, "nothing was deployed");

    // The administrator sees the buttons; without the CSRF token (or with another session's)
    // the POST is refused, with it the rollback starts.
    let admin = sign_in(&server, &http, ADMIN);
    let page = get(&http, &env_url, &admin).text().unwrap();
    assert!(
        page.contains("Roll back to this") && page.contains(">Redeploy<"),
        "{page}"
    );
    let csrf = hidden(&page, "csrf");
    for body in [
        form(&[("deploy", &first)]),
        form(&[("csrf", ""), ("deploy", &first)]),
        form(&[("csrf", &viewer_csrf), ("deploy", &first)]),
    ] {
        let refused = post(&http, &rollback_url, &admin, body, &[]);
        assert_eq!(refused.status(), 403);
    }
    assert_eq!(deploys(&server).len(), 2, "nothing was deployed");
    let done = post(
        &http,
        &rollback_url,
        &admin,
        form(&[("csrf", &csrf), ("deploy", &first)]),
        &[],
    );
    assert_eq!(done.status(), 303);
    assert_eq!(
        done.headers()[LOCATION],
        "/ui/apps/shop/envs/development?org=default"
    );
    let all = deploys(&server);
    assert_eq!(all.len(), 3);
    assert_eq!(all[0]["comment"], format!("Rollback to {first}"));
    let rolled = wait_deploy_final(
        &server,
        "shop",
        "development",
        all[0]["id"].as_str().unwrap(),
    );
    assert_eq!(rolled["status"], "succeeded");
    // The same set as the first deployment: the API's rollback path.
    assert_eq!(rolled["set_id"], all[2]["set_id"]);
    let page = get(&http, &format!("{}/ui?org=default", server.base), &admin)
        .text()
        .unwrap();
    assert!(page.contains("registry.example/shop/web:1.0.0"), "{page}");
    // Redeploy without a token is refused too; with one it deploys the current set again.
    let redeploy_url = format!(
        "{}/ui/apps/shop/envs/development/redeploy?org=default",
        server.base
    );
    assert_eq!(
        post(&http, &redeploy_url, &admin, String::new(), &[]).status(),
        403
    );
    let again = post(&http, &redeploy_url, &admin, form(&[("csrf", &csrf)]), &[]);
    assert_eq!(again.status(), 303);
    let all = deploys(&server);
    assert_eq!(all.len(), 4);
    assert_eq!(all[0]["set_id"], all[1]["set_id"]);
    // A sign-in POST without its own CSRF value is refused.
    let bare = post(
        &http,
        &format!("{}/ui/sign-in", server.base),
        "",
        form(&[("token", ADMIN)]),
        &[],
    );
    assert_eq!(bare.status(), 403);
}

#[test]
fn sign_out_revokes_the_session() {
    let server = Server::start();
    let http = browserless();
    let session = sign_in(&server, &http, ADMIN);
    let page = get(&http, &format!("{}/ui", server.base), &session);
    assert_eq!(page.status(), 200);
    let csrf = hidden(&page.text().unwrap(), "csrf");
    let sign_out = format!("{}/ui/sign-out", server.base);
    // Without the CSRF token, nothing happens.
    assert_eq!(
        post(&http, &sign_out, &session, String::new(), &[]).status(),
        403
    );
    assert_eq!(
        get(&http, &format!("{}/ui", server.base), &session).status(),
        200
    );
    let out = post(&http, &sign_out, &session, form(&[("csrf", &csrf)]), &[]);
    assert_eq!(out.status(), 303);
    assert_eq!(out.headers()[LOCATION], "/ui/sign-in");
    let (cleared, flags) = set_cookie(out.headers(), "gp_session").unwrap();
    assert_eq!(cleared, "gp_session=");
    assert!(flags.contains("Max-Age=0"), "{flags}");
    // The old cookie is worthless now: revoked on the server, not just forgotten.
    let after = get(&http, &format!("{}/ui", server.base), &session);
    assert_eq!(after.status(), 303);
    assert!(
        after.headers()[LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/ui/sign-in")
    );
}

#[test]
fn deleting_the_token_ends_its_sessions() {
    let server = Server::start();
    let http = browserless();
    let (user_id, token) = server.user("member");
    let session = sign_in(&server, &http, &token);
    assert_eq!(
        get(&http, &format!("{}/ui", server.base), &session).status(),
        200
    );
    let (status, body) = server.call(
        "DELETE",
        &format!("/users/{user_id}/tokens/ci"),
        Some(ADMIN),
        None,
    );
    assert!(status == 204 || status == 200, "{status} {body}");
    assert_eq!(
        get(&http, &format!("{}/ui", server.base), &session).status(),
        303
    );
}
