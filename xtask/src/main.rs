//! Project automation: `cargo xtask ci` (install test prerequisites, fmt, clippy, tests, tidy,
//! the README's commands), `cargo xtask api-contract` (the OpenAPI document against a live
//! server) and `cargo xtask bench ingest|automation|registry|promote|agent|list|build`.

mod readme;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["ci"] => ci(),
        ["test"] => test(),
        ["api-contract"] => api_contract(),
        ["tidy"] => tidy(),
        ["readme"] => readme::run(&root(), &target_dir()),
        [
            "bench",
            which @ ("ingest" | "automation" | "registry" | "promote" | "agent" | "list" | "build"),
            rest @ ..,
        ] => bench(which, rest),
        _ => bail!(
            "usage: cargo xtask ci | test | api-contract | tidy | readme | bench ingest [--seconds N] | bench automation [--apps N --versions N] | bench registry [--tags N --megabytes N] | bench promote [--megabytes N --layers N --runs N] | bench agent [--clients N --seconds N] | bench list [--versions N --clients N --per-page N --via-api] | bench build [--builds N --pushes N --skip-build --skip-notify]"
        ),
    }
}

fn target_dir() -> PathBuf {
    std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    eprintln!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(root())
        .status()
        .with_context(|| format!("starting {program}"))?;
    if !status.success() {
        bail!("{program} {} failed with {status}", args.join(" "));
    }
    Ok(())
}

/// Everything CI checks, in the order that fails fastest.
fn ci() -> anyhow::Result<()> {
    run("cargo", &["fmt", "--all", "--check"])?;
    tidy()?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    test()
}

/// Installs what the tests drive (curl, wget, jq, Schemathesis, …) when missing, then runs
/// every test, the README's commands, the API contract check and the PostgreSQL pass.
fn test() -> anyhow::Result<()> {
    install_debian_packages(&[
        ("curl", "curl"),
        ("jq", "jq"),
        ("wget", "wget"),
        ("python3", "python3"),
        ("webhook", "webhook"),
        ("docker-registry", "docker-registry"),
        ("skopeo", "skopeo"),
        ("htpasswd", "apache2-utils"),
        ("openssl", "openssl"),
        ("docker-compose", "docker-compose"),
        // The dashboard's browser tests (tests/it/ui_browser.rs).
        ("chromium", "chromium"),
        ("chromedriver", "chromium-driver"),
    ])?;
    install_busybox_static()?;
    require_docker()?;
    install_python_packages("import moto.server, boto3", "moto[server]")?;
    install_python_packages("import cryptography", "cryptography")?;
    run("cargo", &["test", "--workspace", "--locked"])?;
    readme::run(&root(), &target_dir())?;
    api_contract()?;
    postgres_pass()
}

/// The OpenAPI document against a live debug server: Schemathesis with every check on, and a
/// client generated from the document (xtask/api_contract.py). After `cargo test` the build
/// is already done.
fn api_contract() -> anyhow::Result<()> {
    install_python_packages(
        "import schemathesis, sys; sys.exit(not schemathesis.__version__.startswith('4.'))",
        "schemathesis>=4,<5",
    )?;
    install_python_packages(
        "import openapi_python_client, importlib.metadata as m, sys; \
         sys.exit(not m.version('openapi-python-client').startswith('0.29.'))",
        "openapi-python-client>=0.29,<0.30",
    )?;
    run("cargo", &["build", "--locked", "-p", "gangplank"])?;
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target"));
    let server = target.join("debug/gangplank");
    run(
        "python3",
        &[
            path_str(&root().join("xtask/api_contract.py"))?,
            path_str(&server)?,
        ],
    )
}

/// The agent's tests build images FROM scratch around a statically linked busybox.
fn install_busybox_static() -> anyhow::Result<()> {
    let installed = Command::new("dpkg")
        .args(["-s", "busybox-static"])
        .output()
        .is_ok_and(|o| o.status.success());
    if installed {
        return Ok(());
    }
    eprintln!("installing the Debian package the agent tests need: busybox-static");
    run("apt-get", &["update", "-qq"])?;
    run(
        "apt-get",
        &[
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "busybox-static",
        ],
    )
}

