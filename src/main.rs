//! `portcullis` command line: `serve`, `cluster`, `check-config`, `hash-token`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use portcullis::auth::credentials::Token;
use portcullis::cluster::{self, Cluster};
use portcullis::config::{ApiSource, Config};
use portcullis::gateway::server;
use portcullis::openshift::{kubeconfig, ApiSettings};

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "OpenShift-style authorization gateway for a container registry"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (and, with `openshift.api = "embedded"`, the embedded API).
    Serve {
        #[arg(long, default_value = "conf/portcullis.toml")]
        config: PathBuf,
    },
    /// Run the embedded OpenShift API subset on its own.
    Cluster {
        /// A gateway config: its `[openshift.embedded]` section gives the policy and address.
        #[arg(long, conflicts_with = "policy")]
        config: Option<PathBuf>,
        /// A policy file (instead of --config).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Listen address (overrides the config).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Object store file of the image API (created if missing). Default: the config's
        /// `openshift.embedded.data`, else `portcullis-api.db`.
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Validate a config file and print what it resolves to.
    CheckConfig {
        #[arg(long, default_value = "conf/portcullis.toml")]
        config: PathBuf,
    },
    /// Print the sha256 of a token, as the policy file stores it.
    HashToken { token: String },
}

/// Exit code for configuration errors.
const CONFIG_ERROR: u8 = 2;

fn main() -> ExitCode {
    // Log lines are batched in memory and written to stderr in one call every 100 ms (or
    // sooner: 32 KiB, a warning or error, exit); see log_writer.
    let writer = portcullis::log_writer::Batched::stderr();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .with_writer(writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve(&config),
        Command::Cluster {
            config,
            policy,
            listen,
            data,
        } => run_cluster(config.as_deref(), policy, listen, data),
        Command::CheckConfig { config } => match Config::load(&config) {
            Ok(c) => {
                use std::io::Write as _;
                let _ = writeln!(std::io::stdout(), "{c:#?}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e.to_string()),
        },
        Command::HashToken { token } => {
            println!("{}", hex::encode(Token::new(token).hash()));
            ExitCode::SUCCESS
        }
    }
}

fn fail(msg: &str) -> ExitCode {
    // log lines still batched come first, so the error is the last line
    portcullis::log_writer::flush();
    eprintln!("portcullis: {msg}");
    ExitCode::from(CONFIG_ERROR)
}

fn serve(path: &Path) -> ExitCode {
    let cfg = match Config::load(path) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let o = &cfg.openshift;
    let api = match &o.source {
        ApiSource::Embedded {
            policy,
            listen,
            data,
        } => match start_embedded(policy, *listen, data, &cfg.gateway.public_address) {
            Ok((url, token)) => ApiSettings {
                base_url: url,
                ca_pem: None,
                insecure: false,
                token: Some(token),
                timeout: o.timeout,
                legacy_reviews: o.legacy_reviews,
            },
            Err(e) => return fail(&e),
        },
        other => match kubeconfig::settings(other, o.timeout, o.legacy_reviews) {
            Ok(s) => s,
            Err(e) => return fail(&e),
        },
    };
    portcullis::memory::start_trimming();
    match server::gateway(&cfg, api) {
        Ok(gw) => server::run(&cfg, gw),
        Err(e) => fail(&e),
    }
}

/// A random token for the gateway's own identity in embedded mode (never written anywhere).
fn random_token() -> Result<String, String> {
    use std::io::Read;
    let mut buf = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    Ok(format!("sha256~{}", hex::encode(buf)))
}

/// Start the embedded API on its own runtime thread; returns its URL and the gateway's token.
fn start_embedded(
    policy: &Path,
    listen: SocketAddr,
    data: &Path,
    registry_host: &str,
) -> Result<(url::Url, Token), String> {
    if let Some(dir) = data.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let cluster = Cluster::open(policy, Some(data)).map_err(|e| match e {
        cluster::ClusterError::Policy(_) => format!("{}: {e}", policy.display()),
        other => other.to_string(),
    })?;
    cluster.set_registry_host(registry_host);
    let token = random_token()?;
    cluster.add_service_account("portcullis", "gateway", &token, "system:registry");
    let cluster = Arc::new(cluster);
    let std_listener = std::net::TcpListener::bind(listen)
        .map_err(|e| format!("openshift.embedded.listen: cannot bind {listen}: {e}"))?;
    std_listener
        .set_nonblocking(true)
        .map_err(|e| e.to_string())?;
    let addr = std_listener.local_addr().map_err(|e| e.to_string())?;
    std::thread::Builder::new()
        .name("embedded-api".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "embedded API runtime");
                    return;
                }
            };
            rt.block_on(async move {
                match tokio::net::TcpListener::from_std(std_listener) {
                    Ok(l) => {
                        if let Err(e) = cluster::serve(l, cluster).await {
                            tracing::error!(error = %e, "embedded API stopped");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "embedded API listener"),
                }
            });
        })
        .map_err(|e| e.to_string())?;
    tracing::info!(%addr, policy = %policy.display(), data = %data.display(), "embedded OpenShift API listening");
    let url = url::Url::parse(&format!("http://{addr}/")).map_err(|e| e.to_string())?;
    Ok((url, Token::new(token)))
}

fn run_cluster(
    config: Option<&Path>,
    policy: Option<PathBuf>,
    listen: Option<SocketAddr>,
    data: Option<PathBuf>,
) -> ExitCode {
    let (policy, cfg_listen, cfg_data) = match (config, policy) {
        (Some(c), _) => match Config::load(c) {
            Ok(Config { openshift: o, .. }) => match o.source {
                ApiSource::Embedded { policy, listen, data: d } => (policy, listen, Some(d)),
                _ => return fail("cluster --config needs openshift.api = \"embedded\" (it reads [openshift.embedded])"),
            },
            Err(e) => return fail(&e.to_string()),
        },
        (None, Some(p)) => (p, SocketAddr::from(([127, 0, 0, 1], 6443)), None),
        (None, None) => return fail("cluster needs --config or --policy"),
    };
    let listen = listen.unwrap_or(cfg_listen);
    let data = data
        .or(cfg_data)
        .unwrap_or_else(|| PathBuf::from("portcullis-api.db"));
    let cluster = match Cluster::open(&policy, Some(&data)) {
        Ok(c) => Arc::new(c),
        Err(e @ cluster::ClusterError::Policy(_)) => {
            return fail(&format!("{}: {e}", policy.display()))
        }
        Err(e) => return fail(&e.to_string()),
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&e.to_string()),
    };
    rt.block_on(async move {
        let l = match tokio::net::TcpListener::bind(listen).await {
            Ok(l) => l,
            Err(e) => return fail(&format!("cannot bind {listen}: {e}")),
        };
        let addr = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
        tracing::info!(%addr, policy = %policy.display(), data = %data.display(), "OpenShift API subset listening");
        println!("listening on {addr}");
        match cluster::serve(l, cluster).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e.to_string()),
        }
    })
}
