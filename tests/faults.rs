//! Faults, end to end: the upstream registry killed in the middle of a download and of an
//! upload, the upstream down, the API stopped (slow) and killed, clients that disconnect
//! mid-upload, a thousand concurrent connections, and, after all that, nothing acknowledged is
//! lost. Every wait is bounded: a hang fails the test instead of blocking the run.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use futures_util::stream;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const MIB: usize = 1024 * 1024;

/// The thousand-connection test runs alone: its sockets take ~2,000 ephemeral ports (a
/// restarted registry or API must get its old port back) and its RSS figures should not
/// carry other stacks' load. The other tests share.
/// (A tokio lock: the guard is held across awaits, and each test has its own runtime.)
static EXCLUSIVE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

async fn shared() -> tokio::sync::RwLockReadGuard<'static, ()> {
    EXCLUSIVE.read().await
}

async fn exclusive() -> tokio::sync::RwLockWriteGuard<'static, ()> {
    EXCLUSIVE.write().await
}

/// SIGSTOP a process and wait until every one of its threads is stopped: the group stop
/// takes effect thread by thread, and under load another thread can still answer a request
/// for a few milliseconds after `kill` returned.
fn stop_process(pid: u32) {
    signal(pid, "STOP");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let states: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .flatten()
            .map(|t| {
                let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
                // "pid (comm) S ...": the state follows the last ')'
                stat.rsplit_once(") ")
                    .and_then(|(_, rest)| rest.split(' ').next())
                    .unwrap_or("?")
                    .to_string()
            })
            .collect();
        if states.iter().all(|s| s == "T") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "process {pid} did not stop: {states:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Upload a blob in one request (`POST ?digest=` with the body); returns its digest.
async fn post_blob(stack: &Stack, repo: &str, data: &[u8]) -> String {
    let digest = digest_of(data);
    let r = client()
        .post(stack.url(&format!("/v2/{repo}/blobs/uploads/?digest={digest}")))
        .bearer_auth(DEV)
        .header("Content-Type", "application/octet-stream")
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    assert_eq!(status, 201, "{body}\n{}", stack.gateway_log());
    digest
}

/// Docker's upload: POST, one chunked PATCH without a length, PUT `?digest=`; returns the
/// status of the final PUT (after checking the PATCH was accepted).
async fn docker_upload(stack: &Stack, repo: &str, data: &[u8]) -> u16 {
    let loc = start_upload(stack, repo, DEV).await;
    let r = patch_chunked(&loc, data, 64 * 1024, DEV).await;
    if r.status() != 202 {
        let st = r.status().as_u16();
        eprintln!(
            "PATCH answered {st}: {}",
            r.text().await.unwrap_or_default()
        );
        return st;
    }
    let r = finish_upload(&location(&r), &digest_of(data), DEV).await;
    r.status().as_u16()
}

/// A streamed body (chunked, no length) of `data` in 64 KiB pieces: the first 2 MiB at once,
/// then one piece every `pause`; `sent` follows how many bytes the stream has yielded.
fn trickle(data: &[u8], pause: Duration, sent: Arc<AtomicUsize>) -> reqwest::Body {
    let data: Arc<[u8]> = data.into();
    reqwest::Body::wrap_stream(stream::unfold(0usize, move |off| {
        let (data, sent) = (data.clone(), sent.clone());
        async move {
            if off >= data.len() {
                return None;
            }
            if off >= 2 * MIB {
                tokio::time::sleep(pause).await;
            }
            let end = (off + 64 * 1024).min(data.len());
            sent.store(end, Ordering::SeqCst);
            Some((Ok::<_, std::io::Error>(data[off..end].to_vec()), end))
        }
    }))
}

/// A GET of the blob `data` in `repo` with `token` answers 200 with exactly `data`.
async fn assert_blob_served(stack: &Stack, repo: &str, data: &[u8], token: &str) {
    let (st, body) = get_blob(stack, repo, &digest_of(data), token).await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    assert!(
        body == data,
        "the blob served from {repo} differs ({} of {} bytes)",
        body.len(),
        data.len()
    );
}

fn assert_gateway_alive(stack: &mut Stack) {
    assert!(
        stack.gateway.child.try_wait().unwrap().is_none(),
        "the gateway exited: {}",
        stack.gateway_log()
    );
}

/// Start downloading `digest` (of `len` bytes) through the gateway, read a couple of MiB,
/// stall so the buffers fill, kill the registry, and read on: the client must see the body
/// cut with an error within a bounded time. Returns where the bytes received stop being the
/// blob's (`None`: every byte received was right).
async fn kill_registry_mid_download(
    stack: &mut Stack,
    repo: &str,
    digest: &str,
    data: &[u8],
) -> Option<usize> {
    let mut r = client()
        .get(stack.url(&format!("/v2/{repo}/blobs/{digest}")))
        .bearer_auth(DEV)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.content_length(), Some(data.len() as u64));
    let mut got: Vec<u8> = Vec::with_capacity(data.len());
    while got.len() < 2 * MIB {
        let c = tokio::time::timeout(Duration::from_secs(10), r.chunk())
            .await
            .expect("the first bytes of the blob did not come")
            .unwrap()
            .expect("the body ended early");
        got.extend_from_slice(&c);
    }
    // a slow reader: let every buffer between the registry and us fill up
    tokio::time::sleep(Duration::from_millis(500)).await;
    stack.registry.kill();
    let killed = Instant::now();
    let end = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match r.chunk().await {
                Ok(Some(c)) => {
                    got.extend_from_slice(&c);
                    // still slow-ish, but not so slow that the test takes long
                    if got.len() % (4 * MIB) < c.len() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "the download hung after the registry was killed ({} of {} bytes)",
            got.len(),
            data.len()
        )
    });
    eprintln!(
        "download after the kill: {} of {} bytes, ended {:?} after {:?}",
        got.len(),
        data.len(),
        end.as_ref().map_err(ToString::to_string),
        killed.elapsed()
    );
    assert!(
        got.len() < data.len(),
        "every byte arrived although the registry was killed: the test did not cut anything"
    );
    assert!(
        end.is_err(),
        "a truncated body ({} of {} bytes) ended without an error: the client cannot tell",
        got.len(),
        data.len()
    );
    let first_bad = got.iter().zip(data.iter()).position(|(a, b)| a != b);
    if let Some(at) = first_bad {
        eprintln!(
            "{} of the {} bytes received are not the blob's, from offset {at}: {:?}",
            got.len() - at,
            got.len(),
            String::from_utf8_lossy(&got[at..(at + 400).min(got.len())])
        );
    }
    first_bad
}

