//! Manifest GET/HEAD/PUT/DELETE against the image API.

use bytes::Bytes;
use futures_util::future::try_join_all;
use serde_json::Value;

use crate::auth::credentials::Token;
use crate::error::{Code, RegistryError};
use crate::gateway::respond::Local;
use crate::images::{api_error, Images, Stored};
use crate::manifest::{self, image, negotiate, Manifest};
use crate::openshift::ApiError;
use crate::route::{Reference, Repo};

/// Config blobs read into `dockerImageConfig` (image configs only, never artifacts' payloads).
const IMAGE_CONFIG_TYPES: [&str; 2] = [
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];
const MAX_CONFIG_BYTES: usize = 4 << 20;

fn manifest_unknown(what: impl std::fmt::Display) -> RegistryError {
    RegistryError::new(Code::ManifestUnknown, format!("manifest unknown: {what}"))
}

fn name_unknown(repo: &Repo) -> RegistryError {
    RegistryError::new(
        Code::NameUnknown,
        format!("repository name not known to registry: no image stream {repo}"),
    )
}

fn blob_unknown(msg: String) -> RegistryError {
    RegistryError::new(Code::ManifestBlobUnknown, msg)
}

fn not_in(digest: &str, repo: &Repo) -> RegistryError {
    manifest_unknown(format!("{digest} is not an image of {repo}"))
}

/// The stored manifest as the answer, if the client's `Accept` allows its media type.
fn negotiated(stored: &Stored, digest: &str, accept: &[&str]) -> Result<Local, RegistryError> {
    if !negotiate::accepts(accept, &stored.media_type) {
        return Err(manifest_unknown(format!(
            "the manifest is {}, but the Accept header does not allow it (accepted: {})",
            stored.media_type,
            accept.join(", ")
        )));
    }
    Ok(answer(stored, digest))
}

fn answer(stored: &Stored, digest: &str) -> Local {
    Local {
        status: 200,
        headers: vec![
            ("Content-Type", stored.media_type.clone()),
            ("Docker-Content-Digest", digest.to_string()),
            ("ETag", format!("\"{digest}\"")),
        ],
        body: stored.bytes.clone(),
    }
}

impl Images {
    pub(super) async fn get_manifest(
        &self,
        repo: &Repo,
        reference: &Reference,
        accept: &[&str],
    ) -> Result<Local, RegistryError> {
        // By digest, an image pushed to this repository needs no image stream lookup: with the
        // manifest cached, such a GET makes no API call at all.
        // An image that does not exist is no member of anything: no stream lookup either.
        if let Reference::Digest(d) = reference {
            let digest = d.to_string();
            let Some(stored) = self.load(&digest).await? else {
                return Err(not_in(&digest, repo));
            };
            if stored.pushed_to(repo) {
                return negotiated(&stored, &digest, accept);
            }
        }
        let stream = self.stream(repo).await?;
        let digest = match reference {
            Reference::Tag(tag) => {
                let s = stream
                    .as_ref()
                    .map(|(s, _)| s)
                    .ok_or_else(|| name_unknown(repo))?;
                s.tag(tag)
                    .ok_or_else(|| manifest_unknown(format!("tag {tag:?} not found in {repo}")))?
                    .to_string()
            }
            Reference::Digest(d) => d.to_string(),
        };
        let stored = self
            .member(repo, stream.as_ref().map(|(s, _)| s), &digest)
            .await?
            .ok_or_else(|| not_in(&digest, repo))?;
        negotiated(&stored, &digest, accept)
    }

