//! Rendered DescribeBuilds answers, reused while nothing they show can have changed.
//!
//! Waiters and pollers send the same DescribeBuilds again and again. An answer depends on the
//! caller, the request bytes, the stored builds and the current second (log-URL expiry and the
//! NextToken's issue time are whole seconds). An entry is reused only when all four are equal:
//! the store's write generation is the one read before the entry was rendered and the clock is
//! in the same second, so a hit returns exactly the bytes a fresh render would.
//!
//! Only stores that can name a generation (the embedded one, which owns its data dir) take
//! part; a shared store (DynamoDB, written by other instances) never caches.
//!
//! Below whole answers, `FragmentCache` keeps each build's rendered JSON object: a page that
//! differs (another filter, the next page) still reuses the objects of builds whose stored
//! record has not changed, for the same base URL and the same log-URL expiry second.
//!
//! Depends on: domain (`Build`).

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;

/// Request bodies longer than this are not cached (they are not what pollers send).
const MAX_KEY_BYTES: usize = 1024;
/// Answers larger than this are not cached, bounding memory at `entries × 256 KiB`.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// Who asked and exactly what.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageKey {
    account: String,
    region: String,
    base_url: String,
    body: Bytes,
}

impl PageKey {
    /// A key, or `None` when the request is too large to be worth caching.
    #[must_use]
    pub fn new(account: &str, region: &str, base_url: &str, body: &Bytes) -> Option<Self> {
        (body.len() <= MAX_KEY_BYTES).then(|| Self {
            account: account.to_string(),
            region: region.to_string(),
            base_url: base_url.to_string(),
            body: body.clone(),
        })
    }
}

#[derive(Debug)]
struct Entry {
    generation: u64,
    second: i64,
    answer: Bytes,
}

/// A bounded map of rendered answers; when full it starts over (no bookkeeping per hit).
#[derive(Debug, Default)]
pub struct PageCache {
    capacity: usize,
    entries: Mutex<HashMap<PageKey, Entry>>,
}

impl PageCache {
    /// A cache of at most `capacity` answers (0 disables it).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// True when the cache can hold anything.
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// The answer rendered for `key` at this generation and second, if any.
    #[must_use]
    pub fn get(&self, key: &PageKey, generation: u64, second: i64) -> Option<Bytes> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|e| e.generation == generation && e.second == second)
            .map(|e| e.answer.clone())
    }

    /// Keeps `answer`, rendered from the store at `generation` during `second`.
    pub fn put(&self, key: PageKey, generation: u64, second: i64, answer: Bytes) {
        if !self.enabled() || answer.len() > MAX_ANSWER_BYTES {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, e| e.generation == generation && e.second == second);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(
            key,
            Entry {
                generation,
                second,
                answer,
            },
        );
    }

    /// Number of answers held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    /// True when no answer is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One build's rendered object, valid for exactly that decoded record (compared by pointer:
/// the embedded store hands out the same `Arc` while a build's version is unchanged, and this
/// entry keeps it alive so the address cannot be reused), base URL and expiry second.
#[derive(Debug)]
struct Fragment {
    build: std::sync::Arc<crate::domain::Build>,
    base_url: String,
    expires: i64,
    json: Bytes,
}

/// Rendered build objects by build id; when full it starts over.
#[derive(Debug, Default)]
pub struct FragmentCache {
    capacity: usize,
    entries: Mutex<HashMap<String, Fragment>>,
}

impl FragmentCache {
    /// A cache of at most `capacity` build objects (0 disables it).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// For each build, its object if rendered from this very record for `base_url` and
    /// `expires`.
    #[must_use]
    pub fn get_all(
        &self,
        builds: &[std::sync::Arc<crate::domain::Build>],
        base_url: &str,
        expires: i64,
    ) -> Vec<Option<Bytes>> {
        let Ok(entries) = self.entries.lock() else {
            return vec![None; builds.len()];
        };
        builds
            .iter()
            .map(|b| {
                entries
                    .get(&b.build_id)
                    .filter(|f| {
                        std::sync::Arc::ptr_eq(&f.build, b)
                            && f.expires == expires
                            && f.base_url == base_url
                    })
                    .map(|f| f.json.clone())
            })
            .collect()
    }

