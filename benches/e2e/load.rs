//! Small-request load with `oha` (keep-alive connections, exact per-request latencies, JSON
//! summary). wrk cannot be used for `HEAD`: its parser waits for the body that a HEAD answer
//! announces but never sends (wg/wrk#198), so one tool measures every row.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The oha version installed when none is found.
const OHA_VERSION: &str = "1.16.0";

/// One load run.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Requests answered 2xx.
    pub ok: u64,
    /// Answers that were not 2xx, and transport errors (not counting the requests cut off by
    /// the end of the run).
    pub failed: u64,
}

/// Find oha (`$PATH`, `~/.cargo/bin`, `<target>/bench-tools/bin`), or install it there with
/// `cargo install` (once; a few minutes).
pub fn find_or_install_oha(target_dir: &Path) -> PathBuf {
    let tools = target_dir.join("bench-tools");
    let mut dirs = vec![tools.join("bin")];
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    } else if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    if let Some(p) = crate::procs::find_tool("oha", &dirs) {
        return p;
    }
    eprintln!(
        "oha not found: installing oha {OHA_VERSION} into {} (once, takes a few minutes)",
        tools.display()
    );
    let ok = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "install",
            "--locked",
            "--version",
            OHA_VERSION,
            "oha",
            "--root",
        ])
        .arg(&tools)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "cargo install oha failed");
    tools.join("bin/oha")
}

/// Drive `url` with `conns` keep-alive connections for `secs` seconds.
pub fn oha(oha: &Path, method: &str, url: &str, headers: &[&str], conns: usize, secs: f64) -> Run {
    let mut cmd = Command::new(oha);
    cmd.args([
        "--no-tui",
        "--output-format",
        "json",
        "--disable-compression",
    ])
    .args([
        "--wait-ongoing-requests-after-deadline",
        "--worker-threads",
        "1",
    ])
    .args(["-t", "10s", "-m", method, "-c", &conns.to_string()])
    .args(["-z", &format!("{}ms", (secs * 1000.0) as u64)]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    let o = cmd.arg(url).output().expect("oha runs");
    assert!(
        o.status.success(),
        "oha {method} {url}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "oha output is not JSON ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    });
    parse(&v)
}

fn parse(v: &Value) -> Run {
    let ms = |k: &str| v["latencyPercentiles"][k].as_f64().unwrap_or(f64::NAN) * 1000.0;
    let count = |obj: &Value, keep: &dyn Fn(&str) -> bool| -> u64 {
        obj.as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| keep(k))
                    .filter_map(|(_, n)| n.as_u64())
                    .sum()
            })
            .unwrap_or(0)
    };
    let codes = &v["statusCodeDistribution"];
    let ok = count(codes, &|k| k.starts_with('2'));
    let bad_status = count(codes, &|k| !k.starts_with('2'));
    let errors = count(&v["errorDistribution"], &|k| !k.contains("deadline"));
    Run {
        rps: v["summary"]["requestsPerSec"].as_f64().unwrap_or(0.0),
        p50_ms: ms("p50"),
        p99_ms: ms("p99"),
        ok,
        failed: bad_status + errors,
    }
}
