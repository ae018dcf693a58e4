//! `backstop demo`: the story it tells, through the library and through the built binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::process::Command;
use std::time::{Duration, Instant};

use backstop_gateway::demo::{self, DemoStep};

fn used(s: &DemoStep) -> &str {
    s.provider_used.as_deref().unwrap_or("<none>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_tells_the_story() {
    let mut out: Vec<u8> = Vec::new();
    let started = Instant::now();
    let steps = demo::run(&mut out, false).await.expect("demo runs");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let text = String::from_utf8(out).expect("utf-8 output");
    let story: Vec<(&str, &str)> = steps.iter().map(|s| (s.act, used(s))).collect();
    let summary = format!("{story:?}\n{steps:#?}\n{text}");

    // Acts in order, each answered by the provider the story says.
    let acts: Vec<&str> = steps.iter().map(|s| s.act).collect();
    let mut distinct = acts.clone();
    distinct.dedup();
    assert_eq!(
        distinct,
        [
            "normal",
            "rate limited",
            "hold over",
            "primary down",
            "both down",
            "recovered",
            "resumed"
        ],
        "{summary}"
    );
    for s in &steps {
        let expected = match s.act {
            "normal" | "recovered" | "hold over" | "resumed" => "openai",
            "primary down" | "rate limited" => "anthropic",
            "both down" => "groq",
            other => panic!("unexpected act {other}"),
        };
        assert_eq!(used(s), expected, "act {}: {summary}", s.act);
        if s.act != "resumed" {
            assert_eq!(
                s.attempts.last().map(String::as_str),
                Some(format!("{expected}:success").as_str()),
                "{summary}"
            );
        }
    }
    assert!(steps.iter().filter(|s| s.act == "normal").count() >= 1);
    assert!(steps.iter().filter(|s| s.act == "primary down").count() >= 2);
    assert!(steps.iter().filter(|s| s.act == "both down").count() >= 1);

    // Normal traffic touched only the primary.
    for s in steps.iter().filter(|s| s.act == "normal") {
        assert_eq!(s.attempts, ["openai:success"], "{summary}");
    }

    // A 429 is a hold: the request moves on, the next one does not touch the primary at all
    // (not even a skip: the breaker is closed), and when the hold ends the primary answers.
    let limited: Vec<&DemoStep> = steps.iter().filter(|s| s.act == "rate limited").collect();
    assert_eq!(limited.len(), 2, "{summary}");
    assert_eq!(
        limited[0].attempts,
        ["openai:failed", "anthropic:success"],
        "{summary}"
    );
    assert_eq!(limited[1].attempts, ["anthropic:success"], "{summary}");
    assert!(limited.iter().all(|s| s.held == ["openai"]), "{summary}");
    assert_eq!(limited[0].primary_requests, limited[1].primary_requests);
    let over = steps.iter().find(|s| s.act == "hold over").unwrap();
    assert_eq!(over.attempts, ["openai:success"], "{summary}");
    assert!(over.held.is_empty(), "{summary}");
    assert!(text.contains("held, breaker untouched"), "{text}");

    // One streamed step answered by anthropic after a failed openai attempt.
    let streamed: Vec<&DemoStep> = steps
        .iter()
        .filter(|s| s.streamed && used(s) == "anthropic")
        .collect();
    assert_eq!(streamed.len(), 1, "{summary}");
    let a = &streamed[0].attempts;
    let failed = a
        .iter()
        .position(|x| x == "openai:failed")
        .unwrap_or_else(|| panic!("no failed openai attempt before the stream: {summary}"));
    let answered = a.iter().position(|x| x == "anthropic:success").unwrap();
    assert!(failed < answered, "{summary}");

    // Once the openai breaker is open (an attempt is skipped), the primary gets no requests
    // until the recovery act.
    let first_skip = steps
        .iter()
        .position(|s| s.attempts.iter().any(|x| x == "openai:skipped"))
        .unwrap_or_else(|| panic!("the openai breaker never opened: {summary}"));
    assert_eq!(steps[first_skip].act, "primary down", "{summary}");
    let recovered = steps.iter().position(|s| s.act == "recovered").unwrap();
    assert!(first_skip < recovered);
    let frozen = steps[first_skip - 1].primary_requests;
    assert!(frozen > steps[0].primary_requests, "{summary}");
    for s in &steps[first_skip..recovered] {
        assert_eq!(
            s.primary_requests, frozen,
            "primary requests kept increasing with an open breaker: {summary}"
        );
        assert!(
            s.attempts.iter().any(|x| x == "openai:skipped"),
            "{summary}"
        );
    }
    // Both down: anthropic was tried (and failed) before groq answered.
    for s in steps.iter().filter(|s| s.act == "both down") {
        assert!(
            s.attempts
                .iter()
                .any(|x| x.starts_with("anthropic:failed") || x == "anthropic:skipped"),
            "{summary}"
        );
    }
    // Recovery: the primary answers again, and received new requests.
    assert!(steps[recovered].primary_requests > frozen, "{summary}");
    assert_eq!(steps.last().map(used), Some("openai"));

    // The broken stream was finished by anthropic, and the report shows the seam.
    let resumed = steps.iter().find(|s| s.act == "resumed").unwrap();
    assert!(resumed.streamed);
    assert_eq!(resumed.resumed.len(), 1, "{summary}");
    assert_eq!(resumed.resumed[0].0, "anthropic", "{summary}");
    assert!(resumed.resumed[0].1 > 0);
    assert_eq!(
        resumed.attempts,
        ["openai:success", "anthropic:success"],
        "{summary}"
    );
    assert!(text.contains("⟨anthropic continues⟩"), "{text}");

    // The report shows who answered, once per request, without colour codes.
    let provider_lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("Provider:"))
        .collect();
    assert_eq!(provider_lines.len(), steps.len(), "{text}");
    assert!(provider_lines[0].contains("openai"), "{text}");
    assert!(provider_lines.iter().any(|l| l.contains("anthropic")));
    assert!(provider_lines.iter().any(|l| l.contains("groq")));
    assert!(!text.contains('\x1b'), "no colour when asked for none");
    assert!(text.contains("breakers:"), "{text}");
}

#[test]
fn the_binary_runs_the_demo() {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_backstop"))
        .arg("demo")
        .env_remove("RUST_LOG")
        .output()
        .expect("run backstop demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let headings = [
        "1. Normal traffic",
        "2. OpenAI rate-limits us",
        "3. OpenAI starts failing",
        "4. Anthropic fails too",
        "5. Providers recover",
        "6. A stream breaks mid-way",
    ];
    let mut at = 0;
    for h in headings {
        let found = stdout[at..]
            .find(h)
            .unwrap_or_else(|| panic!("heading {h:?} missing or out of order:\n{stdout}"));
        at += found + h.len();
    }
    let last = stdout.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("Story complete"),
        "last line {last:?}:\n{stdout}"
    );
    assert!(stdout.contains("Provider: groq"), "{stdout}");
    assert!(!stdout.contains('\x1b'), "piped output is plain text");
}
