//! A namespace's upload limits (pure): the LimitRange `openshift.io/Image` `max.storage` (no
//! single blob may exceed it) and the ResourceQuota hard limit on `openshift.io/image-storage`
//! (bytes of the distinct blobs the namespace's images reference), and how many bytes one
//! upload may therefore reach.

use serde_json::Value;

use crate::kubernetes::parse_quantity;

/// The quota resource the namespace storage limit is expressed in.
pub const STORAGE_RESOURCE: &str = "openshift.io/image-storage";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    pub quota: String,
    pub hard: u64,
    pub used: u64,
}

/// What applies to uploads in one namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Smallest `openshift.io/Image` `max.storage` of the namespace's LimitRanges.
    pub max_blob: Option<u64>,
    /// The tightest image-storage quota (least room left).
    pub storage: Option<Storage>,
}

/// The bound an upload runs into, for the message the client sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowance {
    /// Most bytes the whole blob may have.
    pub bytes: u64,
    pub reason: String,
}

fn quantity(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => parse_quantity(s).map(|q| q.min(u64::MAX as u128) as u64),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.max_blob.is_none() && self.storage.is_none()
    }

    /// Read a `LimitRangeList` and a `ResourceQuotaList`.
    pub fn from_api(limit_ranges: &Value, quotas: &Value) -> Limits {
        let mut l = Limits::default();
        for lr in limit_ranges["items"].as_array().into_iter().flatten() {
            for item in lr["spec"]["limits"].as_array().into_iter().flatten() {
                if item["type"] == "openshift.io/Image" {
                    if let Some(max) = quantity(&item["max"]["storage"]) {
                        l.max_blob = Some(l.max_blob.map_or(max, |m| m.min(max)));
                    }
                }
            }
        }
        for q in quotas["items"].as_array().into_iter().flatten() {
            let Some(hard) = quantity(&q["spec"]["hard"][STORAGE_RESOURCE])
                .or_else(|| quantity(&q["status"]["hard"][STORAGE_RESOURCE]))
            else {
                continue;
            };
            let used = quantity(&q["status"]["used"][STORAGE_RESOURCE]).unwrap_or(0);
            let s = Storage {
                quota: q["metadata"]["name"].as_str().unwrap_or("").to_string(),
                hard,
                used,
            };
            let room = |s: &Storage| s.hard.saturating_sub(s.used);
            if l.storage.as_ref().is_none_or(|cur| room(&s) < room(cur)) {
                l.storage = Some(s);
            }
        }
        l
    }

    /// How big one blob may get, given `reserved` bytes held by other uploads in flight in the
    /// namespace. `None` when nothing limits it.
    pub fn allowance(&self, namespace: &str, reserved: u64) -> Option<Allowance> {
        let blob = self.max_blob.map(|max| Allowance {
            bytes: max,
            reason: format!("the openshift.io/Image limit (max storage {max} bytes per image layer) in namespace {namespace:?}"),
        });
        let storage = self.storage.as_ref().map(|s| {
            let room = s.hard.saturating_sub(s.used).saturating_sub(reserved);
            Allowance {
                bytes: room,
                reason: format!(
                    "quota {:?} in namespace {namespace:?} ({STORAGE_RESOURCE}: hard {} bytes, used {}, {} in uploads in progress)",
                    s.quota, s.hard, s.used, reserved
                ),
            }
        });
        match (blob, storage) {
            (Some(b), Some(s)) => Some(if s.bytes < b.bytes { s } else { b }),
            (b, s) => b.or(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lists() -> (Value, Value) {
        (
            json!({"items":[{"spec":{"limits":[
                {"type":"openshift.io/Image","max":{"storage":"1Mi"}},
                {"type":"openshift.io/ImageStream","max":{"openshift.io/images":"3"}}]}},
                {"spec":{"limits":[{"type":"openshift.io/Image","max":{"storage":"2Mi"}}]}}]}),
            json!({"items":[
                {"metadata":{"name":"roomy"},"spec":{"hard":{"openshift.io/image-storage":"10Mi"}},"status":{"used":{"openshift.io/image-storage":"0"}}},
                {"metadata":{"name":"tight"},"spec":{"hard":{"openshift.io/image-storage":"3Mi"}},"status":{"used":{"openshift.io/image-storage":"2097152"}}},
                {"metadata":{"name":"other"},"spec":{"hard":{"openshift.io/imagestreams":"3"}}}]}),
        )
    }

    #[test]
    fn reads_the_tightest_limits() {
        let (lr, q) = lists();
        let l = Limits::from_api(&lr, &q);
        assert_eq!(l.max_blob, Some(1 << 20));
        assert_eq!(
            l.storage,
            Some(Storage {
                quota: "tight".into(),
                hard: 3 << 20,
                used: 2 << 20
            })
        );
        assert!(Limits::from_api(&json!({}), &json!({"items":[]})).is_empty());
    }

    #[test]
    fn allowance_is_the_smaller_bound() {
        let (lr, q) = lists();
        let l = Limits::from_api(&lr, &q);
        let a = l.allowance("ns", 0).unwrap();
        assert_eq!(a.bytes, 1 << 20);
        assert!(a.reason.contains("openshift.io/Image"));
        let a = l.allowance("ns", 512 << 10).unwrap();
        assert_eq!(a.bytes, 512 << 10);
        assert!(a.reason.contains("quota \"tight\""));
        let a = l.allowance("ns", 5 << 20).unwrap();
        assert_eq!(a.bytes, 0);
        assert_eq!(Limits::default().allowance("ns", 0), None);
    }
}
