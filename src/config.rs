//! Typed configuration: parsed once from TOML, defaults filled in, validated with one-line
//! messages that name the offending key. Every key is documented in `conf/portcullis.toml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use crate::gateway::limiter::Limits;
use url::Url;

/// A configuration problem: one line, naming the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err<T>(key: &str, msg: impl std::fmt::Display) -> Result<T, ConfigError> {
    Err(ConfigError(format!("{key}: {msg}")))
}

fn readable_file(key: &str, p: &std::path::Path) -> Result<(), ConfigError> {
    if p.is_file() {
        Ok(())
    } else {
        err(key, format!("{} is not a readable file", p.display()))
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    gateway: RawGateway,
    upstream: Option<RawUpstream>,
    #[serde(default)]
    openshift: RawOpenShift,
    #[serde(default)]
    auth: RawAuth,
    #[serde(default)]
    cache: RawCache,
    #[serde(default)]
    quota: RawQuota,
    #[serde(default)]
    overload: RawOverload,
    #[serde(default)]
    metrics: RawMetrics,
    #[serde(default)]
    audit: RawAudit,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOverload {
    read_max_running: Option<usize>,
    read_max_in_queue: Option<usize>,
    read_max_wait_ms: Option<u64>,
    write_max_running: Option<usize>,
    write_max_in_queue: Option<usize>,
    write_max_wait_ms: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    enabled: Option<bool>,
    secret_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    enabled: Option<bool>,
    file: Option<PathBuf>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawQuota {
    cache_ttl_secs: Option<u64>,
    reservation_ttl_secs: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    listen: Option<Vec<String>>,
    public_address: Option<String>,
    threads: Option<usize>,
    trust_forwarded_headers: Option<bool>,
    grace_period_secs: Option<u64>,
    max_header_bytes: Option<usize>,
    max_headers: Option<usize>,
    client_timeout_secs: Option<u64>,
    tls_listen: Option<Vec<String>>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    url: String,
    username: Option<String>,
    password_file: Option<PathBuf>,
    connect_timeout_secs: Option<u64>,
    read_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    keepalive_pool_size: Option<usize>,
    write_manifests: Option<bool>,
    ca_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOpenShift {
    api: Option<String>,
    ca_file: Option<PathBuf>,
    insecure: Option<bool>,
    token_file: Option<PathBuf>,
    kubeconfig: Option<PathBuf>,
    timeout_ms: Option<u64>,
    review_api: Option<String>,
    #[serde(default)]
    embedded: RawEmbedded,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEmbedded {
    policy: Option<PathBuf>,
    data: Option<PathBuf>,
    listen: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    realm: Option<String>,
    token_realm: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCache {
    allow_ttl_secs: Option<u64>,
    deny_ttl_secs: Option<u64>,
    max_entries: Option<u64>,
}

/// The whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub gateway: Gateway,
    pub upstream: Upstream,
    pub openshift: OpenShift,
    pub auth: Auth,
    pub cache: CacheTtls,
    pub quota: QuotaSettings,
    /// Reads (GET/HEAD/OPTIONS) and writes (the rest).
    pub overload: (Limits, Limits),
    pub metrics: MetricsSettings,
    /// `Some(None)`: audit to stdout; `Some(Some(path))`: to a file; `None`: off.
    pub audit: Option<Option<PathBuf>>,
}

#[derive(Debug, Clone)]
pub struct MetricsSettings {
    pub enabled: bool,
    /// Bearer token that may read the metrics without an access review.
    pub secret: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct QuotaSettings {
    /// How long a namespace's limit ranges and quotas are reused.
    pub cache_ttl: Duration,
    /// How long an upload's bytes stay reserved without activity (or a blob without an image).
    pub reservation_ttl: Duration,
}

#[derive(Debug, Clone)]
pub struct Gateway {
    pub listen: Vec<SocketAddr>,
    /// `host[:port]` clients use to reach the registry (written into `dockerImageReference`).
    pub public_address: String,
    pub threads: usize,
    pub trust_forwarded_headers: bool,
    pub grace_period: Duration,
    /// Requests with larger headers (all names and values) get 431.
    pub max_header_bytes: usize,
    /// Requests with more header fields get 431.
    pub max_headers: usize,
    /// Longest wait for one read of a request body, or one write of a response, to the client.
    pub client_timeout: Duration,
    /// HTTPS listeners with their certificate and key (PEM), reloaded when the files change.
    pub tls: Option<TlsListen>,
}

#[derive(Debug, Clone)]
pub struct TlsListen {
    pub listen: Vec<SocketAddr>,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// When set, clients must present a certificate that chains to this CA (PEM bundle).
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Upstream {
    pub url: Url,
    pub addr: SocketAddr,
    pub tls: bool,
    /// `host[:port]` as written in the URL (for SNI, Location rewriting).
    pub authority: String,
    /// `Authorization` value the gateway adds upstream (Basic), if configured.
    pub authorization: Option<String>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub idle_timeout: Duration,
    pub keepalive_pool_size: usize,
    /// Also write pushed manifests to the upstream by digest (so its GC keeps their blobs).
    pub write_manifests: bool,
    /// CA bundle (PEM) the upstream's certificate must chain to, instead of the system roots.
    pub ca_file: Option<PathBuf>,
}

/// Where the OpenShift API is.
#[derive(Debug, Clone)]
pub enum ApiSource {
    /// Run the embedded API subset in-process, from a policy file.
    /// `data` is the object store file of the image API.
    Embedded {
        policy: PathBuf,
        listen: SocketAddr,
        data: PathBuf,
    },
    /// A real API server.
    Remote {
        url: Url,
        ca_file: Option<PathBuf>,
        insecure: bool,
        token_file: Option<PathBuf>,
    },
    /// Server, CA and token from a kubeconfig file (current context).
    Kubeconfig(PathBuf),
    /// The pod's service account (`KUBERNETES_SERVICE_HOST`, `/var/run/secrets/...`).
    InCluster,
}

#[derive(Debug, Clone)]
pub struct OpenShift {
    pub source: ApiSource,
    pub timeout: Duration,
    pub legacy_reviews: bool,
}

#[derive(Debug, Clone)]
pub struct Auth {
    pub realm: String,
    /// `scheme://host` of the token endpoint; derived per request when absent.
    pub token_realm: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct CacheTtls {
    pub allow_ttl: Duration,
    pub deny_ttl: Duration,
    pub max_entries: u64,
}

impl Config {
    /// Read and validate a config file. Relative paths inside are relative to the file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: cannot read: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, base).map_err(|e| ConfigError(format!("{}: {}", path.display(), e.0)))
    }

    /// Parse TOML text; `base` resolves relative paths.
    pub fn parse(text: &str, base: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start].matches('\n').count() + 1);
            let msg = e.message().replace('\n', " ");
            ConfigError(match line {
                Some(l) => format!("line {l}: {msg}"),
                None => msg,
            })
        })?;
        let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };

        let listen_raw = raw
            .gateway
            .listen
            .unwrap_or_else(|| vec!["127.0.0.1:5000".into()]);
        if listen_raw.is_empty() {
            return err("gateway.listen", "needs at least one address");
        }
        let mut listen = Vec::new();
        for a in &listen_raw {
            match a.parse::<SocketAddr>() {
                Ok(s) => listen.push(s),
                Err(_) => return err("gateway.listen", format!("{a:?} is not an ip:port address")),
            }
        }
        let public_address = raw
            .gateway
            .public_address
            .unwrap_or_else(|| listen_raw[0].clone());
        if public_address.is_empty()
            || public_address.contains('/')
            || public_address.contains("://")
        {
            return err(
                "gateway.public_address",
                "must be host[:port], without scheme or path",
            );
        }
        let threads = raw.gateway.threads.unwrap_or(2);
        if threads == 0 {
            return err("gateway.threads", "must be at least 1");
        }
        let tls = match (
            raw.gateway.tls_listen,
            raw.gateway.tls_cert,
            raw.gateway.tls_key,
        ) {
            (None, None, None) if raw.gateway.tls_client_ca.is_some() => {
                return err(
                    "gateway.tls_client_ca",
                    "needs an HTTPS listener (tls_listen)",
                )
            }
            (None, None, None) => None,
            (Some(l), Some(c), Some(k)) => {
                let mut listen = Vec::new();
                for a in &l {
                    match a.parse::<SocketAddr>() {
                        Ok(s) => listen.push(s),
                        Err(_) => {
                            return err(
                                "gateway.tls_listen",
                                format!("{a:?} is not an ip:port address"),
                            )
                        }
                    }
                }
                let (cert, key) = (rel(c), rel(k));
                for (k, p) in [("gateway.tls_cert", &cert), ("gateway.tls_key", &key)] {
                    readable_file(k, p)?;
                }
                let client_ca = raw.gateway.tls_client_ca.map(&rel);
                if let Some(p) = &client_ca {
                    readable_file("gateway.tls_client_ca", p)?;
                }
                Some(TlsListen {
                    listen,
                    cert,
                    key,
                    client_ca,
                })
            }
            _ => {
                return err(
                    "gateway.tls_listen",
                    "set tls_listen, tls_cert and tls_key together",
                )
            }
        };
        let client_timeout = Duration::from_secs(raw.gateway.client_timeout_secs.unwrap_or(60));
        if client_timeout.is_zero() {
            return err("gateway.client_timeout_secs", "must be at least 1");
        }
        let gateway = Gateway {
            listen,
            public_address,
            threads,
            trust_forwarded_headers: raw.gateway.trust_forwarded_headers.unwrap_or(false),
            grace_period: Duration::from_secs(raw.gateway.grace_period_secs.unwrap_or(10)),
            max_header_bytes: raw.gateway.max_header_bytes.unwrap_or(64 * 1024),
            max_headers: raw.gateway.max_headers.unwrap_or(100),
            client_timeout,
            tls,
        };

        let Some(up) = raw.upstream else {
            return err(
                "upstream",
                "missing section: set upstream.url to the registry, e.g. \"http://127.0.0.1:5001\"",
            );
        };
        let upstream = upstream(up, &rel)?;
        let openshift = openshift(raw.openshift, &rel)?;

        let realm = raw.auth.realm.unwrap_or_else(|| "openshift".into());
        if realm.is_empty() || realm.contains(|c: char| c == ',' || c == '"' || c.is_whitespace()) {
            return err(
                "auth.realm",
                "must be a non-empty word without spaces, commas or quotes",
            );
        }
        let token_realm = match raw.auth.token_realm {
            None => None,
            Some(t) => {
                let u = Url::parse(&t).or_else(|e| err("auth.token_realm", e))?;
                if !matches!(u.scheme(), "http" | "https")
                    || u.host_str().is_none()
                    || u.path() != "/"
                    || u.query().is_some()
                {
                    return err(
                        "auth.token_realm",
                        "must be scheme://host[:port] only (the path is /openshift/token)",
                    );
                }
                Some(t.trim_end_matches('/').to_string())
            }
        };

        let cache = CacheTtls {
            allow_ttl: Duration::from_secs(raw.cache.allow_ttl_secs.unwrap_or(60)),
            deny_ttl: Duration::from_secs(raw.cache.deny_ttl_secs.unwrap_or(5)),
            max_entries: raw.cache.max_entries.unwrap_or(100_000),
        };
        if cache.max_entries == 0 {
            return err("cache.max_entries", "must be at least 1");
        }
        let quota = QuotaSettings {
            cache_ttl: Duration::from_secs(raw.quota.cache_ttl_secs.unwrap_or(60)),
            reservation_ttl: Duration::from_secs(raw.quota.reservation_ttl_secs.unwrap_or(900)),
        };
        let o = raw.overload;
        let class = |running: Option<usize>, queue: Option<usize>, wait: Option<u64>| Limits {
            max_running: running.unwrap_or(0),
            max_in_queue: queue.unwrap_or(0),
            max_wait: Duration::from_millis(wait.unwrap_or(10_000)),
        };
        let overload = (
            class(o.read_max_running, o.read_max_in_queue, o.read_max_wait_ms),
            class(
                o.write_max_running,
                o.write_max_in_queue,
                o.write_max_wait_ms,
            ),
        );
        let secret = match raw.metrics.secret_file.map(&rel) {
            None => None,
            Some(f) => {
                let t = std::fs::read_to_string(&f)
                    .or_else(|e| err("metrics.secret_file", format!("{}: {e}", f.display())))?;
                let t = t.trim().to_string();
                if t.is_empty() {
                    return err("metrics.secret_file", format!("{} is empty", f.display()));
                }
                Some(t)
            }
        };
        let metrics = MetricsSettings {
            enabled: raw.metrics.enabled.unwrap_or(true),
            secret,
        };
        let audit = raw
            .audit
            .enabled
            .unwrap_or(false)
            .then(|| raw.audit.file.map(&rel));
        Ok(Config {
            gateway,
            upstream,
            openshift,
            auth: Auth { realm, token_realm },
            cache,
            quota,
            overload,
            metrics,
            audit,
        })
    }
}

fn upstream(up: RawUpstream, rel: &dyn Fn(PathBuf) -> PathBuf) -> Result<Upstream, ConfigError> {
    let url = Url::parse(&up.url).or_else(|e| err("upstream.url", format!("{:?}: {e}", up.url)))?;
    let tls = match url.scheme() {
        "http" => false,
        "https" => true,
        s => return err("upstream.url", format!("scheme {s:?} is not http or https")),
    };
    let Some(host) = url.host_str() else {
        return err("upstream.url", "needs a host");
    };
    let port = url.port_or_known_default().unwrap_or(80);
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(
        host.trim_matches(|c| c == '[' || c == ']'),
        port,
    ))
    .ok()
    .and_then(|mut a| a.next());
    let Some(addr) = addr else {
        return err("upstream.url", format!("cannot resolve {host:?}"));
    };
    let ca_file = up.ca_file.map(rel);
    if let Some(p) = &ca_file {
        if !tls {
            return err("upstream.ca_file", "only applies to an https upstream.url");
        }
        readable_file("upstream.ca_file", p)?;
    }
    let authorization = match (up.username, up.password_file) {
        (None, None) => None,
        (Some(user), Some(file)) => {
            let file = rel(file);
            let pw = std::fs::read_to_string(&file)
                .or_else(|e| err("upstream.password_file", format!("{}: {e}", file.display())))?;
            use base64::Engine as _;
            let b = base64::engine::general_purpose::STANDARD
                .encode(format!("{user}:{}", pw.trim_end()));
            Some(format!("Basic {b}"))
        }
        _ => {
            return err(
                "upstream.username",
                "set both upstream.username and upstream.password_file, or neither",
            )
        }
    };
    Ok(Upstream {
        url,
        addr,
        tls,
        authority,
        authorization,
        connect_timeout: Duration::from_secs(up.connect_timeout_secs.unwrap_or(5)),
        read_timeout: Duration::from_secs(up.read_timeout_secs.unwrap_or(600)),
        idle_timeout: Duration::from_secs(up.idle_timeout_secs.unwrap_or(50)),
        keepalive_pool_size: up.keepalive_pool_size.unwrap_or(256),
        write_manifests: up.write_manifests.unwrap_or(true),
        ca_file,
    })
}

fn openshift(o: RawOpenShift, rel: &dyn Fn(PathBuf) -> PathBuf) -> Result<OpenShift, ConfigError> {
    let api = o.api.unwrap_or_else(|| "embedded".into());
    let source = match api.as_str() {
        "embedded" => {
            let policy = rel(o
                .embedded
                .policy
                .unwrap_or_else(|| PathBuf::from("policy.toml")));
            let listen = o.embedded.listen.unwrap_or_else(|| "127.0.0.1:0".into());
            let listen = listen.parse().or_else(|_| {
                err(
                    "openshift.embedded.listen",
                    format!("{listen:?} is not an ip:port address"),
                )
            })?;
            // an explicit path is relative to the config file; the default to the working directory
            let data = o
                .embedded
                .data
                .map(rel)
                .unwrap_or_else(|| PathBuf::from(".run/portcullis-api.db"));
            ApiSource::Embedded {
                policy,
                listen,
                data,
            }
        }
        "kubeconfig" => match o.kubeconfig {
            Some(k) => ApiSource::Kubeconfig(rel(k)),
            None => match std::env::var_os("KUBECONFIG") {
                Some(k) => ApiSource::Kubeconfig(PathBuf::from(k)),
                None => {
                    return err(
                        "openshift.kubeconfig",
                        "needed when openshift.api = \"kubeconfig\" (or set KUBECONFIG)",
                    )
                }
            },
        },
        "in-cluster" => ApiSource::InCluster,
        other => {
            let url = Url::parse(other).or_else(|_| {
                err("openshift.api", format!("{other:?} is not \"embedded\", \"kubeconfig\", \"in-cluster\" or an https:// URL"))
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                return err("openshift.api", "the API URL must be http:// or https://");
            }
            ApiSource::Remote {
                url,
                ca_file: o.ca_file.map(rel),
                insecure: o.insecure.unwrap_or(false),
                token_file: o.token_file.map(rel),
            }
        }
    };
    let legacy_reviews = match o.review_api.as_deref().unwrap_or("selfsubjectaccessreview") {
        "selfsubjectaccessreview" => false,
        "legacy" => true,
        other => {
            return err(
                "openshift.review_api",
                format!("{other:?} is not \"selfsubjectaccessreview\" or \"legacy\""),
            )
        }
    };
    let timeout = Duration::from_millis(o.timeout_ms.unwrap_or(5000));
    if timeout.is_zero() {
        return err("openshift.timeout_ms", "must be more than 0");
    }
    Ok(OpenShift {
        source,
        timeout,
        legacy_reviews,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, Path::new("/etc/portcullis"))
    }

    #[test]
    fn minimal_with_defaults() {
        let c = parse("[upstream]\nurl = \"http://127.0.0.1:5001\"\n").unwrap();
        assert_eq!(c.gateway.listen, vec!["127.0.0.1:5000".parse().unwrap()]);
        assert_eq!(c.gateway.public_address, "127.0.0.1:5000");
        assert_eq!(c.auth.realm, "openshift");
        assert!(!c.upstream.tls);
        assert_eq!(c.upstream.authority, "127.0.0.1:5001");
        assert!(
            matches!(c.openshift.source, ApiSource::Embedded { ref policy, .. } if policy == Path::new("/etc/portcullis/policy.toml"))
        );
        assert_eq!(c.cache.allow_ttl, Duration::from_secs(60));
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("", "upstream"),
            ("[upstream]\nurl = \"ftp://x\"", "upstream.url"),
            ("[upstream]\nurl = \"nope\"", "upstream.url"),
            (
                "[gateway]\nlisten = [\"x\"]\n[upstream]\nurl = \"http://127.0.0.1:1\"",
                "gateway.listen",
            ),
            (
                "[gateway]\nthreads = 0\n[upstream]\nurl = \"http://127.0.0.1:1\"",
                "gateway.threads",
            ),
            (
                "[gateway]\nclient_timeout_secs = 0\n[upstream]\nurl = \"http://127.0.0.1:1\"",
                "gateway.client_timeout_secs",
            ),
            (
                "[upstream]\nurl = \"http://127.0.0.1:1\"\n[openshift]\napi = \"bogus\"",
                "openshift.api",
            ),
            (
                "[upstream]\nurl = \"http://127.0.0.1:1\"\n[openshift]\nreview_api = \"x\"",
                "openshift.review_api",
            ),
            (
                "[upstream]\nurl = \"http://127.0.0.1:1\"\n[auth]\nrealm = \"a b\"",
                "auth.realm",
            ),
            (
                "[upstream]\nurl = \"http://127.0.0.1:1\"\n[auth]\ntoken_realm = \"https://h/x\"",
                "auth.token_realm",
            ),
            (
                "[upstream]\nurl = \"http://127.0.0.1:1\"\nusername = \"u\"",
                "upstream.username",
            ),
            (
                "[upstream]\nurl = \"http://127.0.0.1:1\"\nca_file = \"/etc/hostname\"",
                "upstream.ca_file",
            ),
            (
                "[upstream]\nurl = \"https://127.0.0.1:1\"\nca_file = \"/nonexistent.pem\"",
                "upstream.ca_file",
            ),
            (
                "[gateway]\ntls_client_ca = \"/etc/hostname\"\n[upstream]\nurl = \"http://127.0.0.1:1\"",
                "gateway.tls_client_ca",
            ),
        ];
        for (text, key) in cases {
            let e = parse(text).unwrap_err().0;
            assert!(e.starts_with(key), "{text:?} gave {e:?}");
            assert!(!e.contains('\n'));
        }
        let e = parse("[upstream]\nurl = \"http://127.0.0.1:1\"\nbogus = 1\n")
            .unwrap_err()
            .0;
        assert!(e.contains("line 3") && e.contains("bogus"), "{e}");
    }

    #[test]
    fn remote_api() {
        let c = parse("[upstream]\nurl = \"https://127.0.0.1:5000\"\n[openshift]\napi = \"https://api.example:6443\"\ntoken_file = \"sa.token\"\nreview_api = \"legacy\"").unwrap();
        assert!(c.openshift.legacy_reviews);
        assert!(c.upstream.tls);
        let ApiSource::Remote { token_file, .. } = c.openshift.source else {
            panic!()
        };
        assert_eq!(token_file.unwrap(), Path::new("/etc/portcullis/sa.token"));
    }
}
