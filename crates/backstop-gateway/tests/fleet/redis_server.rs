//! A real `redis-server` per test: on a free loopback port, no persistence, in a temp dir;
//! killed and restarted on the same port when a test says so.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl RedisServer {
    /// Starts one on a fresh port and waits until it answers PING.
    pub async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    /// Starts one on `port` (a port chosen before, for "Redis appears later").
    pub async fn start_on(port: u16) -> Self {
        let dir = crate::support::temp_path(&format!("redis-{port}"));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let mut s = Self {
            port,
            dir,
            child: None,
        };
        s.restart().await;
        s
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port (empty: nothing was persisted).
    pub async fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "redis-server must be installed for the fleet tests (apt-get install redis-server)",
            );
        self.child = Some(child);
        let port = self.port;
        crate::support::wait_until(
            Duration::from_secs(10),
            "redis-server answering PING",
            || async move { ping(port).await },
        )
        .await;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn ping(port: u16) -> bool {
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    if s.write_all(b"PING\r\n").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).await.is_ok() && &buf == b"+PONG\r\n"
}
