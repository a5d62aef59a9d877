//! The registry API grammar: method-independent classification of a request path (and query)
//! into a typed [`Route`]. Pure: no I/O, exhaustively unit tested.
//!
//! Covers every endpoint of the OCI distribution-spec v1.1 (base, blobs, uploads including
//! cross-repository mount, manifests, tags, referrers, catalog) plus the OpenShift extras
//! (`/healthz`, `/openshift/token`, `/admin/blobs/<digest>`, `/extensions/v2/...`).
//!
//! Repository names must be exactly `<namespace>/<name>`, each component matching the
//! Distribution name grammar; digests must parse. Anything else is refused here, before any
//! authentication or upstream traffic.

use std::fmt;

use crate::error::{Code, RegistryError};

/// Longest repository name Distribution accepts.
const MAX_NAME_LEN: usize = 255;
/// Longest tag the spec allows (first character plus 127).
const MAX_TAG_LEN: usize = 128;

/// A repository `<namespace>/<name>` (an image stream in a namespace).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repo {
    pub namespace: String,
    pub name: String,
}

impl Repo {
    /// Parse and validate `<namespace>/<name>`.
    pub fn parse(full: &str) -> Result<Repo, RegistryError> {
        let invalid = |why: &str| {
            RegistryError::new(
                Code::NameInvalid,
                format!("invalid repository name {:?}: {why}", truncate(full, 300)),
            )
        };
        if full.len() > MAX_NAME_LEN {
            return Err(invalid("longer than 255 characters"));
        }
        let parts: Vec<&str> = full.split('/').collect();
        if parts.len() != 2 {
            return Err(invalid(
                "it must be exactly <namespace>/<name> (repository namespace required)",
            ));
        }
        for part in &parts {
            if !is_name_component(part) {
                return Err(invalid(
                    "each component must be lower-case letters and digits separated by '.', '_', '__' or '-'",
                ));
            }
        }
        Ok(Repo {
            namespace: parts[0].to_string(),
            name: parts[1].to_string(),
        })
    }
}

impl fmt::Display for Repo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`
pub fn is_name_component(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // a separator run: ".", "_", "__" or any number of "-"
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &s[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A content digest `<algorithm>:<hex>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Digest {
    pub algorithm: String,
    pub hex: String,
}

