//! Client and admin bearer keys on every endpoint, and the open (no keys) configuration.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use reqwest::Method;
use support::{ADMIN_KEY, CLIENT_KEY, CLIENT_KEY_2, Spec, TestGateway, chat_body, expect_error};

/// Every endpoint that needs a key, with a body where it takes one.
fn protected() -> Vec<(Method, &'static str)> {
    vec![
        (Method::POST, "/v1/chat/completions"),
        (Method::GET, "/v1/models"),
        (Method::GET, "/v1/breakers"),
        (Method::POST, "/v1/breakers/openai/trip"),
        (Method::POST, "/v1/breakers/openai/reset"),
        (Method::POST, "/v1/admin/reload"),
        (Method::GET, "/metrics"),
        (Method::GET, "/status"),
        (Method::GET, "/v1/status"),
    ]
}

/// Client endpoints (no admin key needed).
fn client_endpoints() -> Vec<(Method, &'static str)> {
    vec![
        (Method::POST, "/v1/chat/completions"),
        (Method::GET, "/v1/models"),
        (Method::GET, "/v1/breakers"),
        (Method::GET, "/metrics"),
        (Method::GET, "/status"),
        (Method::GET, "/v1/status"),
    ]
}

async fn send(
    gw: &TestGateway,
    method: &Method,
    path: &str,
    authorization: Option<&str>,
) -> reqwest::Response {
    let mut b = gw.client.request(method.clone(), gw.at(path));
    if let Some(a) = authorization {
        b = b.header("authorization", a);
    }
    if path == "/v1/chat/completions" {
        b = b.json(&chat_body("default", "hi"));
    }
    b.send().await.expect("send")
}

async fn auth_gateway() -> TestGateway {
    TestGateway::start_with(Spec {
        auth: true,
        ..Spec::default()
    })
    .await
}

