//! Terminal rendering: aligned tables, key–value blocks, timestamps and JSON on stdout.
//! Tables are plain text (no colour, no box drawing) so they paste and diff well, and fit
//! the terminal's width ([`terminal_width`]): the widest flexible columns (titles, channel
//! names) are cut with an ellipsis first, then the least needed columns are left out.
//! Widths are display widths (`console`), so wide characters and emoji line up.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use prismq_domain::Timestamp;

use crate::exit::{CliError, CliResult};

/// The width tables must fit: `COLUMNS` when it is a positive number, else the width of
/// the terminal stdout is, else `None` (stdout is a pipe or a file: no limit).
pub fn terminal_width() -> Option<usize> {
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return Some(n);
    }
    console::Term::stdout()
        .size_checked()
        .map(|(_, cols)| usize::from(cols))
}

/// A table of text cells with a header row, printed with columns aligned.
#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    right: Vec<bool>,
    /// Columns that may be cut to fit, in the order they are cut, with their least width.
    flex: Vec<(usize, usize)>,
    /// Columns that may be left out to fit, the first left out first.
    optional: Vec<usize>,
}

/// Whether a cell says nothing (`-` or empty).
fn blank(cell: &str) -> bool {
    cell.is_empty() || cell == "-"
}

/// The display width of `s`.
fn width(s: &str) -> usize {
    console::measure_text_width(s)
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&'static str]) -> Self {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
            right: vec![false; headers.len()],
            flex: Vec::new(),
            optional: Vec::new(),
        }
    }

    /// Right-aligns the columns at `indexes` (numbers).
    pub fn right_align(mut self, indexes: &[usize]) -> Self {
        for &i in indexes {
            if let Some(r) = self.right.get_mut(i) {
                *r = true;
            }
        }
        self
    }

    /// Lets the columns at `(index, least width)` be cut with an ellipsis to fit the
    /// width, the first one first (a title before a channel name).
    pub fn flexible(mut self, columns: &[(usize, usize)]) -> Self {
        self.flex = columns.to_vec();
        self
    }

    /// Lets the columns at `indexes` be left out when the table cannot fit otherwise, the
    /// first one first; a column whose every cell is `-` goes before the others.
    pub fn optional(mut self, indexes: &[usize]) -> Self {
        self.optional = indexes.to_vec();
        self
    }

    /// Adds a row (missing cells print empty).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text fitting the terminal ([`terminal_width`]).
    pub fn render(&self) -> String {
        self.render_width(terminal_width())
    }

    /// The natural width of each column.
    fn natural(&self) -> Vec<usize> {
        let n = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for r in &self.rows {
            for (i, c) in r.iter().take(n).enumerate() {
                widths[i] = widths[i].max(width(c));
            }
        }
        widths
    }

    /// Which columns to show and how wide, to fit `max` if it can: first leave out the
    /// optional columns that say nothing (every cell `-`), then cut the flexible columns to
    /// their least width, one after the other; if that is not enough, leave out the next
    /// optional column and start again from the natural widths.
    fn layout(&self, max: Option<usize>) -> (Vec<bool>, Vec<usize>) {
        let n = self.headers.len();
        let natural = self.natural();
        let mut shown = vec![true; n];
        let Some(max) = max else {
            return (shown, natural);
        };
        let all_blank = |i: usize| {
            !self.rows.is_empty() && self.rows.iter().all(|r| r.get(i).is_none_or(|c| blank(c)))
        };
        let mut order: Vec<(usize, bool)> = self
            .optional
            .iter()
            .filter(|&&i| all_blank(i))
            .map(|&i| (i, true))
            .collect();
        order.extend(
            self.optional
                .iter()
                .filter(|&&i| !all_blank(i))
                .map(|&i| (i, false)),
        );
        let mut next_out = order.into_iter().peekable();
        let total = |w: &[usize], shown: &[bool]| -> usize {
            let cols: Vec<usize> = (0..n).filter(|&i| shown[i]).map(|i| w[i]).collect();
            cols.iter().sum::<usize>() + 2 * cols.len().saturating_sub(1)
        };
        loop {
            if total(&natural, &shown) <= max {
                return (shown, natural);
            }
            if let Some(&(i, true)) = next_out.peek() {
                shown[i] = false;
                next_out.next();
                continue;
            }
            let mut widths = natural.clone();
            for &(i, least) in &self.flex {
                let over = total(&widths, &shown).saturating_sub(max);
                if over == 0 || !shown[i] {
                    continue;
                }
                let floor = least.max(width(self.headers[i])).min(widths[i]);
                widths[i] = widths[i].saturating_sub(over).max(floor);
            }
            if total(&widths, &shown) <= max {
                return (shown, widths);
            }
            match next_out.next() {
                Some((i, _)) => shown[i] = false,
                None => return (shown, widths),
            }
        }
    }

    /// The table as text at most `max` columns wide when it can be (`None`: as wide as
    /// its cells), one line per row, without trailing spaces.
    pub fn render_width(&self, max: Option<usize>) -> String {
        let (shown, widths) = self.layout(max);
        let mut out = String::new();
        let header: Vec<String> = self.headers.iter().map(|h| (*h).to_owned()).collect();
        for cells in std::iter::once(&header).chain(self.rows.iter()) {
            let mut line = String::new();
            let mut first = true;
            for (i, w) in widths.iter().enumerate() {
                if !shown[i] {
                    continue;
                }
                let raw = cells.get(i).map_or("", String::as_str);
                let cell = if width(raw) > *w {
                    console::truncate_str(raw, *w, "…").into_owned()
                } else {
                    raw.to_owned()
                };
                let pad = w.saturating_sub(width(&cell));
                if !first {
                    line.push_str("  ");
                }
                first = false;
                if self.right[i] {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(&cell);
                } else {
                    line.push_str(&cell);
                    line.push_str(&" ".repeat(pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Key–value lines with the keys aligned.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        out.push_str(&format!("{:width$}  {v}\n", format!("{k}:")));
    }
    out
}

/// A timestamp as `2026-11-20 12:00:00Z` (UTC, seconds).
pub fn time(t: Timestamp) -> String {
    let s = t.strftime("%Y-%m-%d %H:%M:%SZ").to_string();
    s
}

/// An optional timestamp, `-` when absent.
pub fn opt_time(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "-".to_owned(), time)
}

/// An optional value, `-` when absent.
pub fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// `s` cut to `max` characters with an ellipsis, on one line.
pub fn cut(s: &str, max: usize) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= max {
        one_line
    } else {
        let mut t: String = one_line.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// A length as `0:58`, `12:34` or `1:02:03`.
pub fn duration(secs: i64) -> String {
    let s = secs.max(0);
    let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{sec:02}")
    } else {
        format!("{m}:{sec:02}")
    }
}

/// An optional count with thousands separators, `-` when unknown.
pub fn opt_count(n: Option<i64>) -> String {
    n.map_or_else(|| "-".to_owned(), count)
}

/// A large count with thousands separators (`1,234,567`).
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

/// Writes `text` to stdout as is.
///
/// # Errors
/// stdout is closed (a broken pipe is not an error: the reader has what it wanted).
pub fn print(text: &str) -> CliResult {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => Err(CliError::failure(format!("cannot write to stdout: {e}"))),
        Ok(()) => Ok(()),
    }
}

/// Set once a write to stdout found its reader gone (`prismq stats --watch | head -1`).
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether a write to stdout has found its reader gone: a command that prints repeatedly
/// (`stats --watch`) stops then, instead of printing into nothing for ever.
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// Writes `value` as pretty JSON and a newline to stdout.
///
/// # Errors
/// As [`print()`], or a value that does not serialize.
pub fn json<T: Serialize + ?Sized>(value: &T) -> CliResult {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::failure(format!("cannot serialize the output: {e}")))?;
    print(&format!("{text}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_trim() {
        let mut t = Table::new(&["ID", "NAME", "VIEWS"]).right_align(&[2]);
        t.row(vec!["1".into(), "alpha".into(), "10".into()]);
        t.row(vec!["22".into(), "b".into(), "1,000".into()]);
        assert_eq!(
            t.render(),
            "ID  NAME   VIEWS\n1   alpha     10\n22  b      1,000\n"
        );
    }

    fn titled() -> Table {
        let mut t = Table::new(&["ID", "VIEWS", "SCORE", "CHANNEL", "TITLE"])
            .right_align(&[1])
            .flexible(&[(4, 10), (3, 7)])
            .optional(&[2, 3]);
        t.row(vec![
            "a1".into(),
            "1,000".into(),
            "-".into(),
            "Google for Developers".into(),
            "Build an agent with the Gemini API in 12 minutes".into(),
        ]);
        t.row(vec![
            "b2".into(),
            "12".into(),
            "-".into(),
            "日本のチャンネル".into(),
            "短いタイトル".into(),
        ]);
        t
    }

    #[test]
    fn tables_fit_the_width_by_cutting_then_leaving_out() {
        let t = titled();
        // No limit: natural widths.
        let wide = t.render_width(None);
        assert!(
            wide.contains("Build an agent with the Gemini API in 12 minutes"),
            "{wide}"
        );
        for max in [100, 85, 80, 60, 50, 40, 30] {
            let out = t.render_width(Some(max));
            for line in out.lines() {
                assert!(
                    width(line) <= max,
                    "{max}: {line:?} is {} wide\n{out}",
                    width(line)
                );
            }
        }
        // 100: everything fits as it is.
        assert_eq!(t.render_width(Some(100)), wide);
        // 85: the all-blank SCORE column goes before any title is cut.
        let out = t.render_width(Some(85));
        assert!(!out.contains("SCORE") && !out.contains('…'), "{out}");
        // 60: then the title is cut with an ellipsis.
        let out = t.render_width(Some(60));
        assert!(
            out.contains("Google for Developers") && out.contains('…'),
            "{out}"
        );
        // 40: then the channel too.
        let out = t.render_width(Some(40));
        assert!(!out.contains("Google for Developers"), "{out}");
        // Wide characters count double and are cut on a character boundary.
        let out = t.render_width(Some(30));
        assert!(out.lines().all(|l| width(l) <= 30), "{out}");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(58), "0:58");
        assert_eq!(duration(754), "12:34");
        assert_eq!(duration(3723), "1:02:03");
        assert_eq!(duration(93_784), "26:03:04");
        assert_eq!(opt_count(None), "-");
        assert_eq!(opt_count(Some(1_234)), "1,234");
    }

    #[test]
    fn counts_and_cuts() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(count(-1000), "-1,000");
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("a\nb", 10), "a b");
    }
}
