//! End-to-end harness: real `docker-registry`, the embedded API (`portcullis cluster`), the
//! gateway (`portcullis serve`) and `skopeo`, all as processes on ephemeral loopback ports.
#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

pub const DEV: &str = "dev-token-0001";
pub const VIEWER: &str = "viewer-token-0002";
pub const SECRET_OWNER: &str = "secret-token-0003";
pub const READER_ALL: &str = "reader-all-token-0004";
pub const GATEWAY: &str = "gateway-token-0005";
pub const PRUNER: &str = "pruner-token-0006";

pub fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// The policy every test uses.
pub fn policy() -> String {
    policy_with_blob_limit("1Mi")
}

/// The policy with another `openshift.io/Image` `max.storage` in namespace `quota`.
pub fn policy_with_blob_limit(blob_limit: &str) -> String {
    format!(
        r#"
[[users]]
name = "developer"
token_sha256 = "{dev}"

[[users]]
name = "viewer"
token_sha256 = "{viewer}"

[[users]]
name = "secret-owner"
token_sha256 = "{secret}"

[[users]]
name = "reader"
token_sha256 = "{reader}"
groups = ["readers"]

[[users]]
name = "pruner"
token_sha256 = "{pruner}"

[[service_accounts]]
namespace = "portcullis"
name = "gateway"
token_sha256 = "{gateway}"

[[bindings]]
role = "system:registry"
subjects = ["serviceaccount:portcullis:gateway"]

[[bindings]]
role = "system:image-pruner"
subjects = ["user:pruner"]

[[bindings]]
namespace = "demo"
role = "system:image-builder"
subjects = ["user:developer", "group:readers"]

[[bindings]]
namespace = "demo"
role = "system:image-puller"
subjects = ["user:viewer"]

[[bindings]]
namespace = "public"
role = "system:image-builder"
subjects = ["user:developer"]

[[bindings]]
namespace = "public"
role = "system:image-puller"
subjects = ["group:system:unauthenticated", "group:system:authenticated"]

[[bindings]]
namespace = "secret"
role = "system:image-builder"
subjects = ["user:secret-owner"]

[[bindings]]
namespace = "secret"
role = "system:image-puller"
subjects = ["group:readers"]

[[bindings]]
namespace = "quota"
role = "system:image-builder"
subjects = ["user:developer"]

[[bindings]]
namespace = "shared"
role = "system:image-builder"
subjects = ["user:developer"]

[[limit_ranges]]
namespace = "quota"
name = "image-limits"
limits = [{{ type = "openshift.io/Image", max = {{ storage = "{blob_limit}" }} }}]

[[resource_quotas]]
namespace = "shared"
name = "storage"
hard = {{ "openshift.io/image-storage" = "3Mi" }}
"#,
        dev = sha(DEV),
        viewer = sha(VIEWER),
        secret = sha(SECRET_OWNER),
        reader = sha(READER_ALL),
        pruner = sha(PRUNER),
        gateway = sha(GATEWAY),
        blob_limit = blob_limit,
    )
}

/// A loopback port nothing listens on, for a process to bind next.
///
/// Not the kernel's ephemeral range (32768–60999 here): a port picked there can be taken by
/// any outgoing connection before the process binds it, and a killed registry that restarts
/// on its old port could find it gone. Ports are handed out in turn from 15000–32000,
/// starting at a place that depends on the process id, so parallel tests (and parallel test
/// binaries) do not pick the same one.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 15_000;
    const SPAN: u32 = 17_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        (std::process::id().wrapping_mul(7919)) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let port = (LOW + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {LOW}..{}", LOW + SPAN)
}

/// A child process killed on drop.
pub struct Proc {
    pub child: Child,
    pub name: &'static str,
    pub log: PathBuf,
}

