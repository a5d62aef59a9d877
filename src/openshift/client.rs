//! HTTP client for the API subset: identity (SelfSubjectReview, `users/~`) and reviews
//! (SelfSubjectAccessReview, SubjectAccessReview for `system:anonymous`, legacy
//! LocalSubjectAccessReview). Every call has a timeout; errors are typed.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use url::Url;

use crate::auth::access::Access;
use crate::auth::credentials::Token;
use crate::openshift::types::{
    LegacyReviewResponse, ResourceAttributes, ReviewResponse, SelfSubjectReview, Status, User,
    UserInfo,
};

/// How to reach the API.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub base_url: Url,
    /// PEM bundle of CAs to trust (from a file, a kubeconfig or the service-account mount).
    pub ca_pem: Option<Vec<u8>>,
    pub insecure: bool,
    /// The gateway's own identity (service account token).
    pub token: Option<Token>,
    pub timeout: Duration,
    /// Use the `/oapi/v1` LocalSubjectAccessReview flavour (OpenShift ≤ 3.6).
    pub legacy_reviews: bool,
}

/// Why an API call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("the API rejected the token (401 Unauthorized)")]
    Unauthorized,
    #[error("the API refused the call (403 Forbidden): {0}")]
    Forbidden(String),
    #[error("the API answered 404 Not Found: {message}")]
    NotFound { message: String, kind: String },
    #[error("the API answered 409 Conflict: {0}")]
    Conflict(String),
    #[error("the API answered {code}: {message}")]
    Status { code: u16, message: String },
    #[error("the API is unreachable: {0}")]
    Unreachable(String),
    #[error("the API did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the API sent an unexpected answer: {0}")]
    Malformed(String),
}

/// The certificates of a PEM bundle, for a client's trusted roots.
pub fn pem_certificates(pem: &[u8]) -> Result<Vec<reqwest::Certificate>, String> {
    let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| format!("not PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in the PEM bundle".into());
    }
    Ok(certs)
}

/// The API client. Cheap to clone (reqwest's client is an `Arc` inside).
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    own_token: Option<Token>,
    timeout: Duration,
    legacy_reviews: bool,
}

impl ApiClient {
    pub fn new(s: ApiSettings) -> Result<ApiClient, String> {
        let mut b = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .connect_timeout(s.timeout)
            .tcp_nodelay(true)
            .danger_accept_invalid_certs(s.insecure);
        if let Some(pem) = &s.ca_pem {
            for c in pem_certificates(pem).map_err(|e| format!("the API CA: {e}"))? {
                b = b.add_root_certificate(c);
            }
        }
        let http = b
            .build()
            .map_err(|e| format!("cannot build the API client: {e}"))?;
        let mut base = s.base_url;
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        Ok(ApiClient {
            http,
            base,
            own_token: s.token,
            timeout: s.timeout,
            legacy_reviews: s.legacy_reviews,
        })
    }

