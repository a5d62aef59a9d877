//! Test content: layers written to the bench's temp dir, and the small image pushed through
//! the gateway before anything is measured.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::client::{self, Call};
use crate::stack::{Stack, Target, NAMESPACE, USER_TOKEN};

pub const MIB: u64 = 1 << 20;
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// What docker/podman send when pulling a manifest.
pub const ACCEPT: &str = "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json";

/// A blob on disk.
#[derive(Debug, Clone)]
pub struct Blob {
    pub path: PathBuf,
    pub digest: String,
    pub size: u64,
}

impl Blob {
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `len` pseudo-random bytes (xorshift, incompressible) written to `path`.
pub fn random_blob(path: &Path, len: u64, seed: u64) -> Blob {
    let mut f = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(path).expect("create blob file"),
    );
    let mut h = Sha256::new();
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut chunk = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for w in chunk.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n]).expect("write blob file");
        h.update(&chunk[..n]);
        left -= n as u64;
    }
    f.flush().expect("flush blob file");
    Blob {
        path: path.into(),
        digest: format!("sha256:{}", hex::encode(h.finalize())),
        size: len,
    }
}

/// A sparse file of `len` zero bytes (no disk used until the registry stores it).
pub fn zero_blob(path: &Path, len: u64) -> Blob {
    let f = std::fs::File::create(path).expect("create blob file");
    f.set_len(len).expect("size the sparse file");
    let mut h = Sha256::new();
    let zeros = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        h.update(&zeros[..n]);
        left -= n as u64;
    }
    Blob {
        path: path.into(),
        digest: format!("sha256:{}", hex::encode(h.finalize())),
        size: len,
    }
}

fn bytes_blob(path: &Path, bytes: &[u8]) -> Blob {
    std::fs::write(path, bytes).expect("write blob file");
    Blob {
        path: path.into(),
        digest: format!("sha256:{}", hex::encode(Sha256::digest(bytes))),
        size: bytes.len() as u64,
    }
}

/// What the measurements use; all of it is in the upstream and in the image API.
pub struct Fixture {
    /// `bench/app`.
    pub repo: String,
    /// A 4 KiB layer (HEAD blob).
    pub small: Blob,
    /// The big layer (blob GET, and uploaded again for push throughput).
    pub big: Blob,
    /// The image manifest's digest (tag `v1`).
    pub manifest: String,
}

/// Push the test image through the gateway (blobs, then the manifest, which the gateway also
/// writes to the upstream by digest), then check every target serves it.
pub fn push_fixture(stack: &Stack, dir: &Path, big_size: u64) -> Fixture {
    let repo = format!("{NAMESPACE}/app");
    let gw = stack.base(Target::Gateway);
    let small = random_blob(&dir.join("small.bin"), 4096, 1);
    let big = random_blob(&dir.join("big.bin"), big_size, 2);
    let config = bytes_blob(
        &dir.join("config.json"),
        br#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#,
    );
    for b in [&small, &config] {
        client::push_blob(&gw, &repo, USER_TOKEN, &b.path, &b.digest);
    }
    client::push_blob_chunked(&gw, &repo, USER_TOKEN, &big.path, &big.digest);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.digest, "size": config.size},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": small.digest, "size": small.size},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": big.digest, "size": big.size},
        ]
    });
    let m = bytes_blob(
        &dir.join("manifest.json"),
        &serde_json::to_vec(&manifest).expect("manifest JSON"),
    );
    let digest = client::put_manifest(&gw, &repo, "v1", USER_TOKEN, &m.path, OCI_MANIFEST);
    assert_eq!(digest, m.digest, "the gateway's manifest digest");
    let fx = Fixture {
        repo,
        small,
        big,
        manifest: digest,
    };
    for t in Target::ALL {
        check_target(stack, t, &fx);
    }
    fx
}

/// Every request the bench measures answers 2xx on `t` (this also warms the gateway's caches).
fn check_target(stack: &Stack, t: Target, fx: &Fixture) {
    let base = stack.base(t);
    let what = |s: &str| format!("{s} on {}", t.name());
    client::check(
        Call::new("GET", &format!("{base}/v2/")).token(USER_TOKEN),
        &what("GET /v2/"),
        200,
    );
    client::check(
        Call::new("HEAD", &small_request_url(&base, fx, Small::HeadBlob)).token(USER_TOKEN),
        &what("HEAD blob"),
        200,
    );
    let m = client::check(
        Call::new("GET", &small_request_url(&base, fx, Small::GetManifest))
            .token(USER_TOKEN)
            .header(ACCEPT),
        &what("GET manifest"),
        200,
    );
    assert_eq!(
        m.header("docker-content-digest"),
        Some(fx.manifest.as_str()),
        "{}",
        what("manifest digest")
    );
    let b = client::check(
        Call::new(
            "GET",
            &format!("{base}/v2/{}/blobs/{}", fx.repo, fx.big.digest),
        )
        .token(USER_TOKEN)
        .discard_body(),
        &what("GET big blob"),
        200,
    );
    assert_eq!(b.size_download, fx.big.size, "{}", what("big blob size"));
}

/// The small requests measured for requests per second and latency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Small {
    HeadBlob,
    GetManifest,
    GetBase,
}

impl Small {
    pub const ALL: [Small; 3] = [Small::HeadBlob, Small::GetManifest, Small::GetBase];

    pub fn label(self) -> &'static str {
        match self {
            Small::HeadBlob => "HEAD blob",
            Small::GetManifest => "GET manifest by digest",
            Small::GetBase => "GET /v2/",
        }
    }

    pub fn method(self) -> &'static str {
        match self {
            Small::HeadBlob => "HEAD",
            _ => "GET",
        }
    }
}

pub fn small_request_url(base: &str, fx: &Fixture, s: Small) -> String {
    match s {
        Small::HeadBlob => format!("{base}/v2/{}/blobs/{}", fx.repo, fx.small.digest),
        Small::GetManifest => format!("{base}/v2/{}/manifests/{}", fx.repo, fx.manifest),
        Small::GetBase => format!("{base}/v2/"),
    }
}
