//! Shared breaker openings and rate-limit holds.
//!
//! A replica whose breaker opens by its own calls (or that puts a provider on a hold, or sees
//! `QuotaExhausted`, which trips the breaker) writes `backstop:v1:open:<provider>` (or
//! `hold:`) with the period as expiry and publishes it on `backstop:v1:events`. Every other
//! replica applies it on the message and on a re-read every [`REREAD`], so a missed message
//! costs at most that long. Applied changes are `applied` in their [`StateChange`] and are
//! never published again (no echo loop).
//!
//! Probes: the replica that owns the opening probes when its open period ends; the others
//! apply the opening for [`PROBE_GRACE`] longer, so the fleet sends the owner's
//! `half_open_probes`, not one set per replica. The owner's probe success publishes a close
//! (every replica closes), its failure a new, longer opening. If the owner is gone, the
//! others probe when the grace ends. Failure counting stays local: no Redis call per request.
//!
//! A change Redis did not take (it was unreachable) is kept, the latest per provider and kind,
//! and sent again once a re-read reaches Redis, if this replica's breaker still says the same.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use backstop::{Attempt, BreakerState, CircuitBreaker, ErrorKind, Observer, StateChange};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::backend::Backend;

/// The channel every replica listens on (versioned, like the keys).
pub(crate) const CHANNEL: &str = "backstop:v1:events";
const OPEN_PREFIX: &str = "backstop:v1:open:";
const HOLD_PREFIX: &str = "backstop:v1:hold:";
/// How often the shared keys are re-read (a missed message is healed within this).
pub const REREAD: Duration = Duration::from_millis(500);
/// How much longer than the owner a follower keeps an opening, so the owner probes first.
pub const PROBE_GRACE: Duration = Duration::from_secs(5);
/// Backoff of the subscription's reconnects.
const RESUBSCRIBE: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(2));
/// Events waiting to be published; beyond it they are dropped (the local state still holds).
const QUEUE: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Op {
    Open,
    Close,
    Hold,
}

/// One published change.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Message {
    op: Op,
    provider: String,
    replica: String,
    ms: u64,
}

/// A change on its way to Redis, with when this replica decided it.
struct Outgoing {
    message: Message,
    decided: Instant,
}

/// Which unpublished change a newer one replaces: an opening and its close are one story, a
/// hold another.
fn story(m: &Message) -> (String, bool) {
    (m.provider.clone(), m.op == Op::Hold)
}

/// Shares this replica's breaker openings and holds, and applies the fleet's.
pub(crate) struct BreakerShare {
    backend: Arc<Backend>,
    replica: String,
    breakers: ArcSwap<Vec<CircuitBreaker>>,
    tx: mpsc::Sender<Outgoing>,
    script: redis::Script,
    /// When a close last arrived, by provider: a re-read begun before it must not re-apply
    /// the opening it closed.
    closed_at: Mutex<HashMap<String, Instant>>,
    /// This replica's changes Redis did not take, the latest per [`story`], with when each
    /// was decided: sent again once Redis answers.
    unpublished: Mutex<Kept>,
}

/// Unpublished changes: by [`story`], the change and when it was decided.
type Kept = HashMap<(String, bool), (Op, Instant)>;