// 1. ------------------------------------------------------------------------------------------

#[tokio::test]
async fn registry_killed_mid_blob_download_then_the_blob_is_served_again() {
    let _serial = shared().await;
    let mut stack = Stack::start();
    let data = noise(101, 64 * MIB);
    let digest = post_blob(&stack, "demo/big", &data).await;

    // (whether the bytes before the cut are all the blob's: the next test)
    kill_registry_mid_download(&mut stack, "demo/big", &digest, &data).await;
    assert_gateway_alive(&mut stack);
    // while the registry is down the same blob is a clean 503
    let (st, _) = get_blob(&stack, "demo/big", &digest, DEV).await;
    assert_eq!(st, 503);

    stack.restart_registry();
    assert_blob_served(&stack, "demo/big", &data, DEV).await;
    // and again, on a pooled connection
    let (st, body) = get_blob(&stack, "demo/big", &digest, DEV).await;
    assert_eq!((st, digest_of(&body)), (200, digest));
    assert_gateway_alive(&mut stack);
}

#[tokio::test]
async fn a_download_cut_by_the_registry_dying_carries_only_blob_bytes() {
    let _serial = shared().await;
    let mut stack = Stack::start();
    let data = noise(110, 64 * MIB);
    let digest = post_blob(&stack, "demo/cut", &data).await;
    let foreign = kill_registry_mid_download(&mut stack, "demo/cut", &digest, &data).await;
    let errors: Vec<String> = stack
        .gateway_log()
        .lines()
        .filter(|l| l.contains("proxy error") || l.contains("route=\"blob\""))
        .map(str::to_string)
        .collect();
    assert_eq!(
        foreign,
        None,
        "a client that resumes from the bytes it has (Range) would build a corrupt blob; \
         gateway log:\n{}",
        errors.join("\n")
    );
}

