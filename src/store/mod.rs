//! Persistence of builds, idempotency tokens, created images, the notification outbox and
//! service secrets, behind one `Store` trait whose contract is the conformance suite in
//! `conformance.rs`.
//!
//! Every write that can race is atomic in the backend: creating a build checks the client
//! token and the concurrent-build limit in the same transaction that inserts it; updates
//! compare the record's version.
//!
//! Depends on: domain, world (image shape).

pub mod dynamo;
pub mod instrumented;
pub mod metrics;
pub mod newest;
pub mod sqlite;

#[cfg(test)]
pub mod conformance;

use async_trait::async_trait;

use crate::domain::{Build, BuildStatus, CreatedImage, InstallerLogs, Notification};
use crate::scan::{Scan, ScanStatus};

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write found a different version than expected.
    #[error("conditional write failed: record changed concurrently")]
    ConditionFailed,
    /// The backend could not be reached or failed to commit.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A stored record could not be decoded.
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
}

/// A client token to claim together with a new build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaim {
    /// The caller's `ClientToken`.
    pub token: String,
    /// SHA-256 (hex) of the canonical request parameters without the token.
    pub param_hash: String,
}

/// What happened to a `create_build` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// The build was stored (and its token claimed, its notification queued).
    Created,
    /// The token was used before with the same parameters: this is the original build.
    Replayed(Box<Build>),
    /// The token was used before with different parameters.
    TokenMismatch,
    /// The account already has `limit` builds in progress in the region.
    LimitExceeded {
        /// The limit in force.
        limit: u32,
    },
}

/// A DescribeBuilds query; all present criteria are AND'ed, values within one are OR'ed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildQuery {
    /// Owning account.
    pub account: String,
    /// Region.
    pub region: String,
    /// Only these build ids (already intersected from `BuildIds` and the `build-id` filter).
    pub build_ids: Option<Vec<String>>,
    /// Only these statuses.
    pub statuses: Option<Vec<BuildStatus>>,
    /// Only builds that include one of these fulfillment options.
    pub fulfillment_option_ids: Option<Vec<String>>,
    /// Only builds that include one of these products.
    pub product_ids: Option<Vec<String>>,
}

impl BuildQuery {
    /// True when `b` satisfies every criterion (the reference semantics of the query).
    #[must_use]
    pub fn matches(&self, b: &Build) -> bool {
        b.account == self.account
            && b.region == self.region
            && self
                .build_ids
                .as_ref()
                .is_none_or(|ids| ids.contains(&b.build_id))
            && self.statuses.as_ref().is_none_or(|s| s.contains(&b.status))
            && self
                .fulfillment_option_ids
                .as_ref()
                .is_none_or(|f| b.fulfillment_option_ids.iter().any(|x| f.contains(x)))
            && self
                .product_ids
                .as_ref()
                .is_none_or(|p| p.iter().any(|x| b.has_product(x)))
    }
}

/// A position in the newest-first listing: the last build returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Creation time of the last build returned.
    pub created_ms: i64,
    /// Id of the last build returned (ties on time are broken by id, descending).
    pub build_id: String,
}

impl Cursor {
    /// The cursor positioned after `b`.
    #[must_use]
    pub fn after(b: &Build) -> Self {
        Self {
            created_ms: b.created_ms,
            build_id: b.build_id.clone(),
        }
    }

    /// True when `b` comes after this cursor in newest-first order.
    #[must_use]
    pub fn precedes(&self, b: &Build) -> bool {
        (b.created_ms, b.build_id.as_str()) < (self.created_ms, self.build_id.as_str())
    }
}

/// One page of builds, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The builds (shared: finished builds are decoded once and reused).
    pub builds: Vec<std::sync::Arc<Build>>,
    /// Where the next page starts, if there is one.
    pub next: Option<Cursor>,
}

/// Side effects written in the same transaction as a build update.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    /// A notification to queue.
    pub notification: Option<Notification>,
    /// An image the build created.
    pub image: Option<CreatedImage>,
    /// What the build's installers printed.
    pub logs: Option<InstallerLogs>,
}

/// A key that signs NextTokens or log URLs.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// Sequence number (higher is newer).
    pub id: i64,
    /// The key bytes.
    pub key: Vec<u8>,
    /// When it was created (epoch ms).
    pub created_ms: i64,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.id)
            .field("created_ms", &self.created_ms)
            .finish_non_exhaustive()
    }
}

