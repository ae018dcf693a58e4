//! A scanner for the chunk shape nearly every OpenAI stream event has: one choice whose delta
//! holds text (or a refusal, or only a role) and a finish reason or null, or no choice and
//! the usage (`include_usage`'s last chunk). serde's derived parser spent ~5,700
//! instructions on each such 220-byte event (a third of a proxied stream, BENCHMARKS.md),
//! and 7,200 on the usage chunk; this reads them in a fraction. Anything else (tool calls,
//! an error, a second choice, a duplicate key, a type serde would refuse, an escape it cannot
//! read) makes it answer `None`, and the event goes to serde as before: a chunk read here is
//! always the one serde would have read (`fast_chunk_agrees_with_serde` checks that).

use std::borrow::Cow;

use super::fast_completion::usage;
use super::json_cursor::Cursor;
use super::{ChunkChoice, Delta, WireUsage};

/// What the last chunk of a stream read here said, so the next ones are read in less. A
/// stream's chunks start with the same members before `"choices"` (id, object, created,
/// model, fingerprint): a chunk that starts with the same bytes is read from its `"choices"`
/// key on. Most chunks then differ only in their delta's content string: a chunk equal to
/// the last one but for that string is read from the string alone. Identical bytes leave the
/// reader in the same state, and swapping one JSON string for another changes nothing else,
/// so either way the chunk read is the one a full read gives.
#[derive(Debug, Default)]
pub(super) struct Known {
    /// The last chunk read here, when its members before `"choices"` are known (exactly its
    /// size: 10,000 open streams hold one each).
    bytes: Box<[u8]>,
    /// Where those members end in `bytes`.
    choices_at: usize,
    /// The `model` member among them.
    model: ModelSpan,
    /// Its delta's content string, when it had one, and what else the chunk said.
    content: Option<Template>,
}

/// A `model` member: absent, null, or a string without escapes at this byte range.
type ModelSpan = Option<Option<(usize, usize)>>;

/// A chunk with a content string at `at` (quotes included); the rest of what it said.
#[derive(Debug)]
struct Template {
    at: (usize, usize),
    refusal: Option<String>,
    finish: Option<String>,
    usage: Option<WireUsage>,
}

/// A chunk read here: at most one choice, so no `Vec` per chunk.
pub(super) struct FastChunk<'a> {
    pub(super) model: Option<Cow<'a, str>>,
    pub(super) choice: Option<ChunkChoice>,
    pub(super) usage: Option<WireUsage>,
}

impl Known {
    /// Whether `data` starts with the members before `"choices"` already read.
    fn matches(&self, data: &str) -> bool {
        self.choices_at > 0
            && self
                .bytes
                .get(..self.choices_at)
                .is_some_and(|p| data.as_bytes().starts_with(p))
    }

    /// `data` read as the last chunk with another content string, when it is one.
    fn reread<'a>(&self, data: &'a str) -> Option<FastChunk<'a>> {
        let t = self.content.as_ref()?;
        let (start, end) = t.at;
        let (head, tail) = (self.bytes.get(..start)?, self.bytes.get(end..)?);
        let d = data.as_bytes();
        let string_end = d.len().checked_sub(tail.len())?;
        if string_end < start + 2 || !d.starts_with(head) || !d.ends_with(tail) {
            return None;
        }
        let mut c = Cursor::at(data, start);
        let content = c.string()?;
        if c.pos() != string_end {
            return None;
        }
        Some(FastChunk {
            model: self
                .model
                .flatten()
                .and_then(|(a, b)| data.get(a..b))
                .map(Cow::Borrowed),
            choice: Some(ChunkChoice {
                delta: Some(Delta {
                    content: Some(content.into_owned()),
                    refusal: t.refusal.clone(),
                    tool_calls: None,
                }),
                finish_reason: t.finish.clone(),
            }),
            usage: t.usage,
        })
    }
}

