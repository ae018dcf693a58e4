//! The real `backstop` binary as a child process: a config file in cargo's test tmpdir, keys
//! in the child's environment only, stdout watched for the listening address, stderr (the
//! logs) kept in a file to read after it exits. Optionally started under `sh -c 'ulimit …'`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A running gateway process.
pub struct Gateway {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The config file it was started with (rewrite it, then [`Gateway::signal`] `HUP`).
    pub config_path: PathBuf,
    log: PathBuf,
    exited: Option<ExitStatus>,
}

/// How to start it.
#[derive(Default)]
pub struct Launch<'a> {
    /// Extra arguments after `serve --config FILE --listen 127.0.0.1:0`.
    pub args: &'a [&'a str],
    /// Environment variables (keys) for the child.
    pub env: &'a [(&'a str, &'a str)],
    /// `RUST_LOG` for the child.
    pub rust_log: Option<&'a str>,
    /// Shell commands run before `exec` (e.g. `ulimit -n 128`).
    pub shell_prefix: Option<&'a str>,
}

fn tmp(name: &str) -> PathBuf {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("backstop-{}-{n}-{name}", std::process::id()))
}

impl Gateway {
    /// Writes `config` to a file and starts `backstop serve` on it; waits until it listens.
    pub fn start(config: &str, launch: Launch<'_>) -> Gateway {
        let config_path = tmp("config.toml");
        std::fs::write(&config_path, config).unwrap();
        let log = tmp("stderr.log");
        let bin = env!("CARGO_BIN_EXE_backstop");
        let mut serve_args: Vec<String> = vec![
            "serve".into(),
            "--config".into(),
            config_path.display().to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
        ];
        serve_args.extend(launch.args.iter().map(|a| (*a).to_owned()));
        let mut cmd = match launch.shell_prefix {
            None => {
                let mut c = Command::new(bin);
                c.args(&serve_args);
                c
            }
            Some(prefix) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("{prefix}; exec \"$0\" \"$@\""))
                    .arg(bin)
                    .args(&serve_args);
                c
            }
        };
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", launch.rust_log.unwrap_or("info"))
            .envs(launch.env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        let mut child = cmd.spawn().expect("spawn backstop");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("backstop listening on http://") {
                    let _ = tx.send(addr.parse::<SocketAddr>().unwrap());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "backstop did not start:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        Gateway {
            child,
            addr,
            config_path,
            log,
            exited: None,
        }
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        self.signal("TERM");
    }

    /// Sends a signal by name (`HUP`, `TERM`, ...).
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        if self.exited.is_some() {
            return false;
        }
        match self.child.try_wait().unwrap() {
            Some(s) => {
                self.exited = Some(s);
                false
            }
            None => true,
        }
    }

    /// Waits (at most `limit`) for the process to exit.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        if let Some(s) = self.exited {
            return s;
        }
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                self.exited = Some(s);
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "backstop did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        if self.exited.is_none() {
            self.sigterm();
        }
        self.wait(Duration::from_secs(20))
    }

    /// Everything the process wrote to stderr so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Runs `backstop ARGS…` to completion with this environment; (status, stdout, stderr).
pub fn run(args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_backstop"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes a config file for [`run`]; its path.
pub fn config_file(text: &str) -> String {
    let p = tmp("config.toml");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}
