//! Load shedding before the process runs out of descriptors: the open-file limit raised at
//! start-up, connection and in-flight caps derived from it, and admission under the cap.
//!
//! Each proxied request holds about two descriptors (the client's connection and one
//! upstream), so the default cap is half of what is left of the open-file limit after a
//! reserve for the listener, logs, the runtime and idle pooled connections.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{MAX_CONNECTIONS_LIMIT, ServerConfig};

/// Descriptors kept out of the connection budget.
pub const FD_RESERVE: u64 = 64;

/// The caps in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most open client connections; beyond it connections are answered 503 and closed.
    pub max_connections: usize,
    /// Most chat requests in flight; beyond it they are answered 503.
    pub max_in_flight: usize,
}

impl Limits {
    /// The configured caps, the unset ones derived from the current open-file limit.
    pub fn resolve(server: &ServerConfig) -> Self {
        let derived = open_file_limit().map_or(MAX_CONNECTIONS_LIMIT, connections_for);
        let max_connections = server.max_connections.unwrap_or(derived);
        Self {
            max_connections,
            max_in_flight: server.max_in_flight.unwrap_or(max_connections),
        }
    }
}

/// The connection cap an open-file limit affords.
pub fn connections_for(fd_limit: u64) -> usize {
    let budget = fd_limit.saturating_sub(FD_RESERVE) / 2;
    usize::try_from(budget)
        .unwrap_or(usize::MAX)
        .clamp(1, MAX_CONNECTIONS_LIMIT)
}

/// The soft open-file limit, where the platform has one.
pub fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rlimit::getrlimit(rlimit::Resource::NOFILE)
            .ok()
            .map(|(soft, _)| soft)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Raises the soft open-file limit to the hard one; returns (before, after).
pub fn raise_open_file_limit() -> std::io::Result<(u64, u64)> {
    #[cfg(unix)]
    {
        let (before, _) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
        let after = rlimit::increase_nofile_limit(u64::MAX)?;
        Ok((before, after))
    }
    #[cfg(not(unix))]
    {
        Ok((0, 0))
    }
}

/// Admission of requests under `max_in_flight`; a permit is held until the answer (the whole
/// stream, for streams) is done.
#[derive(Debug, Clone)]
pub struct InFlight(Arc<Semaphore>);

impl InFlight {
    /// A cap of `max` requests at once.
    pub fn new(max: usize) -> Self {
        Self(Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))))
    }

    /// A slot, or `None` when the cap is reached (shed the request).
    pub fn try_admit(&self) -> Option<OwnedSemaphorePermit> {
        self.0.clone().try_acquire_owned().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_a_reserve_and_two_descriptors_per_request() {
        assert_eq!(connections_for(1024), 480);
        assert_eq!(connections_for(256), 96);
        assert_eq!(connections_for(10), 1, "never zero");
        assert_eq!(connections_for(u64::MAX), MAX_CONNECTIONS_LIMIT);
    }

    #[test]
    fn in_flight_admits_up_to_the_cap() {
        let cap = InFlight::new(2);
        let a = cap.try_admit();
        let b = cap.try_admit();
        assert!(a.is_some() && b.is_some());
        assert!(cap.try_admit().is_none());
        drop(a);
        assert!(cap.try_admit().is_some());
    }
}
