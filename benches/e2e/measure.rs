//! The measurements, one function per section of the report.

use std::path::Path;

use crate::client::{self, Call};
use crate::data::{self, small_request_url, Fixture, Small, ACCEPT, MIB};
use crate::load::{self, Run};
use crate::procs;
use crate::report::{check, median, mib, ms, num, percentile, ratio, signed_ms, Report};
use crate::stack::{cold_token, Stack, Target, NAMESPACE, USER_TOKEN};
use crate::{Opts, Tools};

/// Everything a measurement needs.
pub struct Bench<'a> {
    pub stack: &'a Stack,
    pub fixture: &'a Fixture,
    pub opts: &'a Opts,
    pub tools: &'a Tools,
    pub dir: &'a Path,
}

/// Numbers the targets are checked against (medians).
#[derive(Default)]
pub struct Goals {
    /// One row per (request, connections).
    pub small: Vec<SmallRow>,
    /// Bytes per second, per target in `Target::ALL` order.
    pub get: [f64; 3],
    pub push: [f64; 3],
    /// SelfSubjectAccessReviews for N concurrent first requests of one token, one access.
    pub cold_reviews: u64,
    pub cold_concurrency: usize,
    pub peak_rss: Option<u64>,
    pub rss_bytes: u64,
}

pub struct SmallRow {
    pub kind: Small,
    pub conns: usize,
    pub rps: [f64; 3],
    pub p50: [f64; 3],
    pub p99: [f64; 3],
    pub failed: u64,
    /// API requests the gateway made per request answered.
    pub api_per_request: f64,
    /// CPU µs per request answered: registry (direct runs), nginx, gateway, API (gateway runs).
    pub cpu_us: [f64; 4],
}

fn idx(t: Target) -> usize {
    Target::ALL.iter().position(|x| *x == t).unwrap_or(0)
}

pub fn run_all(b: &Bench, r: &mut Report) -> Goals {
    let mut g = Goals::default();
    eprintln!("small requests");
    small_requests(b, r, &mut g);
    eprintln!("blob GET and push");
    blobs(b, r, &mut g);
    eprintln!("cold authorization");
    cold_authorization(b, r, &mut g);
    eprintln!("gateway peak RSS");
    peak_rss(b, r, &mut g);
    g
}

// ---------------------------------------------------------------- small requests

fn small_run(b: &Bench, t: Target, kind: Small, conns: usize, secs: f64) -> Run {
    let url = small_request_url(&b.stack.base(t), b.fixture, kind);
    let auth = format!("Authorization: Bearer {USER_TOKEN}");
    let mut headers = vec![auth.as_str()];
    if kind == Small::GetManifest {
        headers.push(ACCEPT);
    }
    load::oha(&b.tools.oha, kind.method(), &url, &headers, conns, secs)
}

fn small_requests(b: &Bench, r: &mut Report, g: &mut Goals) {
    let o = b.opts;
    let cases: Vec<(Small, usize)> = Small::ALL
        .iter()
        .flat_map(|k| o.conns.iter().map(move |c| (*k, *c)))
        .collect();
    // Warm connections, pools and caches; not recorded.
    let most = o.conns.iter().copied().max().unwrap_or(1);
    for kind in Small::ALL {
        for t in Target::ALL {
            small_run(b, t, kind, most, o.warmup_secs);
        }
    }
    // runs[case][target]; the gateway's API requests per answered request; CPU µs per
    // answered request of registry, nginx, gateway, API (in the runs where they serve).
    let mut runs: Vec<[Vec<Run>; 3]> = cases.iter().map(|_| Default::default()).collect();
    let mut api: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    let mut cpu: Vec<[Vec<f64>; 4]> = cases.iter().map(|_| Default::default()).collect();
    for round in 0..o.small_rounds {
        for (i, &(kind, conns)) in cases.iter().enumerate() {
            for t in Target::order(round) {
                let calls_before = (t == Target::Gateway).then(|| b.stack.api_stats());
                let cpu_before = b.stack.cpu();
                let run = small_run(b, t, kind, conns, o.small_secs);
                let used = b.stack.cpu().since(&cpu_before);
                let per = |secs: f64| secs * 1e6 / run.ok.max(1) as f64;
                match t {
                    Target::Direct => cpu[i][0].push(per(used.registry)),
                    Target::Nginx => cpu[i][1].push(per(used.nginx)),
                    Target::Gateway => {
                        cpu[i][2].push(per(used.gateway));
                        cpu[i][3].push(per(used.api));
                    }
                }
                if let Some(before) = calls_before {
                    let calls = b.stack.api_stats().since(&before).total();
                    api[i].push(calls as f64 / run.ok.max(1) as f64);
                }
                runs[i][idx(t)].push(run);
            }
        }
    }
    g.small = cases
        .iter()
        .zip(runs.iter().zip(&api).zip(&cpu))
        .map(|(&(kind, conns), ((per_target, api), cpu))| {
            let m = |f: fn(&Run) -> f64| -> [f64; 3] {
                std::array::from_fn(|t| median(per_target[t].iter().map(f).collect()))
            };
            SmallRow {
                kind,
                conns,
                rps: m(|x| x.rps),
                p50: m(|x| x.p50_ms),
                p99: m(|x| x.p99_ms),
                failed: per_target.iter().flatten().map(|x| x.failed).sum(),
                api_per_request: median(api.clone()),
                cpu_us: std::array::from_fn(|k| median(cpu[k].clone())),
            }
        })
        .collect();
    small_tables(b, r, &g.small);
}

