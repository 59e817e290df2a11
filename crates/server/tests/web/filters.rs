//! The ideas list's filters over plain HTTP, as `prismq results list` takes them: the growth
//! window, channel, source, "seen since" and "new since" (first seen); a refused value is
//! shown next to its field (422) and keeps the others; paging links carry every filter.

use std::time::Duration;

use prismq_domain::content::Metrics;
use prismq_domain::ports::Scope;
use prismq_domain::ContentItem;

use crate::forms::escaped;
use crate::http::{get, sign_in};
use crate::support::Server;

fn video(source: &str, id: &str, channel: &str, views: i64) -> ContentItem {
    let mut v = ContentItem::new(source, id, format!("title {id}"));
    v.channel = Some(format!("name of {channel}"));
    v.channel_id = Some(channel.to_owned());
    v.metrics = Metrics {
        views: Some(views),
        likes: None,
        comments: None,
    };
    v
}

/// The video ids a page lists, in order.
fn ids(html: &str) -> Vec<String> {
    html.split("<a href=\"/ideas/")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|s| !s.ends_with("chart.svg"))
        .map(|s| s.rsplit('/').next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn filters_by_channel_source_new_since_and_window() {
    let s = Server::start().await;
    let key = s.key(&[Scope::Read], 600).await;
    let me = sign_in(&s, &key).await;
    s.app
        .results
        .save(
            None,
            &[
                video(
                    "youtube_keyword",
                    "old0000000a",
                    "UCaaaaaaaaaaaaaaaaaaaaaa",
                    300,
                ),
                video(
                    "youtube_channel",
                    "old0000000b",
                    "UCbbbbbbbbbbbbbbbbbbbbbb",
                    200,
                ),
            ],
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let cut = s.app.clock.now().to_string();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    s.app
        .results
        .save(
            None,
            &[video(
                "youtube_keyword",
                "new0000000c",
                "UCaaaaaaaaaaaaaaaaaaaaaa",
                100,
            )],
        )
        .await
        .unwrap();
    let page = |q: String| {
        let cookie = me.cookie.clone();
        let s = &s;
        async move {
            let r = get(s, &format!("/ideas?{q}"), &cookie).await;
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (st, all) = page("order=views".into()).await;
    assert_eq!(st, 200);
    assert_eq!(ids(&all), ["old0000000a", "old0000000b", "new0000000c"]);
    // Each row's channel links to that channel's filter.
    assert!(all.contains("href=\"/ideas?channel=UCbbbbbbbbbbbbbbbbbbbbbb\""));
    let (_, ch) = page("order=views&channel=UCaaaaaaaaaaaaaaaaaaaaaa".into()).await;
    assert_eq!(ids(&ch), ["old0000000a", "new0000000c"]);
    let (_, src) = page("source=youtube_channel".into()).await;
    assert_eq!(ids(&src), ["old0000000b"]);
    let enc = cut.replace(':', "%3A").replace('+', "%2B");
    let (st, fresh) = page(format!("new_since={enc}")).await;
    assert_eq!(st, 200, "{fresh}");
    assert_eq!(ids(&fresh), ["new0000000c"], "first seen after {cut}");
    assert!(
        fresh.contains(&format!("value=\"{cut}\"")),
        "the filter is kept"
    );
    let (_, both) = page(format!("new_since={enc}&channel=UCbbbbbbbbbbbbbbbbbbbbbb")).await;
    assert!(ids(&both).is_empty() && both.contains("No videos match"));
    // Without an order the list is by growth (24h), what editors come for.
    let (st, d) = page(String::new()).await;
    assert_eq!(st, 200);
    assert!(d.contains("<option value=\"growth\" selected>") && d.contains("Views/hour (24h)"));
    assert_eq!(ids(&d).len(), 3);
    // The window names the growth column and is kept.
    let (st, w) = page("order=growth&window=7d".into()).await;
    assert_eq!(st, 200);
    assert!(w.contains("Views/hour (7d)") && w.contains("<option value=\"7d\" selected>"));

    // Refused values: the message next to the field, the others kept, nothing listed.
    for (q, field, says) in [
        (
            "window=2h&channel=UCx",
            "f-window",
            "is not a growth window",
        ),
        (
            "new_since=yesterday&channel=UCx",
            "f-new-since",
            "is neither a duration nor a timestamp",
        ),
        (
            "since=soon&channel=UCx",
            "f-since",
            "is neither a duration nor a timestamp",
        ),
        (
            "order=loudest&channel=UCx",
            "f-order",
            "is not a sort order",
        ),
    ] {
        let (st, html) = page(q.into()).await;
        assert_eq!(st, 422, "{q}");
        let at = html
            .find(&format!("id=\"{field}-error\">"))
            .unwrap_or_else(|| panic!("{q}: no message under {field}: {html}"));
        let msg = &html[at..at + html[at..].find("</p>").unwrap()];
        assert!(
            msg.contains(says) && msg.contains("accepted:"),
            "{q}: {msg}"
        );
        assert!(html.contains("id=\"filter-error\""));
        assert!(
            html.contains("value=\"UCx\""),
            "{q}: the other filters are kept"
        );
        assert!(ids(&html).is_empty(), "{q}: nothing listed");
    }
    let long = "x".repeat(101);
    let (st, html) = page(format!("channel={long}")).await;
    assert_eq!(st, 422);
    assert!(html.contains("id=\"f-channel-error\">"));
    let hostile = "\"><script>x</script>";
    let (st, html) = page(format!("since={}", "%22%3E%3Cscript%3Ex%3C%2Fscript%3E")).await;
    assert_eq!(st, 422);
    assert!(!html.contains("<script>x") && html.contains(&escaped(hostile)));
    s.stop().await;
}

#[tokio::test]
async fn paging_links_carry_every_filter() {
    let s = Server::start().await;
    let key = s.key(&[Scope::Read], 600).await;
    let me = sign_in(&s, &key).await;
    let items: Vec<ContentItem> = (0..51)
        .map(|i| {
            video(
                "youtube_keyword",
                &format!("vid{i:08}"),
                "UCaaaaaaaaaaaaaaaaaaaaaa",
                i,
            )
        })
        .collect();
    s.app.results.save(None, &items).await.unwrap();
    let html = get(
        &s,
        "/ideas?order=growth&window=30d&channel=UCaaaaaaaaaaaaaaaaaaaaaa&new_since=7d",
        &me.cookie,
    )
    .await
    .text()
    .await
    .unwrap();
    assert_eq!(ids(&html).len(), 50);
    let prefix = "/ideas?order=growth&#38;window=30d&#38;channel=UCaaaaaaaaaaaaaaaaaaaaaa&#38;new_since=7d&#38;after=";
    let at = html
        .find(prefix)
        .unwrap_or_else(|| panic!("no next link: {html}"));
    let next: String = html[at..]
        .chars()
        .take_while(|c| *c != '"')
        .collect::<String>()
        .replace("&#38;", "&");
    let page2 = get(&s, &next, &me.cookie).await.text().await.unwrap();
    let second = ids(&page2);
    assert_eq!(second.len(), 1, "{page2}");
    assert!(
        !ids(&html).contains(&second[0]),
        "the next page starts after the first"
    );
    assert!(page2.contains("rel=\"first\""), "{page2}");
    let forged = get(&s, "/ideas?after=bm90LWEtY3Vyc29y", &me.cookie).await;
    assert_eq!(forged.status(), 422);
    s.stop().await;
}
