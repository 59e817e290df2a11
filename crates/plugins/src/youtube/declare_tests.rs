//! The YouTube declarations (`declare.rs`) held to the checks (`params.rs`): every value a
//! declaration allows at its edges passes, every value just outside is refused naming the
//! parameter.

use crate::youtube::declare::*;
use crate::youtube::params;
use prismq_domain::param_spec::edge_values;
use prismq_domain::param_spec::ParamSpec;
use prismq_domain::ValidationError;
use serde_json::{json, Map, Value};

type Check = fn(&Map<String, Value>) -> Result<(), ValidationError>;

fn checks() -> Vec<(&'static str, &'static [ParamSpec], Check, Value)> {
    vec![
        (
            "channel_scrape",
            CHANNEL,
            |p| params::channel(p).map(|_| ()),
            json!({"channel_url": "@GoogleDevelopers"}),
        ),
        (
            "trending_scrape",
            TRENDING,
            |p| params::trending(p).map(|_| ()),
            json!({}),
        ),
        (
            "keyword_search",
            KEYWORD,
            |p| params::keyword(p).map(|_| ()),
            json!({"query": "surf"}),
        ),
        (
            "api_scrape",
            API,
            |p| params::api(p).map(|_| ()),
            json!({"videos": ["dQw4w9WgXcQ"]}),
        ),
    ]
}

/// Every value `spec` allows at its edges, set on `base`, passes `check`; every value
/// just outside is refused naming the parameter.
fn assert_edges(kind: &str, spec: &ParamSpec, base: &Map<String, Value>, check: Check) {
    let (ok, bad) = edge_values(spec);
    for v in ok {
        let mut p = base.clone();
        p.insert(spec.name.into(), v.clone());
        check(&p).unwrap_or_else(|e| panic!("{kind}.{} = {v}: {e}", spec.name));
    }
    for v in bad {
        let mut p = base.clone();
        p.insert(spec.name.into(), v.clone());
        let e = check(&p).expect_err(&format!("{kind}.{} = {v} passed", spec.name));
        assert!(
            e.field.starts_with(spec.name),
            "{kind}.{} = {v}: {e}",
            spec.name
        );
    }
}

/// `refresh_stats` joins parameters (a filter, or `all` alone), so its edges are
/// checked on a base with one filter, leaving out `all`, whose edges follow.
#[test]
fn refresh_stats_edges_hold_around_its_one_filter_rule() {
    let check = |p: &Value| params::refresh(p.as_object().unwrap()).map(|_| ());
    let base = json!({"seen_within": "7d"});
    let base = base.as_object().unwrap().clone();
    let specs = REFRESH
        .iter()
        .filter(|s| s.name != "all" && s.name != "seen_within");
    for spec in specs {
        assert_edges("refresh_stats", spec, &base, |p| {
            params::refresh(p).map(|_| ())
        });
    }
    for v in ["7d", "12h"] {
        check(&json!({"seen_within": v})).unwrap();
    }
    check(&json!({"seen_within": ""})).unwrap_err();
    check(&json!({"all": true})).unwrap();
    assert_eq!(check(&json!({"all": false})).unwrap_err().field, "all");
    assert_eq!(
        check(&json!({"all": true, "seen_within": "7d"}))
            .unwrap_err()
            .field,
        "all"
    );
}

#[test]
fn every_declared_edge_is_what_the_check_accepts_and_refuses() {
    for (kind, specs, check, base) in checks() {
        let base = base.as_object().unwrap().clone();
        check(&base).unwrap_or_else(|e| panic!("{kind}: the base params: {e}"));
        for spec in specs {
            assert_edges(kind, spec, &base, check);
            if spec.required {
                let mut p = base.clone();
                p.remove(spec.name);
                let e = check(&p).expect_err(&format!("{kind} without {}", spec.name));
                assert_eq!(e.field, spec.name, "{kind}");
            }
        }
        // Nothing undeclared is accepted.
        let mut p = base.clone();
        p.insert("topn".into(), json!(5));
        let e = check(&p).expect_err(kind);
        assert!(e.field.contains("topn"), "{kind}: {e}");
    }
}

#[test]
fn the_accepted_names_come_from_the_declaration_with_aliases_in_place() {
    assert_eq!(
        names(TRENDING, &[("region", "country")]),
        ["region", "country", "category", "top_n", "baselines"]
    );
    assert_eq!(names(API, &[]), ["videos"]);
}
