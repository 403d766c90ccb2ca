//! `gangplank serve` settings: defaults, then an optional TOML file, then environment
//! variables. Secrets are wrapped so that `Debug` and `--print-config` never show them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Text on a terminal, JSON otherwise.
    Auto,
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Everything `gangplank serve` can be told.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on.
    pub listen: String,
    /// Where the SQLite database and generated files live.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; a SQLite file in the data dir when unset.
    pub database_url: Option<SecretString>,
    /// The organization created on first start.
    pub bootstrap_org: String,
    /// The first administrator's token; generated into `<data dir>/admin-token` when unset.
    pub bootstrap_token: Option<SecretString>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Log format.
    pub log_format: LogFormat,
    /// The key that seals secrets at rest (base64 of 32 bytes); generated into
    /// `<data dir>/master-key` when unset.
    pub master_key: Option<SecretString>,
    pub automation: AutomationSettings,
    pub webhook: WebhookSettings,
    pub metrics: MetricsSettings,
    pub http: HttpSettings,
    pub observe: ObserveSettings,
    pub deploy: DeploySettings,
    pub watch: WatchSettings,
    /// Test only: where to hold the server until it is killed (`GANGPLANK_TEST_HOLD_AT`; never
    /// from the TOML file, never printed).
    #[serde(skip)]
    pub test_hold_at: Option<crate::test_hold::HoldPoint>,
}

/// `[observe]`: how often compose environments' agents are asked what they run.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObserveSettings {
    /// Between two observations of every compose environment (an unreachable agent is asked
    /// less often, backing off to 5 minutes).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for ObserveSettings {
    fn default() -> Self {
        ObserveSettings {
            interval: Duration::from_secs(30),
        }
    }
}

/// `[deploy]`: the deployment queue's leases.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeploySettings {
    /// How long a replica's claim on a running deployment lasts without renewal (renewed every
    /// quarter of it): after a crash, another replica resumes the deployment this much later.
    pub lease_seconds: u64,
}

impl Default for DeploySettings {
    fn default() -> Self {
        DeploySettings { lease_seconds: 120 }
    }
}

/// `[watch]`: registry watches (polling for new tags).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchSettings {
    /// The shortest interval a watch may poll at (tests use 1).
    pub min_interval_seconds: u64,
    /// Tag-list requests per minute that all watches of one registry host share.
    pub requests_per_minute: u32,
}

impl Default for WatchSettings {
    fn default() -> Self {
        WatchSettings {
            min_interval_seconds: 30,
            requests_per_minute: 60,
        }
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// A separate address for `/metrics`; when set, the API listener does not serve it, so
    /// the metrics are not exposed with the API by accident.
    pub listen: Option<String>,
}

/// `[http]`: how long clients may take, and how many may be connected.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// A request's headers must arrive within this, from the connection's accept or the
    /// request's first byte.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// A request's body must arrive within this, from the end of its headers.
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// A keep-alive connection with no request is closed after this.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(75),
            max_connections: 10_000,
        }
    }
}

impl HttpSettings {
    /// The limits the accept loop applies.
    pub fn limits(&self) -> crate::serve::ConnectionLimits {
        crate::serve::ConnectionLimits {
            header_read_timeout: self.header_timeout,
            body_read_timeout: self.body_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
        }
    }
}

/// `[automation]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutomationSettings {
    /// Versions arriving for one environment within this window become one deployment.
    #[serde(with = "humantime_serde")]
    pub debounce: Duration,
}

impl Default for AutomationSettings {
    fn default() -> Self {
        AutomationSettings {
            debounce: Duration::from_secs(2),
        }
    }
}

/// `[webhook]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Allow http:// and loopback or private addresses (development and tests only).
    pub allow_private: bool,
    /// How long one delivery attempt may take.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// How long a delivery is retried before it fails.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            allow_private: false,
            timeout: Duration::from_secs(10),
            max_age: Duration::from_secs(24 * 60 * 60),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:8080".to_owned(),
            data_dir: PathBuf::from("./gangplank-data"),
            database_url: None,
            bootstrap_org: "default".to_owned(),
            bootstrap_token: None,
            max_body_bytes: 1024 * 1024,
            log_format: LogFormat::Auto,
            master_key: None,
            automation: AutomationSettings::default(),
            webhook: WebhookSettings::default(),
            metrics: MetricsSettings::default(),
            http: HttpSettings::default(),
            observe: ObserveSettings::default(),
            deploy: DeploySettings::default(),
            watch: WatchSettings::default(),
            test_hold_at: None,
        }
    }
}

