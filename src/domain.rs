//! Records and state machines of the service: builds, their statuses and stages.
//!
//! Pure data and pure functions: no HTTP, no JSON wire shapes, no storage.
//!
//! Depends on: nothing crate-internal.

use serde::{Deserialize, Serialize};

/// The modeled status of a build (`BuildStatus` in the service model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BuildStatus {
    /// A new build has been defined and started.
    InProgress,
    /// The build was terminated due to a retryable error.
    InternalError,
    /// The build has failed and a new image has not been created.
    Failed,
    /// The build has finished and a new image has been created.
    Succeeded,
}

impl BuildStatus {
    /// Every status, in model order.
    pub const ALL: [BuildStatus; 4] = [
        BuildStatus::InProgress,
        BuildStatus::InternalError,
        BuildStatus::Failed,
        BuildStatus::Succeeded,
    ];

    /// Returns the wire name (`InProgress`, …).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::InProgress => "InProgress",
            BuildStatus::InternalError => "InternalError",
            BuildStatus::Failed => "Failed",
            BuildStatus::Succeeded => "Succeeded",
        }
    }

    /// Returns the value used by the `status` filter of DescribeBuilds (`in-progress`, …).
    #[must_use]
    pub fn filter_value(self) -> &'static str {
        match self {
            BuildStatus::InProgress => "in-progress",
            BuildStatus::InternalError => "internal-error",
            BuildStatus::Failed => "failed",
            BuildStatus::Succeeded => "succeeded",
        }
    }

    /// Parses a `status` filter value; case-sensitive, as the model says.
    #[must_use]
    pub fn from_filter_value(v: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.filter_value() == v)
    }

    /// Parses the wire name.
    #[must_use]
    pub fn from_wire(v: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == v)
    }

    /// True when the build will not change any more.
    #[must_use]
    pub fn is_terminal(self) -> bool {
        self != BuildStatus::InProgress
    }
}

/// Where an in-progress build is in its life; not on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BuildStage {
    /// Launching the build instance from the source image and waiting for the SSM agent.
    Provisioning,
    /// Running the products' installers.
    Installing,
    /// Creating the destination image from the instance.
    CreatingImage,
    /// Nothing left to do.
    Done,
}

/// A product installed by a build, as reported to the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductRef {
    /// The product id (`prod-…`).
    pub id: String,
    /// The version title of the fulfillment option.
    pub version: String,
    /// The product title.
    pub title: String,
}

/// The error detail of a failed build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildError {
    /// `SSMAgentNotFound` or `InstallFailed`.
    pub code: String,
    /// A human-readable explanation.
    pub message: String,
}

/// One build as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    /// UUID of the build.
    pub build_id: String,
    /// Owning account.
    pub account: String,
    /// Region the build runs in.
    pub region: String,
    /// Creation time (epoch ms); the listing order.
    pub created_ms: i64,
    /// Last change (epoch ms).
    pub updated_ms: i64,
    /// Modeled status.
    pub status: BuildStatus,
    /// Internal stage.
    pub stage: BuildStage,
    /// When the worker should next look at the build (epoch ms); `None` once terminal.
    pub due_ms: Option<i64>,
    /// Optimistic-concurrency version, bumped on every update.
    pub version: u64,
    /// Fulfillment option ids as requested.
    pub fulfillment_option_ids: Vec<String>,
    /// Products resolved from the fulfillment options.
    pub products: Vec<ProductRef>,
    /// Source image id.
    pub source_image_id: String,
    /// Source image name.
    pub source_image_name: Option<String>,
    /// Destination image name.
    pub destination_image_name: String,
    /// Destination image description.
    pub destination_image_description: Option<String>,
    /// Id of the created image, once Succeeded.
    pub destination_image_id: Option<String>,
    /// Topic notified on status changes.
    pub sns_topic_arn: Option<String>,
    /// Why the build failed.
    pub error: Option<BuildError>,
    /// True once the installers ran and their output is stored (`InstallerLogs`).
    pub has_logs: bool,
    /// The record's wire form, made once by the first listing that renders it.
    #[serde(skip)]
    pub rendered: RenderMemo,
}

