//! The dashboard in a real browser: Debian's chromium driven by its chromedriver over
//! WebDriver (thirtyfour). Sign in with a token, read the overview, open an environment, roll
//! back with a click and watch the new deployment appear and succeed without a reload (the
//! server-sent events), with screenshots at 1280 and 390 px, no horizontal overflow at 390 px
//! and an accessible name on every form control. Fails (does not skip) without chromium.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};
use thirtyfour::ChromiumLikeCapabilities;
use thirtyfour::prelude::*;
use tokio::runtime::Runtime;

use crate::support::{ADMIN, Server, poll};
use crate::ui::{browserless, deploy_image};

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

/// A chromedriver on a free port, stopped when dropped.
struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    fn start() -> ChromeDriver {
        for program in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(program).exists(),
                "{program} is missing: install the Debian packages chromium and chromium-driver \
                 (`cargo xtask test` does)"
            );
        }
        let port = gangplank_testkit::free_port();
        let child = Command::new(CHROMEDRIVER)
            .args([
                format!("--port={port}"),
                "--allowed-ips=127.0.0.1".to_owned(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let http = browserless();
        poll("chromedriver to be ready", || {
            let status = http.get(format!("{url}/status")).send().ok()?;
            let body: Value = status.json().ok()?;
            (body["value"]["ready"] == true).then_some(())
        });
        ChromeDriver { child, url }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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

/// Screenshots the page at 1280 and 390 px, and checks it at both widths: nothing wider than
/// the viewport at 390 px, every form control named.
async fn check_page(driver: &WebDriver, name: &str) {
    let dir = screenshot_dir();
    for width in [1280u32, 390] {
        driver.set_window_rect(0, 0, width, 900).await.unwrap();
        let sizes = driver
            .execute(
                "return [document.documentElement.scrollWidth, window.innerWidth];",
                Vec::<Value>::new(),
            )
            .await
            .unwrap();
        let sizes = sizes.json().clone();
        let (scroll, inner) = (sizes[0].as_i64().unwrap(), sizes[1].as_i64().unwrap());
        if width == 390 {
            assert!(
                scroll <= inner,
                "{name} overflows at 390 px: scrollWidth {scroll} > innerWidth {inner}"
            );
        }
        driver
            .screenshot(&dir.join(format!("{name}-{width}.png")))
            .await
            .unwrap();
    }
    let unnamed = driver
        .execute(UNNAMED_CONTROLS, Vec::<Value>::new())
        .await
        .unwrap();
    assert_eq!(
        unnamed.json(),
        &json!([]),
        "{name}: controls without a name"
    );
    driver.set_window_rect(0, 0, 1280, 900).await.unwrap();
}

/// The deployments the page lists, newest first, as (id, status); read in one script, as the
/// live refresh may replace the list at any moment.
async fn listed(driver: &WebDriver) -> Vec<(String, String)> {
    let rows = driver
        .execute(
            "return Array.from(document.querySelectorAll('li.deploy'))\
               .map(li => [li.dataset.deploy, li.dataset.status]);",
            Vec::<Value>::new(),
        )
        .await
        .unwrap();
    rows.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap_or_default().to_owned(),
                pair[1].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn sign_in_overview_and_a_live_rollback_in_chromium() {
    let server = Server::start();
    server.create_app("shop");
    let first = deploy_image(&server, "registry.example/shop/web:1.0.0");
    let first = first["id"].as_str().unwrap().to_owned();
    deploy_image(&server, "registry.example/shop/web:1.1.0");
    let chromedriver = ChromeDriver::start();
    let rt = Runtime::new().unwrap();
    let driver = rt.block_on(async {
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(CHROMIUM).unwrap();
        for arg in CHROMIUM_ARGS {
            caps.add_arg(arg).unwrap();
        }
        WebDriver::new(chromedriver.url.as_str(), caps)
            .await
            .expect("a chromium session")
    });
    let base = server.base.clone();

    // Signed out: the dashboard asks for a token.
    rt.block_on(async {
        driver.goto(format!("{base}/ui")).await.unwrap();
        let url = driver.current_url().await.unwrap();
        assert_eq!(url.path(), "/ui/sign-in", "{url}");
        check_page(&driver, "sign-in").await;
        driver
            .find(By::Id("token"))
            .await
            .unwrap()
            .send_keys(ADMIN)
            .await
            .unwrap();
        driver
            .find(By::Css("form.stack button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    });

    // The overview: the environment runs 1.1.0.
    poll("the overview after signing in", || {
        rt.block_on(async {
            let url = driver.current_url().await.ok()?;
            (url.path() == "/ui").then_some(())
        })
    });
    rt.block_on(async {
        let cell = driver
            .find(By::Css("li.cell[data-env=development]"))
            .await
            .unwrap();
        let text = cell.text().await.unwrap();
        assert!(text.contains("registry.example/shop/web:1.1.0"), "{text}");
        assert!(text.contains("succeeded"), "{text}");
        check_page(&driver, "overview").await;
        driver
            .find(By::Css("li.cell[data-env=development] h3 a"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    });

    // The environment: its history, live.
    poll("the environment page, live", || {
        rt.block_on(async {
            let status = driver.find(By::Id("live-status")).await.ok()?;
            (status.text().await.ok()?.contains("live")).then_some(())
        })
    });
    rt.block_on(async {
        let url = driver.current_url().await.unwrap();
        assert_eq!(url.path(), "/ui/apps/shop/envs/development");
        assert_eq!(listed(&driver).await.len(), 2);
        check_page(&driver, "environment").await;
        // A mark that a reload would wipe.
        driver
            .execute("window.gangplankMark = 'kept';", Vec::<Value>::new())
            .await
            .unwrap();
        driver
            .find(By::Css("button.rollback"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    });
    let rollback = poll("the rollback to appear and succeed in the page", || {
        rt.block_on(async {
            let deploys = listed(&driver).await;
            (deploys.len() == 3 && deploys[0].1 == "succeeded").then(|| deploys[0].0.clone())
        })
    });
    let (_, row) = server.call(
        "GET",
        &format!("/orgs/default/apps/shop/envs/development/deploys/{rollback}"),
        Some(ADMIN),
        None,
    );
    assert_eq!(row["comment"], format!("Rollback to {first}"));

    // A deployment started elsewhere (the API) shows up too: only the event stream can
    // tell the page.
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
            rt.block_on(async {
                let deploys = listed(&driver).await;
                (deploys.first() == Some(&(id.clone(), "succeeded".to_owned()))).then_some(())
            })
        },
    );
    rt.block_on(async {
        let mark = driver
            .execute("return window.gangplankMark;", Vec::<Value>::new())
            .await
            .unwrap();
        assert_eq!(mark.json(), &json!("kept"), "the page was reloaded");
        check_page(&driver, "environment-after-rollback").await;
        // The overview shows the version rolled back to.
        driver.goto(format!("{base}/ui")).await.unwrap();
        let cell = driver
            .find(By::Css("li.cell[data-env=development]"))
            .await
            .unwrap();
        let text = cell.text().await.unwrap();
        assert!(text.contains("registry.example/shop/web:1.0.0"), "{text}");
        // Error pages are pages too.
        driver
            .goto(format!("{base}/ui/no/such/page"))
            .await
            .unwrap();
        check_page(&driver, "not-found").await;
        driver.quit().await.unwrap();
    });
}