// 2. ------------------------------------------------------------------------------------------

#[tokio::test]
async fn registry_killed_mid_chunked_patch_then_a_new_upload_works() {
    let _serial = shared().await;
    let mut stack = Stack::start();
    let data = noise(102, 24 * MIB);
    let loc = start_upload(&stack, "demo/patch", DEV).await;

    // docker's single chunked PATCH: 2 MiB at once, then 64 KiB every 20 ms (at most ~8 s)
    let sent = Arc::new(AtomicUsize::new(0));
    let body = trickle(&data, Duration::from_millis(20), sent.clone());
    let c = client();
    let patch = tokio::spawn(async move {
        c.patch(&loc)
            .bearer_auth(DEV)
            .header("Content-Type", "application/octet-stream")
            .body(body)
            .send()
            .await
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while sent.load(Ordering::SeqCst) < 3 * MIB {
        assert!(Instant::now() < deadline, "the PATCH body does not flow");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stack.registry.kill();
    let killed = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(15), patch)
        .await
        .expect("the PATCH hung after the registry was killed")
        .unwrap();
    let took = killed.elapsed();
    let at = sent.load(Ordering::SeqCst);
    match answer {
        Ok(r) => {
            let (st, code, msg) = error_of(r).await;
            eprintln!("PATCH answered {st} {code} {msg:?} after {took:?}, {at} bytes sent");
            assert!(
                st.as_u16() >= 500,
                "the PATCH succeeded ({st}) although the registry died"
            );
            assert_eq!(code, "UNAVAILABLE", "{msg}");
            assert!(msg.contains("upstream"), "{msg}");
        }
        Err(e) => eprintln!("PATCH failed with {e} after {took:?}, {at} bytes sent"),
    }
    assert!(
        took < Duration::from_secs(10),
        "the client learnt of the failure only after {took:?}"
    );
    assert!(
        at < data.len(),
        "the whole body was sent before the gateway gave up"
    );
    assert_gateway_alive(&mut stack);

    stack.restart_registry();
    assert_eq!(docker_upload(&stack, "demo/patch", &data).await, 201);
    assert_blob_served(&stack, "demo/patch", &data, DEV).await;
}

// 3. ------------------------------------------------------------------------------------------

#[tokio::test]
async fn registry_down_is_503_unavailable_and_readyz_follows() {
    let _serial = shared().await;
    let mut stack = Stack::start();
    let data = noise(103, 100_000);
    let digest = post_blob(&stack, "demo/down", &data).await;
    let blob = format!("/v2/demo/down/blobs/{digest}");
    assert_eq!(status_of(&stack, "/readyz").await, 200);

    stack.registry.kill();
    let t = Instant::now();
    let r = stack.get(&blob, DEV).await;
    assert_eq!(
        r.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let (st, code, msg) = error_of(r).await;
    assert_eq!(
        (st, code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
        "{msg}"
    );
    assert!(
        msg.contains("upstream registry is unavailable") && msg.contains("try again later"),
        "{msg}"
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    // HEAD and an upload start too
    let r = stack.head(&blob, DEV).await;
    assert_eq!(r.status(), 503);
    let r = stack.post("/v2/demo/down/blobs/uploads/", DEV).await;
    assert_eq!(error_of(r).await.1, "UNAVAILABLE");
    // readiness says why; liveness and the locally answered base stay up
    let r = client().get(stack.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let text = r.text().await.unwrap();
    assert!(text.contains("upstream"), "{text}");
    assert_eq!(status_of(&stack, "/healthz").await, 200);
    let r = stack.get("/v2/", DEV).await;
    assert_eq!(r.status(), 200);

    stack.restart_registry();
    assert_blob_served(&stack, "demo/down", &data, DEV).await;
    assert_eq!(status_of(&stack, "/readyz").await, 200);
    let r = stack.post("/v2/demo/down/blobs/uploads/", DEV).await;
    assert_eq!(r.status(), 202);
}

// 4. ------------------------------------------------------------------------------------------

#[tokio::test]
async fn api_stopped_times_out_to_503_and_api_killed_is_503_until_restarted() {
    let _serial = shared().await;
    let mut stack = Stack::start();
    let data = noise(104, 50_000);
    let mut digest = String::new();
    for repo in ["demo/f1", "demo/f2", "demo/f3"] {
        digest = post_blob(&stack, repo, &data).await;
    }
    let blob = |repo: &str| format!("/v2/{repo}/blobs/{digest}");
    // a cached allow for DEV on demo/f3 (pull)
    assert_eq!(get_blob(&stack, "demo/f3", &digest, DEV).await.0, 200);

    // --- the API hangs (SIGSTOP): every call times out after timeout_ms = 2000
    let pid = stack.cluster.child.id();
    stop_process(pid);
    let t = Instant::now();
    let r = stack.get(&blob("demo/f1"), VIEWER).await;
    let took = t.elapsed();
    let (st, code, msg) = error_of(r).await;
    let stopped_result = (st, code.clone(), msg.clone(), took);
    // a token never seen before: /v2/ verifies it with the API
    let t = Instant::now();
    let base = stack.get("/v2/", READER_ALL).await;
    let base_took = t.elapsed();
    let (base_st, base_code, _) = error_of(base).await;
    // what does not need the API keeps working meanwhile
    let health = status_of(&stack, "/healthz").await;
    let cached = get_blob(&stack, "demo/f3", &digest, DEV).await.0;
    let t = Instant::now();
    let ready = status_of(&stack, "/readyz").await;
    let ready_took = t.elapsed();
    signal(pid, "CONT");
    eprintln!(
        "API stopped: blob {stopped_result:?}; /v2/ {base_st} {base_code} in {base_took:?}; \
         /readyz {ready} in {ready_took:?}"
    );
    assert_eq!(
        (st, code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
        "{msg}"
    );
    assert!(msg.contains("OpenShift API"), "{msg}");
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert_eq!(
        (base_st, base_code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE")
    );
    assert!(base_took < Duration::from_secs(10), "{base_took:?}");
    assert_eq!(health, 200);
    assert_eq!(cached, 200, "a still-valid cached allow must keep working");
    assert_eq!(ready, 503);
    assert!(ready_took < Duration::from_secs(10), "{ready_took:?}");

    // continued: the same requests work (failures were not cached)
    assert_blob_served(&stack, "demo/f1", &data, VIEWER).await;
    let r = stack.get("/v2/", READER_ALL).await;
    assert_eq!(r.status(), 200);
    assert_eq!(status_of(&stack, "/readyz").await, 200);

    // --- the API dies
    stack.cluster.kill();
    let t = Instant::now();
    let r = stack.get(&blob("demo/f2"), VIEWER).await;
    let (st, code, msg) = error_of(r).await;
    assert_eq!(
        (st, code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
        "{msg}"
    );
    assert!(msg.contains("OpenShift API"), "{msg}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(status_of(&stack, "/readyz").await, 503);
    // cached: still served
    assert_eq!(get_blob(&stack, "demo/f1", &digest, VIEWER).await.0, 200);

    stack.restart_api();
    assert_blob_served(&stack, "demo/f2", &data, VIEWER).await;
    assert_eq!(status_of(&stack, "/readyz").await, 200);
    // the image API (manifests, tags) works again too
    let r = stack.get("/v2/demo/f2/tags/list", VIEWER).await;
    assert_eq!(error_of(r).await.1, "NAME_UNKNOWN");
    assert_gateway_alive(&mut stack);
}

// 5. ------------------------------------------------------------------------------------------

/// Start a PATCH on a raw connection, send `bytes` of `data`, and drop the connection
/// (with a reset when `reset`). `chunked`: docker's chunked PATCH; otherwise a
/// `Content-Length` of the whole `data` is declared.
async fn abandon_patch(
    stack: &Stack,
    loc: &str,
    data: &[u8],
    bytes: usize,
    chunked: bool,
    reset: bool,
) {
    let u = url::Url::parse(loc).unwrap();
    let target = match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    };
    let mut s = TcpStream::connect(stack.host()).await.unwrap();
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_string()
    } else {
        format!("Content-Length: {}", data.len())
    };
    let head = format!(
        "PATCH {target} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {DEV}\r\n\
         Content-Type: application/octet-stream\r\n{framing}\r\n\r\n",
        stack.host()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    for c in data[..bytes].chunks(64 * 1024) {
        if chunked {
            s.write_all(format!("{:x}\r\n", c.len()).as_bytes())
                .await
                .unwrap();
            s.write_all(c).await.unwrap();
            s.write_all(b"\r\n").await.unwrap();
        } else {
            s.write_all(c).await.unwrap();
        }
    }
    s.flush().await.unwrap();
    // let the gateway forward what it got
    tokio::time::sleep(Duration::from_millis(300)).await;
    if reset {
        // a zero linger makes the close a reset (it never blocks)
        #[allow(deprecated)]
        s.set_linger(Some(Duration::ZERO)).unwrap();
    }
    drop(s);
}

#[tokio::test]
async fn clients_disconnecting_mid_upload_do_not_hurt_the_gateway() {
    let _serial = shared().await;
    // one write slot: a request that is never finished would hold it and starve every push
    let mut stack =
        Stack::start_with("\n[overload]\nwrite_max_running = 1\nwrite_max_in_queue = 0\n");
    let data = noise(105, 8 * MIB);
    for (chunked, reset) in [(true, false), (true, true), (false, false), (false, true)] {
        // a session may be refused for a moment while the last abandoned request winds down
        let deadline = Instant::now() + Duration::from_secs(10);
        let loc = loop {
            let r = stack.post("/v2/demo/gone/blobs/uploads/", DEV).await;
            if r.status() == 202 {
                break location(&r);
            }
            assert_eq!(r.status(), 429);
            assert!(
                Instant::now() < deadline,
                "the write slot of an abandoned upload was never released"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        abandon_patch(&stack, &loc, &data, 3 * MIB, chunked, reset).await;
        assert_gateway_alive(&mut stack);
        assert_eq!(status_of(&stack, "/healthz").await, 200);
    }
    let r = stack.get("/v2/", DEV).await;
    assert_eq!(r.status(), 200);

    // a complete upload of the same blob works (within a few seconds)
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = stack.post("/v2/demo/gone/blobs/uploads/", DEV).await;
        if r.status() == 202 {
            break;
        }
        assert!(Instant::now() < deadline, "{}", r.status());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(docker_upload(&stack, "demo/gone", &data).await, 201);
    assert_blob_served(&stack, "demo/gone", &data, DEV).await;
    // each abandoned PATCH was logged as one request
    let log = stack.gateway_log();
    let patches = log
        .lines()
        .filter(|l| l.contains("method=PATCH") && l.contains("repo=\"demo/gone\""))
        .count();
    assert!(patches >= 5, "{log}");
}

/// docker uploads `data` (2.5 MiB) to `repo` in `shared` (3 MiB quota) again: that works only
/// once the earlier, `what` upload released its reservation; the blob is then served.
async fn assert_reservation_released(stack: &Stack, repo: &str, data: &[u8], what: &str) {
    let st = docker_upload(stack, repo, data).await;
    assert_eq!(
        st,
        201,
        "the {what} upload still holds its reservation:\n{}",
        stack.gateway_log()
    );
    assert_blob_served(stack, repo, data, DEV).await;
}

/// Read from `s` until the gateway closes it (or `limit` passes); the bytes read.
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> usize {
    let mut total = 0;
    let mut buf = vec![0u8; 256 * 1024];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return total,
            Ok(Ok(n)) => total += n,
            Err(_) => panic!("the connection was still open after {limit:?} ({total} bytes read)"),
        }
    }
}

#[tokio::test]
async fn stalled_clients_are_cut_off_after_the_client_timeout() {
    let _serial = shared().await;
    // one write slot, so a stalled upload that kept its request alive would starve every push
    let stack = Stack::start_opts(Opts {
        extra: "\n[overload]\nwrite_max_running = 1\nwrite_max_in_queue = 0\n",
        gateway_extra: "client_timeout_secs = 1\n".into(),
        ..Opts::default()
    });
    let data = noise(110, 32 * MIB);
    let digest = upload_blob(&stack, "demo/stall", &data, DEV).await;

    // an upload that stops sending: 1 of 4 MiB, then nothing, connection left open
    let loc = start_upload(&stack, "demo/stall", DEV).await;
    let target = url::Url::parse(&loc).unwrap();
    let target = format!("{}?{}", target.path(), target.query().unwrap_or(""));
    let mut up = TcpStream::connect(stack.host()).await.unwrap();
    let head = format!(
        "PATCH {target} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {DEV}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        stack.host(),
        4 * MIB
    );
    up.write_all(head.as_bytes()).await.unwrap();
    up.write_all(&data[..MIB]).await.unwrap();
    let stalled_at = Instant::now();
    // the gateway gives up on it: the connection closes and the write slot is free again
    read_until_closed(&mut up, Duration::from_secs(10)).await;
    assert!(stalled_at.elapsed() >= Duration::from_millis(900));
    // (the slot is given back as the request winds down, a moment after the socket closes)
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = stack.post("/v2/demo/stall/blobs/uploads/", DEV).await;
        if r.status() == 202 {
            break;
        }
        assert_eq!(r.status(), 429);
        assert!(
            Instant::now() < deadline,
            "the stalled upload kept its write slot: {}",
            stack.gateway_log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // a download that stops reading: the gateway's writes stall, it gives up after the timeout
    let mut down = TcpStream::connect(stack.host()).await.unwrap();
    let get = format!(
        "GET /v2/demo/stall/blobs/{digest} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {DEV}\r\n\r\n",
        stack.host()
    );
    down.write_all(get.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let got = read_until_closed(&mut down, Duration::from_secs(10)).await;
    assert!(got < data.len(), "{got} bytes: the whole blob was sent");
    let log = stack.gateway_log();
    assert!(
        log.lines().any(|l| l.contains("method=GET")
            && l.contains("repo=\"demo/stall\"")
            && l.contains("error=")),
        "{log}"
    );
    // and serves normally afterwards
    assert_eq!(
        get_blob(&stack, "demo/stall", &digest, DEV).await,
        (200, data)
    );
}

#[tokio::test]
async fn a_client_disconnecting_mid_upload_releases_its_quota_reservation() {
    let _serial = shared().await;
    // namespace `shared` has a 3 MiB `openshift.io/image-storage` quota and no images
    let mut stack = Stack::start();
    let data = noise(106, 2 * MIB + 512 * 1024);
    let loc = start_upload(&stack, "shared/gone", DEV).await;
    abandon_patch(&stack, &loc, &data, 2 * MIB, true, false).await;
    assert_gateway_alive(&mut stack);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // docker retries the layer with a new session: 2.5 MiB fit in the 3 MiB quota
    assert_reservation_released(&stack, "shared/gone", &data, "abandoned").await;
}

#[tokio::test]
async fn an_upload_cut_by_the_registry_dying_releases_its_quota_reservation() {
    let _serial = shared().await;
    let mut stack = Stack::start();
    let data = noise(107, 2 * MIB + 512 * 1024);
    let loc = start_upload(&stack, "shared/cut", DEV).await;
    // 2 MiB at once, then a trickle that the kill interrupts
    let body = trickle(&data, Duration::from_millis(50), Arc::default());
    let c = client();
    let patch = tokio::spawn(async move {
        c.patch(&loc)
            .bearer_auth(DEV)
            .body(body)
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    stack.registry.kill();
    let answer = tokio::time::timeout(Duration::from_secs(15), patch)
        .await
        .expect("the PATCH hung")
        .unwrap();
    assert!(answer.as_ref().map_or(true, |s| *s >= 500), "{answer:?}");
    stack.restart_registry();
    assert_reservation_released(&stack, "shared/cut", &data, "failed").await;
}

// 6. ------------------------------------------------------------------------------------------

/// One `GET path` on a kept-alive connection; the status (the body is read and dropped).
async fn get_on<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut BufReader<S>,
    host: &str,
    path: &str,
) -> std::io::Result<u16> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {DEV}\r\n\r\n");
    conn.get_mut().write_all(req.as_bytes()).await?;
    let mut line = String::new();
    conn.read_line(&mut line).await?;
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if conn.read_line(&mut h).await? == 0 {
            return Err(std::io::Error::other("closed in the headers"));
        }
        if h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).await?;
    Ok(status)
}

/// Open `n` connections to the gateway: half stay idle, half send `rounds` `GET /v2/` each
/// (kept alive). While all are open, a new client and a few of the idle connections are
/// served. Returns how many requests succeeded, and the gateway's peak RSS (KiB).
async fn thousand_connections(stack: &Stack, n: usize, rounds: usize) -> (usize, u64) {
    let host = stack.host();
    let pid = stack.gateway.child.id();
    let started = Instant::now();
    let mut idle = Vec::with_capacity(n / 2);
    for _ in 0..n / 2 {
        idle.push(
            tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&host))
                .await
                .expect("connect timed out")
                .expect("connect failed"),
        );
    }
    let mut tasks = Vec::with_capacity(n - n / 2);
    for _ in 0..n - n / 2 {
        let host = host.clone();
        tasks.push(tokio::spawn(async move {
            let s = TcpStream::connect(&host).await?;
            let mut conn = BufReader::new(s);
            let mut ok = 0;
            for _ in 0..rounds {
                if get_on(&mut conn, &host, "/v2/").await? == 200 {
                    ok += 1;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok::<_, std::io::Error>((ok, conn))
        }));
    }
    let mut active = Vec::with_capacity(tasks.len());
    let mut errors = Vec::new();
    let mut ok_total = 0;
    for t in tasks {
        match tokio::time::timeout(Duration::from_secs(60), t).await {
            Ok(Ok(Ok((ok, conn)))) => {
                ok_total += ok;
                active.push(conn);
            }
            Ok(Ok(Err(e))) => errors.push(e.to_string()),
            Ok(Err(e)) => errors.push(e.to_string()),
            Err(_) => errors.push("timed out".into()),
        }
    }
    let peak = vm_rss_kib(pid);
    eprintln!(
        "{n} connections ({} idle), {ok_total} requests OK in {:?}; gateway RSS {peak} KiB",
        idle.len(),
        started.elapsed()
    );
    assert!(
        errors.is_empty(),
        "{} connections failed: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    // with every connection still open, a new client is served
    let r = stack.get("/v2/", DEV).await;
    assert_eq!(r.status(), 200);
    // and idle connections (never used so far) are still served
    for s in idle.iter_mut().take(20) {
        let mut conn = BufReader::new(s);
        let status = tokio::time::timeout(Duration::from_secs(5), get_on(&mut conn, &host, "/v2/"))
            .await
            .expect("an idle connection was not answered")
            .expect("an idle connection failed");
        assert_eq!(status, 200);
    }
    (ok_total, peak)
}

/// The gateway's RSS once it settles (at most `limit` KiB), within 15 s; the last value.
async fn settled_rss(stack: &Stack, limit: u64) -> u64 {
    let pid = stack.gateway.child.id();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = stack.get("/v2/", DEV).await;
        assert_eq!(r.status(), 200);
        let rss = vm_rss_kib(pid);
        if rss <= limit || Instant::now() > deadline {
            return rss;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_connections_idle_and_active() {
    let _serial = exclusive().await;
    let mut stack = Stack::start();
    let pid = stack.gateway.child.id();
    // the test process holds one end of each connection, the gateway the other (it inherits
    // our limit); leave room for everything else
    let limit = open_files_limit();
    let n = 1000usize.min(limit.saturating_sub(200) as usize);
    assert!(
        n >= 200,
        "open-files limit {limit} is too low for this test"
    );
    if n < 1000 {
        eprintln!("open-files limit {limit}: using {n} connections");
    }
    // warm up (token verified, caches filled), then the baseline
    for _ in 0..20 {
        let r = stack.get("/v2/", DEV).await;
        assert_eq!(r.status(), 200);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = vm_rss_kib(pid);
    let rounds = 5;
    let active = n - n / 2;

    let (ok, peak) = thousand_connections(&stack, n, rounds).await;
    assert_eq!(ok, active * rounds);
    assert_gateway_alive(&mut stack);
    // serves normally, and the memory goes back to the baseline (freed memory is returned to
    // the system: src/memory.rs)
    let settled = baseline + 16 * 1024;
    let after = settled_rss(&stack, settled).await;
    eprintln!("RSS: baseline {baseline} KiB, peak {peak} KiB, after closing {after} KiB");
    assert!(
        after <= settled,
        "RSS {after} KiB after the connections closed, baseline {baseline} KiB, peak {peak} KiB"
    );
    // twice more: no growth with each batch of connections (what a per-connection leak does)
    for _ in 0..2 {
        let (ok, _) = thousand_connections(&stack, n, rounds).await;
        assert_eq!(ok, active * rounds);
    }
    let again = settled_rss(&stack, settled).await;
    eprintln!("RSS after the second and third batch: {again} KiB");
    assert!(
        again <= settled,
        "RSS {again} KiB after three batches of {n} connections, baseline {baseline} KiB"
    );
    let data = noise(108, 300_000);
    let digest = post_blob(&stack, "demo/after", &data).await;
    assert_eq!(get_blob(&stack, "demo/after", &digest, DEV).await.0, 200);
    assert_gateway_alive(&mut stack);
}

// 7. ------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_after_the_faults() {
    let _serial = shared().await;
    let mut stack = Stack::start();
    let src = tempfile::tempdir().unwrap();
    let manifest = oci_image(src.path(), "v1", 21, &[300_000, 2_000_000, 40_000]);
    let (ok, out) = push(
        &stack,
        src.path(),
        "demo/keep",
        &format!("--dest-registry-token={DEV}"),
    );
    assert!(ok, "push failed: {out}\n{}", stack.gateway_log());

    // fault: the registry dies in the middle of a download, and comes back
    let big = noise(109, 64 * MIB);
    let big_digest = post_blob(&stack, "demo/big", &big).await;
    kill_registry_mid_download(&mut stack, "demo/big", &big_digest, &big).await;
    stack.restart_registry();

    // fault: the API hangs, then continues
    let pid = stack.cluster.child.id();
    stop_process(pid);
    let r = client()
        .get(stack.url("/v2/demo/keep/tags/list"))
        .bearer_auth(VIEWER)
        .send()
        .await;
    signal(pid, "CONT");
    assert_eq!(error_of(r.unwrap()).await.0, 503);

    // fault: a client drops a push half-way
    let loc = start_upload(&stack, "demo/keep", DEV).await;
    abandon_patch(&stack, &loc, &big, 4 * MIB, true, true).await;

    // fault: the API dies and comes back
    stack.cluster.kill();
    let r = stack.get("/v2/demo/keep/manifests/v1", READER_ALL).await;
    assert_eq!(r.status(), 503);
    stack.restart_api();

    // fault: the registry dies while idle, and comes back
    stack.registry.kill();
    stack.restart_registry();

    // everything acknowledged is still there, byte for byte
    let r = stack.get("/v2/demo/keep/tags/list", DEV).await;
    assert_eq!(r.status(), 200);
    let tags: Value = r.json().await.unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["v1"]));
    let back = tempfile::tempdir().unwrap();
    let (ok, out) = pull(
        &stack,
        "demo/keep",
        back.path(),
        &format!("--src-registry-token={VIEWER}"),
    );
    assert!(ok, "pull failed: {out}\n{}", stack.gateway_log());
    assert_eq!(oci_manifest_digest(back.path(), "v1"), manifest);
    assert_eq!(
        tree_digests(&src.path().join("blobs")),
        tree_digests(&back.path().join("blobs")),
        "blobs differ"
    );
    assert_blob_served(&stack, "demo/big", &big, DEV).await;
    assert_gateway_alive(&mut stack);
}
