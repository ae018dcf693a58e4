//! `SIGHUP` to the real binary reloads its config and never ends the process: a new chain is
//! served, a broken file is logged with its location and changes nothing, and the gateway
//! still stops cleanly on SIGTERM afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod binary;

use std::time::{Duration, Instant};

use backstop_sim::{SimConfig, Simulator};

fn config(base_url: &str, extra: &str) -> String {
    format!(
        "[providers.openai]\nkind = \"openai\"\nmodel = \"m\"\napi_key_env = \"K\"\nbase_url = \"{base_url}\"\n\
         [chains.default]\nproviders = [\"openai\"]\n{extra}"
    )
}

async fn models(gw: &binary::Gateway) -> Vec<String> {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let v: serde_json::Value = client
        .get(gw.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Polls `cond` every 20 ms for at most 10 s.
async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_config_and_the_gateway_keeps_running() {
    let sim = Simulator::start(SimConfig {
        record: false,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let url = sim.openai_base_url();
    let mut gw = binary::Gateway::start(
        &config(&url, ""),
        binary::Launch {
            env: &[("K", "sk")],
            ..Default::default()
        },
    );
    assert_eq!(models(&gw).await, ["default"]);

    std::fs::write(
        &gw.config_path,
        config(&url, "[chains.second]\nproviders = [\"openai\"]\n"),
    )
    .unwrap();
    gw.signal("HUP");
    eventually("the new chain", || async { models(&gw).await.len() == 2 }).await;
    assert_eq!(models(&gw).await, ["default", "second"]);
    assert!(gw.running(), "SIGHUP must not end the process");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = client
        .post(gw.url("/v1/chat/completions"))
        .json(&serde_json::json!({"model": "second", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A broken file: logged with file:line:col and key, nothing changes, still running.
    std::fs::write(
        &gw.config_path,
        config(&url, "[chains.third]\nproviders = [\"nobody\"]\n"),
    )
    .unwrap();
    gw.signal("HUP");
    eventually("the reload failure in the logs", || async {
        gw.logs().contains("config reload failed")
    })
    .await;
    let logs = gw.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("config reload failed"))
        .unwrap();
    let file = gw.config_path.display().to_string();
    assert!(
        line.contains(&format!("{file}:9:")) && line.contains("chains.third.providers[0]"),
        "{line}"
    );
    assert!(gw.running());
    assert_eq!(models(&gw).await, ["default", "second"]);

    let status = gw.stop();
    assert_eq!(status.code(), Some(0), "{}", gw.logs());
    sim.shutdown().await;
}
