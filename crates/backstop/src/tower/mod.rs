//! tower integration (cargo feature `tower`): a chain is a [`Service`], and a [`Provider`] can
//! be made of any tower service, so middleware can sit around the whole chain or around one
//! provider.
//!
//! - [`FallbackChain`] implements `Service<ChatRequest>`: answers are [`FallbackResult`]s, errors
//!   [`AllProvidersFailed`]; [`StreamingChain`] is the same chain answering with a
//!   [`FallbackStream`]. `poll_ready` is `Pending` while no provider's breaker would admit a
//!   call; see [below](#readiness).
//! - [`ProviderService`] turns a provider into a `Service`, to wrap it in middleware;
//!   [`ServiceProvider`] turns a service (wrapped or your own) back into a provider for a chain.
//!
//! ```
//! use std::time::Duration;
//! use backstop::testing::{ScriptedProvider, Step};
//! use backstop::tower::{ProviderService, ServiceProvider};
//! use backstop::{ChatRequest, CircuitBreaker, FallbackChain};
//! use tower::{Service, ServiceBuilder, ServiceExt};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let primary = ScriptedProvider::new("primary").script([Step::reply("hi from primary")]);
//! let backup = ScriptedProvider::new("backup").script([Step::reply("hi from backup")]);
//!
//! // At most 4 calls in flight to the primary; a fifth is shed and goes to the backup at once.
//! let limited = ServiceBuilder::new()
//!     .load_shed()
//!     .concurrency_limit(4)
//!     .service(ProviderService::new(primary));
//! let chain = FallbackChain::builder()
//!     .provider(ServiceProvider::new("primary", limited), CircuitBreaker::new("primary"))
//!     .provider(backup, CircuitBreaker::new("backup"))
//!     .build()
//!     .unwrap();
//!
//! // The chain in a tower stack of its own.
//! let mut service = ServiceBuilder::new()
//!     .timeout(Duration::from_secs(30))
//!     .service(chain);
//! let answer = service.ready().await.unwrap().call(ChatRequest::from("hello")).await.unwrap();
//! assert_eq!(answer.provider_used, "primary");
//! # });
//! ```
//!
//! # Readiness
//!
//! tower's contract is that `poll_ready` returning `Pending` means "not now, I will wake you",
//! and an error means the service is broken for good (balancers discard it). An open breaker is
//! neither broken for good nor silent forever: it recovers after its `recovery_timeout`. So the
//! chain's `poll_ready` returns `Ready(Ok)` while any breaker admits a call, and otherwise
//! `Pending`, having arranged a wake-up at the moment the nearest open breaker turns half-open
//! (one small timer task per moment, shared by every caller waiting for that moment). When every breaker is half-open with all its
//! probe slots taken there is no such moment; the chain then looks again every
//! [`PROBE_RECHECK`]. Outside a tokio runtime there is no timer to wake the caller, so
//! `poll_ready` returns `Ready(Ok)` and the call itself refuses at once (all `CircuitOpen`).
//!
//! What that means in a stack: behind `LoadShed`, a request while every breaker is open fails
//! at once with tower's `Overloaded` (the breaker's fail-fast, in tower's words); behind
//! `Buffer`, requests wait and the first one after recovery is the half-open probe. tower's
//! `Timeout` times only the call, not the wait for readiness. Called directly
//! (`chain.generate(..)`), a chain never waits for readiness.
//!
//! # Streaming through a service
//!
//! [`ServiceProvider::new`] needs only `Service<ChatRequest, Response = Completion>`; asked to
//! stream, it makes the completion and delivers it as one chunk, so failover works but the
//! answer arrives whole. [`ServiceProvider::streaming`] also takes
//! `Service<StreamRequest, Response = ChunkStream>` (which [`ProviderService`] and tower's
//! middleware, generic over the request, provide) and streams for real. Middleware sees a
//! streaming call until the stream has started (its response future resolves then): a
//! `ConcurrencyLimit` bounds concurrent stream openings, not whole streams.
//!
//! [`Service`]: tower_service::Service
//! [`Provider`]: crate::Provider
//! [`FallbackChain`]: crate::FallbackChain
//! [`FallbackResult`]: crate::FallbackResult
//! [`AllProvidersFailed`]: crate::AllProvidersFailed
//! [`FallbackStream`]: crate::FallbackStream

mod chain;
mod provider;

pub use chain::{PROBE_RECHECK, StreamingChain};
pub use provider::{CompleteOnly, ProviderService, ServiceProvider, StreamRequest, Streaming};

/// The error type tower middleware produces (`Box<dyn Error + Send + Sync>`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
