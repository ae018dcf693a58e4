//! Stream resume over HTTP, against the simulators of every wire format: a stream that breaks
//! after its first chunks is finished by the next provider, and the client sees one stream —
//! the first provider's text then the continuation, one role event, one finish, one `[DONE]`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod reliability_support;

use std::time::{Duration, Instant};

use backstop_sim::{Fault, SimConfig};
use reliability_support::{
    Gateway, StreamEnd, ask_chain_c, expected_reply, gateway_over_three, parse_stream,
};

const CHUNKS: usize = 10;

/// A gateway whose chain `c` tries `order` (provider names) with stream resume on.
async fn gateway(order: &[&str], chain_extra: &str) -> Gateway {
    let sim = SimConfig {
        chunks: CHUNKS,
        chunk_delay: Duration::from_millis(2),
        record: true,
        ..SimConfig::default()
    };
    let list: Vec<String> = order.iter().map(|p| format!("\"{p}\"")).collect();
    gateway_over_three(
        sim,
        "timeout = \"2s\"\nretries = 0\nbreaker = { failure_threshold = 100 }",
        &format!(
            "\n[chains.c]\nproviders = [{}]\nstream_resume = true\nidle_timeout = \"300ms\"\ntimeout = \"5s\"\n{chain_extra}\n",
            list.join(", ")
        ),
        "sk-resume",
    )
    .await
}

