//! A scanner for the chunk shape nearly every OpenAI stream event has: one choice whose delta
//! holds text (or a refusal, or only a role) and a finish reason or null. serde's derived
//! parser spent ~5,700 instructions on each such 220-byte event (a third of a proxied
//! stream, BENCHMARKS.md); this reads it in a fraction. Anything else (tool calls, usage, an
//! error, a second choice, a duplicate key, a type serde would refuse, an escape it cannot
//! read) makes it answer `None`, and the event goes to serde as before: a chunk read here is
//! always the one serde would have read (`fast_chunk_agrees_with_serde` checks that).

use std::borrow::Cow;

use super::{ChunkChoice, Delta, WireChunk};

/// Deepest nesting skipped inside an unknown field (serde's limit is 128).
const MAX_DEPTH: usize = 64;

/// The chunk, when `data` has the common shape; `None` sends it to serde.
pub(super) fn fast_chunk(data: &str) -> Option<WireChunk<'_>> {
    let mut c = Cursor {
        s: data,
        b: data.as_bytes(),
        i: 0,
    };
    let mut model: Option<Cow<'_, str>> = None;
    let mut choice: Option<ChunkChoice> = None;
    let (mut seen_model, mut seen_choices, mut seen_usage, mut seen_error) =
        (false, false, false, false);
    c.object(|c, key| {
        match key {
            b"model" => {
                first(&mut seen_model)?;
                model = c.string_or_null()?;
            }
            b"choices" => {
                first(&mut seen_choices)?;
                choice = c.only_choice()?;
            }
            // Present and null only; a value goes to serde.
            b"usage" | b"error" => {
                let seen = if key == b"usage" {
                    &mut seen_usage
                } else {
                    &mut seen_error
                };
                first(seen)?;
                c.null()?;
            }
            _ => c.skip_value(0)?,
        }
        Some(())
    })?;
    c.ws();
    if c.i != c.b.len() {
        return None;
    }
    Some(WireChunk {
        model,
        choices: choice.into_iter().collect(),
        usage: None,
        error: None,
    })
}

/// `None` the second time a member is seen: serde refuses a duplicate field.
fn first(seen: &mut bool) -> Option<()> {
    (!std::mem::replace(seen, true)).then_some(())
}