impl Proc {
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(name: &'static str, cmd: &mut Command, dir: &Path) -> Proc {
    let log = dir.join(format!("{name}.log"));
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    Proc { child, name, log }
}

/// Wait until `GET url` answers with any HTTP status.
pub fn wait_http(url: &str, proc_: &mut Proc) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = probe::get_status;
    loop {
        if client(url).is_some() {
            return;
        }
        if let Ok(Some(st)) = proc_.child.try_wait() {
            panic!(
                "{} exited ({st}): {}",
                proc_.name,
                std::fs::read_to_string(&proc_.log).unwrap_or_default()
            );
        }
        if Instant::now() > deadline {
            panic!(
                "{} did not come up: {}",
                proc_.name,
                std::fs::read_to_string(&proc_.log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Minimal blocking GET for readiness checks (no async runtime needed).
pub mod probe {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    pub fn get_status(url: &str) -> Option<u16> {
        let rest = url.strip_prefix("http://")?;
        let (host, path) = rest
            .split_once('/')
            .map(|(h, p)| (h, format!("/{p}")))
            .unwrap_or((rest, "/".into()));
        let mut s = TcpStream::connect(host).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).ok()?;
        let line = std::str::from_utf8(&buf[..n]).ok()?;
        line.split(' ').nth(1)?.parse().ok()
    }
}

/// The whole stack for one test.
/// How to start a [`Stack`]; `Opts::default()` is the plain loopback stack.
#[derive(Default)]
pub struct Opts<'a> {
    /// Appended to the gateway config (after `[openshift]`).
    pub extra: &'a str,
    /// Files written next to the gateway config first.
    pub files: &'a [(&'a str, &'a str)],
    /// Goes into the `[gateway]` section.
    pub gateway_extra: String,
    /// Certificate and key: the upstream registry serves HTTPS with them.
    pub registry_tls: Option<(PathBuf, PathBuf)>,
    /// Goes into the `[upstream]` section.
    pub upstream_extra: String,
}

/// `[gateway]` lines for an HTTPS listener on `port` with `certs/tls.crt` and `certs/tls.key`.
pub fn tls_listener(port: u16, certs: &Path) -> String {
    format!(
        "tls_listen = [\"127.0.0.1:{port}\"]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        certs.join("tls.crt").display(),
        certs.join("tls.key").display()
    )
}

pub struct Stack {
    pub dir: tempfile::TempDir,
    pub registry: Proc,
    pub registry_port: u16,
    pub cluster: Proc,
    pub cluster_port: u16,
    pub gateway: Proc,
    pub gateway_port: u16,
}

fn start_cluster(d: &Path, port: u16) -> Proc {
    spawn(
        "cluster",
        Command::new(bin())
            .args(["cluster", "--policy"])
            .arg(d.join("policy.toml"))
            .arg("--data")
            .arg(d.join("api.db"))
            .args(["--listen", &format!("127.0.0.1:{port}")]),
        d,
    )
}

fn start_registry(d: &Path) -> Proc {
    spawn(
        "registry",
        Command::new("docker-registry")
            .arg("serve")
            .arg(d.join("registry.yml")),
        d,
    )
}

fn start_gateway(d: &Path) -> Proc {
    spawn(
        "gateway",
        Command::new(bin())
            .args(["serve", "--config"])
            .arg(d.join("portcullis.toml"))
            .env("RUST_LOG", "info"),
        d,
    )
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_portcullis")
}

impl Stack {
    pub fn start() -> Stack {
        Stack::start_with("")
    }

    /// Start everything; `extra` is appended to the gateway config.
    pub fn start_with(extra: &str) -> Stack {
        Stack::start_opts(Opts {
            extra,
            ..Opts::default()
        })
    }

    /// With an HTTPS listener on `port` using `certs/tls.crt` and `certs/tls.key`.
    pub fn start_tls(port: u16, certs: &Path) -> Stack {
        Stack::start_opts(Opts {
            gateway_extra: tls_listener(port, certs),
            ..Opts::default()
        })
    }

    /// Like [`Stack::start_with`], with extra files written next to the gateway config first.
    pub fn start_with_files(extra: &str, files: &[(&str, &str)]) -> Stack {
        Stack::start_opts(Opts {
            extra,
            files,
            ..Opts::default()
        })
    }

    pub fn start_opts(o: Opts) -> Stack {
        let Opts {
            extra,
            files,
            gateway_extra,
            registry_tls,
            upstream_extra,
        } = o;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (name, content) in files {
            std::fs::write(d.join(name), content).unwrap();
        }
        let registry_port = free_port();
        std::fs::write(
            d.join("registry.yml"),
            format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{registry_port}\n  secret: test-secret\n{}",
                d.join("storage").display(),
                registry_tls
                    .as_ref()
                    .map(|(c, k)| format!(
                        "  tls:\n    certificate: {}\n    key: {}\n",
                        c.display(),
                        k.display()
                    ))
                    .unwrap_or_default()
            ),
        )
        .unwrap();
        let mut registry = start_registry(d);
        std::fs::write(d.join("policy.toml"), policy()).unwrap();
        let cluster_port = free_port();
        let mut cluster = start_cluster(d, cluster_port);
        std::fs::write(d.join("gateway.token"), GATEWAY).unwrap();
        let gateway_port = free_port();
        let scheme = if registry_tls.is_some() {
            "https"
        } else {
            "http"
        };
        let mut cfg = std::fs::File::create(d.join("portcullis.toml")).unwrap();
        write!(
            cfg,
            "[gateway]\nlisten = [\"127.0.0.1:{gateway_port}\"]\nthreads = 2\ngrace_period_secs = 1\n{gateway_extra}\n\
             [upstream]\nurl = \"{scheme}://127.0.0.1:{registry_port}\"\n{upstream_extra}\n\n\
             [openshift]\napi = \"http://127.0.0.1:{cluster_port}\"\ntoken_file = \"gateway.token\"\ntimeout_ms = 2000\n{extra}\n\n\
             [quota]\ncache_ttl_secs = 1\n"
        )
        .unwrap();
        drop(cfg);
        let mut gateway = start_gateway(d);
        wait_http(
            &format!("http://127.0.0.1:{registry_port}/v2/"),
            &mut registry,
        );
        wait_http(
            &format!("http://127.0.0.1:{cluster_port}/healthz"),
            &mut cluster,
        );
        wait_http(
            &format!("http://127.0.0.1:{gateway_port}/healthz"),
            &mut gateway,
        );
        Stack {
            dir,
            registry,
            registry_port,
            cluster,
            cluster_port,
            gateway,
            gateway_port,
        }
    }

    /// Restart only the gateway (same port and config).
    pub fn restart_gateway(&mut self) {
        self.gateway.kill();
        self.gateway = start_gateway(self.dir.path());
        wait_http(
            &format!("http://127.0.0.1:{}/healthz", self.gateway_port),
            &mut self.gateway,
        );
    }

    /// Replace the policy file (the API reloads it when it changes).
    pub fn set_policy(&self, text: &str) {
        std::fs::write(self.dir.path().join("policy.toml"), text).unwrap();
    }

    /// Leftover upload data of a repository in the upstream's storage (bytes of the `data`
    /// files under `_uploads`), waiting up to 3 s for it to go. (Distribution's own cancel
    /// leaves a 108-byte hash state of the empty prefix behind, even without the gateway; it
    /// holds no uploaded bytes and upload purging removes it.)
    pub fn upload_leftovers(&self, repo: &str) -> u64 {
        let dir = self
            .storage()
            .join(format!("docker/registry/v2/repositories/{repo}/_uploads"));
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let n = dir_bytes(&dir);
            if n == 0 || Instant::now() > deadline {
                if n > 0 {
                    eprintln!("leftovers in {}: {:?}", dir.display(), list_files(&dir));
                }
                return n;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stop and start the API and the gateway again (same ports, same data).
    pub fn restart_api_and_gateway(&mut self) {
        self.gateway.kill();
        self.cluster.kill();
        let d = self.dir.path();
        self.cluster = start_cluster(d, self.cluster_port);
        self.gateway = start_gateway(d);
        wait_http(
            &format!("http://127.0.0.1:{}/healthz", self.cluster_port),
            &mut self.cluster,
        );
        wait_http(
            &format!("http://127.0.0.1:{}/healthz", self.gateway_port),
            &mut self.gateway,
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.gateway_port)
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.gateway_port)
    }

    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// GET an API path with the gateway's own identity.
    pub async fn api_get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = ::reqwest::Client::new()
            .get(format!("http://127.0.0.1:{}{path}", self.cluster_port))
            .bearer_auth(GATEWAY)
            .send()
            .await
            .unwrap();
        (
            r.status().as_u16(),
            r.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// Counters of the embedded API (reviews answered, by kind).
    pub async fn api_stats(&self) -> serde_json::Value {
        ::reqwest::get(format!(
            "http://127.0.0.1:{}/portcullis/stats",
            self.cluster_port
        ))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
    }

    /// The gateway's log so far. It writes its log in batches at least every 100 ms
    /// (src/log_writer.rs), so this waits a little longer first.
    pub fn gateway_log(&self) -> String {
        std::thread::sleep(Duration::from_millis(250));
        std::fs::read_to_string(&self.gateway.log).unwrap_or_default()
    }
}

/// Run skopeo; returns (success, combined output).
pub fn skopeo(args: &[&str]) -> (bool, String) {
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .env("HOME", std::env::temp_dir())
        .output()
        .expect("skopeo is installed (.ci/run installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A deterministic byte generator (xorshift) for layer contents.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

pub fn digest_of(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn gzip_tar(name: &str, content: &[u8]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, name, content).unwrap();
    let raw = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    gz.finish().unwrap()
}

fn put_blob(dir: &Path, b: &[u8]) -> String {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let d = digest_of(b);
    std::fs::write(blobs.join(&d[7..]), b).unwrap();
    d
}

/// Write one image manifest (layers of random content, config for `arch`) into the blobs of an
/// OCI layout; returns (digest, size) of the manifest.
pub fn oci_manifest(dir: &Path, seed: u64, layers: &[usize], arch: &str) -> (String, usize) {
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for (i, size) in layers.iter().enumerate() {
        let content = noise(seed * 100 + i as u64, *size);
        let layer = gzip_tar(&format!("file{i}"), &content);
        let mut raw = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        raw.append_data(&mut h, format!("file{i}"), content.as_slice())
            .unwrap();
        diff_ids.push(digest_of(&raw.into_inner().unwrap()));
        let d = put_blob(dir, &layer);
        descs.push(serde_json::json!({"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":d,"size":layer.len()}));
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture":arch,"os":"linux","created":"2026-01-01T00:00:00Z",
        "config":{"Env":[format!("SEED={seed}")]},
        "rootfs":{"type":"layers","diff_ids":diff_ids}
    }))
    .unwrap();
    let cd = put_blob(dir, &config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
        "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":cd,"size":config.len()},
        "layers":descs
    }))
    .unwrap();
    (put_blob(dir, &manifest), manifest.len())
}

fn write_layout(dir: &Path, tag: &str, media_type: &str, digest: &str, size: usize) {
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion":2,"manifests":[{
            "mediaType":media_type,"digest":digest,"size":size,
            "annotations":{"org.opencontainers.image.ref.name":tag}}]}))
        .unwrap(),
    )
    .unwrap();
}

