//! The HTTP client a provider sends with: the caller's own (`.http_client(..)`: proxies, CA
//! roots, mTLS, tracing middleware), or one connection pool shared by every provider in the
//! process that brought none.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use reqwest::header::HeaderMap;

use super::direct::{self, DirectClient};
use super::http::from_reqwest;
use super::outgoing::Outgoing;
use super::upstream::UpstreamResponse;
use crate::{ErrorKind, ProviderError};

/// An HTTP client for a provider: a [`reqwest::Client`] or, with the `reqwest-middleware`
/// feature, a `reqwest_middleware::ClientWithMiddleware`. Build one with `.into()`.
///
/// A client you bring is used as you configured it. Two things are yours to keep true: it
/// should not follow redirects (backstop's own client refuses them, so a wrong base URL is an
/// error rather than the prompt re-sent elsewhere) and it should neither retry nor time out
/// requests on its own (the chain owns retries and attempt timeouts; a second retry layer
/// multiplies load on a provider that is already failing).
#[derive(Clone)]
pub struct HttpClient {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Reqwest(reqwest::Client),
    #[cfg(feature = "reqwest-middleware")]
    Middleware(reqwest_middleware::ClientWithMiddleware),
}

impl From<reqwest::Client> for HttpClient {
    fn from(client: reqwest::Client) -> Self {
        HttpClient {
            inner: Inner::Reqwest(client),
        }
    }
}

#[cfg(feature = "reqwest-middleware")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest-middleware")))]
impl From<reqwest_middleware::ClientWithMiddleware> for HttpClient {
    fn from(client: reqwest_middleware::ClientWithMiddleware) -> Self {
        HttpClient {
            inner: Inner::Middleware(client),
        }
    }
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::Reqwest(_) => f.write_str("HttpClient(reqwest)"),
            #[cfg(feature = "reqwest-middleware")]
            Inner::Middleware(_) => f.write_str("HttpClient(reqwest-middleware)"),
        }
    }
}

impl HttpClient {
    /// POSTs `body`; a transport or middleware failure is classified here.
    pub(crate) async fn post(
        &self,
        url: reqwest::Url,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<UpstreamResponse, ProviderError> {
        let response = match &self.inner {
            Inner::Reqwest(client) => client
                .post(url)
                .headers(headers)
                .body(body)
                .send()
                .await
                .map_err(|e| from_reqwest(&e))?,
            #[cfg(feature = "reqwest-middleware")]
            Inner::Middleware(client) => client
                .post(url)
                .headers(headers)
                .body(body)
                .send()
                .await
                .map_err(|e| match e {
                    reqwest_middleware::Error::Reqwest(e) => from_reqwest(&e),
                    reqwest_middleware::Error::Middleware(e) => ProviderError::new(
                        ErrorKind::Connect,
                        format!("HTTP client middleware failed: {e}"),
                    ),
                })?,
        };
        Ok(UpstreamResponse::Reqwest(response))
    }
}

/// One shared pool: reqwest's client, and the direct one for cleartext upstreams (`None` when
/// the environment names a proxy, which only reqwest honours).
#[derive(Clone)]
pub(crate) struct Pooled {
    /// Built by the first request that needs it (https, a proxy): building loads the trust
    /// roots, which takes descriptors, so a process out of them fails to build it. That failure
    /// is not kept: the next request tries again.
    reqwest: Arc<OnceLock<reqwest::Client>>,
    connect_timeout: Duration,
    direct: Option<Box<DirectClient>>,
}

impl Pooled {
    /// POSTs with the direct client when `uri` is set (an `http://` target) and the pool has
    /// one; otherwise with reqwest.
    pub(crate) async fn post(
        &self,
        url: &reqwest::Url,
        uri: Option<&http::Uri>,
        headers: &Outgoing<'_>,
        body: Vec<u8>,
    ) -> Result<UpstreamResponse, ProviderError> {
        match (&self.direct, uri) {
            (Some(client), Some(uri)) => direct::post(client, uri, headers, &body).await,
            _ => {
                HttpClient::from(self.reqwest()?)
                    .post(url.clone(), headers.to_map(), body)
                    .await
            }
        }
    }

