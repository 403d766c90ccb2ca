//! What several crates' tests share: Debian's docker-registry (CNCF distribution) on a free
//! loopback port, anonymous or with htpasswd (bcrypt) auth; `skopeo` against it; free ports;
//! polling with a deadline (never sleeping as synchronisation); a git server over the real
//! `git http-backend` (`git`).

mod git;

pub use git::{GitServer, WorkTree, busybox_image_files};

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Polls `check` until it gives a value, failing after 60 s with `what`.
pub fn poll<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A fresh key pair made with openssl in `dir`: (`<name>.key`, `<name>.pub`), PEM. `kind` is
/// `rsa` (2048 bits), `ec` (P-256) or `ed25519`.
pub fn key_pair(
    dir: &std::path::Path,
    name: &str,
    kind: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let (private, public) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pub")),
    );
    let options: &[&str] = match kind {
        "rsa" => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        "ec" => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "ed25519" => &["-algorithm", "ed25519"],
        _ => panic!("unknown key kind {kind}"),
    };
    let succeed = |command: &mut Command| {
        let made = command.output().expect("openssl is installed");
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
    };
    succeed(
        Command::new("openssl")
            .arg("genpkey")
            .args(options)
            .arg("-out")
            .arg(&private),
    );
    succeed(
        Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&private)
            .arg("-out")
            .arg(&public),
    );
    (private, public)
}

/// A fresh RSA key and self-signed certificate in `dir` as `<name>.key` and `<name>.crt`.
fn self_signed(
    dir: &std::path::Path,
    name: &str,
    subject: &str,
    extension: Option<&str>,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let (key, cert) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.crt")),
    );
    let mut command = Command::new("openssl");
    command.args([
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", subject,
    ]);
    if let Some(extension) = extension {
        command.args(["-addext", extension]);
    }
    let made = command
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is installed");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    (key, cert)
}

/// A running docker-registry (and its token service, for token auth), stopped on drop.
pub struct Registry {
    child: Child,
    token_server: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

/// How a test registry authenticates.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    Anonymous,
    /// htpasswd (bcrypt) with this user.
    Htpasswd(&'a str, &'a str),
    /// A token service (the distribution token spec) that knows this user.
    Token(&'a str, &'a str),
}

impl Registry {
    /// Starts a registry; with `auth`, htpasswd (bcrypt) holds that user.
    pub fn start(auth: Option<(&str, &str)>) -> Registry {
        match auth {
            Some((user, password)) => Registry::start_with(Auth::Htpasswd(user, password)),
            None => Registry::start_with(Auth::Anonymous),
        }
    }

    /// Starts a registry with the given authentication, on plain HTTP.
    pub fn start_with(auth: Auth<'_>) -> Registry {
        Registry::start_full(auth, false, None)
    }

    /// Starts a registry serving TLS with a self-signed certificate (for `127.0.0.1`).
    pub fn start_tls(auth: Auth<'_>) -> Registry {
        Registry::start_full(auth, true, None)
    }

    /// Starts a registry that sends its event notifications (distribution's
    /// `notifications.endpoints`: push and pull envelopes, retried with backoff) to `url`,
    /// with these extra request headers (e.g. `("Authorization", "Bearer …")`).
    pub fn start_notifying(auth: Auth<'_>, url: &str, headers: &[(&str, &str)]) -> Registry {
        Registry::start_full(auth, false, Some((url, headers)))
    }