    pub(super) async fn put_manifest(
        &self,
        repo: &Repo,
        reference: &Reference,
        content_type: Option<&str>,
        body: &Bytes,
        user: Option<&Token>,
    ) -> Result<Local, RegistryError> {
        let m = manifest::parse(content_type, body)?;
        if let Reference::Digest(d) = reference {
            if *d != m.digest {
                return Err(RegistryError::new(
                    Code::DigestInvalid,
                    format!(
                        "the manifest's digest is {}, not {d} as the URL says",
                        m.digest
                    ),
                ));
            }
        }
        let config = self.verify(repo, &m).await?;
        if self.write_upstream {
            self.write_to_upstream(repo, &m, body).await?;
        }
        let img = image::build(&m, body, repo, &self.public_address, config.as_deref());
        match reference {
            Reference::Tag(tag) => self.map(repo, tag, &img, user).await?,
            Reference::Digest(_) => self
                .api
                .create_image(&img)
                .await
                .map_err(|e| api_error(&e))?,
        }
        let blobs: Vec<String> = m.blobs().iter().map(|d| d.digest.to_string()).collect();
        self.quotas.ledger.referenced(&repo.namespace, &blobs);
        self.quotas.invalidate(&repo.namespace).await;
        let digest = m.digest.to_string();
        let mut local = Local::empty(201)
            .header("Location", format!("/v2/{repo}/manifests/{digest}"))
            .header("Docker-Content-Digest", digest);
        if let Some(s) = &m.subject {
            local = local.header("OCI-Subject", s.digest.to_string());
        }
        Ok(local)
    }

    /// Every referenced blob exists upstream in this repository with the declared size; index
    /// children exist as images. Returns the config blob text for image manifests.
    async fn verify(&self, repo: &Repo, m: &Manifest) -> Result<Option<String>, RegistryError> {
        let repo_s = repo.to_string();
        let checks = m.blobs().into_iter().map(|d| {
            let repo_s = repo_s.clone();
            async move {
                let digest = d.digest.to_string();
                match self.upstream.blob_size(&repo_s, &digest).await {
                    Ok(Some(size)) if size == d.size => Ok(()),
                    Ok(Some(size)) => Err(blob_unknown(format!(
                        "blob {digest} is {size} bytes in {repo_s}, but the manifest says {}",
                        d.size
                    ))),
                    Ok(None) => Err(blob_unknown(format!(
                        "blob {digest} is not in {repo_s}; push it first"
                    ))),
                    Err(e) => Err(RegistryError::new(Code::Unavailable, e)),
                }
            }
        });
        try_join_all(checks).await?;
        for child in &m.manifests {
            let d = child.digest.to_string();
            if self.load(&d).await?.is_none() {
                return Err(blob_unknown(format!(
                    "manifest {d} listed in the index has not been pushed"
                )));
            }
        }
        let Some(cfg) = m
            .config
            .as_ref()
            .filter(|c| IMAGE_CONFIG_TYPES.contains(&c.media_type.as_str()))
        else {
            return Ok(None);
        };
        let path = format!("v2/{repo}/blobs/{}", cfg.digest);
        let a = self
            .upstream
            .send(reqwest::Method::GET, &path, None, None, MAX_CONFIG_BYTES)
            .await
            .map_err(|e| RegistryError::new(Code::Unavailable, e))?;
        Ok((a.status == 200)
            .then(|| String::from_utf8(a.body.to_vec()).ok())
            .flatten())
    }

    /// Write the manifest to the upstream by digest, so its garbage collection keeps the blobs.
    async fn write_to_upstream(
        &self,
        repo: &Repo,
        m: &Manifest,
        body: &Bytes,
    ) -> Result<(), RegistryError> {
        let path = format!("v2/{repo}/manifests/{}", m.digest);
        let a = self
            .upstream
            .send(
                reqwest::Method::PUT,
                &path,
                Some(m.kind.media_type()),
                Some(body.clone()),
                1 << 20,
            )
            .await
            .map_err(|e| RegistryError::new(Code::Unavailable, e))?;
        if (200..300).contains(&a.status) {
            return Ok(());
        }
        let upstream_error: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
        let msg = upstream_error["errors"][0]["message"]
            .as_str()
            .unwrap_or("rejected")
            .to_string();
        let code = match upstream_error["errors"][0]["code"].as_str() {
            Some("MANIFEST_BLOB_UNKNOWN") | Some("BLOB_UNKNOWN") => Code::ManifestBlobUnknown,
            _ => Code::ManifestInvalid,
        };
        Err(RegistryError::new(
            code,
            format!("the upstream registry refused the manifest: {msg}"),
        )
        .with_detail(upstream_error))
    }

