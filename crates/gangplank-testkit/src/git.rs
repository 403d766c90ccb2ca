//! A git server for tests: bare repositories in a temp dir served on 127.0.0.1 through the
//! real `git http-backend` as a CGI (a small thread-per-connection HTTP/1.1 server), with
//! basic auth when a token is set; a work tree to commit to and push from; and the files of a
//! FROM-scratch busybox-static image serving one file, to commit as a repository to build.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use base64::Engine as _;

/// A running git server, stopped on drop.
pub struct GitServer {
    pub port: u16,
    root: tempfile::TempDir,
    stop: Arc<AtomicBool>,
    /// Requests answered 401 (no or a wrong token).
    refused: Arc<AtomicUsize>,
    v2: Arc<AtomicBool>,
}

impl GitServer {
    /// Serves the repositories under a fresh temp dir; with `token`, every request needs
    /// basic auth whose password is the token (any user name, as GitHub takes tokens).
    pub fn start(token: Option<&str>) -> GitServer {
        let root = tempfile::tempdir().expect("temp dir");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the git server");
        let port = listener.local_addr().expect("address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicUsize::new(0));
        let v2 = Arc::new(AtomicBool::new(true));
        let shared = Arc::new(Shared {
            root: root.path().to_path_buf(),
            token: token.map(str::to_owned),
            refused: refused.clone(),
            v2: v2.clone(),
        });
        let stopping = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &shared);
                });
            }
        });
        GitServer {
            port,
            root,
            stop,
            refused,
            v2,
        }
    }

    /// Creates the bare repository `name` (`shop.git`) and returns its path.
    pub fn create_repo(&self, name: &str) -> PathBuf {
        let path = self.root.path().join(name);
        git(
            self.root.path(),
            &["init", "-q", "--bare", "-b", "main", name],
        );
        path
    }

    /// `http://127.0.0.1:PORT/<name>`.
    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }

    /// With `false`, the server speaks protocol v0 only (it ignores the `Git-Protocol` header),
    /// where git's defaults refuse a fetch of a commit no ref points at (as some hosts do
    /// whatever the protocol); with `true` (the default) v2, which allows it.
    pub fn set_protocol_v2(&self, on: bool) {
        self.v2.store(on, Ordering::SeqCst);
    }

    /// How many requests were refused for want of the token.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

struct Shared {
    root: PathBuf,
    token: Option<String>,
    refused: Arc<AtomicUsize>,
    v2: Arc<AtomicBool>,
}

