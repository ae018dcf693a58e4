//! A client must never be able to open a provider's breaker by reading slowly (issue 16,
//! item 5): clients that stop reading a stream are disconnected after
//! `client_write_timeout`, their upstream requests cancelled, and the provider's breaker
//! stays closed with no failure counted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use std::time::Duration;

use backstop_sim::SimConfig;
use support::{Spec, TestGateway, header, metric, stream_body, wait_until};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Opens a stream request on a socket with a tiny receive buffer and reads until the answer
/// has started; then the caller stops reading.
async fn stalled_reader(gw: &TestGateway) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut s = socket.connect(gw.addr).await.unwrap();
    let body = stream_body("default", "read me slowly").to_string();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    while !String::from_utf8_lossy(&seen).contains("Simulated answer") {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the answer started");
        seen.extend_from_slice(&buf[..n]);
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_readers_are_cut_after_the_write_timeout_and_leave_the_breaker_closed() {
    let gw = TestGateway::start_with(Spec {
        // ~4,000 chunks: far more than the socket buffers and the gateway's own hold.
        sim: SimConfig {
            chunks: 40_000,
            record: false,
            ..SimConfig::default()
        },
        // A deadline much shorter than the stall: time blocked on the reader must not count.
        chain_timeout: "1s",
        failure_threshold: 2,
        server_extra: "client_write_timeout = \"1500ms\"\nmax_stream_buffer_bytes = 16384\n".into(),
        ..Spec::default()
    })
    .await;
    let mut readers = Vec::new();
    for _ in 0..3 {
        readers.push(stalled_reader(&gw).await);
    }
    wait_until(
        Duration::from_secs(15),
        "the gateway to cut the three stalled readers",
        || async { metric(&gw.metrics().await, "backstop_client_write_timeouts_total") >= 3.0 },
    )
    .await;
    // Each was disconnected: what was buffered can still be read, then the connection ends.
    for mut r in readers {
        let mut sink = Vec::new();
        let ended = tokio::time::timeout(Duration::from_secs(5), r.read_to_end(&mut sink)).await;
        assert!(ended.is_ok(), "the connection was not closed");
        assert!(
            !String::from_utf8_lossy(&sink).contains("[DONE]"),
            "a cut stream does not pretend to be complete"
        );
    }
    let openai = gw.app.breaker("openai").unwrap();
    assert_eq!(openai.state(), backstop::BreakerState::Closed);
    assert_eq!(
        openai.snapshot().failures_in_window,
        0,
        "slow readers counted no failure"
    );
    // The next ordinary request is answered by the healthy primary.
    let r = gw.chat(&support::chat_body("default", "after")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-backstop-provider"), Some("openai"));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_keeps_reading_is_never_cut() {
    // 40 chunks 50 ms apart (2 s of streaming) with a 500 ms write timeout: the clock runs
    // only while a write is blocked, never while the gateway waits on the provider.
    let gw = TestGateway::start_with(Spec {
        sim: SimConfig {
            chunks: 40,
            chunk_delay: Duration::from_millis(50),
            record: false,
            ..SimConfig::default()
        },
        server_extra: "client_write_timeout = \"500ms\"\n".into(),
        ..Spec::default()
    })
    .await;
    let r = gw.chat(&stream_body("default", "steady")).await;
    let body = r.text().await.unwrap();
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    assert_eq!(
        metric(&gw.metrics().await, "backstop_client_write_timeouts_total"),
        0.0
    );
    gw.shutdown().await;
}
