//! The deterministic reply: a header naming the provider and echoing the prompt, then
//! filler pieces. Piece `i` is what streaming chunk `i` carries; the non-streamed text
//! is their concatenation.

use super::Flavor;

/// Characters of the last user message echoed in the reply.
pub(crate) const ECHO_CHARS: usize = 60;

const FILLER: [&str; 12] = [
    " This",
    " reply",
    " is",
    " deterministic",
    " and",
    " comes",
    " from",
    " backstop-sim,",
    " a",
    " provider",
    " simulator",
    " for tests.",
];

/// The reply for one request: a per-request header piece, then static filler pieces.
#[derive(Debug)]
pub(crate) struct Reply {
    header: String,
    chunks: usize,
}

impl Reply {
    /// The reply split into `chunks` (≥ 1) pieces.
    pub(crate) fn new(flavor: Flavor, last_user: &str, chunks: usize) -> Self {
        let echo_end = last_user
            .char_indices()
            .nth(ECHO_CHARS)
            .map_or(last_user.len(), |(i, _)| i);
        Self {
            header: format!(
                "Simulated answer from {} to: {}.",
                flavor.name(),
                &last_user[..echo_end]
            ),
            chunks: chunks.max(1),
        }
    }

    /// Number of pieces.
    pub(crate) fn len(&self) -> usize {
        self.chunks
    }

    /// The first `n` pieces, in order.
    pub(crate) fn pieces(&self, n: usize) -> impl Iterator<Item = &str> {
        std::iter::once(self.header.as_str())
            .chain(FILLER.iter().copied().cycle().take(self.chunks - 1))
            .take(n)
    }

    /// The whole text: every piece concatenated.
    pub(crate) fn text(&self) -> String {
        let mut s = String::with_capacity(self.header.len() + self.chunks * 12);
        self.pieces(self.chunks).for_each(|p| s.push_str(p));
        s
    }
}

/// The whole text the simulator answers to `prompt` on `provider`'s route (`"openai"`,
/// `"anthropic"` or `"groq"`) with `chunks` pieces; `None` for another name. Lets tests check
/// answers without restating the reply's format.
pub fn reply_text(provider: &str, prompt: &str, chunks: usize) -> Option<String> {
    let flavor = [Flavor::OpenAi, Flavor::Anthropic, Flavor::Groq]
        .into_iter()
        .find(|f| f.name() == provider)?;
    Some(Reply::new(flavor, prompt, chunks).text())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_echoes_60_chars_and_count_matches() {
        let long = "é".repeat(100);
        let r = Reply::new(Flavor::Anthropic, &long, 20);
        let p: Vec<&str> = r.pieces(usize::MAX).collect();
        assert_eq!(p.len(), 20);
        assert_eq!(r.len(), 20);
        assert_eq!(
            p[0],
            format!("Simulated answer from anthropic to: {}.", "é".repeat(60))
        );
        assert_eq!(r.text(), p.concat());
        assert_eq!(Reply::new(Flavor::Groq, "hi", 0).pieces(9).count(), 1);
    }
}