/// The keys that still verify: the newest, and each older key until `grace_ms` after the key
/// that replaced it was created. `keys` is newest first.
#[must_use]
pub fn keys_in_grace(keys: &[SigningKey], now_ms: i64, grace_ms: i64) -> Vec<SigningKey> {
    let mut out = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        if i == 0 || now_ms < keys[i - 1].created_ms + grace_ms {
            out.push(k.clone());
        } else {
            break;
        }
    }
    out
}

/// A queued notification with its outbox id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Opaque outbox id (the backend's key); ids of one backend sort in queueing order.
    pub id: String,
    /// The notification.
    pub notification: Notification,
    /// When it was delivered, if it was.
    pub delivered_ms: Option<i64>,
}

/// What happened to a `create_scans` call.
#[derive(Debug, Clone, PartialEq)]
pub enum ScanCreateOutcome {
    /// Every scan was stored (the token claimed, the notifications queued).
    Created,
    /// The token was used before with the same parameters: these are the original scans.
    Replayed(Vec<Scan>),
    /// The token was used before with different parameters.
    TokenMismatch,
    /// The account would have more than `limit` scans in progress in the region.
    LimitExceeded {
        /// The limit in force.
        limit: u32,
    },
    /// The AMI already has a scan in progress.
    InProgress {
        /// The AMI.
        image_id: String,
        /// Its scan in progress.
        scan_id: String,
    },
    /// A resubmission named a scan that is no longer the latest of its AMI.
    NotLatest {
        /// The scan named.
        scan_id: String,
        /// The AMI's latest scan.
        latest_scan_id: String,
    },
}

/// A DescribeScans query; present criteria are AND'ed, values within one OR'ed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanQuery {
    /// Owning account.
    pub account: String,
    /// Region.
    pub region: String,
    /// Only these scans.
    pub scan_ids: Option<Vec<String>>,
    /// Only scans of these AMIs.
    pub image_ids: Option<Vec<String>>,
    /// Only scans naming these products.
    pub product_ids: Option<Vec<String>>,
    /// Only these statuses.
    pub statuses: Option<Vec<ScanStatus>>,
    /// Only the newest scan of each AMI.
    pub latest_only: bool,
}

impl ScanQuery {
    /// True when `s` satisfies every criterion (the reference semantics).
    #[must_use]
    pub fn matches(&self, s: &Scan) -> bool {
        s.account == self.account
            && s.region == self.region
            && self
                .scan_ids
                .as_ref()
                .is_none_or(|ids| ids.contains(&s.scan_id))
            && self
                .image_ids
                .as_ref()
                .is_none_or(|ids| ids.contains(&s.source_image_id))
            && self
                .product_ids
                .as_ref()
                .is_none_or(|ids| s.product_id.as_ref().is_some_and(|p| ids.contains(p)))
            && self
                .statuses
                .as_ref()
                .is_none_or(|st| st.contains(&s.status))
            && (!self.latest_only || s.latest)
    }
}

/// One page of scans, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanPage {
    /// The scans.
    pub scans: Vec<Scan>,
    /// Where the next page starts (`Cursor::build_id` holds the scan id).
    pub next: Option<Cursor>,
}

impl Cursor {
    /// The cursor positioned after scan `s`.
    #[must_use]
    pub fn after_scan(s: &Scan) -> Self {
        Self {
            created_ms: s.created_ms,
            build_id: s.scan_id.clone(),
        }
    }

    /// True when scan `s` comes after this cursor in newest-first order.
    #[must_use]
    pub fn precedes_scan(&self, s: &Scan) -> bool {
        (s.created_ms, s.scan_id.as_str()) < (self.created_ms, self.build_id.as_str())
    }
}

/// A Catalog API record (entity, change set, lock, client token, tags, policy) kept as JSON:
/// the catalog's rules live in `catalog`, the store only keeps documents and checks versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    /// What it is (`entity`, `changeset`, `lock`, `token`, `fo`, `tags`, `policy`).
    pub kind: String,
    /// Its id, unique within the kind.
    pub id: String,
    /// The owning account (listings are per owner).
    pub owner: String,
    /// Starts at 1, bumped by every write.
    pub version: u64,
    /// When the worker should next look at it (`None`: never).
    pub due_ms: Option<i64>,
    /// Its place in its owner's listing of the kind (the id unless the kind orders otherwise,
    /// e.g. `{modified_ms:013}#{id}` for entities).
    pub sort: String,
    /// The JSON body.
    pub body: String,
}

