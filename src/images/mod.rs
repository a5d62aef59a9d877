//! The registry endpoints answered from the OpenShift image API instead of the upstream:
//! manifests (GET/HEAD/PUT/DELETE), tag lists, referrers, the catalog and global blob
//! deletion. No pingora here: handlers take plain requests and return [`Local`] answers.

pub mod listing;
pub mod manifests;

use std::sync::Arc;

use bytes::Bytes;
use moka::future::Cache;

use crate::auth::authorizer::Authorizer;
use crate::auth::credentials::Token;
use crate::error::{Code, RegistryError};
use crate::gateway::respond::Local;
use crate::manifest::{self, Manifest};
use crate::openshift::types::ImageStream;
use crate::openshift::{ApiClient, ApiError};
use crate::route::{Repo, Route};
use crate::upstream::Upstream;

/// A manifest as stored in an `Image`; immutable, so cached by digest.
#[derive(Debug)]
pub struct Stored {
    pub bytes: Bytes,
    pub media_type: String,
    /// `dockerImageReference` (`<registry>/<ns>/<is>@<digest>`).
    pub reference: String,
    /// Digests of manifest-list children.
    pub children: Vec<String>,
    pub parsed: Option<Manifest>,
}

impl Stored {
    /// Was the image pushed to `repo` (its reference names that repository)?
    fn pushed_to(&self, repo: &Repo) -> bool {
        self.reference
            .split_once('@')
            .map(|(r, _)| r.ends_with(&format!("/{repo}")))
            .unwrap_or(false)
    }
}

/// One request for the image endpoints.
pub struct Call<'a> {
    pub method: &'a http::Method,
    pub route: &'a Route,
    pub query: Option<&'a str>,
    pub accept: Vec<&'a str>,
    pub content_type: Option<&'a str>,
    pub body: Bytes,
    pub token: Option<&'a Token>,
}

/// The service behind the image endpoints.
pub struct Images {
    pub api: ApiClient,
    pub upstream: Upstream,
    pub authorizer: Arc<Authorizer>,
    pub public_address: String,
    /// Also write pushed manifests to the upstream by digest (keeps its GC from deleting blobs).
    pub write_upstream: bool,
    /// Pushed images release their blobs' upload reservations and refresh the quota usage.
    pub quotas: Arc<crate::quota::Quotas>,
    manifests: Cache<String, Arc<Stored>>,
}

/// An API failure as the client sees it.
pub fn api_error(e: &ApiError) -> RegistryError {
    match e {
        ApiError::Unreachable(_) | ApiError::Timeout(_) => RegistryError::new(
            Code::Unavailable,
            format!("the OpenShift API could not be reached ({e}); try again later"),
        ),
        ApiError::Forbidden(m) => RegistryError::new(
            Code::Denied,
            format!("requested access to the resource is denied: {m}"),
        ),
        ApiError::Unauthorized => RegistryError::new(
            Code::Denied,
            "the gateway's own API credentials were refused",
        ),
        _ => RegistryError::new(Code::Unknown, format!("OpenShift API error: {e}")),
    }
}

impl Images {
    pub fn new(
        api: ApiClient,
        upstream: Upstream,
        authorizer: Arc<Authorizer>,
        public_address: String,
        write_upstream: bool,
        quotas: Arc<crate::quota::Quotas>,
    ) -> Images {
        let manifests = Cache::builder()
            .weigher(|_k: &String, v: &Arc<Stored>| v.bytes.len().try_into().unwrap_or(u32::MAX))
            .max_capacity(64 << 20)
            .build();
        Images {
            api,
            upstream,
            authorizer,
            public_address,
            write_upstream,
            quotas,
            manifests,
        }
    }

    /// Answer one call; errors become registry error answers.
    pub async fn handle(&self, call: Call<'_>) -> Local {
        let r = match call.route {
            Route::Manifest { repo, reference } => match *call.method {
                http::Method::GET | http::Method::HEAD => {
                    self.get_manifest(repo, reference, &call.accept).await
                }
                http::Method::PUT => {
                    self.put_manifest(repo, reference, call.content_type, &call.body, call.token)
                        .await
                }
                http::Method::DELETE => self.delete_manifest(repo, reference).await,
                _ => Err(RegistryError::new(Code::Unsupported, "unsupported action")),
            },
            Route::Tags { repo } => self.tags(repo, call.query).await,
            Route::Referrers { repo, digest } => self.referrers(repo, digest, call.query).await,
            Route::Catalog => self.catalog(call.query, call.token).await,
            Route::AdminBlob { digest } => self.delete_blob_everywhere(digest).await,
            _ => Err(RegistryError::new(
                Code::Unsupported,
                "unsupported resource",
            )),
        };
        r.unwrap_or_else(|e| Local::from(&e))
    }

    /// The stream, or `None` when it does not exist.
    async fn stream(
        &self,
        repo: &Repo,
    ) -> Result<Option<(ImageStream, serde_json::Value)>, RegistryError> {
        match self.api.image_stream(&repo.namespace, &repo.name).await {
            Ok(s) => Ok(Some(s)),
            Err(ApiError::NotFound { .. }) => Ok(None),
            Err(e) => Err(api_error(&e)),
        }
    }

    /// The stored manifest of an image, `None` when the image does not exist.
    async fn load(&self, digest: &str) -> Result<Option<Arc<Stored>>, RegistryError> {
        if let Some(s) = self.manifests.get(digest).await {
            return Ok(Some(s));
        }
        let image = match self.api.image(digest).await {
            Ok(i) => i,
            Err(ApiError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(api_error(&e)),
        };
        if image.docker_image_manifest.is_empty() {
            return Ok(None);
        }
        let bytes = Bytes::from(image.docker_image_manifest.into_bytes());
        let media_type = image.docker_image_manifest_media_type;
        let parsed = manifest::parse(Some(&media_type), &bytes).ok();
        let stored = Arc::new(Stored {
            bytes,
            media_type,
            reference: image.docker_image_reference,
            children: image
                .docker_image_manifests
                .into_iter()
                .map(|m| m.digest)
                .collect(),
            parsed,
        });
        self.manifests
            .insert(digest.to_string(), stored.clone())
            .await;
        Ok(Some(stored))
    }

    /// Does `digest` belong to `repo`: in the stream's tag history, pushed to this repository,
    /// or a child of an index in the history?
    async fn member(
        &self,
        repo: &Repo,
        stream: Option<&ImageStream>,
        digest: &str,
    ) -> Result<Option<Arc<Stored>>, RegistryError> {
        let Some(stored) = self.load(digest).await? else {
            return Ok(None);
        };
        let history: Vec<&str> = stream.map(|s| s.images().collect()).unwrap_or_default();
        if history.contains(&digest) || stored.pushed_to(repo) {
            return Ok(Some(stored));
        }
        for parent in history {
            if let Some(p) = self.load(parent).await? {
                if p.children.iter().any(|c| c == digest) {
                    return Ok(Some(stored));
                }
            }
        }
        Ok(None)
    }

    async fn forget(&self, digest: &str) {
        self.manifests.invalidate(digest).await;
    }
}
