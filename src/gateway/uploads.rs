//! Quota enforcement on the streamed upload path (the pingora side of `quota`).
//!
//! Every body-carrying upload request (monolithic `POST ?digest=`, `PATCH`, `PUT` with the last
//! chunk) is checked against the namespace's limits:
//!
//! * a declared length (`Content-Length`/`Content-Range`) over the limit is refused before the
//!   upstream sees a byte, and the session is cancelled with the client's own (valid) `_state`;
//! * a streamed body without a length is counted chunk by chunk; at the first chunk that would
//!   cross the limit the upstream body is ended cleanly (so Distribution answers 202 with a
//!   fresh, valid `Location`), that session is deleted, and the client gets `DENIED` while the
//!   rest of its body is drained for a bounded time;
//! * a body-carrying `PUT ?digest=` whose body is streamed is sent upstream as a `PATCH` and the
//!   gateway issues the final empty `PUT ?digest=` itself (a cut `PUT` would otherwise leave the
//!   session unusable); a monolithic `POST ?digest=` becomes POST (side call) + PATCH/PUT.
//!
//! The offset where a request's bytes start comes from the request (`Content-Range` or the
//! `_state` token), never from this replica's memory, so limits hold across replicas and
//! restarts. Out-of-order chunks get 416 with the current `Range`.

use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;
use pingora::{Error, ErrorType};

use crate::error::{Code, RegistryError};
use crate::gateway::forward::Origin;
use crate::gateway::respond::Local;
use crate::gateway::Gateway;
use crate::quota::limits::Allowance;
use crate::quota::meter::{Meter, Step};
use crate::quota::upload::{parse_content_range, state_offset};
use crate::route::{query_param, Repo, Route};
use crate::upstream::Answer;

/// Upload state of one request.
#[derive(Debug, Default)]
pub struct UploadCtx {
    repo: Option<Repo>,
    /// The upload session id (reservation key).
    key: String,
    meter: Option<Meter>,
    /// The namespace's limits, to recompute the allowance as other uploads progress.
    limits: Option<std::sync::Arc<crate::quota::limits::Limits>>,
    /// Send upstream with this method / to this target instead of the client's.
    method: Option<http::Method>,
    target: Option<String>,
    /// After the upstream's 202, finish the blob with `PUT ?digest=` of this digest.
    finish: Option<String>,
    /// The final `PUT ?digest=` of a session (no body): commit the reservation on 201.
    committing: Option<String>,
    /// Answer the client with this instead of the upstream's answer.
    pub answer: Option<Local>,
}

fn header<'a>(req: &'a RequestHeader, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

fn denied(a: &Allowance, size: u64) -> RegistryError {
    RegistryError::new(
        Code::Denied,
        format!(
            "blob upload denied: it would exceed {}: the blob may have at most {} bytes, and the upload reached {size} bytes",
            a.reason, a.bytes
        ),
    )
}

fn unavailable(msg: impl std::fmt::Display) -> RegistryError {
    RegistryError::new(Code::Unavailable, format!("{msg}; try again later"))
}

/// Path and query of a (possibly absolute) `Location`.
fn target_of(location: &str) -> Option<String> {
    if location.starts_with('/') {
        return Some(location.to_string());
    }
    let u = url::Url::parse(location).ok()?;
    Some(match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    })
}

fn with_digest(target: &str, digest: &str) -> String {
    format!(
        "{target}{}digest={digest}",
        if target.contains('?') { '&' } else { '?' }
    )
}

fn answer_local(a: &Answer) -> Local {
    let mut l = Local {
        status: a.status,
        headers: Vec::new(),
        body: a.body.clone(),
    };
    if let Some(ct) = a.headers.get("content-type").and_then(|v| v.to_str().ok()) {
        l.headers.push(("Content-Type", ct.to_string()));
    }
    l
}

impl Gateway {
    async fn side(&self, method: reqwest::Method, target: &str) -> Result<Answer, RegistryError> {
        self.images
            .upstream
            .send(method, target.trim_start_matches('/'), None, None, 1 << 20)
            .await
            .map_err(unavailable)
    }

    /// Cancel an upstream upload session (best effort: the upstream purges what is left).
    async fn cancel(&self, target: &str) {
        match self.side(reqwest::Method::DELETE, target).await {
            Ok(a) if a.status == 204 || a.status == 404 => {}
            Ok(a) => tracing::warn!(status = a.status, "cancelling a refused upload failed"),
            Err(e) => tracing::warn!(error = %e, "cancelling a refused upload failed"),
        }
    }

