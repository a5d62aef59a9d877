//! Building and running the pingora server for the gateway.

use std::sync::Arc;

use pingora::server::configuration::ServerConf;
use pingora::server::Server;

use crate::audit::Audit;
use crate::auth::authorizer::{Authorizer, CacheSettings};
use crate::config::Config;
use crate::gateway::decide::Decider;
use crate::gateway::limiter::Limiter;
use crate::gateway::{tls, Gateway};
use crate::images::Images;
use crate::metrics::Metrics;
use crate::openshift::{ApiClient, ApiSettings};
use crate::quota::Quotas;
use crate::upstream::Upstream;

/// Build the gateway service from the config and an API client configuration.
pub fn gateway(cfg: &Config, api: ApiSettings) -> Result<Gateway, String> {
    let client = ApiClient::new(api)?;
    let c = cfg.cache;
    let authorizer = Arc::new(Authorizer::new(
        client.clone(),
        CacheSettings {
            allow_ttl: c.allow_ttl,
            deny_ttl: c.deny_ttl,
            max_entries: c.max_entries,
        },
    ));
    let quotas = Arc::new(Quotas::new(
        client.clone(),
        cfg.quota.cache_ttl,
        cfg.quota.reservation_ttl,
    ));
    let images = Arc::new(Images::new(
        client,
        Upstream::new(&cfg.upstream)?,
        authorizer.clone(),
        cfg.gateway.public_address.clone(),
        cfg.upstream.write_manifests,
        quotas.clone(),
    ));
    let audit = match &cfg.audit {
        None => None,
        Some(path) => Some(Arc::new(
            Audit::open(path.as_deref()).map_err(|e| format!("audit.file: cannot open: {e}"))?,
        )),
    };
    Ok(Gateway {
        images,
        quotas,
        decider: Decider {
            authorizer,
            realm: cfg.auth.realm.clone(),
            token_realm: cfg.auth.token_realm.clone(),
            metrics_secret: cfg.metrics.secret.clone(),
            resolve_users: cfg.audit.is_some(),
        },
        upstream: cfg.upstream.clone(),
        trust_forwarded_headers: cfg.gateway.trust_forwarded_headers,
        public_address: cfg.gateway.public_address.clone(),
        metrics: Arc::new(Metrics::new()),
        metrics_enabled: cfg.metrics.enabled,
        audit,
        reads: Limiter::new(cfg.overload.0),
        writes: Limiter::new(cfg.overload.1),
        max_header_bytes: cfg.gateway.max_header_bytes,
        max_headers: cfg.gateway.max_headers,
        client_timeout: cfg.gateway.client_timeout,
    })
}

/// Run the gateway until SIGTERM (graceful, bounded by the grace period) or SIGINT (fast).
/// Never returns.
pub fn run(cfg: &Config, gw: Gateway) -> ! {
    let mut conf = ServerConf {
        threads: cfg.gateway.threads,
        ..ServerConf::default()
    };
    conf.grace_period_seconds = Some(cfg.gateway.grace_period.as_secs());
    conf.graceful_shutdown_timeout_seconds = Some(2);
    conf.upstream_keepalive_pool_size = cfg.upstream.keepalive_pool_size;
    // pingora's upstream connector trusts only this bundle when it is set
    conf.ca_file = cfg
        .upstream
        .ca_file
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut svc = pingora::proxy::http_proxy_service(&server.configuration, gw);
    for addr in &cfg.gateway.listen {
        svc.add_tcp(&addr.to_string());
    }
    if let Some(t) = &cfg.gateway.tls {
        for addr in &t.listen {
            let client_ca = t.client_ca.as_ref().map(|p| p.to_string_lossy());
            match tls::settings(
                &t.cert.to_string_lossy(),
                &t.key.to_string_lossy(),
                client_ca.as_deref(),
            ) {
                Ok(settings) => svc.add_tls_with_settings(&addr.to_string(), None, settings),
                Err(e) => {
                    crate::log_writer::flush();
                    eprintln!("portcullis: gateway.tls: {e}");
                    std::process::exit(2);
                }
            }
        }
    }
    server.add_service(svc);
    tracing::info!(listen = ?cfg.gateway.listen, upstream = %cfg.upstream.url, "gateway ready");
    server.run_forever()
}