    fn reqwest(&self) -> Result<reqwest::Client, ProviderError> {
        if let Some(client) = self.reqwest.get() {
            return Ok(client.clone());
        }
        let built = build(self.connect_timeout)?;
        Ok(self.reqwest.get_or_init(|| built).clone())
    }
}

impl fmt::Debug for Pooled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pooled")
            .field("direct", &self.direct.is_some())
            .finish_non_exhaustive()
    }
}

/// The most shared pools kept; past it the oldest is dropped (a process that keeps making
/// runtimes, like a test binary, would otherwise keep one per runtime forever). Well above the
/// gateway's most worker runtimes (256), each of which needs its pool for good: one dropped
/// while its runtime still sends would be rebuilt, with new connections, on every call.
const MAX_POOLS: usize = 2_048;

/// A pool's key: the runtime its connections belong to and the connect timeout.
type PoolKey = (Option<tokio::runtime::Id>, Duration);

/// The pools shared by providers that brought no client: one per runtime (a connection is
/// driven by tasks of the runtime that opened it, so reusing it from another runtime can hang)
/// and connect timeout (almost always one entry). A handful at most: a linear scan is enough.
static POOLS: Mutex<VecDeque<(PoolKey, Pooled)>> = Mutex::new(VecDeque::new());

/// The process-wide client for `connect_timeout` on the current runtime, built on first use.
fn pooled(key: PoolKey) -> Pooled {
    pooled_in(
        &mut POOLS.lock().unwrap_or_else(PoisonError::into_inner),
        key,
    )
}

fn pooled_in(pools: &mut VecDeque<(PoolKey, Pooled)>, key: PoolKey) -> Pooled {
    if let Some((_, client)) = pools.iter().find(|(k, _)| *k == key) {
        return client.clone();
    }
    let client = Pooled {
        reqwest: Arc::new(OnceLock::new()),
        connect_timeout: key.1,
        direct: (!direct::proxy_in_environment()).then(|| Box::new(direct::build(key.1))),
    };
    if pools.len() >= MAX_POOLS {
        pools.pop_front();
    }
    pools.push_back((key, client.clone()));
    client
}

fn current_runtime() -> Option<tokio::runtime::Id> {
    tokio::runtime::Handle::try_current().ok().map(|h| h.id())
}

/// A provider's handle on the shared pools: remembers the pools of the first runtimes it ran
/// on, so the usual cases (one runtime, or the gateway's one per core) take no lock per call.
#[derive(Debug)]
pub(crate) struct SharedClient {
    connect_timeout: Duration,
    first: Box<[Remembered; REMEMBERED]>,
}

/// A runtime and its pool, set once.
type Remembered = OnceLock<(Option<tokio::runtime::Id>, Pooled)>;

/// Runtimes whose pool a provider remembers without a lock: as many as the gateway's most
/// worker runtimes (one per core, at most 256).
const REMEMBERED: usize = 256;

impl SharedClient {
    pub(crate) fn new(connect_timeout: Duration) -> Self {
        SharedClient {
            connect_timeout,
            first: Box::new([const { OnceLock::new() }; REMEMBERED]),
        }
    }

    /// The shared client for the runtime this call runs on.
    pub(crate) fn get(&self) -> Cow<'_, Pooled> {
        let runtime = current_runtime();
        for slot in self.first.iter() {
            match slot.get() {
                Some((id, client)) if *id == runtime => return Cow::Borrowed(client),
                Some(_) => continue,
                None => break,
            }
        }
        let client = pooled((runtime, self.connect_timeout));
        // The first few runtimes are remembered; others look up the pools each call.
        if let Some(slot) = self.first.iter().find(|s| s.get().is_none()) {
            let _ = slot.set((runtime, client.clone()));
        }
        Cow::Owned(client)
    }
}

