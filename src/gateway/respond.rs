//! Writing answers the gateway produces itself, and the bounded drain that makes sure a client
//! still sending a body actually reads an early error instead of losing it to a TCP reset.

use std::time::Duration;

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use crate::error::RegistryError;

/// A response produced locally.
#[derive(Debug, Clone)]
pub struct Local {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

pub const JSON: &str = "application/json; charset=utf-8";
const API_VERSION: (&str, &str) = ("Docker-Distribution-Api-Version", "registry/2.0");

impl Local {
    pub fn json(status: u16, body: impl Into<Bytes>) -> Local {
        Local {
            status,
            headers: vec![("Content-Type", JSON.into())],
            body: body.into(),
        }
    }

    pub fn empty(status: u16) -> Local {
        Local {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Local {
        self.headers.push((name, value.into()));
        self
    }
}

impl From<&RegistryError> for Local {
    fn from(e: &RegistryError) -> Local {
        let mut l = Local::json(e.status, e.body());
        if let Some(c) = &e.challenge {
            l = l.header("WWW-Authenticate", c.clone());
        }
        if e.code == crate::error::Code::TooManyRequests {
            l = l.header("Retry-After", "1");
        }
        l
    }
}

/// Most bytes read and thrown away after an early answer.
const DRAIN_MAX_BYTES: usize = 64 << 20;
/// Longest time spent draining after an early answer.
const DRAIN_MAX_TIME: Duration = Duration::from_secs(5);

/// Write a local response (HEAD gets headers only). If the client was still sending a request
/// body, read and discard it for a bounded time so the answer is not lost to a reset.
pub async fn write(session: &mut Session, local: &Local) -> pingora::Result<()> {
    let mut resp = ResponseHeader::build(local.status, Some(local.headers.len() + 3))?;
    resp.insert_header(API_VERSION.0, API_VERSION.1)?;
    for (k, v) in &local.headers {
        resp.append_header(*k, v.as_str())?;
    }
    resp.insert_header("Content-Length", local.body.len().to_string())?;
    let head = session.req_header().method == http::Method::HEAD;
    let body_pending = !session.is_body_done();
    if body_pending {
        resp.insert_header("Connection", "close")?;
    }
    let no_body = head || local.body.is_empty();
    session
        .write_response_header(Box::new(resp), no_body)
        .await?;
    if !no_body {
        session
            .write_response_body(Some(local.body.clone()), true)
            .await?;
    }
    if body_pending {
        drain(session).await;
    }
    Ok(())
}

/// Read and discard the rest of the request body, within [`DRAIN_MAX_BYTES`] and [`DRAIN_MAX_TIME`].
pub async fn drain(session: &mut Session) {
    let deadline = tokio::time::Instant::now() + DRAIN_MAX_TIME;
    let mut read = 0usize;
    while read < DRAIN_MAX_BYTES {
        match tokio::time::timeout_at(deadline, session.downstream_session.read_request_body())
            .await
        {
            Ok(Ok(Some(chunk))) => read += chunk.len(),
            _ => break,
        }
    }
}