    /// Keeps freshly rendered objects.
    pub fn put_all(
        &self,
        rendered: Vec<(std::sync::Arc<crate::domain::Build>, Bytes)>,
        base_url: &str,
        expires: i64,
    ) {
        if self.capacity == 0 {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() + rendered.len() > self.capacity {
            entries.clear();
        }
        for (build, json) in rendered.into_iter().take(self.capacity) {
            entries.insert(
                build.build_id.clone(),
                Fragment {
                    build,
                    base_url: base_url.to_string(),
                    expires,
                    json,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(body: &str) -> PageKey {
        PageKey::new(
            "123456789012",
            "us-east-1",
            "http://h",
            &Bytes::from(body.to_string()),
        )
        .unwrap()
    }

    #[test]
    fn hits_only_at_the_same_generation_and_second() {
        let c = PageCache::new(4);
        c.put(key("{}"), 7, 100, Bytes::from_static(b"a"));
        assert_eq!(c.get(&key("{}"), 7, 100).as_deref(), Some(&b"a"[..]));
        assert_eq!(c.get(&key("{}"), 8, 100), None, "a write happened");
        assert_eq!(c.get(&key("{}"), 7, 101), None, "the second changed");
        assert_eq!(c.get(&key("{ }"), 7, 100), None, "other bytes");
        let other =
            PageKey::new("210987654321", "us-east-1", "http://h", &Bytes::from("{}")).unwrap();
        assert_eq!(c.get(&other, 7, 100), None, "another account");
    }

    #[test]
    fn fragments_match_only_the_same_record_url_and_second() {
        let c = FragmentCache::new(2);
        let b = std::sync::Arc::new(crate::store::conformance::sample_build(
            "123456789012",
            1,
            "b1",
        ));
        c.put_all(vec![(b.clone(), Bytes::from_static(b"{}"))], "http://h", 10);
        assert_eq!(
            c.get_all(std::slice::from_ref(&b), "http://h", 10),
            vec![Some(Bytes::from_static(b"{}"))]
        );
        assert_eq!(
            c.get_all(std::slice::from_ref(&b), "http://h", 11),
            vec![None],
            "another second"
        );
        assert_eq!(
            c.get_all(std::slice::from_ref(&b), "http://other", 10),
            vec![None],
            "another host"
        );
        let same_content = std::sync::Arc::new((*b).clone());
        assert_eq!(
            c.get_all(&[same_content], "http://h", 10),
            vec![None],
            "another record"
        );
        for i in 0..5 {
            let x = std::sync::Arc::new(crate::store::conformance::sample_build(
                "123456789012",
                i,
                &format!("x{i}"),
            ));
            c.put_all(vec![(x, Bytes::from_static(b"{}"))], "http://h", 10);
            assert!(c.entries.lock().unwrap().len() <= 2);
        }
    }

    #[test]
    fn stays_bounded_and_can_be_disabled() {
        let c = PageCache::new(3);
        for i in 0..10 {
            c.put(key(&i.to_string()), 1, 1, Bytes::from_static(b"x"));
            assert!(c.len() <= 3);
        }
        c.put(
            key("big"),
            1,
            1,
            Bytes::from(vec![b' '; MAX_ANSWER_BYTES + 1]),
        );
        assert_eq!(c.get(&key("big"), 1, 1), None);
        assert!(PageKey::new("a", "r", "u", &Bytes::from(vec![b' '; 2000])).is_none());
        let off = PageCache::new(0);
        off.put(key("{}"), 1, 1, Bytes::from_static(b"x"));
        assert!(off.is_empty());
    }
}