    /// The gateway's own token, if configured.
    pub fn own_token(&self) -> Option<&Token> {
        self.own_token.as_ref()
    }

    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&Token>,
        body: Option<&Value>,
    ) -> Result<T, ApiError> {
        let url = self
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|e| ApiError::Malformed(e.to_string()))?;
        let mut req = self
            .http
            .request(method, url)
            .header("Accept", "application/json");
        if let Some(t) = token {
            req = req.bearer_auth(t.expose());
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let send = async {
            let resp = req
                .send()
                .await
                .map_err(|e| ApiError::Unreachable(without_url(e)))?;
            let status = resp.status().as_u16();
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| ApiError::Unreachable(without_url(e)))?;
            Ok::<_, ApiError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(self.timeout, send)
            .await
            .map_err(|_| ApiError::Timeout(self.timeout))??;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::Malformed(format!("{path}: {e}")));
        }
        let st = serde_json::from_slice::<Status>(&bytes).unwrap_or_else(|_| Status {
            message: String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned(),
            ..Status::default()
        });
        let message = st.message;
        Err(match status {
            401 => ApiError::Unauthorized,
            403 => ApiError::Forbidden(message),
            404 => ApiError::NotFound {
                message,
                kind: st.details.kind,
            },
            409 => ApiError::Conflict(message),
            code => ApiError::Status { code, message },
        })
    }

    pub(crate) async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        token: Option<&Token>,
        body: Value,
    ) -> Result<T, ApiError> {
        self.call(reqwest::Method::POST, path, token, Some(&body))
            .await
    }

    /// Who is this token? SelfSubjectReview, falling back to `users/~` on clusters without it.
    /// `None` asks as `system:anonymous`.
    pub async fn who_am_i(&self, token: Option<&Token>) -> Result<UserInfo, ApiError> {
        let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
        match self
            .post::<SelfSubjectReview>(
                "apis/authentication.k8s.io/v1/selfsubjectreviews",
                token,
                body,
            )
            .await
        {
            Ok(r) => Ok(r.status.user_info),
            Err(ApiError::NotFound { .. }) => {
                let u: User = self
                    .call(
                        reqwest::Method::GET,
                        "apis/user.openshift.io/v1/users/~",
                        token,
                        None,
                    )
                    .await?;
                Ok(UserInfo {
                    username: u.metadata.name,
                    uid: u.metadata.uid,
                    groups: u.groups,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// May the token's owner do `access`? (SelfSubjectAccessReview, or the legacy flavour.)
    pub async fn self_access_review(
        &self,
        token: Option<&Token>,
        access: &Access,
    ) -> Result<bool, ApiError> {
        if self.legacy_reviews {
            return self.legacy_access_review(token, access).await;
        }
        let body = json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": ResourceAttributes::from(access)},
        });
        let r: ReviewResponse = self
            .post(
                "apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                token,
                body,
            )
            .await?;
        Ok(r.status.allowed && !r.status.denied)
    }

    /// May `system:anonymous` do `access`? Asked with the gateway's own identity (the fallback
    /// for clusters where unauthenticated users may not create SelfSubjectAccessReviews).
    pub async fn anonymous_access_review(&self, access: &Access) -> Result<bool, ApiError> {
        if self.legacy_reviews {
            let mut body = legacy_body("SubjectAccessReview", access);
            body["user"] = json!("system:anonymous");
            body["groups"] = json!(["system:unauthenticated"]);
            let r: LegacyReviewResponse = self
                .post(
                    &legacy_path(access, "subjectaccessreviews"),
                    self.own_token(),
                    body,
                )
                .await?;
            return Ok(r.allowed);
        }
        let body = json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": "system:anonymous",
                "groups": ["system:unauthenticated"],
                "resourceAttributes": ResourceAttributes::from(access),
            },
        });
        let r: ReviewResponse = self
            .post(
                "apis/authorization.k8s.io/v1/subjectaccessreviews",
                self.own_token(),
                body,
            )
            .await?;
        Ok(r.status.allowed && !r.status.denied)
    }

    /// `/oapi/v1` LocalSubjectAccessReview (namespaced) or SubjectAccessReview (cluster), with an
    /// empty user meaning "the caller"; a 403/404 on the local flavour retries as the namespaced SAR.
    async fn legacy_access_review(
        &self,
        token: Option<&Token>,
        access: &Access,
    ) -> Result<bool, ApiError> {
        if access.namespace.is_empty() {
            let body = legacy_body("SubjectAccessReview", access);
            let r: LegacyReviewResponse = self
                .post("oapi/v1/subjectaccessreviews", token, body)
                .await?;
            return Ok(r.allowed);
        }
        let body = legacy_body("LocalSubjectAccessReview", access);
        let r: Result<LegacyReviewResponse, _> = self
            .post(
                &legacy_path(access, "localsubjectaccessreviews"),
                token,
                body,
            )
            .await;
        match r {
            Ok(r) => Ok(r.allowed),
            Err(ApiError::NotFound { .. }) => {
                let body = legacy_body("SubjectAccessReview", access);
                let r: LegacyReviewResponse = self
                    .post(&legacy_path(access, "subjectaccessreviews"), token, body)
                    .await?;
                Ok(r.allowed)
            }
            Err(e) => Err(e),
        }
    }
}

fn legacy_path(access: &Access, resource: &str) -> String {
    if access.namespace.is_empty() {
        format!("oapi/v1/{resource}")
    } else {
        format!("oapi/v1/namespaces/{}/{resource}", access.namespace)
    }
}

fn legacy_body(kind: &str, access: &Access) -> Value {
    let resource = if access.subresource.is_empty() {
        access.resource.to_string()
    } else {
        format!("{}/{}", access.resource, access.subresource)
    };
    json!({
        "kind": kind, "apiVersion": "v1", "namespace": access.namespace, "verb": access.verb,
        "resourceAPIGroup": access.group, "resourceAPIVersion": "", "resource": resource,
        "resourceName": access.name, "user": "", "groups": null,
    })
}

/// reqwest errors print the URL; keep only the cause (the URL carries no secret, but keep logs short).
fn without_url(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::Repo;

    #[test]
    fn legacy_shapes() {
        let a = Access::pull(&Repo::parse("ns/is").unwrap());
        assert_eq!(
            legacy_path(&a, "localsubjectaccessreviews"),
            "oapi/v1/namespaces/ns/localsubjectaccessreviews"
        );
        let b = legacy_body("LocalSubjectAccessReview", &a);
        assert_eq!(b["resource"], "imagestreams/layers");
        assert_eq!(b["resourceName"], "is");
        assert_eq!(b["user"], "");
        assert_eq!(
            legacy_path(&Access::prune(), "subjectaccessreviews"),
            "oapi/v1/subjectaccessreviews"
        );
        assert_eq!(
            legacy_body("x", &Access::metrics())["resource"],
            "registry/metrics"
        );
    }

    #[test]
    fn attributes_shape() {
        let a = Access::push(&Repo::parse("ns/is").unwrap());
        let v = serde_json::to_value(ResourceAttributes::from(&a)).unwrap();
        assert_eq!(
            v,
            json!({"namespace":"ns","verb":"update","group":"image.openshift.io","resource":"imagestreams/layers","name":"is"})
        );
        let v = serde_json::to_value(ResourceAttributes::from(&Access::catalog())).unwrap();
        assert_eq!(
            v,
            json!({"verb":"list","group":"image.openshift.io","resource":"imagestreams"})
        );
    }
}
