//! The embedded store: SQLite (bundled) in WAL mode with `synchronous=FULL`, so every
//! acknowledged write survives a crash of the process or the machine.
//!
//! One writer connection serialises writes (`BEGIN IMMEDIATE`), which is what makes the
//! client-token claim and the concurrent-build limit race-free; a small pool of reader
//! connections serves listings concurrently. Blocking SQLite calls run on tokio's blocking pool.
//!
//! Listing is keyset paging over indexes: one index per filter kind, newest first by
//! `(created_ms, build_id)`; a multi-valued filter runs one bounded query per value and merges,
//! so a page costs O(page × values), never O(stored builds).
//!
//! Depends on: store (trait), domain.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rand::RngCore;
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension};

use super::newest::{Change, Newest};
use super::{
    BuildQuery, CreateOutcome, Cursor, Doc, DocWrite, Effects, OutboxEntry, Page,
    ScanCreateOutcome, ScanPage, ScanQuery, SigningKey, StatusCount, Store, StoreError, TokenClaim,
};
use crate::domain::{Build, BuildStatus, CreatedImage, InstallerLogs, Notification};
use crate::scan::{Scan, ScanStatus};

const SCHEMA: &str = r"
CREATE TABLE IF NOT EXISTS builds (
    build_id   TEXT PRIMARY KEY,
    account    TEXT NOT NULL,
    region     TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    status     TEXT NOT NULL,
    due_ms     INTEGER,
    version    INTEGER NOT NULL,
    body       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS builds_by_owner  ON builds(account, region, created_ms, build_id);
CREATE INDEX IF NOT EXISTS builds_by_status ON builds(account, region, status, created_ms, build_id);
CREATE INDEX IF NOT EXISTS builds_due       ON builds(due_ms) WHERE due_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS build_options (
    account TEXT NOT NULL, region TEXT NOT NULL, fo_id TEXT NOT NULL,
    created_ms INTEGER NOT NULL, build_id TEXT NOT NULL,
    PRIMARY KEY (account, region, fo_id, created_ms, build_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS build_products (
    account TEXT NOT NULL, region TEXT NOT NULL, product_id TEXT NOT NULL,
    created_ms INTEGER NOT NULL, build_id TEXT NOT NULL,
    PRIMARY KEY (account, region, product_id, created_ms, build_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tokens (
    account TEXT NOT NULL, region TEXT NOT NULL, operation TEXT NOT NULL, token TEXT NOT NULL,
    param_hash TEXT NOT NULL, build_id TEXT NOT NULL, created_ms INTEGER NOT NULL,
    PRIMARY KEY (account, region, operation, token)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS images (
    region TEXT NOT NULL, image_id TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (region, image_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL, body TEXT NOT NULL, created_ms INTEGER NOT NULL, delivered_ms INTEGER
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(id) WHERE delivered_ms IS NULL;
CREATE INDEX IF NOT EXISTS outbox_by_topic ON outbox(topic, id);
CREATE TABLE IF NOT EXISTS build_logs (
    build_id TEXT PRIMARY KEY, stdout TEXT NOT NULL, stderr TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS in_progress (
    account TEXT NOT NULL, region TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (account, region)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS signing_keys (
    purpose TEXT NOT NULL, id INTEGER NOT NULL, value BLOB NOT NULL, created_ms INTEGER NOT NULL,
    PRIMARY KEY (purpose, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS scans (
    scan_id    TEXT PRIMARY KEY,
    account    TEXT NOT NULL,
    region     TEXT NOT NULL,
    image_id   TEXT NOT NULL,
    product_id TEXT,
    created_ms INTEGER NOT NULL,
    status     TEXT NOT NULL,
    latest     INTEGER NOT NULL,
    due_ms     INTEGER,
    version    INTEGER NOT NULL,
    body       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS scans_by_owner   ON scans(account, region, created_ms, scan_id);
CREATE INDEX IF NOT EXISTS scans_by_status  ON scans(account, region, status, created_ms, scan_id);
CREATE INDEX IF NOT EXISTS scans_by_image   ON scans(account, region, image_id, created_ms, scan_id);
CREATE INDEX IF NOT EXISTS scans_by_product ON scans(account, region, product_id, created_ms, scan_id);
CREATE INDEX IF NOT EXISTS scans_latest     ON scans(account, region, latest, created_ms, scan_id);
CREATE INDEX IF NOT EXISTS scans_due        ON scans(due_ms) WHERE due_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS docs (
    kind TEXT NOT NULL, id TEXT NOT NULL, owner TEXT NOT NULL, version INTEGER NOT NULL,
    due_ms INTEGER, sort TEXT NOT NULL, body TEXT NOT NULL, UNIQUE (kind, id)
);
CREATE INDEX IF NOT EXISTS docs_by_owner ON docs(kind, owner, sort);
CREATE INDEX IF NOT EXISTS docs_due ON docs(kind, due_ms) WHERE due_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '1');
";

const READERS: usize = 4;

struct Inner {
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    decoded: Mutex<DecodedCache>,
    /// The newest builds of recently listed owners, kept by the writer (see `newest`).
    newest: Newest,
    /// Bumped after every write transaction (see `Store::generation`).
    generation: AtomicU64,
    /// Writes waiting for the next group commit (see `write`).
    pending: Mutex<Vec<Job>>,
    /// True while a committer task is draining `pending`.
    committing: std::sync::atomic::AtomicBool,
    /// Held for the store's life: one process per data dir (`None` in memory).
    _dir_lock: Option<std::fs::File>,
    /// Group-commit sizes and COMMIT latency.
    metrics: super::metrics::StoreMetrics,
}

/// The SQLite-backed store.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

/// Takes an exclusive lock on `DIR/imagebuild.lock` (waiting up to a second for a holder on
/// its way out), released when the store is dropped or the process ends (even by SIGKILL). Two servers on one data dir would each believe their caches; the second refuses.
fn lock_data_dir(dir: &Path) -> Result<std::fs::File, StoreError> {
    let path = dir.join("imagebuild.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    // A previous holder may still be on its way out (a restart): give it a moment.
    let mut waited = 0;
    loop {
        match file.try_lock() {
            Err(std::fs::TryLockError::WouldBlock) if waited < 50 => {
                waited += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => break lock_outcome(other, file, dir, &path),
        }
    }
}

fn lock_outcome(
    outcome: Result<(), std::fs::TryLockError>,
    file: std::fs::File,
    dir: &Path,
    path: &Path,
) -> Result<std::fs::File, StoreError> {
    match outcome {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Unavailable(format!(
            "data dir {} is in use by another imagebuild process (it holds {})",
            dir.display(),
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Unavailable(format!(
            "cannot lock {}: {e}",
            path.display()
        ))),
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database `imagebuild.db` in `dir` and claims the
    /// directory for this process (`imagebuild.lock`) for as long as the store lives.
    ///
    /// # Errors
    /// `StoreError::Unavailable` when the directory or database cannot be opened, or another
    /// process has claimed the directory.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(dir, true)
    }

    /// Opens the store in `dir` without claiming it, for maintenance that writes only what a
    /// running server reads once at start (`rotate-keys`), so it may run beside the server.
    ///
    /// # Errors
    /// As `open`, except that a running server is no obstacle.
    pub fn open_beside_server(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(dir, false)
    }

    fn open_with(dir: &Path, claim: bool) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create data dir {}: {e}", dir.display()))
        })?;
        let dir_lock = if claim {
            Some(lock_data_dir(dir)?)
        } else {
            None
        };
        let path = dir.join("imagebuild.db");
        let writer = Connection::open(&path).map_err(unavailable)?;
        configure(&writer, true)?;
        writer.execute_batch(SCHEMA).map_err(unavailable)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let r = Connection::open(&path).map_err(unavailable)?;
            configure(&r, false)?;
            readers.push(r);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                writer: Mutex::new(writer),
                readers: Mutex::new(readers),
                decoded: Mutex::default(),
                newest: Newest::default(),
                generation: AtomicU64::new(0),
                pending: Mutex::default(),
                committing: std::sync::atomic::AtomicBool::new(false),
                _dir_lock: dir_lock,
                metrics: super::metrics::StoreMetrics::default(),
            }),
        })
    }

    /// Opens a private in-memory database (tests, `--in-memory`); nothing survives the process.
    ///
    /// # Errors
    /// `StoreError::Unavailable` if SQLite cannot allocate it.
    pub fn in_memory() -> Result<Self, StoreError> {
        let writer = Connection::open_in_memory().map_err(unavailable)?;
        writer.execute_batch(SCHEMA).map_err(unavailable)?;
        Ok(Self {
            inner: Arc::new(Inner {
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                decoded: Mutex::default(),
                newest: Newest::default(),
                generation: AtomicU64::new(0),
                pending: Mutex::default(),
                committing: std::sync::atomic::AtomicBool::new(false),
                _dir_lock: None,
                metrics: super::metrics::StoreMetrics::default(),
            }),
        })
    }

    /// This store's instruments (shared: clones record into the same series).
    #[must_use]
    pub fn metrics(&self) -> super::metrics::StoreMetrics {
        self.inner.metrics.clone()
    }

    /// Bulk-loads builds in one transaction (benchmarks and large fixtures); no tokens, no
    /// limit checks, no notifications.
    ///
    /// # Errors
    /// `StoreError::Unavailable` if the transaction fails (nothing is written then).
    pub async fn import_builds(&self, builds: Vec<Build>) -> Result<(), StoreError> {
        self.write_changing(move |tx| {
            for b in &builds {
                insert_build(tx, b)?;
            }
            let changes = builds
                .into_iter()
                .map(|b| Change::Upsert(Arc::new(b)))
                .collect();
            Ok(((), changes))
        })
        .await
    }

    /// Runs `f` as one atomic unit of writes and answers once it is durable.
    ///
    /// Group commit: concurrent writes queue up; whichever blocking task next holds the writer
    /// connection runs every queued write inside one `BEGIN IMMEDIATE … COMMIT`, each in its
    /// own savepoint (rolled back alone if it fails), so N concurrent writers share one fsync.
    /// Nobody hears of a write before the COMMIT that makes it durable; if the COMMIT fails,
    /// every write of the group fails and none is acknowledged.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_changing(move |conn| f(conn).map(|t| (t, Vec::new())))
            .await
    }

    /// `write` for writes that change builds: `f` also says what changed, which the writer
    /// applies to the in-memory windows once the group is committed (see `newest`).
    async fn write_changing<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<(T, Vec<Change>), StoreError> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let (out, changes) = match f(conn) {
                Ok((t, changes)) => (Ok(t), changes),
                Err(e) => (Err(e), Vec::new()),
            };
            let ok = out.is_ok();
            let complete: Completion = Box::new(move |committed| {
                let _ = answer.send(committed.map_err(StoreError::Unavailable).and(out));
            });
            (ok, complete, changes)
        });
        self.inner
            .pending
            .lock()
            .map_err(|_| StoreError::Unavailable("write queue poisoned".into()))?
            .push(job);
        // One committer at a time drains the queue; it is started only when none is running,
        // so concurrent writers wake one thread, not one each.
        if !self.inner.committing.swap(true, Ordering::AcqRel) {
            let inner = self.inner.clone();
            tokio::task::spawn_blocking(move || inner.commit_until_empty());
        }
        answered.await.map_err(|_| {
            StoreError::Unavailable("the write was not performed (see the log)".into())
        })?
    }

    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        // Reads are bounded (keyset pages, point lookups), so a free reader connection runs
        // them right here: a hop to the blocking pool costs more than the query. Only when every
        // reader is busy (or there are none, in memory) does the read wait on the blocking pool.
        let pooled = self.inner.readers.lock().ok().and_then(|mut p| p.pop());
        if let Some(conn) = pooled {
            let out = f(&conn);
            if let Ok(mut pool) = self.inner.readers.lock() {
                pool.push(conn);
            }
            return out;
        }
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().ok().and_then(|mut p| p.pop());
            if let Some(conn) = pooled {
                let out = f(&conn);
                if let Ok(mut pool) = inner.readers.lock() {
                    pool.push(conn);
                }
                out
            } else {
                let conn = inner
                    .writer
                    .lock()
                    .map_err(|_| StoreError::Unavailable("writer connection poisoned".into()))?;
                f(&conn)
            }
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("store task failed: {e}")))?
    }
}

/// Called with the group's COMMIT outcome; sends the write's answer.
type Completion = Box<dyn FnOnce(Result<(), String>) + Send>;
/// One queued write: runs on the writer connection, says whether it succeeded and what it
/// changed.
type Job = Box<dyn FnOnce(&Connection) -> (bool, Completion, Vec<Change>) + Send>;

impl Inner {
    /// The committer: runs groups until the queue is empty, then steps down (and steps back up
    /// if a write slipped in meanwhile, so no queued write is left without a committer).
    fn commit_until_empty(&self) {
        // Should a write panic, the committer still steps down (on unwind), so the next
        // writer starts another one and hears of the poisoned connection instead of waiting.
        struct StepDown<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for StepDown<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.store(false, Ordering::Release);
                }
            }
        }
        let _step_down = StepDown(&self.committing);
        loop {
            if let Err(e) = self.run_pending() {
                tracing::error!(error = %e, "group commit failed");
            }
            self.committing.store(false, Ordering::Release);
            let more = self.pending.lock().is_ok_and(|p| !p.is_empty());
            if !more || self.committing.swap(true, Ordering::AcqRel) {
                return;
            }
        }
    }

    /// Runs every queued write in one transaction (see `SqliteStore::write`).
    fn run_pending(&self) -> Result<(), StoreError> {
        let jobs = std::mem::take(
            &mut *self
                .pending
                .lock()
                .map_err(|_| StoreError::Unavailable("write queue poisoned".into()))?,
        );
        if jobs.is_empty() {
            return Ok(());
        }
        // Taken before the connection: if it is unusable, these jobs are dropped (each of
        // their writers hears of the failure) rather than retried forever.
        let conn = self
            .writer
            .lock()
            .map_err(|_| StoreError::Unavailable("writer connection poisoned".into()))?;
        // Transaction control through the statement cache too: parsing these per write cost
        // as much as the writes.
        let run = |sql: &str| conn.prepare_cached(sql).and_then(|mut st| st.execute([]));
        if let Err(e) = run("BEGIN IMMEDIATE") {
            // Dropping the jobs unanswered fails each of them; nothing was written.
            tracing::error!(error = %e, writes = jobs.len(), "cannot begin a write transaction");
            return Ok(());
        }
        let mut completions = Vec::with_capacity(jobs.len());
        let mut changes = Vec::new();
        // A savepoint that could not be closed leaves the changes of this group unknown.
        let mut changes_known = true;
        for job in jobs {
            // Each write is atomic on its own: a write that fails is rolled back to here.
            if let Err(e) = run("SAVEPOINT job") {
                tracing::error!(error = %e, "cannot open a savepoint; the write is dropped");
                continue;
            }
            let (ok, complete, changed) = job(&conn);
            let closed = if ok {
                run("RELEASE job")
            } else {
                run("ROLLBACK TO job").and_then(|_| run("RELEASE job"))
            };
            if let Err(e) = closed {
                tracing::error!(error = %e, "cannot close a savepoint");
                changes_known = false;
            } else if ok {
                changes.extend(changed);
            }
            completions.push(complete);
        }
        let commit_started = std::time::Instant::now();
        let committed = run("COMMIT").map(|_| ()).map_err(|e| e.to_string());
        self.metrics
            .commit_seconds
            .observe(commit_started.elapsed().as_secs_f64());
        #[allow(clippy::cast_precision_loss)] // a group is at most a few thousand writes
        self.metrics
            .group_commit_writes
            .observe(completions.len() as f64);
        if committed.is_err() && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        // After the commit and before any writer's caller hears of it. A failed COMMIT may
        // still have written (an I/O error past the WAL append): then the windows start over.
        if committed.is_ok() && changes_known {
            self.newest.apply(&changes);
        } else {
            self.newest.clear();
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
        drop(conn);
        for complete in completions {
            complete(committed.clone());
        }
        Ok(())
    }
}

