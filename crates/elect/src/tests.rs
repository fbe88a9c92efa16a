//! State-machine tests over the in-memory test double, with paused tokio time:
//! exact, instant, no sleeps in real time.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, sleep};

use crate::journal::{EndReason, Event, Record};
use crate::testing::{Memory, RenewScript};
use crate::{Config, Election, Role};

const TTL: Duration = Duration::from_secs(3);

fn config(journal: &Path) -> Config {
    Config::builder()
        .id("me")
        .advertise("http://127.0.0.1:8080")
        .ttl(TTL)
        .api(crate::Api::V2)
        .journal(journal)
        .build()
        .unwrap()
}

fn start(journal: &Path) -> (Election, Arc<Memory<false>>) {
    start_with(config(journal))
}

fn start_with(config: Config) -> (Election, Arc<Memory<false>>) {
    crate::testing::start_single(config).unwrap()
}

/// Fails a test that would otherwise wait forever; time is paused, so this
/// costs nothing when the test passes.
async fn bounded<F: std::future::Future>(test: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(3600), test)
        .await
        .expect("the test did not finish within an hour of virtual time")
}

fn journal(path: &Path) -> Vec<Record> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn acquires_then_renews_every_third_of_the_ttl() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (election, memory) = start(&path);
        let leadership = election.campaign().await.unwrap();
        assert_eq!(leadership.term(), 2);
        assert!(leadership.is_valid());
        assert_eq!(election.status().role(), Role::Leader);

        sleep(TTL * 3).await;
        // Renewed at 1 s, 2 s, … 9 s: nine renewals in three TTLs.
        let renewals = memory.renewals();
        assert!((8..=10).contains(&renewals), "{renewals} renewals");
        assert!(leadership.is_valid());

        let records = journal(&path);
        assert!(matches!(records[0].event, Event::Acquired { .. }));
        assert!(
            records[1..]
                .iter()
                .all(|r| matches!(r.event, Event::Renewed { .. }))
        );
        assert_eq!(records.len() as u32, 1 + renewals);
        // Each deadline is the renewal's send time + TTL − margin.
        let margin = crate::default_margin(TTL);
        if let (Event::Renewed { deadline_ns }, t_ns) = (&records[1].event, records[1].t_ns) {
            let expected = TTL - margin;
            let lead = Duration::from_nanos(deadline_ns - t_ns);
            assert!(
                lead <= expected && lead > expected - Duration::from_millis(5),
                "{lead:?}"
            );
        }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn failed_renewals_step_down_at_the_deadline_then_resume_the_same_term() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (election, memory) = start(&path);
        let leadership = election.campaign().await.unwrap();
        let deadline = leadership.deadline().unwrap();
        memory.script_renewals(RenewScript::Fail);

        // Nothing is renewed, so the deadline never moves: leader until then, not after.
        let snapshot = election.status();
        assert!(snapshot.is_leader_at(deadline - Duration::from_millis(1)));
        assert!(!snapshot.is_leader_at(deadline));

        leadership.lost().await;
        assert!(Instant::now() >= deadline);
        assert!(Instant::now() < deadline + Duration::from_millis(10));
        assert_ne!(election.status().role(), Role::Leader);
        // The loop journals the step-down when its own deadline timer fires.
        let mut status = election.subscribe();
        status.wait_for(|s| s.tenure.is_none()).await.unwrap();

        let ended = journal(&path)
            .into_iter()
            .find(|r| matches!(r.event, Event::Ended { .. }))
            .unwrap();
        assert_eq!(
            ended.event,
            Event::Ended {
                reason: EndReason::Deadline
            }
        );
        // Paused tokio time drifts from the real monotonic clock while the
        // test runs, so the conversion is only as exact as the test is quick.
        let expected = crate::clock::instant_to_ns(deadline);
        assert!(
            ended.t_ns.abs_diff(expected) < 50_000_000,
            "{} vs {expected}",
            ended.t_ns
        );

        // The key was still ours: the next acknowledged renewal resumes the same term.
        memory.script_renewals(RenewScript::Answer {
            latency: Duration::from_millis(1),
        });
        let again = election.campaign().await.unwrap();
        assert_eq!(again.term(), leadership.term());
        let acquired = journal(&path)
            .iter()
            .filter(|r| matches!(r.event, Event::Acquired { .. }))
            .count();
        assert_eq!(acquired, 2);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_compare_is_an_immediate_loss() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (election, memory) = start(&path);
        let leadership = election.campaign().await.unwrap();
        let deadline = leadership.deadline().unwrap();
        memory.take_over("other");
        leadership.lost().await;
        assert!(Instant::now() < deadline, "lost before the deadline");
        let status = election.status();
        assert_eq!(status.role(), Role::Follower);
        assert_eq!(
            status.current_leader().unwrap().id.as_deref(),
            Some("other")
        );
        let last = journal(&path).pop().unwrap();
        assert_eq!(
            last.event,
            Event::Ended {
                reason: EndReason::Lost
            }
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_renewal_that_never_returns_ends_leadership_at_the_deadline() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let (election, memory) = start(&dir.path().join("j"));
        let leadership = election.campaign().await.unwrap();
        let deadline = leadership.deadline().unwrap();
        // Like a paused process or a silent partition: no answer for longer than the TTL.
        memory.script_renewals(RenewScript::Answer { latency: TTL * 10 });
        sleep_until_past(deadline).await;
        assert!(!leadership.is_valid());
        assert!(!election.status().is_leader());
        assert_eq!(election.status().current_leader(), None);
    })
    .await;
}

