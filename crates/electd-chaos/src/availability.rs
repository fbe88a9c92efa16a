//! Availability: whether etcd itself could serve, sampled beside the
//! faults, so that time without a leader that electd caused is told apart
//! from time etcd could not serve.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::now_ns;
use tokio::time::sleep;

/// When etcd was unavailable, as `(start_ns, end_ns)` spans.
#[derive(Default)]
pub struct Outages {
    spans: Vec<(u64, u64)>,
    open: Option<u64>,
}

impl Outages {
    pub fn record(&mut self, at: u64, available: bool) {
        match (available, self.open) {
            (false, None) => self.open = Some(at),
            (true, Some(start)) => {
                self.spans.push((start, at));
                self.open = None;
            }
            _ => {}
        }
    }

    pub fn finish(&mut self, at: u64) -> Vec<(u64, u64)> {
        self.record(at, true);
        std::mem::take(&mut self.spans)
    }
}

/// Samples etcd's availability four times a second: available when any
/// member says it is healthy (it has a raft leader and serves a quorum
/// read), asked directly, not through the nodes' fault proxies. Separates
/// time without a leader that electd caused from time etcd could not serve.
pub async fn watch_etcd(endpoints: Vec<String>, outages: Arc<Mutex<Outages>>) {
    let Ok(http) = harness::http().timeout(Duration::from_millis(500)).build() else {
        return;
    };
    loop {
        let asked = now_ns();
        let mut available = false;
        for endpoint in &endpoints {
            let health = http.get(format!("{endpoint}/health")).send().await;
            if let Ok(resp) = health
                && let Ok(body) = resp.json::<serde_json::Value>().await
                && body["health"] == "true"
            {
                available = true;
                break;
            }
        }
        outages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(asked, available);
        sleep(Duration::from_millis(250)).await;
    }
}