/// `execute` through the connection's statement cache (writes run the same few statements).
fn exec(c: &Connection, sql: &str, p: impl rusqlite::Params) -> rusqlite::Result<usize> {
    c.prepare_cached(sql)?.execute(p)
}

/// `query_row` through the connection's statement cache.
fn row<T>(
    c: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    c.prepare_cached(sql)?.query_row(p, f)
}

fn configure(conn: &Connection, writer: bool) -> Result<(), StoreError> {
    conn.set_prepared_statement_cache_capacity(64);
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(unavailable)?;
    if writer {
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(unavailable)?;
    }
    // FULL: the WAL is fsynced at every commit, so a response sent after commit is durable.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(unavailable)?;
    conn.pragma_update(None, "foreign_keys", "OFF")
        .map_err(unavailable)?;
    Ok(())
}

fn decode_build(body: &str) -> Result<Build, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("build record: {e}")))
}

fn encode<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(format!("encoding record: {e}")))
}

fn adjust_in_progress(
    tx: &Connection,
    account: &str,
    region: &str,
    delta: i64,
) -> Result<(), StoreError> {
    exec(
        tx,
        "INSERT INTO in_progress(account, region, n) VALUES (?1, ?2, ?3) \
         ON CONFLICT(account, region) DO UPDATE SET n = n + ?3",
        params![account, region, delta],
    )
    .map_err(unavailable)?;
    Ok(())
}