/// Write an OCI image layout with `layers` layers (sizes in bytes of random content) under
/// `dir`, tagged `tag`. Returns the manifest digest.
pub fn oci_image(dir: &Path, tag: &str, seed: u64, layers: &[usize]) -> String {
    let (md, size) = oci_manifest(dir, seed, layers, "amd64");
    write_layout(
        dir,
        tag,
        "application/vnd.oci.image.manifest.v1+json",
        &md,
        size,
    );
    md
}

/// A multi-arch OCI layout: an index of an amd64 and an arm64 image, tagged `tag`.
/// Returns the index digest.
pub fn oci_multiarch(dir: &Path, tag: &str, seed: u64) -> String {
    let (a, asz) = oci_manifest(dir, seed, &[100_000, 20_000], "amd64");
    let (b, bsz) = oci_manifest(dir, seed + 1, &[90_000], "arm64");
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
        "manifests":[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":a,"size":asz,"platform":{"architecture":"amd64","os":"linux"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":b,"size":bsz,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}}
        ]
    }))
    .unwrap();
    let d = put_blob(dir, &index);
    write_layout(
        dir,
        tag,
        "application/vnd.oci.image.index.v1+json",
        &d,
        index.len(),
    );
    d
}

/// The manifest digest an OCI layout holds for `tag`.
pub fn oci_manifest_digest(dir: &Path, tag: &str) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("tag {tag} not in {index}"))
}

