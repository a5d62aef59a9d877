//! What to do with a classified request: answer it locally, or let it through to the upstream.
//! No pingora here: this takes plain values and returns a plain decision.

use std::sync::Arc;

use futures_util::future::try_join_all;
use http::Method;
use serde_json::json;

use crate::auth::access::{self, Access, Plan};
use crate::auth::authorizer::Authorizer;
use crate::auth::challenge;
use crate::auth::credentials::{self, CredentialError, Credentials, Token};
use crate::error::{Code, RegistryError};
use crate::gateway::forward::Origin;
use crate::gateway::respond::Local;
use crate::openshift::ApiError;
use crate::route::{Repo, Route};

/// The outcome for one request.
#[derive(Debug)]
pub enum Next {
    /// Forward to the upstream; `strip_mount` when the mount source may not be read.
    Proxy { strip_mount: bool },
    /// Answer from the OpenShift image API (manifests, tags, referrers, catalog, admin blobs),
    /// on behalf of this token (`None` = anonymous).
    Images { token: Option<Token> },
    /// Answer readiness (the gateway checks its dependencies).
    Ready,
    /// Answer the metrics exposition.
    Metrics,
    /// Answer with this.
    Respond(Local),
}

/// A request as the decision sees it.
pub struct Request<'a> {
    pub method: &'a Method,
    pub route: &'a Route,
    pub query: Option<&'a str>,
    pub authorization: Option<&'a [u8]>,
    pub origin: &'a Origin,
}

/// What is known about the caller, for logs.
#[derive(Debug, Default, Clone)]
pub struct Caller {
    /// `anonymous`, `token:<fingerprint>` or `-` when no credentials were usable.
    pub who: String,
}

/// Realms and the authorizer: everything the decision needs.
pub struct Decider {
    pub authorizer: Arc<Authorizer>,
    pub realm: String,
    /// Configured `scheme://host` of the token endpoint; derived from the request otherwise.
    pub token_realm: Option<String>,
    /// A bearer token that may read the metrics without an access review (OpenShift's
    /// `openshift.metrics.secret`).
    pub metrics_secret: Option<String>,
    /// Resolve user names for every request (for the audit log; cached per token).
    pub resolve_users: bool,
}

fn unavailable(e: &ApiError) -> RegistryError {
    RegistryError::new(
        Code::Unavailable,
        format!(
            "the OpenShift API could not confirm this request is allowed ({e}); try again later"
        ),
    )
}

impl Decider {
    fn token_realm(&self, origin: &Origin) -> String {
        match &self.token_realm {
            Some(base) => format!("{base}/openshift/token"),
            None => challenge::token_realm(&origin.scheme, &origin.host),
        }
    }

    /// Decide. `Err` is an error answer; `caller` is filled in for logging.
    pub async fn decide(
        &self,
        req: &Request<'_>,
        caller: &mut Caller,
    ) -> Result<Next, RegistryError> {
        let plan = access::plan(req.method, req.route)?;
        if let (Route::Metrics, Some(secret)) = (req.route, &self.metrics_secret) {
            let presented = match credentials::parse(req.authorization) {
                Ok(Credentials::Token(t)) => Some(t),
                _ => None,
            };
            let ok = presented
                .is_some_and(|t| constant_time_eq(t.expose().as_bytes(), secret.as_bytes()));
            return if ok {
                Ok(Next::Metrics)
            } else {
                Err(challenge::denied(&self.realm, &[]))
            };
        }
        let creds = credentials::parse(req.authorization);
        caller.who = match &creds {
            Ok(Credentials::Token(t)) => format!("token:{}", t.fingerprint()),
            Ok(Credentials::Anonymous) => "anonymous".into(),
            _ => "-".into(),
        };
        match plan {
            Plan::Public => match req.route {
                Route::Token => self.token_endpoint(req).await.map(Next::Respond),
                Route::Ready => Ok(Next::Ready),
                _ => Ok(Next::Respond(
                    Local::empty(200).header("Cache-Control", "no-cache"),
                )),
            },
            Plan::Identify => {
                let token = self.token(creds, req.origin, &[])?;
                if let Some(t) = token {
                    match self.authorizer.identify(Some(&t)).await {
                        Ok(Some(user)) => {
                            caller.who = format!("{} (token:{})", user.username, t.fingerprint())
                        }
                        Ok(None) => return Err(challenge::denied(&self.realm, &[])),
                        Err(e) => return Err(unavailable(&e)),
                    }
                }
                Ok(Next::Respond(Local::json(200, "{}")))
            }
            Plan::Check {
                required,
                mount_source,
            } => {
                let token = self.token(creds, req.origin, &required)?;
                let token = token.as_ref();
                let decisions =
                    try_join_all(required.iter().map(|a| self.authorizer.allowed(token, a))).await;
                match decisions {
                    Err(e) => return Err(unavailable(&e)),
                    Ok(d) if d.iter().all(|ok| *ok) => {}
                    Ok(_) => return Err(challenge::denied(&self.realm, &required)),
                }
                if let (true, Some(t)) = (self.resolve_users, token) {
                    if let Ok(Some(user)) = self.authorizer.identify(Some(t)).await {
                        caller.who = user.username;
                    }
                }
                // A mount from a repository the caller may not read silently becomes a normal
                // upload (OpenShift's deferred pull error); an unanswerable check does too.
                let strip_mount = match &mount_source {
                    Some(src) => !matches!(self.authorizer.allowed(token, src).await, Ok(true)),
                    None => false,
                };
                match req.route {
                    Route::Manifest { .. }
                    | Route::Tags { .. }
                    | Route::Referrers { .. }
                    | Route::Catalog
                    | Route::AdminBlob { .. } => Ok(Next::Images {
                        token: token.cloned(),
                    }),
                    Route::Metrics => Ok(Next::Metrics),
                    _ => self
                        .after_authorization(req.route)
                        .map(|()| Next::Proxy { strip_mount }),
                }
            }
        }
    }

