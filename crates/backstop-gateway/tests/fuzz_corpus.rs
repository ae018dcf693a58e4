//! Replays every committed fuzz corpus seed of the gateway targets (`fuzz/corpus/<target>/`)
//! through the same checks the fuzz targets run (`fuzz/checks/gateway.rs`), so a crash the
//! fuzzer once found, once its input is saved there, stays fixed under plain `cargo test`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../../../fuzz/checks/gateway.rs"]
mod checks;
#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

use replay::{replay, seeds};

#[test]
fn gateway_request_corpus() {
    replay("gateway_request", checks::gateway_request);
}

#[test]
fn messages_request_corpus() {
    replay("messages_request", checks::messages_request);
}

#[test]
fn config_parse_corpus() {
    replay("config_parse", checks::config_parse);
}

/// The example configs are seeds and load, so the fuzzer starts from valid files.
#[test]
fn example_configs_are_seeds_and_parse() {
    let seeds = seeds("config_parse");
    for name in ["backstop.toml", "demo.toml", "minimal.toml"] {
        let (_, text) = seeds.iter().find(|(n, _)| n == name).unwrap();
        let text = std::str::from_utf8(text).unwrap();
        backstop_gateway::config::Config::parse(text, name).unwrap();
    }
}