/// Every file under `dir` (relative path → bytes digest), for byte-identical comparisons.
pub fn tree_digests(dir: &Path) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, digest_of(&std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out
}

/// `skopeo copy` an OCI layout (`dir`, tag `v1`) to `<gateway>/<repo>:v1`; `auth` is one
/// skopeo destination-credential flag (e.g. `--dest-registry-token=T`).
pub fn push(stack: &Stack, dir: &Path, repo: &str, auth: &str) -> (bool, String) {
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        auth,
        &format!("oci:{}:v1", dir.display()),
        &format!("docker://{}/{repo}:v1", stack.host()),
    ])
}

/// `skopeo copy` `<gateway>/<repo>:v1` into an OCI layout at `dir`.
pub fn pull(stack: &Stack, repo: &str, dir: &Path, auth: &str) -> (bool, String) {
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        auth,
        &format!("docker://{}/{repo}:v1", stack.host()),
        &format!("oci:{}:v1", dir.display()),
    ])
}

fn dir_bytes(dir: &Path) -> u64 {
    list_files(dir)
        .iter()
        .filter(|(p, _)| p.ends_with("/data"))
        .map(|(_, n)| n)
        .sum()
}

fn list_files(dir: &Path) -> Vec<(String, u64)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.extend(list_files(&e.path()));
        } else {
            out.push((
                e.path().display().to_string(),
                e.metadata().map(|m| m.len()).unwrap_or(0),
            ));
        }
    }
    out
}

