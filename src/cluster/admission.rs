//! Admission of image objects: the LimitRanges and ResourceQuotas of the
//! policy file, and the checks the OpenShift apiserver runs with them
//! (`ImageLimitRange` admission, image-stream limits, `openshift.io/imagestreams`
//! quota on ImageStream creates, `openshift.io/image-storage` quota on
//! ImageStreamMapping creates).
//!
//! Pure logic, no I/O. Checks return the apiserver's admission message; the
//! handlers wrap it (`<resource>.<group> "<name>" is forbidden: <message>`).

use std::collections::BTreeMap;

use crate::kubernetes::quantity::{format_quantity, Format, Quantity};

/// LimitRange item type limiting a single image.
pub const LIMIT_TYPE_IMAGE: &str = "openshift.io/Image";
/// LimitRange item type limiting an image stream.
pub const LIMIT_TYPE_IMAGE_STREAM: &str = "openshift.io/ImageStream";
/// Resource of [`LIMIT_TYPE_IMAGE`]: the image size.
pub const RESOURCE_STORAGE: &str = "storage";
/// Resource of [`LIMIT_TYPE_IMAGE_STREAM`]: distinct images referenced by the stream's tags.
pub const RESOURCE_IMAGES: &str = "openshift.io/images";
/// Resource of [`LIMIT_TYPE_IMAGE_STREAM`]: distinct tags of the stream.
pub const RESOURCE_IMAGE_TAGS: &str = "openshift.io/image-tags";
/// Quota resource: image streams in the namespace.
pub const RESOURCE_IMAGE_STREAMS: &str = "openshift.io/imagestreams";
/// Quota resource: bytes of the distinct blobs of the namespace's images.
pub const RESOURCE_IMAGE_STORAGE: &str = "openshift.io/image-storage";

/// Resources a LimitRange item of a known type may limit (`None`: any, not enforced).
pub fn known_limit_resources(limit_type: &str) -> Option<&'static [&'static str]> {
    match limit_type {
        LIMIT_TYPE_IMAGE => Some(&[RESOURCE_STORAGE]),
        LIMIT_TYPE_IMAGE_STREAM => Some(&[RESOURCE_IMAGES, RESOURCE_IMAGE_TAGS]),
        _ => None,
    }
}

/// A core/v1 LimitRange (only `type` and `max` of its items).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitRange {
    pub namespace: String,
    pub name: String,
    pub limits: Vec<LimitItem>,
}

/// One `spec.limits[]` item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitItem {
    /// `type`, e.g. [`LIMIT_TYPE_IMAGE`].
    pub kind: String,
    pub max: BTreeMap<String, Quantity>,
}

/// A core/v1 ResourceQuota (`spec.hard`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceQuota {
    pub namespace: String,
    pub name: String,
    pub hard: BTreeMap<String, Quantity>,
}

/// Counts of an image stream that its LimitRange items constrain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamUsage {
    /// Distinct image digests referenced by `status.tags`.
    pub images: usize,
    /// Distinct tag names (status and spec).
    pub tags: usize,
}

/// What a namespace uses of the quota resources.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NamespaceUsage {
    /// [`RESOURCE_IMAGE_STREAMS`].
    pub imagestreams: u64,
    /// `openshift.io/images`: distinct images referenced by the namespace's streams.
    pub images: u64,
    /// [`RESOURCE_IMAGE_STORAGE`].
    pub image_storage: u128,
}

fn limit_items<'a>(
    limits: &'a [LimitRange],
    kind: &'a str,
) -> impl Iterator<Item = &'a LimitItem> + 'a {
    limits
        .iter()
        .flat_map(|lr| lr.limits.iter())
        .filter(move |item| item.kind == kind)
}

/// `ImageLimitRange` admission: refuse an image larger than any
/// `openshift.io/Image` `max.storage`.
pub fn check_image_size(limits: &[LimitRange], size: u128) -> Result<(), String> {
    for item in limit_items(limits, LIMIT_TYPE_IMAGE) {
        if let Some(max) = item.max.get(RESOURCE_STORAGE) {
            if size > max.value {
                return Err(format!(
                    "requested usage of {RESOURCE_STORAGE} exceeds the maximum limit per \
                     {LIMIT_TYPE_IMAGE} ({} > {})",
                    format_quantity(size, Format::BinarySi),
                    max.canonical()
                ));
            }
        }
    }
    Ok(())
}

