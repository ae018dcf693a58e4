//! `rediss://` with a password, as the URL says: the real binary (its own environment, so
//! the test CA can be trusted through `SSL_CERT_FILE`) against a TLS-only Redis.

use std::time::Duration;

use crate::binary::{Gateway, Launch};
use crate::redis_server::RedisServer;
use crate::support::wait_until;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rediss_url_with_a_password_connects_over_tls_and_the_password_is_never_logged() {
    const PASSWORD: &str = "s3cret-redis-pw";
    let redis = RedisServer::start_tls(PASSWORD).await;
    let sim = backstop_sim::Simulator::start(backstop_sim::SimConfig::default())
        .await
        .unwrap();
    let config = format!(
        "[providers.p]\nkind = \"openai-compatible\"\nmodel = \"m\"\nbase_url = \"{}\"\n\
         [chains.default]\nproviders = [\"p\"]\n\
         [state]\nredis_url_env = \"BACKSTOP_REDIS_URL\"\n",
        sim.openai_base_url()
    );
    let url = redis.url();
    let ca = redis.ca_file().display().to_string();
    let mut g = Gateway::start(
        &config,
        Launch {
            env: &[("BACKSTOP_REDIS_URL", &url), ("SSL_CERT_FILE", &ca)],
            ..Launch::default()
        },
    );
    let client = crate::support::client();
    let metrics = g.url("/metrics");
    wait_until(
        Duration::from_secs(10),
        "the gateway reaching Redis over TLS",
        || async {
            let text = client
                .get(&metrics)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            crate::support::metric(&text, "backstop_state_backend_up") == 1.0
        },
    )
    .await;
    assert!(g.stop().success());
    let log = g.logs();
    assert!(log.contains("Redis reachable"), "{log}");
    assert!(
        !log.contains(PASSWORD),
        "the Redis password reached the log:\n{log}"
    );
}
