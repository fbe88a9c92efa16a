//! The v2 keys API: one key with a TTL, the seed's protocol.
//!
//! * claim: `PUT /v2/keys/<election>?prevExist=false` with our value and TTL;
//!   the term is the key's `createdIndex`;
//! * renew: `refresh=true&prevExist=true&prevValue=<our value>`, so a node never
//!   renews a key it did not create in this process (the value holds a nonce);
//! * follow: a quorum read, then `wait=true&waitIndex=` long polls, re-read
//!   when etcd cleared the index and at least once per TTL;
//! * release: `DELETE …?prevValue=<our value>`: the condition must be in the
//!   query string (in a form body etcd ignores it and deletes unconditionally).
//!
//! Across etcd members v2 stamps expiry with the receiving member's wall
//! clock; clock skew between members can expire a key early. Multi-host
//! deployments should use v3.

mod client;
mod follow;
mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use reqwest::{Method, StatusCode};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use self::client::{Client, Endpoints};
use self::wire::{COMPARE_FAILED, KEY_NOT_FOUND, NODE_EXISTS, Words};
use super::{Backend, Campaign, Change, Handover, RenewError, Renewal, Target};
use crate::claim::{self, Claim};
use crate::config::Config;
use crate::error::{ConfigError, EtcdError, TransferError, chain};
use crate::history::Revisions;
use crate::journal::EndReason;
use crate::status::Candidate;
use crate::tls;
use crate::value::Candidacy;
use crate::vitals::Vitals;

/// The v2 backend.
pub(crate) struct V2 {
    client: Arc<Client>,
    follower: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// The key was left to expire (`forget`): a release must not delete it.
    forgotten: AtomicBool,
}

impl V2 {
    pub(crate) fn new(
        config: &Config,
        health: Arc<Vitals>,
        revisions: Arc<Revisions>,
        changes: mpsc::UnboundedSender<Change>,
    ) -> Result<V2, ConfigError> {
        // reqwest has no crypto provider of its own here: it always gets a
        // configuration, even one it never uses for http:// endpoints.
        let tls_config = match &config.tls {
            Some(tls) => tls.rustls_config(),
            None => tls::unused_config(),
        };
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config)
            .http1_only()
            .no_proxy()
            .tcp_nodelay(true)
            .connect_timeout(config.timing.connect_timeout())
            .pool_idle_timeout(config.timing.pool_idle())
            .build()
            .map_err(|e| ConfigError::InvalidEndpoint {
                url: config.endpoints.join(","),
                reason: chain(&e),
            })?;
        let nonce = crate::value::new_nonce();
        let key = format!("/{}", config.election);
        let denied = match &config.credentials {
            Some(c) => format!(
                "wrong user name or password for {:?}, or its roles lack read/write permission \
                 on {key} (etcd's v2 API answers both alike)",
                c.user
            ),
            None => format!(
                "etcd has v2 authentication enabled and its guest role may not read/write {key}: \
                 give a user ({})",
                config.names.user
            ),
        };
        Ok(V2 {
            client: Arc::new(Client {
                http,
                endpoints: Endpoints {
                    list: config.endpoints.clone(),
                    current: AtomicUsize::new(0),
                },
                key_path: format!("/v2/keys/{}", config.election),
                key: key.clone(),
                value: crate::value::encode(&config.id, &config.advertise, &nonce),
                id: config.id.clone(),
                revisions,
                changes,
                timing: config.timing,
                credentials: config
                    .credentials
                    .as_ref()
                    .map(|c| (c.user.clone(), c.password.clone())),
                words: Arc::new(Words {
                    denied,
                    use_v3: config.names.api_v3.clone(),
                }),
                tls: config.tls.clone(),
                health,
                telemetry: config.telemetry.clone(),
                on_claim: config.on_claim.clone(),
            }),
            follower: std::sync::Mutex::new(None),
            forgotten: AtomicBool::new(false),
        })
    }

    fn ttl_secs(&self) -> String {
        self.client.timing.ttl().as_secs().to_string()
    }

    /// Deletes the key only while it holds exactly `value`; `Ok` when it
    /// does not (not ours any more, or already gone).
    pub(crate) async fn release_value(&self, value: &str) -> Result<(), EtcdError> {
        let c = &self.client;
        let reply = c
            .request("delete", Method::DELETE, &[("prevValue", value)], &[])
            .await?;
        if reply.status == StatusCode::OK {
            return Ok(());
        }
        let err = reply.error("delete")?;
        match err.error_code {
            KEY_NOT_FOUND | COMPARE_FAILED => Ok(()),
            _ => Err(reply.etcd_error("delete", &err)),
        }
    }
}

impl Backend for V2 {
    const QUEUES: bool = false;

    fn start(&self) {
        let task = tokio::spawn(follow::follow(self.client.clone()));
        let mut follower = self.follower.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = follower.replace(task) {
            old.abort();
        }
    }

