//! Log output: readable text on a terminal; journald-friendly lines (no timestamp, no colour,
//! a `<N>` syslog priority prefix journald turns into the entry's priority) when systemd
//! started us (`JOURNAL_STREAM` set); JSON objects, one per line, for log collectors
//! (`--log-format json`). `RUST_LOG` overrides the default filter.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// `--log-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// journald when `JOURNAL_STREAM` is set, else text.
    Auto,
    /// Readable lines with timestamps.
    Text,
    /// For journald: no timestamp (the journal adds its own), syslog priority prefix.
    Journal,
    /// One JSON object per line (timestamp, level, target, fields, spans).
    Json,
}

/// The format `Auto` stands for in this environment.
pub fn resolve(format: LogFormat, journal_stream: bool) -> LogFormat {
    match format {
        LogFormat::Auto if journal_stream => LogFormat::Journal,
        LogFormat::Auto => LogFormat::Text,
        f => f,
    }
}

/// The sd-daemon priority prefix of a level (`<3>` error … `<7>` debug).
pub fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

struct Journal<F>(F);

impl<S, N, F> FormatEvent<S, N> for Journal<F>
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
    ) -> fmt::Result {
        write!(writer, "<{}>", priority(event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

/// Install the subscriber on stderr.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter =
        || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr);
    let _ = match resolve(format, journal) {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_env_filter(filter())
            .try_init(),
        LogFormat::Journal => builder
            .with_ansi(false)
            .event_format(Journal(
                tracing_subscriber::fmt::format()
                    .without_time()
                    .with_ansi(false),
            ))
            .with_env_filter(filter())
            .try_init(),
        // Colours only on a terminal: a log redirected to a file stays plain text.
        LogFormat::Text | LogFormat::Auto => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_env_filter(filter())
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_means_journal_under_systemd_and_text_elsewhere() {
        assert_eq!(resolve(LogFormat::Auto, true), LogFormat::Journal);
        assert_eq!(resolve(LogFormat::Auto, false), LogFormat::Text);
        assert_eq!(resolve(LogFormat::Json, true), LogFormat::Json);
        assert_eq!(priority(&Level::ERROR), 3);
        assert_eq!(priority(&Level::WARN), 4);
        assert_eq!(priority(&Level::INFO), 6);
        assert_eq!(priority(&Level::TRACE), 7);
    }
}