/// The environment variables read, and what they set.
pub const ENV_VARS: [&str; 22] = [
    "GANGPLANK_LISTEN",
    "GANGPLANK_DATA_DIR",
    "GANGPLANK_DATABASE_URL",
    "GANGPLANK_BOOTSTRAP_ORG",
    "GANGPLANK_BOOTSTRAP_TOKEN",
    "GANGPLANK_MAX_BODY_BYTES",
    "GANGPLANK_LOG_FORMAT",
    "GANGPLANK_MASTER_KEY",
    "GANGPLANK_AUTOMATION_DEBOUNCE",
    "GANGPLANK_WEBHOOK_ALLOW_PRIVATE",
    "GANGPLANK_WEBHOOK_TIMEOUT",
    "GANGPLANK_WEBHOOK_MAX_AGE",
    "GANGPLANK_METRICS_LISTEN",
    "GANGPLANK_HTTP_HEADER_TIMEOUT",
    "GANGPLANK_HTTP_BODY_TIMEOUT",
    "GANGPLANK_HTTP_IDLE_TIMEOUT",
    "GANGPLANK_HTTP_MAX_CONNECTIONS",
    "GANGPLANK_OBSERVE_INTERVAL_SECONDS",
    "GANGPLANK_DEPLOY_LEASE_SECONDS",
    "GANGPLANK_WATCH_MIN_INTERVAL_SECONDS",
    "GANGPLANK_WATCH_REQUESTS_PER_MINUTE",
    "GANGPLANK_TEST_HOLD_AT",
];

/// The shortest bootstrap token accepted, so a guessable one is refused at start.
const MIN_BOOTSTRAP_TOKEN_LEN: usize = 16;

