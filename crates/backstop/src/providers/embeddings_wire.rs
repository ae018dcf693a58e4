//! OpenAI's embeddings API (`POST {base}/embeddings`), spoken by OpenAI and the compatible
//! servers: the request body, and the answer checked for one vector per input, in order.

use serde::{Deserialize, Serialize};

use super::http::tokens;
use super::openai_wire::{ErrorValue, in_band_error};
use crate::{EmbeddingRequest, EmbeddingUsage, Embeddings, ProviderError};

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    input: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<u32>,
    /// Always floats upstream; a gateway client asking for base64 gets it encoded here.
    encoding_format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
}

/// The JSON body for `request` to `model`.
pub(crate) fn request_body(model: &str, request: &EmbeddingRequest) -> Vec<u8> {
    let body = Body {
        model,
        input: &request.input,
        dimensions: request.dimensions,
        encoding_format: "float",
        user: request.user.as_deref(),
    };
    // A struct of strings, numbers and a slice of strings always serializes.
    serde_json::to_vec(&body).unwrap_or_default()
}

#[derive(Deserialize)]
struct List {
    #[serde(default)]
    data: Vec<Item>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<ErrorValue>,
}

#[derive(Deserialize)]
struct Item {
    index: usize,
    embedding: Vec<f32>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    total_tokens: u64,
}

/// Reads a 2xx answer to `request`: exactly one vector per input, indices 0..n, all of one
/// size (the requested `dimensions` when given). Anything else is a protocol error, so the
/// chain tries the next provider rather than hand back vectors that do not line up.
pub(crate) fn parse(
    body: &[u8],
    request: &EmbeddingRequest,
    fallback_model: &str,
) -> Result<Embeddings, ProviderError> {
    let list: List = super::http::from_json_body(body)
        .map_err(|e| ProviderError::protocol(format!("malformed embeddings answer: {e}")))?;
    if let Some(error) = list.error {
        return Err(in_band_error(&error));
    }
    let n = request.input.len();
    if list.data.len() != n {
        return Err(ProviderError::protocol(format!(
            "embeddings answer has {} vectors for {n} inputs",
            list.data.len()
        )));
    }
    let mut vectors: Vec<Option<Vec<f32>>> = vec![None; n];
    for item in list.data {
        let slot = vectors.get_mut(item.index).ok_or_else(|| {
            ProviderError::protocol(format!(
                "embeddings answer has index {} for {n} inputs",
                item.index
            ))
        })?;
        if slot.replace(item.embedding).is_some() {
            return Err(ProviderError::protocol(format!(
                "embeddings answer repeats index {}",
                item.index
            )));
        }
    }
    // Every slot is filled: n items, no index repeated, all below n.
    let vectors: Vec<Vec<f32>> = vectors.into_iter().flatten().collect();
    let size = vectors.first().map_or(0, Vec::len);
    if let Some(v) = vectors.iter().find(|v| v.len() != size) {
        return Err(ProviderError::protocol(format!(
            "embeddings answer mixes vector sizes {size} and {}",
            v.len()
        )));
    }
    if let Some(d) = request.dimensions
        && n > 0
        && size != d as usize
    {
        return Err(ProviderError::protocol(format!(
            "embeddings answer has {size} dimensions, {d} were asked for"
        )));
    }
    let model = list.model.unwrap_or_else(|| fallback_model.to_owned());
    let mut out = Embeddings::new(vectors, model);
    if let Some(u) = list.usage {
        out = out.with_usage(EmbeddingUsage::new(
            tokens(u.prompt_tokens),
            tokens(u.total_tokens),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn req(n: usize) -> EmbeddingRequest {
        EmbeddingRequest::new((0..n).map(|i| format!("text {i}")))
    }

    #[test]
    fn documented_answer_parses_in_index_order() {
        // OpenAI's documented shape, items deliberately out of order.
        let body = br#"{"object":"list","data":[
            {"object":"embedding","index":1,"embedding":[0.5,0.25]},
            {"object":"embedding","index":0,"embedding":[0.0023064255,-0.009327292]}],
            "model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}"#;
        let e = parse(body, &req(2), "fallback").unwrap();
        assert_eq!(
            e.vectors,
            vec![vec![0.0023064255, -0.009327292], vec![0.5, 0.25]]
        );
        assert_eq!(e.model, "text-embedding-3-small");
        assert_eq!(e.usage, Some(EmbeddingUsage::new(8, 8)));
    }

    #[test]
    fn vectors_that_do_not_line_up_are_protocol_errors() {
        let cases: [(&[u8], usize, Option<u32>, &str); 5] = [
            (
                br#"{"data":[{"index":0,"embedding":[1.0]}]}"#,
                2,
                None,
                "1 vectors for 2 inputs",
            ),
            (
                br#"{"data":[{"index":0,"embedding":[1.0]},{"index":0,"embedding":[1.0]}]}"#,
                2,
                None,
                "repeats index 0",
            ),
            (
                br#"{"data":[{"index":5,"embedding":[1.0]}]}"#,
                1,
                None,
                "index 5 for 1 inputs",
            ),
            (
                br#"{"data":[{"index":0,"embedding":[1.0]},{"index":1,"embedding":[1.0,2.0]}]}"#,
                2,
                None,
                "mixes vector sizes 1 and 2",
            ),
            (
                br#"{"data":[{"index":0,"embedding":[1.0,2.0]}]}"#,
                1,
                Some(3),
                "2 dimensions, 3 were asked for",
            ),
        ];
        for (body, n, dims, says) in cases {
            let mut r = req(n);
            r.dimensions = dims;
            let e = parse(body, &r, "m").unwrap_err();
            assert_eq!(e.kind, ErrorKind::Protocol, "{says}");
            assert!(e.message.contains(says), "{} should say {says}", e.message);
        }
    }

    #[test]
    fn malformed_and_in_band_errors_are_classified() {
        let e = parse(b"<html>", &req(1), "m").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Protocol);
        let e = parse(
            br#"{"error":{"message":"The server is overloaded","type":"server_error"}}"#,
            &req(1),
            "m",
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Overloaded);
    }

    #[test]
    fn request_body_asks_for_floats_with_the_optional_fields() {
        let r = EmbeddingRequest::new(["a", "b"]).dimensions(256).user("u1");
        let v: serde_json::Value = serde_json::from_slice(&request_body("m", &r)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"model":"m","input":["a","b"],"dimensions":256,
                "encoding_format":"float","user":"u1"})
        );
        let v: serde_json::Value =
            serde_json::from_slice(&request_body("m", &EmbeddingRequest::new(["a"]))).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"model":"m","input":["a"],"encoding_format":"float"})
        );
    }
}