impl Doc {
    /// A first version (1) of a document, listed by its id.
    #[must_use]
    pub fn new(kind: &str, id: &str, owner: &str, due_ms: Option<i64>, body: String) -> Self {
        Self {
            kind: kind.into(),
            id: id.into(),
            owner: owner.into(),
            version: 1,
            due_ms,
            sort: id.into(),
            body,
        }
    }

    /// The same document listed at `sort`.
    #[must_use]
    pub fn sorted(self, sort: String) -> Self {
        Self { sort, ..self }
    }
}

/// One conditional write of a `write_docs` transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocWrite {
    /// Stores `doc`; `expected` is the version it replaces (`None`: it must not exist yet).
    Put {
        /// The new document (its `version` is the one written).
        doc: Doc,
        /// The version it replaces.
        expected: Option<u64>,
    },
    /// Adds `delta` to a counter document's `version` (a missing counter is 0): an increment
    /// fails the whole write when the result would pass `max` (an atomic quota); a decrement
    /// never fails (callers release only what they counted, in the same transactions).
    Count {
        /// Kind.
        kind: String,
        /// Id.
        id: String,
        /// The owning account.
        owner: String,
        /// What to add (negative to release).
        delta: i64,
        /// Highest allowed value.
        max: i64,
    },
    /// Deletes a document if it still has `expected` as version.
    Delete {
        /// Kind.
        kind: String,
        /// Id.
        id: String,
        /// The version it must have.
        expected: u64,
    },
}

/// How many records of one kind are in one status (`imagebuild_resources`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCount {
    /// `build`, `scan`, or a document kind (`changeset`).
    pub resource: String,
    /// The status as on the wire.
    pub status: String,
    /// How many.
    pub count: u64,
}

/// What one pass of the reservation sweep did (see `Store::sweep_reservations`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sweep {
    /// This instance held the sweep lease for the pass.
    pub held: bool,
    /// The lease was taken over from another instance whose lease had run out.
    pub took_over: bool,
    /// Reservations released (slots given back) because their build never came.
    pub released: u32,
}

