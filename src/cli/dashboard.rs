//! `organism dashboard`: the read-only web UI (see `organism::serve::dashboard`).

use std::{net::IpAddr, path::PathBuf, sync::Arc};

use anyhow::{bail, Context, Result};
use organism::serve::dashboard::{router, Site};

use super::load_config;

/// The environment variable holding the dashboard's token.
pub const TOKEN_ENV: &str = "ORGANISM_DASHBOARD_TOKEN";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Config file laid over the built-in defaults (promotion.registry).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The registry and journal (default: promotion.registry), opened read-only.
    #[arg(long, value_name = "FILE")]
    pub registry: Option<PathBuf>,
    /// Where run folders and HTML reports are looked for (4 folders deep).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub root: PathBuf,
    /// The address to listen on; any but a loopback one needs ORGANISM_DASHBOARD_TOKEN.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// The port (0: any free one; the address is printed).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
}

pub fn run(a: Args) -> Result<()> {
    let cfg = load_config(a.config.as_deref())?;
    let registry = a
        .registry
        .unwrap_or_else(|| PathBuf::from(&cfg.promotion.registry));
    let token = std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty());
    if !a.bind.is_loopback() && token.is_none() {
        bail!(
            "--bind {}: the dashboard would be open to the network; set {TOKEN_ENV} to a secret \
             token first (then open it with ?token=…), or bind 127.0.0.1",
            a.bind
        );
    }
    if !a.root.is_dir() {
        bail!("--root {}: not a folder", a.root.display());
    }
    let site = Arc::new(Site {
        root: a.root.clone(),
        registry,
        token: token.clone(),
    });
    super::data::runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind((a.bind, a.port))
            .await
            .with_context(|| format!("listening on {}:{}", a.bind, a.port))?;
        let addr = listener.local_addr()?;
        outln!(
            "dashboard: http://{addr}/{} (read-only; Ctrl-C stops it)",
            if token.is_some() { "?token=…" } else { "" }
        );
        let serve = axum::serve(listener, router(site));
        tokio::select! {
            r = serve => r.context("serving the dashboard")?,
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(())
    })
}
