//! `fenced-worker`: a leader's work, run by `electd --exec`. It increments
//! `fenced-store`'s counter by read-then-write, as fast as it can, and
//! passes its fencing token, `ELECTD_TERM`, with every request.
//!
//! electd stops it when leadership ends, but a node paused whole (a VM
//! suspended, a host frozen) stops electd and its watchdog too: when it
//! wakes, this worker may send one more request before anything on its node
//! can stop it. By then another leader, with a higher term, has used the
//! store, so the store refuses the request, and the worker stops.
//!
//! Exit status: 0 when the store refused its term (another leader took over)
//! or when SIGTERM stopped it; 1 when the store failed or could not be
//! reached; 2 without a usable `ELECTD_TERM`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use fencing_example::{Counter, Refusal};
use reqwest::StatusCode;
use tokio::signal::unix::{SignalKind, signal};

/// Increments fenced-store's counter, with ELECTD_TERM as the fencing token.
#[derive(Parser)]
#[command(name = "fenced-worker", version, about)]
struct Args {
    /// The store's URL.
    #[arg(long, default_value = "http://127.0.0.1:7000")]
    store: String,

    /// Append a line `<term> <value>` to FILE for each increment the store
    /// acknowledged.
    #[arg(long, value_name = "FILE")]
    acks: Option<PathBuf>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let term = match std::env::var("ELECTD_TERM").map(|t| t.parse::<u64>()) {
        Ok(Ok(term)) => term,
        Ok(Err(_)) => {
            eprintln!("fenced-worker: ELECTD_TERM is not a term (a whole number)");
            return ExitCode::from(2);
        }
        Err(_) => {
            eprintln!("fenced-worker: ELECTD_TERM is not set: run me with electd --exec");
            return ExitCode::from(2);
        }
    };
    match work(&args, term).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("fenced-worker: term {term}: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn work(args: &Args, term: u64) -> anyhow::Result<()> {
    let http = client()?;
    let mut acks = match &args.acks {
        Some(path) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open {}", path.display()))?,
        ),
        None => None,
    };
    // electd sends SIGTERM when leadership ends: finish the increment in
    // hand (if it is too late, the store refuses it), then stop.
    let mut sigterm = signal(SignalKind::terminate())?;
    let terminated = tokio::spawn(async move { sigterm.recv().await });
    eprintln!("fenced-worker: term {term}: incrementing {}", args.store);
    while !terminated.is_finished() {
        match increment(&http, &args.store, term).await? {
            Ok(counter) => acknowledged(acks.as_mut(), counter)?,
            Err(refusal) => {
                eprintln!(
                    "fenced-worker: term {term} refused: the store has seen term {}; \
                     another leader took over, so this one stops",
                    refusal.highest
                );
                return Ok(());
            }
        }
    }
    eprintln!("fenced-worker: term {term}: stopped by SIGTERM");
    Ok(())
}

/// One increment: read the counter, write it plus one. Both requests carry
/// the term; either may be refused.
async fn increment(
    http: &reqwest::Client,
    store: &str,
    term: u64,
) -> anyhow::Result<Result<Counter, Refusal>> {
    let url = format!("{store}/counter");
    let read = http.get(&url).query(&[("term", term)]).send().await?;
    let counter = match answer(read).await? {
        Ok(counter) => counter,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let value = counter.value + 1;
    let write = http
        .put(&url)
        .query(&[("term", term), ("value", value)])
        .send()
        .await?;
    answer(write).await
}

/// The counter from a 200, or the store's refusal from a 409.
async fn answer(response: reqwest::Response) -> anyhow::Result<Result<Counter, Refusal>> {
    if response.status() == StatusCode::CONFLICT {
        return Ok(Err(response.json().await?));
    }
    Ok(Ok(response.error_for_status()?.json().await?))
}

fn acknowledged(acks: Option<&mut File>, counter: Counter) -> anyhow::Result<()> {
    if let Some(file) = acks {
        // One write per line: a worker killed mid-way leaves no half line.
        file.write_all(format!("{} {}\n", counter.term, counter.value).as_bytes())
            .context("cannot append to the acks file")?;
    }
    Ok(())
}

/// An HTTP client. This workspace builds reqwest without a TLS crypto
/// provider (electd uses rustls on *ring* only), so one is installed, though
/// plain `http://` never uses it. In a crate of your own with reqwest's
/// default features, `reqwest::Client::new()` is all you need.
fn client() -> anyhow::Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder().build()?)
}