/// The chunk, when `data` has the common shape; `None` sends it to serde. `known` is what the
/// last chunk of the stream read here said, and is updated from this one.
pub(super) fn fast_chunk<'a>(data: &'a str, known: &mut Known) -> Option<FastChunk<'a>> {
    if let Some(chunk) = known.reread(data) {
        return Some(chunk);
    }
    let resumed = known.matches(data);
    let mut c = Cursor::new(data);
    let mut model: Option<Cow<'_, str>> = None;
    // `model` as `Known` keeps it, while it can be kept (before `choices`, no escape).
    let mut model_span: ModelSpan = None;
    let mut keepable = true;
    let mut seen_model = false;
    if resumed {
        c = Cursor::at(data, known.choices_at);
        if let Some(span) = known.model {
            seen_model = true;
            model = span.and_then(|(a, b)| data.get(a..b)).map(Cow::Borrowed);
        }
    }
    let mut choice: Option<ChunkChoice> = None;
    let mut content_at: Option<(usize, usize)> = None;
    let mut read_usage: Option<WireUsage> = None;
    let mut prefix_end: Option<(usize, ModelSpan)> = None;
    let (mut seen_choices, mut seen_usage, mut seen_error) = (false, false, false);
    let read = |c: &mut Cursor<'a>, key: &[u8]| {
        match key {
            b"model" => {
                Cursor::first(&mut seen_model)?;
                let at = c.value_at();
                model = c.string_or_null()?;
                model_span = Some(match &model {
                    None => None,
                    Some(Cow::Borrowed(_)) => Some((at + 1, c.pos() - 1)),
                    Some(Cow::Owned(_)) => {
                        keepable = false;
                        None
                    }
                });
                // After `choices`, a content template would not hold the model.
                keepable &= !seen_choices;
            }
            b"choices" => {
                Cursor::first(&mut seen_choices)?;
                if !seen_usage && !seen_error && keepable {
                    prefix_end = Some((c.key_at(), model_span));
                }
                choice = only_choice(c, &mut content_at)?;
            }
            b"usage" => {
                Cursor::first(&mut seen_usage)?;
                read_usage = usage(c)?;
            }
            // Present and null only; an error goes to serde.
            b"error" => {
                Cursor::first(&mut seen_error)?;
                c.null()?;
            }
            _ => c.skip_value(0)?,
        }
        Some(())
    };
    if resumed {
        c.members(read)?;
    } else {
        c.object(read)?;
    }
    if !c.at_end() {
        return None;
    }
    if !resumed {
        (known.choices_at, known.model) = prefix_end.unwrap_or_default();
    }
    known.bytes = Box::default();
    known.content = None;
    if known.choices_at > 0 {
        known.bytes = data.as_bytes().into();
        let delta = choice.as_ref().and_then(|c| c.delta.as_ref());
        known.content = content_at
            .filter(|_| keepable)
            .zip(delta)
            .map(|(at, d)| Template {
                at,
                refusal: d.refusal.clone(),
                finish: choice.as_ref().and_then(|c| c.finish_reason.clone()),
                usage: read_usage,
            });
    }
    Some(FastChunk {
        model,
        choice,
        usage: read_usage,
    })
}

/// `[]` or `[choice]` (a second choice goes to serde); `content_at` gets where the delta's
/// content string lies.
fn only_choice(
    c: &mut Cursor<'_>,
    content_at: &mut Option<(usize, usize)>,
) -> Option<Option<ChunkChoice>> {
    c.eat(b'[')?;
    if c.eat(b']').is_some() {
        return Some(None);
    }
    let mut delta: Option<Delta> = None;
    let mut finish: Option<String> = None;
    let (mut seen_delta, mut seen_finish) = (false, false);
    c.object(|c, key| {
        match key {
            b"delta" => {
                Cursor::first(&mut seen_delta)?;
                delta = read_delta(c, content_at)?;
            }
            b"finish_reason" => {
                Cursor::first(&mut seen_finish)?;
                finish = c.string_or_null()?.map(Cow::into_owned);
            }
            _ => c.skip_value(0)?,
        }
        Some(())
    })?;
    c.eat(b']')?;
    Some(Some(ChunkChoice {
        delta,
        finish_reason: finish,
    }))
}

/// `{"role":..,"content":..,"refusal":..}` or null; any other member but a few known
/// harmless ones goes to serde.
fn read_delta(
    c: &mut Cursor<'_>,
    content_at: &mut Option<(usize, usize)>,
) -> Option<Option<Delta>> {
    if c.peek()? == b'n' {
        c.null()?;
        return Some(None);
    }
    let mut content: Option<String> = None;
    let mut refusal: Option<String> = None;
    let (mut seen_content, mut seen_refusal) = (false, false);
    c.object(|c, key| {
        match key {
            b"content" => {
                Cursor::first(&mut seen_content)?;
                let at = c.value_at();
                content = c.string_or_null()?.map(Cow::into_owned);
                *content_at = content.is_some().then(|| (at, c.pos()));
            }
            b"refusal" => {
                Cursor::first(&mut seen_refusal)?;
                refusal = c.string_or_null()?.map(Cow::into_owned);
            }
            b"tool_calls" => return None,
            _ => c.skip_value(0)?,
        }
        Some(())
    })?;
    Some(Some(Delta {
        content,
        refusal,
        tool_calls: None,
    }))
}

