//! Shared helpers for the provider integration tests: build each provider against
//! `backstop-sim` over loopback, collect streams, and a macro with the classification and
//! streaming suite every wire format must pass.
#![allow(dead_code, missing_docs)]

use std::time::Duration;

use backstop::providers::{AnthropicLlm, GroqLlm, OpenAiCompatible, OpenAiLlm};
use backstop::{ChatRequest, Chunk, ChunkStream, Provider, ProviderError};
use backstop_sim::{SimConfig, SimHandle, Simulator};
use futures_util::StreamExt;

pub const KEY: &str = "sk-test-loopback-key";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    OpenAi,
    Anthropic,
    Groq,
    Compatible,
}

impl Wire {
    /// The provider name the simulator puts in its reply text.
    pub fn sim_flavor(self) -> &'static str {
        match self {
            Wire::OpenAi | Wire::Compatible => "openai",
            Wire::Anthropic => "anthropic",
            Wire::Groq => "groq",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Wire::OpenAi | Wire::Compatible => "/v1/chat/completions",
            Wire::Anthropic => "/v1/messages",
            Wire::Groq => "/openai/v1/chat/completions",
        }
    }

    /// The base URL this provider takes for the simulator.
    pub fn base_for(self, sim: &SimHandle) -> String {
        match self {
            Wire::OpenAi | Wire::Compatible => sim.openai_base_url(),
            Wire::Anthropic | Wire::Groq => sim.base_url(),
        }
    }

    pub fn provider_at(self, base: &str, key: &str) -> Box<dyn Provider> {
        match self {
            Wire::OpenAi => Box::new(OpenAiLlm::new("gpt-4o-mini").base_url(base).api_key(key)),
            Wire::Anthropic => Box::new(
                AnthropicLlm::new("claude-3-5-haiku-latest")
                    .base_url(base)
                    .api_key(key),
            ),
            Wire::Groq => Box::new(
                GroqLlm::new("llama-3.1-8b-instant")
                    .base_url(base)
                    .api_key(key),
            ),
            Wire::Compatible => Box::new(
                OpenAiCompatible::new(base, "local-model")
                    .api_key(key)
                    .connect_timeout(Duration::from_secs(2)),
            ),
        }
    }

    pub fn model(self) -> &'static str {
        match self {
            Wire::OpenAi => "gpt-4o-mini",
            Wire::Anthropic => "claude-3-5-haiku-latest",
            Wire::Groq => "llama-3.1-8b-instant",
            Wire::Compatible => "local-model",
        }
    }
}

pub async fn sim() -> SimHandle {
    Simulator::start(SimConfig::default())
        .await
        .expect("simulator starts")
}

pub fn provider(wire: Wire, sim: &SimHandle) -> Box<dyn Provider> {
    wire.provider_at(&wire.base_for(sim), KEY)
}

pub fn req() -> ChatRequest {
    ChatRequest::user("What is a circuit breaker?")
}

/// A loopback port with nothing listening.
pub fn refused_base(wire: Wire) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    match wire {
        Wire::OpenAi | Wire::Compatible => format!("http://127.0.0.1:{port}/v1"),
        _ => format!("http://127.0.0.1:{port}"),
    }
}

/// A loopback server that accepts each connection, reads the request and closes it without
/// answering (a reset from the client's point of view).
pub async fn resetting_base(wire: Wire) -> String {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            drop(sock);
        }
    });
    match wire {
        Wire::OpenAi | Wire::Compatible => format!("http://127.0.0.1:{port}/v1"),
        _ => format!("http://127.0.0.1:{port}"),
    }
}

/// Everything a stream yielded: the chunks before any error, the error, and whether the
/// stream ended (`None`) afterwards within a short bound.
#[derive(Debug)]
pub struct Collected {
    pub chunks: Vec<Chunk>,
    pub error: Option<ProviderError>,
}

impl Collected {
    pub fn text(&self) -> String {
        self.chunks.iter().map(|c| c.text.as_str()).collect()
    }
    pub fn content_chunks(&self) -> usize {
        self.chunks.iter().filter(|c| c.is_content()).count()
    }
}