impl BreakerShare {
    /// Starts publishing, subscribing and re-reading (needs a tokio runtime).
    pub(crate) fn start(backend: Arc<Backend>) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let share = Arc::new(Self {
            backend,
            replica: format!("{:016x}", rand::random::<u64>()),
            breakers: ArcSwap::from_pointee(Vec::new()),
            tx,
            script: redis::Script::new(include_str!("share.lua")),
            closed_at: Mutex::new(HashMap::new()),
            unpublished: Mutex::new(HashMap::new()),
        });
        tokio::spawn(publish(share.clone(), rx));
        tokio::spawn(subscribe(share.clone()));
        tokio::spawn(reread(share.clone()));
        share
    }

    /// The breakers of the config in force.
    pub(crate) fn track(&self, breakers: Vec<CircuitBreaker>) {
        self.breakers.store(Arc::new(breakers));
    }

    /// The observer to register on every breaker and chain.
    pub(crate) fn observer(self: &Arc<Self>) -> Arc<dyn Observer> {
        Arc::new(ShareObserver(Arc::downgrade(self)))
    }

    /// True when a close for `provider` arrived after `since`.
    fn closed_since(&self, provider: &str, since: Instant) -> bool {
        self.closed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(provider)
            .is_some_and(|at| *at >= since)
    }

    fn breaker(&self, name: &str) -> Option<CircuitBreaker> {
        self.breakers
            .load()
            .iter()
            .find(|b| b.name() == name)
            .cloned()
    }

    fn send(&self, op: Op, provider: &str, period: Duration) {
        self.send_decided(op, provider, period, Instant::now());
    }

    fn send_decided(&self, op: Op, provider: &str, period: Duration, decided: Instant) {
        let ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX).max(1);
        let message = Message {
            op,
            provider: provider.to_owned(),
            replica: self.replica.clone(),
            ms,
        };
        // Full: Redis is slow or gone; the change is kept and sent again when it answers.
        if let Err(e) = self.tx.try_send(Outgoing { message, decided }) {
            let Outgoing { message, decided } = e.into_inner();
            self.not_published(&message, decided);
        }
    }

    fn kept(&self) -> MutexGuard<'_, Kept> {
        self.unpublished
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Redis did not take `m`: keep it, unless a later change of the same story is kept.
    fn not_published(&self, m: &Message, decided: Instant) {
        let mut kept = self.kept();
        let entry = kept.entry(story(m)).or_insert((m.op, decided));
        if entry.1 <= decided {
            *entry = (m.op, decided);
        }
    }

    /// Redis took `m`: an older unpublished change of its story is superseded.
    fn published(&self, m: &Message, decided: Instant) {
        let mut kept = self.kept();
        if kept.get(&story(m)).is_some_and(|(_, at)| *at <= decided) {
            kept.remove(&story(m));
        }
    }

    /// Redis answers again: sends the kept changes this replica's breakers still stand by,
    /// each for the time it has left. A close matters only while the fleet may still hold
    /// the opening it ends (the longest open period and the grace).
    fn republish(&self) {
        let kept = std::mem::take(&mut *self.kept());
        for ((provider, _), (op, decided)) in kept {
            let Some(b) = self.breaker(&provider) else {
                continue;
            };
            let period = match op {
                Op::Open if b.state() == BreakerState::Open => b.time_to_admit(),
                Op::Hold => b.hold().remaining().unwrap_or_default(),
                Op::Close
                    if b.state() == BreakerState::Closed
                        && decided.elapsed() < b.config().max_recovery_timeout + PROBE_GRACE =>
                {
                    Duration::ZERO
                }
                _ => continue,
            };
            if op == Op::Close || !period.is_zero() {
                self.send_decided(op, &provider, period, decided);
            }
        }
    }

    /// Applies another replica's change.
    fn apply(&self, m: &Message) {
        if m.replica == self.replica {
            return;
        }
        let Some(b) = self.breaker(&m.provider) else {
            return;
        };
        let period = Duration::from_millis(m.ms);
        match m.op {
            Op::Open => b.open_for(period + PROBE_GRACE),
            Op::Close => {
                self.closed_at
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(m.provider.clone(), Instant::now());
                b.close();
            }
            Op::Hold => b.hold().hold_for(period),
        }
    }
}

struct ShareObserver(Weak<BreakerShare>);

impl Observer for ShareObserver {
    fn on_breaker_change(&self, change: &StateChange<'_>) {
        let Some(share) = self.0.upgrade() else {
            return;
        };
        if change.applied {
            return;
        }
        match (change.from, change.to, change.open_for) {
            (_, BreakerState::Open, Some(period)) => share.send(Op::Open, change.breaker, period),
            (BreakerState::HalfOpen, BreakerState::Closed, _) => {
                share.send(Op::Close, change.breaker, Duration::ZERO);
            }
            _ => {}
        }
    }

    fn on_hold(&self, _chain: &str, provider: &str, length: Duration) {
        if let Some(share) = self.0.upgrade() {
            share.send(Op::Hold, provider, length);
        }
    }

