//! Parsing and validating Docker schema 2 / OCI manifests and indexes (pure).
//!
//! The digest is computed over the exact bytes received; the media type comes from the body's
//! `mediaType` and the request's `Content-Type`, which must agree when both are present.

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Code, RegistryError};
use crate::route::Digest;

/// Largest manifest accepted (Distribution's limit).
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

pub const DOCKER_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_V1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The four manifest kinds the gateway stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    DockerV2,
    DockerList,
    OciManifest,
    OciIndex,
}

impl Kind {
    pub fn media_type(self) -> &'static str {
        match self {
            Kind::DockerV2 => DOCKER_V2,
            Kind::DockerList => DOCKER_LIST,
            Kind::OciManifest => OCI_MANIFEST,
            Kind::OciIndex => OCI_INDEX,
        }
    }

    pub fn from_media_type(mt: &str) -> Option<Kind> {
        match mt {
            DOCKER_V2 => Some(Kind::DockerV2),
            DOCKER_LIST => Some(Kind::DockerList),
            OCI_MANIFEST => Some(Kind::OciManifest),
            OCI_INDEX => Some(Kind::OciIndex),
            _ => None,
        }
    }

    /// An index / manifest list (children are manifests, not blobs).
    pub fn is_index(self) -> bool {
        matches!(self, Kind::DockerList | Kind::OciIndex)
    }
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub artifact_type: Option<String>,
    pub annotations: Option<Value>,
    /// Manifest-list children: `platform`.
    pub platform: Option<Platform>,
    /// Foreign layers may point elsewhere.
    pub urls: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: String,
}

/// A parsed, validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub kind: Kind,
    pub digest: Digest,
    pub config: Option<Descriptor>,
    pub layers: Vec<Descriptor>,
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    /// `artifactType`, or the config media type of an artifact manifest.
    pub artifact_type: Option<String>,
    pub annotations: Option<Value>,
}

impl Manifest {
    /// Every blob the manifest references (config first), without duplicates.
    pub fn blobs(&self) -> Vec<&Descriptor> {
        let mut out: Vec<&Descriptor> = Vec::new();
        for d in self.config.iter().chain(self.layers.iter()) {
            if !d.urls && !out.iter().any(|o| o.digest == d.digest) {
                out.push(d);
            }
        }
        out
    }

