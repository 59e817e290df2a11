//! Each YouTube handler passes the testkit's handler contract.

use prismq_domain::PluginContext;
use prismq_domain::{Registrar, TaskHandler, ValidationError};
use prismq_plugins::{register, YoutubeConfig};
use prismq_testkit::handler::{check_handler_contract, HandlerCases};
use prismq_testkit::{FakeClock, MemoryStore};
use serde_json::json;
use std::sync::Arc;

#[derive(Default)]
struct Collect(Vec<Arc<dyn TaskHandler>>);

impl Registrar for Collect {
    fn add(&mut self, handler: Arc<dyn TaskHandler>) -> Result<(), ValidationError> {
        self.0.push(handler);
        Ok(())
    }
}

fn handlers() -> Vec<Arc<dyn TaskHandler>> {
    let clock = Arc::new(FakeClock::default());
    let store = MemoryStore::new(clock.clone(), Default::default());
    let mut collect = Collect::default();
    register(
        &mut collect,
        YoutubeConfig::default(),
        PluginContext {
            quota: Arc::new(store.clone()),
            clock,
            tracked: Arc::new(store),
        },
    )
    .unwrap();
    collect.0
}

fn cases(task_type: &str) -> HandlerCases {
    match task_type {
        "channel_scrape" => HandlerCases {
            valid: vec![
                json!({"channel_url": "@veritasium"}),
                json!({"channel_url": "UCHnyfMqiRRG1u-2MsSQLbXA", "top_n": 500, "tab": "shorts"}),
            ],
            invalid: vec![
                (json!({"channel_url": ""}), "channel_url"),
                (json!({"channel_url": "--exec=rm"}), "channel_url"),
                (json!({"channel_url": "@veritasium", "top_n": 0}), "top_n"),
                (json!({"channel_url": "@veritasium", "top_n": 501}), "top_n"),
            ],
        },
        "trending_scrape" => HandlerCases {
            valid: vec![
                json!({}),
                json!({"region": "GB", "category": "music", "top_n": 200}),
            ],
            invalid: vec![
                (json!({"region": "XX"}), "region"),
                (json!({"top_n": 201}), "top_n"),
            ],
        },
        "keyword_search" => HandlerCases {
            valid: vec![
                json!({"query": "rust tutorial"}),
                json!({"query": "q", "top_n": 500, "sort_by": "views"}),
            ],
            invalid: vec![
                (json!({"query": ""}), "query"),
                (json!({"query": "q", "top_n": 0}), "top_n"),
                (json!({"query": "q", "sort_by": "likes"}), "sort_by"),
            ],
        },
        "api_scrape" => HandlerCases {
            valid: vec![json!({"videos": ["dQw4w9WgXcQ", "https://youtu.be/dQw4w9WgXcQ"]})],
            invalid: vec![
                (json!({"videos": []}), "videos"),
                (json!({"videos": ["not a video"]}), "videos"),
            ],
        },
        "refresh_stats" => HandlerCases {
            valid: vec![
                json!({"seen_within": "7d"}),
                json!({"channel_id": "UCHnyfMqiRRG1u-2MsSQLbXA", "method": "batch_get_stats"}),
                json!({"all": true}),
            ],
            invalid: vec![
                (json!({}), "all"),
                (json!({"seen_within": "0d"}), "seen_within"),
                (json!({"all": true, "method": "fast"}), "method"),
            ],
        },
        other => panic!("no cases for {other}"),
    }
}

#[test]
fn every_youtube_handler_passes_the_handler_contract() {
    let handlers = handlers();
    assert_eq!(handlers.len(), 5);
    for h in handlers {
        check_handler_contract(h.as_ref(), &cases(h.task_type().as_str()));
    }
}
