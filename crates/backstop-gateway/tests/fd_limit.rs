//! Local resource errors are not provider failures (issue 16, item 6): the real binary under a
//! low open-file limit and a burst of concurrent requests sheds the excess with 503 +
//! `Retry-After` before it runs out of descriptors, keeps every healthy provider's breaker
//! closed and stays ready; when descriptors do run out (a cap set too high), the errors are
//! `local_resource`, still neutral for the breakers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod binary;

use std::time::Duration;

use backstop_sim::{SimConfig, SimHandle, Simulator};

/// Concurrent requests fired at once.
const BURST: usize = 300;

async fn sims() -> Vec<SimHandle> {
    let mut out = Vec::new();
    for _ in 0..2 {
        out.push(
            Simulator::start(SimConfig {
                latency: Duration::from_millis(300),
                record: false,
                ..SimConfig::default()
            })
            .await
            .unwrap(),
        );
    }
    out
}

fn config(sims: &[SimHandle], server_extra: &str) -> String {
    format!(
        "[server]\n{server_extra}\n\
         [providers.openai]\nkind = \"openai\"\nmodel = \"m\"\napi_key_env = \"K\"\nbase_url = \"{}\"\ntimeout = \"10s\"\nbreaker = {{ failure_threshold = 3 }}\n\
         [providers.groq]\nkind = \"groq\"\nmodel = \"m\"\napi_key_env = \"K\"\nbase_url = \"{}\"\ntimeout = \"10s\"\nbreaker = {{ failure_threshold = 3 }}\n\
         [chains.default]\nproviders = [\"openai\", \"groq\"]\ntimeout = \"20s\"\n",
        sims[0].openai_base_url(),
        sims[1].base_url(),
    )
}

/// Fires the burst; (statuses, how many 503s carried Retry-After, the 503 bodies).
async fn burst(gw: &binary::Gateway) -> (Vec<u16>, usize, Vec<String>) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let url = gw.url("/v1/chat/completions");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..BURST {
        let (client, url) = (client.clone(), url.clone());
        tasks.spawn(async move {
            let body = serde_json::json!({"model": "default", "messages": [{"role": "user", "content": format!("burst {i}")}]});
            match client.post(&url).json(&body).send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let retry = r.headers().contains_key("retry-after");
                    (Some(status), retry, r.text().await.unwrap_or_default())
                }
                // The gateway may close a shed connection before reading the request.
                Err(e) => (None, false, e.to_string()),
            }
        });
    }
    let mut statuses = Vec::new();
    let mut with_retry = 0;
    let mut bodies = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let (status, retry, body) = r.unwrap();
        let status = status.unwrap_or_else(|| panic!("transport error: {body}"));
        if status == 503 {
            with_retry += usize::from(retry);
            bodies.push(body);
        }
        statuses.push(status);
    }
    (statuses, with_retry, bodies)
}

async fn breakers_closed_and_ready(gw: &binary::Gateway) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let b: serde_json::Value = client
        .get(gw.url("/v1/breakers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for breaker in b["breakers"].as_array().unwrap() {
        assert_eq!(breaker["state"], "closed", "{b}");
        assert_eq!(breaker["failures_in_window"], 0, "{b}");
    }
    let r = client.get(gw.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_a_low_fd_limit_excess_requests_are_shed_and_breakers_stay_closed() {
    let sims = sims().await;
    let mut gw = binary::Gateway::start(
        &config(&sims, ""),
        binary::Launch {
            env: &[("K", "sk-test")],
            // Soft and hard limit 128: nothing to raise, the derived cap is (128 - 64) / 2.
            shell_prefix: Some("ulimit -n 128"),
            ..Default::default()
        },
    );
    let (statuses, with_retry, bodies) = burst(&gw).await;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let shed = statuses.iter().filter(|s| **s == 503).count();
    println!("fd limit 128, burst {BURST}: {ok} answered, {shed} shed");
    assert_eq!(ok + shed, BURST, "only answers and 503s: {statuses:?}");
    assert!(ok > 0, "some requests are served");
    assert!(shed > 0, "the burst exceeds the cap");
    assert_eq!(with_retry, shed, "every 503 says when to retry");
    assert!(
        bodies.iter().all(|b| b.contains("gateway_overloaded")),
        "{bodies:?}"
    );
    breakers_closed_and_ready(&gw).await;
    let logs = gw.logs();
    assert!(
        !logs.contains("Too many open files"),
        "descriptors never ran out:\n{logs}"
    );
    assert!(gw.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn running_out_of_descriptors_is_a_local_error_not_a_provider_failure() {
    let sims = sims().await;
    // A cap far above what 128 descriptors allow: connects fail with EMFILE.
    let mut gw = binary::Gateway::start(
        &config(&sims, "max_connections = 1000\nmax_in_flight = 1000"),
        binary::Launch {
            env: &[("K", "sk-test")],
            shell_prefix: Some("ulimit -n 128"),
            ..Default::default()
        },
    );
    let (statuses, with_retry, bodies) = burst(&gw).await;
    let shed = statuses.iter().filter(|s| **s == 503).count();
    println!("fd limit 128, caps 1000, burst {BURST}: {shed} × 503");
    assert!(shed > 0, "descriptors ran out: {statuses:?}");
    assert!(
        statuses.iter().all(|s| matches!(s, 200 | 503)),
        "{statuses:?}"
    );
    assert_eq!(with_retry, shed);
    assert!(
        bodies.iter().any(|b| b.contains("local_resource")),
        "the 503s say the gateway ran out, not the providers: {bodies:?}"
    );
    breakers_closed_and_ready(&gw).await;
    assert!(gw.stop().success());
}

#[tokio::test]
async fn the_soft_fd_limit_is_raised_to_the_hard_limit() {
    let sims = sims().await;
    let mut gw = binary::Gateway::start(
        &config(&sims, ""),
        binary::Launch {
            env: &[("K", "sk-test")],
            shell_prefix: Some("ulimit -S -n 100"),
            ..Default::default()
        },
    );
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", gw.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let nums: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(nums[0], nums[1], "soft = hard: {line}");
    assert_ne!(nums[0], "100", "{line}");
    assert!(gw.logs().contains("raised the open-file limit"));
    assert!(gw.stop().success());
}
