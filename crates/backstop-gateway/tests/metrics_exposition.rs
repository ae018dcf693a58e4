//! `/metrics` with chain and provider names that TOML allows but the exposition format must
//! escape (`a"b`, `c\d`, a newline, `}`, `,` and `=`): the output parses with a strict Prometheus
//! text parser and the parsed label values are the names; every family has HELP text and a
//! row in the README's table, and every row there is a family the gateway serves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod reliability_support;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use backstop_sim::SimConfig;
use prom_text_format_parser::Scrape;
use reliability_support::{Gateway, client, start_sims};

/// The names in `fixtures/config/hostile_names.toml`, as they really are.
const HOSTILE: [&str; 4] = ["a\"b", r"c\d", "new\nline", "e}=,f"];

/// Undoes the text format's escapes in a label value (`\\`, `\"`, `\n`).
fn unescape(v: &str) -> String {
    let mut out = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => panic!("dangling backslash in {v:?}"),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The hostile-names fixture, its providers pointed at `base_url`.
fn hostile_config(base_url: &str) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/config/hostile_names.toml"
    ))
    .unwrap();
    assert!(text.contains("http://127.0.0.1:9/v1"));
    text.replace("http://127.0.0.1:9/v1", base_url)
}

/// One sample: its labels (values unescaped) and value.
type Sample = (HashMap<String, String>, f64);

/// Samples by family name.
fn samples(scrape: &Scrape) -> HashMap<String, Vec<Sample>> {
    let mut out: HashMap<String, Vec<_>> = HashMap::new();
    for m in &scrape.metrics {
        for s in &m.samples {
            let labels = s
                .labels
                .iter()
                .map(|l| (l.key.clone(), unescape(&l.value)))
                .collect();
            out.entry(m.name.clone())
                .or_default()
                .push((labels, s.value.value.as_f64()));
        }
    }
    out
}

/// The family names in the README's metrics table (rows starting with "| `backstop_").
fn readme_families() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `backstop_"))
        .filter_map(|rest| rest.split('`').next())
        .map(|name| format!("backstop_{name}"))
        .collect()
}

#[tokio::test]
async fn hostile_names_are_escaped_and_every_family_is_documented() {
    let sims = start_sims(&[SimConfig {
        record: false,
        ..SimConfig::default()
    }])
    .await;
    let text = hostile_config(&sims[0].openai_base_url());
    let gw = Gateway::start(sims, &text, HashMap::new(), Duration::from_secs(5)).await;
    let http = client(4);
    for chain in HOSTILE {
        let r = http
            .post(gw.url("/v1/chat/completions"))
            .json(&serde_json::json!({"model": chain, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{chain:?}: {}", r.text().await.unwrap());
    }

    let r = http.get(gw.url("/metrics")).send().await.unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let body = r.text().await.unwrap();
    let scrape = Scrape::parse(&body).unwrap_or_else(|e| panic!("{e:?}\n{body}"));
    let by_family = samples(&scrape);

    // Each chain's one request was answered by its first provider (`a"b`).
    for chain in HOSTILE {
        let ok = by_family["backstop_requests_total"]
            .iter()
            .any(|(l, v)| l["chain"] == chain && l["outcome"] == "success" && *v == 1.0);
        assert!(ok, "no success count for chain {chain:?}:\n{body}");
    }
    let first = HOSTILE[0];
    let answered = by_family["backstop_attempts_total"]
        .iter()
        .find(|(l, _)| l["provider"] == first && l["outcome"] == "success")
        .map(|(_, v)| *v);
    assert_eq!(answered, Some(4.0), "{body}");
    for provider in HOSTILE {
        let states: Vec<(&str, f64)> = by_family["backstop_breaker_state"]
            .iter()
            .filter(|(l, _)| l["provider"] == provider)
            .map(|(l, v)| (l["state"].as_str(), *v))
            .collect();
        assert_eq!(states.len(), 3, "one series per state for {provider:?}");
        assert!(states.contains(&("closed", 1.0)), "{states:?}");
        assert!(states.contains(&("open", 0.0)), "{states:?}");
    }

    // HELP for every family; the README's table and the scrape list the same families.
    let served: BTreeSet<String> = scrape.metrics.iter().map(|m| m.name.clone()).collect();
    for m in &scrape.metrics {
        assert!(
            m.help_desc.as_deref().is_some_and(|h| h.len() > 10),
            "{} has no HELP text",
            m.name
        );
    }
    let documented = readme_families();
    let undocumented: Vec<&String> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "not in the README's table: {undocumented:?}"
    );
    let stale: Vec<&String> = documented.difference(&served).collect();
    assert!(stale.is_empty(), "in the README but not served: {stale:?}");

    // OpenMetrics when asked: the same escaping, and the end marker.
    let r = http
        .get(gw.url("/metrics"))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let om = r.text().await.unwrap();
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(om.contains(r#"chain="a\"b""#) && om.contains(r#"provider="c\\d""#));
    assert!(om.contains(r#"chain="new\nline""#));
    gw.stop().await;
}
