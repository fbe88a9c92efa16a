//! The floor of a hand-over on this etcd: one client's put until another
//! client's watch delivers it, both in this process, each on a connection
//! of its own. One durable write and the round trip to learn of it, with
//! nothing of electd's or etcdctl's in the way: no hand-over through etcd
//! can be faster.

use std::time::Duration;

use anyhow::Context;
use etcd_client::Client;
use harness::now_ns;
use tokio::sync::mpsc;
use tokio::time::timeout;

/// The key put and watched, outside every election's prefix.
const KEY: &str = "/electd-bench/floor";

/// One put, as its writer and the other client saw it.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// The put sent → the other client's watch delivered it (ns).
    pub delivered_ns: u64,
    /// The put sent → its own answer (ns).
    pub answered_ns: u64,
}

/// A writer and a watcher on one etcd.
pub struct Floor {
    writer: Client,
    /// When each watched put arrived, as the watcher's task saw it.
    arrivals: mpsc::UnboundedReceiver<u64>,
    puts: u64,
}

impl Floor {
    /// Connects both clients; returns once the watch is in place.
    pub async fn start(endpoint: &str) -> anyhow::Result<Floor> {
        let writer = Client::connect([endpoint], None)
            .await
            .context("the floor's writer connects")?;
        let mut watcher = Client::connect([endpoint], None)
            .await
            .context("the floor's watcher connects")?;
        let mut stream = watcher
            .watch(KEY, None)
            .await
            .context("the floor's watch")?;
        let (arrived, arrivals) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let _keep = watcher;
            while let Ok(Some(response)) = stream.message().await {
                let at = now_ns();
                for _ in response.events() {
                    if arrived.send(at).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Floor {
            writer,
            arrivals,
            puts: 0,
        })
    }

    /// One put, timed.
    pub async fn sample(&mut self) -> anyhow::Result<Sample> {
        // Nothing else puts the key: nothing should be waiting.
        while self.arrivals.try_recv().is_ok() {}
        self.puts += 1;
        let sent = now_ns();
        self.writer
            .put(KEY, self.puts.to_string(), None)
            .await
            .context("the floor's put")?;
        let answered = now_ns();
        let delivered = timeout(Duration::from_secs(5), self.arrivals.recv())
            .await
            .ok()
            .flatten()
            .context("the floor's watch delivered nothing")?;
        Ok(Sample {
            delivered_ns: delivered.saturating_sub(sent),
            answered_ns: answered - sent,
        })
    }
}
