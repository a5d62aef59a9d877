//! Quota enforced while uploads stream: the namespace's limits (read from the API with the
//! gateway's identity, cached with a TTL), reservations of uploads in flight, the per-request
//! byte meter, and the facts of an upload request (offset, declared length).

pub mod ledger;
pub mod limits;
pub mod meter;
pub mod upload;

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;

use crate::openshift::{ApiClient, ApiError};
use ledger::Ledger;
use limits::Limits;

/// Limits per namespace plus this process's reservations.
pub struct Quotas {
    api: ApiClient,
    cache: Cache<String, Arc<Limits>>,
    pub ledger: Ledger,
}

impl Quotas {
    /// `ttl`: how long a namespace's limits are reused; `reservation_ttl`: how long an upload's
    /// bytes stay reserved without activity (or a committed blob without an image).
    pub fn new(api: ApiClient, ttl: Duration, reservation_ttl: Duration) -> Quotas {
        let cache = Cache::builder()
            .max_capacity(10_000)
            .time_to_live(ttl.max(Duration::from_millis(1)))
            .build();
        Quotas {
            api,
            cache,
            ledger: Ledger::new(reservation_ttl),
        }
    }

    /// The namespace's limits (cached). `Err` when the API cannot say: uploads fail closed.
    pub async fn limits(&self, namespace: &str) -> Result<Arc<Limits>, Arc<ApiError>> {
        self.cache
            .try_get_with(namespace.to_string(), async {
                let (lr, rq) = tokio::try_join!(
                    self.api.limit_ranges(namespace),
                    self.api.resource_quotas(namespace)
                )?;
                Ok::<_, ApiError>(Arc::new(Limits::from_api(&lr, &rq)))
            })
            .await
    }

    /// Usage changed (an image was pushed): read the quota again next time.
    pub async fn invalidate(&self, namespace: &str) {
        self.cache.invalidate(namespace).await;
    }
}
