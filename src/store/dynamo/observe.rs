//! An SDK interceptor on the DynamoDB client: every attempt (retries included) is counted by
//! API and HTTP status, and refusals are told apart (conditional checks, transaction conflicts,
//! throttles) from the error body, which the SDK has read in full by then.
//!
//! Depends on: store::metrics.

use aws_sdk_dynamodb::config::interceptors::FinalizerInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

use crate::store::metrics::StoreMetrics;

/// Records each attempt into the store's metrics.
#[derive(Debug)]
pub(super) struct Observer {
    metrics: StoreMetrics,
}

impl Observer {
    pub(super) fn new(metrics: StoreMetrics) -> Self {
        Self { metrics }
    }
}

impl Intercept for Observer {
    fn name(&self) -> &'static str {
        "imagebuild-metrics"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let api = cfg.load::<Metadata>().map_or("unknown", Metadata::name);
        let (status, body) = match context.response() {
            Some(r) => (r.status().as_u16(), r.body().bytes()),
            None => (0, None),
        };
        self.metrics.dynamodb_attempt(api, status, body);
        Ok(())
    }
}
