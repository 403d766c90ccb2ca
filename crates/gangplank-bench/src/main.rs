//! Benchmarks for `cargo xtask bench`: `ingest` (artefact versions per second against the
//! durable-SQLite ceiling) and `automation` (from a registered version to its deployment and
//! webhook, beside the peers' polling intervals; and the outbound delivery rate) and `registry`
//! (the OCI client against skopeo: digest resolution, same- and cross-registry copies) and
//! `promote` (dev → test → prod through a pipeline run against `docker pull`/`tag`/`push`, a
//! promotion across registries against `skopeo copy`, approval → `latest` moved p99) and
//! `agent` (the host agent's `/deploy` rate and memory beside Debian's `webhook`) and `list`
//! (memory and pages/s while clients walk every page of a million versions) and `build` (a
//! GitHub push to the service answering, against the same steps by hand; a registry
//! notification to the version registered).

mod agent;
mod agent_converge;
mod automation;
mod build;
mod build_github;
mod build_hand;
mod build_notify;
mod ingest;
mod list;
mod promote;
mod promote_pipeline;
mod promote_seed;
mod receiver;
mod registry;
mod server;

use anyhow::bail;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.split_first() {
        Some((verb, rest)) if verb == "ingest" => {
            ingest::ingest(ingest::parse_options(rest)?).await
        }
        Some((verb, rest)) if verb == "automation" => automation::run(rest).await,
        Some((verb, rest)) if verb == "registry" => registry::run(rest).await,
        Some((verb, rest)) if verb == "promote" => promote::run(rest).await,
        Some((verb, rest)) if verb == "agent" => agent::run(rest).await,
        Some((verb, rest)) if verb == "list" => list::run(rest).await,
        Some((verb, rest)) if verb == "build" => build::run(rest).await,
        _ => {
            bail!(
                "usage: gangplank-bench ingest|automation|registry|promote|agent|list|build --server-binary PATH [options]"
            )
        }
    }
}
