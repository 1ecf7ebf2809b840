//! Log lines in nats-server's shape: `[pid] 2006/01/02 15:04:05.000000 [INF] message`.
//!
//! The library only emits `tracing` events; this module is the binary's subscriber, so an
//! embedder routes natsd's logs with its own.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// Formats events like nats-server's logger.
#[derive(Debug, Clone)]
pub struct NatsFormat {
    pid: u32,
    logtime: bool,
}

impl NatsFormat {
    /// A formatter; `logtime` adds the timestamp.
    pub fn new(logtime: bool) -> Self {
        Self {
            pid: std::process::id(),
            logtime,
        }
    }
}

/// The level tag nats-server prints.
pub fn level_tag(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "[ERR]",
        Level::WARN => "[WRN]",
        Level::INFO => "[INF]",
        Level::DEBUG => "[DBG]",
        Level::TRACE => "[TRC]",
    }
}

/// `YYYY/MM/DD HH:MM:SS.uuuuuu` in UTC.
pub fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (year, month, day) = natsd_core::civil::civil_from_days(days);
    format!(
        "{year:04}/{month:02}/{day:02} {:02}:{:02}:{:02}.{:06}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60,
        d.subsec_micros()
    )
}

impl<S, N> FormatEvent<S, N> for NatsFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(w, "[{}] ", self.pid)?;
        if self.logtime {
            write!(w, "{} ", timestamp(SystemTime::now()))?;
        }
        write!(w, "{} ", level_tag(event.metadata().level()))?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// Where log lines go: stderr, or a file that can be reopened (log rotation on SIGUSR1).
#[derive(Debug, Clone)]
pub struct LogTarget {
    file: Option<(PathBuf, Arc<Mutex<std::fs::File>>)>,
}

impl LogTarget {
    /// Logs to stderr, or appends to `path`.
    pub fn new(path: Option<PathBuf>) -> std::io::Result<Self> {
        let file = match path {
            None => None,
            Some(p) => {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&p)?;
                Some((p, Arc::new(Mutex::new(f))))
            }
        };
        Ok(Self { file })
    }

    /// Reopens the log file (after an external rotation moved it away).
    pub fn reopen(&self) -> std::io::Result<()> {
        if let Some((p, f)) = &self.file {
            let nf = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?;
            *f.lock().unwrap_or_else(|e| e.into_inner()) = nf;
        }
        Ok(())
    }
}

/// One write into a [`LogTarget`].
#[derive(Debug)]
pub enum LogWriter {
    /// Standard error.
    Stderr(std::io::Stderr),
    /// The log file.
    File(Arc<Mutex<std::fs::File>>),
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Stderr(s) => s.write(buf),
            Self::File(f) => f.lock().unwrap_or_else(|e| e.into_inner()).write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Stderr(s) => s.flush(),
            Self::File(f) => f.lock().unwrap_or_else(|e| e.into_inner()).flush(),
        }
    }
}

impl<'a> MakeWriter<'a> for LogTarget {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        match &self.file {
            None => LogWriter::Stderr(std::io::stderr()),
            Some((_, f)) => LogWriter::File(Arc::clone(f)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_civil_dates() {
        let t = UNIX_EPOCH + Duration::from_secs(1_764_050_417) + Duration::from_micros(123_456);
        assert_eq!(timestamp(t), "2025/11/25 06:00:17.123456");
        assert_eq!(timestamp(UNIX_EPOCH), "1970/01/01 00:00:00.000000");
    }
}
