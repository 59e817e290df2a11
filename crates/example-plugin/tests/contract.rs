//! The example plugin passes the testkit's handler contract and produces what it promises.

use prismq_domain::TaskHandler;
use prismq_example_plugin::EchoHandler;
use prismq_testkit::handler::{check_handler_contract, context, task_for, HandlerCases};
use serde_json::json;

#[test]
fn passes_the_handler_contract() {
    check_handler_contract(
        &EchoHandler,
        &HandlerCases {
            valid: vec![json!({"text": "hi"}), json!({"text": "hi", "times": 100})],
            invalid: vec![
                (json!({"text": ""}), "text"),
                (json!({"text": "x".repeat(201)}), "text"),
                (json!({"text": "hi", "times": 0}), "times"),
                (json!({"times": 2}), "text"),
            ],
        },
    );
}

#[tokio::test]
async fn produces_one_item_per_time_and_stops_when_cancelled() {
    let (ctx, cancel, _log) = context();
    let task = task_for(&EchoHandler, json!({"text": "idea", "times": 3}));
    let out = EchoHandler.handle(&task, &ctx).await.unwrap();
    assert_eq!(out.items.len(), 3);
    assert_eq!(out.items[2].source_id, "1-2");
    assert_eq!(out.counters["items"], 3);
    cancel.cancel();
    let err = EchoHandler.handle(&task, &ctx).await.unwrap_err();
    assert_eq!(err.class, prismq_domain::ErrorClass::Retryable);
}

#[test]
fn the_declaration_and_validate_agree_at_every_edge() {
    let specs = EchoHandler.params().expect("declared");
    for spec in &specs {
        let (ok, bad) = prismq_domain::param_spec::edge_values(spec);
        for v in ok {
            let mut p = json!({"text": "hi"});
            p[spec.name] = v.clone();
            assert!(
                EchoHandler.validate(p.as_object().unwrap()).is_ok(),
                "{} = {v}",
                spec.name
            );
        }
        for v in bad {
            let mut p = json!({"text": "hi"});
            p[spec.name] = v.clone();
            let e = EchoHandler.validate(p.as_object().unwrap()).unwrap_err();
            assert_eq!(e.field, spec.name, "{} = {v}", spec.name);
        }
    }
}
