//! The deterministic reply: a header naming the provider and echoing the prompt, then
//! filler pieces. Piece `i` is what streaming chunk `i` carries; the non-streamed text
//! is their concatenation.

use super::{Flavor, Piece};

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

/// The reply for one request: its pieces in order (a per-request header piece, then static
/// filler pieces; for a continuation, the rest of an earlier reply).
#[derive(Debug)]
pub(crate) struct Reply {
    pieces: Vec<String>,
    /// For tool calls: the call each piece belongs to (empty: one text).
    calls: Vec<usize>,
}

impl Reply {
    /// The reply split into `chunks` (≥ 1) pieces.
    pub(crate) fn new(flavor: Flavor, last_user: &str, chunks: usize) -> Self {
        let header = format!(
            "Simulated answer from {} to: {}.",
            flavor.name(),
            prefix(last_user, ECHO_CHARS)
        );
        let pieces = std::iter::once(header)
            .chain(
                FILLER
                    .iter()
                    .copied()
                    .cycle()
                    .take(chunks.max(1) - 1)
                    .map(str::to_owned),
            )
            .collect();
        Self {
            pieces,
            calls: Vec::new(),
        }
    }

    /// The answer after a tool returned `result`: a header quoting it, then filler.
    pub(crate) fn after_tool(flavor: Flavor, result: &str, chunks: usize) -> Self {
        let mut r = Self::new(flavor, "", chunks);
        r.pieces[0] = format!(
            "Simulated answer from {} after the tool returned: {}.",
            flavor.name(),
            prefix(result, ECHO_CHARS)
        );
        r
    }

    /// `text` (JSON, tool-call arguments) cut into at most `chunks` pieces of about equal size.
    pub(crate) fn split(text: &str, chunks: usize) -> Self {
        let per = text.len().div_ceil(chunks.max(1)).max(1);
        let mut pieces = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let mut end = per.min(rest.len());
            while !rest.is_char_boundary(end) {
                end += 1;
            }
            pieces.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
        if pieces.is_empty() {
            pieces.push(String::new());
        }
        Self {
            pieces,
            calls: Vec::new(),
        }
    }

    /// Tool calls with these arguments, each cut into about `chunks / calls` pieces.
    pub(crate) fn tool_calls(arguments: &[String], chunks: usize) -> Self {
        let per = chunks.div_ceil(arguments.len().max(1));
        let mut out = Self {
            pieces: Vec::new(),
            calls: Vec::new(),
        };
        for (i, args) in arguments.iter().enumerate() {
            let part = Self::split(args, per);
            out.calls.extend(std::iter::repeat_n(i, part.pieces.len()));
            out.pieces.extend(part.pieces);
        }
        out
    }

    /// The continuation of `partial`, an answer cut short: if `partial` is how some provider's
    /// reply to `prompt` (of `chunks` pieces) begins, the rest of that reply, in the pieces it
    /// would have been streamed in — the first `overlap` characters of it repeating the end of
    /// `partial`, as a model restating where it stopped would. A `partial` that is the whole
    /// reply (cut before its finish) has nothing left but that overlap. Otherwise a short
    /// generic tail.
    pub(crate) fn continuation(
        flavor: Flavor,
        prompt: &str,
        partial: &str,
        chunks: usize,
        overlap: usize,
    ) -> Self {
        for f in [Flavor::OpenAi, Flavor::Anthropic, Flavor::Groq] {
            let full = Reply::new(f, prompt, chunks);
            let text = full.text();
            if !text.starts_with(partial) {
                continue;
            }
            let mut start = partial.len();
            let mut repeat = 0;
            while repeat < overlap && start > 0 {
                start -= 1;
                while !partial.is_char_boundary(start) {
                    start -= 1;
                }
                repeat += 1;
            }
            let mut pieces = Vec::new();
            let mut offset = 0;
            for p in full.pieces {
                let end = offset + p.len();
                if end > start {
                    let from = start.saturating_sub(offset);
                    pieces.push(p[from..].to_owned());
                }
                offset = end;
            }
            return Self {
                pieces,
                calls: Vec::new(),
            };
        }
        Self {
            pieces: vec![format!(" (continued by {}).", flavor.name())],
            calls: Vec::new(),
        }
    }

    /// Number of pieces.
    pub(crate) fn len(&self) -> usize {
        self.pieces.len()
    }

    /// The first `n` pieces, in order.
    #[cfg(test)]
    pub(crate) fn pieces(&self, n: usize) -> impl Iterator<Item = &str> {
        self.pieces.iter().map(String::as_str).take(n)
    }

    /// The first `n` pieces as streamed: with the call each belongs to.
    pub(crate) fn stream_pieces(&self, n: usize) -> impl Iterator<Item = Piece<'_>> {
        self.pieces.iter().enumerate().take(n).map(|(i, text)| {
            let call = self.calls.get(i).copied().unwrap_or(0);
            Piece {
                text,
                call,
                starts_call: i == 0 || self.calls.get(i - 1).copied().unwrap_or(0) != call,
            }
        })
    }

    /// The whole text of each call (one text when the reply is not tool calls).
    pub(crate) fn texts(&self) -> Vec<String> {
        if self.calls.is_empty() {
            return vec![self.text()];
        }
        let mut out: Vec<String> = Vec::new();
        for p in self.stream_pieces(usize::MAX) {
            if p.starts_call {
                out.push(String::new());
            }
            if let Some(last) = out.last_mut() {
                last.push_str(p.text);
            }
        }
        out
    }

    /// The whole text: every piece concatenated.
    pub(crate) fn text(&self) -> String {
        self.pieces.concat()
    }
}

/// The first `n` characters of `s`.
fn prefix(s: &str, n: usize) -> &str {
    &s[..s.char_indices().nth(n).map_or(s.len(), |(i, _)| i)]
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

    #[test]
    fn split_pieces_concatenate_to_the_text() {
        let r = Reply::split(r#"{"city":"Zürich"}"#, 4);
        assert_eq!(r.len(), 4);
        assert_eq!(r.text(), r#"{"city":"Zürich"}"#);
        assert_eq!(Reply::split("{}", 8).len(), 2);
    }

    #[test]
    fn a_continuation_is_the_rest_of_the_cut_reply() {
        let full = Reply::new(Flavor::OpenAi, "why?", 6).text();
        for cut in [1, 20, 40, full.len() - 1, full.len()] {
            let partial = &full[..cut];
            let c = Reply::continuation(Flavor::Anthropic, "why?", partial, 6, 0);
            assert_eq!(format!("{partial}{}", c.text()), full, "cut at {cut}");
        }
        let whole = Reply::continuation(Flavor::Groq, "why?", &full, 6, 0);
        assert_eq!(
            whole.len(),
            0,
            "a reply cut only before its finish has nothing left"
        );
        let whole = Reply::continuation(Flavor::Groq, "why?", &full, 6, 3);
        assert_eq!(whole.text(), full[full.len() - 3..], "but a restatement");
        let c = Reply::continuation(Flavor::Anthropic, "why?", &full[..30], 6, 4);
        assert_eq!(c.text(), full[26..], "repeats the last 4 characters");
        let c = Reply::continuation(Flavor::Groq, "why?", "something else", 6, 0);
        assert_eq!(c.text(), " (continued by groq).");
    }
}