async fn sleep_until_past(at: Instant) {
    tokio::time::sleep_until(at + Duration::from_millis(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_foreign_value_makes_the_leader_unknown_and_ends_leadership() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let (election, memory) = start(&dir.path().join("j"));
        let leadership = election.campaign().await.unwrap();
        memory.overwrite_foreign();
        leadership.lost().await;
        let status = election.status();
        assert_eq!(status.role(), Role::Follower);
        assert!(status.current_leader().unwrap().is_foreign());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn resign_stops_leading_before_the_key_is_deleted() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (election, memory) = start(&path);
        let leadership = election.campaign().await.unwrap();
        leadership.resign().await.unwrap();
        assert_eq!(memory.leader_at_release(), vec![false]);
        let last = journal(&path).pop().unwrap();
        assert_eq!(
            last.event,
            Event::Ended {
                reason: EndReason::Resign
            }
        );
        // Resigned: no new campaign even though the key is vacant.
        sleep(TTL).await;
        assert_eq!(election.status().role(), Role::Candidate);
        assert_eq!(journal(&path).len(), 2);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_follower_campaigns_when_the_key_expires() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let (election, memory) = start(&dir.path().join("j"));
        memory.take_over("other");
        let mut watch = election.observe();
        let first = watch.changed().await.unwrap().unwrap();
        assert_eq!(first.id.as_deref(), Some("other"));
        let campaign = tokio::spawn(async move {
            let leadership = election.campaign().await.unwrap();
            (election, leadership)
        });
        sleep(TTL).await;
        assert!(!campaign.is_finished(), "took over a live key");
        memory.expire();
        let (election, leadership) = campaign.await.unwrap();
        assert!(leadership.term() > first.term);
        // The watch reports the new leader; it may coalesce the vacant moment before it.
        let next = loop {
            if let Some(leader) = watch.changed().await.unwrap() {
                break leader;
            }
        };
        assert_eq!(next.term, leadership.term());
        assert_eq!(next.id.as_deref(), Some("me"));
        election.shutdown().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_key_deleted_by_someone_else_is_claimed_only_after_a_ttl() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let (election, memory) = start(&dir.path().join("j"));
        memory.take_over("other");
        let mut watch = election.observe();
        watch.changed().await.unwrap();
        let campaign = tokio::spawn(async move {
            let leadership = election.campaign().await.unwrap();
            (election, leadership)
        });
        sleep(Duration::from_millis(10)).await;
        let deleted_at = Instant::now();
        memory.delete_by_someone_else();
        let (election, _leadership) = campaign.await.unwrap();
        // The old holder may have led until a TTL after the delete.
        assert!(Instant::now() >= deleted_at + TTL);
        assert!(Instant::now() < deleted_at + TTL + Duration::from_millis(50));
        election.shutdown().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_releases_and_journals_shutdown() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (election, memory) = start(&path);
        let leadership = election.campaign().await.unwrap();
        election.shutdown().await;
        assert!(!leadership.is_valid());
        assert_eq!(memory.leader_at_release(), vec![false]);
        assert_eq!(
            journal(&path).pop().unwrap().event,
            Event::Ended {
                reason: EndReason::Shutdown
            }
        );
        assert!(matches!(
            election.campaign().await,
            Err(crate::Error::Stopped)
        ));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_observer_never_campaigns() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(&dir.path().join("j"));
        cfg.observer = true;
        let (election, _memory) = start_with(cfg);
        assert!(matches!(
            election.campaign().await,
            Err(crate::Error::Observer)
        ));
        sleep(TTL).await;
        assert_eq!(election.status().role(), Role::Observer);
        assert_eq!(election.candidates().await.unwrap(), vec![]);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_lost_leadership_is_not_followed_by_a_campaign_until_asked() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (election, memory) = start(&path);
        let first = election.campaign().await.unwrap();
        memory.take_over("other");
        first.lost().await;
        memory.expire();
        // The key is vacant, yet nobody asked to lead again.
        sleep(TTL * 2).await;
        assert_eq!(election.status().role(), Role::Candidate);
        let next = election.campaign().await.unwrap();
        assert!(next.term() > first.term());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn abandon_steps_down_and_leaves_the_key_to_expire() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (election, memory) = start(&path);
        let leadership = election.campaign().await.unwrap();
        let renewals = memory.renewals();
        leadership.abandon().await;
        assert!(!election.status().is_leader());
        assert_eq!(memory.leader_at_release(), Vec::<bool>::new(), "released");
        assert_eq!(
            journal(&path).pop().unwrap().event,
            Event::Ended {
                reason: EndReason::Resign
            }
        );
        sleep(TTL * 2).await;
        assert_eq!(memory.renewals(), renewals, "still renewing");
        // A shutdown afterwards does not release it either.
        let (election2, memory2) = start(&dir.path().join("j2"));
        let leadership2 = election2.campaign().await.unwrap();
        leadership2.abandon().await;
        election2.shutdown().await;
        assert_eq!(memory2.leader_at_release(), Vec::<bool>::new(), "released");
        // The same for the whole election.
        let leadership = {
            memory.expire();
            election.campaign().await.unwrap()
        };
        election.abandon().await;
        assert!(!leadership.is_valid());
        assert_eq!(memory.leader_at_release(), Vec::<bool>::new(), "released");
        assert_eq!(
            journal(&path).pop().unwrap().event,
            Event::Ended {
                reason: EndReason::Shutdown
            }
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn in_a_queue_the_candidate_leads_once_the_place_is_vacant_with_a_newer_term() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let (election, store) = crate::testing::start_queue(config(&dir.path().join("j"))).unwrap();
        store.take_over("other");
        let held = store.term().unwrap();
        let campaign = tokio::spawn(async move {
            let leadership = election.campaign().await.unwrap();
            (election, leadership)
        });
        sleep(TTL * 2).await;
        assert!(!campaign.is_finished(), "led while another held the place");
        store.expire();
        let (election, leadership) = campaign.await.unwrap();
        assert!(leadership.term() > held);
        assert_eq!(election.status().role(), Role::Leader);
        // Resigning empties the queue: no leadership comes back on its own.
        leadership.resign().await.unwrap();
        sleep(TTL * 2).await;
        assert_eq!(election.status().role(), Role::Candidate);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn in_a_queue_a_term_that_lapsed_resumes_and_a_lost_one_waits_to_be_asked() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (election, store) = crate::testing::start_queue(config(&path)).unwrap();
        let leadership = election.campaign().await.unwrap();
        let term = leadership.term();
        store.script_renewals(RenewScript::Fail);
        leadership.lost().await;
        store.script_renewals(RenewScript::Answer {
            latency: Duration::from_millis(1),
        });
        // The claim lived on: the next renewal resumes the same term.
        let again = election.campaign().await.unwrap();
        assert_eq!(again.term(), term);
        store.take_over("other");
        again.lost().await;
        store.expire();
        sleep(TTL * 2).await;
        assert_eq!(
            election.status().role(),
            Role::Candidate,
            "campaigned again unasked after a loss"
        );
        let next = election.campaign().await.unwrap();
        assert!(next.term() > term);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn abandoning_a_claim_that_never_led_releases_it() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (election, store) = crate::testing::start_queue(config(&path)).unwrap();
        store.take_over("other");
        let election = Arc::new(election);
        let campaign = tokio::spawn({
            let election = election.clone();
            async move { election.campaign().await.map(|l| l.term()) }
        });
        // Queued behind the other: a claim that never led.
        sleep(TTL).await;
        assert!(!campaign.is_finished(), "led while another held the place");
        election.abandon().await;
        // Released, not left queued to be handed a place it cannot take.
        assert_eq!(store.leader_at_release(), [false]);
        assert!(journal(&path).is_empty(), "journalled a tenure");
        campaign.abort();
    })
    .await;
}
