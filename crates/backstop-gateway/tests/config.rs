//! Config loading: the example files, defaults, and one precise error per kind of mistake.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use backstop_gateway::config::{
    BreakerSettings, Config, ConfigError, DEFAULT_RESERVED_TOKENS, DEFAULT_STATE_TIMEOUT,
    Diagnostic, OnRedisError, ProviderKind, ServerConfig, Strategy,
};
use backstop_gateway::duration::{DurationErrorKind, format_duration, parse_duration};

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(name)
}

fn parse_err(text: &str) -> Diagnostic {
    match Config::parse(text, "test.toml") {
        Ok(config) => panic!("expected an error, got {config:#?}\n--- input ---\n{text}"),
        Err(err) => {
            let line = err.to_string();
            assert!(!line.contains('\n'), "Display must be one line: {line:?}");
            err.diagnostic()
                .unwrap_or_else(|| panic!("no diagnostic in {err:?}"))
                .clone()
        }
    }
}

// ---------------------------------------------------------------------------------------
// Example files and defaults
// ---------------------------------------------------------------------------------------

#[test]
fn example_backstop_toml_loads() {
    let config = Config::load(&repo_file("examples/backstop.toml")).unwrap();
    assert_eq!(
        config.server.listen,
        "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        config.server.client_keys_env.as_deref(),
        Some("BACKSTOP_CLIENT_KEYS")
    );
    assert_eq!(
        config.server.admin_key_env.as_deref(),
        Some("BACKSTOP_ADMIN_KEY")
    );
    assert_eq!(config.server.max_body_bytes, 8 * 1024 * 1024);

    let names: Vec<&str> = config.providers.keys().map(String::as_str).collect();
    assert_eq!(names, ["anthropic", "groq", "openai", "openai_embed"]);
    assert_eq!(config.providers["openai_embed"].dimensions, Some(1536));
    assert_eq!(config.providers["openai"].dimensions, None);
    assert_eq!(config.chains["embed"].dimensions, Some(1536));
    assert_eq!(config.chains["default"].dimensions, None);

    let openai = &config.providers["openai"];
    assert_eq!(openai.kind, ProviderKind::OpenAi);
    assert_eq!(
        openai.breaker,
        BreakerSettings::default(),
        "the example spells out the defaults"
    );
    assert_eq!(openai.temperature, Some(0.7));
    assert_eq!(openai.max_tokens, Some(1024));

    // Defaults resolved per kind.
    let anthropic = &config.providers["anthropic"];
    assert_eq!(anthropic.kind, ProviderKind::Anthropic);
    assert_eq!(anthropic.api_key_env.as_deref(), Some("ANTHROPIC_API_KEY"));
    assert_eq!(anthropic.base_url, "https://api.anthropic.com");
    assert_eq!(anthropic.timeout, Duration::from_secs(30));
    assert_eq!(anthropic.retries, 1);
    assert_eq!(anthropic.breaker, BreakerSettings::default());
    assert_eq!(anthropic.temperature, None);
    assert!(anthropic.stop.is_empty());

    let groq = &config.providers["groq"];
    assert_eq!(groq.api_key_env.as_deref(), Some("GROQ_API_KEY"));
    assert_eq!(groq.base_url, "https://api.groq.com");
    assert_eq!(groq.timeout, Duration::from_secs(15));

    let default = &config.chains["default"];
    assert_eq!(default.strategy, Strategy::Priority);
    let members: Vec<&str> = default.providers.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(members, ["openai", "anthropic", "groq"]);
    assert!(default.providers.iter().all(|m| m.weight.is_none()));
    assert_eq!(default.timeout, Some(Duration::from_secs(60)));
    assert_eq!(default.ttft_timeout, Some(Duration::from_secs(10)));
    assert_eq!(default.idle_timeout, Some(Duration::from_secs(30)));

    let balanced = &config.chains["balanced"];
    assert_eq!(balanced.strategy, Strategy::Weighted);
    let weights: Vec<(&str, Option<f64>)> = balanced
        .providers
        .iter()
        .map(|m| (m.name.as_str(), m.weight))
        .collect();
    assert_eq!(weights, [("openai", Some(0.7)), ("anthropic", Some(0.3))]);
}

#[test]
fn example_demo_toml_loads() {
    let config = Config::load(&repo_file("examples/demo.toml")).unwrap();
    let expect = [
        ("openai", ProviderKind::OpenAi, "http://127.0.0.1:18101/v1"),
        (
            "anthropic",
            ProviderKind::Anthropic,
            "http://127.0.0.1:18102",
        ),
        ("groq", ProviderKind::Groq, "http://127.0.0.1:18103"),
    ];
    // Chat providers, then the two embeddings providers of the `embed` chain.
    assert_eq!(config.providers.len(), 5);
    assert_eq!(config.chains["embed"].dimensions, Some(8));
    for (name, kind, url) in expect {
        let p = &config.providers[name];
        assert_eq!(p.kind, kind, "{name}");
        assert_eq!(p.base_url, url, "{name}");
        assert_eq!(
            p.api_key_env.as_deref(),
            Some("BACKSTOP_DEMO_KEY"),
            "{name}"
        );
        assert_eq!(p.breaker.failure_threshold(), Some(2), "{name}");
        assert_eq!(p.breaker.recovery_timeout, Duration::from_secs(2), "{name}");
        // Unset breaker fields keep their defaults.
        assert_eq!(p.breaker.window, Duration::from_secs(60), "{name}");
        assert_eq!(p.breaker.half_open_probes, 1, "{name}");
    }
    let default = &config.chains["default"];
    assert_eq!(default.strategy, Strategy::Priority);
    assert_eq!(default.providers.len(), 3);
    assert_eq!(default.timeout, Some(Duration::from_secs(10)));
    let balanced = &config.chains["balanced"];
    assert_eq!(balanced.strategy, Strategy::Weighted);
    assert_eq!(balanced.providers[0].name, "openai");
    assert_eq!(balanced.providers[0].weight, Some(0.7));
    assert_eq!(balanced.providers[1].name, "anthropic");
    assert_eq!(balanced.providers[1].weight, Some(0.3));
    assert_eq!(balanced.timeout, Some(Duration::from_secs(10)));
}