#[tokio::test]
async fn every_endpoint_but_health_refuses_missing_and_wrong_keys() {
    let gw = auth_gateway().await;
    let wrong = [
        None,
        Some("Bearer wrong-key"),
        Some("Bearer "),
        Some("Bearer client-key-1x"),
        Some("Bearer client-key-"),
        // The key without the scheme, or in another scheme.
        Some(CLIENT_KEY),
        Some("Basic Y2xpZW50LWtleS0xOg=="),
    ];
    for (method, path) in protected() {
        for auth in wrong {
            let r = send(&gw, &method, path, auth).await;
            let e = expect_error(r, 401).await;
            assert_eq!(
                e["type"], "invalid_request_error",
                "{method} {path} {auth:?}"
            );
            assert_eq!(e["code"], "invalid_api_key", "{method} {path} {auth:?}");
            let msg = e["message"].as_str().unwrap();
            assert!(
                !msg.contains(CLIENT_KEY) && !msg.contains(ADMIN_KEY),
                "{msg}"
            );
        }
    }
    // Refused requests had no effect.
    for p in support::PROVIDERS {
        assert_eq!(gw.sim(p).request_count(), 0);
    }
    assert_eq!(
        gw.app.breaker("openai").unwrap().state(),
        backstop::BreakerState::Closed
    );
    // Health endpoints need no key.
    for path in ["/healthz", "/readyz"] {
        let r = send(&gw, &Method::GET, path, None).await;
        assert_eq!(r.status(), 200, "{path}");
        let r = send(&gw, &Method::GET, path, Some("Bearer wrong")).await;
        assert_eq!(r.status(), 200, "{path} with a wrong key");
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn a_client_key_works_on_client_endpoints() {
    let gw = auth_gateway().await;
    for key in [CLIENT_KEY, CLIENT_KEY_2] {
        let auth = format!("Bearer {key}");
        for (method, path) in client_endpoints() {
            let r = send(&gw, &method, path, Some(&auth)).await;
            let status = r.status();
            let text = r.text().await.unwrap();
            assert_eq!(status, 200, "{method} {path} with {key}: {text}");
            if path == "/v1/chat/completions" {
                assert!(text.contains("Simulated answer from openai"), "{text}");
            }
        }
    }
    assert_eq!(gw.sim("openai").request_count(), 2);
    gw.shutdown().await;
}

#[tokio::test]
async fn the_admin_key_is_no_client_key_but_may_read_operational_data() {
    let gw = auth_gateway().await;
    let admin = format!("Bearer {ADMIN_KEY}");
    for path in ["/v1/chat/completions", "/v1/models"] {
        let method = if path == "/v1/models" {
            Method::GET
        } else {
            Method::POST
        };
        let e = expect_error(send(&gw, &method, path, Some(&admin)).await, 403).await;
        assert_eq!(e["type"], "permission_error", "{path}");
        assert!(e["message"].as_str().unwrap().contains("client key"), "{e}");
    }
    assert_eq!(gw.sim("openai").request_count(), 0);
    for path in ["/v1/breakers", "/metrics"] {
        let r = send(&gw, &Method::GET, path, Some(&admin)).await;
        assert_eq!(r.status(), 200, "{path}");
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn with_only_an_admin_key_chat_needs_no_key_and_admin_endpoints_need_the_admin_key() {
    let gw = TestGateway::start_with(Spec {
        admin_only: true,
        ..Spec::default()
    })
    .await;
    for (method, path) in client_endpoints() {
        let r = send(&gw, &method, path, None).await;
        assert_eq!(r.status(), 200, "{method} {path} needs no key");
    }
    let e = expect_error(
        send(&gw, &Method::POST, "/v1/breakers/openai/trip", None).await,
        401,
    )
    .await;
    assert_eq!(e["code"], "invalid_api_key");
    // The admin key comes from its variable with a trailing newline: trimmed, it matches.
    let r = send(
        &gw,
        &Method::POST,
        "/v1/breakers/openai/trip",
        Some(&format!("Bearer {ADMIN_KEY}")),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        gw.app.breaker("openai").unwrap().state(),
        backstop::BreakerState::Open
    );
    gw.shutdown().await;
}

#[test]
fn a_named_key_variable_that_yields_no_key_refuses_to_build() {
    let text = "[server]\nclient_keys_env = \"TEST_CLIENT_KEYS\"\nadmin_key_env = \"TEST_ADMIN_KEY\"\n\
                [providers.p]\nkind = \"openai\"\nmodel = \"m\"\napi_key_env = \"TEST_OPENAI_KEY\"\n\
                [chains.c]\nproviders = [\"p\"]\n";
    let config = backstop_gateway::config::Config::parse(text, "t.toml").unwrap();
    for value in [None, Some(""), Some("   "), Some(" , , "), Some("\n")] {
        let env = |var: &str| match var {
            "TEST_CLIENT_KEYS" => value.map(str::to_owned),
            other => support::env(other),
        };
        let e = backstop_gateway::app::App::build_with_env(&config, &env)
            .err()
            .unwrap_or_else(|| panic!("built with TEST_CLIENT_KEYS = {value:?}"));
        let message = e.to_string();
        assert!(
            message.contains("client_keys_env") && message.contains("TEST_CLIENT_KEYS"),
            "{message}"
        );
        assert!(matches!(e, backstop_gateway::app::BuildError::Keys(_)));
    }
    let env = |var: &str| match var {
        "TEST_ADMIN_KEY" => Some(" \n".to_owned()),
        other => support::env(other),
    };
    let e = backstop_gateway::app::App::build_with_env(&config, &env)
        .expect_err("an empty admin key refuses to build");
    assert!(e.to_string().contains("TEST_ADMIN_KEY"), "{e}");
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let gw = auth_gateway().await;
    // The scheme is case-insensitive; spaces around the key are ignored.
    for auth in [
        format!("bearer {CLIENT_KEY}"),
        format!("BEARER  {CLIENT_KEY} "),
    ] {
        let r = send(&gw, &Method::GET, "/v1/models", Some(&auth)).await;
        assert_eq!(r.status(), 200, "{auth:?}");
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn admin_endpoints_refuse_a_client_key_and_accept_the_admin_key() {
    let gw = auth_gateway().await;
    let breaker = || gw.app.breaker("openai").unwrap().state();
    for action in ["trip", "reset"] {
        let path = format!("/v1/breakers/openai/{action}");
        for key in [CLIENT_KEY, CLIENT_KEY_2] {
            let r = send(&gw, &Method::POST, &path, Some(&format!("Bearer {key}"))).await;
            let e = expect_error(r, 403).await;
            assert_eq!(e["type"], "permission_error");
            assert!(e["message"].as_str().unwrap().contains("admin"), "{e}");
        }
    }
    assert_eq!(
        breaker(),
        backstop::BreakerState::Closed,
        "refused trip had no effect"
    );

    let admin = format!("Bearer {ADMIN_KEY}");
    let r = send(&gw, &Method::POST, "/v1/breakers/openai/trip", Some(&admin)).await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["state"], "open");
    assert_eq!(breaker(), backstop::BreakerState::Open);

    // A client key cannot undo it either.
    let r = send(
        &gw,
        &Method::POST,
        "/v1/breakers/openai/reset",
        Some(&format!("Bearer {CLIENT_KEY}")),
    )
    .await;
    expect_error(r, 403).await;
    assert_eq!(breaker(), backstop::BreakerState::Open);

    let r = send(
        &gw,
        &Method::POST,
        "/v1/breakers/openai/reset",
        Some(&admin),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(breaker(), backstop::BreakerState::Closed);
    gw.shutdown().await;
}

#[tokio::test]
async fn without_keys_everything_is_open_except_admin_endpoints() {
    let gw = TestGateway::start().await;
    for (method, path) in client_endpoints() {
        for auth in [None, Some("Bearer anything")] {
            let r = send(&gw, &method, path, auth).await;
            assert_eq!(r.status(), 200, "{method} {path} {auth:?}");
        }
    }
    for path in ["/healthz", "/readyz"] {
        assert_eq!(send(&gw, &Method::GET, path, None).await.status(), 200);
    }
    for action in ["trip", "reset"] {
        let path = format!("/v1/breakers/openai/{action}");
        for auth in [None, Some("Bearer anything")] {
            let r = send(&gw, &Method::POST, &path, auth).await;
            let e = expect_error(r, 403).await;
            assert_eq!(e["type"], "permission_error");
            assert!(e["message"].as_str().unwrap().contains("disabled"), "{e}");
        }
    }
    assert_eq!(
        gw.app.breaker("openai").unwrap().state(),
        backstop::BreakerState::Closed
    );
    gw.shutdown().await;
}