impl Digest {
    /// Parse a digest; only the algorithms Distribution implements are accepted.
    pub fn parse(s: &str) -> Result<Digest, RegistryError> {
        let invalid = |why: &str| {
            RegistryError::new(
                Code::DigestInvalid,
                format!("invalid digest {:?}: {why}", truncate(s, 200)),
            )
        };
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| invalid("expected <algorithm>:<hex>"))?;
        let want = match alg {
            "sha256" => 64,
            "sha384" => 96,
            "sha512" => 128,
            _ => {
                return Err(invalid(
                    "unsupported algorithm (use sha256, sha384 or sha512)",
                ))
            }
        };
        if hex.len() != want
            || !hex
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        {
            return Err(invalid(&format!(
                "{alg} needs {want} lower-case hex characters"
            )));
        }
        Ok(Digest {
            algorithm: alg.to_string(),
            hex: hex.to_string(),
        })
    }

    /// sha256 of some bytes.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        use sha2::Digest as _;
        Digest {
            algorithm: "sha256".into(),
            hex: hex::encode(sha2::Sha256::digest(bytes)),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference, RegistryError> {
        if s.contains(':') {
            return Digest::parse(s).map(Reference::Digest);
        }
        let b = s.as_bytes();
        let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        let ok = !b.is_empty()
            && b.len() <= MAX_TAG_LEN
            && word(b[0])
            && b.iter().all(|&c| word(c) || c == b'.' || c == b'-');
        if !ok {
            return Err(RegistryError::new(
                Code::TagInvalid,
                format!(
                    "invalid tag {:?}: tags are 1-128 of [A-Za-z0-9_.-] and do not start with '.' or '-'",
                    truncate(s, 200)
                ),
            ));
        }
        Ok(Reference::Tag(s.to_string()))
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => f.write_str(t),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

/// A cross-repository mount request (`?mount=<digest>&from=<repo>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub digest: Digest,
    pub from: Repo,
}

/// Every endpoint the gateway knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/` and `/healthz`: liveness, answered before authentication.
    Health,
    /// `/readyz`: readiness (the upstream and the API answer).
    Ready,
    /// `/v2/`: API version check and login probe.
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/openshift/token`: the token endpoint of the Bearer challenge.
    Token,
    /// `/v2/<repo>/tags/list`
    Tags { repo: Repo },
    /// `/v2/<repo>/manifests/<reference>`
    Manifest { repo: Repo, reference: Reference },
    /// `/v2/<repo>/blobs/<digest>`
    Blob { repo: Repo, digest: Digest },
    /// `/v2/<repo>/blobs/uploads/` (start an upload, possibly monolithic or a mount)
    UploadStart {
        repo: Repo,
        mount: Option<Mount>,
        digest: Option<Digest>,
    },
    /// `/v2/<repo>/blobs/uploads/<uuid>` (status, chunk, finish, cancel)
    Upload {
        repo: Repo,
        uuid: String,
        digest: Option<Digest>,
    },
    /// `/v2/<repo>/referrers/<digest>`
    Referrers { repo: Repo, digest: Digest },
    /// `/admin/blobs/<digest>`: global blob deletion for the pruner.
    AdminBlob { digest: Digest },
    /// `/extensions/v2/<repo>/signatures/<digest>`
    Signatures { repo: Repo, digest: Digest },
    /// `/extensions/v2/metrics`
    Metrics,
}

impl Route {
    /// The repository the route is about, if any.
    pub fn repo(&self) -> Option<&Repo> {
        match self {
            Route::Tags { repo }
            | Route::Manifest { repo, .. }
            | Route::Blob { repo, .. }
            | Route::UploadStart { repo, .. }
            | Route::Upload { repo, .. }
            | Route::Referrers { repo, .. }
            | Route::Signatures { repo, .. } => Some(repo),
            _ => None,
        }
    }

    /// A short stable name for logs and metrics.
    pub fn class(&self) -> &'static str {
        match self {
            Route::Health => "health",
            Route::Ready => "ready",
            Route::Base => "base",
            Route::Catalog => "catalog",
            Route::Token => "token",
            Route::Tags { .. } => "tags",
            Route::Manifest { .. } => "manifest",
            Route::Blob { .. } => "blob",
            Route::UploadStart { .. } => "upload_start",
            Route::Upload { .. } => "upload",
            Route::Referrers { .. } => "referrers",
            Route::AdminBlob { .. } => "admin_blob",
            Route::Signatures { .. } => "signatures",
            Route::Metrics => "metrics",
        }
    }
}

fn not_found(path: &str) -> RegistryError {
    RegistryError::new(
        Code::Unsupported,
        format!(
            "{:?} is not an endpoint of the registry API",
            truncate(path, 300)
        ),
    )
    .with_status(404)
}

/// Look up a query parameter (first occurrence, percent-decoded).
pub fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    let query = query?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn optional_digest(query: Option<&str>, key: &str) -> Result<Option<Digest>, RegistryError> {
    query_param(query, key)
        .map(|d| Digest::parse(&d))
        .transpose()
}

/// Classify a request path (without query) plus its raw query string.
pub fn classify(path: &str, query: Option<&str>) -> Result<Route, RegistryError> {
    match path {
        "/" | "/healthz" => return Ok(Route::Health),
        "/readyz" => return Ok(Route::Ready),
        "/v2" | "/v2/" => return Ok(Route::Base),
        "/v2/_catalog" => return Ok(Route::Catalog),
        "/openshift/token" | "/openshift/token/" => return Ok(Route::Token),
        "/extensions/v2/metrics" => return Ok(Route::Metrics),
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/admin/blobs/") {
        return Ok(Route::AdminBlob {
            digest: Digest::parse(rest)?,
        });
    }
    if let Some(rest) = path.strip_prefix("/extensions/v2/") {
        let segs: Vec<&str> = rest.split('/').collect();
        let n = segs.len();
        if n >= 3 && segs[n - 2] == "signatures" {
            let repo = Repo::parse(&segs[..n - 2].join("/"))?;
            return Ok(Route::Signatures {
                repo,
                digest: Digest::parse(segs[n - 1])?,
            });
        }
        return Err(not_found(path));
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Err(not_found(path));
    };
    let segs: Vec<&str> = rest.split('/').collect();
    let n = segs.len();
    // the name is the path up to the `upto`-th segment: slice it, don't rebuild it
    let name = |upto: usize| {
        let end = rest
            .match_indices('/')
            .nth(upto - 1)
            .map_or(rest.len(), |(i, _)| i);
        Repo::parse(&rest[..end])
    };

    if n >= 3 && segs[n - 2] == "tags" && segs[n - 1] == "list" {
        return Ok(Route::Tags { repo: name(n - 2)? });
    }
    if n >= 3 && segs[n - 2] == "manifests" {
        let repo = name(n - 2)?;
        return Ok(Route::Manifest {
            repo,
            reference: Reference::parse(segs[n - 1])?,
        });
    }
    if n >= 3 && segs[n - 2] == "referrers" {
        let repo = name(n - 2)?;
        return Ok(Route::Referrers {
            repo,
            digest: Digest::parse(segs[n - 1])?,
        });
    }
    // `blobs/uploads/` (trailing slash) or `blobs/uploads`. The index is computed only once its
    // guard holds (an eager `then_some(n - 3)` underflowed on short paths).
    let upload_start =
        if n >= 4 && segs[n - 3] == "blobs" && segs[n - 2] == "uploads" && segs[n - 1].is_empty() {
            Some(n - 3)
        } else if n >= 3 && segs[n - 2] == "blobs" && segs[n - 1] == "uploads" {
            Some(n - 2)
        } else {
            None
        };
    if let Some(upto) = upload_start {
        let repo = name(upto)?;
        let digest = optional_digest(query, "digest")?;
        let mount = match (query_param(query, "mount"), query_param(query, "from")) {
            (Some(d), Some(from)) => Some(Mount {
                digest: Digest::parse(&d)?,
                from: Repo::parse(&from)?,
            }),
            // `mount` without `from` is not a mount: the spec says to start a normal upload
            _ => None,
        };
        return Ok(Route::UploadStart {
            repo,
            mount,
            digest,
        });
    }
    if n >= 4 && segs[n - 3] == "blobs" && segs[n - 2] == "uploads" {
        let repo = name(n - 3)?;
        let uuid = segs[n - 1];
        if uuid.len() > 256
            || !uuid
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-_=.".contains(&c))
        {
            return Err(RegistryError::new(
                Code::BlobUploadInvalid,
                format!("invalid upload id {:?}", truncate(uuid, 100)),
            )
            .with_status(404));
        }
        let digest = optional_digest(query, "digest")?;
        return Ok(Route::Upload {
            repo,
            uuid: uuid.to_string(),
            digest,
        });
    }
    if n >= 3 && segs[n - 2] == "blobs" {
        let repo = name(n - 2)?;
        return Ok(Route::Blob {
            repo,
            digest: Digest::parse(segs[n - 1])?,
        });
    }
    Err(not_found(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn repo(s: &str) -> Repo {
        Repo::parse(s).unwrap()
    }
    fn dg() -> Digest {
        Digest::parse(D).unwrap()
    }
    fn code(r: Result<Route, RegistryError>) -> Code {
        r.unwrap_err().code
    }

    #[test]
    fn fixed_paths() {
        assert_eq!(classify("/", None).unwrap(), Route::Health);
        assert_eq!(classify("/healthz", None).unwrap(), Route::Health);
        assert_eq!(classify("/readyz", None).unwrap(), Route::Ready);
        assert_eq!(classify("/v2/", None).unwrap(), Route::Base);
        assert_eq!(classify("/v2", None).unwrap(), Route::Base);
        assert_eq!(
            classify("/v2/_catalog", Some("n=10")).unwrap(),
            Route::Catalog
        );
        assert_eq!(
            classify("/openshift/token", Some("scope=x")).unwrap(),
            Route::Token
        );
        assert_eq!(
            classify("/extensions/v2/metrics", None).unwrap(),
            Route::Metrics
        );
    }

    #[test]
    fn repository_routes() {
        assert_eq!(
            classify("/v2/ns/is/tags/list", None).unwrap(),
            Route::Tags {
                repo: repo("ns/is")
            }
        );
        assert_eq!(
            classify("/v2/ns/is/manifests/latest", None).unwrap(),
            Route::Manifest {
                repo: repo("ns/is"),
                reference: Reference::Tag("latest".into())
            }
        );
        assert_eq!(
            classify(&format!("/v2/ns/is/manifests/{D}"), None).unwrap(),
            Route::Manifest {
                repo: repo("ns/is"),
                reference: Reference::Digest(dg())
            }
        );
        assert_eq!(
            classify(&format!("/v2/ns/is/blobs/{D}"), None).unwrap(),
            Route::Blob {
                repo: repo("ns/is"),
                digest: dg()
            }
        );
        assert_eq!(
            classify(
                &format!("/v2/ns/is/referrers/{D}"),
                Some("artifactType=a%2Fb")
            )
            .unwrap(),
            Route::Referrers {
                repo: repo("ns/is"),
                digest: dg()
            }
        );
    }

    #[test]
    fn uploads() {
        assert_eq!(
            classify("/v2/ns/is/blobs/uploads/", None).unwrap(),
            Route::UploadStart {
                repo: repo("ns/is"),
                mount: None,
                digest: None
            }
        );
        assert_eq!(
            classify("/v2/ns/is/blobs/uploads", None).unwrap(),
            Route::UploadStart {
                repo: repo("ns/is"),
                mount: None,
                digest: None
            }
        );
        assert_eq!(
            classify("/v2/ns/is/blobs/uploads/", Some(&format!("digest={D}"))).unwrap(),
            Route::UploadStart {
                repo: repo("ns/is"),
                mount: None,
                digest: Some(dg())
            }
        );
        assert_eq!(
            classify(
                "/v2/ns/is/blobs/uploads/",
                Some(&format!("mount={D}&from=other%2Frepo"))
            )
            .unwrap(),
            Route::UploadStart {
                repo: repo("ns/is"),
                mount: Some(Mount {
                    digest: dg(),
                    from: repo("other/repo")
                }),
                digest: None
            }
        );
        // mount without from: a plain upload
        assert_eq!(
            classify("/v2/ns/is/blobs/uploads/", Some(&format!("mount={D}"))).unwrap(),
            Route::UploadStart {
                repo: repo("ns/is"),
                mount: None,
                digest: None
            }
        );
        assert_eq!(
            classify("/v2/ns/is/blobs/uploads/0f2b-aa_c=", Some("_state=abc")).unwrap(),
            Route::Upload {
                repo: repo("ns/is"),
                uuid: "0f2b-aa_c=".into(),
                digest: None
            }
        );
        assert_eq!(
            classify(
                "/v2/ns/is/blobs/uploads/u1",
                Some(&format!("_state=x&digest={D}"))
            )
            .unwrap(),
            Route::Upload {
                repo: repo("ns/is"),
                uuid: "u1".into(),
                digest: Some(dg())
            }
        );
    }

    #[test]
    fn upload_errors() {
        assert_eq!(
            code(classify(
                "/v2/ns/is/blobs/uploads/",
                Some("digest=sha256:xyz")
            )),
            Code::DigestInvalid
        );
        assert_eq!(
            code(classify(
                "/v2/ns/is/blobs/uploads/",
                Some(&format!("mount={D}&from=a"))
            )),
            Code::NameInvalid
        );
        assert_eq!(
            code(classify(
                "/v2/ns/is/blobs/uploads/",
                Some("mount=bad&from=a/b")
            )),
            Code::DigestInvalid
        );
        assert_eq!(
            code(classify("/v2/ns/is/blobs/uploads/a%20b", None)),
            Code::BlobUploadInvalid
        );
    }

    #[test]
    fn name_components() {
        for ok in ["a/b", "ns/is", "a0/b-c", "a.b/c_d", "a__b/c---d", "x/y.z-w"] {
            assert!(Repo::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "a", "a/b/c", "A/b", "a/B", "../b", "a/..", "a/.b", "a/b.", "a//b", "/a/b", "a/b/",
            "a/_b", "a/b___c", "a/b._c", "a/", "/b", "", "a b/c", "ns/is%2F",
        ] {
            assert_eq!(
                Repo::parse(bad).unwrap_err().code,
                Code::NameInvalid,
                "{bad}"
            );
        }
        let long = format!("{}/b", "a".repeat(254));
        assert_eq!(Repo::parse(&long).unwrap_err().code, Code::NameInvalid);
    }

    #[test]
    fn names_in_paths() {
        assert_eq!(code(classify("/v2/one/tags/list", None)), Code::NameInvalid);
        assert_eq!(
            code(classify("/v2/a/b/c/tags/list", None)),
            Code::NameInvalid
        );
        assert_eq!(
            code(classify("/v2/a/../b/manifests/latest", None)),
            Code::NameInvalid
        );
        assert_eq!(
            code(classify("/v2/Ns/is/manifests/latest", None)),
            Code::NameInvalid
        );
        assert_eq!(
            code(classify(&format!("/v2/a/blobs/{D}"), None)),
            Code::NameInvalid
        );
        assert_eq!(
            code(classify("/v2/a/b/c/blobs/uploads/", None)),
            Code::NameInvalid
        );
        assert_eq!(
            code(classify(&format!("/extensions/v2/a/signatures/{D}"), None)),
            Code::NameInvalid
        );
    }

    #[test]
    fn digests() {
        assert!(Digest::parse(D).is_ok());
        assert!(Digest::parse(&format!("sha512:{}", "a".repeat(128))).is_ok());
        for bad in [
            "sha256:abc",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "sha256",
            "sha256:",
            ":abc",
            &format!("sha256:{}", "g".repeat(64)),
            &format!("sha256:{}", "a".repeat(65)),
        ] {
            assert_eq!(
                Digest::parse(bad).unwrap_err().code,
                Code::DigestInvalid,
                "{bad}"
            );
        }
        assert_eq!(
            code(classify("/v2/ns/is/blobs/sha256:abc", None)),
            Code::DigestInvalid
        );
        assert_eq!(
            code(classify("/v2/ns/is/manifests/sha256:abc", None)),
            Code::DigestInvalid
        );
        assert_eq!(
            code(classify("/v2/ns/is/referrers/latest", None)),
            Code::DigestInvalid
        );
        assert_eq!(
            code(classify("/admin/blobs/nope", None)),
            Code::DigestInvalid
        );
        assert_eq!(
            classify(&format!("/admin/blobs/{D}"), None).unwrap(),
            Route::AdminBlob { digest: dg() }
        );
        assert_eq!(Digest::sha256_of(b"").to_string(), D);
    }

    #[test]
    fn tags() {
        for ok in ["latest", "v1.0", "_x", "A-b_c.d", &"a".repeat(128)] {
            assert!(Reference::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a b", &"a".repeat(129), "ä"] {
            assert_eq!(
                Reference::parse(bad).unwrap_err().code,
                Code::TagInvalid,
                "{bad}"
            );
        }
    }

    #[test]
    fn unknown_paths() {
        for p in [
            "/v1/",
            "/v2/ns/is",
            "/v2/ns/is/other/x",
            "/admin",
            "/extensions/v2/x",
            "/robots.txt",
            "/v2/ns/is/tags",
        ] {
            let e = classify(p, None).unwrap_err();
            assert_eq!((e.code, e.status), (Code::Unsupported, 404), "{p}");
        }
    }

    #[test]
    fn short_v2_paths_do_not_underflow() {
        // found by fuzzing (fuzz/artifacts/route_classify/repro-short-v2-path): with one or two
        // segments after `/v2/`, `then_some(n - 3)` underflowed (a panic with overflow checks)
        for p in ["/v2/x", "/v2/_cata\u{fffd}og", "/v2/ns/is", "/v2/ns/"] {
            let e = classify(p, Some("n=10&last=ns/is")).unwrap_err();
            assert_eq!((e.code, e.status), (Code::Unsupported, 404), "{p}");
        }
    }

    #[test]
    fn signatures_route() {
        assert_eq!(
            classify(&format!("/extensions/v2/ns/is/signatures/{D}"), None).unwrap(),
            Route::Signatures {
                repo: repo("ns/is"),
                digest: dg()
            }
        );
    }

    #[test]
    fn repo_accessor_and_class() {
        let r = classify("/v2/ns/is/tags/list", None).unwrap();
        assert_eq!(r.repo().unwrap().to_string(), "ns/is");
        assert_eq!(r.class(), "tags");
        assert!(Route::Base.repo().is_none());
    }
}
