//! `gangplank agent`: load the agent's configuration, bind, and run until SIGINT or SIGTERM.

use anyhow::Context;
use gangplank_agent::AgentConfig;
use gangplank_server::LogFormat;

use crate::cli::AgentArgs;

pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let config = AgentConfig::load(args.config.as_deref(), |name| std::env::var(name).ok())?;
    super::serve::init_logging(LogFormat::Auto);
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let address = listener.local_addr().context("reading the bound address")?;
    // Scripts and tests read this line to learn the port when listening on port 0.
    println!("listening on http://{address}");
    gangplank_agent::run(config, listener, super::serve::shutdown_signal()).await
}
