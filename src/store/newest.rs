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

/// Most builds held per owner (account and region): the largest page (`MaxResults` 256) plus
/// the one that says whether there is a next page.
pub const WINDOW: usize = 257;
/// Builds a window is first loaded with (a page of 25 and then some), unless the page asked
/// for needs more: a listing of many owners in turn must not read ten times its page.
const LOAD: usize = 64;
/// Accounts held at once; past this one is forgotten to make room (bounded memory: the
/// builds are mostly the decoded cache's own).
const ACCOUNTS_MAX: usize = 256;

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
    /// missing window (or one too short for a first page) is loaded with `load(n)`, which must
    /// return the owner's newest `n + 1` builds in listing order.
    ///
    /// # Errors
    /// What `load` returns.
    pub fn page(
        &self,
        q: &BuildQuery,
        after: Option<&Cursor>,
        fetch: usize,
        load: impl FnOnce(usize) -> Result<Vec<Arc<Build>>, StoreError>,
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
            .and_then(|r| r.iter().position(|(region, _)| *region == q.region));
        // A first page longer than what a window holds, while the owner has more: load again.
        let short = |w: &Window| after.is_none() && !w.complete && w.builds.len() < fetch;
        let usable = held.filter(|&i| !short(&owners[q.account.as_str()][i].1));
        let i = match usable {
            Some(i) => i,
            None => {
                let size = if fetch > LOAD { WINDOW } else { LOAD };
                let mut builds = load(size)?;
                let complete = builds.len() <= size;
                builds.truncate(size);
                Self::hold(&mut owners, q, held, Window { builds, complete })
            }
        };
        let window = &owners[q.account.as_str()][i].1;
        let start = after.map_or(0, |c| window.builds.partition_point(|b| !c.precedes(b)));
        let rest = &window.builds[start..];
        Ok(
            (rest.len() >= fetch || window.complete)
                .then(|| rest[..fetch.min(rest.len())].to_vec()),
        )
    }

    /// Puts `window` in place of the owner's (at `held`) or beside, making room if needed;
    /// returns its place among the account's regions.
    fn hold(
        owners: &mut HashMap<String, Vec<(String, Window)>>,
        q: &BuildQuery,
        held: Option<usize>,
        window: Window,
    ) -> usize {
        if !owners.contains_key(q.account.as_str()) && owners.len() >= ACCOUNTS_MAX {
            if let Some(gone) = owners.keys().next().cloned() {
                owners.remove(&gone);
            }
        }
        let regions = owners.entry(q.account.clone()).or_default();
        match held {
            Some(i) => {
                regions[i].1 = window;
                i
            }
            None => {
                regions.push((q.region.clone(), window));
                regions.len() - 1
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(account: &str) -> BuildQuery {
        BuildQuery {
            account: account.into(),
            region: "us-east-1".into(),
            ..BuildQuery::default()
        }
    }

    fn builds(account: &str, n: usize) -> Vec<Arc<Build>> {
        (0..n)
            .map(|i| {
                let ms = i64::try_from(1000 - i).unwrap_or(0);
                Arc::new(crate::store::conformance::sample_build(
                    account,
                    ms,
                    &format!("b-{i:04}"),
                ))
            })
            .collect()
    }

    /// More accounts than are held, a first page longer than the first load, a filtered query:
    /// each is answered from what `load` said, loading only when nothing held can answer.
    #[test]
    fn windows_load_when_needed_and_make_room() {
        let newest = Newest::default();
        let mut loads = 0;
        for round in 0..2 {
            for a in 0..ACCOUNTS_MAX + 10 {
                let account = format!("{a:012}");
                let all = builds(&account, 100);
                let page = newest
                    .page(&owner(&account), None, 26, |n| {
                        loads += 1;
                        Ok(all[..(n + 1).min(all.len())].to_vec())
                    })
                    .unwrap();
                assert_eq!(
                    page.as_deref(),
                    Some(&all[..26]),
                    "round {round}, {account}"
                );
            }
        }
        // Every account loaded once in the first round; the second finds most still held.
        assert!(
            loads > ACCOUNTS_MAX + 10 && loads < 2 * (ACCOUNTS_MAX + 10),
            "{loads}"
        );
        // A first page longer than the first load reloads (once), and is then held.
        let all = builds("999999999999", 300);
        for (fetch, expect_load) in [(26, true), (257, true), (257, false), (26, false)] {
            let mut loaded = false;
            let page = newest
                .page(&owner("999999999999"), None, fetch, |n| {
                    loaded = true;
                    Ok(all[..(n + 1).min(all.len())].to_vec())
                })
                .unwrap();
            assert_eq!(page.as_deref(), Some(&all[..fetch]));
            assert_eq!(loaded, expect_load, "fetch {fetch}");
        }
        // Past the window and filtered queries are not the window's to answer.
        let beyond = Cursor::after(&all[260]);
        assert_eq!(
            newest
                .page(&owner("999999999999"), Some(&beyond), 5, |_| unreachable!())
                .unwrap(),
            None
        );
        let mut filtered = owner("999999999999");
        filtered.statuses = Some(vec![crate::domain::BuildStatus::Failed]);
        assert_eq!(
            newest.page(&filtered, None, 5, |_| unreachable!()).unwrap(),
            None
        );
    }
}
