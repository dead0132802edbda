//! Log set-up: `tracing-subscriber`'s formats (text or JSON, `IMAGEBUILD_LOG` filter) written
//! to stderr by a writer thread, and a fast path for the one event every request logs.
//!
//! The access line (target `imagebuild::access`) is formatted here, field by field into the
//! line buffer, in the same shape as the generic formatter's (JSON: `timestamp`, `level`,
//! `fields`, `target`; text: `timestamp LEVEL target: message k=v …`): the generic one spent
//! ~15k instructions an event on `core::fmt` machinery, 10 % of a reused DescribeBuilds answer.
//!
//! Depends on: clock (civil time).

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;

pub mod batch;

/// Logs go to stderr through a writer thread (`batch`): request threads append their line and
/// go on; the thread writes what gathered every 20 ms (sooner past 64 KiB), never dropping a
/// line. Keep the guard until exit: dropping it writes what is left. When the thread cannot
/// start, lines go straight to stderr.
pub fn init(format: crate::config::LogFormat) -> Option<batch::Guard> {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("IMAGEBUILD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (writer, guard) = match batch::start(std::io::stderr(), "imagebuild-log") {
        Ok((w, g)) => (
            tracing_subscriber::fmt::writer::BoxMakeWriter::new(w),
            Some(g),
        ),
        Err(e) => {
            eprintln!("imagebuild: no log writer thread ({e}); logging straight to stderr");
            (
                tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stderr),
                None,
            )
        }
    };
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        crate::config::LogFormat::Json => fmt
            .json()
            .with_current_span(false)
            .map_event_format(|f| AccessFast::new(f, true))
            .init(),
        crate::config::LogFormat::Text => fmt
            .with_ansi(std::io::stderr().is_terminal())
            .map_event_format(|f| AccessFast::new(f, false))
            .init(),
    }
    guard
}

/// The access log's target.
pub const ACCESS_TARGET: &str = "imagebuild::access";

/// Formats access events fast and hands every other event to `inner`.
#[derive(Debug)]
pub struct AccessFast<F> {
    inner: F,
    json: bool,
}

impl<F> AccessFast<F> {
    /// Wraps the generic event format; `json` picks the access line's shape.
    pub fn new(inner: F, json: bool) -> Self {
        Self { inner, json }
    }
}

impl<S, N, F> FormatEvent<S, N> for AccessFast<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        if event.metadata().target() != ACCESS_TARGET {
            return self.inner.format_event(ctx, writer, event);
        }
        let level = event.metadata().level().as_str();
        if self.json {
            writer.write_str("{\"timestamp\":\"")?;
            timestamp(&mut writer)?;
            write!(writer, "\",\"level\":\"{level}\",\"fields\":{{")?;
            event.record(&mut Fields::new(&mut writer, true));
            writeln!(writer, "}},\"target\":\"{ACCESS_TARGET}\"}}")
        } else {
            timestamp(&mut writer)?;
            write!(writer, " {level:>5} {ACCESS_TARGET}:")?;
            event.record(&mut Fields::new(&mut writer, false));
            writer.write_char('\n')
        }
    }
}

/// RFC 3339 UTC with microseconds, as the generic formatter writes it.
fn timestamp(w: &mut Writer<'_>) -> std::fmt::Result {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let ms = i64::try_from(now.as_millis()).unwrap_or(i64::MAX);
    let (y, mo, d, h, mi, s) = crate::clock::civil_from_ms(ms);
    let mut b = itoa::Buffer::new();
    let two = |w: &mut Writer<'_>, v: i64, sep: char| -> std::fmt::Result {
        if v < 10 {
            w.write_char('0')?;
        }
        w.write_str(itoa::Buffer::new().format(v))?;
        w.write_char(sep)
    };
    w.write_str(b.format(y))?;
    w.write_char('-')?;
    two(w, mo, '-')?;
    two(w, d, 'T')?;
    two(w, h, ':')?;
    two(w, mi, ':')?;
    two(w, s, '.')?;
    let micros = b.format(now.subsec_micros());
    for _ in micros.len()..6 {
        w.write_char('0')?;
    }
    w.write_str(micros)?;
    w.write_char('Z')
}

/// Writes an event's fields: `"k":v,…` (JSON) or ` message k=v …` (text).
struct Fields<'w, 'a> {
    w: &'w mut Writer<'a>,
    json: bool,
    first: bool,
    result: std::fmt::Result,
}

impl<'w, 'a> Fields<'w, 'a> {
    fn new(w: &'w mut Writer<'a>, json: bool) -> Self {
        Self {
            w,
            json,
            first: true,
            result: Ok(()),
        }
    }