    /// Credentials → the token to ask with (`None` = anonymous) or the challenge.
    fn token(
        &self,
        creds: Result<Credentials, CredentialError>,
        origin: &Origin,
        accesses: &[Access],
    ) -> Result<Option<Token>, RegistryError> {
        let e = match creds {
            Ok(Credentials::Token(t)) => return Ok(Some(t)),
            Ok(Credentials::Anonymous) => return Ok(None),
            Ok(Credentials::Missing) => CredentialError::Required,
            Err(e) => e,
        };
        let realm = self.token_realm(origin);
        Err(challenge::credentials(&e, &self.realm, &realm, accesses))
    }

    /// Routes that are authorized but not (yet) served by this gateway.
    fn after_authorization(&self, route: &Route) -> Result<(), RegistryError> {
        let what = match route {
            Route::Signatures { .. } => "the image signatures extension",
            _ => return Ok(()),
        };
        Err(RegistryError::new(
            Code::Unsupported,
            format!("{what} is not available on this gateway yet"),
        )
        .with_status(404))
    }

    /// `GET /openshift/token` (reference §2.6): echo a validated token, or `anonymous`.
    async fn token_endpoint(&self, req: &Request<'_>) -> Result<Local, RegistryError> {
        if let Some(bad) = invalid_scope(req.query) {
            return Ok(Local::json(400, json!({"details": format!("invalid scope {bad:?}: repository names are <namespace>/<name>")}).to_string()));
        }
        let anonymous = json!({"token": "anonymous", "access_token": "anonymous"}).to_string();
        let Some(raw) = req.authorization else {
            return Ok(Local::json(200, anonymous));
        };
        let is_basic = std::str::from_utf8(raw)
            .ok()
            .and_then(|s| s.trim().split(' ').next())
            .is_some_and(|s| s.eq_ignore_ascii_case("basic"));
        if !is_basic {
            return Ok(Local::json(401, ""));
        }
        let token = match credentials::parse(Some(raw)) {
            Ok(Credentials::Token(t)) => t,
            _ => {
                return Ok(Local::json(
                    401,
                    json!({"details": "invalid request"}).to_string(),
                ))
            }
        };
        match self.authorizer.identify(Some(&token)).await {
            Ok(Some(_)) => Ok(Local::json(
                200,
                json!({"token": token.expose(), "access_token": token.expose()}).to_string(),
            )),
            Ok(None) => Ok(Local::json(401, "")),
            Err(e) => Err(unavailable(&e)),
        }
    }
}

/// Compare secrets without an early exit on the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The first `scope` naming a repository that is not `<namespace>/<name>`.
fn invalid_scope(query: Option<&str>) -> Option<String> {
    let q = query?;
    url::form_urlencoded::parse(q.as_bytes())
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
        .find(|scope| {
            let mut parts = scope.splitn(3, ':');
            let (typ, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            (typ == "repository" || typ == "signature") && Repo::parse(name).is_err()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        assert_eq!(invalid_scope(Some("scope=repository:a/b:pull")), None);
        assert_eq!(
            invalid_scope(Some("scope=repository:a/b/c:pull")),
            Some("repository:a/b/c:pull".into())
        );
        assert_eq!(
            invalid_scope(Some("scope=repository:a:pull,push")),
            Some("repository:a:pull,push".into())
        );
        assert_eq!(invalid_scope(Some("scope=registry:catalog:*")), None);
        assert_eq!(invalid_scope(None), None);
    }
}
