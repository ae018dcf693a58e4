//! `backstop-sim`: run the provider simulator as a standalone server.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use backstop_sim::{Fault, SimConfig, Simulator};
use clap::Parser;

/// Simulated OpenAI / Anthropic / Groq endpoints with scripted faults.
#[derive(Debug, Parser)]
#[command(name = "backstop-sim", version, about)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Delay before response headers, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Streaming: delay before the first content chunk, in milliseconds.
    #[arg(long, default_value_t = 0)]
    ttft_ms: u64,
    /// Streaming: delay between content chunks, in milliseconds.
    #[arg(long, default_value_t = 0)]
    chunk_delay_ms: u64,
    /// Content chunks per reply.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    chunks: u32,
    /// Random fault: STATUS=RATE (e.g. 503=0.2) or NAME=RATE with NAME one of
    /// rate_limited, context_length, content_filter, malformed, hang, disconnect,
    /// truncate, stall. Repeatable.
    #[arg(long = "fail", value_name = "FAULT=RATE", value_parser = parse_fail)]
    fail: Vec<(Fault, f64)>,
    /// Seed for random faults.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Do not keep a request log.
    #[arg(long)]
    no_record: bool,
    /// Answer a conversation ending with an assistant message (prefill) with a 400.
    #[arg(long)]
    reject_prefill: bool,
}

fn parse_fail(s: &str) -> Result<(Fault, f64), String> {
    let (what, rate) = s
        .split_once('=')
        .ok_or_else(|| format!("expected FAULT=RATE (e.g. 503=0.2), got {s:?}"))?;
    let rate: f64 = rate
        .trim()
        .parse()
        .map_err(|_| format!("rate {rate:?} is not a number"))?;
    if !(rate.is_finite() && (0.0..=1.0).contains(&rate)) {
        return Err(format!("rate {rate} must be between 0 and 1"));
    }
    let what = what.trim();
    let fault = match what {
        "rate_limited" => Fault::RateLimited {
            retry_after_secs: Some(1),
            retry_after_ms: None,
            retry_after_http_date: false,
        },
        "context_length" => Fault::ContextLength,
        "content_filter" => Fault::ContentFilter,
        "malformed" => Fault::MalformedBody,
        "hang" => Fault::Hang,
        "disconnect" => Fault::Disconnect { after_chunks: 1 },
        "truncate" => Fault::Truncate { after_chunks: 1 },
        "stall" => Fault::Stall { after_chunks: 1 },
        status => {
            let code: u16 = status.parse().map_err(|_| {
                format!("unknown fault {status:?}: use an HTTP status (400..=599) or a fault name")
            })?;
            let fault = Fault::Status(code);
            fault.validate()?;
            fault
        }
    };
    Ok((fault, rate))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let config = SimConfig {
        latency: Duration::from_millis(args.latency_ms),
        ttft: Duration::from_millis(args.ttft_ms),
        chunk_delay: Duration::from_millis(args.chunk_delay_ms),
        chunks: args.chunks as usize,
        seed: args.seed,
        record: !args.no_record,
        reject_prefill: args.reject_prefill,
        ..SimConfig::default()
    };
    let sim = match Simulator::start_on(args.listen, config).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("backstop-sim: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    for (fault, rate) in args.fail {
        sim.set_random(fault, rate);
    }
    println!("backstop-sim listening on {}", sim.base_url());
    shutdown_signal().await;
    sim.shutdown().await;
    ExitCode::SUCCESS
}
