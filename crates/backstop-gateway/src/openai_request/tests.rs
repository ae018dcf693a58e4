//! Request parsing: every parameter lands in the library's types; what has no provider path is
//! refused naming the field.

use super::*;

fn bad(body: &str) -> BadRequest {
    match parse_request(body.as_bytes()) {
        Ok(r) => panic!("accepted {body}: {r:?}"),
        Err(e) => e,
    }
}

#[test]
fn parses_a_plain_request() {
    let r = parse_request(
        br#"{"model":"default","messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hi "},{"type":"text","text":"there"}]}],"temperature":0.2,"max_tokens":64,"stop":"END","stream":true,"stream_options":{"include_usage":true},"user":"u1"}"#,
    )
    .unwrap();
    assert_eq!(r.chain, "default");
    assert!(r.stream && r.include_usage);
    assert_eq!(
        r.request.messages,
        vec![Message::system("be brief"), Message::user("hi there")]
    );
    assert_eq!(r.request.config.temperature, Some(0.2));
    assert_eq!(r.request.config.max_tokens, Some(64));
    assert_eq!(r.request.config.stop, vec!["END".to_string()]);
}

#[test]
fn a_body_that_is_not_utf8_is_refused_saying_where() {
    // The parse checks the whole body's UTF-8 first; a body that fails it still gets serde's
    // own error, with its position.
    let e = parse_request(
        b"{\"model\":\"m\xff\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
    )
    .unwrap_err();
    assert!(e.message.contains("not valid JSON"), "{}", e.message);
    assert!(
        e.message
            .contains("invalid unicode code point at line 1 column 12"),
        "{}",
        e.message
    );
    // Multi-byte UTF-8 is taken as it is.
    let r = parse_request(
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"h\u{e9}llo \u{1f600}\"}]}"
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(
        r.request.messages,
        vec![Message::user("h\u{e9}llo \u{1f600}")]
    );
}

#[test]
fn errors_name_the_field() {
    assert_eq!(
        bad(r#"{"model":"m","messages":[]}"#).param.as_deref(),
        Some("messages")
    );
    assert_eq!(
        bad(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]}"#)
            .param
            .as_deref(),
        Some("tools[0].function")
    );
    assert_eq!(
        bad(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"n":0}"#)
            .param
            .as_deref(),
        Some("n")
    );
    assert_eq!(
        bad(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":-5}"#)
            .param
            .as_deref(),
        Some("max_tokens")
    );
    assert_eq!(
        bad(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":"5"}"#)
            .param
            .as_deref(),
        Some("max_tokens")
    );
    assert_eq!(
        bad(r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}"#).param.as_deref(),
        Some("messages[0].content[0].image_url.url")
    );
    assert_eq!(
        bad(r#"{"model":"m","messages":[{"role":"wizard","content":"x"}]}"#)
            .param
            .as_deref(),
        Some("messages[0].role")
    );
    let e = bad(r#"{"model":"m","messages":[{"role":"user","content":"x"}"#);
    assert!(e.message.contains("not valid JSON"), "{e:?}");
    let missing = bad(r#"{"messages":[{"role":"user","content":"x"}]}"#);
    assert!(
        missing.message.starts_with("missing field `model`"),
        "{missing:?}"
    );
}

#[test]
fn every_parameter_lands_in_the_request() {
    let r = parse_request(
        br#"{"model":"default","messages":[
            {"role":"developer","content":"rules"},
            {"role":"user","name":"ann","content":[{"type":"text","text":"what is this?"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"high"}}]},
            {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"look","arguments":"{\"q\":1}"}}]},
            {"role":"tool","tool_call_id":"call_1","content":"a cat"}],
          "tools":[{"type":"function","function":{"name":"look","description":"d","parameters":{"type":"object"},"strict":true}}],
          "tool_choice":{"type":"function","function":{"name":"look"}},
          "parallel_tool_calls":false,
          "response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{"type":"object"},"strict":true}},
          "seed":7,"frequency_penalty":0.5,"presence_penalty":-0.5,"logit_bias":{"50256":-100},
          "logprobs":true,"top_logprobs":3,"user":"u1","n":2,"reasoning_effort":"low",
          "metadata":{"k":"v"},"store":true,"service_tier":"flex",
          "max_completion_tokens":50,"stop":["END"],"temperature":0.3,"top_p":0.9,
          "prediction":{"type":"content","content":"x"},"verbosity":"low","web_search_options":null}"#,
    )
    .unwrap();
    let q = &r.request;
    assert_eq!(q.messages[0], Message::system("rules"));
    assert_eq!(q.messages[1].name.as_deref(), Some("ann"));
    assert_eq!(
        q.messages[1].parts[1],
        ContentPart::Image(Image::base64("image/png", "iVBORw0KGgo=").detail("high"))
    );
    assert_eq!(q.messages[1].content, "what is this?");
    assert_eq!(
        q.messages[2].tool_calls,
        [ToolCall::new("call_1", "look", "{\"q\":1}")]
    );
    assert_eq!(q.messages[3], Message::tool_result("call_1", "a cat"));
    assert_eq!(
        q.tools,
        [Tool::new("look", serde_json::json!({"type":"object"}))
            .description("d")
            .strict(true)]
    );
    assert_eq!(q.tool_choice, Some(ToolChoice::Function("look".into())));
    assert_eq!(q.parallel_tool_calls, Some(false));
    assert!(
        matches!(&q.response_format, Some(ResponseFormat::JsonSchema { name, strict: Some(true), .. }) if name == "s")
    );
    let p = &q.params;
    assert_eq!(p.seed, Some(7));
    assert_eq!(
        (p.frequency_penalty, p.presence_penalty),
        (Some(0.5), Some(-0.5))
    );
    assert_eq!(p.logit_bias.as_ref().unwrap()["50256"], -100);
    assert_eq!((p.logprobs, p.top_logprobs), (Some(true), Some(3)));
    assert_eq!(p.user.as_deref(), Some("u1"));
    assert_eq!(p.n, Some(2));
    assert_eq!(p.reasoning_effort.as_deref(), Some("low"));
    assert_eq!(p.metadata.as_ref().unwrap()["k"], "v");
    assert_eq!(p.store, Some(true));
    assert_eq!(p.service_tier.as_deref(), Some("flex"));
    let (format, extra) = p.extra.as_ref().unwrap();
    assert_eq!(*format, ApiFormat::OpenAi);
    let mut keys: Vec<&str> = extra.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["prediction", "verbosity"],
        "nulls are absent, not extras"
    );
    assert_eq!(q.config.max_tokens, Some(50));
    assert_eq!(q.config.stop, ["END"]);
}

