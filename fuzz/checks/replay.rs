//! Reading the committed corpus for the replay tests (`crates/*/tests/fuzz_corpus.rs`), which
//! include this file by path so both crates share one reader.

use std::path::PathBuf;

/// Every seed of one target, with its file name, sorted.
pub fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
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

/// Runs `check` on every seed of `target`; a panic names the seed.
pub fn replay(target: &str, check: fn(&[u8])) {
    for (name, data) in seeds(target) {
        let result = std::panic::catch_unwind(|| check(&data));
        assert!(
            result.is_ok(),
            "fuzz/corpus/{target}/{name} fails its check"
        );
    }
}
