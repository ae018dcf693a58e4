//! The one log line per request (target `backstop::request`): its id, who answered, after how
//! many attempts, whether a hedge raced, who continued a broken stream, and each provider's own
//! id for its call.

use tokio::time::Instant;

use backstop::{Attempt, AttemptOutcome, Contribution, FinishReason};

/// The facts of a finished request.
pub(crate) struct RequestLog<'a> {
    /// The request's id (the caller's `x-request-id`, or ours).
    pub(crate) request_id: &'a str,
    pub(crate) chain: &'a str,
    pub(crate) provider: Option<&'a str>,
    pub(crate) attempts: &'a [Attempt],
    pub(crate) started: Instant,
    pub(crate) status: u16,
    pub(crate) stream: bool,
    /// The provider's own value (what the client got is its OpenAI equivalent).
    pub(crate) finish_reason: Option<&'a FinishReason>,
    /// The providers that continued a broken stream (the first contribution excluded).
    pub(crate) resumed: &'a [Contribution],
}

impl RequestLog<'_> {
    /// A request that ended before any provider was asked.
    pub(crate) fn unanswered<'a>(
        request_id: &'a str,
        chain: &'a str,
        started: Instant,
        status: u16,
        stream: bool,
    ) -> RequestLog<'a> {
        RequestLog {
            request_id,
            chain,
            provider: None,
            attempts: &[],
            started,
            status,
            stream,
            finish_reason: None,
            resumed: &[],
        }
    }

    /// Writes the line. `hedged` is true when two attempts raced (the loser is `cancelled`);
    /// `resumed` lists `provider@offset`, `-` when no one did; `upstream_ids` lists each
    /// attempt's `provider:id` (the provider's own request id), `-` when none sent one.
    pub(crate) fn emit(&self) {
        // The fields below are built only for a subscriber that wants the line (not at `warn`).
        // Asked as an event: the log layer takes events only, and a plain `enabled!` is a hint.
        if !tracing::enabled!(
            kind: tracing::metadata::Kind::EVENT,
            target: "backstop::request",
            tracing::Level::INFO
        ) {
            return;
        }
        let upstream_ids = self
            .attempts
            .iter()
            .filter_map(|a| {
                a.upstream_request_id
                    .as_deref()
                    .map(|id| format!("{}:{id}", a.provider))
            })
            .collect::<Vec<_>>()
            .join(",");
        let resumed = if self.resumed.is_empty() {
            "-".to_owned()
        } else {
            self.resumed
                .iter()
                .map(|c| format!("{}@{}", c.provider, c.offset))
                .collect::<Vec<_>>()
                .join(",")
        };
        let hedged = self
            .attempts
            .iter()
            .any(|a| a.outcome == AttemptOutcome::Cancelled);
        tracing::info!(
            target: "backstop::request",
            request_id = self.request_id,
            chain = self.chain,
            provider_used = self.provider.unwrap_or("-"),
            attempts = self.attempts.len(),
            latency_ms = self.started.elapsed().as_secs_f64() * 1000.0,
            status = self.status,
            stream = self.stream,
            finish_reason = self.finish_reason.map_or("-", FinishReason::as_str),
            hedged,
            resumed = resumed.as_str(),
            upstream_ids = if upstream_ids.is_empty() { "-" } else { upstream_ids.as_str() },
            "request"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use backstop::ProviderError;

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn line(log: &RequestLog<'_>) -> String {
        let buf = Buf::default();
        let w = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || w.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || log.emit());
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn the_line_names_the_hedge_race_and_the_resumes() {
        let attempts = [
            Attempt::new(
                "openai",
                AttemptOutcome::Cancelled,
                None,
                Duration::from_millis(200),
            ),
            Attempt::new(
                "anthropic",
                AttemptOutcome::Success,
                None,
                Duration::from_millis(90),
            )
            .with_upstream_request_id("req_011CX"),
        ];
        let resumed = [Contribution::new("groq", 412)];
        let l = line(&RequestLog {
            request_id: "client-7",
            chain: "default",
            provider: Some("anthropic"),
            attempts: &attempts,
            started: Instant::now(),
            status: 200,
            stream: true,
            finish_reason: Some(&FinishReason::Stop),
            resumed: &resumed,
        });
        for field in [
            "chain=\"default\"",
            "provider_used=\"anthropic\"",
            "attempts=2",
            "status=200",
            "stream=true",
            "finish_reason=\"stop\"",
            "hedged=true",
            "resumed=\"groq@412\"",
            "request_id=\"client-7\"",
            "upstream_ids=\"anthropic:req_011CX\"",
        ] {
            assert!(l.contains(field), "{field} missing from {l}");
        }
    }

    #[test]
    fn a_plain_failure_is_neither_hedged_nor_resumed() {
        let attempts = [Attempt::new(
            "openai",
            AttemptOutcome::Failed,
            Some(ProviderError::new(backstop::ErrorKind::Server, "boom")),
            Duration::from_millis(5),
        )];
        let l = line(&RequestLog {
            attempts: &attempts,
            ..RequestLog::unanswered("id-1", "default", Instant::now(), 502, false)
        });
        for field in [
            "request_id=\"id-1\"",
            "upstream_ids=\"-\"",
            "provider_used=\"-\"",
            "attempts=1",
            "status=502",
            "hedged=false",
            "resumed=\"-\"",
        ] {
            assert!(l.contains(field), "{field} missing from {l}");
        }
    }
}
