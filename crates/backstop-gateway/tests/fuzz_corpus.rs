//! Replays every committed fuzz corpus seed of the gateway targets (`fuzz/corpus/<target>/`)
//! through the same checks the fuzz targets run (`fuzz/checks/gateway.rs`), so a crash the
//! fuzzer once found, once its input is saved there, stays fixed under plain `cargo test`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;

#[path = "../../../fuzz/checks/gateway.rs"]
mod checks;

/// Every seed of one target, with its name.
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

fn replay(target: &str, check: fn(&[u8])) {
    for (name, data) in seeds(target) {
        let result = std::panic::catch_unwind(|| check(&data));
        assert!(
            result.is_ok(),
            "fuzz/corpus/{target}/{name} fails its check"
        );
    }
}

#[test]
fn gateway_request_corpus() {
    replay("gateway_request", checks::gateway_request);
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