    async fn campaign(&self) -> Result<Campaign, EtcdError> {
        self.forgotten.store(false, Ordering::Relaxed);
        let c = &self.client;
        let ttl = self.ttl_secs();
        claim::tell(c.on_claim.as_ref(), Claim::Value(c.value.clone()));
        let sent_at = Instant::now();
        let reply = c
            .request(
                "create",
                Method::PUT,
                &[("prevExist", "false")],
                &[("value", &c.value), ("ttl", &ttl)],
            )
            .await?;
        match reply.status {
            StatusCode::CREATED => {
                let node = reply
                    .keys("create")?
                    .node
                    .ok_or_else(|| reply.malformed("create", "no node".to_owned()))?;
                let view = c.view_of(&node);
                if view.mine.is_none() {
                    return Err(
                        reply.malformed("create", "the created value is not ours".to_owned())
                    );
                }
                Ok(Campaign::Claimed {
                    claim: node.created_index,
                    view: Some(Box::new(view)),
                    renewal: Renewal {
                        sent_at,
                        ttl: c.timing.ttl(),
                    },
                })
            }
            _ => {
                let err = reply.error("create")?;
                if err.error_code == NODE_EXISTS {
                    Ok(Campaign::Taken {
                        revision: err.index.or(reply.index).unwrap_or(0),
                    })
                } else {
                    Err(reply.etcd_error("create", &err))
                }
            }
        }
    }

    async fn renew(&self) -> Result<Renewal, RenewError> {
        let c = &self.client;
        let ttl = self.ttl_secs();
        let sent_at = Instant::now();
        let reply = c
            .request(
                "refresh",
                Method::PUT,
                &[
                    ("refresh", "true"),
                    ("prevExist", "true"),
                    ("prevValue", &c.value),
                ],
                &[("ttl", &ttl)],
            )
            .await
            .map_err(RenewError::Failed)?;
        if reply.status == StatusCode::OK {
            return Ok(Renewal {
                sent_at,
                ttl: c.timing.ttl(),
            });
        }
        let err = reply.error("refresh").map_err(RenewError::Failed)?;
        match err.error_code {
            KEY_NOT_FOUND | COMPARE_FAILED => Err(RenewError::Lost),
            _ => Err(RenewError::Failed(reply.etcd_error("refresh", &err))),
        }
    }

    async fn forget(&self) {
        // One key with a TTL: left alone, it expires.
        self.forgotten.store(true, Ordering::Relaxed);
    }

    async fn release(&self, _why: EndReason) -> Result<(), EtcdError> {
        if self.forgotten.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.release_value(&self.client.value).await
    }

    async fn set_candidacy(&self, _candidacy: Candidacy) -> Result<(), EtcdError> {
        // One key, nothing queued to show it on: the loop stops campaigning
        // while the candidate may not lead.
        Ok(())
    }

    fn handover_target(&self, _id: &str) -> Result<Target, TransferError> {
        Err(TransferError::NeedsV3)
    }

    async fn hand_over(&self, _target: &Target, _reason: Handover) -> Result<i64, TransferError> {
        Err(TransferError::NeedsV3)
    }

    async fn cancel_hand_over(&self, _revision: i64) -> Result<bool, EtcdError> {
        Ok(false)
    }

    async fn candidates(&self) -> Result<Vec<Candidate>, EtcdError> {
        let (view, _) = self.client.read().await?;
        Ok(view
            .leader
            .iter()
            .map(|l| Candidate::leader(l, None))
            .collect())
    }

    fn stop(&self) {
        let mut follower = self.follower.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(task) = follower.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{Expiry, Obstacle};
    use proptest::prelude::*;
    use std::time::Duration;
    use wire::Node;

    proptest! {
        /// Any node etcd may send: only our exact value is ever ours.
        #[test]
        fn arbitrary_nodes_never_make_a_false_leader(
            value in proptest::option::of(".{0,200}"),
            created_index in any::<u64>(),
            modified_index in any::<u64>(),
        ) {
            let config = crate::Config::builder()
                .api(crate::api::Api::V2)
                .id("me")
                .advertise("http://127.0.0.1:1")
                .ttl(Duration::from_secs(2))
                .build()
                .unwrap();
            let v2 = V2::new(
                &config,
                Arc::new(Vitals::new()),
                Arc::new(Revisions::default()),
                mpsc::unbounded_channel().0,
            )
            .unwrap();
            let expiration = Some("2026-12-01T09:43:17Z".to_owned());
            let node = Node { value: value.clone(), ttl: Some(2), expiration: expiration.clone(), created_index, modified_index };
            let view = v2.client.view_of(&node);
            prop_assert_eq!(view.mine.is_some(), value.as_deref() == Some(v2.client.value.as_str()));
            prop_assert_eq!(view.leader.map(|l| l.term), Some(created_index));
            // Our own value reads back as ours.
            let own = Node { value: Some(v2.client.value.clone()), ttl: None, expiration, created_index, modified_index };
            prop_assert_eq!(v2.client.view_of(&own).mine, Some(created_index));
            // Without a TTL, no value in our format is trusted.
            let forged = Node { value: Some(r#"{"id":"b","advertise":"x"}"#.into()), ttl: None, expiration: None, created_index, modified_index };
            let view = v2.client.view_of(&forged);
            prop_assert!(view.leader.is_some_and(|l| l.is_foreign()));
            let never = matches!(view.obstacle, Some(Obstacle::ForeignKey { expiry: Expiry::Never, .. }));
            prop_assert!(never, "{:?}", view.obstacle);
        }

    }
}
