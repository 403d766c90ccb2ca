//! Bounds on what agents answer: a body is read up to `MAX_BODY` and no further, and the
//! texts kept from it (in `env_runtime` and `deploy_errors`) are clipped, so a broken or
//! hostile agent cannot make the server buffer or store without limit.

/// The most of one agent answer the server reads (a `GET /state` of hundreds of services
/// is tens of kilobytes).
pub const MAX_BODY: usize = 4 * 1024 * 1024;
/// A one-line text kept from an agent (a record's message, a state, an image reference).
pub const MAX_SUMMARY: usize = 1024;
/// A multi-line text kept from an agent (compose output, healthcheck log).
pub const MAX_TEXT: usize = 16 * 1024;
/// Repository digests kept per workload.
pub const MAX_DIGESTS: usize = 16;

/// Reads `response`'s body as text, refusing one longer than `MAX_BODY` without reading it
/// all.
pub async fn read_capped(mut response: reqwest::Response) -> Result<String, String> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return Err(format!("the answer is longer than {MAX_BODY} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!("the answer is longer than {MAX_BODY} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The start of `text`, at most `max` bytes (cut on a character boundary).
pub fn clip(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The end of `text`, at most `max` bytes (compose output matters most at its end).
pub fn clip_tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// The HTTP client for requests to agents: no redirects (a token is signed for one agent's
/// URL), a connect timeout; each request sets its own overall timeout.
pub fn agent_client() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the agent HTTP client builds")
    })
}

/// An agent's reason for an error answer: the `message` of its JSON error, else the start of
/// its text (500 characters at most).
pub fn reason_of(text: &str) -> String {
    let reason = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| text.trim().to_owned());
    reason.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::{clip, clip_tail};

    #[test]
    fn clips_on_character_boundaries() {
        let cases = [
            ("hello", 10, "hello", "hello"),
            ("hello", 3, "hel", "llo"),
            ("héllo", 2, "h", "lo"),
            ("ééé", 3, "é", "é"),
            ("", 0, "", ""),
            ("abc", 0, "", ""),
        ];
        for (text, max, head, tail) in cases {
            assert_eq!(clip(text, max), head, "{text} {max}");
            assert_eq!(clip_tail(text, max), tail, "{text} {max}");
        }
    }
}
