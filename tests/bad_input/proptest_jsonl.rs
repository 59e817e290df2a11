//! `enqueue --file` on generated files: a mix of valid task lines, arbitrary JSON and
//! arbitrary bytes. The binary never panics; it either enqueues exactly the non-blank lines
//! (exit 0) or refuses the whole file (exit 2) leaving the database byte-for-byte unchanged.

use proptest::prelude::*;

use prismq_tests::harness::Sandbox;

fn line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (prop::sample::select(vec!["keyword_search", "api_scrape", "channel_scrape", "trending_scrape"]),
              "[a-zA-Z0-9 ]{1,20}", 1u32..12)
            .prop_map(|(t, q, p)| {
                let params = match t {
                    "keyword_search" => serde_json::json!({"query": q}),
                    "api_scrape" => serde_json::json!({"videos": ["dQw4w9WgXcQ"]}),
                    "channel_scrape" => serde_json::json!({"channel_url": "@GoogleDevelopers"}),
                    _ => serde_json::json!({"region": "US"}),
                };
                serde_json::json!({"type": t, "params": params, "priority": p}).to_string().into_bytes()
            }),
        1 => "\\PC{0,40}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..40),
        1 => Just(Vec::new()),
        1 => ("[a-z_]{1,10}", "\\PC{0,10}").prop_map(|(k, v)| {
            serde_json::json!({"type": "keyword_search", "params": {"query": "q"}, k: v}).to_string().into_bytes()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn generated_files_are_all_or_nothing(lines in prop::collection::vec(line(), 1..12)) {
        let s = Sandbox::new();
        s.ok(&["init"]);
        let mut bytes = Vec::new();
        for l in &lines {
            bytes.extend_from_slice(l);
            bytes.push(b'\n');
        }
        std::fs::write(s.path("gen.jsonl"), &bytes).unwrap();
        let before = s.db_bytes();
        let out = s.run(&["--json", "enqueue", "--file", "gen.jsonl"]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        prop_assert!(!err.contains("panicked"), "{}", err);
        match out.status.code() {
            Some(0) => {
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                let enqueued = v.as_array().unwrap().len();
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let non_blank = text.split('\n').filter(|l| !l.trim().is_empty()).count();
                prop_assert_eq!(enqueued, non_blank);
            }
            Some(2) => {
                prop_assert!(err.starts_with("error: "), "{}", err);
                prop_assert!(s.db_bytes() == before, "a refused file changed the database");
            }
            other => prop_assert!(false, "exit {:?}: {}", other, err),
        }
    }
}