    fn on_attempt(&self, _chain: &str, attempt: &Attempt) {
        let quota = attempt
            .error
            .as_ref()
            .is_some_and(|e| e.kind == ErrorKind::QuotaExhausted);
        if let (true, Some(share)) = (quota, self.0.upgrade()) {
            // An exhausted quota does not come back in seconds: open now (and share it).
            if let Some(b) = share.breaker(&attempt.provider)
                && b.state() == BreakerState::Closed
            {
                b.trip();
            }
        }
    }
}

async fn publish(share: Arc<BreakerShare>, mut rx: mpsc::Receiver<Outgoing>) {
    while let Some(Outgoing {
        message: m,
        decided,
    }) = rx.recv().await
    {
        let Ok(text) = serde_json::to_string(&m) else {
            continue;
        };
        let (prefix, op) = match m.op {
            Op::Open => (OPEN_PREFIX, "open"),
            Op::Close => (OPEN_PREFIX, "close"),
            Op::Hold => (HOLD_PREFIX, "hold"),
        };
        let mut invocation = share.script.prepare_invoke();
        invocation
            .key(format!("{prefix}{}", m.provider))
            .arg(op)
            .arg(&m.replica)
            .arg(m.ms)
            .arg(CHANNEL)
            .arg(text);
        // A failure is recorded by the backend (gauge, log); the change stays local until
        // a re-read reaches Redis and sends it again.
        match share
            .backend
            .call(|mut c| async move { invocation.invoke_async::<i64>(&mut c).await })
            .await
        {
            Ok(_) => share.published(&m, decided),
            Err(_) => share.not_published(&m, decided),
        }
    }
}

async fn subscribe(share: Arc<BreakerShare>) {
    let mut backoff = RESUBSCRIBE.0;
    loop {
        if let Some(mut messages) = subscription(&share).await {
            backoff = RESUBSCRIBE.0;
            while let Some(msg) = messages.next().await {
                let parsed = msg
                    .get_payload::<String>()
                    .ok()
                    .and_then(|text| serde_json::from_str::<Message>(&text).ok());
                if let Some(m) = parsed {
                    share.apply(&m);
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(RESUBSCRIBE.1);
    }
}

async fn subscription(share: &BreakerShare) -> Option<redis::aio::PubSubStream> {
    let connect = async {
        let mut pubsub = share.backend.client().get_async_pubsub().await?;
        pubsub.subscribe(CHANNEL).await?;
        Ok::<_, redis::RedisError>(pubsub.into_on_message())
    };
    match tokio::time::timeout(Duration::from_secs(1), connect).await {
        Ok(Ok(stream)) => Some(stream),
        _ => None,
    }
}

/// Re-reads every shared opening and hold: heals missed messages, and keeps calling Redis
/// while it is down, so the connection is re-established when it is back.
async fn reread(share: Arc<BreakerShare>) {
    let mut tick = tokio::time::interval(REREAD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let started = Instant::now();
        let breakers = share.breakers.load_full();
        let mut pipe = redis::pipe();
        for b in breakers.iter() {
            let open = format!("{OPEN_PREFIX}{}", b.name());
            let hold = format!("{HOLD_PREFIX}{}", b.name());
            pipe.get(&open).pttl(&open).get(&hold).pttl(&hold);
        }
        if breakers.is_empty() {
            pipe.cmd("PING");
        }
        let read = share
            .backend
            .call(|mut c| async move { pipe.query_async::<Vec<redis::Value>>(&mut c).await })
            .await;
        let Ok(values) = read else {
            continue;
        };
        share.republish();
        for (b, v) in breakers.iter().zip(values.chunks_exact(4)) {
            let owner = |i: usize| {
                redis::from_redis_value_ref::<Option<String>>(&v[i])
                    .ok()
                    .flatten()
            };
            let ttl = |i: usize| {
                redis::from_redis_value_ref::<i64>(&v[i + 1])
                    .ok()
                    .and_then(|ms| u64::try_from(ms).ok())
                    .filter(|ms| *ms > 0)
            };
            for (i, op) in [(0, Op::Open), (2, Op::Hold)] {
                if op == Op::Open && share.closed_since(b.name(), started) {
                    continue;
                }
                if let (Some(replica), Some(ms)) = (owner(i), ttl(i)) {
                    share.apply(&Message {
                        op,
                        provider: b.name().to_owned(),
                        replica,
                        ms,
                    });
                }
            }
        }
    }
}
