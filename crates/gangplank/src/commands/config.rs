//! `gangplank config set|view`.

use anyhow::Context;

use crate::cli::{ConfigAction, ConfigArgs, OutputFormat};
use crate::client_config::{FileConfig, path};

/// `output` is `-o`: TOML (the file's own format) unless JSON or YAML is asked for.
pub fn run(args: ConfigArgs, output: Option<OutputFormat>) -> anyhow::Result<()> {
    let mut config = FileConfig::load()?;
    match args.action {
        ConfigAction::Set { key, value } => {
            config.set(&key, value)?;
            config.save()?;
        }
        ConfigAction::View => {
            if config.token.is_some() {
                config.token = Some("<redacted>".to_owned());
            }
            match output {
                Some(OutputFormat::Json) => println!(
                    "{}",
                    serde_json::to_string_pretty(&config).context("rendering JSON")?
                ),
                Some(OutputFormat::Yaml) => print!(
                    "{}",
                    serde_yaml_ng::to_string(&config).context("rendering YAML")?
                ),
                Some(OutputFormat::Table) | None => {
                    println!("# {}", path()?.display());
                    print!("{}", toml::to_string(&config)?);
                }
            }
        }
    }
    Ok(())
}
