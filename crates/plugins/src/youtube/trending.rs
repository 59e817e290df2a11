//! `trending_scrape`: the Data API's most-popular chart of a region and category, items with
//! source `youtube_trending`. YouTube retired its Trending page in July 2025, so there is no
//! yt-dlp fallback.
//!
//! A task for one category first reads the region's category list (`videoCategories.list`,
//! one quota unit): a category the region does not have, or one that is not assignable (no
//! chart), is a permanent error listing what the region has. The whole chart (category
//! `all`, `0`) needs no check, so it costs one unit per page of 50 and nothing more. Every
//! item gets the chart category's title (`trending_category_title`) and its own category's
//! title (`category`, next to `category_id`: from the region's list when it was read, else
//! from the US list).

use async_trait::async_trait;
use prismq_domain::{
    Task, TaskContext, TaskError, TaskHandler, TaskResult, TaskType, ValidationError,
};
use serde_json::{json, Map, Value};
use std::sync::Arc;

use super::codes;
use super::common::{self, TRENDING_SCRAPE};
use super::params;
use super::source::{CategoryList, ChartQuery, SourceCall, VideoSource};
use super::video::Video;

/// The source value of this handler's items.
pub const SOURCE: &str = "youtube_trending";

/// Why trending cannot run without the Data API, and what to configure.
pub const NEEDS_API: &str = "trending_scrape needs the YouTube Data API: YouTube retired its \
Trending page in July 2025, so yt-dlp has nothing to read; set youtube.api_key (and backend = \
\"api\" or \"auto\") and enqueue the task again";

/// Handles `trending_scrape`.
#[derive(Debug, Clone)]
pub struct TrendingHandler {
    source: Option<Arc<dyn VideoSource>>,
    baselines_on_demand: bool,
}

impl TrendingHandler {
    /// A handler reading the chart from `source`, the Data API; `None` when no key is
    /// configured, in which case every task fails permanently saying what to configure.
    pub fn new(source: Option<Arc<dyn VideoSource>>) -> Self {
        TrendingHandler {
            source,
            baselines_on_demand: false,
        }
    }

    /// Whether a task without a `baselines` parameter asks for its channels' baselines
    /// (`[youtube] baselines_on_demand`).
    pub fn with_baselines_on_demand(mut self, on: bool) -> Self {
        self.baselines_on_demand = on;
        self
    }
}

/// The `trending_category_title` of the whole chart (category `0`).
pub const ALL_CATEGORIES: &str = "All categories";

/// Most categories listed in an error message before it says how many more there are.
const LISTED: usize = 20;

/// The title of the chart's category after checking it against the region's list: `0` is
/// the whole chart; any other id must be in the list and assignable (YouTube keeps charts
/// for assignable categories only).
///
/// # Errors
/// A permanent error naming the region and the category, and listing the region's
/// assignable categories.
pub fn chart_category(
    region: &str,
    category_id: &str,
    list: &CategoryList,
) -> Result<String, TaskError> {
    if category_id == "0" {
        return Ok(ALL_CATEGORIES.to_string());
    }
    match list.get(category_id) {
        Some(c) if c.assignable => Ok(c.title.clone()),
        Some(c) => Err(TaskError::permanent(format!(
            "category {category_id} ({}) exists in region {region} but is not assignable, so \
             YouTube keeps no chart for it; choose all or one of {region}'s assignable \
             categories: {}",
            c.title,
            assignable(list)
        ))),
        None => Err(TaskError::permanent(format!(
            "category {category_id} does not exist in region {region}; choose all or one of \
             {region}'s assignable categories: {}",
            assignable(list)
        ))),
    }
}