/// The persistence contract of the service.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Atomically: replays or rejects a reused client token, enforces the in-progress limit,
    /// inserts the build, claims the token and queues the notification.
    async fn create_build(
        &self,
        build: &Build,
        token: Option<&TokenClaim>,
        max_in_progress: u32,
        notification: Option<&Notification>,
    ) -> Result<CreateOutcome, StoreError>;

    /// Returns one page of the query's builds after `after`, newest first, at most `limit`.
    async fn list_builds(
        &self,
        query: &BuildQuery,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page, StoreError>;

    /// Returns a build by id, whoever owns it.
    async fn get_build(&self, build_id: &str) -> Result<Option<Build>, StoreError>;

    /// Returns up to `limit` in-progress builds due at or before `now_ms`, earliest first.
    async fn due_builds(&self, now_ms: i64, limit: usize) -> Result<Vec<Build>, StoreError>;

    /// Returns the earliest due time of any in-progress build or scan.
    async fn next_due_ms(&self) -> Result<Option<i64>, StoreError>;

    /// Replaces `build` if its stored version is `expected_version`, with the effects, atomically.
    async fn update_build(
        &self,
        build: &Build,
        expected_version: u64,
        effects: &Effects,
    ) -> Result<(), StoreError>;

    /// Atomically: replays or rejects a reused client token (of `operation`), refuses an AMI
    /// whose latest scan is in progress or, for a resubmission, is not `previous_scan_id`,
    /// enforces the in-progress limit, inserts the scans (each becoming its AMI's latest),
    /// claims the token and queues the notifications. All scans or none.
    async fn create_scans(
        &self,
        operation: &str,
        scans: &[Scan],
        token: Option<&TokenClaim>,
        max_in_progress: u32,
        notifications: &[Notification],
    ) -> Result<ScanCreateOutcome, StoreError>;

    /// Returns one page of the query's scans after `after`, newest first, at most `limit`.
    async fn list_scans(
        &self,
        query: &ScanQuery,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<ScanPage, StoreError>;

    /// Returns a scan by id, whoever owns it.
    async fn get_scan(&self, scan_id: &str) -> Result<Option<Scan>, StoreError>;

    /// Returns up to `limit` in-progress scans due at or before `now_ms`, earliest first.
    async fn due_scans(&self, now_ms: i64, limit: usize) -> Result<Vec<Scan>, StoreError>;

    /// Replaces `scan` if its stored version is `expected_version`, queueing the notification
    /// in the same transaction.
    async fn update_scan(
        &self,
        scan: &Scan,
        expected_version: u64,
        notification: Option<&Notification>,
    ) -> Result<(), StoreError>;

    /// Returns an image created by a build.
    async fn created_image(
        &self,
        region: &str,
        image_id: &str,
    ) -> Result<Option<CreatedImage>, StoreError>;

    /// Returns up to `limit` undelivered notifications, oldest first.
    async fn pending_notifications(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Marks notifications delivered.
    async fn mark_delivered(&self, ids: &[String], now_ms: i64) -> Result<(), StoreError>;

    /// Returns every notification (delivered or not) for `topic`, or all, oldest first.
    async fn notifications(&self, topic: Option<&str>) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Deletes every build, scan, client token, counter, created image, installer log and
    /// notification (signing keys stay), or with `account` only that account's builds, scans,
    /// tokens, counters and logs.
    async fn reset(&self, account: Option<&str>) -> Result<(), StoreError>;

    /// Deletes the captured notifications of `topic` (or all), delivered or not.
    async fn clear_notifications(&self, topic: Option<&str>) -> Result<(), StoreError>;

    /// Returns what a build's installers printed, if they ran.
    async fn installer_logs(&self, build_id: &str) -> Result<Option<InstallerLogs>, StoreError>;

    /// Returns the signing keys for `purpose`, newest first, creating a first one (32 random
    /// bytes) when there is none.
    async fn signing_keys(&self, purpose: &str, now_ms: i64)
        -> Result<Vec<SigningKey>, StoreError>;

    /// Adds a new newest key for `purpose`; older keys stay for their grace period.
    async fn rotate_key(&self, purpose: &str, now_ms: i64) -> Result<SigningKey, StoreError>;

    /// Returns a catalog document.
    async fn get_doc(&self, kind: &str, id: &str) -> Result<Option<Doc>, StoreError>;

    /// Returns every document of `kind` owned by `owner`, by `sort`.
    async fn list_docs(&self, kind: &str, owner: &str) -> Result<Vec<Doc>, StoreError>;

    /// Returns up to `limit` documents of `kind` owned by `owner` whose `sort` is below `before`
    /// (all when `None`), highest `sort` first: a keyset page, O(page) whatever the owner has.
    async fn page_docs(
        &self,
        kind: &str,
        owner: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Doc>, StoreError>;

    /// Returns up to `limit` documents of `kind` due at or before `now_ms`, earliest first.
    async fn due_docs(&self, kind: &str, now_ms: i64, limit: usize)
        -> Result<Vec<Doc>, StoreError>;

    /// Applies every write or none: `ConditionFailed` when any expected version does not hold.
    async fn write_docs(&self, writes: &[DocWrite]) -> Result<(), StoreError>;

    /// Counts builds and scans by status, and the documents of each of `doc_kinds` by the
    /// `Status` member of their body (a full pass over those records: callers cache it).
    async fn status_counts(&self, doc_kinds: &[&str]) -> Result<Vec<StatusCount>, StoreError>;

    /// One pass of the in-progress reservation sweep, under a lease that one instance (`owner`)
    /// holds at a time: a StartBuild slot reserved more than `grace_ms` ago whose build was
    /// never written (its instance died between the reservation and the transaction) is given
    /// back. Stores whose counters move in the same transaction as the builds have nothing to
    /// sweep.
    async fn sweep_reservations(
        &self,
        owner: &str,
        now_ms: i64,
        grace_ms: i64,
    ) -> Result<Sweep, StoreError> {
        let _ = (owner, now_ms, grace_ms);
        Ok(Sweep::default())
    }

    /// A number that changes after every committed write this store could have seen, read before
    /// a listing so that an answer rendered from it can be reused until the next write; `None`
    /// when others write the same data unseen (a shared store), which turns such reuse off.
    fn generation(&self) -> Option<u64> {
        None
    }
}
