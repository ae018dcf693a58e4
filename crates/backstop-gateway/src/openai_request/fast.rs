//! A scanner for the shape nearly every chat request has: the model, messages of a role and a
//! string content, and the common sampling fields. Anything else (content parts, tools, any
//! other field, a duplicate, an escaped key, a value serde would refuse) makes it answer
//! `None`, and the body goes to serde as before: a request read here is the one serde reads
//! (`fast_request_agrees_with_serde` checks that). serde spent 3,300 instructions on the
//! benchmark's 110-byte request (BENCHMARKS.md).

use std::borrow::Cow;

use backstop::providers::JsonCursor as Cursor;

use super::{Content, WireMessage, WireRequest};

/// The request, when `body` has the common shape; `None` sends it to serde.
pub(super) fn fast_request(body: &str) -> Option<WireRequest> {
    let mut c = Cursor::new(body);
    let mut w = WireRequest::default();
    let (mut model, mut messages) = (None, None);
    let mut seen = [false; 8];
    c.object(|c, key| {
        match key {
            b"model" => {
                Cursor::first(&mut seen[0])?;
                model = Some(c.string()?.into_owned());
            }
            b"messages" => {
                Cursor::first(&mut seen[1])?;
                messages = Some(list(c)?);
            }
            b"stream" => {
                Cursor::first(&mut seen[2])?;
                w.stream = c.bool_or_null()?;
            }
            b"temperature" => {
                Cursor::first(&mut seen[3])?;
                w.temperature = float(c, body)?;
            }
            b"top_p" => {
                Cursor::first(&mut seen[4])?;
                w.top_p = float(c, body)?;
            }
            b"max_tokens" => {
                Cursor::first(&mut seen[5])?;
                w.max_tokens = int(c)?;
            }
            b"max_completion_tokens" => {
                Cursor::first(&mut seen[6])?;
                w.max_completion_tokens = int(c)?;
            }
            b"user" => {
                Cursor::first(&mut seen[7])?;
                w.user = c.string_or_null()?.map(Cow::into_owned);
            }
            _ => return None,
        }
        Some(())
    })?;
    w.model = model?;
    w.messages = messages?;
    c.at_end().then_some(w)
}

/// `[message, ...]`.
fn list(c: &mut Cursor<'_>) -> Option<Vec<WireMessage>> {
    c.eat(b'[')?;
    let mut out = Vec::new();
    if c.peek()? == b']' {
        c.eat(b']')?;
        return Some(out);
    }
    loop {
        out.push(message(c)?);
        match c.peek()? {
            b',' => c.eat(b',')?,
            b']' => {
                c.eat(b']')?;
                return Some(out);
            }
            _ => return None,
        }
    }
}

/// `{"role": string, "content": string or null}`, content optional.
fn message(c: &mut Cursor<'_>) -> Option<WireMessage> {
    let (mut role, mut content) = (None, None);
    let mut seen = [false; 2];
    c.object(|c, key| {
        match key {
            b"role" => {
                Cursor::first(&mut seen[0])?;
                role = Some(c.string()?.into_owned());
            }
            b"content" => {
                Cursor::first(&mut seen[1])?;
                content = c
                    .string_or_null()?
                    .map(|text| Content::Text(text.into_owned()));
            }
            _ => return None,
        }
        Some(())
    })?;
    Some(WireMessage {
        role: role?,
        content,
        tool_calls: None,
        tool_call_id: None,
        name: None,
        refusal: None,
        extra: serde_json::Map::new(),
    })
}

/// A number read as an `f32` by serde itself (its text handed over whole), or null.
fn float(c: &mut Cursor<'_>, body: &str) -> Option<Option<f32>> {
    match c.peek()? {
        b'n' => c.null().map(|()| None),
        b'-' | b'0'..=b'9' => {
            let start = c.value_at();
            c.skip_value(0)?;
            let text = body.get(start..c.pos())?;
            serde_json::from_str::<f32>(text).ok().map(Some)
        }
        _ => None,
    }
}

