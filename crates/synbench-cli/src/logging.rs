//! `tracing` logs on stderr that do not tear the progress bar: while a bar
//! is drawn, each log line is written with the bar suspended.
//! The level comes from `RUST_LOG` (e.g. `RUST_LOG=synbench_cli=debug`);
//! by default the CLI logs at `info`.

use std::io::{self, IsTerminal, Write};
use std::sync::Mutex;

use indicatif::ProgressBar;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

static ACTIVE_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Installs the global subscriber (once; later calls do nothing).
pub fn init(default_level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(BarAwareStderr)
        .with_target(false)
        .with_ansi(io::stderr().is_terminal())
        .try_init();
}

/// Routes log lines around `bar` until the guard is dropped.
pub fn suspend_for(bar: &ProgressBar) -> BarGuard {
    *ACTIVE_BAR.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
    BarGuard
}

/// Detaches the bar from logging when dropped.
#[derive(Debug)]
pub struct BarGuard;

impl Drop for BarGuard {
    fn drop(&mut self) {
        *ACTIVE_BAR.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// A `MakeWriter` for stderr that suspends the active progress bar per line.
#[derive(Debug, Clone, Copy)]
struct BarAwareStderr;

impl<'a> MakeWriter<'a> for BarAwareStderr {
    type Writer = LineWriter;
    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(Vec::new())
    }
}

/// Buffers one event and writes it in one piece when dropped.
struct LineWriter(Vec<u8>);

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        let bar = ACTIVE_BAR.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let write = || {
            let _ = io::stderr().lock().write_all(&self.0);
        };
        match bar {
            Some(bar) if !bar.is_hidden() => bar.suspend(write),
            _ => write(),
        }
    }
}
