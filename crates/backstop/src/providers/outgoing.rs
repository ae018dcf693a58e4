//! One request's headers: the endpoint's own (content type, key, version), with the request's
//! id and trace context set over them. Read in place by the direct client, so the endpoint's
//! map is not cloned and re-hashed per request (1,200 instructions of a proxied request).

use http::{HeaderMap, HeaderName, HeaderValue};

/// The endpoint's headers and up to two set over them (each replacing the same name).
pub(crate) struct Outgoing<'a> {
    base: &'a HeaderMap,
    over: [Option<(HeaderName, HeaderValue)>; 2],
}

impl<'a> Outgoing<'a> {
    /// `base` as it is.
    #[cfg(test)]
    pub(crate) fn new(base: &'a HeaderMap) -> Self {
        Outgoing {
            base,
            over: [None, None],
        }
    }

    /// `base` with `over` set on it, as `HeaderMap::insert` would.
    pub(crate) fn with(base: &'a HeaderMap, over: [Option<(HeaderName, HeaderValue)>; 2]) -> Self {
        Outgoing { base, over }
    }

    fn set(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.over.iter().flatten().map(|(n, v)| (n, v))
    }

    /// Every header, each set one once, in place of the endpoint's values for its name.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        let replaced = |name: &HeaderName| self.set().any(|(n, _)| n == name);
        self.base
            .iter()
            .filter(move |(name, _)| !replaced(name))
            .chain(self.set())
    }

    /// Whether a header of this name goes out.
    pub(crate) fn contains(&self, name: &HeaderName) -> bool {
        self.base.contains_key(name) || self.set().any(|(n, _)| n == name)
    }

    /// How many values go out, at most (for sizing a buffer).
    pub(crate) fn len(&self) -> usize {
        self.base.len() + self.set().count()
    }

    /// The headers as a map, for a client that takes one (reqwest).
    pub(crate) fn to_map(&self) -> HeaderMap {
        let mut map = self.base.clone();
        for (name, value) in self.set() {
            map.insert(name.clone(), value.clone());
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(o: &Outgoing<'_>) -> Vec<(String, String)> {
        let mut v: Vec<_> = o
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn set_headers_replace_the_endpoints_and_match_the_map() {
        let mut base = HeaderMap::new();
        base.insert("content-type", HeaderValue::from_static("application/json"));
        base.append("x-request-id", HeaderValue::from_static("configured-1"));
        base.append("x-request-id", HeaderValue::from_static("configured-2"));
        let o = Outgoing::with(
            &base,
            [
                Some((
                    HeaderName::from_static("x-request-id"),
                    HeaderValue::from_static("req_7"),
                )),
                Some((
                    HeaderName::from_static("traceparent"),
                    HeaderValue::from_static(
                        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                    ),
                )),
            ],
        );
        let expected = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            (
                "traceparent".to_owned(),
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
            ),
            ("x-request-id".to_owned(), "req_7".to_owned()),
        ];
        assert_eq!(pairs(&o), expected);
        let map = o.to_map();
        let mut from_map: Vec<_> = map
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        from_map.sort();
        assert_eq!(
            from_map, expected,
            "the map a reqwest send gets is the same"
        );
        assert!(o.contains(&HeaderName::from_static("traceparent")));
        assert!(!o.contains(&http::header::HOST));
        assert!(o.len() >= expected.len());
    }

    #[test]
    fn nothing_set_is_the_endpoints_headers() {
        let mut base = HeaderMap::new();
        base.insert("authorization", HeaderValue::from_static("Bearer k"));
        let o = Outgoing::new(&base);
        assert_eq!(
            pairs(&o),
            vec![("authorization".to_owned(), "Bearer k".to_owned())]
        );
        assert_eq!(o.to_map(), base);
    }
}