/// Image-stream limits: refuse a stream whose usage exceeds an
/// `openshift.io/ImageStream` `max`. With `before` (an update), only a count
/// that grew is refused, so a stream over a lowered limit can still shrink.
pub fn check_stream_usage(
    limits: &[LimitRange],
    after: StreamUsage,
    before: Option<StreamUsage>,
) -> Result<(), String> {
    for item in limit_items(limits, LIMIT_TYPE_IMAGE_STREAM) {
        for (resource, used, prev) in [
            (RESOURCE_IMAGES, after.images, before.map(|b| b.images)),
            (RESOURCE_IMAGE_TAGS, after.tags, before.map(|b| b.tags)),
        ] {
            let Some(max) = item.max.get(resource) else {
                continue;
            };
            let grew = prev.is_none_or(|p| used > p);
            if used as u128 > max.value && grew {
                return Err(format!(
                    "requested usage of {resource} exceeds the maximum limit per \
                     {LIMIT_TYPE_IMAGE_STREAM} ({} > {})",
                    format_quantity(used as u128, Format::DecimalSi),
                    max.canonical()
                ));
            }
        }
    }
    Ok(())
}

/// ResourceQuota admission of a request adding `requested` of `resource` to a
/// namespace that uses `used`: refused by the first quota whose hard limit of
/// `resource` the sum exceeds (`show` prints `requested` and `used`). A request
/// that adds nothing is never refused, even over a lowered limit.
fn check_quota(
    quotas: &[ResourceQuota],
    resource: &str,
    used: u128,
    requested: u128,
    show: fn(u128) -> String,
) -> Result<(), String> {
    if requested == 0 {
        return Ok(());
    }
    for q in quotas {
        let Some(hard) = q.hard.get(resource) else {
            continue;
        };
        if used.saturating_add(requested) > hard.value {
            return Err(format!(
                "exceeded quota: {}, requested: {resource}={}, used: {resource}={}, \
                 limited: {resource}={}",
                q.name,
                show(requested),
                show(used),
                hard.canonical()
            ));
        }
    }
    Ok(())
}

/// ResourceQuota admission of an ImageStream create: `used` streams exist in
/// the namespace; one more must fit every `openshift.io/imagestreams` hard limit.
pub fn check_stream_quota(quotas: &[ResourceQuota], used: u64) -> Result<(), String> {
    check_quota(quotas, RESOURCE_IMAGE_STREAMS, u128::from(used), 1, |v| {
        format_quantity(v, Format::DecimalSi)
    })
}

/// Whether a quota of `quotas` has a hard limit on `openshift.io/image-storage`
/// (only then is [`check_image_storage_quota`] worth computing).
pub fn limits_image_storage(quotas: &[ResourceQuota]) -> bool {
    quotas
        .iter()
        .any(|q| q.hard.contains_key(RESOURCE_IMAGE_STORAGE))
}

/// ResourceQuota admission of an ImageStreamMapping: the namespace's images
/// hold `used` bytes of distinct blobs; the mapping adds `requested` bytes (its
/// blobs not yet referenced in the namespace). The sum must fit every
/// `openshift.io/image-storage` hard limit. Quantities print as plain integers.
pub fn check_image_storage_quota(
    quotas: &[ResourceQuota],
    used: u128,
    requested: u128,
) -> Result<(), String> {
    check_quota(quotas, RESOURCE_IMAGE_STORAGE, used, requested, |v| {
        v.to_string()
    })
}