impl Settings {
    /// Layers the defaults, the TOML file at `file` (if any), and the variables `env` returns.
    pub fn load(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut settings = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => Settings::default(),
        };
        for name in ENV_VARS {
            let Some(value) = env(name) else { continue };
            match name {
                "GANGPLANK_LISTEN" => settings.listen = value,
                "GANGPLANK_DATA_DIR" => settings.data_dir = PathBuf::from(value),
                "GANGPLANK_DATABASE_URL" => settings.database_url = Some(value.into()),
                "GANGPLANK_BOOTSTRAP_ORG" => settings.bootstrap_org = value,
                "GANGPLANK_BOOTSTRAP_TOKEN" => settings.bootstrap_token = Some(value.into()),
                "GANGPLANK_MAX_BODY_BYTES" => {
                    settings.max_body_bytes = value.parse().with_context(|| {
                        format!("GANGPLANK_MAX_BODY_BYTES={value:?} is not a number of bytes")
                    })?;
                }
                "GANGPLANK_LOG_FORMAT" => {
                    settings.log_format = match value.as_str() {
                        "auto" => LogFormat::Auto,
                        "text" => LogFormat::Text,
                        "json" => LogFormat::Json,
                        _ => {
                            bail!("GANGPLANK_LOG_FORMAT must be auto, text or json, not {value:?}")
                        }
                    }
                }
                "GANGPLANK_MASTER_KEY" => settings.master_key = Some(value.into()),
                "GANGPLANK_AUTOMATION_DEBOUNCE" => {
                    settings.automation.debounce = parse_duration(name, &value)?;
                }
                "GANGPLANK_WEBHOOK_ALLOW_PRIVATE" => {
                    settings.webhook.allow_private = match value.as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => bail!("{name} must be true or false, not {value:?}"),
                    }
                }
                "GANGPLANK_WEBHOOK_TIMEOUT" => {
                    settings.webhook.timeout = parse_duration(name, &value)?;
                }
                "GANGPLANK_WEBHOOK_MAX_AGE" => {
                    settings.webhook.max_age = parse_duration(name, &value)?;
                }
                // Empty means unset, so a blank variable cannot hide /metrics by accident.
                "GANGPLANK_METRICS_LISTEN" => {
                    settings.metrics.listen = (!value.is_empty()).then_some(value);
                }
                "GANGPLANK_HTTP_HEADER_TIMEOUT" => {
                    settings.http.header_timeout = parse_duration(name, &value)?;
                }
                "GANGPLANK_HTTP_BODY_TIMEOUT" => {
                    settings.http.body_timeout = parse_duration(name, &value)?;
                }
                "GANGPLANK_HTTP_IDLE_TIMEOUT" => {
                    settings.http.idle_timeout = parse_duration(name, &value)?;
                }
                "GANGPLANK_HTTP_MAX_CONNECTIONS" => {
                    settings.http.max_connections = value.parse().with_context(|| {
                        format!("{name}={value:?} is not a number of connections")
                    })?;
                }
                "GANGPLANK_OBSERVE_INTERVAL_SECONDS" => {
                    let seconds: u64 = value
                        .parse()
                        .with_context(|| format!("{name}={value:?} is not a number of seconds"))?;
                    settings.observe.interval = Duration::from_secs(seconds);
                }
                "GANGPLANK_DEPLOY_LEASE_SECONDS" => {
                    settings.deploy.lease_seconds = value
                        .parse()
                        .with_context(|| format!("{name}={value:?} is not a number of seconds"))?;
                }
                "GANGPLANK_WATCH_MIN_INTERVAL_SECONDS" => {
                    settings.watch.min_interval_seconds = value
                        .parse()
                        .with_context(|| format!("{name}={value:?} is not a number of seconds"))?;
                }
                "GANGPLANK_WATCH_REQUESTS_PER_MINUTE" => {
                    settings.watch.requests_per_minute = value
                        .parse()
                        .with_context(|| format!("{name}={value:?} is not a number of requests"))?;
                }
                "GANGPLANK_TEST_HOLD_AT" => {
                    settings.test_hold_at = Some(
                        crate::test_hold::HoldPoint::parse(&value)
                            .map_err(|e| anyhow::anyhow!("GANGPLANK_TEST_HOLD_AT: {e}"))?,
                    );
                }
                _ => unreachable!("every name in ENV_VARS is handled"),
            }
        }
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if !gangplank_core::id::is_valid_id(&self.bootstrap_org) {
            bail!(
                "bootstrap_org {:?} is not a valid organization id",
                self.bootstrap_org
            );
        }
        if let Some(token) = &self.bootstrap_token
            && token.expose_secret().len() < MIN_BOOTSTRAP_TOKEN_LEN
        {
            bail!("the bootstrap token must be at least {MIN_BOOTSTRAP_TOKEN_LEN} characters");
        }
        if self.webhook.timeout.is_zero() {
            bail!("webhook.timeout must be more than 0");
        }
        for (name, value) in [
            ("http.header_timeout", self.http.header_timeout),
            ("http.body_timeout", self.http.body_timeout),
            ("http.idle_timeout", self.http.idle_timeout),
        ] {
            if value.is_zero() {
                bail!("{name} must be more than 0");
            }
        }
        if !(1..=1_000_000).contains(&self.http.max_connections) {
            bail!("http.max_connections must be 1 to 1000000");
        }
        if self.observe.interval < Duration::from_secs(1) {
            bail!("observe.interval must be at least 1s");
        }
        if !(2..=86_400).contains(&self.deploy.lease_seconds) {
            bail!("deploy.lease_seconds must be 2 to 86400");
        }
        if !(1..=86_400).contains(&self.watch.min_interval_seconds) {
            bail!("watch.min_interval_seconds must be 1 to 86400");
        }
        if self.watch.requests_per_minute == 0 {
            bail!("watch.requests_per_minute must be at least 1");
        }
        if self.max_body_bytes < 1024 {
            bail!("max_body_bytes must be at least 1024");
        }
        Ok(())
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose_secret().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join("gangplank.db").display()),
        }
    }

    /// The effective settings as TOML, with secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        // A secret that is unset is a comment, not `key = # …`: the output must parse as TOML.
        let secret = |key: &str, set: bool, generated: &str| {
            if set {
                format!("{key} = \"<redacted>\"")
            } else {
                format!("# {key} is unset: generated into <data dir>/{generated} on first start")
            }
        };
        let log_format = format!("{:?}", self.log_format).to_lowercase();
        format!(
            "listen = {}\ndata_dir = {}\ndatabase_url = {}\nbootstrap_org = {}\n{}\nmax_body_bytes = {}\nlog_format = {}\n{}\n\n[automation]\ndebounce = {}\n\n[webhook]\nallow_private = {}\ntimeout = {}\nmax_age = {}\n\n[metrics]\n{}\n\n[http]\nheader_timeout = {}\nbody_timeout = {}\nidle_timeout = {}\nmax_connections = {}\n\n[observe]\ninterval = {}\n\n[deploy]\nlease_seconds = {}\n\n[watch]\nmin_interval_seconds = {}\nrequests_per_minute = {}\n",
            toml_string(&self.listen),
            toml_string(&self.data_dir.display().to_string()),
            toml_string(&redact_url_password(&self.database_url())),
            toml_string(&self.bootstrap_org),
            secret(
                "bootstrap_token",
                self.bootstrap_token.is_some(),
                "admin-token"
            ),
            self.max_body_bytes,
            toml_string(&log_format),
            secret("master_key", self.master_key.is_some(), "master-key"),
            toml_string(&humantime::format_duration(self.automation.debounce).to_string()),
            self.webhook.allow_private,
            toml_string(&humantime::format_duration(self.webhook.timeout).to_string()),
            toml_string(&humantime::format_duration(self.webhook.max_age).to_string()),
            match &self.metrics.listen {
                Some(listen) => format!("listen = {}", toml_string(listen)),
                None => "# listen unset: /metrics is served on the API listener".to_owned(),
            },
            toml_string(&humantime::format_duration(self.http.header_timeout).to_string()),
            toml_string(&humantime::format_duration(self.http.body_timeout).to_string()),
            toml_string(&humantime::format_duration(self.http.idle_timeout).to_string()),
            self.http.max_connections,
            toml_string(&humantime::format_duration(self.observe.interval).to_string()),
            self.deploy.lease_seconds,
            self.watch.min_interval_seconds,
            self.watch.requests_per_minute,
        )
    }
}