struct Cursor<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.i += 1)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.ws();
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    fn null(&mut self) -> Option<()> {
        self.literal(b"null")
    }

    /// An object's members, `f` reading each value; `None` from `f` ends the scan. A key
    /// with an escape goes to serde.
    fn object(&mut self, mut f: impl FnMut(&mut Self, &[u8]) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            let (start, end, escaped) = self.scan()?;
            if escaped {
                return None;
            }
            let key = self.b.get(start..end)?;
            self.eat(b':')?;
            f(self, key)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Consumes a string: where its contents start and end, and whether it has escapes.
    fn scan(&mut self) -> Option<(usize, usize, bool)> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.i + 1;
        self.i = start;
        let mut escaped = false;
        loop {
            self.skip_plain();
            match *self.b.get(self.i)? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    self.i += 2;
                }
                0x00..=0x1f => return None, // serde refuses raw control characters
                _ => self.i += 1,
            }
        }
        let end = self.i;
        self.i += 1;
        Some((start, end, escaped))
    }

    /// A string; borrowed when it has no escapes, else decoded by serde_json.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let (start, end, escaped) = self.scan()?;
        if escaped {
            serde_json::from_str::<String>(self.s.get(start - 1..end + 1)?)
                .ok()
                .map(Cow::Owned)
        } else {
            self.s.get(start..end).map(Cow::Borrowed)
        }
    }

    /// A string whose value is not wanted; its escapes are still checked, as serde does.
    fn skip_string(&mut self) -> Option<()> {
        let (start, end, escaped) = self.scan()?;
        if escaped {
            serde_json::from_str::<serde::de::IgnoredAny>(self.s.get(start - 1..end + 1)?).ok()?;
        }
        Some(())
    }

    /// Moves to the next quote, backslash or control byte (or near the end), 8 bytes at a
    /// time: the bit trick serde_json uses (Mycroft's), which flags the lowest such byte
    /// exactly.
    fn skip_plain(&mut self) {
        const ONE: u64 = u64::MAX / 255;
        while let Some(eight) = self.b.get(self.i..self.i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(eight);
            let x = u64::from_le_bytes(word);
            let control = x.wrapping_sub(ONE * 0x20) & !x;
            let q = x ^ (ONE * u64::from(b'"'));
            let quote = q.wrapping_sub(ONE) & !q;
            let e = x ^ (ONE * u64::from(b'\\'));
            let backslash = e.wrapping_sub(ONE) & !e;
            let hit = (control | quote | backslash) & (ONE << 7);
            if hit != 0 {
                self.i += (hit.trailing_zeros() / 8) as usize;
                return;
            }
            self.i += 8;
        }
    }

    fn string_or_null(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.peek()? == b'n' {
            self.null()?;
            return Some(None);
        }
        self.string().map(Some)
    }

    /// `[choice]`: exactly one choice (none, or a second, goes to serde).
    fn only_choice(&mut self) -> Option<Option<ChunkChoice>> {
        self.eat(b'[')?;
        let mut delta: Option<Delta> = None;
        let mut finish: Option<String> = None;
        let (mut seen_delta, mut seen_finish) = (false, false);
        self.object(|c, key| {
            match key {
                b"delta" => {
                    first(&mut seen_delta)?;
                    delta = c.delta()?;
                }
                b"finish_reason" => {
                    first(&mut seen_finish)?;
                    finish = c.string_or_null()?.map(Cow::into_owned);
                }
                _ => c.skip_value(0)?,
            }
            Some(())
        })?;
        self.eat(b']')?;
        Some(Some(ChunkChoice {
            delta,
            finish_reason: finish,
        }))
    }

    /// `{"role":..,"content":..,"refusal":..}` or null; any other member but a few known
    /// harmless ones goes to serde.
    fn delta(&mut self) -> Option<Option<Delta>> {
        if self.peek()? == b'n' {
            self.null()?;
            return Some(None);
        }
        let mut content: Option<String> = None;
        let mut refusal: Option<String> = None;
        let (mut seen_content, mut seen_refusal) = (false, false);
        self.object(|c, key| {
            match key {
                b"content" => {
                    first(&mut seen_content)?;
                    content = c.string_or_null()?.map(Cow::into_owned);
                }
                b"refusal" => {
                    first(&mut seen_refusal)?;
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

    /// Skips any JSON value, as strictly as serde checks one it ignores.
    fn skip_value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' => self.object(|c, _| c.skip_value(depth + 1)),
            b'[' => {
                self.i += 1;
                if self.peek()? == b']' {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    match self.peek()? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.null(),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Option<()> {
        let digits = |c: &mut Self| {
            let start = c.i;
            while let Some(b'0'..=b'9') = c.b.get(c.i) {
                c.i += 1;
            }
            (c.i > start).then_some(())
        };
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        match self.b.get(self.i)? {
            b'0' => self.i += 1,
            b'1'..=b'9' => digits(self)?,
            _ => return None,
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            digits(self)?;
        }
        if let Some(b'e' | b'E') = self.b.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.b.get(self.i) {
                self.i += 1;
            }
            digits(self)?;
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

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
        usage: bool,
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
            usage: c.usage.is_some(),
            error: c.error.is_some(),
        }
    }

    fn serde_view(data: &str) -> Option<View> {
        serde_json::from_str::<WireChunk<'_>>(data).ok().map(view)
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
        ];
        for data in documented {
            let fast = fast_chunk(data).unwrap_or_else(|| panic!("not read here: {data}"));
            assert_eq!(Some(view(fast)), serde_view(data), "{data}");
        }
        let c = fast_chunk(documented[3]).unwrap();
        assert_eq!(
            c.choices[0].delta.as_ref().unwrap().content.as_deref(),
            Some("line\none \"quoted\" \u{e9} \u{1f600}")
        );
    }

    #[test]
    fn other_shapes_go_to_serde() {
        for data in [
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"f","arguments":""}}]}}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#,
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
            assert!(fast_chunk(data).is_none(), "read here: {data}");
        }
    }

    /// Random chunks (members in any order, extra and duplicate members, odd types, escapes,
    /// nested values, then sometimes cut or corrupted): whenever the scanner reads one, serde
    /// reads the same chunk. The scanner may refuse what serde reads (serde then reads it).
    #[test]
    fn fast_chunk_agrees_with_serde() {
        let mut rng = SmallRng::seed_from_u64(14);
        let (mut read_here, mut total) = (0, 0);
        for _ in 0..30_000 {
            let mut data = chunk(&mut rng);
            let mutated = rng.random_range(0..4) == 0;
            if mutated {
                mutate(&mut rng, &mut data);
            }
            total += 1;
            if let Some(fast) = fast_chunk(&data) {
                read_here += 1;
                assert_eq!(Some(view(fast)), serde_view(&data), "{data}");
            }
        }
        // Not vacuous: the generator mostly makes odd chunks, but thousands are read here
        // (2,594 of 30,000 with this seed) and so compared.
        assert!(read_here >= 2_000, "only {read_here} of {total} read here");
    }

    fn pick<'s>(rng: &mut SmallRng, from: &[&'s str]) -> &'s str {
        from[rng.random_range(0..from.len())]
    }

    fn string(rng: &mut SmallRng) -> String {
        pick(
            rng,
            &[
                r#""""#,
                r#""plain text""#,
                r#"" with spaces and : , { } [ ] ""#,
                r#""esc \" \\ \/ \b \f \n \r \t""#,
                r#""\u00e9\u4e2d\ud83d\ude00""#,
                r#""\ud800""#,
                r#""bad \x escape""#,
                r#""bad \u12 escape""#,
                "\"raw \u{7} control\"",
                "\"héllo 中文 😀\"",
                r#""a longer string that crosses several eight-byte words""#,
            ],
        )
        .to_owned()
    }

    fn scalar(rng: &mut SmallRng) -> String {
        match rng.random_range(0..8) {
            0 => string(rng),
            1 => "null".into(),
            2 => pick(rng, &["true", "false", "nul", "tru"]).into(),
            3 => pick(
                rng,
                &[
                    "0", "-1", "17", "1.5", "-0.0e+3", "1e9", "01", "1.", "-", ".5", "2E-2",
                ],
            )
            .into(),
            4 => format!(
                "[{}]",
                (0..rng.random_range(0..3))
                    .map(|_| string(rng))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            5 => format!("{{\"k\":{},\"n\":{{\"d\":[1,{{}}]}}}}", string(rng)),
            6 => "[]".into(),
            _ => "{}".into(),
        }
    }

    fn string_or(rng: &mut SmallRng) -> String {
        if rng.random_range(0..6) == 0 {
            scalar(rng)
        } else {
            string(rng)
        }
    }

    fn object(rng: &mut SmallRng, mut members: Vec<String>) -> String {
        // Shuffle, sometimes duplicate one.
        for i in (1..members.len()).rev() {
            members.swap(i, rng.random_range(0..=i));
        }
        if !members.is_empty() && rng.random_range(0..10) == 0 {
            let d = members[rng.random_range(0..members.len())].clone();
            members.push(d);
        }
        let ws = pick(rng, &["", "", " ", "\n\t"]);
        format!("{{{ws}{}{ws}}}", members.join(&format!(",{ws}")))
    }

    fn maybe(
        rng: &mut SmallRng,
        members: &mut Vec<String>,
        key: &str,
        value: impl FnOnce(&mut SmallRng) -> String,
    ) {
        if rng.random_range(0..5) != 0 {
            let value = value(rng);
            members.push(format!("\"{key}\":{value}"));
        }
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
        if rng.random_range(0..4) == 0 {
            let usage = pick(
                rng,
                &["null", r#"{"prompt_tokens":1,"completion_tokens":2}"#, "3"],
            );
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

    fn mutate(rng: &mut SmallRng, data: &mut String) {
        let mut at = rng.random_range(0..=data.len());
        while !data.is_char_boundary(at) {
            at -= 1;
        }
        match rng.random_range(0..3) {
            0 => data.truncate(at),
            1 => data.insert(
                at,
                pick(rng, &["\"", "\\", ",", "}", "]", ":", "x", " "])
                    .chars()
                    .next()
                    .unwrap_or(' '),
            ),
            _ => {
                let mut end = (at + rng.random_range(1..4)).min(data.len());
                while !data.is_char_boundary(end) {
                    end += 1;
                }
                data.replace_range(at..end, "");
            }
        }
    }
}