    fn key(&mut self, field: &Field) -> std::fmt::Result {
        if self.json {
            if !std::mem::take(&mut self.first) {
                self.w.write_char(',')?;
            }
            self.w.write_char('"')?;
            self.w.write_str(field.name())?;
            self.w.write_str("\":")
        } else {
            self.w.write_char(' ')?;
            if field.name() != "message" {
                self.w.write_str(field.name())?;
                self.w.write_char('=')?;
            }
            Ok(())
        }
    }

    fn string(&mut self, field: &Field, value: &str) -> std::fmt::Result {
        self.key(field)?;
        if self.json {
            json_string(self.w, value)
        } else if value.is_empty() {
            self.w.write_str("\"\"")
        } else {
            self.w.write_str(value)
        }
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_ok() {
            self.result = self.string(field, value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.result.is_ok() {
            self.result = self
                .key(field)
                .and_then(|()| self.w.write_str(itoa::Buffer::new().format(value)));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.result.is_ok() {
            self.result = self
                .key(field)
                .and_then(|()| self.w.write_str(itoa::Buffer::new().format(value)));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if self.result.is_ok() {
            // The message (`format_args!`) and any `%`/`?` field: formatted straight into the
            // line, through JSON escaping in JSON.
            self.result = self.key(field).and_then(|()| {
                if self.json {
                    self.w.write_char('"')?;
                    std::fmt::Write::write_fmt(
                        &mut JsonEscaped(&mut *self.w),
                        format_args!("{value:?}"),
                    )?;
                    self.w.write_char('"')
                } else {
                    write!(self.w, "{value:?}")
                }
            });
        }
    }
}

/// A JSON string literal.
fn json_string(w: &mut Writer<'_>, s: &str) -> std::fmt::Result {
    w.write_char('"')?;
    json_escaped(w, s)?;
    w.write_char('"')
}

/// Writes what it is given JSON-escaped (the inside of a string literal).
struct JsonEscaped<'w, 'a>(&'w mut Writer<'a>);

impl std::fmt::Write for JsonEscaped<'_, '_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        json_escaped(self.0, s)
    }
}

/// `s` escaped for the inside of a JSON string literal.
fn json_escaped(w: &mut Writer<'_>, s: &str) -> std::fmt::Result {
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escaped = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if (c as u32) < 0x20 => {
                w.write_str(&s[start..i])?;
                write!(w, "\\u{:04x}", c as u32)?;
                start = i + c.len_utf8();
                continue;
            }
            _ => continue,
        };
        w.write_str(&s[start..i])?;
        w.write_str(escaped)?;
        start = i + c.len_utf8();
    }
    w.write_str(&s[start..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("sink").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn capture(json: bool) -> String {
        let sink = Sink::default();
        let out = sink.clone();
        let make = move || sink.clone();
        let run = || {
            tracing::info!(target: "imagebuild::access", request_id = "r-1", service = "AWSMPImageBuilding",
                operation = "Describe\"Builds", account = "123456789012", status = 200u16, error_code = "",
                duration_us = 42u64, "request");
            tracing::info!(target: "imagebuild::other", n = 1, "other event");
        };
        if json {
            let sub = tracing_subscriber::fmt()
                .json()
                .with_writer(make)
                .map_event_format(|f| AccessFast::new(f, true))
                .finish();
            tracing::subscriber::with_default(sub, run);
        } else {
            let sub = tracing_subscriber::fmt()
                .with_ansi(false)
                .with_writer(make)
                .map_event_format(|f| AccessFast::new(f, false))
                .finish();
            tracing::subscriber::with_default(sub, run);
        }
        let bytes = out.0.lock().expect("sink").clone();
        String::from_utf8(bytes).expect("utf-8")
    }

    #[test]
    fn the_json_access_line_has_the_generic_shape() {
        let text = capture(true);
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        let access = &lines[0];
        assert_eq!(access["target"], "imagebuild::access");
        assert_eq!(access["level"], "INFO");
        let f = &access["fields"];
        assert_eq!(f["message"], "request");
        assert_eq!(f["operation"], "Describe\"Builds");
        assert_eq!(
            (f["status"].as_u64(), f["duration_us"].as_u64()),
            (Some(200), Some(42))
        );
        assert_eq!(f["error_code"], "");
        let ts = access["timestamp"].as_str().expect("timestamp");
        assert_eq!((ts.len(), &ts[10..11], &ts[26..]), (27, "T", "Z"), "{ts}");
        // Other events keep the generic formatter.
        assert_eq!(lines[1]["target"], "imagebuild::other");
        assert_eq!(lines[1]["fields"]["n"], 1);
    }

    #[test]
    fn the_text_access_line_reads_as_key_value_pairs() {
        let text = capture(false);
        let first = text.lines().next().expect("a line");
        assert!(
            first.ends_with(" INFO imagebuild::access: request request_id=r-1 service=AWSMPImageBuilding operation=Describe\"Builds account=123456789012 status=200 error_code=\"\" duration_us=42"),
            "{first}"
        );
        assert!(text
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("other event")));
    }
}
