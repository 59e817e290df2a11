//! Results export, shared by `prismq results export` and the API's streamed export: the
//! CSV columns, the JSON Lines encoding, and the keyset walk that reads a filtered listing
//! page by page so neither caller holds more than one page in memory.

use std::sync::Arc;

use prismq_domain::growth::GrowthWindow;
use prismq_domain::ports::{ResultQuery, ResultStore, StoredResult};
use prismq_domain::PortError;

/// The page size an export reads in (the storage's largest page is 10,000).
pub const EXPORT_PAGE: u32 = 1_000;

/// How an export is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Comma-separated values, [`CSV_HEADER`] first.
    Csv,
    /// One JSON object per line (the objects of `results list --json`).
    Jsonl,
}

/// The CSV export's columns, in order.
pub const CSV_HEADER: [&str; 31] = [
    "platform",
    "source_id",
    "title",
    "channel",
    "channel_id",
    "url",
    "published_at",
    "duration_secs",
    "views",
    "likes",
    "comments",
    "growth_1h_views_per_hour",
    "growth_1h_span_secs",
    "growth_24h_views_per_hour",
    "growth_24h_span_secs",
    "growth_7d_views_per_hour",
    "growth_7d_span_secs",
    "growth_30d_views_per_hour",
    "growth_30d_span_secs",
    "first_seen_at",
    "last_seen_at",
    "last_task_id",
    "tags",
    "format",
    "outlier_score",
    "outlier_basis",
    "outlier_baseline",
    "outlier_sample",
    "outlier_views",
    "last_source",
    "last_rank",
];

/// One result as a CSV record, in [`CSV_HEADER`]'s order; an unknown value is empty.
pub fn csv_row(r: &StoredResult) -> Vec<String> {
    let i = &r.item;
    let o = |v: Option<i64>| v.map_or_else(String::new, |n| n.to_string());
    let mut growth = Vec::new();
    for w in GrowthWindow::ALL {
        let g = r.growth.get(w);
        growth.push(g.map_or_else(String::new, |g| format!("{:.3}", g.views_per_hour)));
        growth.push(o(g.map(|g| g.span_secs)));
    }
    let mut row = vec![
        i.platform.clone(),
        i.source_id.clone(),
        i.title.clone(),
        i.channel.clone().unwrap_or_default(),
        i.channel_id.clone().unwrap_or_default(),
        i.url.clone().unwrap_or_default(),
        i.published_at.map_or_else(String::new, |t| t.to_string()),
        o(i.duration_secs),
        o(i.metrics.views),
        o(i.metrics.likes),
        o(i.metrics.comments),
    ];
    row.extend(growth);
    row.extend([
        r.first_seen_at.to_string(),
        r.last_seen_at.to_string(),
        r.last_task_id.map_or_else(String::new, |t| t.to_string()),
        i.tags.join("|"),
        r.format.map_or_else(String::new, |f| f.as_str().to_owned()),
        r.outlier.map_or_else(String::new, |o| o.score.to_string()),
        r.outlier
            .map_or_else(String::new, |o| o.basis.as_str().to_owned()),
        r.outlier
            .map_or_else(String::new, |o| o.baseline.to_string()),
        r.outlier.map_or_else(String::new, |o| o.sample.to_string()),
        r.outlier.map_or_else(String::new, |o| o.views.to_string()),
        i.source.clone(),
        i.rank.map_or_else(String::new, |n| n.to_string()),
    ]);
    row
}

/// Encodes an export as bytes, a page at a time: [`Encoder::start`] once, then
/// [`Encoder::page`] for each page.
#[derive(Debug, Clone, Copy)]
pub struct Encoder {
    format: ExportFormat,
}

impl Encoder {
    /// An encoder for `format`.
    pub fn new(format: ExportFormat) -> Self {
        Self { format }
    }

    /// What comes before the first item: the CSV header row, nothing for JSON Lines.
    pub fn start(&self) -> Vec<u8> {
        match self.format {
            ExportFormat::Csv => csv_bytes(std::iter::once(
                CSV_HEADER.iter().map(|c| (*c).to_owned()).collect(),
            )),
            ExportFormat::Jsonl => Vec::new(),
        }
    }

    /// One page of items, encoded.
    pub fn page(&self, items: &[StoredResult]) -> Vec<u8> {
        match self.format {
            ExportFormat::Csv => csv_bytes(items.iter().map(csv_row)),
            ExportFormat::Jsonl => {
                let mut out = Vec::with_capacity(items.len() * 512);
                for r in items {
                    // A StoredResult is plain data (strings, numbers, maps with string
                    // keys), which serde_json always encodes.
                    if serde_json::to_writer(&mut out, r).is_ok() {
                        out.push(b'\n');
                    }
                }
                out
            }
        }
    }
}

/// Records as CSV bytes (quoted where a field needs it).
fn csv_bytes(rows: impl Iterator<Item = Vec<String>>) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in rows {
        // Writing to a Vec cannot fail.
        let _ = w.write_record(&row);
    }
    w.into_inner().unwrap_or_default()
}

/// A filtered listing read page by page through its keyset cursor.
pub struct Pages {
    results: Arc<dyn ResultStore>,
    query: ResultQuery,
    done: bool,
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pages")
            .field("query", &self.query)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Pages {
    /// Walks `query` (its `after` and `limit` are where to start and the page size).
    pub fn new(results: Arc<dyn ResultStore>, query: ResultQuery) -> Self {
        Self {
            results,
            query,
            done: false,
        }
    }

    /// The next page, `None` after the last.
    ///
    /// # Errors
    /// The store's error; the walk can be resumed by calling again.
    pub async fn next(&mut self) -> Result<Option<Vec<StoredResult>>, PortError> {
        if self.done {
            return Ok(None);
        }
        let page = self.results.query(&self.query).await?;
        match page.last() {
            Some(last) if page.len() == self.query.limit as usize => {
                self.query.after = Some(self.query.cursor_after(last));
            }
            _ => self.done = true,
        }
        if page.is_empty() {
            return Ok(None);
        }
        Ok(Some(page))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prismq_domain::ContentItem;

    fn stored(id: &str, title: &str) -> StoredResult {
        let mut item = ContentItem::new("youtube_channel", id, title);
        item.metrics.views = Some(7);
        let t: prismq_domain::Timestamp = "2026-11-20T12:00:00Z".parse().unwrap();
        StoredResult {
            item,
            first_seen_at: t,
            last_seen_at: t,
            last_task_id: None,
            growth: Default::default(),
            format: None,
            outlier: None,
        }
    }

    #[test]
    fn csv_quotes_commas_quotes_and_newlines_and_matches_the_header() {
        let e = Encoder::new(ExportFormat::Csv);
        let mut bytes = e.start();
        bytes.extend(e.page(&[stored("a", "one, \"two\"\nthree")]));
        let mut r = csv::Reader::from_reader(bytes.as_slice());
        let header: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
        assert_eq!(header, CSV_HEADER);
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].len(), CSV_HEADER.len());
        assert_eq!(&rows[0][2], "one, \"two\"\nthree");
        assert_eq!(&rows[0][8], "7");
        assert_eq!(&rows[0][9], "", "unknown likes are empty, not 0");
    }

    #[test]
    fn jsonl_is_one_object_per_line() {
        let e = Encoder::new(ExportFormat::Jsonl);
        assert!(e.start().is_empty());
        let bytes = e.page(&[stored("a", "x\ny"), stored("b", "z")]);
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["item"]["title"], "x\ny");
        assert!(text.ends_with('\n'));
    }
}