    /// Before the upstream is contacted: limits, order, early refusal, rewrites.
    pub(super) async fn prepare_upload(
        &self,
        session: &Session,
        route: &Route,
        ctx: &mut UploadCtx,
    ) -> Result<(), RegistryError> {
        let req = session.req_header();
        let method = req.method.clone();
        let query = req.uri.query();
        let (repo, digest, upload) = match route {
            Route::UploadStart {
                repo,
                digest: Some(d),
                mount: None,
            } if method == http::Method::POST => (repo, Some(d.to_string()), None),
            Route::Upload { repo, uuid, digest }
                if method == http::Method::PATCH || method == http::Method::PUT =>
            {
                (
                    repo,
                    digest.as_ref().map(ToString::to_string),
                    Some(uuid.as_str()),
                )
            }
            Route::Upload { repo, uuid, .. } if method == http::Method::DELETE => {
                ctx.repo = Some(repo.clone());
                ctx.key = uuid.clone();
                return Ok(());
            }
            _ => return Ok(()),
        };
        ctx.repo = Some(repo.clone());
        let content_length = header(req, "content-length").and_then(|v| v.parse::<u64>().ok());
        let chunked = header(req, "transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let range = match header(req, "content-range") {
            None => None,
            Some(v) => Some(parse_content_range(v).ok_or_else(|| {
                RegistryError::new(
                    Code::RangeInvalid,
                    format!("invalid Content-Range {v:?}: expected <start>-<end>"),
                )
                .with_status(416)
            })?),
        };
        let has_body =
            content_length.is_some_and(|n| n > 0) || (content_length.is_none() && chunked);
        if let Some(uuid) = upload {
            ctx.key = uuid.to_string();
            if !has_body {
                if method == http::Method::PUT {
                    ctx.committing = digest;
                }
                return Ok(());
            }
        } else if !has_body {
            return Ok(());
        }

        // The session's offset: from the request, never from memory.
        let state = query_param(query, "_state").and_then(|s| state_offset(&s));
        if let (Some(r), Some(o)) = (range, state) {
            if r.start != o {
                let mut e = RegistryError::new(
                    Code::RangeInvalid,
                    format!(
                        "chunk out of order: it starts at byte {}, but the upload has {o} bytes",
                        r.start
                    ),
                )
                .with_status(416);
                e.detail = serde_json::json!({"Range": format!("0-{}", o.saturating_sub(1))});
                return Err(e);
            }
        }
        let offset = range.map(|r| r.start).or(state).unwrap_or(0);
        let declared = content_length.or(range.map(|r| r.bytes()));

        let limits = self.quotas.limits(&repo.namespace).await.map_err(|e| {
            unavailable(format!(
                "the upload limits of namespace {:?} could not be read ({e})",
                repo.namespace
            ))
        })?;

        // A monolithic POST: open the session now and stream the body into it.
        let target = match upload {
            Some(_) => None,
            None => {
                let a = self
                    .side(reqwest::Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
                    .await?;
                let t = a
                    .headers
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .and_then(target_of);
                let Some(t) = t.filter(|_| a.status == 202) else {
                    return Err(unavailable(format!(
                        "the upstream registry answered {} to opening an upload",
                        a.status
                    )));
                };
                ctx.key = t
                    .split('?')
                    .next()
                    .unwrap_or("")
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .to_string();
                Some(t)
            }
        };

        let allowance = limits.allowance(
            &repo.namespace,
            self.quotas
                .ledger
                .reserved_except(&repo.namespace, &ctx.key),
        );
        if let Some(a) = &allowance {
            if let Some(n) = declared {
                if offset.saturating_add(n) > a.bytes {
                    // refuse before the upstream sees a byte; the session is still valid
                    let session_target = target.clone().unwrap_or_else(|| match query {
                        Some(q) => format!("{}?{q}", req.uri.path()),
                        None => req.uri.path().to_string(),
                    });
                    self.cancel(&session_target).await;
                    self.quotas.ledger.remove(&repo.namespace, &ctx.key);
                    return Err(denied(a, offset.saturating_add(n)));
                }
            }
        }
        let metered = allowance.is_some() && declared.is_none();
        if let Some(a) = allowance {
            self.quotas.ledger.set(
                &repo.namespace,
                &ctx.key,
                offset.saturating_add(declared.unwrap_or(0)),
            );
            if metered {
                ctx.meter = Some(Meter::new(a, offset));
                ctx.limits = Some(limits.clone());
            }
        }

        match (target, digest) {
            // monolithic POST with a known length: one upstream PUT ?digest=
            (Some(t), Some(d)) if !metered => {
                ctx.method = Some(http::Method::PUT);
                ctx.target = Some(with_digest(&t, &d));
                ctx.committing = Some(d);
            }
            // streamed: PATCH, then the final PUT ourselves
            (Some(t), Some(d)) => {
                ctx.method = Some(http::Method::PATCH);
                ctx.target = Some(t);
                ctx.finish = Some(d);
            }
            (None, Some(d)) if method == http::Method::PUT && metered => {
                let path = req.uri.path().to_string();
                let rest: Vec<String> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
                    .filter(|(k, _)| k != "digest")
                    .map(|(k, v)| {
                        url::form_urlencoded::Serializer::new(String::new())
                            .append_pair(&k, &v)
                            .finish()
                    })
                    .collect();
                ctx.method = Some(http::Method::PATCH);
                ctx.target = Some(if rest.is_empty() {
                    path
                } else {
                    format!("{path}?{}", rest.join("&"))
                });
                ctx.finish = Some(d);
            }
            (None, Some(d)) if method == http::Method::PUT => ctx.committing = Some(d),
            _ => {}
        }
        Ok(())
    }

    /// The upstream request: method/target rewrites; no `Content-Length` when metering, so the
    /// body can be ended cleanly (chunked) at the limit.
    pub(super) fn rewrite_upload(
        &self,
        up: &mut RequestHeader,
        ctx: &UploadCtx,
    ) -> pingora::Result<()> {
        if let Some(m) = &ctx.method {
            up.set_method(m.clone());
        }
        if let Some(t) = &ctx.target {
            let uri = t
                .parse()
                .map_err(|_| Error::explain(ErrorType::InternalError, "bad upload target"))?;
            up.set_uri(uri);
        }
        if ctx.meter.is_some() {
            up.remove_header("content-length");
        }
        Ok(())
    }

    /// One chunk of the request body.
    pub(super) fn meter_body(&self, body: &mut Option<Bytes>, ctx: &mut UploadCtx) {
        let Some(m) = ctx.meter.as_mut() else { return };
        let len = body.as_ref().map_or(0, Bytes::len);
        // parallel uploads in the namespace shrink the room left: recompute as we go
        if let (Some(limits), Some(repo), false) = (&ctx.limits, &ctx.repo, m.over) {
            let reserved = self
                .quotas
                .ledger
                .reserved_except(&repo.namespace, &ctx.key);
            if let Some(a) = limits.allowance(&repo.namespace, reserved) {
                m.allowance = a;
            }
        }
        match m.step(len) {
            Step::Forward => {
                if let Some(repo) = &ctx.repo {
                    self.quotas.ledger.set(&repo.namespace, &ctx.key, m.total);
                }
            }
            Step::Cut => {
                let size = m.total + len as u64;
                ctx.answer = Some(Local::from(&denied(&m.allowance, size)));
                *body = None;
            }
            Step::Drop => *body = Some(Bytes::new()),
        }
    }

    /// The request is over. One that failed (the client went away, the upstream died, an error
    /// answer) must not keep holding quota room: the next request of the session reserves again
    /// from its own offset.
    pub(super) fn upload_ended(&self, status: u16, failed: bool, ctx: &UploadCtx) {
        let Some(repo) = &ctx.repo else { return };
        if failed || !(200..300).contains(&status) {
            self.quotas.ledger.remove(&repo.namespace, &ctx.key);
        }
    }

    /// The upstream answered: clean up a cut upload, or finish a rewritten one.
    pub(super) async fn upload_response(
        &self,
        resp: &mut ResponseHeader,
        origin: &Origin,
        ctx: &mut UploadCtx,
    ) -> pingora::Result<()> {
        let Some(repo) = ctx.repo.clone() else {
            return Ok(());
        };
        let ns = repo.namespace.as_str();
        let status = resp.status.as_u16();
        let location = resp
            .headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .and_then(target_of);
        if ctx.meter.as_ref().is_some_and(|m| m.over) {
            if let Some(t) = location {
                self.cancel(&t).await;
            }
            self.quotas.ledger.remove(ns, &ctx.key);
            return Error::e_explain(ErrorType::HTTPStatus(403), "upload over the limit");
        }
        if let (Some(d), 202, Some(t)) = (ctx.finish.clone(), status, location) {
            let a = match self.side(reqwest::Method::PUT, &with_digest(&t, &d)).await {
                Ok(a) => a,
                Err(e) => {
                    ctx.answer = Some(Local::from(&e));
                    return Error::e_explain(
                        ErrorType::HTTPStatus(503),
                        "finishing the upload failed",
                    );
                }
            };
            if a.status != 201 {
                ctx.answer = Some(answer_local(&a));
                return Error::e_explain(
                    ErrorType::HTTPStatus(a.status),
                    "finishing the upload failed",
                );
            }
            resp.set_status(201)?;
            resp.remove_header("range");
            resp.remove_header("docker-upload-uuid");
            resp.insert_header("Location", format!("{}/v2/{repo}/blobs/{d}", origin.base()))?;
            resp.insert_header("Docker-Content-Digest", d.as_str())?;
            resp.insert_header("Content-Length", "0")?;
            self.quotas.ledger.committed(ns, &ctx.key, &d);
            return Ok(());
        }
        match (status, &ctx.committing) {
            (201, Some(d)) => self.quotas.ledger.committed(ns, &ctx.key, d),
            (204, _) => self.quotas.ledger.remove(ns, &ctx.key),
            (s, _) if s >= 400 => self.quotas.ledger.remove(ns, &ctx.key),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            target_of("http://h:1/v2/a/b/blobs/uploads/u?_state=x").as_deref(),
            Some("/v2/a/b/blobs/uploads/u?_state=x")
        );
        assert_eq!(
            target_of("/v2/a/b/blobs/uploads/u").as_deref(),
            Some("/v2/a/b/blobs/uploads/u")
        );
        assert_eq!(
            with_digest("/p?_state=x", "sha256:1"),
            "/p?_state=x&digest=sha256:1"
        );
        assert_eq!(with_digest("/p", "sha256:1"), "/p?digest=sha256:1");
    }
}
