//! A JSON value valid against a simple JSON Schema: what the simulator answers when a request
//! asks for structured output, and the arguments of the tool calls it makes.

use serde_json::{Map, Value, json};

/// Deepest schema nesting followed; below it, `null`.
const MAX_DEPTH: usize = 16;

/// An example instance of `schema`: `enum`/`const` take their first value, objects get every
/// listed property (an object without any gets `{"answer": ...}`), arrays one item, strings
/// `"sim"`, numbers their `minimum` or 1. `anyOf`/`oneOf` take the first branch.
pub(crate) fn example(schema: &Value) -> Value {
    at_depth(schema, 0)
}

fn at_depth(schema: &Value, depth: usize) -> Value {
    let Some(s) = schema.as_object() else {
        return json!("sim");
    };
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    if let Some(c) = s.get("const") {
        return c.clone();
    }
    if let Some(first) = s
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(first) = s.get(key).and_then(Value::as_array).and_then(|e| e.first()) {
            return at_depth(first, depth + 1);
        }
    }
    let kind = match s.get("type") {
        Some(Value::String(t)) => t.as_str(),
        // A list of types: the first that is not null.
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if s.contains_key("properties") => "object",
        _ if s.contains_key("items") => "array",
        _ => "string",
    };
    let minimum = s.get("minimum").and_then(Value::as_f64);
    match kind {
        "object" => {
            let mut out = Map::new();
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                for (name, sub) in props {
                    out.insert(name.clone(), at_depth(sub, depth + 1));
                }
            }
            if out.is_empty() && s.get("additionalProperties") != Some(&Value::Bool(false)) {
                out.insert("answer".into(), json!("simulated by backstop-sim"));
            }
            Value::Object(out)
        }
        "array" => {
            let item = s
                .get("items")
                .map_or(json!("sim"), |i| at_depth(i, depth + 1));
            json!([item])
        }
        "integer" => json!(minimum.map_or(1, |m| m.ceil() as i64)),
        "number" => json!(minimum.unwrap_or(1.5)),
        "boolean" => json!(true),
        "null" => Value::Null,
        _ => json!("sim"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_match_their_schema() {
        let schema = json!({
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer", "minimum": 3},
                "unit": {"enum": ["celsius", "fahrenheit"]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "maybe": {"type": ["null", "number"]},
                "nested": {"type": "object", "properties": {"ok": {"type": "boolean"}}, "additionalProperties": false}
            },
            "required": ["city", "days", "unit", "tags", "maybe", "nested"],
            "additionalProperties": false
        });
        assert_eq!(
            example(&schema),
            json!({"city": "sim", "days": 3, "unit": "celsius", "tags": ["sim"], "maybe": 1.5, "nested": {"ok": true}})
        );
        assert_eq!(
            example(&json!({"type": "object"})),
            json!({"answer": "simulated by backstop-sim"})
        );
    }
}
