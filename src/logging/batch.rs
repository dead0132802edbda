//! The log writer thread: request threads append their formatted line to a shared buffer and go
//! on; the thread writes the buffer out in one `write` every `FLUSH_EVERY` (sooner past `HIGH`
//! bytes). No line wakes a thread by itself, so logging costs no context switch a request, and
//! a batch of lines costs one syscall. Nothing is dropped: past `CAP` bytes writers wait.
//!
//! Depends on: nothing crate-internal.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Longest a line waits before it is written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(20);
/// Buffered bytes that wake the writer before `FLUSH_EVERY`.
const HIGH: usize = 64 * 1024;
/// Buffered bytes past which writers wait for the thread (back-pressure, never loss).
const CAP: usize = 8 * 1024 * 1024;

struct Shared {
    buf: Mutex<Vec<u8>>,
    /// The thread waits here: for a first line, then for `FLUSH_EVERY` or `HIGH`.
    wake: Condvar,
    /// Writers wait here while the buffer is over `CAP`.
    room: Condvar,
    stop: AtomicBool,
    /// `CAP`, smaller in tests.
    cap: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        self.buf
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Hands lines to the thread (`tracing_subscriber`'s `MakeWriter`: one `write_all` an event).
#[derive(Clone)]
pub struct BatchWriter(Arc<Shared>);

/// Stops the thread when dropped, after it has written everything buffered.
pub struct Guard {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts the thread writing to `out`.
///
/// # Errors
/// The thread could not be started.
pub fn start(
    out: impl Write + Send + 'static,
    name: &str,
) -> std::io::Result<(BatchWriter, Guard)> {
    start_capped(out, name, CAP)
}

fn start_capped(
    out: impl Write + Send + 'static,
    name: &str,
    cap: usize,
) -> std::io::Result<(BatchWriter, Guard)> {
    let shared = Arc::new(Shared {
        buf: Mutex::new(Vec::with_capacity(HIGH)),
        wake: Condvar::new(),
        room: Condvar::new(),
        stop: AtomicBool::new(false),
        cap,
    });
    let s = shared.clone();
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || run(&s, out))?;
    Ok((
        BatchWriter(shared.clone()),
        Guard {
            shared,
            thread: Some(thread),
        },
    ))
}

/// The thread: wait for a first line, let more gather for `FLUSH_EVERY` (or until `HIGH`),
/// swap the buffer out and write it; after `stop`, write what is left and end.
fn run(s: &Shared, mut out: impl Write) {
    let mut spare = Vec::with_capacity(HIGH);
    loop {
        let mut buf = s.lock();
        while buf.is_empty() && !s.stop.load(Ordering::Acquire) {
            buf = s
                .wake
                .wait(buf)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        if buf.len() < HIGH && !s.stop.load(Ordering::Acquire) {
            buf = s
                .wake
                .wait_timeout(buf, FLUSH_EVERY)
                .map_or_else(|e| e.into_inner().0, |(g, _)| g);
        }
        std::mem::swap(&mut *buf, &mut spare);
        let stopping = s.stop.load(Ordering::Acquire) && buf.is_empty();
        drop(buf);
        s.room.notify_all();
        if !spare.is_empty() {
            // A log that cannot be written (stderr closed) must not stop the service.
            let _ = out.write_all(&spare).and_then(|()| out.flush());
            spare.clear();
        }
        if stopping {
            return;
        }
    }
}

impl Write for BatchWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let s = &self.0;
        if s.stop.load(Ordering::Acquire) {
            // The thread is gone (process ending): write through.
            return std::io::stderr().write(line);
        }
        let mut buf = s.lock();
        while buf.len() > s.cap && !s.stop.load(Ordering::Acquire) {
            buf = s
                .room
                .wait(buf)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        let was_empty = buf.is_empty();
        buf.extend_from_slice(line);
        let high = buf.len() >= HIGH;
        drop(buf);
        if was_empty || high {
            s.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchWriter {
    type Writer = BatchWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake.notify_one();
        self.shared.room.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink the test can read while the thread owns a handle to it.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let mut g = self.0.lock().unwrap();
            g.0.extend_from_slice(b);
            g.1 += 1;
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_arrives_whole_in_order_per_thread_and_in_few_writes() {
        let sink = Sink::default();
        let (w, guard) = start(sink.clone(), "test-log").unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mut w = w.clone();
                std::thread::spawn(move || {
                    for i in 0..5_000 {
                        w.write_all(format!("t{t} line {i}\n").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard); // writes what is left
        let (bytes, writes) = sink.0.lock().unwrap().clone();
        let text = String::from_utf8(bytes).unwrap();
        for t in 0..4 {
            let mine: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with(&format!("t{t} ")))
                .collect();
            let want: Vec<String> = (0..5_000).map(|i| format!("t{t} line {i}")).collect();
            assert_eq!(mine, want);
        }
        assert_eq!(text.lines().count(), 20_000);
        assert!(writes < 2_000, "{writes} writes for 20,000 lines");
    }

    /// A sink that holds every write until the test opens it.
    struct Gate(Arc<(Mutex<bool>, Condvar)>, Sink);

    impl Write for Gate {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let (open, cv) = &*self.0;
            let mut g = open.lock().unwrap();
            while !*g {
                g = cv.wait(g).unwrap();
            }
            self.1.write(b)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Opens the gate when dropped, so a failing assertion ends the test instead of leaving
    /// the thread (joined by the log guard) blocked for ever.
    struct Opener(Arc<(Mutex<bool>, Condvar)>);

    impl Drop for Opener {
        fn drop(&mut self) {
            if let Ok(mut g) = self.0 .0.lock() {
                *g = true;
            }
            self.0 .1.notify_all();
        }
    }

    #[test]
    fn past_the_cap_a_writer_waits_instead_of_dropping() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let sink = Sink::default();
        let (w, guard) = start_capped(Gate(gate.clone(), sink.clone()), "test-log", 64).unwrap();
        let opener = Opener(gate.clone()); // dropped before `guard` on every path
        let done = Arc::new(AtomicBool::new(false));
        let (mut w2, done2) = (w.clone(), done.clone());
        let writer = std::thread::spawn(move || {
            for i in 0..100 {
                w2.write_all(format!("line {i:03} of a writer that must wait\n").as_bytes())
                    .unwrap();
            }
            done2.store(true, Ordering::Release);
        });
        std::thread::sleep(FLUSH_EVERY * 10);
        assert!(
            !done.load(Ordering::Acquire),
            "the writer went past the cap without waiting"
        );
        drop(opener);
        writer.join().unwrap();
        drop(guard);
        let text = String::from_utf8(sink.0.lock().unwrap().0.clone()).unwrap();
        let want: Vec<String> = (0..100)
            .map(|i| format!("line {i:03} of a writer that must wait"))
            .collect();
        assert_eq!(text.lines().collect::<Vec<_>>(), want);
    }

    #[test]
    fn a_lone_line_is_written_within_the_flush_interval() {
        let sink = Sink::default();
        let (mut w, _guard) = start(sink.clone(), "test-log").unwrap();
        w.write_all(b"hello\n").unwrap();
        let deadline = std::time::Instant::now() + FLUSH_EVERY * 50;
        while sink.0.lock().unwrap().0.is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the line was never written"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(sink.0.lock().unwrap().0, b"hello\n");
    }
}
