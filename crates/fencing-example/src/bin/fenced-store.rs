//! `fenced-store`: a counter behind HTTP that refuses requests from older
//! terms — the check your own store makes (see `docs/src/guides/fencing.md`).
//!
//! It remembers the highest term any request carried. A request with an
//! older term comes from a leader that has been replaced: it is refused with
//! 409. The term and the data live under one lock here; in a database, keep
//! the highest term in the same row or transaction as the data it guards.
//! Everything is in memory: a restarted store starts from zero.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use fencing_example::{Counter, Refusal, Stats};
use serde::Deserialize;
use tokio::sync::Mutex;

/// A counter that refuses requests from older terms.
#[derive(Parser)]
#[command(name = "fenced-store", version, about)]
struct Args {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:7000")]
    listen: SocketAddr,

    /// Accept every request whatever its term: the same store without
    /// fencing, to show what that loses.
    #[arg(long)]
    unfenced: bool,
}

#[derive(Default)]
struct Store {
    fenced: bool,
    counter: Counter,
    highest: u64,
    writes: u64,
    stale: u64,
    refused: u64,
}

impl Store {
    /// The fencing check, made before every read and write that carries a
    /// term: a term older than the highest seen is refused; a newer one
    /// becomes the highest, which shuts out every older leader from now on.
    fn admit(&mut self, term: u64) -> Result<(), Refusal> {
        if term >= self.highest {
            self.highest = term;
            return Ok(());
        }
        self.stale += 1;
        if !self.fenced {
            eprintln!(
                "fenced-store: accepted term {term} although term {} has been seen (unfenced)",
                self.highest
            );
            return Ok(());
        }
        self.refused += 1;
        eprintln!(
            "fenced-store: refused term {term}: term {} has been seen",
            self.highest
        );
        Err(Refusal {
            error: format!(
                "term {term} is older than term {}: a newer leader has taken over",
                self.highest
            ),
            term,
            highest: self.highest,
        })
    }
}

type Shared = Arc<Mutex<Store>>;

#[derive(Deserialize)]
struct ReadParams {
    term: Option<u64>,
}

#[derive(Deserialize)]
struct WriteParams {
    term: u64,
    value: u64,
}

/// `GET /counter?term=T`. A read that a write will be computed from carries
/// the term too: once a newer leader has read, an older leader's write,
/// computed from what it read before, must fail.
async fn read(State(store): State<Shared>, Query(params): Query<ReadParams>) -> Response {
    let mut store = store.lock().await;
    if let Some(term) = params.term
        && let Err(refusal) = store.admit(term)
    {
        return refused(refusal);
    }
    Json(store.counter).into_response()
}

/// `PUT /counter?term=T&value=V`.
async fn write(State(store): State<Shared>, Query(params): Query<WriteParams>) -> Response {
    let mut store = store.lock().await;
    if let Err(refusal) = store.admit(params.term) {
        return refused(refusal);
    }
    store.counter = Counter {
        value: params.value,
        term: params.term,
    };
    store.writes += 1;
    Json(store.counter).into_response()
}

fn refused(refusal: Refusal) -> Response {
    (StatusCode::CONFLICT, Json(refusal)).into_response()
}

/// `GET /stats`.
async fn stats(State(store): State<Shared>) -> Json<Stats> {
    let store = store.lock().await;
    Json(Stats {
        value: store.counter.value,
        term: store.counter.term,
        highest: store.highest,
        writes: store.writes,
        stale: store.stale,
        refused: store.refused,
        fenced: store.fenced,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let store = Arc::new(Mutex::new(Store {
        fenced: !args.unfenced,
        ..Store::default()
    }));
    let app = Router::new()
        .route("/counter", get(read).put(write))
        .route("/stats", get(stats))
        .with_state(store);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    eprintln!(
        "fenced-store: listening on http://{}{}",
        listener.local_addr()?,
        if args.unfenced { " (unfenced)" } else { "" }
    );
    axum::serve(listener, app).await?;
    Ok(())
}