    fn start_full(auth: Auth<'_>, tls: bool, notify: Option<(&str, &[(&str, &str)])>) -> Registry {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog: {{ level: error }}\nstorage:\n  filesystem: {{ rootdirectory: {} }}\n  delete: {{ enabled: true }}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: test-secret\n",
            dir.path().join("data").display()
        );
        if tls {
            let (key, cert) = self_signed(
                dir.path(),
                "tls",
                "/CN=127.0.0.1",
                Some("subjectAltName=IP:127.0.0.1"),
            );
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
        }
        let mut token_server = None;
        if let Auth::Token(user, password) = auth {
            let (key, cert) = self_signed(dir.path(), "token", "/CN=test-token-issuer", None);
            let script = dir.path().join("token_server.py");
            std::fs::write(&script, include_str!("token_server.py"))
                .expect("write the token server");
            let port_file = dir.path().join("token.port");
            let child = Command::new("python3")
                .arg(&script)
                .args([&key, &cert])
                .args([user, password])
                .arg(&port_file)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("python3 with the cryptography package");
            let token_port = poll("the token service to start", || {
                std::fs::read_to_string(&port_file)
                    .ok()
                    .filter(|p| !p.is_empty())
            });
            token_server = Some(child);
            config.push_str(&format!(
                "auth:\n  token:\n    realm: http://127.0.0.1:{token_port}/token\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
                cert.display()
            ));
        }
        if let Auth::Htpasswd(user, password) = auth {
            let htpasswd = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("htpasswd (apache2-utils) is installed (cargo xtask test installs it)");
            assert!(htpasswd.status.success());
            let path = dir.path().join("htpasswd");
            std::fs::write(&path, htpasswd.stdout).expect("write htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd: {{ realm: basic-realm, path: {} }}\n",
                path.display()
            ));
        }
        if let Some((url, headers)) = notify {
            config.push_str(&format!(
                "notifications:\n  endpoints:\n    - name: test\n      url: {url}\n      timeout: 2s\n      threshold: 3\n      backoff: 100ms\n"
            ));
            if !headers.is_empty() {
                config.push_str("      headers:\n");
                for (name, value) in headers {
                    // A YAML double-quoted string; test values need no escapes.
                    assert!(!value.contains(['"', '\\', '\n']), "a plain header value");
                    config.push_str(&format!("        {name}: [\"{value}\"]\n"));
                }
            }
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry is installed (cargo xtask test installs it)");
        poll("docker-registry to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        Registry {
            child,
            token_server,
            port,
            dir,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `skopeo login` with these credentials: whether the registry accepted them.
    pub fn skopeo_login(&self, user: &str, password: &str) -> bool {
        let mut login = Command::new("skopeo")
            .args(["login", "--tls-verify=false", "--authfile"])
            .arg(self.dir.path().join("auth.json"))
            .args(["-u", user, "--password-stdin", &self.host()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("skopeo is installed (cargo xtask test installs it)");
        if let Some(mut stdin) = login.stdin.take() {
            stdin
                .write_all(password.as_bytes())
                .expect("write the password");
        }
        login.wait().is_ok_and(|s| s.success())
    }

    /// What `skopeo inspect` reports as the digest of `repository:tag`.
    pub fn skopeo_digest(
        &self,
        repository: &str,
        tag: &str,
        creds: Option<(&str, &str)>,
    ) -> String {
        let mut command = Command::new("skopeo");
        command.args(["inspect", "--format", "{{.Digest}}", "--tls-verify=false"]);
        if let Some((user, password)) = creds {
            command.args(["--creds", &format!("{user}:{password}")]);
        }
        let output = command
            .arg(format!("docker://{}/{repository}:{tag}", self.host()))
            .output()
            .expect("skopeo is installed (cargo xtask test installs it)");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

impl Registry {
    /// Pushes a tiny valid image (a config and one small layer, different per `content`) to
    /// `repository:tag` with `skopeo copy` from an OCI layout written here, independently of
    /// Gangplank's client; returns the manifest digest.
    pub fn push_tiny_image(&self, repository: &str, tag: &str, content: &str) -> String {
        self.push_tiny_image_as(repository, tag, content, None)
    }

    /// As [`Registry::push_tiny_image`], logged in as `creds` (an htpasswd registry).
    pub fn push_tiny_image_as(
        &self,
        repository: &str,
        tag: &str,
        content: &str,
        creds: Option<(&str, &str)>,
    ) -> String {
        let layout = tempfile::tempdir().expect("temp dir");
        let blobs = layout.path().join("blobs/sha256");
        std::fs::create_dir_all(&blobs).expect("blobs dir");
        let put = |bytes: &[u8]| -> (String, usize) {
            use sha2::Digest;
            let hex = hex::encode(sha2::Sha256::digest(bytes));
            std::fs::write(blobs.join(&hex), bytes).expect("write blob");
            (format!("sha256:{hex}"), bytes.len())
        };
        let (layer, layer_size) = put(format!("layer {content}").as_bytes());
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Labels":{{"content":"{content}"}}}},"rootfs":{{"type":"layers","diff_ids":["{layer}"]}}}}"#
        );
        let (config, config_size) = put(config.as_bytes());
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":{config_size}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":{layer_size}}}]}}"#
        );
        let (manifest_digest, manifest_size) = put(manifest.as_bytes());
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest_digest}","size":{manifest_size},"annotations":{{"org.opencontainers.image.ref.name":"{tag}"}}}}]}}"#
        );
        std::fs::write(layout.path().join("index.json"), index).expect("write index");
        std::fs::write(
            layout.path().join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .expect("write oci-layout");
        let mut copy = Command::new("skopeo");
        copy.args(["copy", "--dest-tls-verify=false", "--preserve-digests"]);
        if let Some((user, password)) = creds {
            copy.args(["--dest-creds", &format!("{user}:{password}")]);
        }
        let output = copy
            .arg(format!("oci:{}:{tag}", layout.path().display()))
            .arg(format!("docker://{}/{repository}:{tag}", self.host()))
            .output()
            .expect("skopeo is installed (cargo xtask test installs it)");
        assert!(
            output.status.success(),
            "skopeo copy: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        manifest_digest
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(token_server) = &mut self.token_server {
            let _ = token_server.kill();
            let _ = token_server.wait();
        }
    }
}
