//! End-to-end benchmark: the upstream `docker-registry` reached directly, through nginx (a plain
//! streaming `proxy_pass`) and through the gateway, measured in one run with the targets
//! interleaved. See benches/README.md.
//!
//! ```sh
//! cargo bench --bench e2e              # full run (~3-4 min), writes benches/results/latest.md
//! cargo bench --bench e2e -- --quick   # smoke run (~1 min), writes benches/results/quick.md
//! ```

mod client;
mod data;
mod load;
mod measure;
mod procs;
mod report;
mod stack;

use std::path::{Path, PathBuf};
use std::time::Instant;

use data::MIB;

/// Sizes and durations of one run.
#[derive(Debug, Clone)]
pub struct Opts {
    pub quick: bool,
    /// Seconds per small-request run, rounds of them, and an unrecorded warm-up run first.
    pub small_secs: f64,
    pub small_rounds: usize,
    pub warmup_secs: f64,
    /// Connection counts of the small-request runs.
    pub conns: Vec<usize>,
    /// The layer for blob GET / push throughput, and how often each is measured per target.
    pub blob_bytes: u64,
    pub get_rounds: usize,
    pub push_rounds: usize,
    /// The layer pushed and pulled through the gateway for its peak RSS.
    pub rss_bytes: u64,
    /// Single first requests of new tokens.
    pub cold_samples: usize,
    /// Concurrent first requests of one new token.
    pub cold_concurrency: usize,
    pub out: PathBuf,
}

impl Opts {
    fn from_env() -> Opts {
        let quick = std::env::args().any(|a| a == "--quick")
            || std::env::var("E2E_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/results");
        let out = std::env::var_os("E2E_OUT")
            .map(PathBuf::from)
            .unwrap_or_else(|| results.join(if quick { "quick.md" } else { "latest.md" }));
        let full = Opts {
            quick,
            small_secs: 3.0,
            small_rounds: 3,
            warmup_secs: 1.0,
            conns: vec![1, 64],
            blob_bytes: 256 * MIB,
            get_rounds: 5,
            push_rounds: 5,
            rss_bytes: 2048 * MIB,
            cold_samples: 20,
            cold_concurrency: 64,
            out,
        };
        if !quick {
            return full;
        }
        Opts {
            small_secs: 1.0,
            small_rounds: 1,
            warmup_secs: 0.3,
            blob_bytes: 32 * MIB,
            get_rounds: 2,
            push_rounds: 1,
            rss_bytes: 256 * MIB,
            cold_samples: 5,
            ..full
        }
    }
}

/// The programs the bench drives.
pub struct Tools {
    pub portcullis: PathBuf,
    pub nginx: PathBuf,
    pub oha: PathBuf,
}

fn tools() -> Tools {
    // The Debian packages the bench drives: installed once with scripts/install-deps.sh
    // --bench (apt) when one is missing, like oha below with cargo install.
    let present = || ["curl", "docker-registry", "nginx"].map(|t| procs::find_tool(t, &[]));
    if present().iter().any(Option::is_none) {
        eprintln!("e2e bench: installing curl, docker-registry and nginx (scripts/install-deps.sh --bench)");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-deps.sh");
        let ok = std::process::Command::new(&script)
            .arg("--bench")
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "{} --bench failed: install the Debian packages nginx, docker-registry and curl",
            script.display()
        );
    }
    let [_, _, nginx] = present();
    let nginx = nginx.expect("nginx is still missing after scripts/install-deps.sh --bench");
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    // E2E_PORTCULLIS: bench another build (e.g. of a clean checkout) instead of this tree's.
    let portcullis = std::env::var_os("E2E_PORTCULLIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_portcullis")));
    Tools {
        portcullis,
        nginx,
        oha: load::find_or_install_oha(&target_dir),
    }
}

fn main() {
    let opts = Opts::from_env();
    let tools = tools();
    let started = Instant::now();
    eprintln!(
        "e2e bench ({} mode): starting docker-registry, portcullis cluster + serve, nginx",
        if opts.quick { "quick" } else { "full" }
    );
    // Dropped last: the stack (its processes) goes first, then the files.
    let work = tempfile::Builder::new()
        .prefix("portcullis-bench-")
        .tempdir()
        .expect("temp dir");
    let stack = stack::Stack::start(work.path(), &tools.portcullis, &tools.nginx);
    eprintln!("pushing the test image through the gateway");
    let fixture = data::push_fixture(&stack, work.path(), opts.blob_bytes);
    let bench = measure::Bench {
        stack: &stack,
        fixture: &fixture,
        opts: &opts,
        tools: &tools,
        dir: work.path(),
    };
    let mut r = report::Report::default();
    r.para(&format!(
        "# portcullis end-to-end benchmark{}\n\n{}",
        if opts.quick { " (quick mode)" } else { "" },
        report::machine_facts(&tools.portcullis, &tools.oha, &tools.nginx)
    ));
    r.para(
        "Targets: **direct** = docker-registry itself; **nginx** = plain `proxy_pass` (no \
         buffering either way, keep-alive upstream, 2 workers, access log on); **gateway** = \
         `portcullis serve` (2 threads, access log at info) with `portcullis cluster` as its \
         API. Everything on 127.0.0.1 of one machine; the targets are interleaved \
         (A B C, C B A, …) and each number is the median over the rounds.",
    );
    let goals = measure::run_all(&bench, &mut r);
    measure::goals_section(&goals, &mut r);
    r.para(&format!(
        "Total run time: {:.0} s.",
        started.elapsed().as_secs_f64()
    ));
    println!("{}", r.text());
    r.write(&opts.out);
    eprintln!("written to {}", opts.out.display());
}