fn insert_build(tx: &Connection, b: &Build) -> Result<(), StoreError> {
    if b.status == BuildStatus::InProgress {
        adjust_in_progress(tx, &b.account, &b.region, 1)?;
    }
    exec(
        tx,
        "INSERT INTO builds(build_id, account, region, created_ms, status, due_ms, version, body) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            b.build_id,
            b.account,
            b.region,
            b.created_ms,
            b.status.as_str(),
            b.due_ms,
            i64::try_from(b.version).unwrap_or(i64::MAX),
            encode(b)?
        ],
    )
    .map_err(unavailable)?;
    for fo in &b.fulfillment_option_ids {
        exec(tx,
            "INSERT OR IGNORE INTO build_options(account, region, fo_id, created_ms, build_id) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![b.account, b.region, fo, b.created_ms, b.build_id],
        )
        .map_err(unavailable)?;
    }
    for p in &b.products {
        exec(tx,
            "INSERT OR IGNORE INTO build_products(account, region, product_id, created_ms, build_id) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![b.account, b.region, p.id, b.created_ms, b.build_id],
        )
        .map_err(unavailable)?;
    }
    Ok(())
}

fn insert_notification(tx: &Connection, n: &Notification) -> Result<(), StoreError> {
    exec(
        tx,
        "INSERT INTO outbox(topic, body, created_ms) VALUES (?1, ?2, ?3)",
        params![n.topic_arn, encode(n)?, n.created_ms],
    )
    .map_err(unavailable)?;
    Ok(())
}

/// StartBuild's write: the client token (a replay answers the first build), the limit of
/// builds in progress, then the build, its token and its notification.
fn create_in(
    tx: &Connection,
    build: &Build,
    token: Option<&TokenClaim>,
    max_in_progress: u32,
    notification: Option<&Notification>,
) -> Result<CreateOutcome, StoreError> {
    if let Some(t) = token {
        let prior: Option<(String, String)> = row(tx,
                "SELECT param_hash, build_id FROM tokens WHERE account = ?1 AND region = ?2 AND operation = 'StartBuild' AND token = ?3",
                params![build.account, build.region, t.token],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(unavailable)?;
        if let Some((hash, build_id)) = prior {
            if hash != t.param_hash {
                return Ok(CreateOutcome::TokenMismatch);
            }
            let body: String = row(
                tx,
                "SELECT body FROM builds WHERE build_id = ?1",
                [build_id],
                |r| r.get(0),
            )
            .map_err(unavailable)?;
            return Ok(CreateOutcome::Replayed(Box::new(decode_build(&body)?)));
        }
    }
    // A counter kept in step with every status change: O(1), not O(builds in progress).
    let in_progress: i64 = row(
        tx,
        "SELECT n FROM in_progress WHERE account = ?1 AND region = ?2",
        params![build.account, build.region],
        |r| r.get(0),
    )
    .optional()
    .map_err(unavailable)?
    .unwrap_or(0);
    if in_progress >= i64::from(max_in_progress) {
        return Ok(CreateOutcome::LimitExceeded {
            limit: max_in_progress,
        });
    }
    insert_build(tx, build)?;
    if let Some(t) = token {
        exec(tx,
            "INSERT INTO tokens(account, region, operation, token, param_hash, build_id, created_ms) VALUES (?1, ?2, 'StartBuild', ?3, ?4, ?5, ?6)",
            params![build.account, build.region, t.token, t.param_hash, build.build_id, build.created_ms],
        )
        .map_err(unavailable)?;
    }
    if let Some(n) = notification {
        insert_notification(tx, n)?;
    }
    Ok(CreateOutcome::Created)
}

/// Decoded builds by id, reused while their version is unchanged: listings mostly return
/// finished builds, which never change, so decoding each row's JSON again is wasted work.
#[derive(Default)]
struct DecodedCache {
    by_id: HashMap<String, (i64, Arc<Build>)>,
}

/// Most builds kept decoded; past this the cache starts over (bounded memory, no bookkeeping).
const DECODED_CACHE_MAX: usize = 50_000;

/// Runs a statement selecting `(build_id, version, body)` and returns the builds, decoding
/// only rows the cache does not already hold at that version.
fn collect_builds(
    cache: &Mutex<DecodedCache>,
    stmt: &mut rusqlite::Statement<'_>,
    args: &[Value],
) -> Result<Vec<Arc<Build>>, StoreError> {
    let mut cache = cache
        .lock()
        .map_err(|_| StoreError::Unavailable("decoded-build cache poisoned".into()))?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(args.iter()))
        .map_err(unavailable)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(unavailable)? {
        let id = row
            .get_ref(0)
            .and_then(|v| Ok(v.as_str()?))
            .map_err(unavailable)?;
        let version: i64 = row.get(1).map_err(unavailable)?;
        if let Some((v, b)) = cache.by_id.get(id) {
            if *v == version {
                out.push(b.clone());
                continue;
            }
        }
        let body = row
            .get_ref(2)
            .and_then(|v| Ok(v.as_str()?))
            .map_err(unavailable)?;
        let build = Arc::new(decode_build(body)?);
        if cache.by_id.len() >= DECODED_CACHE_MAX {
            cache.by_id.clear();
        }
        cache
            .by_id
            .insert(build.build_id.clone(), (version, build.clone()));
        out.push(build);
    }
    Ok(out)
}

/// Which index drives a listing.
enum Driver<'a> {
    Options(&'a [String]),
    Products(&'a [String]),
    Status(&'a [BuildStatus]),
    Owner,
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(",")
}

/// The keyset queries of a listing without build ids: one per value of the driving filter
/// (fulfillment option, else product, else status, else none), each walking its index newest
/// first from the cursor and stopping after `fetch` rows; other criteria are residual.
fn listing_statements(
    q: &BuildQuery,
    after: Option<&Cursor>,
    fetch: usize,
) -> Vec<(String, Vec<Value>)> {
    let driver = if let Some(f) = &q.fulfillment_option_ids {
        Driver::Options(f)
    } else if let Some(p) = &q.product_ids {
        Driver::Products(p)
    } else if let Some(s) = &q.statuses {
        Driver::Status(s)
    } else {
        Driver::Owner
    };
    let values: Vec<Option<Value>> = match driver {
        Driver::Options(v) | Driver::Products(v) => {
            v.iter().map(|x| Some(Value::Text(x.clone()))).collect()
        }
        Driver::Status(s) => s
            .iter()
            .map(|x| Some(Value::Text(x.as_str().to_string())))
            .collect(),
        Driver::Owner => vec![None],
    };
    let (from, key_col, t) = match driver {
        Driver::Options(_) => (
            "build_options d JOIN builds b ON b.build_id = d.build_id",
            Some("d.fo_id"),
            "d",
        ),
        Driver::Products(_) => (
            "build_products d JOIN builds b ON b.build_id = d.build_id",
            Some("d.product_id"),
            "d",
        ),
        Driver::Status(_) => ("builds b", Some("b.status"), "b"),
        Driver::Owner => ("builds b", None, "b"),
    };
    let mut statements = Vec::new();
    for value in values {
        let mut sql = format!("SELECT b.build_id, b.version, b.body FROM {from} WHERE {t}.account = ? AND {t}.region = ?");
        let mut args = vec![
            Value::Text(q.account.clone()),
            Value::Text(q.region.clone()),
        ];
        if let (Some(col), Some(v)) = (key_col, value) {
            sql.push_str(&format!(" AND {col} = ?"));
            args.push(v);
        }
        if let Some(c) = after {
            sql.push_str(&format!(" AND ({t}.created_ms, {t}.build_id) < (?, ?)"));
            args.push(Value::Integer(c.created_ms));
            args.push(Value::Text(c.build_id.clone()));
        }
        // Residual criteria that are not the driver.
        if !matches!(driver, Driver::Status(_)) {
            if let Some(s) = &q.statuses {
                sql.push_str(&format!(" AND b.status IN ({})", placeholders(s.len())));
                args.extend(s.iter().map(|x| Value::Text(x.as_str().to_string())));
            }
        }
        if !matches!(driver, Driver::Products(_)) {
            if let Some(p) = &q.product_ids {
                sql.push_str(&format!(
                    " AND EXISTS (SELECT 1 FROM build_products p WHERE p.account = b.account AND p.region = b.region \
                     AND p.product_id IN ({}) AND p.created_ms = b.created_ms AND p.build_id = b.build_id)",
                    placeholders(p.len())
                ));
                args.extend(p.iter().map(|x| Value::Text(x.clone())));
            }
        }
        sql.push_str(&format!(
            " ORDER BY {t}.created_ms DESC, {t}.build_id DESC LIMIT {fetch}"
        ));
        statements.push((sql, args));
    }
    statements
}

fn list_sql(
    conn: &Connection,
    cache: &Mutex<DecodedCache>,
    q: &BuildQuery,
    after: Option<&Cursor>,
    limit: usize,
) -> Result<Vec<Arc<Build>>, StoreError> {
    let fetch = limit + 1;
    if let Some(ids) = &q.build_ids {
        // Direct lookups (at most 50 + filter values), then the rest of the query in code.
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT build_id, version, body FROM builds WHERE account = ? AND region = ? AND build_id IN ({})",
            placeholders(ids.len())
        );
        let mut args = vec![
            Value::Text(q.account.clone()),
            Value::Text(q.region.clone()),
        ];
        args.extend(ids.iter().map(|i| Value::Text(i.clone())));
        let mut stmt = conn.prepare(&sql).map_err(unavailable)?;
        let mut builds: Vec<Arc<Build>> = collect_builds(cache, &mut stmt, &args)?
            .into_iter()
            .filter(|b| q.matches(b) && after.is_none_or(|c| c.precedes(b)))
            .collect();
        builds.sort_by(|a, b| (b.created_ms, &b.build_id).cmp(&(a.created_ms, &a.build_id)));
        builds.truncate(fetch);
        return Ok(builds);
    }
    let mut merged: Vec<Arc<Build>> = Vec::new();
    for (sql, args) in listing_statements(q, after, fetch) {
        let mut stmt = conn.prepare_cached(&sql).map_err(unavailable)?;
        merged.extend(collect_builds(cache, &mut stmt, &args)?);
    }
    merged.sort_by(|a, b| (b.created_ms, &b.build_id).cmp(&(a.created_ms, &a.build_id)));
    merged.dedup_by(|a, b| a.build_id == b.build_id);
    merged.truncate(fetch);
    Ok(merged)
}

fn load_keys(tx: &Connection, purpose: &str) -> Result<Vec<SigningKey>, StoreError> {
    let mut stmt = tx
        .prepare(
            "SELECT id, value, created_ms FROM signing_keys WHERE purpose = ?1 ORDER BY id DESC",
        )
        .map_err(unavailable)?;
    let rows = stmt
        .query_map([purpose], |r| {
            Ok(SigningKey {
                id: r.get(0)?,
                key: r.get(1)?,
                created_ms: r.get(2)?,
            })
        })
        .map_err(unavailable)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
}

fn add_key(tx: &Connection, purpose: &str, id: i64, now_ms: i64) -> Result<SigningKey, StoreError> {
    let mut key = vec![0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    exec(
        tx,
        "INSERT INTO signing_keys(purpose, id, value, created_ms) VALUES (?1, ?2, ?3, ?4)",
        params![purpose, id, key, now_ms],
    )
    .map_err(unavailable)?;
    Ok(SigningKey {
        id,
        key,
        created_ms: now_ms,
    })
}

fn query_outbox(conn: &Connection, sql: &str, arg: Value) -> Result<Vec<OutboxEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(unavailable)?;
    let rows = stmt
        .query_map([arg], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<i64>>(2)?,
            ))
        })
        .map_err(unavailable)?;
    let mut out = Vec::new();
    for row in rows {
        let (id, body, delivered_ms) = row.map_err(unavailable)?;
        let notification = serde_json::from_str(&body)
            .map_err(|e| StoreError::Corrupt(format!("outbox entry {id}: {e}")))?;
        out.push(OutboxEntry {
            // zero-padded, so ids sort in queueing order as strings too
            id: format!("{id:020}"),
            notification,
            delivered_ms,
        });
    }
    Ok(out)
}