fn small_tables(b: &Bench, r: &mut Report, rows: &[SmallRow]) {
    let o = b.opts;
    r.heading("Small authorized requests (warm decision cache)");
    r.para(&format!(
        "oha (one thread), keep-alive connections, {} s per run, {} round(s) after an \
         unrecorded warm-up, `Authorization: Bearer` on every request. Through the gateway the manifest comes from the OpenShift image API; \
         directly and through nginx from the registry (the gateway wrote it there by digest). \
         `GET /v2/` is answered by the gateway itself (cached token check), so through the \
         gateway it never reaches the registry.",
        o.small_secs, o.small_rounds
    ));
    let (g, d, n) = (
        idx(Target::Gateway),
        idx(Target::Direct),
        idx(Target::Nginx),
    );
    let rps_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|x| {
            vec![
                x.kind.label().into(),
                x.conns.to_string(),
                num(x.rps[d]),
                num(x.rps[n]),
                num(x.rps[g]),
                ratio(x.rps[g], x.rps[d]),
                ratio(x.rps[g], x.rps[n]),
                format!("{:.2}", x.api_per_request),
                x.failed.to_string(),
            ]
        })
        .collect();
    r.para("Requests per second:");
    r.table(
        &[
            "request",
            "conns",
            "direct",
            "nginx",
            "gateway",
            "gateway/direct",
            "gateway/nginx",
            "API calls per gateway request",
            "non-2xx",
        ],
        &rps_rows,
    );
    let lat_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|x| {
            let pair = |t: usize| format!("{} / {}", ms(x.p50[t]), ms(x.p99[t]));
            vec![
                x.kind.label().into(),
                x.conns.to_string(),
                pair(d),
                pair(n),
                pair(g),
                signed_ms(x.p50[g] - x.p50[d]),
                signed_ms(x.p50[g] - x.p50[n]),
                signed_ms(x.p99[g] - x.p99[d]),
            ]
        })
        .collect();
    let cpu_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|x| {
            let c = x.cpu_us;
            vec![
                x.kind.label().into(),
                x.conns.to_string(),
                num(c[0]),
                num(c[1]),
                num(c[2]),
                num(c[3]),
                ratio(c[2], c[1]),
            ]
        })
        .collect();
    r.para(
        "CPU per answered request, µs (user + system from /proc, all threads; the registry's \
         in the direct runs, nginx's master + workers, the gateway's and the API's in the \
         gateway runs). This is the cost the proxy adds even when the registry is the \
         bottleneck:",
    );
    r.table(
        &[
            "request",
            "conns",
            "registry (direct)",
            "nginx",
            "gateway",
            "API (gateway's calls)",
            "gateway/nginx",
        ],
        &cpu_rows,
    );
    r.para("Latency, p50 / p99 in ms:");
    r.table(
        &[
            "request",
            "conns",
            "direct",
            "nginx",
            "gateway",
            "p50 gateway − direct",
            "p50 gateway − nginx",
            "p99 gateway − direct",
        ],
        &lat_rows,
    );
}

// ---------------------------------------------------------------- blobs

