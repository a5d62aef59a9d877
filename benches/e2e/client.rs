//! HTTP through `curl` (its own timers and transfer speeds, no client code of ours in the
//! measured path), and the registry operations the bench needs: uploads and manifest pushes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What `curl -w` reports after each transfer.
const WRITE_OUT: &str = "\n%{http_code} %{time_total} %{speed_download} %{size_download}\n";

/// One curl request.
pub struct Call {
    method: String,
    url: String,
    headers: Vec<String>,
    body: Body,
    keep_body: bool,
}

enum Body {
    None,
    /// `-T file`: streamed with `Content-Length`.
    File(PathBuf),
    /// The file on stdin, sent with `Transfer-Encoding: chunked` (docker's single PATCH).
    Chunked(PathBuf),
}

/// The answer.
#[derive(Debug, Default)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Seconds from start to the end of the transfer.
    pub time_total: f64,
    /// Bytes per second.
    pub speed_download: f64,
    pub size_download: u64,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn expect(self, what: &str, status: u16) -> Resp {
        assert_eq!(
            self.status,
            status,
            "{what}: HTTP {} {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        self
    }
}

impl Call {
    pub fn new(method: &str, url: &str) -> Call {
        Call {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: Body::None,
            keep_body: true,
        }
    }

    pub fn token(self, token: &str) -> Call {
        self.header(&format!("Authorization: Bearer {token}"))
    }

    pub fn header(mut self, h: &str) -> Call {
        self.headers.push(h.into());
        self
    }

    pub fn file(mut self, path: &Path) -> Call {
        self.body = Body::File(path.into());
        self
    }

    pub fn chunked(mut self, path: &Path) -> Call {
        self.body = Body::Chunked(path.into());
        self
    }

    /// Do not keep the response body (large downloads).
    pub fn discard_body(mut self) -> Call {
        self.keep_body = false;
        self
    }

    /// Per-transfer arguments; the body goes to `out`.
    fn args(&self, out: &Path) -> Vec<String> {
        // Bounded: no transfer here takes more than a minute, even 2 GiB.
        let mut a: Vec<String> = ["-sS", "--connect-timeout", "5", "--max-time", "300"]
            .map(String::from)
            .to_vec();
        match self.method.as_str() {
            "HEAD" => a.push("--head".into()),
            "GET" => {}
            m => a.extend(["-X".into(), m.into()]),
        }
        for h in &self.headers {
            a.extend(["-H".into(), h.clone()]);
        }
        match &self.body {
            Body::None => {}
            Body::File(p) => {
                a.extend(["-T".into(), p.display().to_string()]);
                a.extend(["-H".into(), "Expect:".into()]);
            }
            Body::Chunked(_) => a.extend(
                [
                    "-T",
                    "-",
                    "-H",
                    "Transfer-Encoding: chunked",
                    "-H",
                    "Expect:",
                ]
                .map(String::from),
            ),
        }
        a.extend(["-o".into(), out.display().to_string()]);
        a.extend(["-w".into(), WRITE_OUT.into(), self.url.clone()]);
        a
    }

    pub fn send(self) -> Resp {
        let body_file = tempfile::NamedTempFile::new().expect("temp file");
        let out = if self.keep_body {
            body_file.path().to_path_buf()
        } else {
            PathBuf::from("/dev/null")
        };
        let mut cmd = Command::new("curl");
        cmd.args(["-D", "-"]).args(self.args(&out));
        if let Body::Chunked(p) = &self.body {
            cmd.stdin(std::fs::File::open(p).expect("open upload file"));
        } else {
            cmd.stdin(Stdio::null());
        }
        let o = cmd.output().expect("curl is installed");
        let text = String::from_utf8_lossy(&o.stdout);
        let (head, stats) = text.trim_end().rsplit_once('\n').unwrap_or(("", &text));
        let mut r = parse_write_out(stats).unwrap_or_else(|| {
            panic!(
                "curl {} {}: {}",
                self.method,
                self.url,
                String::from_utf8_lossy(&o.stderr)
            )
        });
        r.headers = last_header_block(head);
        if self.keep_body {
            r.body = std::fs::read(body_file.path()).unwrap_or_default();
        }
        r
    }
}

