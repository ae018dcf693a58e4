//! A user error is a message and an exit status, never a backtrace — even with
//! `RUST_BACKTRACE=1` (common on developer machines and in CI), where an error returned from
//! `main` through `anyhow`'s `Debug` would print its captured stack after the message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod binary;

const BROKEN: &str = "[providers.openai]\nkind = \"openai\"\nmodel = \"m\"\n\
                      [chains.default]\nproviders = [\"opnai\"]\n";

#[test]
fn config_errors_print_one_line_and_no_backtrace_with_rust_backtrace_set() {
    let file = binary::config_file(BROKEN);
    let unset = binary::config_file(
        "[server]\nclient_keys_env = \"UNSET_KEYS\"\n[providers.openai]\nkind = \"openai\"\nmodel = \"m\"\n\
         [chains.default]\nproviders = [\"openai\"]\n",
    );
    let cases: [(&[&str], &str); 4] = [
        (
            &["config", "check", &file],
            ":5:14: chains.default.providers[0]: unknown provider",
        ),
        (
            &["serve", "--config", &file, "--listen", "127.0.0.1:0"],
            ":5:14: chains.default.providers[0]",
        ),
        (
            &["config", "check", "/nonexistent/backstop.toml"],
            "cannot read config file",
        ),
        (
            &["serve", "--config", &unset, "--listen", "127.0.0.1:0"],
            "UNSET_KEYS",
        ),
    ];
    for (args, expected) in cases {
        for backtrace in ["1", "full"] {
            let (status, stdout, stderr) = binary::run(
                args,
                &[("RUST_BACKTRACE", backtrace), ("RUST_LIB_BACKTRACE", "1")],
            );
            assert_eq!(status.code(), Some(1), "{args:?}: {stderr}");
            assert!(stdout.is_empty(), "{args:?}: {stdout}");
            let lines: Vec<&str> = stderr.lines().collect();
            assert_eq!(lines.len(), 1, "one line for {args:?}, got:\n{stderr}");
            assert!(lines[0].starts_with("Error: "), "{stderr}");
            assert!(lines[0].contains(expected), "{args:?}: {stderr}");
            assert!(!stderr.to_lowercase().contains("backtrace"), "{stderr}");
        }
    }
}

#[test]
fn an_unreadable_file_says_why_once() {
    let (_, _, stderr) = binary::run(&["config", "check", "/nonexistent/backstop.toml"], &[]);
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "the reason once, not repeated from the error's source: {stderr}"
    );
}
