//! Key paths, and finding them in the spanned TOML tree (and back).

use std::fmt;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seg {
    Key(String),
    Index(usize),
}

/// A path such as `providers.openai.breaker.window` or `chains.default.providers[1]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct KeyPath(pub(super) Vec<Seg>);

impl KeyPath {
    pub(super) fn key(&self, key: &str) -> KeyPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        KeyPath(segs)
    }

    pub(super) fn index(&self, index: usize) -> KeyPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        KeyPath(segs)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    let bare = !key.is_empty()
                        && key
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                    if bare {
                        f.write_str(key)?;
                    } else {
                        write!(f, "{key:?}")?;
                    }
                }
                Seg::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Whether an issue is about a key's presence (point at the key) or its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    Key,
    Value,
}

/// The span for `path` in the document: the deepest existing prefix of the path; the key or
/// the value of the final segment depending on `target`.
pub(super) fn locate(doc: &Spanned<DeTable<'_>>, path: &[Seg], target: Target) -> Range<usize> {
    let root = doc.span().start..doc.span().start;
    locate_in_table(doc.get_ref(), path, target, root)
}

pub(super) fn locate_in_table(
    table: &DeTable<'_>,
    path: &[Seg],
    target: Target,
    fallback: Range<usize>,
) -> Range<usize> {
    let Some((Seg::Key(want), rest)) = path.split_first() else {
        return fallback;
    };
    let Some((key, value)) = table.iter().find(|(k, _)| k.get_ref() == want) else {
        return fallback;
    };
    if rest.is_empty() && target == Target::Key {
        return key.span();
    }
    locate_in_value(value, rest, target)
}

pub(super) fn locate_in_value(
    value: &Spanned<DeValue<'_>>,
    path: &[Seg],
    target: Target,
) -> Range<usize> {
    match (value.get_ref(), path.first()) {
        (DeValue::Table(table), Some(Seg::Key(_))) => {
            locate_in_table(table, path, target, value.span())
        }
        (DeValue::Array(items), Some(Seg::Index(i))) => match items.get(*i) {
            Some(item) => locate_in_value(item, &path[1..], target),
            None => value.span(),
        },
        _ => value.span(),
    }
}

/// The key path of the smallest key or value whose span contains `span`.
pub(super) fn path_at(doc: &Spanned<DeTable<'_>>, span: &Range<usize>) -> KeyPath {
    let mut best: Option<(usize, Vec<Seg>)> = None;
    let mut prefix = Vec::new();
    search_table(doc.get_ref(), span, &mut prefix, &mut best);
    KeyPath(best.map(|(_, path)| path).unwrap_or_default())
}

pub(super) fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

pub(super) fn consider(
    candidate: &Range<usize>,
    span: &Range<usize>,
    prefix: &[Seg],
    best: &mut Option<(usize, Vec<Seg>)>,
) {
    if !contains(candidate, span) {
        return;
    }
    let len = candidate.len();
    let better = match best {
        None => true,
        Some((best_len, best_path)) => {
            len < *best_len || (len == *best_len && prefix.len() > best_path.len())
        }
    };
    if better {
        *best = Some((len, prefix.to_vec()));
    }
}

pub(super) fn search_table(
    table: &DeTable<'_>,
    span: &Range<usize>,
    prefix: &mut Vec<Seg>,
    best: &mut Option<(usize, Vec<Seg>)>,
) {
    for (key, value) in table.iter() {
        prefix.push(Seg::Key(key.get_ref().to_string()));
        consider(&key.span(), span, prefix, best);
        search_value(value, span, prefix, best);
        prefix.pop();
    }
}

pub(super) fn search_value(
    value: &Spanned<DeValue<'_>>,
    span: &Range<usize>,
    prefix: &mut Vec<Seg>,
    best: &mut Option<(usize, Vec<Seg>)>,
) {
    consider(&value.span(), span, prefix, best);
    match value.get_ref() {
        DeValue::Table(table) => search_table(table, span, prefix, best),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                prefix.push(Seg::Index(i));
                search_value(item, span, prefix, best);
                prefix.pop();
            }
        }
        _ => {}
    }
}
