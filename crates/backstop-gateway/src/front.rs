//! The front of every request, one service around the router: the request's id
//! (`request_id`), the Host and Origin rules (`browser_guard`), and the config in force (the
//! handlers' [`Current`]), decided once before routing. Written by hand rather than as two
//! axum `from_fn` middlewares applied to every route, which boxed two futures and cloned the
//! inner service per request: 4,100 instructions of a proxied request's 116,600 (BENCHMARKS.md).
//! A `POST` to a model route calls its handler directly, with the request's id: the router's
//! lookup, its handler adapter, the futures they move and the extensions map the id travelled
//! in cost what a request to them need not pay. Every other request (a model path's other
//! methods too, refused with 405 there) goes through the router.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method};
use axum::response::Response;
use tower_service::Service;

use crate::browser_guard::{self, Verdict};
use crate::reload::Live;
use crate::request_id::{self, RequestId};
use crate::server::{self, Current};
use crate::{embeddings, messages};

/// The router behind the front.
#[derive(Clone)]
pub struct Front {
    live: Arc<Live>,
    router: Router,
}

impl Front {
    /// `router` behind the request id, the guard and the config of `live`.
    pub fn new(live: Arc<Live>, router: Router) -> Self {
        Front { live, router }
    }
}

/// A ready answer, or the router's with the headers the front adds.
pub type FrontFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl<B> Service<axum::http::Request<B>> for Front
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = FrontFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::http::Request<B>) -> FrontFuture {
        let mut request = request.map(Body::new);
        let id = RequestId::from_headers(request.headers());
        // Visible ASCII only, so always a valid header value.
        let id_value = HeaderValue::from_str(id.as_str()).ok();
        let app = self.live.app();
        let cors = match browser_guard::check(&app.guard, &request) {
            Verdict::Answer(response) => {
                return Box::pin(std::future::ready(Ok(with_id(response, id_value))));
            }
            Verdict::Pass => None,
            Verdict::Cors(origin) => Some(origin),
        };
        let direct = *request.method() == Method::POST;
        // A handler's future is kilobytes (a chat request's 2.9 KB): boxed on its own, it is
        // not copied at each move of the front's (1,000 instructions a request, callgrind).
        match request.uri().path() {
            "/v1/chat/completions" if direct => finish(
                Box::pin(server::chat_completions(app, id, request)),
                cors,
                id_value,
            ),
            "/v1/messages" if direct => finish(
                Box::pin(messages::messages(app, id, request)),
                cors,
                id_value,
            ),
            "/v1/embeddings" if direct => finish(
                Box::pin(embeddings::embeddings(app, id, request)),
                cors,
                id_value,
            ),
            _ => {
                request.extensions_mut().insert(Current(app));
                let routed = self.router.call(request);
                finish(
                    async move {
                        let Ok(response) = routed.await;
                        response
                    },
                    cors,
                    id_value,
                )
            }
        }
    }
}

/// The handler's answer with the headers the front adds.
fn finish(
    answer: impl Future<Output = Response> + Send + 'static,
    cors: Option<HeaderValue>,
    id_value: Option<HeaderValue>,
) -> FrontFuture {
    Box::pin(async move {
        let mut response = answer.await;
        if let Some(origin) = cors {
            browser_guard::expose(&mut response, origin);
        }
        Ok(with_id(response, id_value))
    })
}

fn with_id(mut response: Response, id: Option<HeaderValue>) -> Response {
    if let Some(v) = id {
        response.headers_mut().insert(request_id::HEADER, v);
    }
    response
}