pub async fn collect(mut stream: ChunkStream) -> Collected {
    let mut chunks = Vec::new();
    let bound = Duration::from_secs(5);
    loop {
        let item = tokio::time::timeout(bound, stream.next())
            .await
            .expect("stream neither yields nor ends");
        match item {
            Some(Ok(c)) => chunks.push(c),
            Some(Err(e)) => {
                // After an error the stream yields nothing more.
                let after = tokio::time::timeout(bound, stream.next())
                    .await
                    .expect("stream hangs after its error");
                assert!(after.is_none(), "item after error: {after:?}");
                return Collected {
                    chunks,
                    error: Some(e),
                };
            }
            None => {
                return Collected {
                    chunks,
                    error: None,
                };
            }
        }
    }
}

/// The suite every wire format passes against the simulator.
macro_rules! provider_suite {
    ($wire:expr) => {
        use std::time::Duration;

        use backstop::{ErrorKind, FinishReason};
        use backstop_sim::Fault;
        use futures_util::StreamExt;
        use provider_support::*;

        const WIRE: Wire = $wire;

        async fn complete_err(fault: Fault) -> backstop::ProviderError {
            let sim = sim().await;
            sim.fail_next(1, fault.clone());
            let p = provider(WIRE, &sim);
            let e = p.complete(&req()).await.expect_err("fault must fail");
            assert_eq!(sim.request_count(), 1, "{fault:?}: exactly one call");
            e
        }

        async fn stream_with_none() -> Collected {
            let sim = sim().await;
            let p = provider(WIRE, &sim);
            collect(p.stream(&req()).await.expect("stream")).await
        }

        async fn stream_with(fault: Fault) -> Collected {
            let sim = sim().await;
            sim.fail_next(1, fault);
            let p = provider(WIRE, &sim);
            let s = p.stream(&req()).await.expect("2xx stream starts");
            collect(s).await
        }

        async fn assert_status(status: u16, kind: ErrorKind) {
            let e = complete_err(Fault::Status(status)).await;
            assert_eq!(e.kind, kind, "HTTP {status}: {e}");
            assert_eq!(e.status, Some(status));
            assert!(!e.message.is_empty());
        }

        #[tokio::test]
        async fn complete_returns_text_model_usage_and_finish() {
            let sim = sim().await;
            let p = provider(WIRE, &sim);
            let c = p.complete(&req()).await.expect("complete");
            let prefix = format!("Simulated answer from {}", WIRE.sim_flavor());
            assert!(c.text.starts_with(&prefix), "{}", c.text);
            assert!(c.text.contains("What is a circuit breaker?"));
            assert_eq!(c.model, WIRE.model());
            let usage = c.usage.expect("usage");
            assert!(usage.input_tokens >= 1);
            assert_eq!(usage.output_tokens, 8);
            assert_eq!(c.finish_reason, Some(FinishReason::Stop));
            let r = &sim.requests()[0];
            assert_eq!(r.path, WIRE.path());
            assert!(!r.stream);
        }

        #[tokio::test]
        async fn stream_yields_the_same_text_then_ends() {
            let sim = sim().await;
            let p = provider(WIRE, &sim);
            let whole = p.complete(&req()).await.expect("complete").text;
            let got = collect(p.stream(&req()).await.expect("stream")).await;
            assert!(got.error.is_none(), "{:?}", got.error);
            assert_eq!(got.text(), whole);
            assert_eq!(got.content_chunks(), 8);
            assert_eq!(got.chunks[0].model.as_deref(), Some(WIRE.model()));
            assert!(got.chunks[1..].iter().all(|c| c.model.is_none()));
            assert!(
                got.chunks
                    .iter()
                    .any(|c| c.finish_reason == Some(FinishReason::Stop))
            );
            let usage = got
                .chunks
                .iter()
                .rev()
                .find_map(|c| c.usage)
                .expect("usage");
            assert_eq!(usage.output_tokens, 8);
            assert!(usage.input_tokens >= 1);
            assert!(sim.requests()[1].stream);
        }

        #[tokio::test]
        async fn status_500_is_server() {
            assert_status(500, ErrorKind::Server).await;
        }

        #[tokio::test]
        async fn status_502_is_server() {
            assert_status(502, ErrorKind::Server).await;
        }

        #[tokio::test]
        async fn status_503_is_overloaded() {
            assert_status(503, ErrorKind::Overloaded).await;
        }

        #[tokio::test]
        async fn status_401_and_403_are_auth() {
            assert_status(401, ErrorKind::Auth).await;
            assert_status(403, ErrorKind::Auth).await;
        }

        #[tokio::test]
        async fn status_400_404_422_are_invalid_request() {
            assert_status(400, ErrorKind::InvalidRequest).await;
            assert_status(404, ErrorKind::InvalidRequest).await;
            assert_status(422, ErrorKind::InvalidRequest).await;
        }

        #[tokio::test]
        async fn rate_limited_without_hint() {
            let e = complete_err(Fault::RateLimited {
                retry_after_secs: None,
                retry_after_ms: None,
                retry_after_http_date: false,
            })
            .await;
            assert_eq!(e.kind, ErrorKind::RateLimited { retry_after: None });
            assert_eq!(e.status, Some(429));
        }

        #[tokio::test]
        async fn rate_limited_with_retry_after_seconds() {
            let e = complete_err(Fault::RateLimited {
                retry_after_secs: Some(7),
                retry_after_ms: None,
                retry_after_http_date: false,
            })
            .await;
            assert_eq!(
                e.kind,
                ErrorKind::RateLimited {
                    retry_after: Some(Duration::from_secs(7))
                }
            );
        }

        #[tokio::test]
        async fn rate_limited_retry_after_ms_wins() {
            let e = complete_err(Fault::RateLimited {
                retry_after_secs: Some(7),
                retry_after_ms: Some(1500),
                retry_after_http_date: false,
            })
            .await;
            assert_eq!(
                e.kind,
                ErrorKind::RateLimited {
                    retry_after: Some(Duration::from_millis(1500))
                }
            );
        }

        #[tokio::test]
        async fn rate_limited_with_http_date() {
            let e = complete_err(Fault::RateLimited {
                retry_after_secs: Some(30),
                retry_after_ms: None,
                retry_after_http_date: true,
            })
            .await;
            let ErrorKind::RateLimited {
                retry_after: Some(d),
            } = e.kind
            else {
                panic!("{e:?}");
            };
            // HTTP dates have 1 s resolution.
            assert!(
                d >= Duration::from_secs(28) && d <= Duration::from_secs(31),
                "{d:?}"
            );
        }

        #[tokio::test]
        async fn context_length_is_classified() {
            let e = complete_err(Fault::ContextLength).await;
            assert_eq!(e.kind, ErrorKind::ContextLengthExceeded);
            assert_eq!(e.status, Some(400));
        }

        #[tokio::test]
        async fn malformed_body_is_protocol() {
            let e = complete_err(Fault::MalformedBody).await;
            assert_eq!(e.kind, ErrorKind::Protocol);
        }

        #[tokio::test]
        async fn truncated_body_is_protocol() {
            let e = complete_err(Fault::Truncate { after_chunks: 0 }).await;
            assert_eq!(e.kind, ErrorKind::Protocol);
        }

        #[tokio::test]
        async fn body_cut_by_disconnect_is_connect() {
            let e = complete_err(Fault::Disconnect { after_chunks: 0 }).await;
            assert_eq!(e.kind, ErrorKind::Connect, "{e}");
        }

        #[tokio::test]
        async fn connection_refused_is_connect() {
            let p = WIRE.provider_at(&refused_base(WIRE), KEY);
            let e = p.complete(&req()).await.expect_err("refused");
            assert_eq!(e.kind, ErrorKind::Connect, "{e}");
            assert_eq!(e.status, None);
            let e = p.stream(&req()).await.err().expect("refused");
            assert_eq!(e.kind, ErrorKind::Connect, "{e}");
        }

        #[tokio::test]
        async fn connection_reset_is_connect() {
            let p = WIRE.provider_at(&resetting_base(WIRE).await, KEY);
            let e = p.complete(&req()).await.expect_err("reset");
            assert_eq!(e.kind, ErrorKind::Connect, "{e}");
        }

        #[tokio::test]
        async fn hang_is_bounded_only_by_the_caller() {
            let sim = sim().await;
            sim.fail_next(1, Fault::Hang);
            let p = provider(WIRE, &sim);
            let request = req();
            let call = p.complete(&request);
            tokio::pin!(call);
            // However slow the machine, the request reaches the simulator and is then left
            // hanging: the provider itself never gives up.
            let waited = tokio::time::timeout(Duration::from_secs(20), async {
                loop {
                    tokio::select! {
                        r = &mut call => panic!("provider must not time out on its own: {r:?}"),
                        () = tokio::time::sleep(Duration::from_millis(10)) => {}
                    }
                    if sim.request_count() == 1 {
                        break;
                    }
                }
            })
            .await;
            assert!(waited.is_ok(), "the request never reached the simulator");
            let r = tokio::time::timeout(Duration::from_millis(300), &mut call).await;
            assert!(r.is_err(), "provider must not time out on its own: {r:?}");
            assert_eq!(sim.request_count(), 1);
        }

        #[tokio::test]
        async fn stream_error_status_fails_before_the_stream() {
            let sim = sim().await;
            sim.fail_next(1, Fault::Status(503));
            let p = provider(WIRE, &sim);
            let e = p.stream(&req()).await.err().expect("503");
            assert_eq!((e.kind, e.status), (ErrorKind::Overloaded, Some(503)));
            sim.fail_next(1, Fault::Status(401));
            let e = p.stream(&req()).await.err().expect("401");
            assert_eq!(e.kind, ErrorKind::Auth);
        }

        #[tokio::test]
        async fn stream_truncated_before_and_after_first_chunk_is_protocol() {
            for n in [0, 3] {
                let got = stream_with(Fault::Truncate { after_chunks: n }).await;
                assert_eq!(got.content_chunks(), n);
                let e = got.error.expect("truncated stream must fail");
                assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
            }
        }

        #[tokio::test]
        async fn stream_malformed_chunk_is_protocol() {
            for n in [0, 2] {
                let got = stream_with(Fault::MalformedChunk { after_chunks: n }).await;
                assert_eq!(got.content_chunks(), n);
                assert_eq!(got.error.expect("malformed").kind, ErrorKind::Protocol);
            }
            let got = stream_with(Fault::MalformedBody).await;
            assert_eq!(got.content_chunks(), 0);
            assert_eq!(got.error.expect("malformed").kind, ErrorKind::Protocol);
        }

        #[tokio::test]
        async fn stream_disconnect_is_connect() {
            for n in [0, 2] {
                let sim = sim().await;
                // Gaps let what precedes the abort reach us before the connection dies;
                // the last chunk before the abort may still be lost with it.
                sim.set_ttft(Duration::from_millis(20));
                sim.set_chunk_delay(Duration::from_millis(20));
                sim.fail_next(1, Fault::Disconnect { after_chunks: n });
                let p = provider(WIRE, &sim);
                let got = collect(p.stream(&req()).await.expect("headers arrive")).await;
                assert!(got.content_chunks() <= n && got.content_chunks() + 1 >= n);
                let e = got.error.expect("disconnect");
                assert_eq!(e.kind, ErrorKind::Connect, "{e}");
            }
        }

        #[tokio::test]
        async fn stream_in_band_errors_are_classified() {
            for (n, status, kind) in [
                (0, 503, ErrorKind::Overloaded),
                (2, 500, ErrorKind::Server),
                (1, 429, ErrorKind::RateLimited { retry_after: None }),
            ] {
                let got = stream_with(Fault::InBandError {
                    after_chunks: n,
                    status,
                })
                .await;
                assert_eq!(got.content_chunks(), n);
                let e = got.error.expect("in-band error");
                assert_eq!(e.kind, kind, "in-band {status}: {e}");
            }
        }

        #[tokio::test]
        async fn stream_ending_after_its_finish_without_the_terminal_marker_is_complete() {
            let full = stream_with_none().await;
            let got = stream_with(Fault::NoTerminalMarker).await;
            assert!(got.error.is_none(), "{:?}", got.error);
            assert_eq!(got.text(), full.text());
            assert!(got.chunks.iter().any(|c| c.finish_reason.is_some()));
        }

        #[tokio::test]
        async fn stream_garbled_event_is_skipped_counted_and_the_rest_delivered() {
            let full = stream_with_none().await;
            for n in [0, 2, 100] {
                let got = stream_with(Fault::GarbledEvent { after_chunks: n }).await;
                assert!(got.error.is_none(), "after {n}: {:?}", got.error);
                assert_eq!(got.text(), full.text(), "after {n}");
                let skipped: u32 = got.chunks.iter().map(|c| c.skipped_events).sum();
                assert_eq!(skipped, 1, "after {n}");
            }
        }

        #[tokio::test]
        async fn hostile_retry_after_from_upstream_is_capped() {
            let e = complete_err(Fault::RateLimited {
                retry_after_secs: Some(u64::MAX),
                retry_after_ms: None,
                retry_after_http_date: false,
            })
            .await;
            assert_eq!(
                e.kind,
                ErrorKind::RateLimited {
                    retry_after: Some(backstop::providers::MAX_HINT)
                }
            );
        }

        #[tokio::test]
        async fn the_request_id_goes_upstream_and_the_providers_id_comes_back() {
            let sim = sim().await;
            let p = provider(WIRE, &sim);
            let request = req().request_id("req-from-client-1");
            let c = p.complete(&request).await.expect("complete");
            let s = collect(p.stream(&request).await.expect("stream")).await;
            sim.fail_next(1, Fault::Status(503));
            let e = p.complete(&request).await.expect_err("503");
            sim.fail_next(
                1,
                Fault::InBandError {
                    after_chunks: 1,
                    status: 500,
                },
            );
            let broken = collect(p.stream(&request).await.expect("stream")).await;
            let recorded = sim.requests();
            assert_eq!(recorded.len(), 4);
            for r in &recorded {
                assert_eq!(r.header("x-request-id"), Some("req-from-client-1"));
            }
            // Each call's own id, as the simulator sent it: on the answer, the first chunk of a
            // stream, an error status and a stream that broke.
            assert_eq!(
                c.upstream_request_id.as_deref(),
                Some(&*recorded[0].request_id)
            );
            assert_eq!(
                s.chunks[0].upstream_request_id.as_deref(),
                Some(&*recorded[1].request_id)
            );
            assert!(
                s.chunks[1..]
                    .iter()
                    .all(|c| c.upstream_request_id.is_none())
            );
            assert_eq!(
                e.upstream_request_id.as_deref(),
                Some(&*recorded[2].request_id)
            );
            assert_eq!(
                broken.chunks[0].upstream_request_id.as_deref(),
                Some(&*recorded[3].request_id)
            );
            assert!(broken.error.is_some());
            let ids: std::collections::HashSet<_> =
                recorded.iter().map(|r| &r.request_id).collect();
            assert_eq!(ids.len(), 4, "the simulator gives every call its own id");
        }

        #[tokio::test]
        async fn no_request_id_sends_no_header() {
            let sim = sim().await;
            provider(WIRE, &sim)
                .complete(&req())
                .await
                .expect("complete");
            assert_eq!(sim.requests()[0].header("x-request-id"), None);
        }

        #[tokio::test]
        async fn stream_stall_is_left_to_the_caller() {
            let sim = sim().await;
            sim.fail_next(1, Fault::Stall { after_chunks: 1 });
            let p = provider(WIRE, &sim);
            let mut s = p.stream(&req()).await.expect("stream");
            let mut content = 0;
            loop {
                match tokio::time::timeout(Duration::from_millis(300), s.next()).await {
                    Ok(Some(Ok(c))) => content += usize::from(c.is_content()),
                    Ok(other) => panic!("stalled stream must not end: {other:?}"),
                    Err(_) => break,
                }
            }
            assert_eq!(content, 1);
        }
    };
}