/// `text` as a TOML string (Rust's `{:?}` escapes some characters in ways TOML does not read).
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// Parses `2s`, `500ms`, `5m` or `0`.
fn parse_duration(name: &str, value: &str) -> anyhow::Result<Duration> {
    if value == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(value)
        .with_context(|| format!("{name}={value:?} is not a duration such as 2s or 500ms"))
}

/// Hides the password of `scheme://user:password@host/…`.
fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:<redacted>@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::{Settings, redact_url_password};

    #[test]
    fn environment_overrides_the_file() {
        let dir = std::env::temp_dir().join(format!("gp-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("gangplank.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:9000\"\nbootstrap_org = \"acme\"\n",
        )
        .unwrap();
        let env: HashMap<&str, &str> = HashMap::from([("GANGPLANK_LISTEN", "127.0.0.1:0")]);
        let settings = Settings::load(Some(&file), |k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(settings.listen, "127.0.0.1:0");
        assert_eq!(settings.bootstrap_org, "acme");
    }

    #[test]
    fn watch_settings_come_from_the_environment_within_bounds() {
        let defaults = Settings::load(None, |_| None).unwrap().watch;
        assert_eq!(
            (defaults.min_interval_seconds, defaults.requests_per_minute),
            (30, 60)
        );
        let with = |name: &'static str, value: &'static str| {
            Settings::load(None, move |k| (k == name).then(|| value.to_owned()))
        };
        let min = "GANGPLANK_WATCH_MIN_INTERVAL_SECONDS";
        let budget = "GANGPLANK_WATCH_REQUESTS_PER_MINUTE";
        assert_eq!(with(min, "1").unwrap().watch.min_interval_seconds, 1);
        assert_eq!(with(budget, "5").unwrap().watch.requests_per_minute, 5);
        for bad in ["0", "86401", "ten", "-3"] {
            assert!(with(min, bad).is_err(), "{bad}");
        }
        assert!(with(budget, "0").is_err());
        assert!(
            with(min, "1")
                .unwrap()
                .to_redacted_toml()
                .contains("[watch]\nmin_interval_seconds = 1\nrequests_per_minute = 60\n")
        );
    }

    #[test]
    fn the_deploy_lease_comes_from_the_environment_within_bounds() {
        assert_eq!(
            Settings::load(None, |_| None).unwrap().deploy.lease_seconds,
            120
        );
        let with = |value: &'static str| {
            Settings::load(None, move |k| {
                (k == "GANGPLANK_DEPLOY_LEASE_SECONDS").then(|| value.to_owned())
            })
        };
        assert_eq!(with("4").unwrap().deploy.lease_seconds, 4);
        for bad in ["1", "86401", "ten", "-3"] {
            assert!(with(bad).is_err(), "{bad}");
        }
        assert!(
            with("4")
                .unwrap()
                .to_redacted_toml()
                .contains("[deploy]\nlease_seconds = 4\n")
        );
    }

    #[test]
    fn the_metrics_listener_comes_from_the_file_or_the_environment() {
        let dir = std::env::temp_dir().join(format!("gp-settings-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("gangplank.toml");
        std::fs::write(&file, "[metrics]\nlisten = \"127.0.0.1:9100\"\n").unwrap();
        let from_file = Settings::load(Some(&file), |_| None).unwrap();
        assert_eq!(from_file.metrics.listen.as_deref(), Some("127.0.0.1:9100"));
        assert!(
            from_file
                .to_redacted_toml()
                .contains("[metrics]\nlisten = \"127.0.0.1:9100\"")
        );
        let env = |k: &str| (k == "GANGPLANK_METRICS_LISTEN").then(|| "0.0.0.0:9200".to_owned());
        let from_env = Settings::load(Some(&file), env).unwrap();
        assert_eq!(from_env.metrics.listen.as_deref(), Some("0.0.0.0:9200"));
        let blank = |k: &str| (k == "GANGPLANK_METRICS_LISTEN").then(String::new);
        assert_eq!(Settings::load(None, blank).unwrap().metrics.listen, None);
    }

    #[test]
    fn unknown_file_keys_and_bad_values_are_errors() {
        let dir = std::env::temp_dir().join(format!("gp-settings-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("gangplank.toml");
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        assert!(Settings::load(Some(&file), |_| None).is_err());
        let short = |k: &str| (k == "GANGPLANK_BOOTSTRAP_TOKEN").then(|| "short".to_owned());
        assert!(Settings::load(None, short).is_err());
    }

    #[test]
    fn http_limits_come_from_the_environment_and_zero_is_refused() {
        let env = |k: &str| match k {
            "GANGPLANK_HTTP_HEADER_TIMEOUT" => Some("2s".to_owned()),
            "GANGPLANK_HTTP_BODY_TIMEOUT" => Some("3s".to_owned()),
            "GANGPLANK_HTTP_IDLE_TIMEOUT" => Some("4s".to_owned()),
            "GANGPLANK_HTTP_MAX_CONNECTIONS" => Some("5".to_owned()),
            _ => None,
        };
        let limits = Settings::load(None, env).unwrap().http.limits();
        assert_eq!(limits.header_read_timeout.as_secs(), 2);
        assert_eq!(limits.body_read_timeout.as_secs(), 3);
        assert_eq!(limits.idle_timeout.as_secs(), 4);
        assert_eq!(limits.max_connections, 5);
        let zero = |k: &str| (k == "GANGPLANK_HTTP_IDLE_TIMEOUT").then(|| "0".to_owned());
        assert!(Settings::load(None, zero).is_err());
        let none = |k: &str| (k == "GANGPLANK_HTTP_MAX_CONNECTIONS").then(|| "0".to_owned());
        assert!(Settings::load(None, none).is_err());
        let printed = Settings::load(None, |_| None).unwrap().to_redacted_toml();
        assert!(
            printed.contains("[http]\nheader_timeout = \"10s\""),
            "{printed}"
        );
        assert!(printed.contains("max_connections = 10000"), "{printed}");
    }

    #[test]
    fn secrets_are_redacted() {
        let secret = "postgres://gp:hunter2hunter2@db/gp";
        let env = |k: &str| match k {
            "GANGPLANK_DATABASE_URL" => Some(secret.to_owned()),
            "GANGPLANK_BOOTSTRAP_TOKEN" => Some("a-very-secret-token-value".to_owned()),
            _ => None,
        };
        let settings = Settings::load(None, env).unwrap();
        let printed = format!("{}{:?}", settings.to_redacted_toml(), settings);
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains("a-very-secret-token-value"), "{printed}");
        assert_eq!(redact_url_password("sqlite://x.db"), "sqlite://x.db");
    }
}
