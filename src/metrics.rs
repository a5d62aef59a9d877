//! Prometheus metrics (served at `/extensions/v2/metrics`): requests by route class, method and
//! status; latency histograms; bytes in/out; decision-cache hits and misses and API review
//! latency; quota refusals; upstream errors. The `prometheus` crate does the exposition.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

use crate::auth::authorizer::AuthorizerStats;

/// The gateway's metric families.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    bytes_in: IntCounterVec,
    bytes_out: IntCounterVec,
    pub quota_refusals: IntCounter,
    pub upstream_errors: IntCounter,
    pub overload_refusals: IntCounter,
}

fn must<T>(r: prometheus::Result<T>, what: &str) -> T {
    match r {
        Ok(v) => v,
        // only reachable through a programming error in the names below
        Err(e) => panic!("metric {what}: {e}"),
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some("portcullis".into()), None).unwrap_or_default();
        let requests = must(
            IntCounterVec::new(
                Opts::new(
                    "requests_total",
                    "Requests by route class, method and status",
                ),
                &["route", "method", "status"],
            ),
            "requests_total",
        );
        let duration = must(
            HistogramVec::new(
                HistogramOpts::new(
                    "request_duration_seconds",
                    "Request latency by route class and method",
                )
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                    10.0, 60.0,
                ]),
                &["route", "method"],
            ),
            "request_duration_seconds",
        );
        let bytes_in = must(
            IntCounterVec::new(
                Opts::new("bytes_in_total", "Request body bytes received"),
                &["route"],
            ),
            "bytes_in",
        );
        let bytes_out = must(
            IntCounterVec::new(
                Opts::new("bytes_out_total", "Response body bytes sent"),
                &["route"],
            ),
            "bytes_out",
        );
        let quota_refusals = must(
            IntCounter::new(
                "quota_refusals_total",
                "Uploads refused by a limit or quota",
            ),
            "quota",
        );
        let upstream_errors = must(
            IntCounter::new(
                "upstream_errors_total",
                "Failures talking to the upstream registry",
            ),
            "upstream",
        );
        let overload_refusals = must(
            IntCounter::new("overload_refusals_total", "Requests turned away with 429"),
            "overload",
        );
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(duration.clone()),
            Box::new(bytes_in.clone()),
            Box::new(bytes_out.clone()),
            Box::new(quota_refusals.clone()),
            Box::new(upstream_errors.clone()),
            Box::new(overload_refusals.clone()),
        ] {
            if let Err(e) = registry.register(c) {
                tracing::error!(error = %e, "metric registration");
            }
        }
        Metrics {
            registry,
            requests,
            duration,
            bytes_in,
            bytes_out,
            quota_refusals,
            upstream_errors,
            overload_refusals,
        }
    }

    /// Account for one finished request.
    pub fn observe(
        &self,
        route: &str,
        method: &str,
        status: u16,
        seconds: f64,
        bytes_in: usize,
        bytes_out: usize,
    ) {
        // StatusCode spells every valid code without allocating (0: no answer was written)
        let code = http::StatusCode::from_u16(status).ok();
        let status = code.as_ref().map_or("0", |s| s.as_str());
        self.requests
            .with_label_values(&[route, method, status])
            .inc();
        self.duration
            .with_label_values(&[route, method])
            .observe(seconds);
        self.bytes_in
            .with_label_values(&[route])
            .inc_by(bytes_in as u64);
        self.bytes_out
            .with_label_values(&[route])
            .inc_by(bytes_out as u64);
    }

    /// The text exposition, with the authorizer's counters appended.
    pub fn render(&self, authz: &AuthorizerStats) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "metrics encoding");
        }
        let mut text = String::from_utf8_lossy(&buf).into_owned();
        for (name, help, value) in [
            (
                "portcullis_decision_cache_hits_total",
                "Authorization decisions answered from the cache",
                authz.calls.saturating_sub(authz.misses) as f64,
            ),
            (
                "portcullis_decision_cache_misses_total",
                "Authorization decisions that asked the API",
                authz.misses as f64,
            ),
            (
                "portcullis_api_reviews_total",
                "Access reviews sent to the API",
                authz.reviews as f64,
            ),
            (
                "portcullis_api_review_seconds_total",
                "Time spent waiting for access reviews",
                authz.review_micros as f64 / 1e6,
            ),
        ] {
            text.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
            ));
        }
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition() {
        let m = Metrics::new();
        m.observe("blob", "GET", 200, 0.002, 0, 1234);
        m.quota_refusals.inc();
        let t = m.render(&AuthorizerStats {
            calls: 10,
            misses: 3,
            reviews: 3,
            review_micros: 1500,
        });
        assert!(
            t.contains("portcullis_requests_total{method=\"GET\",route=\"blob\",status=\"200\"} 1"),
            "{t}"
        );
        assert!(t.contains("portcullis_bytes_out_total{route=\"blob\"} 1234"));
        assert!(t.contains("portcullis_quota_refusals_total 1"));
        assert!(t.contains("portcullis_decision_cache_hits_total 7"));
        assert!(t.contains("portcullis_request_duration_seconds_bucket"));
    }
}
