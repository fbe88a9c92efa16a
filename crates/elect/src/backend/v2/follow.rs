//! Following the key for as long as the backend runs.

use std::sync::Arc;

use tokio::time::sleep;

use super::client::Client;
use crate::backend::Change;
use crate::backend::retry::Backoff;

/// Follows the key for as long as the backend runs: read, then watch; read
/// again after a cleared index, a broken connection, or a quiet TTL.
pub(super) async fn follow(client: Arc<Client>) {
    let tx = client.changes.clone();
    let mut backoff = Backoff::new(client.timing.backoff_cap());
    'read: loop {
        let mut wait_index = match client.read().await {
            Ok((view, index)) => {
                backoff.reset();
                if tx.send(Change::View(view)).is_err() {
                    return;
                }
                index.saturating_add(1)
            }
            Err(err) => {
                if tx.send(Change::Problem(err)).is_err() {
                    return;
                }
                sleep(backoff.next_delay()).await;
                continue 'read;
            }
        };
        loop {
            match client
                .watch(wait_index, client.timing.poll_patience())
                .await
            {
                Ok(Some((view, next))) => {
                    wait_index = next;
                    if tx.send(Change::View(view)).is_err() {
                        return;
                    }
                }
                Ok(None) => continue 'read,
                Err(err) => {
                    if tx.send(Change::Problem(err)).is_err() {
                        return;
                    }
                    sleep(backoff.next_delay()).await;
                    continue 'read;
                }
            }
        }
    }
}