#[cfg(test)]
mod tests {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    use super::super::WireChunk;
    use super::super::json_cursor::generate::{
        maybe, mutate, object, pick, scalar, string, string_or,
    };
    use super::*;

    /// What `on_event` reads of a chunk.
    #[derive(Debug, PartialEq)]
    struct View {
        model: Option<String>,
        choices: usize,
        content: Option<String>,
        refusal: Option<String>,
        tool_calls: bool,
        finish: Option<String>,
        usage: Option<WireUsage>,
        error: bool,
    }

    fn view(c: WireChunk<'_>) -> View {
        let first = c.choices.first();
        let delta = first.and_then(|f| f.delta.as_ref());
        View {
            model: c.model.map(Cow::into_owned),
            choices: c.choices.len(),
            content: delta.and_then(|d| d.content.clone()),
            refusal: delta.and_then(|d| d.refusal.clone()),
            tool_calls: delta.is_some_and(|d| d.tool_calls.is_some()),
            finish: first.and_then(|f| f.finish_reason.clone()),
            usage: c.usage,
            error: c.error.is_some(),
        }
    }

    fn serde_view(data: &str) -> Option<View> {
        serde_json::from_str::<WireChunk<'_>>(data).ok().map(view)
    }

    /// The first chunk of a stream: nothing known yet.
    fn fresh(data: &str) -> Option<WireChunk<'_>> {
        read(data, &mut Known::default())
    }

    /// A chunk read here, in serde's shape.
    fn read<'a>(data: &'a str, known: &mut Known) -> Option<WireChunk<'a>> {
        fast_chunk(data, known).map(|c| WireChunk {
            model: c.model,
            choices: c.choice.into_iter().collect(),
            usage: c.usage,
            error: None,
        })
    }

    const SIM: &str = r#"{"id":"chatcmpl-sim-1","object":"chat.completion.chunk","created":1796146429,"model":"m","system_fingerprint":"fp_sim","choices":[{"index":0,"delta":{"content":" This"},"logprobs":null,"finish_reason":null}]}"#;

    #[test]
    fn the_common_shapes_are_read_here_as_serde_reads_them() {
        let documented = [
            SIM,
            // OpenAI's documented stream: role first, then content, then the finish.
            r#"{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}"#,
            // With include_usage every chunk says "usage":null; an obfuscation pad; escapes.
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","service_tier":"default","choices":[{"index":0,"delta":{"content":"line\none \"quoted\" \u00e9 \ud83d\ude00"},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"a1b2"}"#,
            r#" { "model" : null , "choices" : [ { "delta" : { "refusal" : "no" } } ] } "#,
            // include_usage's last chunk: no choice, the usage and its details.
            r#"{"id":"chatcmpl-sim-4","object":"chat.completion.chunk","created":1796226716,"model":"x","system_fingerprint":"fp_sim","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":16,"total_tokens":17,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#,
        ];
        for data in documented {
            let fast = fresh(data).unwrap_or_else(|| panic!("not read here: {data}"));
            assert_eq!(Some(view(fast)), serde_view(data), "{data}");
        }
        let c = fresh(documented[3]).unwrap();
        assert_eq!(
            c.choices[0].delta.as_ref().unwrap().content.as_deref(),
            Some("line\none \"quoted\" \u{e9} \u{1f600}")
        );
        let last = fresh(documented[5]).unwrap();
        assert!(last.choices.is_empty());
        let usage = last.usage.unwrap();
        assert_eq!(
            (usage.prompt_tokens, usage.completion_tokens),
            (Some(1), Some(16))
        );
        assert_eq!(usage.prompt_tokens_details.unwrap().cached_tokens, Some(0));
    }

    #[test]
    fn other_shapes_go_to_serde() {
        for data in [
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"f","arguments":""}}]}}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":1.5}}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":1},"usage":null}"#,
            r#"{"error":{"message":"boom"}}"#,
            r#"{"choices":[{"delta":{"content":"a"}},{"delta":{"content":"b"}}]}"#,
            r#"{"model":"a","model":"b","choices":[]}"#,
            r#"{"mod\u0065l":"a","choices":[{"delta":{}}]}"#,
            r#"{"choices":[{"delta":{"content":5}}]}"#,
            r#"{"choices":[{"delta":{"content":"a"}}]} x"#,
            "{\"choices\":[{\"delta\":{\"content\":\"raw\u{1}control\"}}]}",
            r#"{"created":01,"choices":[{"delta":{}}]}"#,
            r#"{"choices":null}"#,
        ] {
            assert!(fresh(data).is_none(), "read here: {data}");
        }
    }

    /// Random chunks (members in any order, extra and duplicate members, odd types, escapes,
    /// nested values, then sometimes cut or corrupted): whenever the scanner reads one, serde
    /// reads the same chunk. The scanner may refuse what serde reads (serde then reads it).
    #[test]
    fn fast_chunk_agrees_with_serde() {
        let mut rng = SmallRng::seed_from_u64(14);
        let (mut read_here, mut with_usage, mut total) = (0, 0, 0);
        for _ in 0..30_000 {
            let mut data = chunk(&mut rng);
            let mutated = rng.random_range(0..4) == 0;
            if mutated {
                mutate(&mut rng, &mut data);
            }
            total += 1;
            if let Some(fast) = fresh(&data) {
                read_here += 1;
                with_usage += usize::from(fast.usage.is_some());
                assert_eq!(Some(view(fast)), serde_view(&data), "{data}");
            }
        }
        println!("{read_here} of {total} read here, {with_usage} with usage");
        // Not vacuous: the generator mostly makes odd chunks, but thousands are read here
        // (2,844 of 30,000 with this seed, 387 of them with usage) and so compared.
        assert!(read_here >= 2_000, "only {read_here} of {total} read here");
        assert!(with_usage >= 200, "only {with_usage} read here with usage");
    }

    #[test]
    fn a_chunk_that_starts_like_the_last_is_read_from_its_choices() {
        let mut known = Known::default();
        let first = SIM;
        let next = SIM.replace(" This", " is");
        assert_eq!(
            view(read(first, &mut known).unwrap()).content.as_deref(),
            Some(" This")
        );
        assert!(known.matches(&next), "the members before choices are known");
        assert!(
            known.reread(&next).is_some(),
            "read from its content string alone"
        );
        let c = read(&next, &mut known).unwrap();
        assert_eq!(
            c.model.as_deref(),
            Some("m"),
            "the model is read from the known span"
        );
        assert_eq!(view(c), serde_view(&next).unwrap());
        // A duplicate model after choices is still refused; another id is read in full.
        let twice = next.replace(
            r#""finish_reason":null}]"#,
            r#""finish_reason":null}],"model":"n""#,
        );
        assert!(known.matches(&twice) && read(&twice, &mut known).is_none());
        let other = next.replace("chatcmpl-sim-1", "chatcmpl-sim-2");
        assert!(!known.matches(&other));
        assert_eq!(
            view(read(&other, &mut known).unwrap()),
            serde_view(&other).unwrap()
        );
        assert!(
            known.matches(&other),
            "known again from the chunk read in full"
        );
        // An escaped model cannot be sliced from the prefix: nothing is kept.
        let mut fresh_known = Known::default();
        let escaped = SIM.replace(r#""model":"m""#, r#""model":"\u006d""#);
        assert_eq!(
            read(&escaped, &mut fresh_known).unwrap().model.as_deref(),
            Some("m")
        );
        assert!(!fresh_known.matches(&escaped));
    }

    /// Chunks that begin with the members an earlier random chunk had before its `choices`
    /// and go on with another random chunk's members from its `choices` on (sometimes cut or
    /// corrupted): read from the known prefix, each is the chunk serde reads.
    #[test]
    fn a_chunk_read_from_a_known_prefix_agrees_with_serde() {
        let mut rng = SmallRng::seed_from_u64(15);
        // Random chunks read here, with where their `choices` member starts.
        let mut readable = Vec::new();
        for _ in 0..30_000 {
            let data = chunk(&mut rng);
            let mut known = Known::default();
            if read(&data, &mut known).is_some() && known.choices_at > 0 {
                readable.push((data, known.choices_at));
            }
        }
        let (mut resumed, mut read_here) = (0, 0);
        for _ in 0..20_000 {
            let (x, _) = &readable[rng.random_range(0..readable.len())];
            let (z, at) = &readable[rng.random_range(0..readable.len())];
            let mut known = Known::default();
            read(x, &mut known).unwrap();
            let mut data = x[..known.choices_at].to_owned() + &z[*at..];
            if rng.random_range(0..4) == 0 {
                mutate(&mut rng, &mut data);
            }
            if !known.matches(&data) {
                continue;
            }
            resumed += 1;
            if let Some(fast) = read(&data, &mut known) {
                read_here += 1;
                assert_eq!(Some(view(fast)), serde_view(&data), "{data}");
            }
        }
        println!(
            "{} readable, {resumed} read from a known prefix, {read_here} of them here",
            readable.len()
        );
        assert!(
            read_here >= 10_000,
            "only {read_here} of {resumed} read here"
        );
    }

    /// Chunks equal to an earlier random chunk but for its delta's content string, which is
    /// another random string (sometimes cut or corrupted): read from the string alone, each
    /// is the chunk serde reads.
    #[test]
    fn a_chunk_read_as_the_last_with_another_content_agrees_with_serde() {
        let mut rng = SmallRng::seed_from_u64(16);
        // Random chunks read here that have a content string.
        let mut templates = Vec::new();
        while templates.len() < 1_000 {
            let x = chunk(&mut rng);
            let mut known = Known::default();
            if read(&x, &mut known).is_some() && known.content.is_some() {
                templates.push(x);
            }
        }
        let (mut reread, mut compared) = (0, 0);
        for _ in 0..20_000 {
            let x = &templates[rng.random_range(0..templates.len())];
            let mut known = Known::default();
            read(x, &mut known).unwrap();
            let (start, end) = known.content.as_ref().unwrap().at;
            let mut data = format!("{}{}{}", &x[..start], string(&mut rng), &x[end..]);
            if rng.random_range(0..4) == 0 {
                mutate(&mut rng, &mut data);
            }
            let by_serde = serde_view(&data);
            reread += usize::from(known.reread(&data).is_some());
            if let Some(fast) = read(&data, &mut known) {
                compared += 1;
                assert_eq!(Some(view(fast)), by_serde, "{data}");
            }
        }
        println!("{reread} read from the content string alone, {compared} compared");
        assert!(
            reread >= 8_000,
            "only {reread} read from the content string"
        );
    }

    fn delta(rng: &mut SmallRng) -> String {
        if rng.random_range(0..12) == 0 {
            return scalar(rng);
        }
        let mut m = Vec::new();
        maybe(rng, &mut m, "role", string_or);
        maybe(rng, &mut m, "content", string_or);
        if rng.random_range(0..3) == 0 {
            maybe(rng, &mut m, "refusal", string_or);
        }
        if rng.random_range(0..8) == 0 {
            m.push(r#""tool_calls":[{"index":0,"function":{"arguments":"{}"}}]"#.into());
        }
        if rng.random_range(0..4) == 0 {
            m.push(format!("\"extra\":{}", scalar(rng)));
        }
        object(rng, m)
    }

    fn choice(rng: &mut SmallRng) -> String {
        let mut m = Vec::new();
        maybe(rng, &mut m, "index", |rng| {
            pick(rng, &["0", "1", "\"0\"", "-1"]).into()
        });
        maybe(rng, &mut m, "delta", delta);
        maybe(rng, &mut m, "logprobs", |_| "null".into());
        let finish = if rng.random_range(0..2) == 0 {
            "null".to_owned()
        } else {
            string_or(rng)
        };
        maybe(rng, &mut m, "finish_reason", |_| finish);
        object(rng, m)
    }

    fn chunk(rng: &mut SmallRng) -> String {
        let mut m = Vec::new();
        maybe(rng, &mut m, "id", string);
        maybe(rng, &mut m, "object", |_| {
            r#""chat.completion.chunk""#.into()
        });
        maybe(rng, &mut m, "created", |rng| {
            pick(rng, &["1796146429", "0", "1.5e3"]).into()
        });
        maybe(rng, &mut m, "model", string_or);
        maybe(rng, &mut m, "system_fingerprint", string);
        let choices = match rng.random_range(0..12) {
            0 => "[]".to_owned(),
            1 => format!("[{},{}]", choice(rng), choice(rng)),
            2 => scalar(rng),
            _ => format!("[{}]", choice(rng)),
        };
        maybe(rng, &mut m, "choices", |_| choices);
        if rng.random_range(0..3) == 0 {
            let usage = super::super::fast_completion::tests::usage(rng);
            m.push(format!("\"usage\":{usage}"));
        }
        if rng.random_range(0..8) == 0 {
            let error = pick(rng, &["null", r#"{"message":"x"}"#, r#""text""#]);
            m.push(format!("\"error\":{error}"));
        }
        if rng.random_range(0..3) == 0 {
            m.push(format!("{}:{}", string(rng), scalar(rng)));
        }
        object(rng, m)
    }
}
