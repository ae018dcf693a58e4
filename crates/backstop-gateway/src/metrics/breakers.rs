//! Breaker state and rate-limit holds, read from the running config's breakers at scrape time
//! (an open breaker becomes half-open by the clock, not by an event).

use std::sync::Arc;

use arc_swap::ArcSwap;
use backstop::CircuitBreaker;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

use super::BREAKER_STATES;

#[derive(Debug)]
pub(super) struct BreakerCollector {
    breakers: Arc<ArcSwap<Vec<CircuitBreaker>>>,
}

impl BreakerCollector {
    pub(super) fn new(breakers: Arc<ArcSwap<Vec<CircuitBreaker>>>) -> Self {
        Self { breakers }
    }
}

impl Collector for BreakerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let breakers = self.breakers.load();
        if breakers.is_empty() {
            return Ok(());
        }
        {
            let mut family = encoder.encode_descriptor(
                "backstop_breaker_state",
                "Circuit breaker state per provider: 1 for the state it is in, 0 for the others",
                None,
                MetricType::Gauge,
            )?;
            for b in breakers.iter() {
                let now = b.state();
                for s in BREAKER_STATES {
                    let labels = [("provider", b.name()), ("state", s.as_str())];
                    ConstGauge::new(i64::from(now == s)).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "backstop_rate_limit_hold_seconds",
            "Time left on each provider's rate-limit hold (0: not held)",
            None,
            MetricType::Gauge,
        )?;
        for b in breakers.iter() {
            let left = b.hold().remaining().unwrap_or_default().as_secs_f64();
            let labels = [("provider", b.name())];
            ConstGauge::new(left).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