/// What the operations layer rendered of a stored record (here: a build's JSON before and after
/// its log URLs, which depend only on the record), made once per decoded record and kept with
/// it, so a listing does not serialize the same record again for every request. Never stored,
/// never compared, and emptied by `Clone`: a clone may be changed, and renders afresh.
#[derive(Debug, Default)]
pub struct RenderMemo(std::sync::OnceLock<Rendered>);

/// A record's wire form in two parts (for a build: before and after its log URLs).
pub type Rendered = (Box<[u8]>, Box<[u8]>);

impl RenderMemo {
    /// The memo, once made.
    #[must_use]
    pub fn get(&self) -> Option<&Rendered> {
        self.0.get()
    }

    /// Keeps `parts` (the first ones kept win; a racing render made the same bytes).
    pub fn keep(&self, parts: Rendered) -> &Rendered {
        self.0.get_or_init(|| parts)
    }
}

impl Clone for RenderMemo {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl PartialEq for RenderMemo {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for RenderMemo {}

/// What the installers printed; stored apart from the build so listings never carry it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallerLogs {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Build {
    /// True when the build's products include `product_id`.
    #[must_use]
    pub fn has_product(&self, product_id: &str) -> bool {
        self.products.iter().any(|p| p.id == product_id)
    }
}

/// A notification about a build's status change, queued in the store's outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Topic ARN to deliver to.
    pub topic_arn: String,
    /// Subject line (SNS `Subject`).
    pub subject: String,
    /// The JSON message body.
    pub message: String,
    /// When it was queued (epoch ms).
    pub created_ms: i64,
}

impl Notification {
    /// Builds the status-change notification for `build` (documented in the README).
    #[must_use]
    pub fn for_build(build: &Build, previous: Option<BuildStatus>, now_ms: i64) -> Option<Self> {
        let topic = build.sns_topic_arn.clone()?;
        let mut msg = serde_json::Map::new();
        msg.insert("Type".into(), "BuildStatusChange".into());
        msg.insert("BuildId".into(), build.build_id.clone().into());
        msg.insert("AccountId".into(), build.account.clone().into());
        msg.insert("Region".into(), build.region.clone().into());
        msg.insert("Status".into(), build.status.as_str().into());
        if let Some(p) = previous {
            msg.insert("PreviousStatus".into(), p.as_str().into());
        }
        msg.insert(
            "FulfillmentOptionIds".into(),
            build.fulfillment_option_ids.clone().into(),
        );
        msg.insert("SourceImageId".into(), build.source_image_id.clone().into());
        if let Some(id) = &build.destination_image_id {
            msg.insert("DestinationImageId".into(), id.clone().into());
        }
        if let Some(e) = &build.error {
            msg.insert(
                "ErrorDetail".into(),
                serde_json::json!({"Code": e.code, "Message": e.message}),
            );
        }
        msg.insert("Time".into(), crate::clock::iso8601_extended(now_ms).into());
        Some(Notification {
            topic_arn: topic,
            subject: format!(
                "AWS Marketplace image build {} is {}",
                build.build_id,
                build.status.as_str()
            ),
            message: serde_json::Value::Object(msg).to_string(),
            created_ms: now_ms,
        })
    }
}

/// An image created by a build: it joins the world so later calls can use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedImage {
    /// The new image id (`ami-` + 17 hex).
    pub image_id: String,
    /// Region of the image.
    pub region: String,
    /// The image, in the world file's shape.
    pub image: crate::world::Image,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_filter_values_are_kebab_case_and_case_sensitive() {
        assert_eq!(
            BuildStatus::from_filter_value("in-progress"),
            Some(BuildStatus::InProgress)
        );
        assert_eq!(
            BuildStatus::from_filter_value("internal-error"),
            Some(BuildStatus::InternalError)
        );
        assert_eq!(BuildStatus::from_filter_value("InProgress"), None);
        assert_eq!(BuildStatus::from_filter_value("Failed"), None);
        assert!(BuildStatus::Failed.is_terminal());
        assert!(!BuildStatus::InProgress.is_terminal());
    }
}