/// Builds a pooled client: the TLS backend the features chose, a connect timeout, no overall
/// timeout (the chain owns attempt timeouts), no redirects, and HTTP/1.1 only.
fn build(connect_timeout: Duration) -> Result<reqwest::Client, ProviderError> {
    install_ring_provider();
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        // HTTP/1.1, as the providers' own SDKs speak: offered HTTP/2 by ALPN, hyper's pool puts
        // every request to a host on one connection and never opens a second, so requests past
        // the provider's concurrent-stream limit (100 to 250 at the usual fronts) would wait
        // behind long streams and time out as the provider's fault (tests/upstream_tls.rs).
        .http1_only()
        .pool_idle_timeout(Duration::from_secs(90))
        // LLM APIs answer in place: a redirect is a misconfigured base URL, reported as an
        // error status rather than followed (which would re-send the prompt elsewhere).
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| {
            // Our own failure, never the provider's (for instance out of descriptors while
            // loading the trust roots): neutral for its breaker.
            let cause = from_reqwest(&e);
            ProviderError::new(
                ErrorKind::LocalResource,
                format!("failed to build HTTP client: {}", cause.message),
            )
        })
}

/// With `rustls-ring` (and not `rustls-aws-lc`), reqwest's rustls has no crypto provider of its
/// own and uses the process default: install ring as that default unless the application
/// already installed one (then theirs is kept).
#[cfg(all(feature = "rustls-ring", not(feature = "rustls-aws-lc")))]
fn install_ring_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err means another thread installed one first: that one is used, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

#[cfg(not(all(feature = "rustls-ring", not(feature = "rustls-aws-lc"))))]
fn install_ring_provider() {}

#[cfg(test)]
mod tests {
    use super::*;

    fn pools_for(timeout: Duration) -> usize {
        let pools = POOLS.lock().unwrap();
        pools.iter().filter(|((_, t), _)| *t == timeout).count()
    }

    #[test]
    fn providers_without_a_client_share_one_pool_per_runtime_and_connect_timeout() {
        let odd = Duration::from_millis(4_321);
        let (a, b) = (SharedClient::new(odd), SharedClient::new(odd));
        let runtime = || {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
        };
        let first = runtime();
        first.block_on(async {
            a.get();
            b.get();
            a.get();
        });
        assert_eq!(pools_for(odd), 1, "one pool for both providers");
        let second = runtime();
        second.block_on(async {
            a.get();
            b.get();
        });
        assert_eq!(pools_for(odd), 2, "another runtime, another pool");
    }

    #[test]
    fn a_provider_on_many_runtimes_keeps_one_pool_for_each() {
        // More runtimes than a provider remembers lock-free (and than the 16 pools once
        // kept): each still finds its own pool again, call after call, instead of one rebuilt
        // with new connections.
        let odd = Duration::from_millis(4_987);
        let client = SharedClient::new(odd);
        let runtimes: Vec<_> = (0..REMEMBERED + 16)
            .map(|_| {
                tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap()
            })
            .collect();
        let identity = |rt: &tokio::runtime::Runtime| {
            rt.block_on(async { Arc::as_ptr(&client.get().reqwest) as usize })
        };
        let first: Vec<usize> = runtimes.iter().map(identity).collect();
        let again: Vec<usize> = runtimes.iter().map(identity).collect();
        assert_eq!(first, again);
        let distinct: std::collections::BTreeSet<_> = first.iter().collect();
        assert_eq!(distinct.len(), runtimes.len(), "one pool per runtime");
        assert_eq!(pools_for(odd), runtimes.len());
    }

    #[test]
    fn reqwest_is_built_only_when_a_request_needs_it() {
        // Building it loads the trust roots; a cleartext-only process never needs them.
        let mut pools = VecDeque::new();
        let pool = pooled_in(&mut pools, (None, Duration::from_millis(6_543)));
        assert!(pool.reqwest.get().is_none());
        pool.reqwest().unwrap();
        assert!(
            pools[0].1.reqwest.get().is_some(),
            "built once, for every clone"
        );
    }

    #[test]
    fn the_pools_are_bounded() {
        let mut pools = VecDeque::new();
        for i in 0..MAX_POOLS as u64 + 4 {
            pooled_in(&mut pools, (None, Duration::from_millis(7_000 + i)));
        }
        assert_eq!(pools.len(), MAX_POOLS);
        assert_eq!(
            pools[0].0.1,
            Duration::from_millis(7_004),
            "the oldest went first"
        );
    }
}