/// `status.used` of a quota: one plain integer per `spec.hard` resource
/// (`"0"` for resources this cluster does not track).
pub fn quota_used(quota: &ResourceQuota, usage: &NamespaceUsage) -> BTreeMap<String, String> {
    quota
        .hard
        .keys()
        .map(|r| {
            let v = match r.as_str() {
                RESOURCE_IMAGE_STREAMS => u128::from(usage.imagestreams),
                RESOURCE_IMAGES => u128::from(usage.images),
                RESOURCE_IMAGE_STORAGE => usage.image_storage,
                _ => 0,
            };
            (r.clone(), v.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    fn limits(items: &[(&str, &[(&str, &str)])]) -> Vec<LimitRange> {
        vec![LimitRange {
            namespace: "demo".into(),
            name: "image-limits".into(),
            limits: items
                .iter()
                .map(|(kind, max)| LimitItem {
                    kind: kind.to_string(),
                    max: max.iter().map(|(k, v)| (k.to_string(), q(v))).collect(),
                })
                .collect(),
        }]
    }

    #[test]
    fn image_size_limit() {
        let l = limits(&[(LIMIT_TYPE_IMAGE, &[("storage", "1Mi")])]);
        assert_eq!(check_image_size(&l, 1 << 20), Ok(()));
        assert_eq!(
            check_image_size(&l, (1 << 20) + 1).unwrap_err(),
            "requested usage of storage exceeds the maximum limit per openshift.io/Image (1048577 > 1Mi)"
        );
        assert_eq!(
            check_image_size(&l, 2 << 20).unwrap_err(),
            "requested usage of storage exceeds the maximum limit per openshift.io/Image (2Mi > 1Mi)"
        );
        // Other types and no limits do not restrict images.
        let l = limits(&[(LIMIT_TYPE_IMAGE_STREAM, &[(RESOURCE_IMAGES, "1")])]);
        assert_eq!(check_image_size(&l, u128::MAX), Ok(()));
        assert_eq!(check_image_size(&[], u128::MAX), Ok(()));
    }

    #[test]
    fn stream_limits() {
        let l = limits(&[(
            LIMIT_TYPE_IMAGE_STREAM,
            &[(RESOURCE_IMAGES, "2"), (RESOURCE_IMAGE_TAGS, "1")],
        )]);
        let u = |images, tags| StreamUsage { images, tags };
        assert_eq!(check_stream_usage(&l, u(2, 1), None), Ok(()));
        assert_eq!(
            check_stream_usage(&l, u(3, 1), None).unwrap_err(),
            "requested usage of openshift.io/images exceeds the maximum limit per openshift.io/ImageStream (3 > 2)"
        );
        assert_eq!(
            check_stream_usage(&l, u(1, 2), None).unwrap_err(),
            "requested usage of openshift.io/image-tags exceeds the maximum limit per openshift.io/ImageStream (2 > 1)"
        );
        // An update that does not grow an exceeded count is accepted.
        assert_eq!(check_stream_usage(&l, u(3, 1), Some(u(4, 1))), Ok(()));
        assert!(check_stream_usage(&l, u(4, 1), Some(u(3, 1))).is_err());
    }

    #[test]
    fn stream_quota() {
        let quotas = vec![ResourceQuota {
            namespace: "demo".into(),
            name: "image-quota".into(),
            hard: [
                (RESOURCE_IMAGE_STREAMS.to_string(), q("3")),
                (RESOURCE_IMAGE_STORAGE.to_string(), q("10Gi")),
            ]
            .into_iter()
            .collect(),
        }];
        assert_eq!(check_stream_quota(&quotas, 2), Ok(()));
        assert_eq!(
            check_stream_quota(&quotas, 3).unwrap_err(),
            "exceeded quota: image-quota, requested: openshift.io/imagestreams=1, used: openshift.io/imagestreams=3, limited: openshift.io/imagestreams=3"
        );
        let used = quota_used(
            &quotas[0],
            &NamespaceUsage {
                imagestreams: 2,
                images: 5,
                image_storage: 12345,
            },
        );
        assert_eq!(used[RESOURCE_IMAGE_STREAMS], "2");
        assert_eq!(used[RESOURCE_IMAGE_STORAGE], "12345");
        assert_eq!(used.len(), 2);
    }

    fn quota(name: &str, hard: &[(&str, &str)]) -> ResourceQuota {
        ResourceQuota {
            namespace: "demo".into(),
            name: name.into(),
            hard: hard.iter().map(|(k, v)| (k.to_string(), q(v))).collect(),
        }
    }

    #[test]
    fn image_storage_quota() {
        let quotas = vec![
            quota("streams-only", &[(RESOURCE_IMAGE_STREAMS, "1")]),
            quota("storage", &[(RESOURCE_IMAGE_STORAGE, "1Ki")]),
            quota("roomy", &[(RESOURCE_IMAGE_STORAGE, "1Mi")]),
        ];
        assert!(limits_image_storage(&quotas));
        assert!(!limits_image_storage(&quotas[..1]));
        assert!(!limits_image_storage(&[]));
        // Up to and including the hard limit.
        assert_eq!(check_image_storage_quota(&quotas, 0, 1024), Ok(()));
        assert_eq!(check_image_storage_quota(&quotas, 1000, 24), Ok(()));
        assert_eq!(
            check_image_storage_quota(&quotas, 1000, 25).unwrap_err(),
            "exceeded quota: storage, requested: openshift.io/image-storage=25, used: openshift.io/image-storage=1000, limited: openshift.io/image-storage=1Ki"
        );
        // Plain integers, even where a suffix would divide.
        assert_eq!(
            check_image_storage_quota(&quotas, 0, 2048).unwrap_err(),
            "exceeded quota: storage, requested: openshift.io/image-storage=2048, used: openshift.io/image-storage=0, limited: openshift.io/image-storage=1Ki"
        );
        // Blobs already counted cost nothing, even over a lowered limit.
        assert_eq!(check_image_storage_quota(&quotas, 5000, 0), Ok(()));
        // The first quota exceeded is named.
        assert_eq!(
            check_image_storage_quota(&quotas[2..], 1 << 20, 1).unwrap_err(),
            "exceeded quota: roomy, requested: openshift.io/image-storage=1, used: openshift.io/image-storage=1048576, limited: openshift.io/image-storage=1Mi"
        );
        assert_eq!(check_image_storage_quota(&[], u128::MAX, 1), Ok(()));
        assert_eq!(
            check_image_storage_quota(&quotas, u128::MAX, 1).unwrap_err(),
            format!(
                "exceeded quota: storage, requested: openshift.io/image-storage=1, used: openshift.io/image-storage={}, limited: openshift.io/image-storage=1Ki",
                u128::MAX
            )
        );
        // No storage limit: only openshift.io/imagestreams counts.
        assert_eq!(check_image_storage_quota(&quotas[..1], 1 << 40, 1), Ok(()));
    }
}