/// POSTs one streamed request; the header naming the committing provider, and the body.
async fn stream(gw: &Gateway, prompt: &str) -> (String, Vec<u8>) {
    ask_chain_c(gw, prompt, true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_stream_is_finished_by_the_next_provider_for_every_wire_format_pair() {
    let faults = [
        Fault::Disconnect { after_chunks: 4 },
        Fault::InBandError {
            after_chunks: 4,
            status: 529,
        },
        Fault::Stall { after_chunks: 4 },
        Fault::Truncate { after_chunks: 4 },
    ];
    for (first, second) in [
        ("openai", "anthropic"),
        ("anthropic", "openai"),
        ("openai", "groq"),
        ("anthropic", "groq"),
    ] {
        let gw = gateway(&[first, second], "").await;
        for fault in &faults {
            gw.sim(first).fail_next(1, fault.clone());
            let prompt = format!("resume {first}->{second} after {fault:?}");
            let (provider, body) = stream(&gw, &prompt).await;
            let s =
                parse_stream(&body).unwrap_or_else(|e| panic!("{first}->{second} {fault:?}: {e}"));
            assert_eq!(provider, first);
            assert_eq!(s.end, StreamEnd::Done, "{first}->{second} {fault:?}");
            assert_eq!(
                s.text,
                expected_reply(first, &prompt, CHUNKS),
                "{first}->{second} {fault:?}: the first provider's prefix + the continuation"
            );
            assert_eq!(s.finish_reason.as_deref(), Some("stop"));
            assert_eq!(s.resume_comments.len(), 1, "{:?}", s.resume_comments);
            assert!(
                s.resume_comments[0]
                    .starts_with(&format!("backstop resumed on {second} at offset ")),
                "{:?}",
                s.resume_comments
            );
        }
        let m = gw.app.metrics.render();
        assert!(
            m.contains("backstop_stream_resumes_total{chain=\"c\"} 4"),
            "{first}->{second}"
        );
        gw.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_refuses_prefill_finishes_by_being_asked() {
    let gw = gateway(&["openai", "anthropic"], "").await;
    gw.sim("anthropic").set_reject_prefill(true);
    gw.sim("openai")
        .fail_next(1, Fault::Disconnect { after_chunks: 3 });
    let prompt = "prefill refused";
    let (_, body) = stream(&gw, prompt).await;
    let s = parse_stream(&body).unwrap();
    assert_eq!(s.text, expected_reply("openai", prompt, CHUNKS));
    // Anthropic saw the prefill form (refused), then the quoted form ending in a user message.
    let forms: Vec<String> = gw
        .sim("anthropic")
        .requests()
        .iter()
        .map(|r| r.body["messages"].as_array().unwrap().last().unwrap()["role"].to_string())
        .collect();
    assert_eq!(forms, ["\"assistant\"", "\"user\""]);
    // The next resume on anthropic asks at once.
    gw.sim("openai")
        .fail_next(1, Fault::Disconnect { after_chunks: 3 });
    let (_, body) = stream(&gw, "second").await;
    assert_eq!(
        parse_stream(&body).unwrap().text,
        expected_reply("openai", "second", CHUNKS)
    );
    assert_eq!(
        gw.sim("anthropic").request_count(),
        3,
        "no second prefill try"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restated_seam_is_trimmed() {
    let gw = gateway(&["openai", "groq"], "").await;
    gw.sim("groq").set_continuation_overlap(12);
    gw.sim("openai")
        .fail_next(1, Fault::Disconnect { after_chunks: 5 });
    let (_, body) = stream(&gw, "overlap").await;
    assert_eq!(
        parse_stream(&body).unwrap().text,
        expected_reply("openai", "overlap", CHUNKS)
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_no_continuation_succeeds_the_client_gets_the_original_error() {
    let gw = gateway(&["openai", "anthropic", "groq"], "").await;
    gw.sim("openai").fail_next(
        1,
        Fault::InBandError {
            after_chunks: 3,
            status: 529,
        },
    );
    // The continuations fail everywhere, openai's own (it is asked last) included.
    gw.sim("openai").set_random(Fault::Status(500), 1.0);
    gw.sim("anthropic").set_random(Fault::Status(400), 1.0);
    gw.sim("groq").set_random(Fault::Status(500), 1.0);
    let (_, body) = stream(&gw, "all fail").await;
    let s = parse_stream(&body).unwrap();
    assert_eq!(
        s.end,
        StreamEnd::Error(Some("overloaded".into())),
        "the first failure"
    );
    assert!(expected_reply("openai", "all fail", CHUNKS).starts_with(&s.text));
    assert!(s.finish_reason.is_none());
    gw.stop().await;
}

/// The finish reason arrived, then the connection broke or went quiet before the end: the
/// answer is whole, so it ends as one (a continuation asked for then would be text after the
/// finish, from another model).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_break_after_the_finish_reason_ends_the_stream_whole_without_a_resume() {
    let gw = gateway(&["openai", "anthropic"], "").await;
    for fault in [
        Fault::Disconnect {
            after_chunks: CHUNKS,
        },
        Fault::Stall {
            after_chunks: CHUNKS,
        },
    ] {
        gw.sim("openai").fail_next(1, fault.clone());
        let prompt = format!("broken after the finish by {fault:?}");
        let (provider, body) = stream(&gw, &prompt).await;
        let s = parse_stream(&body).unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        assert_eq!(provider, "openai");
        assert_eq!(s.end, StreamEnd::Done, "{fault:?}");
        assert_eq!(
            s.text,
            expected_reply("openai", &prompt, CHUNKS),
            "{fault:?}"
        );
        assert_eq!(s.finish_reason.as_deref(), Some("stop"), "{fault:?}");
        assert!(
            s.resume_comments.is_empty(),
            "{fault:?}: {:?}",
            s.resume_comments
        );
    }
    assert_eq!(
        gw.sim("anthropic").request_count(),
        0,
        "nobody was asked to continue"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_are_bounded_by_max_resumes_and_the_deadline() {
    let gw = gateway(&["openai", "anthropic", "groq"], "max_resumes = 1").await;
    gw.sim("openai")
        .fail_next(1, Fault::Disconnect { after_chunks: 2 });
    gw.sim("anthropic")
        .fail_next(1, Fault::Disconnect { after_chunks: 2 });
    let (_, body) = stream(&gw, "twice").await;
    let s = parse_stream(&body).unwrap();
    assert_eq!(s.end, StreamEnd::Error(Some("connect".into())));
    assert_eq!(s.resume_comments.len(), 1);
    assert_eq!(gw.sim("groq").request_count(), 0, "no second resume");
    gw.stop().await;

    // A stall that eats the deadline leaves no time to resume.
    let gw = gateway(&["openai", "anthropic"], "").await;
    gw.sim("openai")
        .fail_next(1, Fault::Stall { after_chunks: 2 });
    gw.sim("openai").set_random(Fault::Hang, 1.0);
    gw.sim("anthropic").set_random(Fault::Hang, 1.0);
    let started = Instant::now();
    let (_, body) = stream(&gw, "deadline").await;
    let s = parse_stream(&body).unwrap();
    assert!(matches!(s.end, StreamEnd::Error(_)));
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "{:?}",
        started.elapsed()
    );
    gw.stop().await;
}