const SCAN_COLUMNS: &str = "scan_id, latest, body";

const DOC_COLUMNS: &str = "kind, id, owner, version, due_ms, sort, body";

fn query_docs(conn: &Connection, sql: &str, args: &[Value]) -> Result<Vec<Doc>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(unavailable)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args.iter()), |r| {
            Ok(Doc {
                kind: r.get(0)?,
                id: r.get(1)?,
                owner: r.get(2)?,
                version: u64::try_from(r.get::<_, i64>(3)?).unwrap_or_default(),
                due_ms: r.get(4)?,
                sort: r.get(5)?,
                body: r.get(6)?,
            })
        })
        .map_err(unavailable)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
}

/// One conditional document write inside the caller's transaction.
fn write_doc(tx: &Connection, w: &DocWrite) -> Result<(), StoreError> {
    let version = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let changed = match w {
        DocWrite::Put { doc, expected: None } => exec(
            tx,
            "INSERT OR IGNORE INTO docs(kind, id, owner, version, due_ms, sort, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![doc.kind, doc.id, doc.owner, version(doc.version), doc.due_ms, doc.sort, doc.body],
        ),
        DocWrite::Put { doc, expected: Some(old) } => exec(
            tx,
            "UPDATE docs SET owner = ?3, version = ?4, due_ms = ?5, sort = ?6, body = ?7 WHERE kind = ?1 AND id = ?2 AND version = ?8",
            params![doc.kind, doc.id, doc.owner, version(doc.version), doc.due_ms, doc.sort, doc.body, version(*old)],
        ),
        DocWrite::Count { kind, id, owner, delta, max } => {
            exec(
                tx,
                "INSERT OR IGNORE INTO docs(kind, id, owner, version, due_ms, sort, body) VALUES (?1, ?2, ?3, 0, NULL, ?2, '')",
                params![kind, id, owner],
            )
            .map_err(unavailable)?;
            exec(
                tx,
                "UPDATE docs SET version = MAX(version + ?3, 0) WHERE kind = ?1 AND id = ?2 AND (?3 < 0 OR version + ?3 <= ?4)",
                params![kind, id, delta, max],
            )
        }
        DocWrite::Delete { kind, id, expected } => exec(
            tx,
            "DELETE FROM docs WHERE kind = ?1 AND id = ?2 AND version = ?3",
            params![kind, id, version(*expected)],
        ),
    }
    .map_err(unavailable)?;
    if changed == 1 {
        Ok(())
    } else {
        Err(StoreError::ConditionFailed)
    }
}

fn scan_from_row(row: &rusqlite::Row<'_>) -> Result<Scan, StoreError> {
    let latest: i64 = row.get(1).map_err(unavailable)?;
    let body = row
        .get_ref(2)
        .and_then(|v| Ok(v.as_str()?))
        .map_err(unavailable)?;
    let mut scan: Scan =
        serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("scan record: {e}")))?;
    scan.latest = latest != 0;
    Ok(scan)
}

fn query_scans(conn: &Connection, sql: &str, args: &[Value]) -> Result<Vec<Scan>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(unavailable)?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(args.iter()))
        .map_err(unavailable)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(unavailable)? {
        out.push(scan_from_row(row)?);
    }
    Ok(out)
}

const ACTIVE_SCAN_STATUSES: &str = "('Ingesting', 'Scanning')";

/// The keyset queries of a scan listing without scan ids: one per value of the driving
/// criterion (image, else product, else status, else latest, else owner), each walking its
/// index newest first from the cursor; the other criteria are residual.
fn scan_listing_statements(
    q: &ScanQuery,
    after: Option<&Cursor>,
    fetch: usize,
) -> Vec<(String, Vec<Value>)> {
    let text = |v: &String| Value::Text(v.clone());
    let (col, values): (Option<&str>, Vec<Value>) = if let Some(v) = &q.image_ids {
        (Some("image_id"), v.iter().map(text).collect())
    } else if let Some(v) = &q.product_ids {
        (Some("product_id"), v.iter().map(text).collect())
    } else if let Some(v) = &q.statuses {
        (
            Some("status"),
            v.iter()
                .map(|s| Value::Text(s.as_str().to_string()))
                .collect(),
        )
    } else if q.latest_only {
        (Some("latest"), vec![Value::Integer(1)])
    } else {
        (None, vec![Value::Null])
    };
    let mut out = Vec::new();
    for value in values {
        let mut sql = format!("SELECT {SCAN_COLUMNS} FROM scans WHERE account = ? AND region = ?");
        let mut args = vec![
            Value::Text(q.account.clone()),
            Value::Text(q.region.clone()),
        ];
        if let Some(c) = col {
            sql.push_str(&format!(" AND {c} = ?"));
            args.push(value);
        }
        if let Some(c) = after {
            sql.push_str(" AND (created_ms, scan_id) < (?, ?)");
            args.push(Value::Integer(c.created_ms));
            args.push(Value::Text(c.build_id.clone()));
        }
        let residual: [(&str, Option<Vec<Value>>); 3] = [
            (
                "image_id",
                q.image_ids.as_ref().map(|v| v.iter().map(text).collect()),
            ),
            (
                "product_id",
                q.product_ids.as_ref().map(|v| v.iter().map(text).collect()),
            ),
            (
                "status",
                q.statuses.as_ref().map(|v| {
                    v.iter()
                        .map(|s| Value::Text(s.as_str().to_string()))
                        .collect()
                }),
            ),
        ];
        for (name, vals) in residual {
            if let Some(vals) = vals.filter(|_| Some(name) != col) {
                sql.push_str(&format!(" AND {name} IN ({})", placeholders(vals.len())));
                args.extend(vals);
            }
        }
        if q.latest_only && col != Some("latest") {
            sql.push_str(" AND latest = 1");
        }
        sql.push_str(&format!(
            " ORDER BY created_ms DESC, scan_id DESC LIMIT {fetch}"
        ));
        out.push((sql, args));
    }
    out
}

fn newest_first(scans: &mut Vec<Scan>) {
    scans.sort_by(|a, b| (b.created_ms, &b.scan_id).cmp(&(a.created_ms, &a.scan_id)));
    scans.dedup_by(|a, b| a.scan_id == b.scan_id);
}

