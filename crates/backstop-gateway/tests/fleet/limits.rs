//! `server.key_limits` across replicas: one atomic script on Redis's clock.

use crate::redis_server::RedisServer;
use crate::support::{CLIENT_KEY, CLIENT_KEY_2, Spec, TestGateway, chat_body, header};
use crate::{replicas, wait_backend};

fn spec(redis: &RedisServer, limits: &str) -> Spec {
    Spec {
        auth: true,
        redis_url: Some(redis.url()),
        server_extra: format!("key_limits = {{ {limits} }}\n"),
        ..Spec::default()
    }
}

async fn ask_as(g: &TestGateway, key: &str, body: &serde_json::Value) -> reqwest::Response {
    g.client
        .post(g.at("/v1/chat/completions"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_requests_per_minute_hold_across_replicas_exactly() {
    const N: usize = 5;
    let redis = RedisServer::start().await;
    let (a, b) = replicas(spec(&redis, &format!("requests_per_minute = {N}"))).await;
    wait_backend(&a, &b, true).await;
    let mut ok = 0;
    for i in 0..2 * N {
        let g = if i % 2 == 0 { &a } else { &b };
        let r = ask_as(g, CLIENT_KEY, &chat_body("default", "hello")).await;
        match r.status().as_u16() {
            200 => ok += 1,
            429 => {
                let wait: u64 = header(&r, "retry-after")
                    .expect("Retry-After on a key-limit 429")
                    .parse()
                    .expect("Retry-After in seconds");
                assert!((1..=60).contains(&wait), "Retry-After {wait}");
                let body: serde_json::Value = r.json().await.unwrap();
                assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
                assert_eq!(body["error"]["type"], "requests", "{body}");
            }
            s => panic!("unexpected status {s}"),
        }
    }
    assert_eq!(
        ok, N,
        "{N} per minute across both replicas, not {N} per replica"
    );
    let other = ask_as(&b, CLIENT_KEY_2, &chat_body("default", "hello")).await;
    assert_eq!(other.status(), 200, "another key has its own limit");
    let text = redis_keys(&redis).await;
    assert!(
        !text.contains(CLIENT_KEY) && !text.contains(CLIENT_KEY_2),
        "a raw client key reached Redis: {text}"
    );
}

/// Every key in Redis, as text (`KEYS *`: a test's Redis holds a handful).
async fn redis_keys(redis: &RedisServer) -> String {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut c)
        .await
        .unwrap();
    keys.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_tokens_are_reconciled_with_the_reported_usage_across_replicas() {
    const LIMIT: u64 = 1000;
    const RESERVE: u64 = 400;
    let redis = RedisServer::start().await;
    let (a, b) = replicas(spec(&redis, &format!("tokens_per_minute = {LIMIT}"))).await;
    wait_backend(&a, &b, true).await;
    let body = serde_json::json!({
        "model": "default",
        "max_tokens": RESERVE,
        "messages": [{"role": "user", "content": "a prompt of a few words to count as input tokens"}],
    });
    let started = tokio::time::Instant::now();
    let mut used = Vec::new();
    let mut refused = None;
    for i in 0..200 {
        let g = if i % 2 == 0 { &a } else { &b };
        let r = ask_as(g, CLIENT_KEY, &body).await;
        if r.status() == 429 {
            refused = Some(header(&r, "retry-after").map(str::to_owned));
            break;
        }
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().await.unwrap();
        let total = v["usage"]["total_tokens"]
            .as_u64()
            .expect("usage.total_tokens");
        assert!(total > 0 && total < RESERVE, "usage {total}");
        used.push(total);
    }
    let refused = refused.expect("the token limit was never reached: usage is not charged");
    assert!(refused.is_some(), "Retry-After on a token-limit 429");
    assert!(
        used.len() > 2,
        "only {} requests of {RESERVE} reserved tokens fit in {LIMIT}: reservations were not \
         reconciled with the usage",
        used.len()
    );
    // Refused when fewer than RESERVE tokens were left: the usage so far passed
    // LIMIT - RESERVE, and before the last admission it had not (plus the refill meanwhile).
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let refill = (started.elapsed().as_secs_f64() * LIMIT as f64 / 60.0).ceil() as u64;
    let total: u64 = used.iter().sum();
    let before_last = total - used.last().unwrap();
    assert!(total > LIMIT - RESERVE, "refused with {total} used");
    assert!(
        before_last <= LIMIT - RESERVE + refill,
        "admitted past the limit: {before_last} used before the last request"
    );
}
