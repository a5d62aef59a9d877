//! Building the `image.openshift.io/v1` `Image` for a pushed manifest (pure), the way the
//! OpenShift registry does (reference §4.1, §4.5): name = digest, managed annotations,
//! `dockerImageReference = <public address>/<ns>/<is>@<digest>`, the manifest bytes, its media
//! type, the config blob, layers in ascending order, and manifest-list children.

use serde_json::{json, Map, Value};

use crate::manifest::parse::Manifest;
use crate::route::{Digest, Repo};

/// Label carrying (the first 63 hex characters of) the subject digest, so the referrers of a
/// manifest can be listed with a label selector. Label values are limited to 63 characters.
pub const SUBJECT_LABEL: &str = "portcullis.io/subject";

/// The label value for a subject digest.
pub fn subject_label_value(subject: &Digest) -> String {
    format!(
        "{}-{}",
        subject.algorithm,
        &subject.hex[..subject.hex.len().min(63 - subject.algorithm.len() - 1)]
    )
}

/// `<public address>/<ns>/<is>@<digest>`
pub fn reference(public_address: &str, repo: &Repo, digest: &Digest) -> String {
    format!("{public_address}/{repo}@{digest}")
}

/// The Image object for `manifest` (whose exact bytes are `raw`), pushed to `repo`.
/// `config` is the config blob's content for image manifests (if it is JSON text).
pub fn build(
    manifest: &Manifest,
    raw: &[u8],
    repo: &Repo,
    public_address: &str,
    config: Option<&str>,
) -> Value {
    let digest = &manifest.digest;
    let mut labels = Map::new();
    if let Some(s) = &manifest.subject {
        labels.insert(SUBJECT_LABEL.into(), json!(subject_label_value(&s.digest)));
    }
    let mut metadata = json!({
        "name": digest.to_string(),
        "annotations": {
            "openshift.io/image.managed": "true",
            "image.openshift.io/dockerLayersOrder": "ascending",
        },
    });
    if !labels.is_empty() {
        metadata["labels"] = Value::Object(labels);
    }
    let mut image = json!({
        "kind": "Image",
        "apiVersion": "image.openshift.io/v1",
        "metadata": metadata,
        "dockerImageReference": reference(public_address, repo, digest),
        "dockerImageManifest": String::from_utf8_lossy(raw),
        "dockerImageManifestMediaType": manifest.kind.media_type(),
        "dockerImageMetadataVersion": "1.0",
    });
    if manifest.kind.is_index() {
        let children: Vec<Value> = manifest
            .manifests
            .iter()
            .map(|c| {
                let p = c.platform.clone().unwrap_or_default();
                json!({"digest": c.digest.to_string(), "mediaType": c.media_type, "manifestSize": c.size,
                       "architecture": p.architecture, "os": p.os, "variant": p.variant})
            })
            .collect();
        image["dockerImageManifests"] = Value::Array(children);
        image["dockerImageMetadata"] =
            json!({"kind": "DockerImage", "apiVersion": "1.0", "Size": 0});
        return image;
    }
    let layers: Vec<Value> = manifest
        .layers
        .iter()
        .map(|l| json!({"name": l.digest.to_string(), "size": l.size, "mediaType": l.media_type}))
        .collect();
    image["dockerImageLayers"] = Value::Array(layers);
    // Size: distinct layers plus the config (OpenShift counts each distinct blob once)
    let size: u64 = manifest.blobs().iter().map(|d| d.size).sum();
    let mut meta = json!({"kind": "DockerImage", "apiVersion": "1.0", "Size": size});
    if let Some(cfg) = config {
        image["dockerImageConfig"] = json!(cfg);
        if let Ok(c) = serde_json::from_str::<Value>(cfg) {
            for (from, to) in [
                ("architecture", "Architecture"),
                ("os", "Os"),
                ("created", "Created"),
                ("author", "Author"),
            ] {
                if let Some(v) = c.get(from) {
                    meta[to] = v.clone();
                }
            }
            if let Some(v) = c.get("config") {
                meta["Config"] = v.clone();
            }
        }
    }
    image["dockerImageMetadata"] = meta;
    image
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse::{parse, OCI_INDEX, OCI_MANIFEST};

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn image_for_a_manifest() {
        let raw = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D1, "size": 10},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": D2, "size": 20}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": D2, "size": 3}
        }))
        .unwrap();
        let m = parse(None, &raw).unwrap();
        let repo = Repo::parse("ns/is").unwrap();
        let img = build(
            &m,
            &raw,
            &repo,
            "reg:5000",
            Some(r#"{"architecture":"amd64","os":"linux"}"#),
        );
        assert_eq!(img["metadata"]["name"], m.digest.to_string());
        assert_eq!(
            img["dockerImageReference"],
            format!("reg:5000/ns/is@{}", m.digest)
        );
        assert_eq!(
            img["dockerImageManifest"].as_str().unwrap().as_bytes(),
            raw.as_slice()
        );
        assert_eq!(img["dockerImageLayers"][0]["size"], 20);
        assert_eq!(img["dockerImageMetadata"]["Size"], 30);
        assert_eq!(img["dockerImageMetadata"]["Architecture"], "amd64");
        assert_eq!(
            img["metadata"]["annotations"]["openshift.io/image.managed"],
            "true"
        );
        let label = img["metadata"]["labels"][SUBJECT_LABEL].as_str().unwrap();
        assert!(label.len() <= 63 && D2.replace(':', "-").starts_with(label));
    }

    #[test]
    fn image_for_an_index() {
        let raw = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": D1, "size": 5, "platform": {"architecture": "arm64", "os": "linux"}}]}))
        .unwrap();
        let m = parse(None, &raw).unwrap();
        let img = build(&m, &raw, &Repo::parse("ns/is").unwrap(), "r", None);
        assert_eq!(img["dockerImageManifests"][0]["architecture"], "arm64");
        assert!(img.get("dockerImageLayers").is_none());
    }
}