/// Run `calls` at once (`curl --parallel --parallel-immediate`, one connection each); returns
/// (status, seconds) of each transfer, in completion order.
pub fn send_parallel(calls: &[Call]) -> Vec<(u16, f64)> {
    let mut args: Vec<String> = ["-Z", "--parallel-immediate", "--parallel-max"]
        .map(String::from)
        .to_vec();
    args.push(calls.len().to_string());
    for (i, c) in calls.iter().enumerate() {
        if i > 0 {
            args.push("--next".into());
        }
        args.extend(c.args(Path::new("/dev/null")));
    }
    let o = Command::new("curl")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("curl is installed");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(parse_write_out)
        .map(|r| (r.status, r.time_total))
        .collect()
}

fn parse_write_out(line: &str) -> Option<Resp> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() != 4 {
        return None;
    }
    Some(Resp {
        status: f[0].parse().ok()?,
        time_total: f[1].parse().ok()?,
        speed_download: f[2].parse().ok()?,
        size_download: f[3].parse().ok()?,
        ..Resp::default()
    })
}

/// Headers of the final response (after any `100 Continue`).
fn last_header_block(text: &str) -> Vec<(String, String)> {
    let start = text.rfind("HTTP/").unwrap_or(0);
    text[start..]
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// A `Location` made absolute against `base`.
fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_string()
    } else {
        format!("{base}{location}")
    }
}

fn with_digest(url: &str, digest: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}digest={digest}")
}

fn location(r: &Resp, base: &str) -> String {
    absolute(base, r.header("location").expect("a Location header"))
}

/// `POST /v2/<repo>/blobs/uploads/` → the session URL.
pub fn start_upload(base: &str, repo: &str, token: &str) -> String {
    let r = Call::new("POST", &format!("{base}/v2/{repo}/blobs/uploads/"))
        .token(token)
        .header("Content-Length: 0")
        .send()
        .expect("start upload", 202);
    location(&r, base)
}

/// A small blob: POST, then `PUT ?digest=` with the body.
pub fn push_blob(base: &str, repo: &str, token: &str, file: &Path, digest: &str) {
    let url = start_upload(base, repo, token);
    Call::new("PUT", &with_digest(&url, digest))
        .token(token)
        .header("Content-Type: application/octet-stream")
        .file(file)
        .send()
        .expect("PUT blob", 201);
}

/// Seconds spent in each request of a docker-style push.
#[derive(Debug, Clone, Copy)]
pub struct PushTime {
    pub patch: f64,
    pub put: f64,
}

/// docker's way: POST, one chunked PATCH with the whole layer, then the empty `PUT ?digest=`.
pub fn push_blob_chunked(
    base: &str,
    repo: &str,
    token: &str,
    file: &Path,
    digest: &str,
) -> PushTime {
    let url = start_upload(base, repo, token);
    let patch = Call::new("PATCH", &url)
        .token(token)
        .header("Content-Type: application/octet-stream")
        .chunked(file)
        .send()
        .expect("chunked PATCH", 202);
    let put = Call::new("PUT", &with_digest(&location(&patch, base), digest))
        .token(token)
        .header("Content-Length: 0")
        .send()
        .expect("final PUT", 201);
    PushTime {
        patch: patch.time_total,
        put: put.time_total,
    }
}

/// `PUT /v2/<repo>/manifests/<reference>`; returns `Docker-Content-Digest`.
pub fn put_manifest(
    base: &str,
    repo: &str,
    reference: &str,
    token: &str,
    file: &Path,
    media_type: &str,
) -> String {
    let r = Call::new("PUT", &format!("{base}/v2/{repo}/manifests/{reference}"))
        .token(token)
        .header(&format!("Content-Type: {media_type}"))
        .file(file)
        .send()
        .expect("PUT manifest", 201);
    r.header("docker-content-digest")
        .expect("Docker-Content-Digest")
        .to_string()
}

/// Check that a request answers `status` (the fixture works on this target).
pub fn check(call: Call, what: &str, status: u16) -> Resp {
    call.send().expect(what, status)
}