    /// Create the ImageStreamMapping; auto-create a missing stream with the user's token and
    /// retry once (reference §4.5).
    async fn map(
        &self,
        repo: &Repo,
        tag: &str,
        img: &Value,
        user: Option<&Token>,
    ) -> Result<(), RegistryError> {
        let (ns, name) = (&repo.namespace, &repo.name);
        match self.api.create_mapping(ns, name, tag, img).await {
            Ok(()) => return Ok(()),
            Err(ApiError::NotFound { kind, .. })
                if kind == "imagestreammappings" || kind == "imagestreams" => {}
            Err(e) => return Err(api_error(&e)),
        }
        match self.api.create_image_stream(user, ns, name).await {
            Ok(()) | Err(ApiError::Conflict(_)) => {}
            Err(e @ (ApiError::Forbidden(_) | ApiError::Unauthorized)) => {
                return Err(RegistryError::new(
                    Code::Denied,
                    format!("requested access to the resource is denied: cannot create image stream {repo}: {e}"),
                ))
            }
            Err(e) => return Err(api_error(&e)),
        }
        self.api
            .create_mapping(ns, name, tag, img)
            .await
            .map_err(|e| api_error(&e))
    }

    pub(super) async fn delete_manifest(
        &self,
        repo: &Repo,
        reference: &Reference,
    ) -> Result<Local, RegistryError> {
        match reference {
            Reference::Tag(tag) => match self
                .api
                .delete_stream_tag(&repo.namespace, &repo.name, tag)
                .await
            {
                Ok(()) => Ok(Local::empty(202)),
                Err(ApiError::NotFound { .. }) => {
                    Err(manifest_unknown(format!("tag {tag:?} not found in {repo}")))
                }
                Err(e) => Err(api_error(&e)),
            },
            Reference::Digest(d) => {
                let digest = d.to_string();
                for _ in 0..5 {
                    let Some((_, mut raw)) = self.stream(repo).await? else {
                        return Err(name_unknown(repo));
                    };
                    if !remove_image(&mut raw, &digest) {
                        return Err(not_in(&digest, repo));
                    }
                    match self
                        .api
                        .update_stream_status(&repo.namespace, &repo.name, &raw)
                        .await
                    {
                        Ok(()) => {
                            self.forget(&digest).await;
                            return Ok(Local::empty(202));
                        }
                        Err(ApiError::Conflict(_)) => continue,
                        Err(e) => return Err(api_error(&e)),
                    }
                }
                Err(RegistryError::new(
                    Code::Unavailable,
                    "the image stream kept changing; try again",
                ))
            }
        }
    }
}

/// Remove every tag event of `digest` from a stream's `status.tags` (dropping emptied tags).
/// Returns whether anything was removed. Pure.
pub fn remove_image(stream: &mut Value, digest: &str) -> bool {
    let Some(tags) = stream
        .pointer_mut("/status/tags")
        .and_then(Value::as_array_mut)
    else {
        return false;
    };
    let mut removed = false;
    for t in tags.iter_mut() {
        if let Some(items) = t.get_mut("items").and_then(Value::as_array_mut) {
            let before = items.len();
            items.retain(|i| i["image"] != digest);
            removed |= items.len() != before;
        }
    }
    tags.retain(|t| t["items"].as_array().is_some_and(|i| !i.is_empty()));
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn removing_an_image_from_history() {
        let mut s = json!({"status": {"tags": [
            {"tag": "a", "items": [{"image": "sha256:1"}, {"image": "sha256:2"}]},
            {"tag": "b", "items": [{"image": "sha256:2"}]}
        ]}});
        assert!(remove_image(&mut s, "sha256:2"));
        assert_eq!(
            s["status"]["tags"],
            json!([{"tag": "a", "items": [{"image": "sha256:1"}]}])
        );
        assert!(!remove_image(&mut s, "sha256:9"));
    }
}
