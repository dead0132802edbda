//! The newest builds of each recently listed owner, in memory, kept by the single writer of
//! the embedded store (write-through): an unfiltered DescribeBuilds page — the console's, a
//! poller's, the first page of every listing — is answered without SQLite.
//!
//! Never stale: the writer applies each committed change before anyone hears of the commit,
//! and a window is loaded from SQLite while holding the lock the writer needs to apply, so a
//! change is either in the snapshot the window was loaded from or applied to it afterwards
//! (applying twice is harmless: by id, the higher version wins).
//!
//! Depends on: domain, store (query, cursor).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{BuildQuery, Cursor, StoreError};
use crate::domain::Build;

/// Builds held per owner (account and region): the largest page (`MaxResults` 256) plus the
/// one that says whether there is a next page.
pub const WINDOW: usize = 257;
/// Owners held at once; past this the windows start over (bounded memory, no bookkeeping).
const OWNERS_MAX: usize = 64;

/// A committed change to the builds, as the writer applies it.
#[derive(Debug, Clone)]
pub enum Change {
    /// A build was created or updated to this record.
    Upsert(Arc<Build>),
    /// Every build of this account (all accounts when `None`) was deleted.
    Reset(Option<String>),
}

/// The newest builds of one owner, newest first (by creation time, then id, both descending:
/// the listing's order).
struct Window {
    builds: Vec<Arc<Build>>,
    /// True when the owner has no builds beyond these.
    complete: bool,
}

impl Window {
    fn upsert(&mut self, b: &Arc<Build>) {
        if let Some(held) = self.builds.iter_mut().find(|h| h.build_id == b.build_id) {
            if b.version > held.version {
                *held = b.clone();
            }
            return;
        }
        let key = (b.created_ms, b.build_id.as_str());
        let at = self
            .builds
            .partition_point(|h| (h.created_ms, h.build_id.as_str()) > key);
        // Older than every build held, while more exist beyond: it belongs out there.
        if at == self.builds.len() && !self.complete {
            return;
        }
        self.builds.insert(at, b.clone());
        if self.builds.len() > WINDOW {
            self.builds.truncate(WINDOW);
            self.complete = false;
        }
    }
}

/// The windows, by account, then region.
#[derive(Default)]
pub struct Newest {
    owners: Mutex<HashMap<String, Vec<(String, Window)>>>,
}

impl Newest {
    /// The first `fetch` builds after `after` of the owner-only query `q`, from memory, or
    /// `None` when the window cannot say (another query, or a page beyond the window). A
    /// missing window is loaded with `load`, which must return the owner's newest
    /// `WINDOW + 1` builds in listing order.
    ///
    /// # Errors
    /// What `load` returns.
    pub fn page(
        &self,
        q: &BuildQuery,
        after: Option<&Cursor>,
        fetch: usize,
        load: impl FnOnce() -> Result<Vec<Arc<Build>>, StoreError>,
    ) -> Result<Option<Vec<Arc<Build>>>, StoreError> {
        let owner_only = q.build_ids.is_none()
            && q.statuses.is_none()
            && q.fulfillment_option_ids.is_none()
            && q.product_ids.is_none();
        if !owner_only || fetch > WINDOW {
            return Ok(None);
        }
        let Ok(mut owners) = self.owners.lock() else {
            return Ok(None);
        };
        let held = owners
            .get(q.account.as_str())
            .and_then(|regions| regions.iter().position(|(r, _)| *r == q.region));
        let window = match held {
            Some(i) => &owners[q.account.as_str()][i].1,
            None => {
                let mut builds = load()?;
                let complete = builds.len() <= WINDOW;
                builds.truncate(WINDOW);
                if owners.len() >= OWNERS_MAX {
                    owners.clear();
                }
                let regions = owners.entry(q.account.clone()).or_default();
                regions.push((q.region.clone(), Window { builds, complete }));
                &regions[regions.len() - 1].1
            }
        };
        let start = after.map_or(0, |c| window.builds.partition_point(|b| !c.precedes(b)));
        let rest = &window.builds[start..];
        Ok(
            (rest.len() >= fetch || window.complete)
                .then(|| rest[..fetch.min(rest.len())].to_vec()),
        )
    }

    /// Applies committed changes, in commit order.
    pub fn apply(&self, changes: &[Change]) {
        let Ok(mut owners) = self.owners.lock() else {
            return;
        };
        for change in changes {
            match change {
                Change::Upsert(b) => {
                    let window = owners.get_mut(b.account.as_str()).and_then(|regions| {
                        regions
                            .iter_mut()
                            .find(|(r, _)| *r == b.region)
                            .map(|(_, w)| w)
                    });
                    if let Some(w) = window {
                        w.upsert(b);
                    }
                }
                Change::Reset(Some(account)) => {
                    owners.remove(account.as_str());
                }
                Change::Reset(None) => owners.clear(),
            }
        }
    }

    /// Forgets every window (when what was committed is unknown).
    pub fn clear(&self) {
        self.apply(&[Change::Reset(None)]);
    }
}