fn blobs(b: &Bench, r: &mut Report, g: &mut Goals) {
    let o = b.opts;
    let fx = b.fixture;
    let gib = fx.big.size as f64 / (1u64 << 30) as f64;
    // CPU seconds per GiB of the process doing the work in each run: the registry in direct
    // runs, nginx, the gateway (GET, push).
    let mut cpu: [[Vec<f64>; 3]; 2] = Default::default();
    let mut get: [Vec<f64>; 3] = Default::default();
    for round in 0..o.get_rounds {
        for t in Target::order(round) {
            let url = format!("{}/v2/{}/blobs/{}", b.stack.base(t), fx.repo, fx.big.digest);
            let before = b.stack.cpu();
            let resp = client::check(
                Call::new("GET", &url).token(USER_TOKEN).discard_body(),
                "blob GET",
                200,
            );
            cpu[0][idx(t)].push(role_cpu(t, &b.stack.cpu().since(&before)) / gib);
            assert_eq!(
                resp.size_download,
                fx.big.size,
                "blob GET size on {}",
                t.name()
            );
            get[idx(t)].push(resp.speed_download);
        }
    }
    let mut push: [Vec<f64>; 3] = Default::default();
    let mut finish: [Vec<f64>; 3] = Default::default();
    let repo = format!("{NAMESPACE}/push");
    for round in 0..o.push_rounds {
        for t in Target::order(round) {
            let base = b.stack.base(t);
            let before = b.stack.cpu();
            let time =
                client::push_blob_chunked(&base, &repo, USER_TOKEN, &fx.big.path, &fx.big.digest);
            cpu[1][idx(t)].push(role_cpu(t, &b.stack.cpu().since(&before)) / gib);
            push[idx(t)].push(fx.big.size as f64 / (time.patch + time.put));
            finish[idx(t)].push(time.put * 1000.0);
        }
    }
    g.get = get.map(median);
    g.push = push.map(median);
    let finish = finish.map(median);
    let cpu = cpu.map(|per_target| per_target.map(median));
    let size = mib(fx.big.size as f64);
    r.heading("Blob throughput");
    r.para(&format!(
        "One {size} MiB layer of random bytes, one connection (curl). GET: {} rounds, \
         `speed_download`. Push: {} rounds, docker's single chunked `PATCH` of the whole layer \
         then the empty `PUT ?digest=`, MiB/s over both; through the gateway into namespace \
         `{NAMESPACE}`, which has a LimitRange `openshift.io/Image` max.storage, so the upload \
         is metered.",
        o.get_rounds, o.push_rounds
    ));
    let row = |label: &str, v: &[f64; 3]| {
        let (d, n, gw) = (v[0], v[1], v[2]);
        vec![
            label.to_string(),
            mib(d),
            mib(n),
            mib(gw),
            ratio(gw, d),
            ratio(gw, n),
        ]
    };
    r.table(
        &[
            "MiB/s",
            "direct",
            "nginx",
            "gateway",
            "gateway/direct",
            "gateway/nginx",
        ],
        &[
            row(&format!("GET {size} MiB"), &g.get),
            row(&format!("push {size} MiB (PATCH + PUT)"), &g.push),
        ],
    );
    r.para(&format!(
        "Final `PUT ?digest=` alone (ms): direct {}, nginx {}, gateway {}.",
        ms(finish[0]),
        ms(finish[1]),
        ms(finish[2])
    ));
    r.para(
        "CPU seconds per GiB (user + system) of the process in the middle: the registry in \
         the direct runs, nginx (master + workers), the gateway:",
    );
    let secs = |v: f64| {
        if v.is_finite() {
            format!("{v:.2}")
        } else {
            "–".into()
        }
    };
    r.table(
        &[
            "CPU s/GiB",
            "registry (direct)",
            "nginx",
            "gateway",
            "gateway/nginx",
        ],
        &[("GET", cpu[0]), ("push", cpu[1])].map(|(label, c)| {
            vec![
                label.to_string(),
                secs(c[0]),
                secs(c[1]),
                secs(c[2]),
                ratio(c[2], c[1]),
            ]
        }),
    );
}

/// CPU of the process that serves target `t` (the registry for direct).
fn role_cpu(t: Target, used: &crate::stack::Cpu) -> f64 {
    match t {
        Target::Direct => used.registry,
        Target::Nginx => used.nginx,
        Target::Gateway => used.gateway,
    }
}

// ---------------------------------------------------------------- cold authorization

fn head_blob(b: &Bench, token: &str) -> Call {
    let url = small_request_url(&b.stack.base(Target::Gateway), b.fixture, Small::HeadBlob);
    Call::new("HEAD", &url).token(token)
}