/// `1 Film & Animation, 2 Autos & Vehicles, …` (at most [`LISTED`], then how many more).
fn assignable(list: &CategoryList) -> String {
    let ok: Vec<String> = list
        .categories
        .iter()
        .filter(|c| c.assignable)
        .map(|c| format!("{} {}", c.id, c.title))
        .collect();
    if ok.is_empty() {
        return "none (YouTube lists no assignable category there)".to_string();
    }
    let mut text = ok
        .iter()
        .take(LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if ok.len() > LISTED {
        text.push_str(&format!(" and {} more", ok.len() - LISTED));
    }
    text
}

#[async_trait]
impl TaskHandler for TrendingHandler {
    fn task_type(&self) -> TaskType {
        common::task_type(TRENDING_SCRAPE)
    }

    /// The Data API buckets its chart and category calls charge (none without a key).
    fn quota_buckets(&self) -> Vec<String> {
        let Some(source) = &self.source else {
            return Vec::new();
        };
        let mut names = source.quota_buckets(SourceCall::Categories);
        for b in source.quota_buckets(SourceCall::Chart) {
            if !names.contains(&b) {
                names.push(b);
            }
        }
        names
    }

    fn params(&self) -> Option<Vec<prismq_domain::param_spec::ParamSpec>> {
        Some(super::declare::TRENDING.to_vec())
    }

    fn validate(&self, params: &Map<String, Value>) -> Result<(), ValidationError> {
        params::trending(params).map(|_| ())
    }

    async fn handle(&self, task: &Task, ctx: &TaskContext) -> Result<TaskResult, TaskError> {
        let p = common::parse_task(task, params::trending)?;
        let Some(source) = &self.source else {
            return Err(TaskError::permanent(NEEDS_API));
        };
        // One videoCategories.list call per task of one category: the region's list is the
        // truth about which categories exist there. The whole chart needs no such check.
        let list = if p.category_id == "0" {
            CategoryList::default()
        } else {
            source
                .categories(&p.region, ctx.cancel_signal())
                .await
                .map_err(common::fail)?
        };
        let title = chart_category(&p.region, &p.category_id, &list)?;
        let query = ChartQuery {
            region: p.region.clone(),
            category_id: p.category_id.clone(),
            top_n: p.top_n,
        };
        let extra = |i: usize, v: &Video| {
            let mut m = Map::new();
            m.insert("trending_region".into(), json!(p.region));
            m.insert("trending_category".into(), json!(p.category_id));
            m.insert("trending_category_title".into(), json!(title));
            m.insert("trending_rank".into(), json!(i + 1));
            let own = v.category_id.as_deref().and_then(|id| {
                list.get(id)
                    .map(|c| c.title.clone())
                    .or_else(|| codes::category_title(id).map(str::to_owned))
            });
            if let Some(c) = own {
                m.insert("category".into(), json!(c));
            }
            m
        };
        let backend = source.name();
        match source.chart(&query, ctx.cancel_signal()).await {
            Ok(mut fetched) => {
                for (k, v) in &list.counters {
                    *fetched.counters.entry(k.clone()).or_default() += v;
                }
                let mut result = common::result(
                    SOURCE,
                    backend,
                    fetched,
                    &format!(
                        "the {} chart (category {} {title})",
                        p.region, p.category_id
                    ),
                    extra,
                );
                if p.baselines.unwrap_or(self.baselines_on_demand) {
                    result.follow_ups = common::baseline_follow_ups(task, &result.items);
                }
                Ok(result)
            }
            Err(stopped) => Err(common::stopped(SOURCE, backend, stopped, extra)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::youtube::source::VideoCategory;
    use prismq_domain::ErrorClass;

    fn list() -> CategoryList {
        let c = |id: &str, title: &str, assignable| VideoCategory {
            id: id.into(),
            title: title.into(),
            assignable,
        };
        CategoryList {
            categories: vec![
                c("1", "Film & Animation", true),
                c("10", "Music", true),
                c("20", "Gaming", true),
                c("44", "Trailers", false),
            ],
            counters: Default::default(),
        }
    }

    #[test]
    fn known_assignable_categories_resolve_to_their_title() {
        assert_eq!(chart_category("US", "10", &list()).unwrap(), "Music");
        assert_eq!(chart_category("US", "0", &list()).unwrap(), ALL_CATEGORIES);
        assert_eq!(
            chart_category("US", "0", &CategoryList::default()).unwrap(),
            ALL_CATEGORIES,
            "the whole chart needs no category"
        );
    }

    #[test]
    fn unknown_and_unassignable_categories_are_permanent_and_say_what_exists() {
        let e = chart_category("US", "3", &list()).unwrap_err();
        assert_eq!(e.class, ErrorClass::Permanent);
        assert!(
            e.message.contains("category 3 does not exist in region US")
                && e.message
                    .contains("1 Film & Animation, 10 Music, 20 Gaming"),
            "{e}"
        );
        assert!(!e.message.contains("Trailers"), "only assignable ones: {e}");
        let e = chart_category("US", "44", &list()).unwrap_err();
        assert_eq!(e.class, ErrorClass::Permanent);
        assert!(
            e.message.contains("44 (Trailers)") && e.message.contains("not assignable"),
            "{e}"
        );
        let e = chart_category("AQ", "10", &CategoryList::default()).unwrap_err();
        assert!(
            e.message.contains("region AQ") && e.message.contains("none"),
            "{e}"
        );
    }

    #[test]
    fn long_lists_are_cut_short() {
        let categories = (1..=30)
            .map(|n| VideoCategory {
                id: n.to_string(),
                title: format!("C{n}"),
                assignable: true,
            })
            .collect();
        let l = CategoryList {
            categories,
            counters: Default::default(),
        };
        let e = chart_category("US", "99", &l).unwrap_err();
        assert!(e.message.contains("20 C20 and 10 more"), "{e}");
        assert!(!e.message.contains("C21"), "{e}");
    }
}
