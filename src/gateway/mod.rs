//! The pingora `ProxyHttp` implementation: the only module that knows pingora.
//!
//! `request_filter` classifies, authenticates and authorizes every request and answers locally
//! when it can; everything else streams to the upstream registry in both directions. The
//! client's `Authorization` never goes upstream; forwarding headers are set from the listener.

pub mod decide;
pub mod forward;
pub mod limiter;
pub mod respond;
pub mod server;
pub mod tls;
pub mod uploads;

use std::time::Instant;

use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorSource, ErrorType};

use crate::config;
use crate::error::{Code, RegistryError};
use crate::route::{classify, Route};
use decide::{Caller, Decider, Next, Request};
use forward::Origin;
use respond::Local;

/// The gateway service.
pub struct Gateway {
    pub decider: Decider,
    pub images: std::sync::Arc<crate::images::Images>,
    pub quotas: std::sync::Arc<crate::quota::Quotas>,
    pub upstream: config::Upstream,
    pub trust_forwarded_headers: bool,
    pub public_address: String,
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// Serve `/extensions/v2/metrics`.
    pub metrics_enabled: bool,
    pub audit: Option<std::sync::Arc<crate::audit::Audit>>,
    /// Overload protection for reads (GET/HEAD/OPTIONS) and writes.
    pub reads: limiter::Limiter,
    pub writes: limiter::Limiter,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    /// Per read of the request body and per write of the response (slow or stalled clients).
    pub client_timeout: std::time::Duration,
}

/// Per-request state.
pub struct Ctx {
    started: Instant,
    route: Option<Route>,
    origin: Origin,
    caller: Caller,
    strip_mount: bool,
    /// What happened, for the access log.
    outcome: &'static str,
    upstream_status: Option<u16>,
    upload: uploads::UploadCtx,
    /// The overload slot held while the request runs.
    slot: Option<limiter::Slot>,
}

fn header<'a>(req: &'a RequestHeader, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

impl Gateway {
    /// Header count and size within the configured limits?
    fn headers_fit(&self, req: &RequestHeader) -> bool {
        let n = req.headers.len();
        let bytes: usize = req
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum();
        n <= self.max_headers && bytes <= self.max_header_bytes
    }

    /// Take an overload slot for the request (health and readiness are never limited).
    async fn admit(
        &self,
        method: &http::Method,
        route: &Route,
        slot: &mut Option<limiter::Slot>,
    ) -> bool {
        if matches!(route, Route::Health | Route::Ready) {
            return true;
        }
        let read = matches!(
            *method,
            http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
        );
        let limiter = if read { &self.reads } else { &self.writes };
        *slot = limiter.enter().await;
        slot.is_some()
    }

