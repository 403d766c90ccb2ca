//! `gangplank create artefact-version|app|env`.

use anyhow::Context;
use gangplank_api::client::Body;
use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::{ArtefactVersionArgs, CreateArgs, CreateWhat, Global};
use crate::client_config::Resolved;
use crate::commands::get::{APP_COLUMNS, ENV_COLUMNS, VERSION_COLUMNS};
use crate::output;

pub async fn run(global: &Global, args: CreateArgs) -> anyhow::Result<()> {
    let resolved = Resolved::from(global)?;
    let org = resolved.org()?.to_owned();
    let (path, body, columns) = match args.what {
        CreateWhat::ArtefactVersion(version) => (
            format!("/orgs/{org}/artefact-versions"),
            artefact_version_body(version)?,
            VERSION_COLUMNS,
        ),
        CreateWhat::App { id, name } => (
            format!("/orgs/{org}/apps"),
            json!({"id": id, "name": name.unwrap_or_else(|| id.clone())}),
            APP_COLUMNS,
        ),
        CreateWhat::Env { id, kind, name } => {
            let app = resolved.app()?;
            let name = name.unwrap_or_else(|| id.clone());
            (
                format!("/orgs/{org}/apps/{app}/envs"),
                json!({"id": id, "name": name, "type": kind}),
                ENV_COLUMNS,
            )
        }
    };
    let answer = resolved
        .client()
        .send(Method::POST, &path, Body::Json(body))
        .await?;
    output::print(&answer, output::format(global.output), columns)
}

/// The JSON body; a `--spec` file (YAML or JSON) is embedded as the `spec` object.
fn artefact_version_body(args: ArtefactVersionArgs) -> anyhow::Result<Value> {
    let mut body = json!({"type": args.kind, "name": args.name});
    let fields = [
        ("version", args.version),
        ("ref", args.git_ref),
        ("commit", args.commit),
        ("digest", args.digest),
        ("image", args.image),
    ];
    for (key, value) in fields {
        if let Some(value) = value {
            body[key] = Value::String(value);
        }
    }
    if let Some(path) = args.spec {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let spec: Value = serde_yaml_ng::from_str(&text)
            .with_context(|| format!("parsing {} as YAML", path.display()))?;
        body["spec"] = spec;
    }
    Ok(body)
}
