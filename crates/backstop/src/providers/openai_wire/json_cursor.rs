//! A strict JSON cursor for the scanners of the common OpenAI shapes (`fast_chunk`,
//! `fast_completion`, and the gateway's request scanner): it reads a value the way serde_json
//! would, and answers `None` where it is unsure, so the caller hands that body to serde.

use std::borrow::Cow;

use crate::providers::json_text::first_special;

/// Deepest nesting skipped inside an unknown field (serde's limit is 128).
const MAX_DEPTH: usize = 64;

/// A position in a JSON text being read.
pub struct Cursor<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    /// Where the key of the member being read starts.
    key_at: usize,
}

impl<'a> Cursor<'a> {
    /// `None` the second time a member is seen: serde refuses a duplicate field.
    #[inline]
    pub fn first(seen: &mut bool) -> Option<()> {
        (!std::mem::replace(seen, true)).then_some(())
    }

    /// A cursor at the start of `s`.
    #[inline]
    pub fn new(s: &'a str) -> Self {
        Self::at(s, 0)
    }

    /// A cursor at byte `i` of `s`.
    #[inline]
    pub(super) fn at(s: &'a str, i: usize) -> Self {
        Cursor {
            s,
            b: s.as_bytes(),
            i,
            key_at: i,
        }
    }

    /// Where the key of the member being read starts (inside [`Cursor::object`]'s `f`).
    pub(super) fn key_at(&self) -> usize {
        self.key_at
    }

    /// Where the next value starts (whitespace skipped).
    #[inline]
    pub fn value_at(&mut self) -> usize {
        self.ws();
        self.i
    }

    /// Where the cursor is.
    #[inline]
    pub fn pos(&self) -> usize {
        self.i
    }

    /// Whether only whitespace is left.
    #[inline]
    pub fn at_end(&mut self) -> bool {
        self.ws();
        self.i == self.b.len()
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    #[inline]
    pub fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    /// Consumes `byte`, the next after whitespace, or answers `None`.
    #[inline]
    pub fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.i += 1)
    }

    #[inline]
    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.ws();
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// Consumes `null`.
    #[inline]
    pub fn null(&mut self) -> Option<()> {
        self.literal(b"null")
    }

    /// An object's members, `f` reading each value; `None` from `f` ends the scan. A key
    /// with an escape goes to serde.
    pub fn object(&mut self, f: impl FnMut(&mut Self, &[u8]) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        self.members(f)
    }

    /// An object's members from the next key on, its `{` (and any members before) already
    /// read; as [`Cursor::object`].
    pub(super) fn members(
        &mut self,
        mut f: impl FnMut(&mut Self, &[u8]) -> Option<()>,
    ) -> Option<()> {
        loop {
            self.key_at = self.value_at();
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
    #[inline]
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
    #[inline]
    pub fn string(&mut self) -> Option<Cow<'a, str>> {
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
    /// time; the last partial word is left to `scan`.
    #[inline]
    fn skip_plain(&mut self) {
        while let Some(word) = self
            .b
            .get(self.i..self.i + 8)
            .and_then(|w| <&[u8; 8]>::try_from(w).ok())
        {
            if let Some(at) = first_special(word) {
                self.i += at;
                return;
            }
            self.i += 8;
        }
    }

    /// `true`, `false` or null.
    #[inline]
    pub fn bool_or_null(&mut self) -> Option<Option<bool>> {
        match self.peek()? {
            b't' => self.literal(b"true").map(|()| Some(true)),
            b'f' => self.literal(b"false").map(|()| Some(false)),
            _ => self.null().map(|()| None),
        }
    }

    /// A string or null.
    #[inline]
    pub fn string_or_null(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.peek()? == b'n' {
            self.null()?;
            return Some(None);
        }
        self.string().map(Some)
    }
    /// A number serde reads as a `u64`: digits only. A sign, a fraction, an exponent, a
    /// leading zero or an overflow goes to serde (which refuses all but the sign of `-0`).
    #[inline]
    pub fn count(&mut self) -> Option<u64> {
        self.ws();
        let start = self.i;
        let mut n: u64 = 0;
        while let Some(&d @ b'0'..=b'9') = self.b.get(self.i) {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            self.i += 1;
        }
        let digits = self.i - start;
        let leading_zero = digits > 1 && self.b.get(start) == Some(&b'0');
        let float = matches!(self.b.get(self.i), Some(b'.' | b'e' | b'E'));
        (digits > 0 && !leading_zero && !float).then_some(n)
    }

    /// A count or null.
    #[inline]
    pub fn count_or_null(&mut self) -> Option<Option<u64>> {
        if self.peek()? == b'n' {
            self.null()?;
            return Some(None);
        }
        self.count().map(Some)
    }

    /// Skips any JSON value, as strictly as serde checks one it ignores.
    pub fn skip_value(&mut self, depth: usize) -> Option<()> {
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

/// Generators of JSON members for the scanners' agreement tests: plain and odd values, objects
/// with members shuffled and sometimes repeated, and cuts and corruptions.
#[cfg(test)]
pub(super) mod generate {
    use rand::Rng;
    use rand::rngs::SmallRng;

    pub(crate) fn pick<'s>(rng: &mut SmallRng, from: &[&'s str]) -> &'s str {
        from[rng.random_range(0..from.len())]
    }

    pub(crate) fn string(rng: &mut SmallRng) -> String {
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

    pub(crate) fn scalar(rng: &mut SmallRng) -> String {
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

    pub(crate) fn string_or(rng: &mut SmallRng) -> String {
        if rng.random_range(0..6) == 0 {
            scalar(rng)
        } else {
            string(rng)
        }
    }

    pub(crate) fn object(rng: &mut SmallRng, mut members: Vec<String>) -> String {
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

    pub(crate) fn maybe(
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

    pub(crate) fn mutate(rng: &mut SmallRng, data: &mut String) {
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
