//! The dashboard in a real browser: Debian's chromium driven by its chromedriver over
//! WebDriver. Sign in with a token, read the overview, open an environment, roll back with a
//! click and watch the new deployment appear and succeed without a reload (the server-sent
//! events), with screenshots at 1280 and 390 px, no horizontal overflow at 390 px and an
//! accessible name on every form control. Fails (does not skip) without chromium.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::{ADMIN, Server, poll};
use crate::ui::deploy_image;
use crate::webdriver::{Browser, ChromeDriver};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// `test-infrastructure.md` §8: headless, as root, and nothing reaching out to Google.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
];

/// Where screenshots go: `target/ui-screenshots/`.
fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/it-… → target
    let target = exe.ancestors().nth(3).unwrap().to_path_buf();
    let dir = target.join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every visible form control without an accessible name (label, aria-label(ledby), or a
/// button's text), as HTML.
const UNNAMED_CONTROLS: &str = r#"
const unnamed = [];
for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea, button')) {
  const labelled = (el.getAttribute('aria-labelledby') || '').split(/\s+/).filter(Boolean)
    .map(id => (document.getElementById(id) || {}).textContent || '').join(' ').trim();
  const labels = Array.from(el.labels || []).map(l => l.textContent.trim()).join(' ').trim();
  const own = (el.getAttribute('aria-label') || '').trim();
  const text = el.tagName === 'BUTTON' ? el.textContent.trim() : '';
  if (!(own || labelled || labels || text)) { unnamed.push(el.outerHTML); }
}
return unnamed;
"#;

/// Screenshots the page at 1280 and 390 px, and checks it: nothing wider than the viewport at
/// 390 px, every form control named.
fn check_page(browser: &Browser, name: &str) {
    let dir = screenshot_dir();
    for width in [1280u32, 390] {
        browser.set_size(width, 900);
        let sizes =
            browser.execute("return [document.documentElement.scrollWidth, window.innerWidth];");
        let (scroll, inner) = (sizes[0].as_i64().unwrap(), sizes[1].as_i64().unwrap());
        if width == 390 {
            assert!(
                scroll <= inner,
                "{name} overflows at 390 px: scrollWidth {scroll} > innerWidth {inner}"
            );
        }
        browser.screenshot(&dir.join(format!("{name}-{width}.png")));
    }
    assert_eq!(
        browser.execute(UNNAMED_CONTROLS),
        json!([]),
        "{name}: form controls without a name"
    );
    browser.set_size(1280, 900);
}

/// The deployments the page lists, newest first, as (id, status); read in one script, as the
/// live refresh may replace the list at any moment. `None` while the page is navigating.
fn listed(browser: &Browser) -> Option<Vec<(String, String)>> {
    let rows = browser.try_execute(
        "return Array.from(document.querySelectorAll('li.deploy'))\
           .map(li => [li.dataset.deploy, li.dataset.status]);",
    )?;
    Some(
        rows.as_array()?
            .iter()
            .map(|pair| {
                (
                    pair[0].as_str().unwrap_or_default().to_owned(),
                    pair[1].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
    )
}

/// The text of the overview's cell for `development`.
fn development_cell(browser: &Browser) -> String {
    let text = browser
        .execute("return document.querySelector('li.cell[data-env=development]').innerText;");
    text.as_str().unwrap().to_owned()
}

#[test]
fn sign_in_overview_and_a_live_rollback_in_chromium() {
    for program in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(program).exists(),
            "{program} is missing: install the Debian packages chromium and chromium-driver \
             (`cargo xtask ci` does)"
        );
    }
    let server = Server::start();
    server.create_app("shop");
    let first = deploy_image(&server, "registry.example/shop/web:1.0.0");
    let first = first["id"].as_str().unwrap().to_owned();
    deploy_image(&server, "registry.example/shop/web:1.1.0");
    let chromedriver = ChromeDriver::start(CHROMEDRIVER);
    let browser = Browser::new(&chromedriver, CHROMIUM, CHROMIUM_ARGS);
    let base = server.base.clone();

    // Signed out: the dashboard asks for a token.
    browser.goto(&format!("{base}/ui"));
    assert_eq!(browser.path(), "/ui/sign-in?next=%2Fui");
    check_page(&browser, "sign-in");
    let token = browser.find("#token");
    browser.type_into(&token, ADMIN);
    browser.click(&browser.find("form.stack button[type=submit]"));

    // The overview: the environment runs 1.1.0, deployed successfully.
    poll("the overview after signing in", || {
        (browser.path() == "/ui").then_some(())
    });
    let cell = development_cell(&browser);
    assert!(cell.contains("registry.example/shop/web:1.1.0"), "{cell}");
    assert!(cell.contains("succeeded"), "{cell}");
    check_page(&browser, "overview");
    browser.click(&browser.find("li.cell[data-env=development] h3 a"));

    // The environment: its history, live.
    poll("the environment page, live", || {
        let live = browser.try_execute(
            "const s = document.getElementById('live-status'); return s ? s.textContent : '';",
        )?;
        live.as_str()?.contains("live").then_some(())
    });
    assert_eq!(browser.path(), "/ui/apps/shop/envs/development?org=default");
    assert_eq!(listed(&browser).unwrap().len(), 2);
    check_page(&browser, "environment");
    // A mark that a reload would wipe.
    browser.execute("window.gangplankMark = 'kept';");
    browser.click(&browser.find("button.rollback"));
    let rollback = poll("the rollback to appear and succeed in the page", || {
        let deploys = listed(&browser)?;
        (deploys.len() == 3 && deploys[0].1 == "succeeded").then(|| deploys[0].0.clone())
    });
    let (_, row) = server.call(
        "GET",
        &format!("/orgs/default/apps/shop/envs/development/deploys/{rollback}"),
        Some(ADMIN),
        None,
    );
    assert_eq!(row["comment"], format!("Rollback to {first}"));

    // A deployment started elsewhere (the API) shows up too: only the event stream can tell
    // the page about it.
    let (status, started) = server.call(
        "POST",
        "/orgs/default/apps/shop/envs/development/deploys",
        Some(ADMIN),
        Some(json!({"set_id": row["set_id"], "comment": "from the API"})),
    );
    assert_eq!(status, 201, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    poll(
        "the API's deployment to appear and succeed in the page",
        || {
            let deploys = listed(&browser)?;
            (deploys.first() == Some(&(id.clone(), "succeeded".to_owned()))).then_some(())
        },
    );
    assert_eq!(
        browser.execute("return window.gangplankMark;"),
        Value::from("kept"),
        "the page was reloaded"
    );
    check_page(&browser, "environment-live");

    // The overview shows the version rolled back to; error pages are pages too.
    browser.goto(&format!("{base}/ui"));
    let cell = development_cell(&browser);
    assert!(cell.contains("registry.example/shop/web:1.0.0"), "{cell}");
    browser.goto(&format!("{base}/ui/no/such/page"));
    check_page(&browser, "not-found");
}