fn list_scans_sql(
    conn: &Connection,
    q: &ScanQuery,
    after: Option<&Cursor>,
    fetch: usize,
) -> Result<Vec<Scan>, StoreError> {
    if let Some(ids) = &q.scan_ids {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {SCAN_COLUMNS} FROM scans WHERE account = ? AND region = ? AND scan_id IN ({})",
            placeholders(ids.len())
        );
        let mut args = vec![
            Value::Text(q.account.clone()),
            Value::Text(q.region.clone()),
        ];
        args.extend(ids.iter().map(|i| Value::Text(i.clone())));
        let mut scans: Vec<Scan> = query_scans(conn, &sql, &args)?
            .into_iter()
            .filter(|s| q.matches(s) && after.is_none_or(|c| c.precedes_scan(s)))
            .collect();
        newest_first(&mut scans);
        scans.truncate(fetch);
        return Ok(scans);
    }
    let mut merged = Vec::new();
    for (sql, args) in scan_listing_statements(q, after, fetch) {
        merged.extend(query_scans(conn, &sql, &args)?);
    }
    newest_first(&mut merged);
    merged.truncate(fetch);
    Ok(merged)
}

fn insert_scan(tx: &Connection, s: &Scan) -> Result<(), StoreError> {
    exec(tx,
        "INSERT INTO scans(scan_id, account, region, image_id, product_id, created_ms, status, latest, due_ms, version, body) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?9, ?10)",
        params![
            s.scan_id,
            s.account,
            s.region,
            s.source_image_id,
            s.product_id,
            s.created_ms,
            s.status.as_str(),
            s.due_ms,
            i64::try_from(s.version).unwrap_or(i64::MAX),
            encode(s)?
        ],
    )
    .map_err(unavailable)?;
    Ok(())
}

