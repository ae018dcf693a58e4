//! HTTPS upstreams. The shared pool speaks HTTP/1.1 to them, as the providers' own SDKs do,
//! rather than HTTP/2 offered by ALPN: hyper's client multiplexes every request to a host over
//! one HTTP/2 connection and never opens a second, so past the provider's
//! `SETTINGS_MAX_CONCURRENT_STREAMS` (100 to 250 at the usual fronts) requests would wait
//! behind long streams, time out, and be blamed on the provider. Real binary, a real TLS
//! server on loopback with a test CA (`fixtures/tls/`, trusted through `SSL_CERT_FILE`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod binary;
mod support;

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::{chat_body, stream_body};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

const COMPLETION: &str = r#"{"id":"chatcmpl-tls","object":"chat.completion","created":1,"model":"gpt-x","choices":[{"index":0,"message":{"role":"assistant","content":"over tls"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#;
const CHUNK: &str = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"still going\"},\"finish_reason\":null}]}\n\n";

/// An OpenAI-shaped HTTPS server that offers `h2` and `http/1.1` by ALPN and allows one stream
/// per HTTP/2 connection. A streamed request gets one chunk and then stays open until `finish`
/// is notified; anything else gets a completion. Keeps the HTTP version of every request.
async fn tls_upstream(finish: Arc<Notify>) -> (String, Arc<Mutex<Vec<hyper::Version>>>) {
    let certs = CertificateDer::pem_file_iter(fixture("localhost.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture("localhost.key")).unwrap();
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let versions = Arc::new(Mutex::new(Vec::new()));
    let seen = versions.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, seen, finish) = (acceptor.clone(), seen.clone(), finish.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (seen, finish) = (seen.clone(), finish.clone());
                        async move {
                            seen.lock().unwrap().push(req.version());
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let streamed = serde_json::from_slice::<serde_json::Value>(&body)
                                .unwrap()["stream"]
                                == true;
                            let body = if streamed {
                                let frames = futures_util::stream::iter([CHUNK])
                                    .chain(futures_util::stream::once(async move {
                                        finish.notified().await;
                                        "data: [DONE]\n\n"
                                    }))
                                    .map(|text| {
                                        Ok::<_, Infallible>(Frame::data(Bytes::from_static(
                                            text.as_bytes(),
                                        )))
                                    });
                                BodyExt::boxed(StreamBody::new(frames))
                            } else {
                                BodyExt::boxed(
                                    http_body_util::Full::new(Bytes::from_static(
                                        COMPLETION.as_bytes(),
                                    ))
                                    .map_err(|e: Infallible| match e {}),
                                )
                            };
                            let content_type = if streamed {
                                "text/event-stream"
                            } else {
                                "application/json"
                            };
                            Ok::<_, Infallible>(
                                hyper::Response::builder()
                                    .header("content-type", content_type)
                                    .body(body)
                                    .unwrap(),
                            )
                        }
                    },
                );
                let io = TokioIo::new(tls);
                if h2 {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .max_concurrent_streams(1)
                        .serve_connection(io, service)
                        .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                }
            });
        }
    });
    (format!("https://localhost:{port}/v1"), versions)
}

#[tokio::test]
async fn a_long_stream_to_an_https_provider_never_holds_up_the_next_request() {
    let finish = Arc::new(Notify::new());
    let (upstream, versions) = tls_upstream(finish.clone()).await;
    let config = format!(
        "[providers.openai]\nkind = \"openai\"\nmodel = \"gpt-x\"\napi_key_env = \"K\"\n\
         base_url = \"{upstream}\"\nretries = 0\n[chains.default]\nproviders = [\"openai\"]\n\
         timeout = \"30s\"\n"
    );
    let ca = fixture("ca.pem");
    let mut gw = binary::Gateway::start(
        &config,
        binary::Launch {
            env: &[("K", "sk-test"), ("SSL_CERT_FILE", ca.to_str().unwrap())],
            ..Default::default()
        },
    );
    let client = support::client();
    // One stream that stays open, as a long answer does.
    let open = client
        .post(gw.url("/v1/chat/completions"))
        .json(&stream_body("default", "talk for a while"))
        .send()
        .await
        .unwrap();
    assert_eq!(open.status(), 200);
    let mut events = open.bytes_stream();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("still going") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("the stream's first content")
            .unwrap()
            .unwrap();
        seen.extend_from_slice(&chunk);
    }
    // While it is open, more requests go through at once, each answered at once (over one
    // HTTP/2 connection they would wait for the stream to end, here the chain's 30 s deadline).
    for _ in 0..3 {
        let r = tokio::time::timeout(
            Duration::from_secs(10),
            client
                .post(gw.url("/v1/chat/completions"))
                .json(&chat_body("default", "hi"))
                .send(),
        )
        .await
        .expect("an answer");
        let r = r.unwrap();
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "over tls");
    }
    // The stream was never held up either: it ends when the upstream finishes it.
    finish.notify_one();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("the stream's end")
    {
        seen.extend_from_slice(&chunk.unwrap());
    }
    assert!(String::from_utf8_lossy(&seen).ends_with("data: [DONE]\n\n"));
    assert!(gw.stop().success());
    let versions = versions.lock().unwrap().clone();
    assert_eq!(versions.len(), 4, "{versions:?}");
    assert!(
        versions.iter().all(|v| *v == hyper::Version::HTTP_11),
        "{versions:?}"
    );
}
