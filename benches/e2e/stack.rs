//! The processes under test, all on loopback ports of a fresh temp dir (as in tests/common):
//! `docker-registry`, the OpenShift API subset (`portcullis cluster`), the gateway
//! (`portcullis serve`) and nginx as a plain streaming reverse proxy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest as _, Sha256};

use crate::procs::{children, cpu_seconds, free_port, Proc};

/// The namespace everything is pushed to; it has an `openshift.io/Image` LimitRange, so the
/// gateway meters every upload into it.
pub const NAMESPACE: &str = "bench";
/// `max.storage` of that LimitRange (bigger than the largest layer pushed).
pub const BLOB_LIMIT: &str = "4Gi";
/// May pull and push in `bench`; its decisions are warm for the small-request runs.
pub const USER_TOKEN: &str = "bench-user-token-0001";
const GATEWAY_TOKEN: &str = "bench-gateway-token-0002";
/// How many never-used tokens (users in group `benchers`) the policy has for cold runs.
pub const COLD_TOKENS: usize = 64;

/// A token that has not been used yet (one per cold measurement).
pub fn cold_token(i: usize) -> String {
    assert!(i < COLD_TOKENS, "only {COLD_TOKENS} cold tokens");
    format!("bench-cold-token-{i:04}")
}

/// What a request goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Direct,
    Nginx,
    Gateway,
}

impl Target {
    pub const ALL: [Target; 3] = [Target::Direct, Target::Nginx, Target::Gateway];

    pub fn name(self) -> &'static str {
        match self {
            Target::Direct => "direct",
            Target::Nginx => "nginx",
            Target::Gateway => "gateway",
        }
    }

    /// The order of round `r`: A B C, then C B A, … so no target always goes first.
    pub fn order(r: usize) -> [Target; 3] {
        let mut o = Target::ALL;
        if r % 2 == 1 {
            o.reverse();
        }
        o
    }
}

/// The running stack. Dropping it stops every process (in field order: the proxies first).
pub struct Stack {
    pub gateway: Proc,
    _nginx: Proc,
    _cluster: Proc,
    _registry: Proc,
    ports: Ports,
}

struct Ports {
    registry: u16,
    cluster: u16,
    gateway: u16,
    nginx: u16,
}

impl Stack {
    /// Write the configs into `dir` and start everything; returns when all answer.
    pub fn start(dir: &Path, portcullis: &Path, nginx: &Path) -> Stack {
        let ports = Ports {
            registry: free_port(),
            cluster: free_port(),
            gateway: free_port(),
            nginx: free_port(),
        };
        let mut registry = start_registry(dir, ports.registry);
        let mut cluster = start_cluster(dir, portcullis, ports.cluster);
        let mut gateway = start_gateway(dir, portcullis, &ports);
        let mut nginx = start_nginx(dir, nginx, &ports);
        let url = |port: u16, path: &str| format!("http://127.0.0.1:{port}{path}");
        registry.wait_http(&url(ports.registry, "/v2/"));
        cluster.wait_http(&url(ports.cluster, "/healthz"));
        gateway.wait_http(&url(ports.gateway, "/healthz"));
        nginx.wait_http(&url(ports.nginx, "/v2/"));
        Stack {
            gateway,
            _nginx: nginx,
            _cluster: cluster,
            _registry: registry,
            ports,
        }
    }

    /// `http://127.0.0.1:<port>` of a target.
    pub fn base(&self, t: Target) -> String {
        let port = match t {
            Target::Direct => self.ports.registry,
            Target::Nginx => self.ports.nginx,
            Target::Gateway => self.ports.gateway,
        };
        format!("http://127.0.0.1:{port}")
    }

    /// CPU used so far by each process.
    pub fn cpu(&self) -> Cpu {
        let nginx = self._nginx.pid();
        Cpu {
            registry: cpu_seconds(self._registry.pid()),
            nginx: cpu_seconds(nginx) + children(nginx).into_iter().map(cpu_seconds).sum::<f64>(),
            gateway: cpu_seconds(self.gateway.pid()),
            api: cpu_seconds(self._cluster.pid()),
        }
    }

    /// The embedded API's counters (`GET /portcullis/stats`).
    pub fn api_stats(&self) -> ApiStats {
        let url = format!("http://127.0.0.1:{}/portcullis/stats", self.ports.cluster);
        let r = crate::client::Call::new("GET", &url).send();
        assert_eq!(r.status, 200, "GET {url}");
        ApiStats(serde_json::from_slice(&r.body).expect("stats are a JSON object of counters"))
    }
}

/// CPU seconds used so far, per process role.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    pub registry: f64,
    /// Master and workers.
    pub nginx: f64,
    pub gateway: f64,
    /// `portcullis cluster`, which only the gateway calls.
    pub api: f64,
}

impl Cpu {
    pub fn since(&self, before: &Cpu) -> Cpu {
        Cpu {
            registry: self.registry - before.registry,
            nginx: self.nginx - before.nginx,
            gateway: self.gateway - before.gateway,
            api: self.api - before.api,
        }
    }
}

/// A snapshot of the API's request counters.
#[derive(Debug, Clone, Default)]
pub struct ApiStats(BTreeMap<String, u64>);

impl ApiStats {
    pub fn get(&self, key: &str) -> u64 {
        self.0.get(key).copied().unwrap_or(0)
    }

    /// Every API request the gateway made (the `oapi.*` keys double-count, `unauthorized` is
    /// an outcome, not a request).
    pub fn total(&self) -> u64 {
        self.0
            .iter()
            .filter(|(k, _)| !k.starts_with("oapi.") && *k != "unauthorized")
            .map(|(_, v)| v)
            .sum()
    }

