//! The `backstop-sim` binary: listens, prints its address, serves, validates flags.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_backstop-sim");

/// Kills the child even when an assertion fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn serves_and_applies_fail_flag() {
    let mut child = KillOnDrop(
        Command::new(BIN)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--fail",
                "503=1.0",
                "--chunks",
                "2",
                "--seed",
                "3",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("backstop-sim listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let resp = client
        .post(format!("{url}/v1/messages"))
        .body(r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    let stats: serde_json::Value = serde_json::from_slice(
        &client
            .get(format!("{url}/_sim/stats"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stats["chunks"], 2);
    assert_eq!(stats["random"][0]["rate"], 1.0);
}

#[test]
fn rejects_bad_flags() {
    for args in [
        vec!["--fail", "503=2"],
        vec!["--fail", "503"],
        vec!["--fail", "200=0.1"],
        vec!["--fail", "boom=0.1"],
        vec!["--chunks", "0"],
        vec!["--listen", "nowhere"],
    ] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(!out.stderr.is_empty(), "{args:?} should explain");
    }
}