#[test]
fn an_echoed_assistant_message_is_taken_as_sdks_send_it() {
    // The OpenAI SDK echoes `refusal: null`, `annotations: []`, `audio: null` back.
    let r = parse_request(
        br#"{"model":"m","messages":[{"role":"user","content":"x"},
            {"role":"assistant","content":"a","refusal":null,"annotations":[],"audio":null,"function_call":null},
            {"role":"assistant","content":null,"refusal":"I can't help with that."},
            {"role":"user","content":"y"}]}"#,
    )
    .unwrap();
    assert_eq!(r.request.messages[1], Message::assistant("a"));
    assert_eq!(
        r.request.messages[2],
        Message::assistant("I can't help with that.")
    );
}

#[test]
fn a_system_only_conversation_is_accepted() {
    let r = parse_request(br#"{"model":"m","messages":[{"role":"system","content":"say hi"}]}"#)
        .unwrap();
    assert_eq!(r.request.messages, [Message::system("say hi")]);
}

#[test]
fn what_has_no_provider_path_is_refused_by_name() {
    let base = r#""model":"m","messages":[{"role":"user","content":"x"}]"#;
    for (extra, param) in [
        (r#""functions":[]"#, "functions"),
        (r#""function_call":"auto""#, "function_call"),
        (r#""audio":{"voice":"alloy","format":"wav"}"#, "audio"),
        (r#""modalities":["text","audio"]"#, "modalities"),
        (
            r#""tools":[{"type":"custom","custom":{"name":"x"}}]"#,
            "tools[0].type",
        ),
        (r#""tool_choice":"sometimes""#, "tool_choice"),
        (
            r#""response_format":{"type":"yaml"}"#,
            "response_format.type",
        ),
        (r#""top_logprobs":50"#, "top_logprobs"),
        (r#""frequency_penalty":3"#, "frequency_penalty"),
    ] {
        let e = bad(&format!("{{{base},{extra}}}"));
        assert_eq!(e.param.as_deref(), Some(param), "{extra}: {e:?}");
    }
    let e = bad(
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"x","format":"wav"}}]}]}"#,
    );
    assert_eq!(e.param.as_deref(), Some("messages[0].content[0]"));
    for (body, param) in [
        (
            r#"{"model":"m","messages":[{"role":"user","content":"x","audio":{"id":"a"}}]}"#,
            "messages[0].audio",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x","cache_control":{"type":"ephemeral"}}]}]}"#,
            "messages[0].content[0].cache_control",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","examples":[1]}}]}"#,
            "tools[0].function.examples",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"},"cache_control":{}}]}"#,
            "tools[0].cache_control",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":"x","refusal":"no"}]}"#,
            "messages[0].refusal",
        ),
    ] {
        assert_eq!(bad(body).param.as_deref(), Some(param), "{body}");
    }
    let e = bad(r#"{"model":"m","messages":[{"role":"tool","content":"x"}]}"#);
    assert_eq!(e.param.as_deref(), Some("messages[0].tool_call_id"));
    let e = bad(
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,xyz"}}]}]}"#,
    );
    assert_eq!(
        e.param.as_deref(),
        Some("messages[0].content[0].image_url.url")
    );
}

#[test]
fn content_of_the_wrong_shape_is_refused_naming_the_part_at_fault() {
    let e = bad(r#"{"model":"m","messages":[{"role":"user","content":5}]}"#);
    assert_eq!(e.param.as_deref(), Some("messages[0].content"));
    assert!(
        e.message.contains("a string or an array of content parts"),
        "{}",
        e.message
    );
    // A bad part is named down to its field, not "did not match any variant".
    let e = bad(
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":7}]}]}"#,
    );
    assert_eq!(e.param.as_deref(), Some("messages[0].content[1].text"));
    assert!(e.message.contains("expected a string"), "{}", e.message);
    let r = parse_request(br#"{"model":"m","messages":[{"role":"user","content":"a\u00e9"}]}"#)
        .unwrap();
    assert_eq!(r.request.messages, vec![Message::user("a\u{e9}")]);
}
