//! The forms made from a task type's declared parameters, over plain HTTP: one labelled
//! control per parameter of every registered type, a refusal next to its field with the
//! values kept (escaped) and nothing written, an unknown type named, and a task enqueued.

use serde_json::json;

use prismq_domain::param_spec::ParamKind;
use prismq_domain::ports::Scope;
use prismq_domain::{NewTask, TaskType};

use crate::http::{get, post, sign_in};
use crate::support::Server;

/// `k=v&…`, percent-encoded.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The HTML-escaped form of `s`, as askama writes it.
pub fn escaped(s: &str) -> String {
    s.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

#[tokio::test]
async fn every_declared_parameter_gets_a_labelled_control_of_its_kind() {
    let s = Server::start().await;
    let key = s.key(&[Scope::Read, Scope::Enqueue], 600).await;
    let me = sign_in(&s, &key).await;
    let types = s.app.registry.task_types();
    assert!(!types.is_empty());
    for t in types {
        let specs = s.app.registry.handler(&t).unwrap().params().unwrap();
        let r = get(&s, &format!("/enqueue?type={}", t.as_str()), &me.cookie).await;
        assert_eq!(r.status(), 200, "{}", t.as_str());
        let html = r.text().await.unwrap();
        for p in &specs {
            let id = format!("p-{}", p.name);
            assert!(
                html.contains(&format!("<label for=\"{id}\">{}", p.name)),
                "{}: a label for {}",
                t.as_str(),
                p.name
            );
            let control = match &p.kind {
                ParamKind::Text { .. } => format!("<input type=\"text\" id=\"{id}\""),
                ParamKind::Integer { min, max, .. } => {
                    let c = format!("<input type=\"number\" id=\"{id}\"");
                    let at = html.find(&c).unwrap_or_else(|| panic!("{c}"));
                    let tag = &html[at..at + html[at..].find('>').unwrap()];
                    assert!(
                        tag.contains(&format!("min=\"{min}\""))
                            && tag.contains(&format!("max=\"{max}\"")),
                        "{tag}"
                    );
                    c
                }
                ParamKind::Boolean { default: Some(_) } => {
                    format!("<input type=\"checkbox\" id=\"{id}\"")
                }
                ParamKind::Boolean { default: None } | ParamKind::Choice { .. } => {
                    format!("<select id=\"{id}\"")
                }
                ParamKind::TextList { .. } => format!("<textarea id=\"{id}\""),
            };
            assert!(html.contains(&control), "{}: {control}", t.as_str());
            if let ParamKind::Choice { options, .. } = &p.kind {
                for o in *options {
                    assert!(html.contains(&format!("<option value=\"{o}\"")), "{o}");
                }
            }
            assert!(
                html.contains(&format!("id=\"{id}-help\">{}</p>", escaped(p.description))),
                "{}: the description of {} as help text",
                t.as_str(),
                p.name
            );
            let required = html[html.find(&format!("<label for=\"{id}\">")).unwrap()..]
                .split("</label>")
                .next()
                .unwrap()
                .contains("(required)");
            assert_eq!(required, p.required, "{}: {} marked", t.as_str(), p.name);
        }
    }
    // An unknown type: the registry's message, naming the registered ones.
    let r = get(&s, "/enqueue?type=no_such_type", &me.cookie).await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("no handler is registered") && html.contains("keyword_search"),
        "{html}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_refused_field_keeps_every_value_escaped_and_writes_nothing() {
    let s = Server::start().await;
    let key = s.key(&[Scope::Read, Scope::Enqueue], 600).await;
    let me = sign_in(&s, &key).await;
    let hostile = "\"><script>window.__pwned=1</script>";
    let expected = s
        .app
        .registry
        .validate(&NewTask::new(
            TaskType::new("keyword_search").unwrap(),
            json!({ "query": hostile, "top_n": 0, "sort_by": "date" }),
        ))
        .unwrap_err();
    assert_eq!(expected.field, "params.top_n");
    let r = post(
        &s,
        "/enqueue",
        &me.cookie,
        &form(&[
            ("csrf", &me.csrf),
            ("type", "keyword_search"),
            ("p.query", hostile),
            ("p.top_n", "0"),
            ("p.sort_by", "date"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(!html.contains("<script>window"), "the value is escaped");
    assert!(
        html.contains(&format!("value=\"{}\"", escaped(hostile))),
        "kept"
    );
    assert!(html.contains("<option value=\"date\" selected>"), "kept");
    assert!(html.contains(&format!(
        "id=\"p-top_n-error\">{}</p>",
        escaped(&expected.to_string())
    )));
    assert_eq!(s.task_count().await, 0);

    // A required parameter left empty: refused on its field by the handler's check.
    let r = post(
        &s,
        "/enqueue",
        &me.cookie,
        &form(&[
            ("csrf", &me.csrf),
            ("type", "keyword_search"),
            ("p.query", ""),
        ]),
    )
    .await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("id=\"p-query-error\">"));
    // A bad priority, next to the priority.
    let r = post(
        &s,
        "/enqueue",
        &me.cookie,
        &form(&[
            ("csrf", &me.csrf),
            ("type", "keyword_search"),
            ("p.query", "surf"),
            ("priority", "high"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("id=\"priority-error\">"));
    assert_eq!(s.task_count().await, 0, "nothing was written");

    // Accepted: the task has exactly the parameters given, typed.
    let r = post(
        &s,
        "/enqueue",
        &me.cookie,
        &form(&[
            ("csrf", &me.csrf),
            ("type", "channel_scrape"),
            ("p.channel_url", "@veritasium"),
            ("p.top_n", "25"),
            ("p.tab", "shorts"),
            ("p.max_age_days", ""),
            ("priority", "7"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 303);
    let id: i64 = r.headers()["location"]
        .to_str()
        .unwrap()
        .trim_start_matches("/tasks/")
        .parse()
        .unwrap();
    let t = s.app.queue.get(prismq_domain::TaskId(id)).await.unwrap();
    assert_eq!(
        t.params,
        json!({"channel_url": "@veritasium", "top_n": 25, "tab": "shorts"})
    );
    assert_eq!(t.priority.get(), 7);
    // Without the enqueue scope: refused.
    let reader = s.key(&[Scope::Read], 600).await;
    let them = sign_in(&s, &reader).await;
    let r = post(
        &s,
        "/enqueue",
        &them.cookie,
        &form(&[
            ("csrf", &them.csrf),
            ("type", "keyword_search"),
            ("p.query", "x"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 403);
    assert_eq!(s.task_count().await, 1);
    s.stop().await;
}

#[tokio::test]
async fn a_schedule_is_added_from_the_form_with_the_clis_checks() {
    let s = Server::start().await;
    let admin = s.key(&[Scope::Admin], 600).await;
    let me = sign_in(&s, &admin).await;
    let r = get(&s, "/schedules/add?type=keyword_search", &me.cookie).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    for id in [
        "name", "every", "cron", "tz", "jitter", "p-query", "p-top_n", "priority",
    ] {
        assert!(html.contains(&format!("<label for=\"{id}\">")), "{id}");
    }
    let base = |extra: &[(&str, &str)]| {
        let mut p = vec![
            ("csrf", me.csrf.as_str()),
            ("type", "keyword_search"),
            ("name", "rust-6h"),
            ("p.query", "rust tutorials"),
        ];
        p.extend_from_slice(extra);
        form(&p)
    };
    // Each refusal is the domain's (the CLI's) message, next to its field; nothing written.
    /// Extra form fields, the field the refusal must be under, and what it must say.
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, String);
    let cases: Vec<Case<'_>> = vec![
        (vec![], "every", "neither every nor cron".into()),
        (
            vec![("every", "6h"), ("cron", "0 * * * *")],
            "cron",
            "both every and cron".into(),
        ),
        (
            vec![("every", "10s")],
            "every",
            prismq_domain::schedule::Cadence::every("10s")
                .unwrap_err()
                .to_string(),
        ),
        (
            vec![("cron", "0 * * *")],
            "cron",
            prismq_domain::schedule::Cadence::cron("0 * * *")
                .unwrap_err()
                .to_string(),
        ),
        (
            vec![("every", "6h"), ("tz", "Mars/Olympus")],
            "tz",
            prismq_domain::schedule::time_zone("Mars/Olympus")
                .unwrap_err()
                .to_string(),
        ),
        (
            vec![("every", "6h"), ("jitter", "2h")],
            "jitter",
            "is over 1 hour".into(),
        ),
        (
            vec![("every", "6h"), ("p.top_n", "0")],
            "p-top_n",
            "invalid params.top_n".into(),
        ),
    ];
    for (extra, field, says) in &cases {
        let r = post(&s, "/schedules/add", &me.cookie, &base(extra)).await;
        assert_eq!(r.status(), 422, "{extra:?}");
        let html = r.text().await.unwrap();
        let at = html
            .find(&format!("id=\"{field}-error\">"))
            .unwrap_or_else(|| panic!("{extra:?}: no message under {field}: {html}"));
        let msg = &html[at..at + html[at..].find("</p>").unwrap()];
        assert!(
            msg.contains(&escaped(says)),
            "{extra:?}: {msg} lacks {says}"
        );
        assert!(html.contains("value=\"rust-6h\""), "values kept");
        assert!(html.contains("value=\"rust tutorials\""), "values kept");
    }
    assert!(s.app.schedule_views().await.unwrap().is_empty());
    assert_eq!(s.task_count().await, 0);

    // Accepted: the schedule as `prismq schedule add` would make it.
    let r = post(
        &s,
        "/schedules/add",
        &me.cookie,
        &base(&[
            ("cron", "30 6 * * *"),
            ("tz", "Europe/Berlin"),
            ("jitter", "5m"),
            ("p.top_n", "20"),
            ("priority", "8"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/schedules");
    let got = s.app.schedules.get_schedule("rust-6h").await.unwrap();
    assert_eq!(got.params, json!({"query": "rust tutorials", "top_n": 20}));
    assert_eq!(got.time_zone, "Europe/Berlin");
    assert_eq!(got.jitter, std::time::Duration::from_secs(300));
    assert_eq!(got.priority.get(), 8);
    assert_eq!(
        got.cadence,
        prismq_domain::schedule::Cadence::Cron("30 6 * * *".into())
    );
    let list = get(&s, "/schedules", &me.cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains("rust-6h") && list.contains("href=\"/schedules/add\""));
    // The same name again: the store's refusal, next to the name.
    let r = post(&s, "/schedules/add", &me.cookie, &base(&[("every", "1h")])).await;
    assert_eq!(r.status(), 422);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("id=\"name-error\">duplicate"));
    assert_eq!(s.app.schedule_views().await.unwrap().len(), 1);
    // An enqueue key may not add schedules, and sees no button.
    let editor = s.key(&[Scope::Read, Scope::Enqueue], 600).await;
    let them = sign_in(&s, &editor).await;
    assert!(!get(&s, "/schedules", &them.cookie)
        .await
        .text()
        .await
        .unwrap()
        .contains("href=\"/schedules/add\""));
    assert_eq!(get(&s, "/schedules/add", &them.cookie).await.status(), 403);
    let r = post(
        &s,
        "/schedules/add",
        &them.cookie,
        &form(&[
            ("csrf", &them.csrf),
            ("type", "keyword_search"),
            ("name", "sneaky"),
            ("every", "1h"),
            ("p.query", "x"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 403);
    assert_eq!(s.app.schedule_views().await.unwrap().len(), 1);
    s.stop().await;
}