#[test]
fn minimal_config_gets_every_default() {
    let config = Config::load(&fixture("minimal.toml")).unwrap();
    let server = &config.server;
    assert_eq!(*server, ServerConfig::default());
    assert_eq!(
        server.listen,
        "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(server.client_keys_env, None);
    assert_eq!(server.admin_key_env, None);
    assert_eq!(server.max_body_bytes, 8_388_608);
    assert_eq!(server.header_timeout, Duration::from_secs(10));
    assert_eq!(server.body_timeout, Duration::from_secs(30));
    assert_eq!(server.shutdown_grace, Duration::from_secs(30));
    assert_eq!(server.workers, None, "one per core");

    let local = &config.providers["local"];
    assert_eq!(local.kind, ProviderKind::OpenAiCompatible);
    assert_eq!(
        local.api_key_env, None,
        "openai-compatible has no default key"
    );
    assert_eq!(
        local.base_url, "http://localhost:11434/v1",
        "trailing / trimmed"
    );
    assert_eq!(local.timeout, Duration::from_secs(30));
    assert_eq!(local.retries, 1);
    assert_eq!(
        local.breaker,
        BreakerSettings::default(),
        "no breaker line: the library's default (failure-rate mode)"
    );
    assert_eq!(local.breaker.mode, backstop::BreakerMode::DEFAULT_RATE);
    assert_eq!(
        (local.temperature, local.max_tokens, local.top_p),
        (None, None, None)
    );

    let chain = &config.chains["default"];
    assert_eq!(chain.strategy, Strategy::Priority);
    assert_eq!(
        (chain.timeout, chain.ttft_timeout, chain.idle_timeout),
        (None, None, None)
    );
}

#[test]
fn kind_defaults() {
    assert_eq!(
        ProviderKind::OpenAi.default_api_key_env(),
        Some("OPENAI_API_KEY")
    );
    assert_eq!(
        ProviderKind::OpenAi.default_base_url(),
        Some("https://api.openai.com/v1")
    );
    assert_eq!(ProviderKind::OpenAiCompatible.default_api_key_env(), None);
    assert_eq!(ProviderKind::OpenAiCompatible.default_base_url(), None);
    let spelled: Vec<&str> = ProviderKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(
        spelled,
        ["openai", "anthropic", "groq", "openai-compatible"]
    );
}

#[test]
fn optional_fields_parse() {
    let config = Config::parse(
        r#"
[server]
listen = "[::1]:9000"
max_body_bytes = 1024
workers = 3

[providers.a]
kind = "openai"
model = "m"
retries = 0
temperature = 1
top_p = 0.5
max_tokens = 10
stop = ["\n\n", "END"]
breaker = { failure_threshold = 10000, half_open_probes = 1000, window = "1.5s" }

[chains.c]
providers = [{ name = "a" }]
"#,
        "inline",
    )
    .unwrap();
    assert_eq!(config.server.listen, "[::1]:9000".parse().unwrap());
    assert_eq!(config.server.max_body_bytes, 1024);
    assert_eq!(config.server.workers, Some(3));
    let a = &config.providers["a"];
    assert_eq!(a.retries, 0);
    assert_eq!(a.temperature, Some(1.0));
    assert_eq!(a.top_p, Some(0.5));
    assert_eq!(a.max_tokens, Some(10));
    assert_eq!(a.stop, ["\n\n", "END"]);
    assert_eq!(a.breaker.failure_threshold(), Some(10_000));
    assert_eq!(a.breaker.half_open_probes, 1_000);
    assert_eq!(a.breaker.window, Duration::from_millis(1500));
    assert_eq!(config.chains["c"].providers[0].weight, None);
}

#[test]
fn partial_failure_settings_parse() {
    let config = Config::parse(
        r#"
[providers.a]
kind = "openai"
model = "m"
breaker = { failure_rate = 0.25, minimum_calls = 40, outage_failures = 0, window = "30s", recovery_timeout = "2s", max_recovery_timeout = "1m" }
hold = { max = "10s", initial = "250ms" }

[providers.b]
kind = "groq"
model = "m"

[chains.c]
providers = ["a", "b"]
fall_through_on = ["content_filtered"]
when_all_open = "probe"
retry_budget = { ratio = 0.5, min_per_second = 2, ttl = "30s" }

[chains.d]
providers = ["b"]
retry_budget = false

[chains.e]
providers = ["a", "b"]
stream_resume = true
max_resumes = 1
hedge_after = "750ms"

[chains.f]
providers = ["a", "b"]
hedge_after = { percentile = 95, min = "200ms" }
hedge_budget = 0.05
"#,
        "inline",
    )
    .unwrap();
    let a = &config.providers["a"].breaker;
    assert_eq!(
        a.mode,
        backstop::BreakerMode::Rate {
            failure_rate: 0.25,
            minimum_calls: 40,
            outage_failures: 0,
            outage_time: Duration::from_secs(1),
        }
    );
    assert_eq!(a.window, Duration::from_secs(30));
    assert_eq!(a.recovery_timeout, Duration::from_secs(2));
    assert_eq!(a.max_recovery_timeout, Duration::from_secs(60));
    assert_eq!(a.hold.max, Duration::from_secs(10));
    assert_eq!(a.hold.initial, Duration::from_millis(250));
    let c = &config.chains["c"];
    assert_eq!(
        c.fall_through,
        backstop::FallThrough {
            invalid_request: false,
            content_filtered: true
        },
        "the list replaces the default"
    );
    assert_eq!(
        c.when_all_open,
        backstop_gateway::config::WhenAllOpenSetting::Probe
    );
    let budget = c.retry_budget.unwrap();
    assert_eq!((budget.ratio, budget.min_per_second), (0.5, 2));
    assert_eq!(budget.ttl, Duration::from_secs(30));
    assert_eq!(config.chains["d"].retry_budget, None, "turned off");
    assert!(!config.chains["d"].stream_resume);
    assert_eq!(config.chains["d"].hedge, None);
    let e = &config.chains["e"];
    assert!(e.stream_resume);
    assert_eq!(e.max_resumes, 1);
    assert_eq!(
        e.hedge,
        Some((backstop::HedgeAfter::Fixed(Duration::from_millis(750)), 0.1))
    );
    assert_eq!(
        config.chains["f"].hedge,
        Some((
            backstop::HedgeAfter::Percentile {
                percentile: 95.0,
                min: Duration::from_millis(200)
            },
            0.05
        ))
    );
    assert_eq!(
        config.chains["d"].fall_through,
        backstop::FallThrough::default()
    );
}

// ---------------------------------------------------------------------------------------
// Broken configs: each names the right line, key path and problem
// ---------------------------------------------------------------------------------------

/// A valid provider `a` + chain `c`, for cases that break something else.
const OK_TAIL: &str = r#"
[providers.a]
kind = "openai"
model = "m"

[chains.c]
providers = ["a"]
"#;

struct Case {
    name: &'static str,
    text: String,
    line: usize,
    path: Option<&'static str>,
    message: &'static str,
}

fn case(
    name: &'static str,
    text: &str,
    line: usize,
    path: &'static str,
    message: &'static str,
) -> Case {
    Case {
        name,
        text: text.to_owned(),
        line,
        path: Some(path),
        message,
    }
}

/// A provider `a` (kind openai) whose body is `body`, starting on line 3, + chain `c`.
fn provider(body: &str) -> String {
    format!("[providers.a]\nkind = \"openai\"\n{body}\n\n[chains.c]\nproviders = [\"a\"]\n")
}

/// Providers `a` and `b` (lines 1-6), then `[chains.c]` on line 8 with `body` from line 9.
fn chain(body: &str) -> String {
    format!(
        "[providers.a]\nkind = \"openai\"\nmodel = \"m\"\n[providers.b]\nkind = \"groq\"\nmodel = \"m\"\n\n[chains.c]\n{body}\n"
    )
}

fn broken_cases() -> Vec<Case> {
    let secret = "secrets are not allowed in the config file; set `api_key_env` to the name of an environment variable";
    vec![
        case(
            "unknown top-level key",
            &format!("bogus = 1\n{OK_TAIL}"),
            1,
            "bogus",
            "unknown key `bogus`",
        ),
        case(
            "unknown key in server",
            &format!("[server]\nlisten = \"127.0.0.1:1\"\nlisen = \"x\"\n{OK_TAIL}"),
            3,
            "server.lisen",
            "unknown key `lisen`",
        ),
        case(
            "unknown key in provider",
            &provider("model = \"m\"\nmodle = \"m\""),
            4,
            "providers.a.modle",
            "unknown key `modle`",
        ),
        case(
            "unknown key in inline breaker",
            &provider("model = \"m\"\nbreaker = { failure_threshold = 2, windw = \"1s\" }"),
            4,
            "providers.a.breaker.windw",
            "unknown key `windw`",
        ),
        case(
            "unknown key in breaker table",
            "[providers.a]\nkind = \"openai\"\nmodel = \"m\"\n[providers.a.breaker]\nfailure_threshold = 2\nthreshold = 3\n[chains.c]\nproviders = [\"a\"]\n",
            6,
            "providers.a.breaker.threshold",
            "unknown key `threshold`",
        ),
        case(
            "unknown key in chain",
            &chain("providers = [\"a\"]\nretries = 2"),
            10,
            "chains.c.retries",
            "unknown key `retries`",
        ),
        case(
            "unknown key in chain member",
            &chain("strategy = \"weighted\"\nproviders = [{ name = \"a\", wieght = 1.0 }]"),
            10,
            "chains.c.providers[0].wieght",
            "unknown key `wieght`",
        ),
        case(
            "wrong type for retries",
            &provider("model = \"m\"\nretries = \"two\""),
            4,
            "providers.a.retries",
            "invalid type: string \"two\", expected an integer",
        ),
        case(
            "retries over the limit",
            &provider("model = \"m\"\nretries = 11"),
            4,
            "providers.a.retries",
            "must be between 0 and 10, got 11",
        ),
        case(
            "negative retries",
            &provider("model = \"m\"\nretries = -1"),
            4,
            "providers.a.retries",
            "must be between 0 and 10, got -1",
        ),
        case(
            "bad duration",
            &provider("model = \"m\"\ntimeout = \"30 parsecs\""),
            4,
            "providers.a.timeout",
            "invalid duration \"30 parsecs\": unknown unit \"parsecs\"; expected a number followed by a unit such as ms, s, m or h",
        ),
        case(
            "duration without unit",
            &provider("model = \"m\"\ntimeout = \"30\""),
            4,
            "providers.a.timeout",
            "missing unit",
        ),
        case(
            "duration as a bare number",
            &provider("model = \"m\"\ntimeout = 30"),
            4,
            "providers.a.timeout",
            "expected a duration string",
        ),
        case(
            "negative duration",
            &provider("model = \"m\"\ntimeout = \"-5s\""),
            4,
            "providers.a.timeout",
            "durations cannot be negative",
        ),
        case(
            "zero duration",
            &provider("model = \"m\"\ntimeout = \"0s\""),
            4,
            "providers.a.timeout",
            "must be greater than zero",
        ),
        case(
            "zero breaker window",
            &provider("model = \"m\"\nbreaker = { window = \"0ms\" }"),
            4,
            "providers.a.breaker.window",
            "must be greater than zero",
        ),
        case(
            "zero recovery_timeout",
            &provider("model = \"m\"\n\n[providers.a.breaker]\nrecovery_timeout = \"0s\""),
            6,
            "providers.a.breaker.recovery_timeout",
            "must be greater than zero",
        ),
        case(
            "zero chain timeout",
            &chain("providers = [\"a\"]\ntimeout = \"0s\""),
            10,
            "chains.c.timeout",
            "must be greater than zero",
        ),
        case(
            "zero server header_timeout",
            &format!("[server]\nheader_timeout = \"0s\"\n{OK_TAIL}"),
            2,
            "server.header_timeout",
            "must be greater than zero",
        ),
        case(
            "unknown kind",
            "[providers.a]\nkind = \"opnai\"\nmodel = \"m\"\n[chains.c]\nproviders = [\"a\"]\n",
            2,
            "providers.a.kind",
            "unknown variant `opnai`, expected one of `openai`, `anthropic`, `groq`, `openai-compatible`",
        ),
        case(
            "missing kind",
            "\n[providers.a]\nmodel = \"m\"\n[chains.c]\nproviders = [\"a\"]\n",
            2,
            "providers.a.kind",
            "missing required key `kind`",
        ),
        case(
            "missing model",
            &provider("timeout = \"1s\""),
            1,
            "providers.a.model",
            "missing required key `model`",
        ),
        case(
            "empty model",
            &provider("model = \"  \""),
            3,
            "providers.a.model",
            "`model` must not be empty",
        ),
        case(
            "api_key in the file",
            &provider("model = \"m\"\napi_key = \"sk-live-123\""),
            4,
            "providers.a.api_key",
            secret,
        ),
        case(
            "client_keys in the file",
            &format!("[server]\nclient_keys = \"a,b\"\n{OK_TAIL}"),
            2,
            "server.client_keys",
            "secrets are not allowed in the config file; set `client_keys_env`",
        ),
        case(
            "admin_key in the file",
            &format!("[server]\nadmin_key = \"hunter2\"\n{OK_TAIL}"),
            2,
            "server.admin_key",
            "secrets are not allowed in the config file; set `admin_key_env`",
        ),
        case(
            "bad env var name",
            &provider("model = \"m\"\napi_key_env = \"OPENAI-KEY\""),
            4,
            "providers.a.api_key_env",
            "\"OPENAI-KEY\" is not a valid environment variable name",
        ),
        case(
            "env var name starting with a digit",
            &format!("[server]\nadmin_key_env = \"1ADMIN\"\n{OK_TAIL}"),
            2,
            "server.admin_key_env",
            "is not a valid environment variable name",
        ),
        case(
            "secret pasted into api_key_env",
            &provider("model = \"m\"\napi_key_env = \"sk-proj-abc123\""),
            4,
            "providers.a.api_key_env",
            "looks like a secret",
        ),
        case(
            "openai-compatible without base_url",
            "[providers.local]\nkind = \"openai-compatible\"\nmodel = \"m\"\n[chains.c]\nproviders = [\"local\"]\n",
            1,
            "providers.local.base_url",
            "missing required key `base_url`: kind \"openai-compatible\" has no default",
        ),
        case(
            "bad base_url scheme",
            &provider("model = \"m\"\nbase_url = \"ftp://example.com\""),
            4,
            "providers.a.base_url",
            "\"ftp://example.com\" is not an http:// or https:// URL",
        ),
        case(
            "base_url without scheme",
            &provider("model = \"m\"\nbase_url = \"api.openai.com/v1\""),
            4,
            "providers.a.base_url",
            "is not an http:// or https:// URL",
        ),
        case(
            "base_url with an unclosed IPv6 address",
            &provider("model = \"m\"\nbase_url = \"http://[::1\""),
            4,
            "providers.a.base_url",
            "\"http://[::1\" is not a valid URL: invalid IPv6 address",
        ),
        case(
            "base_url with a bad port",
            &provider("model = \"m\"\nbase_url = \"http://localhost:99999/v1\""),
            4,
            "providers.a.base_url",
            "is not a valid URL: invalid port number",
        ),
        case(
            "base_url without a host",
            &provider("model = \"m\"\nbase_url = \"http:///v1\""),
            4,
            "providers.a.base_url",
            "has no host",
        ),
        case(
            "base_url with an empty port",
            &provider("model = \"m\"\nbase_url = \"http://localhost:\""),
            4,
            "providers.a.base_url",
            "has an empty port",
        ),
        case(
            "base_url with credentials",
            &provider("model = \"m\"\nbase_url = \"https://user:sk-123@example.com/v1\""),
            4,
            "providers.a.base_url",
            "must not carry credentials",
        ),
        case(
            "chain references unknown provider",
            &chain("providers = [\"a\", \"opnai\"]"),
            9,
            "chains.c.providers[1]",
            "unknown provider \"opnai\" (defined: a, b)",
        ),
        case(
            "duplicate provider in chain",
            &chain("providers = [\n  \"a\",\n  \"b\",\n  \"a\",\n]"),
            12,
            "chains.c.providers[2]",
            "provider \"a\" is listed twice in this chain (first at providers[0])",
        ),
        case(
            "empty providers",
            &chain("providers = []"),
            9,
            "chains.c.providers",
            "a chain needs at least one provider",
        ),
        case(
            "chain without providers key",
            &chain("timeout = \"1s\""),
            8,
            "chains.c.providers",
            "missing required key `providers`",
        ),
        case(
            "weight zero",
            &chain("strategy = \"weighted\"\nproviders = [{ name = \"a\", weight = 0 }]"),
            10,
            "chains.c.providers[0].weight",
            "weight must be a finite number greater than 0, got 0",
        ),
        case(
            "weight negative",
            &chain(
                "strategy = \"weighted\"\nproviders = [\n  { name = \"a\", weight = 1 },\n  { name = \"b\", weight = -0.5 },\n]",
            ),
            12,
            "chains.c.providers[1].weight",
            "weight must be a finite number greater than 0, got -0.5",
        ),
        case(
            "weight nan",
            &chain("strategy = \"weighted\"\nproviders = [{ name = \"a\", weight = nan }]"),
            10,
            "chains.c.providers[0].weight",
            "weight must be a finite number greater than 0, got NaN",
        ),
        case(
            "weight inf",
            &chain("strategy = \"weighted\"\nproviders = [{ name = \"a\", weight = inf }]"),
            10,
            "chains.c.providers[0].weight",
            "weight must be a finite number greater than 0, got inf",
        ),
        case(
            "weight of the wrong type",
            &chain("strategy = \"weighted\"\nproviders = [{ name = \"a\", weight = \"high\" }]"),
            10,
            "chains.c.providers[0].weight",
            "expected a number",
        ),
        case(
            "weights on a priority chain",
            &chain("providers = [{ name = \"a\", weight = 0.5 }, \"b\"]"),
            9,
            "chains.c.providers[0].weight",
            "weights only apply to weighted chains",
        ),
        case(
            "missing weight on a weighted chain",
            &chain(
                "strategy = \"weighted\"\nproviders = [\n  { name = \"a\", weight = 0.5 },\n  \"b\",\n]",
            ),
            12,
            "chains.c.providers[1]",
            "a weighted chain needs a weight for every provider",
        ),
        case(
            "unknown strategy",
            &chain("strategy = \"random\"\nproviders = [\"a\"]"),
            9,
            "chains.c.strategy",
            "unknown variant `random`, expected `priority` or `weighted`",
        ),
        case(
            "no chains",
            "[providers.a]\nkind = \"openai\"\nmodel = \"m\"\n",
            1,
            "chains",
            "at least one chain is required",
        ),
        case(
            "no providers",
            "[chains.c]\nproviders = [\"a\"]\n",
            1,
            "providers",
            "at least one provider is required",
        ),
        case(
            "empty providers table",
            "[providers]\n\n[chains.c]\nproviders = [\"a\"]\n",
            1,
            "providers",
            "at least one provider is required",
        ),
        case(
            "failure_threshold 0",
            &provider("model = \"m\"\nbreaker = { failure_threshold = 0 }"),
            4,
            "providers.a.breaker.failure_threshold",
            "must be between 1 and 10000, got 0",
        ),
        case(
            "count and rate modes mixed",
            &provider("model = \"m\"\nbreaker = { failure_threshold = 5, failure_rate = 0.5 }"),
            4,
            "providers.a.breaker.failure_rate",
            "`failure_threshold` (count mode) and the failure-rate keys",
        ),
        case(
            "failure_rate above 1",
            &provider("model = \"m\"\nbreaker = { failure_rate = 1.5 }"),
            4,
            "providers.a.breaker.failure_rate",
            "must be greater than 0 and at most 1, got 1.5",
        ),
        case(
            "max_recovery_timeout below recovery_timeout",
            &provider(
                "model = \"m\"\nbreaker = { recovery_timeout = \"30s\", max_recovery_timeout = \"10s\" }",
            ),
            4,
            "providers.a.breaker.max_recovery_timeout",
            "must not be shorter than recovery_timeout (\"30s\")",
        ),
        case(
            "hold initial above max",
            &provider("model = \"m\"\nhold = { max = \"5s\", initial = \"10s\" }"),
            4,
            "providers.a.hold.initial",
            "must not be longer than max (\"5s\")",
        ),
        case(
            "fall_through_on a fixed kind",
            &chain("providers = [\"a\"]\nfall_through_on = [\"content_filtered\", \"timeout\"]"),
            10,
            "chains.c.fall_through_on[1]",
            "\"timeout\" always falls through; only invalid_request and content_filtered are configurable",
        ),
        case(
            "fall_through_on an unknown kind",
            &chain("providers = [\"a\"]\nfall_through_on = [\"oops\"]"),
            10,
            "chains.c.fall_through_on[0]",
            "unknown error kind \"oops\"",
        ),
        case(
            "unknown when_all_open",
            &chain("providers = [\"a\"]\nwhen_all_open = \"panic\""),
            10,
            "chains.c.when_all_open",
            "unknown variant `panic`, expected `fail` or `probe`",
        ),
        case(
            "retry_budget = true",
            &chain("providers = [\"a\"]\nretry_budget = true"),
            10,
            "chains.c.retry_budget",
            "`retry_budget = true` is the default",
        ),
        case(
            "retry_budget unknown key",
            &chain("providers = [\"a\"]\nretry_budget = { ratio = 0.1, burst = 3 }"),
            10,
            "chains.c.retry_budget.burst",
            "unknown key `burst`, expected one of `ratio`, `min_per_second`, `ttl`",
        ),
        case(
            "hedge_budget without hedge_after",
            &chain("providers = [\"a\"]\nhedge_budget = 0.2"),
            10,
            "chains.c.hedge_budget",
            "`hedge_budget` needs `hedge_after`",
        ),
        case(
            "hedge percentile out of range",
            &chain("providers = [\"a\"]\nhedge_after = { percentile = 150 }"),
            10,
            "chains.c.hedge_after.percentile",
            "must be between 1 and 100, got 150",
        ),
        case(
            "max_resumes too many",
            &chain("providers = [\"a\"]\nmax_resumes = 99"),
            10,
            "chains.c.max_resumes",
            "must be between 0 and 10, got 99",
        ),
        case(
            "half_open_probes 0",
            &provider("model = \"m\"\nbreaker = { half_open_probes = 0 }"),
            4,
            "providers.a.breaker.half_open_probes",
            "must be between 1 and 1000, got 0",
        ),
        case(
            "listen not an address",
            &format!("[server]\nlisten = \"localhost:8080\"\n{OK_TAIL}"),
            2,
            "server.listen",
            "\"localhost:8080\" is not a socket address",
        ),
        case(
            "max_body_bytes 0",
            &format!("[server]\nmax_body_bytes = 0\n{OK_TAIL}"),
            2,
            "server.max_body_bytes",
            "must be between 1 and 1073741824, got 0",
        ),
        case(
            "workers 0",
            &format!("[server]\nworkers = 0\n{OK_TAIL}"),
            2,
            "server.workers",
            "must be between 1 and 256, got 0",
        ),
        case(
            "max_body_bytes over 1 GiB",
            &format!("[server]\nmax_body_bytes = 2_000_000_000\n{OK_TAIL}"),
            2,
            "server.max_body_bytes",
            "must be between 1 and 1073741824",
        ),
        case(
            "temperature out of range",
            &provider("model = \"m\"\ntemperature = 2.5"),
            4,
            "providers.a.temperature",
            "must be between 0 and 2, got 2.5",
        ),
        case(
            "top_p out of range",
            &provider("model = \"m\"\ntop_p = 1.5"),
            4,
            "providers.a.top_p",
            "must be between 0 and 1, got 1.5",
        ),
        case(
            "max_tokens zero",
            &provider("model = \"m\"\nmax_tokens = 0"),
            4,
            "providers.a.max_tokens",
            "must be between 1 and",
        ),
        case(
            "server is not a table",
            &format!("server = 3\n{OK_TAIL}"),
            1,
            "server",
            "invalid type: integer `3`, expected a table",
        ),
        case(
            "unknown key in telemetry",
            &format!(
                "[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318\"\notlp_endpont = \"x\"\n{OK_TAIL}"
            ),
            3,
            "telemetry.otlp_endpont",
            "unknown key `otlp_endpont`",
        ),
        case(
            "otlp endpoint not an http URL",
            &format!("[telemetry]\notlp_endpoint = \"127.0.0.1:4318\"\n{OK_TAIL}"),
            2,
            "telemetry.otlp_endpoint",
            "\"127.0.0.1:4318\" is not an OTLP/HTTP endpoint",
        ),
        case(
            "otlp endpoint without a host",
            &format!("[telemetry]\notlp_endpoint = \"http:///v1/traces\"\n{OK_TAIL}"),
            2,
            "telemetry.otlp_endpoint",
            "is not an OTLP/HTTP endpoint",
        ),
        case(
            "unknown key in state",
            &format!("[state]\nredis_url_env = \"R\"\nredis_url = \"redis://x\"\n{OK_TAIL}"),
            3,
            "state.redis_url",
            "unknown key `redis_url`",
        ),
        case(
            "state without redis_url_env",
            &format!("[state]\non_redis_error = \"deny\"\n{OK_TAIL}"),
            1,
            "state.redis_url_env",
            "missing required key `redis_url_env`",
        ),
        case(
            "on_redis_error not allow or deny",
            &format!("[state]\nredis_url_env = \"R\"\non_redis_error = \"ignore\"\n{OK_TAIL}"),
            3,
            "state.on_redis_error",
            "unknown variant `ignore`",
        ),
        case(
            "state timeout too long",
            &format!("[state]\nredis_url_env = \"R\"\ntimeout = \"5s\"\n{OK_TAIL}"),
            3,
            "state.timeout",
            "must be at most 1s",
        ),
        case(
            "key limit of zero",
            &format!("[server]\nkey_limits = {{ requests_per_minute = 0 }}\n{OK_TAIL}"),
            2,
            "server.key_limits.requests_per_minute",
            "must be between 1 and",
        ),
        case(
            "unknown key in key_limits",
            &format!("[server]\nkey_limits = {{ rpm = 5 }}\n{OK_TAIL}"),
            2,
            "server.key_limits.rpm",
            "unknown key `rpm`",
        ),
        case(
            "empty key_limits",
            &format!("[server]\nkey_limits = {{}}\n{OK_TAIL}"),
            2,
            "server.key_limits",
            "set requests_per_minute, tokens_per_minute or both",
        ),
        Case {
            name: "TOML syntax error",
            text: "[providers.a]\nkind = \"openai\"\nmodel = \"m\ntimeout = \"1s\"\n".to_owned(),
            line: 3,
            path: Some("providers.a.model"),
            message: "TOML syntax error: invalid basic string",
        },
        Case {
            name: "TOML duplicate key",
            text: "[providers.a]\nkind = \"openai\"\nmodel = \"m\"\nmodel = \"n\"\n".to_owned(),
            line: 4,
            path: None,
            message: "duplicate key `model`",
        },
    ]
}

#[test]
fn telemetry_is_off_unless_an_endpoint_is_set() {
    let off = Config::parse(OK_TAIL, "test.toml").unwrap();
    assert_eq!(off.telemetry.otlp_endpoint, None);
    let on = Config::parse(
        &format!("[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318\"\n{OK_TAIL}"),
        "test.toml",
    )
    .unwrap();
    assert_eq!(
        on.telemetry.otlp_endpoint.as_deref(),
        Some("http://127.0.0.1:4318")
    );
}

#[test]
fn the_deployment_configs_load_and_share_state() {
    let configmap = std::fs::read_to_string(repo_file("deploy/kubernetes/configmap.yaml")).unwrap();
    // The ConfigMap's `backstop.toml: |` block, unindented.
    let embedded: String = configmap
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("backstop.toml: |"))
        .skip(1)
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    for (name, text) in [
        (
            "deploy/backstop.toml",
            std::fs::read_to_string(repo_file("deploy/backstop.toml")).unwrap(),
        ),
        (
            "deploy/local/fleet.toml",
            std::fs::read_to_string(repo_file("deploy/local/fleet.toml")).unwrap(),
        ),
        ("configmap.yaml", embedded),
    ] {
        let config = Config::parse(&text, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        let state = config.state.unwrap_or_else(|| panic!("{name}: no [state]"));
        assert_eq!(state.redis_url_env, "BACKSTOP_REDIS_URL", "{name}");
        assert!(config.server.key_limits.is_some(), "{name}: no key_limits");
    }
}

#[test]
fn state_and_key_limits_parse_with_their_defaults() {
    let off = Config::parse(OK_TAIL, "test.toml").unwrap();
    assert_eq!(off.state, None);
    assert_eq!(off.server.key_limits, None);
    let on = Config::parse(
        &format!(
            "[server]\nkey_limits = {{ requests_per_minute = 60 }}\n\
             [state]\nredis_url_env = \"BACKSTOP_REDIS_URL\"\n{OK_TAIL}"
        ),
        "test.toml",
    )
    .unwrap();
    let state = on.state.unwrap();
    assert_eq!(state.redis_url_env, "BACKSTOP_REDIS_URL");
    assert_eq!(state.on_redis_error, OnRedisError::Allow);
    assert_eq!(state.timeout, DEFAULT_STATE_TIMEOUT);
    let limits = on.server.key_limits.unwrap();
    assert_eq!(limits.requests_per_minute, Some(60));
    assert_eq!(limits.tokens_per_minute, None);
    assert_eq!(limits.default_max_tokens, DEFAULT_RESERVED_TOKENS);
}

#[test]
fn broken_configs_report_line_path_and_problem() {
    let cases = broken_cases();
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for c in &cases {
        let d = parse_err(&c.text);
        let ok = d.line == c.line
            && d.key_path.as_deref() == c.path
            && d.message.contains(c.message)
            && d.origin == "test.toml";
        if !ok {
            failures.push(format!(
                "{}: got {d}\n    want line {} path {:?} message containing {:?}\n--- input ---\n{}",
                c.name, c.line, c.path, c.message, c.text
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn display_is_file_line_col_path_message() {
    let path = fixture("unknown_provider.toml");
    let err = Config::load(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Invalid(_)));
    assert_eq!(
        err.to_string(),
        format!(
            "{}:16:24: chains.default.providers[1]: unknown provider \"opnai\" (defined: anthropic, groq, openai)",
            path.display()
        )
    );
}

#[test]
fn columns_point_at_the_value() {
    let d = parse_err(&provider("model = \"m\"\ntimeout = \"30 parsecs\""));
    assert_eq!((d.line, d.column), (4, 11));
    assert_eq!(
        d.to_string(),
        "test.toml:4:11: providers.a.timeout: invalid duration \"30 parsecs\": unknown unit \"parsecs\"; expected a number followed by a unit such as ms, s, m or h"
    );
    // Presence problems point at the key.
    let d = parse_err(&provider("model = \"m\"\n  api_key = \"x\""));
    assert_eq!((d.line, d.column), (4, 3));
}

#[test]
fn syntax_error_from_file_names_file_and_line() {
    let path = fixture("syntax_error.toml");
    let err = Config::load(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Syntax(_)), "{err:?}");
    let d = err.diagnostic().unwrap();
    assert_eq!(d.line, 3);
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{}:3:", path.display())),
        "{text}"
    );
    assert!(!text.contains('\n'));
}

#[test]
fn missing_file_names_the_file() {
    let path = fixture("does-not-exist.toml");
    let err = Config::load(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.diagnostic().is_none());
    let text = err.to_string();
    assert!(text.contains("does-not-exist.toml"), "{text}");
    assert!(text.contains("cannot read config file"), "{text}");
}

#[test]
fn quoted_keys_appear_quoted_in_paths() {
    let d = parse_err(
        "[providers.\"my.provider\"]\nkind = \"openai\"\nmodel = \"m\"\nretries = 99\n[chains.c]\nproviders = [\"my.provider\"]\n",
    );
    assert_eq!(
        d.key_path.as_deref(),
        Some("providers.\"my.provider\".retries")
    );
    assert_eq!(d.line, 4);
}

// ---------------------------------------------------------------------------------------
// Durations
// ---------------------------------------------------------------------------------------

#[test]
fn parse_duration_accepts_each_unit() {
    let cases = [
        ("250ms", Duration::from_millis(250)),
        ("0ms", Duration::ZERO),
        ("0s", Duration::ZERO),
        ("30s", Duration::from_secs(30)),
        ("1.5s", Duration::from_millis(1500)),
        ("0.001s", Duration::from_millis(1)),
        ("0.5ms", Duration::from_micros(500)),
        ("2m", Duration::from_secs(120)),
        ("1.5m", Duration::from_secs(90)),
        ("1h", Duration::from_secs(3600)),
        ("0.25h", Duration::from_secs(900)),
        ("007s", Duration::from_secs(7)),
        // humantime's longer forms and combinations are accepted too.
        ("30 seconds", Duration::from_secs(30)),
        ("2min", Duration::from_secs(120)),
        ("1m30s", Duration::from_secs(90)),
        ("1m 30s", Duration::from_secs(90)),
        ("30us", Duration::from_micros(30)),
        ("1d", Duration::from_secs(86_400)),
    ];
    for (text, want) in cases {
        assert_eq!(parse_duration(text), Ok(want), "{text}");
    }
}

#[test]
fn parse_duration_rejects_bad_input() {
    let cases = [
        ("", DurationErrorKind::Empty),
        ("-5s", DurationErrorKind::Negative),
        ("-0s", DurationErrorKind::Negative),
        ("30", DurationErrorKind::MissingUnit),
        ("1.5", DurationErrorKind::MissingUnit),
        ("30S", DurationErrorKind::Malformed),
        ("s", DurationErrorKind::Malformed),
        (".5s", DurationErrorKind::Malformed),
        ("5.s", DurationErrorKind::Malformed),
        ("1.2.3s", DurationErrorKind::Malformed),
        ("+5s", DurationErrorKind::Malformed),
        ("1e3ms", DurationErrorKind::Malformed),
        (
            "99999999999999999999999999999999999999999h",
            DurationErrorKind::Overflow,
        ),
        ("18446744073709551616s", DurationErrorKind::Overflow),
        ("5124095576030432h", DurationErrorKind::Overflow),
        ("1.0000000001s", DurationErrorKind::Overflow), // finer than a nanosecond
        ("30 parsecs", DurationErrorKind::Malformed),
        ("-1m 30s", DurationErrorKind::Negative),
    ];
    for (text, want) in cases {
        let err = parse_duration(text).unwrap_err();
        assert_eq!(err.kind(), want, "{text:?}: {err}");
        assert_eq!(err.input(), text);
        assert!(err.to_string().starts_with("invalid duration"), "{err}");
    }
}

#[test]
fn parse_duration_upper_bound() {
    assert_eq!(
        parse_duration("18446744073709551615s"),
        Ok(Duration::from_secs(u64::MAX))
    );
    assert_eq!(
        parse_duration("18446744073709551615.999999999s"),
        Ok(Duration::MAX)
    );
}

#[test]
fn format_duration_picks_the_largest_exact_unit() {
    let cases = [
        (Duration::ZERO, "0s"),
        (Duration::from_millis(250), "250ms"),
        (Duration::from_secs(30), "30s"),
        (Duration::from_secs(90), "90s"),
        (Duration::from_secs(120), "2m"),
        (Duration::from_secs(7200), "2h"),
        (Duration::from_millis(1500), "1500ms"),
        (Duration::from_micros(1500), "0.0015s"),
        (Duration::from_nanos(1), "0.000000001s"),
        (Duration::new(3, 5), "3.000000005s"),
    ];
    for (d, want) in cases {
        assert_eq!(format_duration(d), want, "{d:?}");
    }
}

#[test]
fn format_then_parse_round_trips() {
    let mut fixed = vec![
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_micros(1),
        Duration::from_millis(1),
        Duration::from_secs(1),
        Duration::from_secs(60),
        Duration::from_secs(3600),
        Duration::new(1, 500_000_000),
        Duration::from_secs(u64::MAX),
        Duration::MAX,
    ];
    // A deterministic spread of awkward values (xorshift).
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..2000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let secs = x >> (x % 64);
        let nanos = u32::try_from(x % 1_000_000_000).unwrap();
        fixed.push(Duration::new(secs, nanos));
        fixed.push(Duration::from_millis(x % 10_000_000));
    }
    for d in fixed {
        let text = format_duration(d);
        assert_eq!(parse_duration(&text), Ok(d), "{d:?} -> {text}");
    }
}

#[test]
fn parse_then_format_is_canonical() {
    for text in ["250ms", "30s", "2m", "1h", "1.5s", "0.000000001s"] {
        let d = parse_duration(text).unwrap();
        assert_eq!(parse_duration(&format_duration(d)), Ok(d));
    }
    assert_eq!(format_duration(parse_duration("60s").unwrap()), "1m");
    assert_eq!(format_duration(parse_duration("1.5s").unwrap()), "1500ms");
}