fn cold_authorization(b: &Bench, r: &mut Report, g: &mut Goals) {
    let o = b.opts;
    // Single first requests of new tokens, each next to the same request of a warm token
    // (both on a new connection, so the difference is the authorization).
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    let before = b.stack.api_stats();
    for i in 0..o.cold_samples {
        warm.push(client::check(head_blob(b, USER_TOKEN), "warm HEAD", 200).time_total * 1000.0);
        cold.push(
            client::check(head_blob(b, &cold_token(i)), "cold HEAD", 200).time_total * 1000.0,
        );
    }
    let single = b.stack.api_stats().since(&before);

    // N concurrent requests of the warm token (the baseline), then of one new token: one
    // access (pull).
    let n = o.cold_concurrency;
    let calls = || {
        (0..n)
            .map(|_| head_blob(b, USER_TOKEN))
            .collect::<Vec<Call>>()
    };
    client::send_parallel(&calls()); // unrecorded: the first burst of new connections is slower
    let warm_parallel = client::send_parallel(&calls());
    let token = cold_token(o.cold_samples);
    let before = b.stack.api_stats();
    let calls: Vec<Call> = (0..n).map(|_| head_blob(b, &token)).collect();
    let same = client::send_parallel(&calls);
    let same_api = b.stack.api_stats().since(&before);
    g.cold_reviews = same_api.get("selfsubjectaccessreviews");
    g.cold_concurrency = n;

    // N concurrent first requests of another new token, three kinds round robin:
    // HEAD blob + GET manifest (both pull on bench/app) and GET /v2/ (identity).
    let token = cold_token(o.cold_samples + 1);
    let base = b.stack.base(Target::Gateway);
    let before = b.stack.api_stats();
    let calls: Vec<Call> = (0..n)
        .map(|i| match Small::ALL[i % 3] {
            Small::GetManifest => Call::new(
                "GET",
                &small_request_url(&base, b.fixture, Small::GetManifest),
            )
            .token(&token)
            .header(ACCEPT),
            kind => {
                Call::new(kind.method(), &small_request_url(&base, b.fixture, kind)).token(&token)
            }
        })
        .collect();
    let mixed = client::send_parallel(&calls);
    let mixed_api = b.stack.api_stats().since(&before);

    r.heading("Cold authorization (gateway only)");
    r.para(&format!(
        "A new token's first request needs a SelfSubjectAccessReview (pull) from the API; \
         direct and nginx authorize nothing. Each sample is curl on a new connection: \
         {} first requests (HEAD blob) of {} new tokens, each next to the same request of a \
         warm token (whose cached allow may expire meanwhile: the allow TTL is 60 s, hence \
         possibly one review more than tokens). The concurrent bursts are `curl --parallel`, \
         one new connection per request.",
        o.cold_samples, o.cold_samples
    ));
    let stat = |v: &[f64]| {
        format!(
            "{} / {} / {}",
            ms(percentile(v.to_vec(), 50.0)),
            ms(percentile(v.to_vec(), 99.0)),
            ms(v.iter().cloned().fold(f64::NAN, f64::max))
        )
    };
    let times = |v: &[(u16, f64)]| v.iter().map(|(_, t)| t * 1000.0).collect::<Vec<_>>();
    let non_2xx = |v: &[(u16, f64)]| v.iter().filter(|(s, _)| !(200..300).contains(s)).count();
    r.table(
        &["requests", "p50 / p99 / max (ms)", "non-2xx", "API requests made"],
        &[
            vec![
                "warm token, new connection".into(),
                stat(&warm),
                "0".into(),
                "–".into(),
            ],
            vec![
                format!("first request of a new token ×{}", o.cold_samples),
                stat(&cold),
                "0".into(),
                single.describe(),
            ],
            vec![
                format!("{n} concurrent requests of a warm token (HEAD blob)"),
                stat(&times(&warm_parallel)),
                (non_2xx(&warm_parallel) + n.saturating_sub(warm_parallel.len())).to_string(),
                "–".into(),
            ],
            vec![
                format!("{n} concurrent first requests of one new token (HEAD blob)"),
                stat(&times(&same)),
                (non_2xx(&same) + n.saturating_sub(same.len())).to_string(),
                same_api.describe(),
            ],
            vec![
                format!("{n} concurrent first requests of one new token (HEAD blob, GET manifest, GET /v2/)"),
                stat(&times(&mixed)),
                (non_2xx(&mixed) + n.saturating_sub(mixed.len())).to_string(),
                mixed_api.describe(),
            ],
        ],
    );
    r.para(&format!(
        "Added latency of a cold token (p50 cold − p50 warm): {} ms.",
        signed_ms(percentile(cold, 50.0) - percentile(warm, 50.0))
    ));
}

// ---------------------------------------------------------------- peak RSS