/// The agent's tests drive the machine's Docker engine; without one they must fail, loudly,
/// here, rather than pass by skipping.
fn require_docker() -> anyhow::Result<()> {
    if docker_answers().is_ok() {
        return Ok(());
    }
    start_docker_engine();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match docker_answers() {
            Ok(()) => return Ok(()),
            Err(reason) if std::time::Instant::now() >= deadline => {
                bail!("the agent tests need a running Docker engine, and {reason}")
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(500)),
        }
    }
}

/// Whether `docker info` reaches an engine; else why not.
fn docker_answers() -> Result<(), String> {
    match Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
    {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "`docker info` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(error) => Err(format!("the docker CLI is missing: {error}")),
    }
}

/// An installed engine that is not running (stopped, or killed with the session that started
/// it) is started in the background, as root, logging to /var/log/dockerd.log.
fn start_docker_engine() {
    let installed = Command::new("sh")
        .args(["-c", "command -v dockerd"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        return;
    }
    eprintln!("$ dockerd (the Docker engine was not running)");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open("/var/log/dockerd.log");
    let mut command = Command::new("setsid");
    command.arg("dockerd").stdin(std::process::Stdio::null());
    if let Ok(log) = log {
        if let Ok(err) = log.try_clone() {
            command.stderr(err);
        }
        command.stdout(log);
    }
    if let Err(error) = command.spawn() {
        eprintln!("could not start dockerd: {error}");
    }
}

/// Installs a PyPI package with pip when `check` (Python code) fails to run.
fn install_python_packages(check: &str, package: &str) -> anyhow::Result<()> {
    let present = Command::new("python3")
        .args(["-c", check])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    eprintln!("installing the Python package the tests need: {package}");
    run("python3", &["-m", "pip", "install", "--quiet", package])
}

/// The integration tests again, every server on its own database of a temporary PostgreSQL
/// cluster (started as the `postgres` user, as Debian's packages expect).
fn postgres_pass() -> anyhow::Result<()> {
    let bin = postgres_bin().or_else(|_| {
        install_debian_packages(&[("/usr/lib/postgresql/15/bin/initdb", "postgresql")])?;
        postgres_bin()
    })?;
    let dir = std::env::temp_dir().join(format!("gangplank-pg-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    run("chown", &["postgres:postgres", path_str(&dir)?])?;
    let data = dir.join("data");
    let as_postgres = |tool: &str, args: &[&str]| {
        let tool = bin.join(tool);
        let mut all = vec!["-u", "postgres", "--", path_str(&tool)?];
        all.extend(args);
        run("runuser", &all)
            .context("the PostgreSQL pass starts a cluster as user postgres (needs root)")
    };
    as_postgres(
        "initdb",
        &[
            "-D",
            path_str(&data)?,
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        ],
    )?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port()
        .to_string();
    let options = format!("-h 127.0.0.1 -p {port} -k {}", path_str(&dir)?);
    let log = dir.join("server.log");
    as_postgres(
        "pg_ctl",
        &[
            "-D",
            path_str(&data)?,
            "-o",
            &options,
            "-l",
            path_str(&log)?,
            "-w",
            "start",
        ],
    )?;
    eprintln!(
        "$ GANGPLANK_TEST_PG=postgres://postgres@127.0.0.1:{port} cargo test -p gangplank-store; cargo test -p gangplank --test it"
    );
    // The store's own tests too: those racing concurrent writers need PostgreSQL.
    let tested = ["-p gangplank-store", "-p gangplank --test it"]
        .iter()
        .try_fold(true, |ok, args| {
            let mut command = Command::new("cargo");
            command
                .args(["test", "--locked"])
                .args(args.split(' '))
                .env(
                    "GANGPLANK_TEST_PG",
                    format!("postgres://postgres@127.0.0.1:{port}"),
                )
                .current_dir(root());
            Ok::<_, std::io::Error>(ok && command.status()?.success())
        });
    let stopped = as_postgres("pg_ctl", &["-D", path_str(&data)?, "-m", "fast", "stop"]);
    let _ = std::fs::remove_dir_all(&dir);
    if !tested.context("starting cargo test")? {
        bail!("the integration tests failed on PostgreSQL");
    }
    stopped
}

/// Debian keeps initdb and pg_ctl under /usr/lib/postgresql/<version>/bin.
fn postgres_bin() -> anyhow::Result<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context("no /usr/lib/postgresql")?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().context("no PostgreSQL server binaries")
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str().context("non-UTF-8 path")
}

/// Installs each (program, package) whose program is not on PATH; needs root and apt-get.
fn install_debian_packages(wanted: &[(&str, &str)]) -> anyhow::Result<()> {
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(program, _)| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {program}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!(
        "installing Debian packages the tests need: {}",
        missing.join(" ")
    );
    run("apt-get", &["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(&missing);
    run("apt-get", &args).context("the tests need these packages; install them or run as root")
}

/// Repository rules no compiler checks: module docs, and the dependency invariants of
/// ARCHITECTURE.md.
fn tidy() -> anyhow::Result<()> {
    let mut problems = Vec::new();
    let mut files = Vec::new();
    collect_rust_files(&root().join("crates"), &mut files)?;
    collect_rust_files(&root().join("xtask"), &mut files)?;
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        if !text.trim_start().starts_with("//!") {
            problems.push(format!(
                "{}: must start with a //! module doc",
                file.display()
            ));
        }
        if text
            .lines()
            .any(|line| line.ends_with(' ') || line.ends_with('\t'))
        {
            problems.push(format!("{}: trailing whitespace", file.display()));
        }
    }
    let forbidden_in_core = [
        "tokio", "sqlx", "rusqlite", "reqwest", "axum", "hyper", "rand",
    ];
    let core_tree = cargo_tree(&["-p", "gangplank-core", "-e", "normal"])?;
    for name in forbidden_in_core {
        if core_tree.lines().any(|line| tree_names(line, name)) {
            problems.push(format!(
                "gangplank-core must not depend on {name} (it does no I/O)"
            ));
        }
    }
    let client_tree = cargo_tree(&["-p", "gangplank", "--no-default-features", "-e", "normal"])?;
    for name in ["gangplank-store", "gangplank-server", "sqlx", "rusqlite"] {
        if client_tree.lines().any(|line| tree_names(line, name)) {
            problems.push(format!(
                "the client build (gangplank --no-default-features) must not depend on {name}"
            ));
        }
    }
    let agent_tree = cargo_tree(&["-p", "gangplank-agent", "-e", "normal"])?;
    for name in ["gangplank-store", "gangplank-server", "sqlx", "rusqlite"] {
        if agent_tree.lines().any(|line| tree_names(line, name)) {
            problems.push(format!(
                "gangplank-agent must not depend on {name} (the server stack stays out of the agent)"
            ));
        }
    }
    if problems.is_empty() {
        eprintln!("tidy: ok");
        Ok(())
    } else {
        bail!("tidy found problems:\n{}", problems.join("\n"))
    }
}

fn tree_names(line: &str, name: &str) -> bool {
    line.trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .split(' ')
        .next()
        == Some(name)
}

fn cargo_tree(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("cargo")
        .arg("tree")
        .args(args)
        .args(["--prefix", "none"])
        .current_dir(root())
        .output()
        .context("running cargo tree")?;
    if !output.status.success() {
        bail!(
            "cargo tree {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn collect_rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            collect_rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// `cargo xtask bench ingest|automation`: release builds, then the load generator against a
/// fresh server.
fn bench(which: &str, rest: &[&str]) -> anyhow::Result<()> {
    run(
        "cargo",
        &[
            "build",
            "--release",
            "--locked",
            "-p",
            "gangplank",
            "-p",
            "gangplank-bench",
        ],
    )?;
    let target = target_dir();
    let server = target.join("release/gangplank");
    let mut args = vec![
        which,
        "--server-binary",
        server.to_str().context("non-UTF-8 target path")?,
    ];
    args.extend(rest);
    run(
        target
            .join("release/gangplank-bench")
            .to_str()
            .context("non-UTF-8 target path")?,
        &args,
    )
}