    /// Counters that grew since `before`.
    pub fn since(&self, before: &ApiStats) -> ApiStats {
        ApiStats(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), v.saturating_sub(before.get(k))))
                .filter(|(_, v)| *v > 0)
                .collect(),
        )
    }

    /// `kind=n, …` of the non-zero counters.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .filter(|(k, v)| **v > 0 && !k.starts_with("oapi."))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }
}

fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn write(path: PathBuf, text: &str) {
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// The policy: the bench user and the cold users may push and pull in `bench`.
fn policy() -> String {
    let mut p = format!(
        r#"
[[users]]
name = "bench"
token_sha256 = "{user}"

[[service_accounts]]
namespace = "portcullis"
name = "gateway"
token_sha256 = "{gateway}"

[[bindings]]
role = "system:registry"
subjects = ["serviceaccount:portcullis:gateway"]

[[bindings]]
namespace = "{NAMESPACE}"
role = "system:image-builder"
subjects = ["user:bench", "group:benchers"]

[[limit_ranges]]
namespace = "{NAMESPACE}"
name = "image-limits"
limits = [{{ type = "openshift.io/Image", max = {{ storage = "{BLOB_LIMIT}" }} }}]
"#,
        user = sha(USER_TOKEN),
        gateway = sha(GATEWAY_TOKEN),
    );
    for i in 0..COLD_TOKENS {
        p.push_str(&format!(
            "\n[[users]]\nname = \"cold-{i}\"\ntoken_sha256 = \"{}\"\ngroups = [\"benchers\"]\n",
            sha(&cold_token(i))
        ));
    }
    p
}

/// The upstream: filesystem storage, no auth, request logging off (it is the same for all
/// three targets and would only take CPU from the proxies under test).
fn start_registry(dir: &Path, port: u16) -> Proc {
    write(
        dir.join("registry.yml"),
        &format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: bench-secret\n",
            dir.join("storage").display()
        ),
    );
    Proc::spawn(
        "registry",
        Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("registry.yml")),
        dir,
        false,
    )
}

fn start_cluster(dir: &Path, portcullis: &Path, port: u16) -> Proc {
    write(dir.join("policy.toml"), &policy());
    Proc::spawn(
        "cluster",
        Command::new(portcullis)
            .args(["cluster", "--policy"])
            .arg(dir.join("policy.toml"))
            .arg("--data")
            .arg(dir.join("api.db"))
            .args(["--listen", &format!("127.0.0.1:{port}")]),
        dir,
        false,
    )
}

/// The gateway with its defaults (2 threads, decision cache, quota metering) and the
/// per-request access log at `info`, as it would run in production.
fn start_gateway(dir: &Path, portcullis: &Path, ports: &Ports) -> Proc {
    write(dir.join("gateway.token"), GATEWAY_TOKEN);
    write(
        dir.join("portcullis.toml"),
        &format!(
            "[gateway]\nlisten = [\"127.0.0.1:{gw}\"]\nthreads = 2\ngrace_period_secs = 1\n\n\
             [upstream]\nurl = \"http://127.0.0.1:{reg}\"\nwrite_manifests = true\n\n\
             [openshift]\napi = \"http://127.0.0.1:{api}\"\ntoken_file = \"gateway.token\"\n\n\
             [cache]\nallow_ttl_secs = 60\ndeny_ttl_secs = 5\nmax_entries = 100000\n\n\
             [quota]\ncache_ttl_secs = 60\nreservation_ttl_secs = 900\n",
            gw = ports.gateway,
            reg = ports.registry,
            api = ports.cluster,
        ),
    );
    Proc::spawn(
        "gateway",
        Command::new(portcullis)
            .args(["serve", "--config"])
            .arg(dir.join("portcullis.toml"))
            .env("RUST_LOG", "info"),
        dir,
        false,
    )
}

/// nginx as the cheapest proxy a user could put in front: no buffering either way, no body
/// size limit, HTTP/1.1 keep-alive upstream, two workers like the gateway's two threads, and
/// its default access log.
fn nginx_config(dir: &Path, ports: &Ports) -> String {
    let d = dir.display();
    // As root the workers would run as `nobody` and could not open the private temp dir.
    let user = if is_root() { "user root;\n" } else { "" };
    format!(
        r#"{user}daemon off;
master_process on;
worker_processes 2;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {d}/nginx-access.log;
    client_body_temp_path {d}/nginx-tmp/body;
    proxy_temp_path {d}/nginx-tmp/proxy;
    fastcgi_temp_path {d}/nginx-tmp/fastcgi;
    uwsgi_temp_path {d}/nginx-tmp/uwsgi;
    scgi_temp_path {d}/nginx-tmp/scgi;
    upstream registry {{
        server 127.0.0.1:{reg};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 0;
        chunked_transfer_encoding on;
        location / {{
            proxy_pass http://registry;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_read_timeout 900;
            proxy_send_timeout 900;
        }}
    }}
}}
"#,
        reg = ports.registry,
        port = ports.nginx,
    )
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn start_nginx(dir: &Path, nginx: &Path, ports: &Ports) -> Proc {
    std::fs::create_dir_all(dir.join("nginx-tmp")).expect("nginx temp dir");
    write(dir.join("nginx.conf"), &nginx_config(dir, ports));
    Proc::spawn(
        "nginx",
        Command::new(nginx)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("nginx-error.log")),
        dir,
        true,
    )
}