    /// Classify the request, apply the header and overload limits, and decide. On a refusal
    /// after classification the route is left in `ctx.route` (for the logs).
    async fn decide_request(
        &self,
        req: &RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<(Route, Next), RegistryError> {
        let route = classify(req.uri.path(), req.uri.query())?;
        let refused = if !self.headers_fit(req) {
            RegistryError::new(
                Code::Unsupported,
                format!(
                    "request headers too large: at most {} fields and {} bytes",
                    self.max_headers, self.max_header_bytes
                ),
            )
            .with_status(431)
        } else if !self.admit(&req.method, &route, &mut ctx.slot).await {
            self.metrics.overload_refusals.inc();
            RegistryError::new(
                Code::TooManyRequests,
                "too many requests, please try again later",
            )
        } else {
            let r = Request {
                method: &req.method,
                route: &route,
                query: req.uri.query(),
                authorization: req.headers.get("authorization").map(|v| v.as_bytes()),
                origin: &ctx.origin,
            };
            match self.decider.decide(&r, &mut ctx.caller).await {
                Ok(next) => return Ok((route, next)),
                Err(e) => e,
            }
        };
        ctx.route = Some(route);
        Err(refused)
    }

    /// `/readyz`: the upstream registry and the API both answer.
    async fn readiness(&self) -> Local {
        let upstream = self
            .images
            .upstream
            .send(reqwest::Method::GET, "v2/", None, None, 1 << 16)
            .await;
        let api = self.images.api.health().await;
        let mut problems = Vec::new();
        match upstream {
            Ok(a) if a.status < 500 => {}
            Ok(a) => problems.push(format!("upstream registry answered {}", a.status)),
            Err(e) => problems.push(e),
        }
        if let Err(e) = api {
            problems.push(format!("OpenShift API: {e}"));
        }
        if problems.is_empty() {
            Local {
                status: 200,
                headers: vec![("Content-Type", "text/plain".into())],
                body: "ok".into(),
            }
        } else {
            Local {
                status: 503,
                headers: vec![("Content-Type", "text/plain".into())],
                body: problems.join("\n").into(),
            }
        }
    }

    fn upstream_unavailable(&self, e: &Error) -> RegistryError {
        RegistryError::new(
            Code::Unavailable,
            format!(
                "the upstream registry is unavailable ({}); try again later",
                e.etype().as_str()
            ),
        )
    }
}

/// Read a manifest PUT body (capped); other methods carry none.
async fn read_manifest_body(
    session: &mut Session,
    method: &http::Method,
) -> Result<bytes::Bytes, RegistryError> {
    if method != http::Method::PUT {
        return Ok(bytes::Bytes::new());
    }
    let max = crate::manifest::parse::MAX_MANIFEST_BYTES;
    let too_big = || {
        RegistryError::new(
            Code::SizeInvalid,
            format!("manifest larger than the {max}-byte limit"),
        )
        .with_status(413)
    };
    let declared =
        header(session.req_header(), "content-length").and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_big());
    }
    if header(session.req_header(), "expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        let _ = session.write_continue_response().await;
    }
    let mut body = bytes::BytesMut::new();
    loop {
        match session.downstream_session.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max {
                    return Err(too_big());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body.freeze()),
            Err(_) => {
                return Err(RegistryError::new(
                    Code::ManifestInvalid,
                    "the manifest body could not be read",
                )
                .with_status(400))
            }
        }
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx {
            started: Instant::now(),
            route: None,
            origin: Origin::default(),
            caller: Caller::default(),
            strip_mount: false,
            outcome: "",
            upstream_status: None,
            upload: uploads::UploadCtx::default(),
            slot: None,
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> pingora::Result<bool> {
        // a client that stops reading or sending must not hold a connection (and an upstream
        // connection, and a quota reservation) forever
        session.set_read_timeout(Some(self.client_timeout));
        session.set_write_timeout(Some(self.client_timeout));
        let req = session.req_header();
        let over_tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
        ctx.origin = Origin::of(
            over_tls,
            header(req, "host"),
            header(req, "x-forwarded-proto"),
            header(req, "x-forwarded-host"),
            self.trust_forwarded_headers,
            &self.public_address,
        );
        let method = req.method.clone();
        let local = match self.decide_request(req, ctx).await {
            Ok((route, next)) => {
                let route = &*ctx.route.insert(route);
                match next {
                    Next::Proxy { strip_mount } => {
                        ctx.strip_mount = strip_mount;
                        ctx.outcome = if strip_mount {
                            "allowed (mount refused)"
                        } else {
                            "allowed"
                        };
                        match self.prepare_upload(session, route, &mut ctx.upload).await {
                            Ok(()) => return Ok(false),
                            Err(e) => {
                                ctx.outcome = "refused (quota)";
                                Local::from(&e)
                            }
                        }
                    }
                    Next::Respond(local) => {
                        ctx.outcome = "answered";
                        local
                    }
                    Next::Ready => {
                        ctx.outcome = "answered";
                        self.readiness().await
                    }
                    Next::Metrics if self.metrics_enabled => {
                        ctx.outcome = "answered";
                        let text = self.metrics.render(&self.decider.authorizer.stats());
                        Local {
                            status: 200,
                            headers: vec![("Content-Type", "text/plain; version=0.0.4".into())],
                            body: text.into(),
                        }
                    }
                    Next::Metrics => Local::from(
                        &RegistryError::new(
                            Code::Unsupported,
                            "metrics are disabled on this gateway",
                        )
                        .with_status(404),
                    ),
                    Next::Images { token } => {
                        ctx.outcome = "allowed (image API)";
                        match read_manifest_body(session, &method).await {
                            Ok(body) => {
                                let req = session.req_header();
                                let call = crate::images::Call {
                                    method: &method,
                                    route,
                                    query: req.uri.query(),
                                    accept: req
                                        .headers
                                        .get_all("accept")
                                        .iter()
                                        .filter_map(|v| v.to_str().ok())
                                        .collect(),
                                    content_type: header(req, "content-type"),
                                    body,
                                    token: token.as_ref(),
                                };
                                self.images.handle(call).await
                            }
                            Err(e) => Local::from(&e),
                        }
                    }
                }
            }
            Err(e) => {
                ctx.outcome = match e.code {
                    Code::Unauthorized => "unauthorized",
                    Code::Unavailable => "unavailable",
                    Code::TooManyRequests => "overloaded",
                    _ => "refused",
                };
                tracing::debug!(error = %e, "refused");
                Local::from(&e)
            }
        };
        respond::write(session, &local).await?;
        Ok(true)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut Ctx,
    ) -> pingora::Result<Box<HttpPeer>> {
        let u = &self.upstream;
        let sni = if u.tls {
            u.url.host_str().unwrap_or_default().to_string()
        } else {
            String::new()
        };
        let mut peer = HttpPeer::new(u.addr, u.tls, sni);
        peer.options.connection_timeout = Some(u.connect_timeout);
        peer.options.total_connection_timeout = Some(u.connect_timeout);
        peer.options.read_timeout = Some(u.read_timeout);
        peer.options.write_timeout = Some(u.read_timeout);
        peer.options.idle_timeout = Some(u.idle_timeout);
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        up: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> pingora::Result<()> {
        up.remove_header("authorization");
        up.remove_header("forwarded");
        if let Some(a) = &self.upstream.authorization {
            up.insert_header("Authorization", a.as_str())?;
        }
        up.insert_header("X-Forwarded-Proto", ctx.origin.scheme.as_str())?;
        up.insert_header("X-Forwarded-Host", ctx.origin.host.as_str())?;
        if let Some(addr) = session.client_addr().and_then(|a| a.as_inet()) {
            up.insert_header("X-Forwarded-For", addr.ip().to_string())?;
        }
        self.rewrite_upload(up, &ctx.upload)?;
        if ctx.strip_mount {
            let target = forward::strip_mount(up.uri.path(), up.uri.query());
            let uri = target
                .parse()
                .map_err(|_| Error::explain(ErrorType::InternalError, "bad upstream uri"))?;
            up.set_uri(uri);
        }
        Ok(())
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        _end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> pingora::Result<()> {
        self.meter_body(body, &mut ctx.upload);
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> pingora::Result<()> {
        if resp.status.is_informational() {
            return Ok(());
        }
        ctx.upstream_status = Some(resp.status.as_u16());
        self.upload_response(resp, &ctx.origin, &mut ctx.upload)
            .await?;
        let location = resp
            .headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if let Some(new) = location
            .and_then(|l| forward::rewrite_location(&l, &self.upstream.authority, &ctx.origin))
        {
            resp.insert_header("Location", new)?;
        }
        Ok(())
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        // a failed upload gives its quota room back now, not after the drain below
        self.upload_ended(0, true, &ctx.upload);
        if let Some(head) = session.response_written() {
            // The answer is already under way (e.g. the upstream died mid-blob): writing an
            // error now would append JSON to the blob. Just close: the client sees a short body.
            let status = head.status.as_u16();
            ctx.outcome = "proxy error (response cut)";
            if e.esource() == &ErrorSource::Upstream {
                self.metrics.upstream_errors.inc();
            }
            tracing::warn!(error = %e, status, "proxy error after the response started");
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        if let Some(answer) = ctx.upload.answer.take() {
            ctx.outcome = if answer.status == 403 {
                "refused (quota)"
            } else {
                "upload failed"
            };
            if let Err(we) = respond::write(session, &answer).await {
                tracing::debug!(error = %we, "could not write the upload answer");
            }
            return FailToProxy {
                error_code: answer.status,
                can_reuse_downstream: false,
            };
        }
        let err = match (e.etype(), e.esource()) {
            (ErrorType::HTTPStatus(code), _) => {
                let code = *code;
                let c = if code >= 500 {
                    Code::Unavailable
                } else {
                    Code::Unknown
                };
                Some(
                    RegistryError::new(c, format!("request failed: {}", e.etype().as_str()))
                        .with_status(code),
                )
            }
            (
                ErrorType::ReadError | ErrorType::WriteError | ErrorType::ConnectionClosed,
                ErrorSource::Downstream,
            ) => None,
            (_, ErrorSource::Downstream) => Some(
                RegistryError::new(Code::Unknown, "the request could not be read").with_status(400),
            ),
            (_, ErrorSource::Upstream) => {
                self.metrics.upstream_errors.inc();
                Some(self.upstream_unavailable(e))
            }
            _ => Some(RegistryError::new(
                Code::Unknown,
                "internal gateway error; see the gateway log",
            )),
        };
        ctx.outcome = "proxy error";
        let Some(err) = err else {
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        };
        tracing::warn!(error = %e, route = ctx.route.as_ref().map(Route::class), "proxy error");
        if let Err(we) = respond::write(session, &Local::from(&err)).await {
            tracing::debug!(error = %we, "could not write the error answer");
        }
        FailToProxy {
            error_code: err.status,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        let status = session
            .response_written()
            .map(|r| r.status.as_u16())
            .unwrap_or(0);
        self.upload_ended(status, e.is_some(), &ctx.upload);
        let repo = ctx
            .route
            .as_ref()
            .and_then(Route::repo)
            .map(ToString::to_string);
        let route = ctx.route.as_ref().map(Route::class).unwrap_or("-");
        let method = session.req_header().method.clone();
        let method = method.as_str();
        self.metrics.observe(
            route,
            method,
            status,
            ctx.started.elapsed().as_secs_f64(),
            session.body_bytes_read(),
            session.body_bytes_sent(),
        );
        if ctx.outcome == "refused (quota)" {
            self.metrics.quota_refusals.inc();
        }
        if let Some(audit) = &self.audit {
            let denied = matches!(status, 401 | 403 | 429);
            if let Some(action) =
                crate::audit::action(method, route).or(denied.then_some("request"))
            {
                let repo_ref = ctx.route.as_ref().and_then(Route::repo);
                let reference = match &ctx.route {
                    Some(Route::Manifest { reference, .. }) => reference.to_string(),
                    Some(Route::Blob { digest, .. }) | Some(Route::AdminBlob { digest }) => {
                        digest.to_string()
                    }
                    Some(Route::Upload {
                        digest: Some(d), ..
                    })
                    | Some(Route::UploadStart {
                        digest: Some(d), ..
                    }) => d.to_string(),
                    _ => String::new(),
                };
                let client = session
                    .client_addr()
                    .and_then(|a| a.as_inet())
                    .map(|a| a.ip().to_string())
                    .unwrap_or_default();
                audit.record(&crate::audit::Event {
                    time: crate::kubernetes::rfc3339(std::time::SystemTime::now()),
                    user: &ctx.caller.who,
                    action,
                    namespace: repo_ref.map(|r| r.namespace.as_str()).unwrap_or(""),
                    repository: repo_ref.map(|r| r.name.as_str()).unwrap_or(""),
                    reference: &reference,
                    decision: if denied { "denied" } else { ctx.outcome },
                    status,
                    bytes: (session.body_bytes_read() + session.body_bytes_sent()) as u64,
                    client: &client,
                });
            }
        }
        tracing::info!(
            method = %method,
            route,
            repo = repo.as_deref().unwrap_or("-"),
            caller = %ctx.caller.who,
            decision = ctx.outcome,
            status,
            upstream_status = ctx.upstream_status,
            bytes_in = session.body_bytes_read(),
            bytes_upstream = session.upstream_body_bytes_sent(),
            bytes_out = session.body_bytes_sent(),
            ms = ctx.started.elapsed().as_millis() as u64,
            error = e.map(|e| e.etype().as_str()),
            "request"
        );
    }
}