/// A count that fits an `i64`, or null; a sign or a fraction goes to serde.
fn int(c: &mut Cursor<'_>) -> Option<Option<i64>> {
    match c.count_or_null()? {
        None => Some(None),
        Some(n) => i64::try_from(n).ok().map(Some),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use rand::rngs::SmallRng;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};

    use super::*;

    fn pick<'s>(rng: &mut SmallRng, from: &[&'s str]) -> &'s str {
        from[rng.random_range(0..from.len())]
    }

    fn string(rng: &mut SmallRng) -> String {
        pick(
            rng,
            &[
                r#""user""#,
                r#""assistant""#,
                r#""""#,
                r#""Say something short about fallback chains.""#,
                r#""esc \" \\ \/ \b \f \n \r \t \u00e9""#,
                r#""\ud83d\ude00 and \ud800""#,
                r#""bad \x escape""#,
                "\"raw \u{7} control\"",
                "\"héllo 中文\"",
                "null",
                "5",
                "[]",
                r#"[{"type":"text","text":"hi"}]"#,
            ],
        )
        .to_owned()
    }

    fn number(rng: &mut SmallRng) -> String {
        if rng.random_bool(0.6) {
            return pick(rng, &["0.7", "1", "64", "null"]).to_owned();
        }
        pick(
            rng,
            &[
                "0",
                "1",
                "0.7",
                "-0.0",
                "2",
                "1e2",
                "1.5e-3",
                "1E400",
                "01",
                "1.",
                "-",
                "64",
                "-1",
                "9223372036854775807",
                "9223372036854775808",
                "1.0",
                "null",
                "true",
                "\"0.5\"",
            ],
        )
        .to_owned()
    }

    /// Sometimes a second copy of one member (serde refuses a duplicate field).
    fn duplicate_one(rng: &mut SmallRng, members: &mut Vec<String>) {
        if !members.is_empty() && rng.random_bool(0.08) {
            let again = members[rng.random_range(0..members.len())].clone();
            members.push(again);
        }
    }

    /// Mostly a plain string, sometimes anything `string` makes.
    fn mostly_plain(rng: &mut SmallRng) -> String {
        if rng.random_bool(0.85) {
            pick(
                rng,
                &[
                    r#""user""#,
                    r#""hi there""#,
                    r#""a
b""#,
                ],
            )
            .to_owned()
        } else {
            string(rng)
        }
    }

    fn message(rng: &mut SmallRng) -> String {
        let mut members = Vec::new();
        if rng.random_bool(0.97) {
            members.push(format!(r#""role":{}"#, mostly_plain(rng)));
        }
        if rng.random_bool(0.9) {
            members.push(format!(r#""content":{}"#, mostly_plain(rng)));
        }
        match rng.random_range(0..40) {
            0 => members.push(r#""name":"n""#.into()),
            1 => members.push(r#""role":"user""#.into()), // a duplicate
            2 => members.push(r#""tool_calls":null"#.into()),
            _ => {}
        }
        duplicate_one(rng, &mut members);
        members.shuffle(rng);
        format!("{{{}}}", members.join(","))
    }

    fn body(rng: &mut SmallRng) -> String {
        let mut members = Vec::new();
        if rng.random_bool(0.95) {
            members.push(format!(
                r#""model":{}"#,
                pick(
                    rng,
                    &[
                        r#""default""#,
                        r#""gpt-4o-mini""#,
                        r#""m\u0031""#,
                        "null",
                        "3"
                    ]
                )
            ));
        }
        if rng.random_bool(0.95) {
            let n = rng.random_range(0..4);
            let list: Vec<String> = (0..n).map(|_| message(rng)).collect();
            members.push(format!(r#""messages":[{}]"#, list.join(",")));
        }
        for key in [
            "temperature",
            "top_p",
            "max_tokens",
            "max_completion_tokens",
        ] {
            if rng.random_bool(0.3) {
                members.push(format!(r#""{key}":{}"#, number(rng)));
            }
        }
        if rng.random_bool(0.3) {
            members.push(format!(
                r#""stream":{}"#,
                pick(rng, &["true", "false", "null", "\"yes\"", "tru"])
            ));
        }
        if rng.random_bool(0.2) {
            members.push(format!(r#""user":{}"#, string(rng)));
        }
        match rng.random_range(0..25) {
            0 => members.push(r#""seed":3"#.into()),
            1 => members.push(r#""stream":true"#.into()),
            2 => members.push(r#""mod\u0065l":"x""#.into()),
            3 => members.push(r#""stream_options":{"include_usage":true}"#.into()),
            _ => {}
        }
        duplicate_one(rng, &mut members);
        members.shuffle(rng);
        let sep = pick(rng, &[",", ",", ",", " , ", ",\n"]);
        let mut text = format!("{{{}}}", members.join(sep));
        match rng.random_range(0..20) {
            0 => {
                let mut cut = rng.random_range(0..=text.len());
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
            }
            1 => text.push_str(" \n"),
            2 => text.push('x'),
            3 => text.insert(0, ' '),
            _ => {}
        }
        text
    }

    /// Every request the scanner reads is the one serde reads from the same text; the rest it
    /// leaves to serde. A seeded run over generated, shuffled, duplicated and cut requests.
    #[test]
    fn fast_request_agrees_with_serde() {
        let mut rng = SmallRng::seed_from_u64(27);
        let (mut read, mut declined) = (0, 0);
        for _ in 0..60_000 {
            let text = body(&mut rng);
            match fast_request(&text) {
                Some(fast) => {
                    read += 1;
                    let slow: WireRequest = serde_json::from_str(&text).unwrap_or_else(|e| {
                        panic!("serde refused what the scanner read: {text}: {e}")
                    });
                    assert_eq!(fast, slow, "{text}");
                }
                None => declined += 1,
            }
        }
        assert!(
            read > 4_000 && declined > 4_000,
            "read {read}, declined {declined}"
        );
    }

    #[test]
    fn the_common_request_is_read_and_others_are_left_to_serde() {
        let w = fast_request(
            r#"{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],"temperature":0.7,"max_tokens":64,"stream":true}"#,
        )
        .unwrap();
        assert_eq!(w.model, "m");
        assert_eq!(w.messages.len(), 2);
        assert_eq!(w.temperature, Some(0.7));
        assert_eq!((w.max_tokens, w.stream), (Some(64), Some(true)));
        for declined in [
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}"#,
            r#"{"model":"m","messages":[],"tools":[]}"#,
            r#"{"model":"m","model":"n","messages":[]}"#,
            r#"{"messages":[]}"#,
            r#"{"model":"m","messages":[{"content":"hi"}]}"#,
            r#"{"model":"m","messages":[],"max_tokens":-1}"#,
        ] {
            assert!(fast_request(declined).is_none(), "{declined}");
        }
    }
}