/// The checks and inserts of `create_scans`, inside the caller's transaction.
fn create_scans_tx(
    tx: &Connection,
    operation: &str,
    scans: &[Scan],
    token: Option<&TokenClaim>,
    max_in_progress: u32,
) -> Result<ScanCreateOutcome, StoreError> {
    let Some(first) = scans.first() else {
        return Ok(ScanCreateOutcome::Created);
    };
    let (account, region) = (&first.account, &first.region);
    if let Some(t) = token {
        let prior: Option<(String, String)> = row(tx,
                "SELECT param_hash, build_id FROM tokens WHERE account = ?1 AND region = ?2 AND operation = ?3 AND token = ?4",
                params![account, region, operation, t.token],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(unavailable)?;
        if let Some((hash, ids)) = prior {
            if hash != t.param_hash {
                return Ok(ScanCreateOutcome::TokenMismatch);
            }
            let mut original = Vec::new();
            for id in ids.split(',') {
                let sql = format!("SELECT {SCAN_COLUMNS} FROM scans WHERE scan_id = ?");
                original.extend(query_scans(tx, &sql, &[Value::Text(id.to_string())])?);
            }
            return Ok(ScanCreateOutcome::Replayed(original));
        }
    }
    for s in scans {
        let latest: Option<(String, String)> = row(tx,
                "SELECT scan_id, status FROM scans WHERE account = ?1 AND region = ?2 AND image_id = ?3 AND latest = 1",
                params![account, region, s.source_image_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(unavailable)?;
        if let Some((id, status)) = &latest {
            if ScanStatus::from_wire(status).is_none_or(|st| !st.is_terminal()) {
                return Ok(ScanCreateOutcome::InProgress {
                    image_id: s.source_image_id.clone(),
                    scan_id: id.clone(),
                });
            }
        }
        if let Some(prev) = &s.previous_scan_id {
            let latest_id = latest.map(|(id, _)| id).unwrap_or_default();
            if &latest_id != prev {
                return Ok(ScanCreateOutcome::NotLatest {
                    scan_id: prev.clone(),
                    latest_scan_id: latest_id,
                });
            }
        }
    }
    // Bounded by the limit itself: the index never holds more active rows than the limit.
    let active: i64 = row(tx,
            &format!("SELECT count(*) FROM scans WHERE account = ?1 AND region = ?2 AND status IN {ACTIVE_SCAN_STATUSES}"),
            params![account, region],
            |r| r.get(0),
        )
        .map_err(unavailable)?;
    let wanted = i64::try_from(scans.len()).unwrap_or(i64::MAX);
    if active + wanted > i64::from(max_in_progress) {
        return Ok(ScanCreateOutcome::LimitExceeded {
            limit: max_in_progress,
        });
    }
    for s in scans {
        exec(tx,
            "UPDATE scans SET latest = 0 WHERE account = ?1 AND region = ?2 AND image_id = ?3 AND latest = 1",
            params![account, region, s.source_image_id],
        )
        .map_err(unavailable)?;
        insert_scan(tx, s)?;
    }
    if let Some(t) = token {
        let ids: Vec<&str> = scans.iter().map(|s| s.scan_id.as_str()).collect();
        exec(tx,
            "INSERT INTO tokens(account, region, operation, token, param_hash, build_id, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![account, region, operation, t.token, t.param_hash, ids.join(","), first.created_ms],
        )
        .map_err(unavailable)?;
    }
    Ok(ScanCreateOutcome::Created)
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_build(
        &self,
        build: &Build,
        token: Option<&TokenClaim>,
        max_in_progress: u32,
        notification: Option<&Notification>,
    ) -> Result<CreateOutcome, StoreError> {
        let build = build.clone();
        let token = token.cloned();
        let notification = notification.cloned();
        self.write_changing(move |tx| {
            let outcome = create_in(
                tx,
                &build,
                token.as_ref(),
                max_in_progress,
                notification.as_ref(),
            )?;
            let changes = match outcome {
                CreateOutcome::Created => vec![Change::Upsert(Arc::new(build))],
                _ => Vec::new(),
            };
            Ok((outcome, changes))
        })
        .await
    }

    async fn list_builds(
        &self,
        query: &BuildQuery,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let q = query.clone();
        let after = after.cloned();
        let inner = self.inner.clone();
        self.read(move |conn| {
            // `list_sql` reads one more than it is asked for (is there a next page?).
            let newest = inner.newest.page(&q, after.as_ref(), limit + 1, |n| {
                list_sql(conn, &inner.decoded, &q, None, n)
            })?;
            let mut builds = match newest {
                Some(builds) => builds,
                None => list_sql(conn, &inner.decoded, &q, after.as_ref(), limit)?,
            };
            let next = if builds.len() > limit {
                builds.truncate(limit);
                builds.last().map(|b| Cursor::after(b))
            } else {
                None
            };
            Ok(Page { builds, next })
        })
        .await
    }

    async fn get_build(&self, build_id: &str) -> Result<Option<Build>, StoreError> {
        let id = build_id.to_string();
        self.read(move |conn| {
            let body: Option<String> = conn
                .query_row("SELECT body FROM builds WHERE build_id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(unavailable)?;
            body.as_deref().map(decode_build).transpose()
        })
        .await
    }

    async fn due_builds(&self, now_ms: i64, limit: usize) -> Result<Vec<Build>, StoreError> {
        let inner = self.inner.clone();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT build_id, version, body FROM builds WHERE due_ms IS NOT NULL AND due_ms <= ?1 ORDER BY due_ms LIMIT ?2",
                )
                .map_err(unavailable)?;
            let builds = collect_builds(
                &inner.decoded,
                &mut stmt,
                &[
                    Value::Integer(now_ms),
                    Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)),
                ],
            )?;
            Ok(builds.iter().map(|b| Build::clone(b)).collect())
        })
        .await
    }

    async fn next_due_ms(&self) -> Result<Option<i64>, StoreError> {
        self.read(|conn| {
            conn.query_row(
                "SELECT MIN(d) FROM (SELECT MIN(due_ms) AS d FROM builds WHERE due_ms IS NOT NULL \
                 UNION ALL SELECT MIN(due_ms) FROM scans WHERE due_ms IS NOT NULL)",
                [],
                |r| r.get(0),
            )
            .map_err(unavailable)
        })
        .await
    }

    async fn update_build(
        &self,
        build: &Build,
        expected_version: u64,
        effects: &Effects,
    ) -> Result<(), StoreError> {
        let build = build.clone();
        let effects = effects.clone();
        self.write_changing(move |tx| {
            let previous: Option<String> = row(tx,
                    "SELECT status FROM builds WHERE build_id = ?1 AND version = ?2",
                    params![build.build_id, i64::try_from(expected_version).unwrap_or(i64::MAX)],
                    |r| r.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            let Some(previous) = previous else {
                return Err(StoreError::ConditionFailed);
            };
            let was = previous == BuildStatus::InProgress.as_str();
            let is = build.status == BuildStatus::InProgress;
            if was != is {
                adjust_in_progress(tx, &build.account, &build.region, if is { 1 } else { -1 })?;
            }
            let changed = exec(tx,
                    "UPDATE builds SET status = ?1, due_ms = ?2, version = ?3, body = ?4 WHERE build_id = ?5 AND version = ?6",
                    params![
                        build.status.as_str(),
                        build.due_ms,
                        i64::try_from(build.version).unwrap_or(i64::MAX),
                        encode(&build)?,
                        build.build_id,
                        i64::try_from(expected_version).unwrap_or(i64::MAX)
                    ],
                )
                .map_err(unavailable)?;
            if changed != 1 {
                return Err(StoreError::ConditionFailed);
            }
            if let Some(img) = &effects.image {
                exec(tx,
                    "INSERT OR REPLACE INTO images(region, image_id, body) VALUES (?1, ?2, ?3)",
                    params![img.region, img.image_id, encode(img)?],
                )
                .map_err(unavailable)?;
            }
            if let Some(logs) = &effects.logs {
                exec(tx,
                    "INSERT OR REPLACE INTO build_logs(build_id, stdout, stderr) VALUES (?1, ?2, ?3)",
                    params![build.build_id, logs.stdout, logs.stderr],
                )
                .map_err(unavailable)?;
            }
            if let Some(n) = &effects.notification {
                insert_notification(tx, n)?;
            }
            Ok(((), vec![Change::Upsert(Arc::new(build))]))
        })
        .await
    }

    async fn create_scans(
        &self,
        operation: &str,
        scans: &[Scan],
        token: Option<&TokenClaim>,
        max_in_progress: u32,
        notifications: &[Notification],
    ) -> Result<ScanCreateOutcome, StoreError> {
        let operation = operation.to_string();
        let scans = scans.to_vec();
        let token = token.cloned();
        let notifications = notifications.to_vec();
        self.write(move |tx| {
            let outcome = create_scans_tx(tx, &operation, &scans, token.as_ref(), max_in_progress)?;
            if outcome == ScanCreateOutcome::Created {
                for n in &notifications {
                    insert_notification(tx, n)?;
                }
            }
            Ok(outcome)
        })
        .await
    }

    async fn list_scans(
        &self,
        query: &ScanQuery,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<ScanPage, StoreError> {
        let q = query.clone();
        let after = after.cloned();
        self.read(move |conn| {
            let mut scans = list_scans_sql(conn, &q, after.as_ref(), limit + 1)?;
            let next = if scans.len() > limit {
                scans.truncate(limit);
                scans.last().map(Cursor::after_scan)
            } else {
                None
            };
            Ok(ScanPage { scans, next })
        })
        .await
    }

    async fn get_scan(&self, scan_id: &str) -> Result<Option<Scan>, StoreError> {
        let id = scan_id.to_string();
        self.read(move |conn| {
            let sql = format!("SELECT {SCAN_COLUMNS} FROM scans WHERE scan_id = ?");
            Ok(query_scans(conn, &sql, &[Value::Text(id)])?
                .into_iter()
                .next())
        })
        .await
    }

    async fn due_scans(&self, now_ms: i64, limit: usize) -> Result<Vec<Scan>, StoreError> {
        self.read(move |conn| {
            let sql = format!("SELECT {SCAN_COLUMNS} FROM scans WHERE due_ms IS NOT NULL AND due_ms <= ? ORDER BY due_ms LIMIT ?");
            query_scans(
                conn,
                &sql,
                &[
                    Value::Integer(now_ms),
                    Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)),
                ],
            )
        })
        .await
    }

    async fn update_scan(
        &self,
        scan: &Scan,
        expected_version: u64,
        notification: Option<&Notification>,
    ) -> Result<(), StoreError> {
        let scan = scan.clone();
        let notification = notification.cloned();
        self.write(move |tx| {
            let changed = exec(tx,
                    "UPDATE scans SET status = ?1, due_ms = ?2, version = ?3, body = ?4 WHERE scan_id = ?5 AND version = ?6",
                    params![
                        scan.status.as_str(),
                        scan.due_ms,
                        i64::try_from(scan.version).unwrap_or(i64::MAX),
                        encode(&scan)?,
                        scan.scan_id,
                        i64::try_from(expected_version).unwrap_or(i64::MAX)
                    ],
                )
                .map_err(unavailable)?;
            if changed != 1 {
                return Err(StoreError::ConditionFailed);
            }
            if let Some(n) = &notification {
                insert_notification(tx, n)?;
            }
            Ok(())
        })
        .await
    }

    async fn created_image(
        &self,
        region: &str,
        image_id: &str,
    ) -> Result<Option<CreatedImage>, StoreError> {
        let (region, image_id) = (region.to_string(), image_id.to_string());
        self.read(move |conn| {
            let body: Option<String> = conn
                .query_row(
                    "SELECT body FROM images WHERE region = ?1 AND image_id = ?2",
                    params![region, image_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            body.map(|b| {
                serde_json::from_str(&b)
                    .map_err(|e| StoreError::Corrupt(format!("image record: {e}")))
            })
            .transpose()
        })
        .await
    }

    async fn pending_notifications(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let limit = Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX));
        self.read(move |conn| {
            query_outbox(
                conn,
                "SELECT id, body, delivered_ms FROM outbox WHERE delivered_ms IS NULL ORDER BY id LIMIT ?1",
                limit,
            )
        })
        .await
    }

    async fn mark_delivered(&self, ids: &[String], now_ms: i64) -> Result<(), StoreError> {
        // Ids are outbox row ids; one that is not a number names no entry.
        let ids: Vec<i64> = ids.iter().filter_map(|i| i.parse().ok()).collect();
        self.write(move |tx| {
            for id in ids {
                exec(
                    tx,
                    "UPDATE outbox SET delivered_ms = ?1 WHERE id = ?2 AND delivered_ms IS NULL",
                    params![now_ms, id],
                )
                .map_err(unavailable)?;
            }
            Ok(())
        })
        .await
    }

    async fn notifications(&self, topic: Option<&str>) -> Result<Vec<OutboxEntry>, StoreError> {
        let topic = topic.map_or(Value::Null, |t| Value::Text(t.to_string()));
        self.read(move |conn| {
            query_outbox(
                conn,
                "SELECT id, body, delivered_ms FROM outbox WHERE ?1 IS NULL OR topic = ?1 ORDER BY id",
                topic,
            )
        })
        .await
    }

    async fn clear_notifications(&self, topic: Option<&str>) -> Result<(), StoreError> {
        let topic = topic.map(str::to_string);
        self.write(move |conn| {
            conn.execute("DELETE FROM outbox WHERE ?1 IS NULL OR topic = ?1", [topic])
                .map(|_| ())
                .map_err(unavailable)
        })
        .await
    }

    async fn reset(&self, account: Option<&str>) -> Result<(), StoreError> {
        let account = account.map(str::to_string);
        self.write_changing(move |tx| {
            match &account {
                None => tx
                    .execute_batch(
                        "DELETE FROM builds; DELETE FROM build_options; DELETE FROM build_products; DELETE FROM tokens; \
                         DELETE FROM images; DELETE FROM build_logs; DELETE FROM outbox; DELETE FROM in_progress; \
                         DELETE FROM scans; DELETE FROM docs;",
                    )
                    .map_err(unavailable)?,
                Some(a) => {
                    exec(tx, "DELETE FROM build_logs WHERE build_id IN (SELECT build_id FROM builds WHERE account = ?1)", [a])
                        .map_err(unavailable)?;
                    for table in ["builds", "build_options", "build_products", "tokens", "in_progress", "scans"] {
                        exec(tx, &format!("DELETE FROM {table} WHERE account = ?1"), [a]).map_err(unavailable)?;
                    }
                    exec(tx, "DELETE FROM docs WHERE owner = ?1", [a]).map_err(unavailable)?;
                }
            }
            Ok(((), vec![Change::Reset(account)]))
        })
        .await?;
        if let Ok(mut cache) = self.inner.decoded.lock() {
            cache.by_id.clear();
        }
        Ok(())
    }

    async fn installer_logs(&self, build_id: &str) -> Result<Option<InstallerLogs>, StoreError> {
        let id = build_id.to_string();
        self.read(move |conn| {
            conn.query_row(
                "SELECT stdout, stderr FROM build_logs WHERE build_id = ?1",
                [id],
                |r| {
                    Ok(InstallerLogs {
                        stdout: r.get(0)?,
                        stderr: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(unavailable)
        })
        .await
    }

    async fn signing_keys(
        &self,
        purpose: &str,
        now_ms: i64,
    ) -> Result<Vec<SigningKey>, StoreError> {
        let purpose = purpose.to_string();
        self.write(move |tx| {
            let mut keys = load_keys(tx, &purpose)?;
            if keys.is_empty() {
                keys.push(add_key(tx, &purpose, 1, now_ms)?);
            }
            Ok(keys)
        })
        .await
    }

    async fn rotate_key(&self, purpose: &str, now_ms: i64) -> Result<SigningKey, StoreError> {
        let purpose = purpose.to_string();
        self.write(move |tx| {
            let next = load_keys(tx, &purpose)?.first().map_or(1, |k| k.id + 1);
            let key = add_key(tx, &purpose, next, now_ms)?;
            Ok(key)
        })
        .await
    }

    async fn get_doc(&self, kind: &str, id: &str) -> Result<Option<Doc>, StoreError> {
        let args = [Value::Text(kind.into()), Value::Text(id.into())];
        self.read(move |conn| {
            let sql = format!("SELECT {DOC_COLUMNS} FROM docs WHERE kind = ?1 AND id = ?2");
            Ok(query_docs(conn, &sql, &args)?.into_iter().next())
        })
        .await
    }

    async fn list_docs(&self, kind: &str, owner: &str) -> Result<Vec<Doc>, StoreError> {
        let args = [Value::Text(kind.into()), Value::Text(owner.into())];
        self.read(move |conn| {
            let sql = format!(
                "SELECT {DOC_COLUMNS} FROM docs WHERE kind = ?1 AND owner = ?2 ORDER BY sort, id"
            );
            query_docs(conn, &sql, &args)
        })
        .await
    }

    async fn page_docs(
        &self,
        kind: &str,
        owner: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Doc>, StoreError> {
        let limit = Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX));
        let mut args = vec![Value::Text(kind.into()), Value::Text(owner.into())];
        let sql = match before {
            Some(b) => {
                args.push(Value::Text(b.into()));
                args.push(limit);
                format!("SELECT {DOC_COLUMNS} FROM docs WHERE kind = ?1 AND owner = ?2 AND sort < ?3 ORDER BY sort DESC LIMIT ?4")
            }
            None => {
                args.push(limit);
                format!("SELECT {DOC_COLUMNS} FROM docs WHERE kind = ?1 AND owner = ?2 ORDER BY sort DESC LIMIT ?3")
            }
        };
        self.read(move |conn| query_docs(conn, &sql, &args)).await
    }

    async fn due_docs(
        &self,
        kind: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<Doc>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let args = [
            Value::Text(kind.into()),
            Value::Integer(now_ms),
            Value::Integer(limit),
        ];
        self.read(move |conn| {
            let sql = format!("SELECT {DOC_COLUMNS} FROM docs WHERE kind = ?1 AND due_ms IS NOT NULL AND due_ms <= ?2 ORDER BY due_ms LIMIT ?3");
            query_docs(conn, &sql, &args)
        })
        .await
    }

    async fn write_docs(&self, writes: &[DocWrite]) -> Result<(), StoreError> {
        let writes = writes.to_vec();
        self.write(move |tx| writes.iter().try_for_each(|w| write_doc(tx, w)))
            .await
    }

    async fn status_counts(&self, doc_kinds: &[&str]) -> Result<Vec<StatusCount>, StoreError> {
        let kinds: Vec<String> = doc_kinds.iter().map(|k| (*k).to_string()).collect();
        self.read(move |conn| {
            let mut out = Vec::new();
            let mut count = |resource: &str, sql: &str, arg: Option<&str>| {
                let mut st = conn.prepare_cached(sql).map_err(unavailable)?;
                let rows = st
                    .query_map(rusqlite::params_from_iter(arg), |r| {
                        Ok((r.get::<_, Option<String>>(0)?, r.get::<_, i64>(1)?))
                    })
                    .map_err(unavailable)?;
                for row in rows {
                    let (status, n) = row.map_err(unavailable)?;
                    out.push(StatusCount {
                        resource: resource.to_string(),
                        status: status.unwrap_or_default(),
                        count: u64::try_from(n).unwrap_or(0),
                    });
                }
                Ok::<(), StoreError>(())
            };
            count(
                "build",
                "SELECT status, COUNT(*) FROM builds GROUP BY status",
                None,
            )?;
            count(
                "scan",
                "SELECT status, COUNT(*) FROM scans GROUP BY status",
                None,
            )?;
            for kind in &kinds {
                let sql = "SELECT json_extract(body, '$.Status'), COUNT(*) FROM docs \
                           WHERE kind = ?1 GROUP BY 1";
                count(kind, sql, Some(kind))?;
            }
            Ok(out)
        })
        .await
    }

    fn generation(&self) -> Option<u64> {
        Some(self.inner.generation.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::newest::WINDOW;

    struct MemoryFactory;
    impl crate::store::conformance::StoreFactory for MemoryFactory {
        async fn create() -> (Arc<dyn Store>, Option<tempfile::TempDir>) {
            (Arc::new(SqliteStore::in_memory().unwrap()), None)
        }
    }

    struct FileFactory;
    impl crate::store::conformance::StoreFactory for FileFactory {
        async fn create() -> (Arc<dyn Store>, Option<tempfile::TempDir>) {
            let dir = tempfile::tempdir().unwrap();
            (Arc::new(SqliteStore::open(dir.path()).unwrap()), Some(dir))
        }
    }

    mod memory {
        crate::store_conformance_suite!(super::MemoryFactory);
        crate::scan_store_conformance_suite!(super::MemoryFactory);
        crate::doc_store_conformance_suite!(super::MemoryFactory);
    }
    mod file {
        crate::store_conformance_suite!(super::FileFactory);
        crate::scan_store_conformance_suite!(super::FileFactory);
        crate::doc_store_conformance_suite!(super::FileFactory);
    }

    /// Every page of `q`, walked with `limit`.
    async fn walk(store: &SqliteStore, q: &BuildQuery, limit: usize) -> Vec<Build> {
        let (mut out, mut after) = (Vec::new(), None);
        loop {
            let page = store.list_builds(q, after.as_ref(), limit).await.unwrap();
            out.extend(page.builds.iter().map(|b| Build::clone(b)));
            assert!(page.builds.len() <= limit);
            match page.next {
                Some(c) => after = Some(c),
                None => return out,
            }
        }
    }

    /// What the builds should be: the reference the windows are checked against.
    struct Model {
        builds: HashMap<String, Build>,
        next_id: u32,
    }

    const OWNERS: [(&str, &str); 3] = [
        ("111111111111", "us-east-1"),
        ("111111111111", "eu-west-1"),
        ("222222222222", "us-east-1"),
    ];

    impl Model {
        fn new_build(&mut self, owner: (&str, &str), created_ms: i64) -> Build {
            self.next_id += 1;
            let id = format!("b-{:05}", self.next_id);
            let mut b = crate::store::conformance::sample_build(owner.0, created_ms, &id);
            b.region = owner.1.into();
            b
        }

        /// One random write to `store` and to the model: a create (newest), an import of
        /// older builds, an update of any build, or (rarely) an account's reset.
        async fn random_write(&mut self, store: &SqliteStore, rng: &mut impl rand::Rng, now: i64) {
            let owner = OWNERS[rng.gen_range(0..OWNERS.len())];
            match rng.gen_range(0..1000) {
                0..=549 => {
                    let b = self.new_build(owner, now);
                    let out = store.create_build(&b, None, u32::MAX, None).await.unwrap();
                    assert_eq!(out, CreateOutcome::Created);
                    self.builds.insert(b.build_id.clone(), b);
                }
                550..=649 => {
                    let batch: Vec<Build> = (0..rng.gen_range(1..20))
                        .map(|_| self.new_build(owner, rng.gen_range(0..now)))
                        .collect();
                    self.builds
                        .extend(batch.iter().map(|b| (b.build_id.clone(), b.clone())));
                    store.import_builds(batch).await.unwrap();
                }
                650..=997 if !self.builds.is_empty() => {
                    let n = rng.gen_range(0..self.builds.len());
                    let mut b = self.builds.values().nth(n).unwrap().clone();
                    b.version += 1;
                    b.status = BuildStatus::Succeeded;
                    b.updated_ms += 1;
                    store
                        .update_build(&b, b.version - 1, &Effects::default())
                        .await
                        .unwrap();
                    self.builds.insert(b.build_id.clone(), b);
                }
                998 => {
                    store.reset(Some(owner.0)).await.unwrap();
                    self.builds.retain(|_, b| b.account != owner.0);
                }
                _ => {}
            }
        }

        /// Walks every owner's listing with each page size against the model; returns the
        /// most builds an owner has.
        async fn check(&self, store: &SqliteStore, at: &str) -> usize {
            let mut peak = 0;
            for (account, region) in OWNERS {
                let mut expected: Vec<Build> = self
                    .builds
                    .values()
                    .filter(|b| b.account == account && b.region == region)
                    .cloned()
                    .collect();
                expected
                    .sort_by(|a, b| (b.created_ms, &b.build_id).cmp(&(a.created_ms, &a.build_id)));
                peak = peak.max(expected.len());
                let q = BuildQuery {
                    account: account.into(),
                    region: region.into(),
                    ..BuildQuery::default()
                };
                for limit in [1, 25, 256] {
                    let got = walk(store, &q, limit).await;
                    assert_eq!(got, expected, "{at}, {account}/{region}, limit {limit}");
                }
            }
            peak
        }
    }

    /// The listing the windows answer equals the model's after any sequence of creates,
    /// imports (older builds too), updates and resets, past the window's size, for every page
    /// size (a window answers the first pages, SQLite the ones beyond it).
    #[tokio::test]
    async fn the_newest_windows_list_what_was_committed() {
        use rand::SeedableRng;
        for seed in 0..3 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let store = SqliteStore::in_memory().unwrap();
            let mut model = Model {
                builds: HashMap::new(),
                next_id: 0,
            };
            let mut peak = 0;
            for step in 0..2400 {
                model.random_write(&store, &mut rng, 1000 + step / 3).await;
                if step % 200 == 199 {
                    let at = format!("seed {seed}, step {step}");
                    peak = peak.max(model.check(&store, &at).await);
                }
            }
            // Some owner outgrew its window, so pages past it came from SQLite.
            assert!(peak > WINDOW, "seed {seed}: at most {peak} builds an owner");
        }
    }

    /// A write is in the listing before its writer hears of it, whoever lists (group commits
    /// of concurrent writers, readers on their own connections, windows loaded meanwhile).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn an_acknowledged_build_is_listed_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let clock = Arc::new(AtomicU64::new(1));
        let q = BuildQuery {
            account: "111111111111".into(),
            region: "us-east-1".into(),
            ..BuildQuery::default()
        };
        let tasks: Vec<_> = (0..8)
            .map(|t| {
                let (store, clock, q) = (store.clone(), clock.clone(), q.clone());
                tokio::spawn(async move {
                    for i in 0..60 {
                        let ms = i64::try_from(clock.fetch_add(1, Ordering::SeqCst)).unwrap();
                        let mut b = crate::store::conformance::sample_build(
                            "111111111111",
                            ms,
                            &format!("b-{t}-{i:03}"),
                        );
                        store.create_build(&b, None, u32::MAX, None).await.unwrap();
                        // Just before it in the listing: the build must open the page.
                        let at = Cursor {
                            created_ms: ms,
                            build_id: "c".into(),
                        };
                        let page = store.list_builds(&q, Some(&at), 5).await.unwrap();
                        assert_eq!(page.builds[0].build_id, b.build_id);
                        b.version += 1;
                        b.status = BuildStatus::Failed;
                        store
                            .update_build(&b, 1, &Effects::default())
                            .await
                            .unwrap();
                        let page = store.list_builds(&q, Some(&at), 5).await.unwrap();
                        assert_eq!(*page.builds[0], b);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(walk(&store, &q, 256).await.len(), 480);
    }

    /// Asserts that `sql` neither sorts nor scans: its first plan step satisfies `walks`.
    fn assert_walks_an_index(
        conn: &Connection,
        sql: &str,
        args: &[Value],
        walks: impl Fn(&str) -> bool,
    ) {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let plan: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                r.get::<_, String>(3)
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let text = plan.join(" | ");
        assert!(!text.contains("TEMP B-TREE"), "sorts: {sql}\n{text}");
        assert!(walks(&plan[0]), "scans: {sql}\n{text}");
    }

    /// Every listing walks an index from the cursor (O(page)); none scans the table or sorts.
    #[test]
    fn one_process_per_data_dir_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = SqliteStore::open(dir.path()).unwrap();
        let second = SqliteStore::open(dir.path()).unwrap_err().to_string();
        assert!(
            second.contains("in use by another imagebuild process"),
            "{second}"
        );
        drop(first);
        SqliteStore::open(dir.path()).unwrap();
    }

    #[tokio::test]
    async fn a_failed_write_in_a_group_is_undone_alone() {
        use crate::store::conformance::sample_build;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let a = sample_build("123456789012", 1, "a");
        assert!(matches!(
            store.create_build(&a, None, 100, None).await.unwrap(),
            CreateOutcome::Created
        ));
        // In one burst: a duplicate of `a` (fails on the primary key after it has already
        // counted itself in progress) among good writes that share its group commit.
        let mut burst = Vec::new();
        for (i, b) in [
            a.clone(),
            sample_build("123456789012", 2, "b"),
            sample_build("123456789012", 3, "c"),
        ]
        .into_iter()
        .enumerate()
        .cycle()
        .take(30)
        {
            let store = store.clone();
            let b = if i == 0 {
                b
            } else {
                sample_build(
                    "123456789012",
                    b.created_ms,
                    &format!("{}-{}", b.build_id, burst.len()),
                )
            };
            burst.push(tokio::spawn(async move {
                store.create_build(&b, None, 100, None).await
            }));
        }
        let mut failed = 0;
        for t in burst {
            match t.await.unwrap() {
                Ok(CreateOutcome::Created) => {}
                Err(_) => failed += 1,
                Ok(_) => panic!("unexpected outcome"),
            }
        }
        assert_eq!(failed, 10, "each duplicate fails, nothing else does");
        // 21 builds in progress: the failed duplicates' counter increments were undone.
        let extra = sample_build("123456789012", 9, "limit-probe");
        assert!(matches!(
            store.create_build(&extra, None, 21, None).await.unwrap(),
            CreateOutcome::LimitExceeded { .. }
        ));
        assert!(matches!(
            store.create_build(&extra, None, 22, None).await.unwrap(),
            CreateOutcome::Created
        ));
        drop(store);
        // And all of it is on disk.
        let reopened = SqliteStore::open(dir.path()).unwrap();
        assert!(reopened.get_build("limit-probe").await.unwrap().is_some());
        assert!(reopened.get_build("b-1").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn every_write_moves_the_generation() {
        let store = SqliteStore::in_memory().unwrap();
        let g0 = store.generation().unwrap();
        store.reset(None).await.unwrap();
        let g1 = store.generation().unwrap();
        assert!(g1 > g0);
        store.rotate_key("paging", 0).await.unwrap();
        assert!(store.generation().unwrap() > g1);
    }

    #[test]
    fn listings_use_indexes_not_scans_or_sorts() {
        let dir = tempfile::tempdir().unwrap();
        let _store = SqliteStore::open(dir.path()).unwrap();
        let conn = Connection::open(dir.path().join("imagebuild.db")).unwrap();
        let base = BuildQuery {
            account: "1".into(),
            region: "r".into(),
            ..BuildQuery::default()
        };
        let cursor = Cursor {
            created_ms: 5,
            build_id: "x".into(),
        };
        let queries = [
            base.clone(),
            BuildQuery {
                statuses: Some(vec![BuildStatus::Failed]),
                ..base.clone()
            },
            BuildQuery {
                fulfillment_option_ids: Some(vec!["fo-a".into(), "fo-b".into()]),
                ..base.clone()
            },
            BuildQuery {
                product_ids: Some(vec!["prod-a".into()]),
                statuses: Some(vec![BuildStatus::Succeeded]),
                ..base.clone()
            },
            BuildQuery {
                fulfillment_option_ids: Some(vec!["fo-a".into()]),
                product_ids: Some(vec!["prod-a".into()]),
                ..base.clone()
            },
        ];
        for q in &queries {
            for after in [None, Some(&cursor)] {
                for (sql, args) in listing_statements(q, after, 26) {
                    assert_walks_an_index(&conn, &sql, &args, |first| {
                        first.contains("USING")
                            && (first.contains("INDEX") || first.contains("PRIMARY KEY"))
                    });
                }
            }
        }
    }

    /// Scan listings too walk an index from the cursor.
    #[test]
    fn scan_listings_use_indexes_not_scans_or_sorts() {
        let dir = tempfile::tempdir().unwrap();
        let _store = SqliteStore::open(dir.path()).unwrap();
        let conn = Connection::open(dir.path().join("imagebuild.db")).unwrap();
        let base = ScanQuery {
            account: "1".into(),
            region: "r".into(),
            ..ScanQuery::default()
        };
        let cursor = Cursor {
            created_ms: 5,
            build_id: "x".into(),
        };
        let queries = [
            base.clone(),
            ScanQuery {
                latest_only: true,
                ..base.clone()
            },
            ScanQuery {
                image_ids: Some(vec!["ami-1".into(), "ami-2".into()]),
                latest_only: true,
                ..base.clone()
            },
            ScanQuery {
                product_ids: Some(vec!["prod-a".into()]),
                statuses: Some(vec![ScanStatus::Failed]),
                ..base.clone()
            },
            ScanQuery {
                statuses: Some(vec![ScanStatus::Failed, ScanStatus::IssuesFound]),
                ..base.clone()
            },
        ];
        for q in &queries {
            for after in [None, Some(&cursor)] {
                for (sql, args) in scan_listing_statements(q, after, 26) {
                    assert_walks_an_index(&conn, &sql, &args, |first| {
                        first.contains("USING INDEX scans_")
                    });
                }
            }
        }
    }

    #[tokio::test]
    async fn file_store_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let b = crate::store::conformance::sample_build("acct00000001", 1, "b-1");
        {
            let s = SqliteStore::open(dir.path()).unwrap();
            assert_eq!(
                s.create_build(&b, None, 10, None).await.unwrap(),
                CreateOutcome::Created
            );
        }
        let s = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(s.get_build("b-1").await.unwrap(), Some(b));
        let k1 = s.signing_keys("paging", 1).await.unwrap();
        drop(s);
        let s = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(s.signing_keys("paging", 2).await.unwrap(), k1);
    }
}