/// One request, one CGI run, one response; the connection is closed after it.
fn serve(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers: Vec<(String, String)> = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            break;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        read_chunked(&mut reader)?
    } else {
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        body
    };
    let mut out = stream;
    let mut remote_user = String::new();
    if let Some(token) = &shared.token {
        let user = header("authorization")
            .and_then(|v| v.strip_prefix("Basic ").map(str::to_owned))
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|pair| {
                let (user, password) = pair.split_once(':')?;
                (password == token).then(|| user.to_owned())
            });
        match user {
            Some(user) => remote_user = user,
            None => {
                shared.refused.fetch_add(1, Ordering::SeqCst);
                return out.write_all(
                    b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut cgi = Command::new("git");
    cgi.arg("http-backend")
        .env("GIT_PROJECT_ROOT", &shared.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("REQUEST_METHOD", &method)
        .env("CONTENT_TYPE", header("content-type").unwrap_or_default())
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_USER", &remote_user)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // http-backend inflates gzip bodies itself, and speaks protocol v2 when asked.
    if let Some(encoding) = header("content-encoding") {
        cgi.env("HTTP_CONTENT_ENCODING", encoding);
    }
    if let Some(protocol) = header("git-protocol").filter(|_| shared.v2.load(Ordering::SeqCst)) {
        cgi.env("HTTP_GIT_PROTOCOL", protocol);
    }
    let mut child = cgi.spawn()?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    // Written from a thread of its own: the CGI may answer before it has read everything.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let output = child.wait_with_output()?;
    let _ = writer.join();
    let raw = output.stdout;
    let (head, content) = match find(&raw, b"\r\n\r\n") {
        Some(at) => (&raw[..at], &raw[at + 4..]),
        None => match find(&raw, b"\n\n") {
            Some(at) => (&raw[..at], &raw[at + 2..]),
            None => (&raw[..0], &raw[..]),
        },
    };
    let mut status = "200 OK".to_owned();
    let mut response = Vec::new();
    let mut extra = String::new();
    for line in String::from_utf8_lossy(head).lines() {
        match line.split_once(':') {
            Some((name, value)) if name.eq_ignore_ascii_case("status") => {
                status = value.trim().to_owned();
            }
            Some(_) => {
                extra.push_str(line.trim_end());
                extra.push_str("\r\n");
            }
            None => {}
        }
    }
    response.extend_from_slice(
        format!(
            "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
            content.len()
        )
        .as_bytes(),
    );
    response.extend_from_slice(content);
    out.write_all(&response)?;
    out.flush()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A `Transfer-Encoding: chunked` body (git sends large POSTs so).
fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size)?;
        let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        if size == 0 {
            // Trailers, then the blank line.
            loop {
                let mut trailer = String::new();
                if reader.read_line(&mut trailer)? == 0 || trailer.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = String::new();
        reader.read_line(&mut crlf)?;
    }
}

/// Runs git in `dir`, asserting success; returns stdout, trimmed.
fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .expect("git is installed");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A work tree that commits files and pushes them to a bare repository (by its path).
pub struct WorkTree {
    dir: tempfile::TempDir,
    remote: PathBuf,
}

impl WorkTree {
    /// A fresh work tree whose pushes go to the bare repository at `remote`.
    pub fn new(remote: &Path) -> WorkTree {
        let dir = tempfile::tempdir().expect("temp dir");
        git(dir.path(), &["init", "-q", "-b", "main"]);
        WorkTree {
            dir,
            remote: remote.to_path_buf(),
        }
    }

    /// Writes `files` (paths relative to the tree; directories made; ELF binaries and `#!`
    /// scripts executable), commits everything and returns the commit id.
    pub fn commit(&self, files: &[(&str, &[u8])], message: &str) -> String {
        for (path, content) in files {
            let path = self.dir.path().join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("create dirs");
            }
            std::fs::write(&path, content).expect("write a file");
            // Programs (ELF binaries, scripts) are committed executable, as git keeps modes.
            if content.starts_with(b"\x7fELF") || content.starts_with(b"#!") {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                    .expect("chmod");
            }
        }
        git(self.dir.path(), &["add", "-A"]);
        git(
            self.dir.path(),
            &["commit", "-q", "--allow-empty", "-m", message],
        );
        git(self.dir.path(), &["rev-parse", "HEAD"])
    }

    /// Makes `path` a symbolic link to `target` (committed with the next commit).
    pub fn symlink(&self, target: &str, path: &str) {
        std::os::unix::fs::symlink(target, self.dir.path().join(path)).expect("symlink");
    }

    /// Pushes the current commit to `refs/heads/<branch>` (forced: tests rewrite branches).
    pub fn push(&self, branch: &str) {
        let remote = self.remote.display().to_string();
        git(
            self.dir.path(),
            &[
                "push",
                "-q",
                "--force",
                &remote,
                &format!("HEAD:refs/heads/{branch}"),
            ],
        );
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The files of an image FROM scratch: busybox-static (`/bin/busybox`) whose httpd serves
/// `file` (with `content`) from `/` on `port`. Commit them to build the repository as is.
pub fn busybox_image_files(file: &str, content: &[u8], port: u16) -> Vec<(String, Vec<u8>)> {
    let busybox = std::fs::read("/bin/busybox")
        .expect("busybox-static is installed at /bin/busybox (cargo xtask test installs it)");
    let dockerfile = format!(
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY {file} /{file}\n\
         ENTRYPOINT [\"/bin/busybox\"]\nCMD [\"httpd\", \"-f\", \"-p\", \"{port}\", \"-h\", \"/\"]\n"
    );
    vec![
        ("busybox".to_owned(), busybox),
        (file.to_owned(), content.to_vec()),
        ("Dockerfile".to_owned(), dockerfile.into_bytes()),
    ]
}
