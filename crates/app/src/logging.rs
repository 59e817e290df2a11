//! Installs the `tracing` subscriber from `[logging]`: text or JSON lines on stderr, filtered
//! by `logging.level` unless `RUST_LOG` is set; coloured only on a terminal and without
//! `NO_COLOR`. The CLI's `main` calls [`init`] once.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LoggingConfig};

/// The filter: `rust_log` (the value of `RUST_LOG`) when it is set and valid, else
/// `logging.level`.
pub fn filter(config: &LoggingConfig, rust_log: Option<&str>) -> EnvFilter {
    rust_log
        .filter(|s| !s.trim().is_empty())
        .and_then(|s| EnvFilter::try_new(s).ok())
        .unwrap_or_else(|| EnvFilter::new(&config.level))
}

/// Installs the global subscriber (stderr, text or JSON, spans' fields included). Colour is
/// used only when `colour_allowed` (the CLI's `--no-color` clears it), stderr is a terminal
/// and `NO_COLOR` is unset or empty.
///
/// # Errors
/// A subscriber was already installed; the message says so.
pub fn init(config: &LoggingConfig, colour_allowed: bool) -> Result<(), String> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = filter(config, rust_log.as_deref());
    let colour = colour_allowed
        && std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let result = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| format!("cannot install the log subscriber: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_wins_when_valid() {
        let c = LoggingConfig {
            level: "warn".into(),
            format: LogFormat::Text,
        };
        assert_eq!(filter(&c, None).to_string(), "warn");
        assert_eq!(filter(&c, Some("")).to_string(), "warn");
        assert_eq!(filter(&c, Some("debug")).to_string(), "debug");
    }
}
