//! Pure header logic for the proxied path: how the client reached us, the forwarding headers
//! sent upstream, `Location` rewriting, and stripping a refused mount from the query.

use url::Url;

/// `scheme` and `host[:port]` the client used to reach the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
}

impl Origin {
    /// Work out the origin. Client-sent `X-Forwarded-*` are only believed when the operator says
    /// the gateway sits behind a trusted proxy; otherwise the listener's scheme and `Host` count.
    pub fn of(
        listener_tls: bool,
        host_header: Option<&str>,
        fwd_proto: Option<&str>,
        fwd_host: Option<&str>,
        trust_forwarded: bool,
        fallback_host: &str,
    ) -> Origin {
        let valid = |h: &&str| {
            !h.is_empty()
                && h.bytes()
                    .all(|c| c.is_ascii_graphic() && c != b'/' && c != b'@')
        };
        let listener_scheme = if listener_tls { "https" } else { "http" };
        let mut scheme = listener_scheme.to_string();
        let mut host = host_header
            .filter(valid)
            .unwrap_or(fallback_host)
            .to_string();
        if trust_forwarded {
            if let Some(p) = fwd_proto.map(|p| p.split(',').next().unwrap_or("").trim()) {
                if p == "http" || p == "https" {
                    scheme = p.to_string();
                }
            }
            if let Some(h) = fwd_host
                .map(|h| h.split(',').next().unwrap_or("").trim())
                .filter(valid)
            {
                host = h.to_string();
            }
        }
        Origin { scheme, host }
    }

    pub fn base(&self) -> String {
        format!("{}://{}", self.scheme, self.host)
    }
}

/// Rewrite a `Location` that points at the upstream itself so that it points at the gateway.
/// Relative locations and redirects to other hosts (storage back-ends) are left alone.
pub fn rewrite_location(
    location: &str,
    upstream_authority: &str,
    origin: &Origin,
) -> Option<String> {
    let url = Url::parse(location).ok()?;
    let authority = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str()?),
        None => url.host_str()?.to_string(),
    };
    if authority != upstream_authority {
        return None;
    }
    let mut out = format!("{}{}", origin.base(), url.path());
    if let Some(q) = url.query() {
        out.push('?');
        out.push_str(q);
    }
    Some(out)
}

/// The request target without the `mount` and `from` query parameters.
pub fn strip_mount(path: &str, query: Option<&str>) -> String {
    let kept: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|kv| {
            let key = kv.split('=').next().unwrap_or("");
            !kv.is_empty() && key != "mount" && key != "from"
        })
        .collect();
    if kept.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_ignores_untrusted_forwarded_headers() {
        let o = Origin::of(
            false,
            Some("gw:5000"),
            Some("https"),
            Some("evil"),
            false,
            "x",
        );
        assert_eq!(
            o,
            Origin {
                scheme: "http".into(),
                host: "gw:5000".into()
            }
        );
        let o = Origin::of(
            false,
            Some("gw:5000"),
            Some("https"),
            Some("reg.example, other"),
            true,
            "x",
        );
        assert_eq!(o.base(), "https://reg.example");
        let o = Origin::of(true, None, None, None, false, "fallback:1");
        assert_eq!(o.base(), "https://fallback:1");
        let o = Origin::of(false, Some("a/b"), None, None, false, "fb");
        assert_eq!(o.host, "fb");
    }

    #[test]
    fn location_rewrite() {
        let o = Origin {
            scheme: "https".into(),
            host: "gw.example".into(),
        };
        assert_eq!(
            rewrite_location(
                "http://127.0.0.1:5001/v2/a/b/blobs/uploads/u?_state=x",
                "127.0.0.1:5001",
                &o
            )
            .as_deref(),
            Some("https://gw.example/v2/a/b/blobs/uploads/u?_state=x")
        );
        assert_eq!(
            rewrite_location("https://s3.example/bucket/x?sig=1", "127.0.0.1:5001", &o),
            None
        );
        assert_eq!(
            rewrite_location("/v2/a/b/blobs/uploads/u", "127.0.0.1:5001", &o),
            None
        );
    }

    #[test]
    fn mount_stripping() {
        assert_eq!(
            strip_mount("/v2/a/b/blobs/uploads/", Some("mount=sha256:x&from=c/d")),
            "/v2/a/b/blobs/uploads/"
        );
        assert_eq!(
            strip_mount("/p", Some("from=c/d&digest=sha256:1&mount=x")),
            "/p?digest=sha256:1"
        );
        assert_eq!(strip_mount("/p", None), "/p");
    }
}