    /// The OCI artifact type used by the referrers API: `artifactType`, else the config's media type.
    pub fn referrer_artifact_type(&self) -> Option<String> {
        self.artifact_type
            .clone()
            .or_else(|| self.config.as_ref().map(|c| c.media_type.clone()))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
    subject: Option<RawDescriptor>,
    annotations: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: Option<String>,
    digest: Option<String>,
    size: Option<i64>,
    artifact_type: Option<String>,
    annotations: Option<Value>,
    platform: Option<Platform>,
    urls: Option<Vec<String>>,
}

fn invalid(msg: impl Into<String>) -> RegistryError {
    RegistryError::new(Code::ManifestInvalid, msg.into())
}

fn descriptor(raw: RawDescriptor, what: &str) -> Result<Descriptor, RegistryError> {
    let digest = raw
        .digest
        .ok_or_else(|| invalid(format!("manifest invalid: {what} has no digest")))?;
    let digest = Digest::parse(&digest)
        .map_err(|e| invalid(format!("manifest invalid: {what}: {}", e.message)))?;
    let size = match raw.size {
        Some(s) if s >= 0 => s as u64,
        _ => {
            return Err(invalid(format!(
                "manifest invalid: {what} {digest} needs a non-negative size"
            )))
        }
    };
    let media_type = raw.media_type.unwrap_or_default();
    if media_type.is_empty() {
        return Err(invalid(format!(
            "manifest invalid: {what} {digest} has no mediaType"
        )));
    }
    Ok(Descriptor {
        media_type,
        digest,
        size,
        artifact_type: raw.artifact_type,
        annotations: raw.annotations,
        platform: raw.platform,
        urls: raw.urls.is_some_and(|u| !u.is_empty()),
    })
}

/// Strip parameters (`; charset=…`) and whitespace from a media type.
pub fn bare(media_type: &str) -> &str {
    media_type.split(';').next().unwrap_or("").trim()
}

/// Parse and validate manifest bytes received with `content_type`.
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Manifest, RegistryError> {
    if body.len() > MAX_MANIFEST_BYTES {
        return Err(RegistryError::new(
            Code::SizeInvalid,
            format!(
                "manifest is {} bytes; the limit is {MAX_MANIFEST_BYTES}",
                body.len()
            ),
        )
        .with_status(413));
    }
    let raw: RawManifest = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("manifest invalid: not a JSON manifest: {e}")))?;
    let declared = content_type
        .map(bare)
        .filter(|c| !c.is_empty() && *c != "application/json");
    if declared == Some(DOCKER_V1_SIGNED) || raw.schema_version == Some(1) {
        return Err(invalid(
            "manifest invalid: Docker schema 1 manifests are not supported; push schema 2 or OCI",
        ));
    }
    if raw.schema_version != Some(2) {
        return Err(invalid("manifest invalid: schemaVersion must be 2"));
    }
    let body_type = raw.media_type.as_deref().filter(|m| !m.is_empty());
    let media_type = match (body_type, declared) {
        (Some(b), Some(d)) if b != d => {
            return Err(invalid(format!(
                "manifest invalid: mediaType {b:?} does not match Content-Type {d:?}"
            )))
        }
        (Some(b), _) => b.to_string(),
        (None, Some(d)) => d.to_string(),
        // OCI allows omitting mediaType: tell manifests and indexes apart by their fields
        (None, None) if raw.manifests.is_some() => OCI_INDEX.to_string(),
        (None, None) => OCI_MANIFEST.to_string(),
    };
    let kind = Kind::from_media_type(&media_type).ok_or_else(|| {
        invalid(format!(
            "manifest invalid: unknown manifest media type {media_type:?}"
        ))
    })?;
    let digest = Digest::sha256_of(body);
    let subject = raw.subject.map(|s| descriptor(s, "subject")).transpose()?;
    let mut m = Manifest {
        kind,
        digest,
        config: None,
        layers: Vec::new(),
        manifests: Vec::new(),
        subject,
        artifact_type: raw.artifact_type,
        annotations: raw.annotations,
    };
    if kind.is_index() {
        if raw.config.is_some() || raw.layers.is_some() {
            return Err(invalid(
                "manifest invalid: an index has manifests, not config or layers",
            ));
        }
        let children = raw
            .manifests
            .ok_or_else(|| invalid("manifest invalid: an index needs a manifests list"))?;
        for c in children {
            m.manifests.push(descriptor(c, "manifest")?);
        }
    } else {
        if raw.manifests.is_some() {
            return Err(invalid(
                "manifest invalid: an image manifest cannot list manifests",
            ));
        }
        let config = raw
            .config
            .ok_or_else(|| invalid("manifest invalid: config descriptor missing"))?;
        m.config = Some(descriptor(config, "config")?);
        for l in raw.layers.unwrap_or_default() {
            m.layers.push(descriptor(l, "layer")?);
        }
        if kind == Kind::DockerV2 && m.layers.is_empty() {
            return Err(invalid(
                "manifest invalid: a Docker image needs at least one layer",
            ));
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn image(media_type: Option<&str>) -> Vec<u8> {
        let mut v = json!({
            "schemaVersion": 2,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D1, "size": 10},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": D2, "size": 20},
                       {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": D2, "size": 20}]
        });
        if let Some(m) = media_type {
            v["mediaType"] = json!(m);
        }
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn oci_and_docker_images() {
        let b = image(Some(OCI_MANIFEST));
        let m = parse(Some(OCI_MANIFEST), &b).unwrap();
        assert_eq!(m.kind, Kind::OciManifest);
        assert_eq!(m.digest, Digest::sha256_of(&b));
        assert_eq!(m.blobs().len(), 2, "config + one distinct layer");
        let m = parse(None, &image(Some(DOCKER_V2))).unwrap();
        assert_eq!(m.kind, Kind::DockerV2);
        // no mediaType in body: Content-Type decides, else OCI
        assert_eq!(
            parse(Some(DOCKER_V2), &image(None)).unwrap().kind,
            Kind::DockerV2
        );
        assert_eq!(
            parse(Some("application/json"), &image(None)).unwrap().kind,
            Kind::OciManifest
        );
    }

    #[test]
    fn indexes() {
        let b = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": D1, "size": 5, "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}}]
        }))
        .unwrap();
        let m = parse(Some(OCI_INDEX), &b).unwrap();
        assert!(m.kind.is_index());
        assert_eq!(
            m.manifests[0].platform.as_ref().unwrap().architecture,
            "arm64"
        );
        assert!(m.blobs().is_empty());
    }

    #[test]
    fn artifacts_with_subject() {
        let b = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sbom",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": D1, "size": 2},
            "layers": [],
            "subject": {"mediaType": OCI_MANIFEST, "digest": D2, "size": 100}
        }))
        .unwrap();
        let m = parse(Some(OCI_MANIFEST), &b).unwrap();
        assert_eq!(m.subject.as_ref().unwrap().digest.to_string(), D2);
        assert_eq!(
            m.referrer_artifact_type().as_deref(),
            Some("application/vnd.example.sbom")
        );
    }

    #[test]
    fn invalid_manifests() {
        let code = |ct: Option<&str>, b: &[u8]| parse(ct, b).unwrap_err().code;
        assert_eq!(code(None, b"{not json"), Code::ManifestInvalid);
        assert_eq!(
            code(
                None,
                br#"{"schemaVersion":2,"mediaType":"application/x-unknown","config":{}}"#
            ),
            Code::ManifestInvalid
        );
        assert_eq!(
            code(Some(DOCKER_V2), &image(Some(OCI_MANIFEST))),
            Code::ManifestInvalid
        );
        assert_eq!(
            code(None, br#"{"schemaVersion":1,"name":"a/b","tag":"x"}"#),
            Code::ManifestInvalid
        );
        assert_eq!(
            code(
                None,
                br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#
            ),
            Code::ManifestInvalid
        );
        let bad_digest = String::from_utf8(image(Some(OCI_MANIFEST)))
            .unwrap()
            .replace(D2, "sha256:zz");
        assert_eq!(code(None, bad_digest.as_bytes()), Code::ManifestInvalid);
        let neg = String::from_utf8(image(Some(OCI_MANIFEST)))
            .unwrap()
            .replace("\"size\":20", "\"size\":-1");
        assert_eq!(code(None, neg.as_bytes()), Code::ManifestInvalid);
        let big = vec![b' '; MAX_MANIFEST_BYTES + 1];
        let e = parse(None, &big).unwrap_err();
        assert_eq!((e.code, e.status), (Code::SizeInvalid, 413));
    }
}
