//! Browsers must not be able to drive the gateway (issue 16, item 3): cross-site "simple"
//! POSTs, pages carrying an `Origin`, and DNS-rebinding pages (a foreign `Host`) are refused,
//! while ordinary clients (no `Origin`, a loopback `Host`, JSON bodies) are unaffected.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use reqwest::Method;
use support::{Spec, TestGateway, chat_body, expect_error};

async fn get(gw: &TestGateway, path: &str, host: &str) -> reqwest::Response {
    gw.request(Method::GET, path)
        .header("host", host)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn without_client_keys_only_loopback_hosts_are_served() {
    let gw = TestGateway::start().await;
    let port = gw.addr.port();
    // A DNS-rebinding page reaches us under its own name.
    for host in [
        "attacker.example",
        "attacker.example:8080",
        "localhost.attacker.example",
        "10.0.0.5",
    ] {
        for path in ["/v1/breakers", "/metrics", "/v1/models"] {
            let e = expect_error(get(&gw, path, host).await, 403).await;
            assert_eq!(e["code"], "host_not_allowed", "{host} {path}");
            assert!(
                e["message"].as_str().unwrap().contains("allowed_hosts"),
                "{e}"
            );
        }
        let r = gw
            .request(Method::POST, "/v1/chat/completions")
            .header("host", host)
            .json(&chat_body("default", "hi"))
            .send()
            .await
            .unwrap();
        expect_error(r, 403).await;
        // Health checks answer whatever the Host (probes use the pod's address).
        assert_eq!(get(&gw, "/healthz", host).await.status(), 200);
    }
    assert_eq!(
        gw.sim("openai").request_count(),
        0,
        "no refused request reached a provider"
    );
    for host in [
        format!("localhost:{port}"),
        "localhost".to_owned(),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "127.1.2.3".to_owned(),
    ] {
        assert_eq!(
            get(&gw, "/v1/breakers", &host).await.status(),
            200,
            "{host}"
        );
    }
    // The normal client (reqwest picks Host from the URL) is served.
    let r = gw.chat(&chat_body("default", "hi")).await;
    assert_eq!(r.status(), 200);
    gw.shutdown().await;
}

#[tokio::test]
async fn allowed_hosts_extend_the_loopback_names() {
    let gw = TestGateway::start_with(Spec {
        server_extra: "allowed_hosts = [\"gateway.internal\", \".corp.example\"]\n".into(),
        ..Spec::default()
    })
    .await;
    for host in ["gateway.internal:9000", "corp.example", "api.corp.example"] {
        assert_eq!(get(&gw, "/v1/models", host).await.status(), 200, "{host}");
    }
    expect_error(get(&gw, "/v1/models", "evil.example").await, 403).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn with_client_keys_any_host_is_served_to_a_keyed_client() {
    let gw = TestGateway::start_with(Spec {
        auth: true,
        ..Spec::default()
    })
    .await;
    let r = get(&gw, "/v1/models", "gateway.example.com").await;
    assert_eq!(r.status(), 200, "keys, not names, protect a keyed gateway");
    gw.shutdown().await;
}

#[tokio::test]
async fn requests_from_web_pages_are_refused_by_default() {
    let gw = TestGateway::start().await;
    // The classic CSRF: a cross-site form or fetch with a "simple" content type.
    let r = gw
        .request(Method::POST, "/v1/chat/completions")
        .header("origin", "https://evil.example")
        .header("content-type", "text/plain")
        .body(chat_body("default", "spend their credit").to_string())
        .send()
        .await
        .unwrap();
    let e = expect_error(r, 403).await;
    assert_eq!(e["code"], "origin_not_allowed");
    // Even with a JSON body (a preflighted fetch that went ahead anyway).
    let r = gw
        .request(Method::POST, "/v1/chat/completions")
        .header("origin", "null")
        .json(&chat_body("default", "hi"))
        .send()
        .await
        .unwrap();
    expect_error(r, 403).await;
    // Without an Origin, a text/plain body is still refused: 415, before any provider.
    let r = gw
        .request(Method::POST, "/v1/chat/completions")
        .header("content-type", "text/plain")
        .body(chat_body("default", "hi").to_string())
        .send()
        .await
        .unwrap();
    let e = expect_error(r, 415).await;
    assert_eq!(e["code"], "unsupported_media_type");
    // Preflight from a page: refused too, and no CORS header is ever granted.
    let r = gw
        .request(Method::OPTIONS, "/v1/chat/completions")
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert_eq!(gw.sim("openai").request_count(), 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn refusals_on_the_messages_api_are_in_anthropics_shape() {
    let gw = TestGateway::start().await;
    let body = serde_json::json!({
        "model": "default",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}]
    });
    for (header, value, message) in [
        ("origin", "https://evil.example", "allowed_origins"),
        ("host", "attacker.example", "allowed_hosts"),
    ] {
        let r = gw
            .request(Method::POST, "/v1/messages")
            .header(header, value)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{header}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["error"]["type"], "permission_error", "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(message),
            "{v}"
        );
    }
    // The OpenAI routes keep OpenAI's shape.
    let r = gw
        .request(Method::POST, "/v1/chat/completions")
        .header("origin", "https://evil.example")
        .json(&chat_body("default", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_error(r, 403).await["code"], "origin_not_allowed");
    assert_eq!(gw.sim("openai").request_count(), 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn allowed_origins_get_cors_preflight_and_headers() {
    let gw = TestGateway::start_with(Spec {
        auth: true,
        server_extra: "allowed_origins = [\"https://app.example.com\"]\n".into(),
        ..Spec::default()
    })
    .await;
    let r = gw
        .client
        .request(Method::OPTIONS, gw.at("/v1/chat/completions"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, x-stainless-os",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "a preflight needs no key");
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert_eq!(
        h["access-control-allow-headers"],
        "authorization, content-type, x-stainless-os"
    );
    assert!(h.get("access-control-max-age").is_some());
    assert!(h.get("access-control-allow-credentials").is_none());
    let r = gw
        .request(Method::POST, "/v1/chat/completions")
        .header("origin", "https://app.example.com")
        .json(&chat_body("default", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(exposed.contains("x-backstop-provider"), "{exposed}");
    assert!(r.headers()["vary"].to_str().unwrap().contains("origin"));
    // Another origin is still refused, and the key is still needed for the real request.
    let r = gw
        .request(Method::POST, "/v1/chat/completions")
        .header("origin", "https://evil.example")
        .json(&chat_body("default", "hi"))
        .send()
        .await
        .unwrap();
    expect_error(r, 403).await;
    let r = gw
        .client
        .post(gw.at("/v1/chat/completions"))
        .header("origin", "https://app.example.com")
        .json(&chat_body("default", "hi"))
        .send()
        .await
        .unwrap();
    expect_error(r, 401).await;
    gw.shutdown().await;
}
