//! `gangplank api METHOD PATH [-d JSON | -f FILE | -f -]`: the raw API.

use std::io::Read;

use anyhow::Context;
use gangplank_api::client::Body;
use reqwest::Method;

use crate::UsageError;
use crate::cli::{ApiArgs, Global};
use crate::client_config::Resolved;

pub async fn run(global: &Global, args: ApiArgs) -> anyhow::Result<()> {
    let method = match args.method.to_ascii_lowercase().as_str() {
        "get" => Method::GET,
        "post" => Method::POST,
        "put" => Method::PUT,
        "patch" => Method::PATCH,
        "delete" => Method::DELETE,
        other => {
            return Err(UsageError(format!(
                "unknown method {other:?}; use get, post, put, patch or delete"
            ))
            .into());
        }
    };
    if !args.path.starts_with('/') {
        return Err(UsageError(format!("the path must start with /, not {:?}", args.path)).into());
    }
    let body = match json_body(args.data, args.file.as_deref())? {
        None => Body::Empty,
        Some(value) => Body::Json(value),
    };
    let resolved = Resolved::from(global)?;
    let answer = resolved.client().send(method, &args.path, body).await?;
    if !answer.is_null() {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    }
    Ok(())
}

/// A JSON body from `-d TEXT`, `-f FILE`, or `-f -` (standard input).
pub fn json_body(
    data: Option<String>,
    file: Option<&str>,
) -> anyhow::Result<Option<serde_json::Value>> {
    let text = match (data, file) {
        (Some(data), _) => data,
        (None, Some("-")) => {
            let mut buffer = String::new();
            std::io::stdin()
                .read_to_string(&mut buffer)
                .context("reading standard input")?;
            buffer
        }
        (None, Some(file)) => {
            std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?
        }
        (None, None) => return Ok(None),
    };
    let value = serde_json::from_str(&text)
        .map_err(|e| UsageError(format!("the body is not valid JSON: {e}")))?;
    Ok(Some(value))
}
