//! A small W3C WebDriver client for the dashboard's browser tests: a session on a
//! chromedriver, and the handful of commands the tests use, over the blocking reqwest the other
//! tests use. (thirtyfour would do, but it turns on serde_json's `preserve_order` for every
//! crate of a test build, so the server under test would order JSON maps differently from the
//! one shipped.)

use std::path::Path;
use std::process::{Child, Command, Stdio};

use base64::Engine;
use reqwest::blocking::Client;
use serde_json::{Value, json};

use crate::support::poll;

/// The key of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver on a free port (`--allowed-ips=127.0.0.1`), stopped when dropped.
pub struct ChromeDriver {
    child: Child,
    pub url: String,
}

impl ChromeDriver {
    pub fn start(program: &str) -> ChromeDriver {
        let port = gangplank_testkit::free_port();
        let child = Command::new(program)
            .args([
                format!("--port={port}"),
                "--allowed-ips=127.0.0.1".to_owned(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let http = Client::new();
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

/// One browser session; closed when dropped.
pub struct Browser {
    http: Client,
    session: String,
}

impl Browser {
    /// A Chrome session running `binary` with `args`.
    pub fn new(driver: &ChromeDriver, binary: &str, args: &[&str]) -> Browser {
        let http = Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .unwrap();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": binary, "args": args},
        }}});
        let answer: Value = http
            .post(format!("{}/session", driver.url))
            .json(&capabilities)
            .send()
            .expect("ask chromedriver for a session")
            .json()
            .unwrap();
        let id = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {answer}"));
        Browser {
            session: format!("{}/session/{id}", driver.url),
            http,
        }
    }

    /// Sends a command; its `value`, or the WebDriver error's name and message.
    fn try_command(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.session);
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let response = request.send().map_err(|e| e.to_string())?;
        let ok = response.status().is_success();
        let answer: Value = response.json().map_err(|e| e.to_string())?;
        if ok {
            Ok(answer["value"].clone())
        } else {
            Err(format!(
                "{}: {}",
                answer["value"]["error"], answer["value"]["message"]
            ))
        }
    }

    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_command(method, path, body)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
    }

    pub fn goto(&self, url: &str) {
        self.command("POST", "/url", Some(json!({"url": url})));
    }

    /// The current address's path (and query).
    pub fn path(&self) -> String {
        let url = self.command("GET", "/url", None);
        let url = url.as_str().unwrap();
        let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
        after_scheme
            .find('/')
            .map_or("/".to_owned(), |i| after_scheme[i..].to_owned())
    }

    /// The element `css` selects (the first); panics when there is none.
    pub fn find(&self, css: &str) -> String {
        let found = self.command(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        found[ELEMENT].as_str().unwrap().to_owned()
    }

    pub fn click(&self, element: &str) {
        self.command("POST", &format!("/element/{element}/click"), None);
    }

    pub fn type_into(&self, element: &str, text: &str) {
        self.command(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({"text": text})),
        );
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub fn execute(&self, script: &str) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Like [`Browser::execute`], but a failure (the page is navigating) is `None`.
    pub fn try_execute(&self, script: &str) -> Option<Value> {
        self.try_command(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .ok()
    }

    pub fn set_size(&self, width: u32, height: u32) {
        self.command(
            "POST",
            "/window/rect",
            Some(json!({"x": 0, "y": 0, "width": width, "height": height})),
        );
    }

    /// A PNG of the viewport, written to `path`.
    pub fn screenshot(&self, path: &Path) {
        let png = self.command("GET", "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.try_command("DELETE", "", None);
    }
}
