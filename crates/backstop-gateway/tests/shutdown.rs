//! Shutdown of the real binary (issue 16, item 12): the exit status says whether connections
//! had to be cut — 0 drained, 3 cut at the end of the grace period (open streams got a
//! `server_shutting_down` event first), 4 a second SIGTERM exited at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod binary;

use std::time::Duration;

use backstop_sim::{SimConfig, SimHandle, Simulator};

async fn slow_sim() -> SimHandle {
    Simulator::start(SimConfig {
        chunk_delay: Duration::from_millis(300),
        chunks: 30,
        record: false,
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

fn config(sim: &SimHandle, grace: &str) -> String {
    format!(
        "[server]\nshutdown_grace = \"{grace}\"\n\
         [providers.openai]\nkind = \"openai\"\nmodel = \"m\"\napi_key_env = \"K\"\nbase_url = \"{}\"\n\
         [chains.default]\nproviders = [\"openai\"]\n",
        sim.openai_base_url()
    )
}

/// Starts a stream and reads until its first content arrived.
async fn open_stream(gw: &binary::Gateway) -> reqwest::Response {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut r = client
        .post(gw.url("/v1/chat/completions"))
        .json(&serde_json::json!({"model": "default", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-accel-buffering"], "no");
    let mut seen = String::new();
    while !seen.contains("Simulated") {
        let piece = r.chunk().await.unwrap().expect("stream ended early");
        seen.push_str(&String::from_utf8_lossy(&piece));
    }
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_nothing_open_exits_zero() {
    let sim = slow_sim().await;
    let mut gw = binary::Gateway::start(
        &config(&sim, "5s"),
        binary::Launch {
            env: &[("K", "sk")],
            ..Default::default()
        },
    );
    assert_eq!(gw.stop().code(), Some(0), "{}", gw.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_open_at_the_end_of_the_grace_period_get_an_error_event_and_exit_is_3() {
    let sim = slow_sim().await;
    let mut gw = binary::Gateway::start(
        &config(&sim, "300ms"),
        binary::Launch {
            env: &[("K", "sk")],
            ..Default::default()
        },
    );
    let mut r = open_stream(&gw).await;
    gw.sigterm();
    let mut rest = String::new();
    while let Ok(Some(piece)) = r.chunk().await {
        rest.push_str(&String::from_utf8_lossy(&piece));
    }
    assert!(rest.contains(r#""code":"server_shutting_down""#), "{rest}");
    assert!(!rest.contains("[DONE]"));
    assert_eq!(
        gw.wait(Duration::from_secs(10)).code(),
        Some(3),
        "{}",
        gw.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_exits_at_once_with_4() {
    let sim = slow_sim().await;
    let mut gw = binary::Gateway::start(
        &config(&sim, "60s"),
        binary::Launch {
            env: &[("K", "sk")],
            ..Default::default()
        },
    );
    let _r = open_stream(&gw).await;
    gw.sigterm();
    // Wait until the drain has begun, then signal again.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !gw.logs().contains("shutting down: draining") {
        assert!(std::time::Instant::now() < deadline, "{}", gw.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gw.sigterm();
    // Far less than the 60 s grace period.
    assert_eq!(
        gw.wait(Duration::from_secs(10)).code(),
        Some(4),
        "{}",
        gw.logs()
    );
}

#[test]
fn a_config_naming_an_unset_or_empty_key_variable_refuses_to_start() {
    let config = binary::config_file(
        "[server]\nclient_keys_env = \"BACKSTOP_TEST_CLIENT_KEYS\"\n\
         [providers.p]\nkind = \"openai\"\nmodel = \"m\"\n[chains.c]\nproviders = [\"p\"]\n",
    );
    for env in [
        &[][..],
        &[("BACKSTOP_TEST_CLIENT_KEYS", "")][..],
        &[("BACKSTOP_TEST_CLIENT_KEYS", " , ")][..],
    ] {
        let (status, stdout, stderr) = binary::run(
            &["serve", "--config", &config, "--listen", "127.0.0.1:0"],
            env,
        );
        assert_eq!(status.code(), Some(1), "{env:?}: {stdout} {stderr}");
        assert!(stderr.contains("BACKSTOP_TEST_CLIENT_KEYS"), "{stderr}");
        assert!(!stdout.contains("listening"), "{stdout}");
    }
}