/// Open an upload session through the gateway; returns its `Location` (checked to point at
/// the gateway).
pub async fn start_upload(stack: &Stack, repo: &str, token: &str) -> String {
    let r = stack
        .post(&format!("/v2/{repo}/blobs/uploads/"), token)
        .await;
    if r.status() != 202 {
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        panic!(
            "starting an upload to {repo}: {status} {body}\n{}",
            stack.gateway_log()
        );
    }
    let loc = location(&r);
    assert!(
        loc.starts_with(&format!("http://{}/v2/{repo}/blobs/uploads/", stack.host())),
        "{loc}"
    );
    loc
}

/// An upload URL with `digest=` added.
pub fn with_digest(loc: &str, digest: &str) -> String {
    format!(
        "{loc}{}digest={digest}",
        if loc.contains('?') { "&" } else { "?" }
    )
}

// ---- requests to the gateway ----

/// The token a client sends after an anonymous token exchange.
pub const ANONYMOUS: &str = "anonymous";

/// An HTTP client whose every request is bounded (30 s): a hang fails the test instead of
/// blocking the run.
pub fn client() -> ::reqwest::Client {
    ::reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

impl Stack {
    /// `method path` on the gateway with `token` as the bearer token; the answer.
    pub async fn send(
        &self,
        method: ::reqwest::Method,
        path: &str,
        token: &str,
    ) -> ::reqwest::Response {
        client()
            .request(method, self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// `GET path` on the gateway with `token` as the bearer token.
    pub async fn get(&self, path: &str, token: &str) -> ::reqwest::Response {
        self.send(::reqwest::Method::GET, path, token).await
    }

    /// `HEAD path` on the gateway with `token` as the bearer token.
    pub async fn head(&self, path: &str, token: &str) -> ::reqwest::Response {
        self.send(::reqwest::Method::HEAD, path, token).await
    }

    /// `POST path` (no body) on the gateway with `token` as the bearer token.
    pub async fn post(&self, path: &str, token: &str) -> ::reqwest::Response {
        self.send(::reqwest::Method::POST, path, token).await
    }

    /// `DELETE path` on the gateway with `token` as the bearer token.
    pub async fn delete(&self, path: &str, token: &str) -> ::reqwest::Response {
        self.send(::reqwest::Method::DELETE, path, token).await
    }
}

/// The status of an unauthenticated `GET path` on the gateway.
pub async fn status_of(stack: &Stack, path: &str) -> u16 {
    client()
        .get(stack.url(path))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The `Location` header of an answer.
pub fn location(r: &::reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_string()
}

/// Status, registry error code and message of an answer (empty strings without an error).
pub async fn error_of(r: ::reqwest::Response) -> (::reqwest::StatusCode, String, String) {
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap_or(serde_json::Value::Null);
    (
        status,
        body["errors"][0]["code"].as_str().unwrap_or("").to_string(),
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    )
}

/// Assert an answer is 403 `DENIED`; returns the error message.
pub async fn denied(r: ::reqwest::Response) -> String {
    let st = r.status();
    let v: serde_json::Value = r.json().await.unwrap_or(serde_json::Value::Null);
    assert_eq!(st, ::reqwest::StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["errors"][0]["code"], "DENIED", "{v}");
    v["errors"][0]["message"].as_str().unwrap().to_string()
}

/// GET a blob through the gateway with `token`; (status, body).
pub async fn get_blob(stack: &Stack, repo: &str, digest: &str, token: &str) -> (u16, Vec<u8>) {
    let r = stack
        .get(&format!("/v2/{repo}/blobs/{digest}"), token)
        .await;
    let st = r.status().as_u16();
    (st, r.bytes().await.unwrap().to_vec())
}

/// Upload a blob as `token` (POST, then one PUT with the whole body); returns its digest.
pub async fn upload_blob(stack: &Stack, repo: &str, data: &[u8], token: &str) -> String {
    let digest = digest_of(data);
    let loc = start_upload(stack, repo, token).await;
    let r = client()
        .put(with_digest(&loc, &digest))
        .bearer_auth(token)
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    digest
}

/// docker's PATCH as `token`: all of `data` in one chunked body without a length, sent in
/// `piece`-byte pieces.
pub async fn patch_chunked(
    loc: &str,
    data: &[u8],
    piece: usize,
    token: &str,
) -> ::reqwest::Response {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        data.chunks(piece).map(|c| Ok(c.to_vec())).collect();
    client()
        .patch(loc)
        .bearer_auth(token)
        .header("Content-Type", "application/octet-stream")
        .body(::reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap()
}

/// Close an upload session as `token` with `PUT ?digest=` (no body).
pub async fn finish_upload(loc: &str, digest: &str, token: &str) -> ::reqwest::Response {
    client()
        .put(with_digest(loc, digest))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// PUT a manifest as `token` to `<repo>:<reference>`; the answer.
pub async fn put_manifest(
    stack: &Stack,
    repo: &str,
    reference: &str,
    media_type: &str,
    body: Vec<u8>,
    token: &str,
) -> ::reqwest::Response {
    client()
        .put(stack.url(&format!("/v2/{repo}/manifests/{reference}")))
        .bearer_auth(token)
        .header("Content-Type", media_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

// ---- fault-test helpers (tests/faults.rs) ----

impl Stack {
    /// Start the upstream registry again (same config, same storage, same port) after it was
    /// killed; kills it first if it still runs.
    pub fn restart_registry(&mut self) {
        self.registry.kill();
        let d = self.dir.path();
        self.registry = start_registry(d);
        wait_http(
            &format!("http://127.0.0.1:{}/v2/", self.registry_port),
            &mut self.registry,
        );
    }

    /// Start the API again (same port, same policy and data) after it was killed; kills it
    /// first if it still runs. The gateway keeps running.
    pub fn restart_api(&mut self) {
        self.cluster.kill();
        self.cluster = start_cluster(self.dir.path(), self.cluster_port);
        wait_http(
            &format!("http://127.0.0.1:{}/healthz", self.cluster_port),
            &mut self.cluster,
        );
    }
}

/// Send a signal (`"STOP"`, `"CONT"`, ...) to a process with `kill(1)`.
pub fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("kill(1)");
    assert!(st.success(), "kill -{sig} {pid} failed");
}

/// Resident set size of a process in KiB (`VmRSS` from `/proc/<pid>/status`).
pub fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

/// The soft limit on open files of this process (`/proc/self/limits`).
pub fn open_files_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}