fn peak_rss(b: &Bench, r: &mut Report, g: &mut Goals) {
    let pid = b.stack.gateway.pid();
    let gw = b.stack.base(Target::Gateway);
    let whole_run = procs::proc_status_bytes(pid, "VmHWM");
    let blob = data::zero_blob(&b.dir.join("rss.bin"), b.opts.rss_bytes);
    let repo = format!("{NAMESPACE}/rss");

    let reset = procs::reset_peak_rss(pid);
    let time = client::push_blob_chunked(&gw, &repo, USER_TOKEN, &blob.path, &blob.digest);
    let push_peak = procs::proc_status_bytes(pid, "VmHWM");
    blob.remove();

    procs::reset_peak_rss(pid);
    let url = format!("{gw}/v2/{repo}/blobs/{}", blob.digest);
    let pull = client::check(
        Call::new("GET", &url).token(USER_TOKEN).discard_body(),
        "RSS pull",
        200,
    );
    assert_eq!(pull.size_download, blob.size, "RSS pull size");
    let pull_peak = procs::proc_status_bytes(pid, "VmHWM");
    let after = procs::proc_status_bytes(pid, "VmRSS");

    g.peak_rss = push_peak.max(pull_peak);
    g.rss_bytes = blob.size;
    let m = |v: Option<u64>| v.map(|x| mib(x as f64)).unwrap_or_else(|| "?".into());
    let size = mib(blob.size as f64);
    r.heading("Gateway memory");
    r.para(&format!(
        "`VmHWM` of the `portcullis serve` process (pid {pid}){}. The {size} MiB layer is a \
         sparse file of zeros, pushed with one chunked PATCH (metered) and pulled back.",
        if reset {
            ", reset with `/proc/<pid>/clear_refs` before each transfer"
        } else {
            "; resetting it failed, so both numbers include everything before"
        }
    ));
    r.table(
        &["", "MiB"],
        &[
            vec![
                "peak RSS over all sections before this one".into(),
                m(whole_run),
            ],
            vec![
                format!(
                    "peak RSS while pushing {size} MiB ({} MiB/s)",
                    mib(blob.size as f64 / (time.patch + time.put))
                ),
                m(push_peak),
            ],
            vec![
                format!(
                    "peak RSS while pulling {size} MiB ({} MiB/s)",
                    mib(pull.speed_download)
                ),
                m(pull_peak),
            ],
            vec!["RSS afterwards".into(), m(after)],
        ],
    );
}

// ---------------------------------------------------------------- goals

pub fn goals_section(g: &Goals, r: &mut Report) {
    let (d, n, gw) = (
        idx(Target::Direct),
        idx(Target::Nginx),
        idx(Target::Gateway),
    );
    let mut rows = Vec::new();
    let mut line = |goal: String, measured: String, ok: bool| {
        rows.push(vec![goal, measured, check(ok).to_string()])
    };
    for (label, v) in [("blob GET", &g.get), ("blob push", &g.push)] {
        line(
            format!("{label} ≥ 0.90 × direct and ≥ nginx"),
            format!(
                "{} × direct, {} × nginx",
                ratio(v[gw], v[d]),
                ratio(v[gw], v[n])
            ),
            v[gw] >= 0.9 * v[d] && v[gw] >= v[n],
        );
    }
    for x in &g.small {
        if x.conns == 1 {
            let added = x.p50[gw] - x.p50[d];
            line(
                format!("{}: p50 added latency ≤ 0.3 ms (1 conn)", x.kind.label()),
                format!("{} ms", signed_ms(added)),
                added <= 0.3,
            );
        }
        line(
            format!("{}: RPS ≥ 0.9 × nginx ({} conn)", x.kind.label(), x.conns),
            format!("{} × nginx", ratio(x.rps[gw], x.rps[n])),
            x.rps[gw] >= 0.9 * x.rps[n],
        );
    }
    line(
        format!(
            "{} concurrent first requests of one token → 1 review",
            g.cold_concurrency
        ),
        format!("{} SelfSubjectAccessReviews", g.cold_reviews),
        g.cold_reviews == 1,
    );
    line(
        format!(
            "peak RSS < 64 MiB for a {} MiB layer",
            mib(g.rss_bytes as f64)
        ),
        g.peak_rss
            .map(|b| format!("{} MiB", mib(b as f64)))
            .unwrap_or_else(|| "?".into()),
        g.peak_rss.is_some_and(|b| b < 64 * MIB),
    );
    r.heading("Against the targets (not asserted)");
    r.table(&["target", "measured", "met"], &rows);
}
