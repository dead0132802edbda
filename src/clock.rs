//! Time as the service sees it: a `Clock` trait with the wall clock and a manual clock for tests.
//!
//! Everything that depends on "now" (timestamps, SigV4 skew, token and URL expiry, the worker)
//! takes it from a `Clock`, never from `SystemTime` directly, so tests control time.
//!
//! Depends on: nothing crate-internal.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    /// Returns the current time in milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The machine's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// The wall clock shifted by a fixed offset (`--clock-offset-seconds`).
#[derive(Debug, Clone, Copy)]
pub struct OffsetClock {
    /// Milliseconds added to the wall clock.
    pub offset_ms: i64,
}

impl Clock for OffsetClock {
    fn now_ms(&self) -> i64 {
        SystemClock.now_ms().saturating_add(self.offset_ms)
    }
}

/// A clock the control plane can move forward (`POST /_imagebuild/clock`): the inner clock
/// plus an accumulated shift. Every time-dependent part of the service reads this clock.
#[derive(Debug)]
pub struct ShiftableClock {
    inner: std::sync::Arc<dyn Clock>,
    shift_ms: AtomicI64,
}

impl std::fmt::Debug for dyn Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now_ms())
    }
}

impl ShiftableClock {
    /// Wraps `inner` with no shift.
    #[must_use]
    pub fn new(inner: std::sync::Arc<dyn Clock>) -> Self {
        Self {
            inner,
            shift_ms: AtomicI64::new(0),
        }
    }

    /// Moves the clock forward by `ms` (never backwards: expiries must not come undone).
    pub fn advance_ms(&self, ms: i64) {
        self.shift_ms.fetch_add(ms.max(0), Ordering::SeqCst);
    }

    /// Takes the clock back to no shift: only after everything recorded was deleted (a whole
    /// harness reset), when no stored expiry can come undone.
    pub fn rewind(&self) {
        self.shift_ms.store(0, Ordering::SeqCst);
    }

    /// The total shift so far.
    #[must_use]
    pub fn shift_ms(&self) -> i64 {
        self.shift_ms.load(Ordering::SeqCst)
    }
}

impl Clock for ShiftableClock {
    fn now_ms(&self) -> i64 {
        self.inner.now_ms().saturating_add(self.shift_ms())
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug)]
pub struct ManualClock {
    now_ms: AtomicI64,
}

impl ManualClock {
    /// Creates a clock stopped at `now_ms`.
    #[must_use]
    pub fn new(now_ms: i64) -> Self {
        Self {
            now_ms: AtomicI64::new(now_ms),
        }
    }

    /// Moves the clock forward by `ms` milliseconds.
    pub fn advance_ms(&self, ms: i64) {
        self.now_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the clock to `now_ms`.
    pub fn set_ms(&self, now_ms: i64) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

/// Formats epoch milliseconds as ISO-8601 basic format (`YYYYMMDD'T'HHMMSS'Z'`), as SigV4 uses.
#[must_use]
pub fn iso8601_basic(ms: i64) -> String {
    let (y, mo, d, h, mi, s) = civil_from_ms(ms);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// Formats epoch milliseconds as extended ISO-8601 (`YYYY-MM-DDTHH:MM:SS.mmmZ`).
#[must_use]
pub fn iso8601_extended(ms: i64) -> String {
    let (y, mo, d, h, mi, s) = civil_from_ms(ms);
    let millis = ms.rem_euclid(1000);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{millis:03}Z")
}

/// Parses ISO-8601 basic format (`YYYYMMDD'T'HHMMSS'Z'`) into epoch milliseconds.
#[must_use]
pub fn parse_iso8601_basic(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (y, mo, d) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (h, mi, sec) = (digits(9..11)?, digits(11..13)?, digits(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    if d > days_in_month(y, mo) {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400) + h * 3600 + mi * 60 + sec) * 1000)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day, hour, minute, second) of epoch milliseconds, UTC.
pub(crate) fn civil_from_ms(ms: i64) -> (i64, i64, i64, i64, i64, i64) {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (y, m, d, rem / 3600, (rem % 3600) / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_format_round_trips() {
        let ms = parse_iso8601_basic("20240115T120000Z").unwrap();
        assert_eq!(ms, 1_705_320_000_000);
        assert_eq!(iso8601_basic(ms), "20240115T120000Z");
        assert_eq!(iso8601_extended(ms + 5), "2024-01-15T12:00:00.005Z");
    }

    #[test]
    fn malformed_dates_are_rejected() {
        for bad in [
            "2024-01-15T12:00:00Z",
            "20240115T120000",
            "20241315T120000Z",
            "20240230T120000Z",
            "2024011XT120000Z",
        ] {
            assert!(parse_iso8601_basic(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1000);
        assert_eq!(c.now_ms(), 1000);
        c.advance_ms(500);
        assert_eq!(c.now_ms(), 1500);
    }
}
