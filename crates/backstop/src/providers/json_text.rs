//! JSON strings scanned and written eight bytes at a time: the scanners of common provider
//! answers skip plain runs with it, and the gateway writes answers with it. serde_json escapes
//! byte by byte through a table, which was a fifth of writing a completion (BENCHMARKS.md).

/// Where the first byte of `word` that a JSON string must escape is (a quote, a backslash or a
/// control byte), if any: the bit trick serde_json's reader uses (Mycroft's), which flags the
/// lowest such byte exactly. Shared by the scanners' and the writer's loops; always inlined,
/// as a call costs the scanners 1.5% of a stream.
#[inline(always)]
pub(crate) fn first_special(word: &[u8; 8]) -> Option<usize> {
    const ONE: u64 = u64::MAX / 255;
    let x = u64::from_le_bytes(*word);
    let control = x.wrapping_sub(ONE * 0x20) & !x;
    let q = x ^ (ONE * u64::from(b'"'));
    let quote = q.wrapping_sub(ONE) & !q;
    let e = x ^ (ONE * u64::from(b'\\'));
    let backslash = e.wrapping_sub(ONE) & !e;
    let hit = (control | quote | backslash) & (ONE << 7);
    (hit != 0).then(|| (hit.trailing_zeros() / 8) as usize)
}

/// How many leading bytes of `b` need no escaping, exactly: eight at a time, then byte by byte.
fn plain_len(b: &[u8]) -> usize {
    let mut i = 0;
    while let Some(word) = b.get(i..i + 8).and_then(|w| <&[u8; 8]>::try_from(w).ok()) {
        if let Some(at) = first_special(word) {
            return i + at;
        }
        i += 8;
    }
    i + b
        .get(i..)
        .unwrap_or_default()
        .iter()
        .take_while(|&&c| !needs_escape(c))
        .count()
}

fn needs_escape(c: u8) -> bool {
    c < 0x20 || c == b'"' || c == b'\\'
}

/// Appends `s` as a JSON string, byte for byte what `serde_json::to_writer` writes: `\"`,
/// `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, and `\u00XX` for the other control bytes.
pub fn push_json_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut rest = s.as_bytes();
    out.reserve(rest.len() + 2);
    out.push(b'"');
    loop {
        let plain = plain_len(rest);
        let (run, tail) = rest.split_at(plain);
        out.extend_from_slice(run);
        let Some((&c, tail)) = tail.split_first() else {
            break;
        };
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(c >> 4)],
                HEX[usize::from(c & 0xf)],
            ]),
        }
        rest = tail;
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    fn ours(s: &str) -> String {
        let mut out = Vec::new();
        push_json_str(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_written_as_serde_writes_them() {
        let every_ascii: String = (0u8..0x80).map(char::from).collect();
        for s in [
            "",
            "plain",
            "exactly8",
            "a \"quoted\" word and a \\ backslash",
            "line\none\r\n\ttab \u{8}\u{c}\u{0}\u{1f}\u{7f}",
            "héllo 中文 😀 \u{2028}\u{2029}",
            &every_ascii,
        ] {
            assert_eq!(ours(s), serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    /// Random strings over a small alphabet heavy in what needs escaping, at every length
    /// around the eight-byte words: the same bytes as serde's.
    #[test]
    fn push_json_str_agrees_with_serde() {
        let alphabet = [
            'a', ' ', '"', '\\', '\n', '\u{1}', '\u{1f}', 'é', '😀', '\u{7f}',
        ];
        let mut rng = SmallRng::seed_from_u64(14);
        for _ in 0..20_000 {
            let len = rng.random_range(0..40);
            let s: String = (0..len)
                .map(|_| {
                    if rng.random_range(0..3) == 0 {
                        alphabet[rng.random_range(0..alphabet.len())]
                    } else {
                        'x'
                    }
                })
                .collect();
            assert_eq!(ours(&s), serde_json::to_string(&s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn plain_len_stops_at_the_first_byte_to_escape() {
        for (s, n) in [
            ("", 0),
            ("abc", 3),
            ("abcdefgh\"", 8),
            ("abcdefghij\\k", 10),
            ("a\nbcdefghijk", 1),
            ("abcdefghijklmnopq\u{1}", 17),
            ("éé😀", "éé😀".len()),
        ] {
            assert_eq!(plain_len(s.as_bytes()), n, "{s:?}");
        }
    }
}
