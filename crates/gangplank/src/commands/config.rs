//! `gangplank config set|view`.

use crate::cli::{ConfigAction, ConfigArgs};
use crate::client_config::{FileConfig, path};

pub fn run(args: ConfigArgs) -> anyhow::Result<()> {
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
            println!("# {}", path()?.display());
            print!("{}", toml::to_string(&config)?);
        }
    }
    Ok(())
}
