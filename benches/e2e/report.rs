//! The markdown report: machine facts, tables, number formatting.

use std::path::Path;

use crate::procs::output_of;

/// A markdown document built section by section.
#[derive(Default)]
pub struct Report {
    text: String,
}

impl Report {
    pub fn heading(&mut self, title: &str) {
        self.text.push_str(&format!("\n## {title}\n\n"));
    }

    pub fn para(&mut self, text: &str) {
        self.text.push_str(text.trim_end());
        self.text.push_str("\n\n");
    }

    pub fn table(&mut self, header: &[&str], rows: &[Vec<String>]) {
        let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
        self.text
            .push_str(&line(header.iter().map(|s| s.to_string()).collect()));
        self.text.push_str(&line(
            header
                .iter()
                .enumerate()
                .map(|(i, _)| if i == 0 { "---" } else { "---:" }.to_string())
                .collect(),
        ));
        for r in rows {
            self.text.push_str(&line(r.clone()));
        }
        self.text.push('\n');
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn write(&self, path: &Path) {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create the results dir");
        }
        std::fs::write(path, &self.text).expect("write the results");
    }
}

/// Date, machine and tool versions, as a markdown list.
pub fn machine_facts(portcullis: &Path, oha: &Path, nginx: &Path) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| format!("{:.1} GiB", kb as f64 / (1 << 20) as f64))
        .unwrap_or_else(|| "?".into());
    let first_line = |s: String| s.lines().next().unwrap_or("").to_string();
    let dir = env!("CARGO_MANIFEST_DIR");
    let commit = output_of("git", &["-C", dir, "rev-parse", "--short", "HEAD"]);
    let dirty = !output_of("git", &["-C", dir, "status", "--porcelain", "--", "src"]).is_empty();
    let items = [
        ("date", output_of("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"])),
        ("nproc", output_of("nproc", &[])),
        ("CPU", cpu),
        ("memory", mem),
        ("kernel", output_of("uname", &["-r"])),
        (
            "load average at start",
            std::fs::read_to_string("/proc/loadavg")
                .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
                .unwrap_or_default(),
        ),
        (
            "portcullis",
            if portcullis.starts_with(dir) {
                format!(
                    "{} (tree at {commit}{})",
                    portcullis.display(),
                    if dirty { ", src/ modified" } else { "" }
                )
            } else {
                let label = std::env::var("E2E_PORTCULLIS_LABEL").unwrap_or_default();
                format!("{} (E2E_PORTCULLIS) {label}", portcullis.display())
            },
        ),
        (
            "docker-registry",
            output_of("docker-registry", &["--version"]),
        ),
        ("nginx", output_of(&nginx.display().to_string(), &["-v"])),
        ("oha", output_of(&oha.display().to_string(), &["--version"])),
        ("curl", first_line(output_of("curl", &["--version"]))),
    ];
    items.iter().map(|(k, v)| format!("- {k}: {v}\n")).collect()
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Percentile (nearest rank) of unsorted values.
pub fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

pub fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() {
        format!("{:.2}", a / b)
    } else {
        "–".into()
    }
}

pub fn ms(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "–".into()
    }
}

pub fn signed_ms(x: f64) -> String {
    if x.is_finite() {
        format!("{x:+.3}")
    } else {
        "–".into()
    }
}

pub fn num(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.0}")
    } else {
        "–".into()
    }
}

pub fn mib(bytes: f64) -> String {
    format!("{:.1}", bytes / (1u64 << 20) as f64)
}

pub fn check(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "**no**"
    }
}
