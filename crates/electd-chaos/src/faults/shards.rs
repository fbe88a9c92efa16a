//! Faults of a sharded election (`--shards N`): the busiest holder stopped
//! past its TTL, a join and a leave at once, every node restarted, a
//! foreign record under the shard prefix, a move interrupted by kill -9 of
//! either side, the election handed over by a leader on a slow link.

use std::time::Duration;

use harness::proxy::{Direction, Fault, FaultProxy};
use tokio::time::sleep;

use crate::admin::{Reply, post};
use crate::draw::{Draw, Foreign, ShardDraw};
use crate::fleet::Soak;

/// The shard records' prefix: the nodes run the default election, `leader`.
const SHARD_PREFIX: &str = "/electd/leader/~~shards/";

/// The value of a foreign record: not electd's form.
const GARBAGE: &str = "written by hand: not electd's";

/// The node leading the most shards stopped (SIGSTOP of electd) past its
/// TTL, then resumed: every one of its shards ends at its deadline, and
/// the others take them once its lease expires.
pub async fn holder_pause(soak: &mut Soak, draw: &Draw, shards: &ShardDraw) {
    let (node, led) = soak.busiest().await.unwrap_or((draw.node, 0));
    soak.note(&format!(
        "  n{node} leads {led} shards: stopped for {:?}",
        shards.past_ttl
    ));
    soak.nodes[node].pause();
    sleep(shards.past_ttl).await;
    soak.nodes[node].resume();
}

/// One node leaves and another joins at the same instant: the joiner
/// (stopped for the hold beforehand) starts as the leaver gets SIGTERM or
/// kill -9 of the whole node; the leaver comes back after the hold.
pub async fn join_and_leave(soak: &mut Soak, draw: &Draw, shards: &ShardDraw) {
    let &Draw {
        node: joiner,
        hold,
        ref steer,
        ..
    } = draw;
    let leaver = soak.other(joiner, steer.offset);
    soak.terminate(joiner).await;
    sleep(hold).await;
    if shards.whole_node {
        soak.kill(leaver);
    } else {
        soak.nodes[leaver].terminate();
    }
    soak.spawn(joiner);
    let how = if shards.whole_node {
        "kill -9"
    } else {
        "SIGTERM"
    };
    soak.note(&format!("  n{joiner} joins as n{leaver} leaves ({how})"));
    sleep(hold).await;
    soak.wait_gone(leaver).await;
    soak.spawn(leaver);
}

/// Every node restarted: one after another (each once the one before
/// answers), or all at once (SIGTERM, or kill -9 of every whole node).
pub async fn every_node_restarted(soak: &mut Soak, draw: &Draw, shards: &ShardDraw) {
    let &Draw { hold, .. } = draw;
    let nodes = soak.nodes.len();
    let answer_within = Duration::from_secs(20);
    if shards.rolling {
        soak.note("  rolling: SIGTERM and start, one node after another");
        for i in 0..nodes {
            soak.terminate(i).await;
            soak.spawn(i);
            if !soak.answering(i, answer_within).await {
                soak.note(&format!("  n{i} not answering after {answer_within:?}"));
            }
        }
        return;
    }
    let how = if shards.whole_node {
        "kill -9"
    } else {
        "SIGTERM"
    };
    soak.note(&format!(
        "  all at once: {how}, started again after the hold"
    ));
    for i in 0..nodes {
        if shards.whole_node {
            soak.kill(i);
        } else {
            soak.nodes[i].terminate();
        }
    }
    for i in 0..nodes {
        soak.wait_gone(i).await;
    }
    sleep(hold).await;
    for i in 0..nodes {
        soak.spawn(i);
    }
}

/// A record electd did not write, under the shard prefix: over a led
/// shard (text not electd's; or another shard's record, naming its lease,
/// bound to none; or text not electd's bound to the holder's own lease),
/// or at a key that names no shard. Over a shard, electd must trust none
/// of it: within the hold plus a TTL no node may say it leads that shard,
/// and nobody may take it while it is there. Then it is deleted, as an
/// operator would, only if still as written.
pub async fn foreign_record(soak: &mut Soak, draw: &Draw, shards: &ShardDraw) {
    let &Draw { hold, .. } = draw;
    let count = soak.shards.unwrap_or(1);
    let shard = shards.shard;
    let key = match shards.foreign {
        Foreign::Stray if shard.is_multiple_of(2) => format!("{SHARD_PREFIX}{}", count + shard),
        Foreign::Stray => format!("{SHARD_PREFIX}foreign-{shard}"),
        _ => format!("{SHARD_PREFIX}{shard}"),
    };
    let written = match shards.foreign {
        Foreign::Garbage | Foreign::Stray => soak.etcd.v3_put(&key, GARBAGE).await,
        Foreign::CopyUnbound => {
            let other = format!("{SHARD_PREFIX}{}", (shard + 1) % count);
            let copied = soak.etcd.v3_get(&other, None).await;
            let value = copied.map_or_else(|| GARBAGE.to_owned(), |k| k.value);
            soak.etcd.v3_put(&key, &value).await
        }
        Foreign::GarbageOnHoldersLease => match soak.etcd.v3_get(&key, None).await {
            Some(held) if held.lease != 0 => {
                soak.etcd.v3_put_with_lease(&key, GARBAGE, held.lease).await
            }
            _ => soak.etcd.v3_put(&key, GARBAGE).await,
        },
    };
    let Some(ours) = soak.etcd.v3_get(&key, None).await.filter(|_| written) else {
        soak.count("foreign record: not written (etcd did not answer)");
        return;
    };
    soak.note(&format!(
        "  {key} written ({:?}), revision {}, lease {:x}",
        shards.foreign, ours.mod_revision, ours.lease
    ));
    sleep(hold).await;
    if !matches!(shards.foreign, Foreign::Stray) {
        trusted_by_nobody(soak, &key, shard, ours.mod_revision).await;
    }
    if soak
        .etcd
        .v3_delete_if_unchanged(&key, ours.mod_revision)
        .await
    {
        soak.note(&format!("  {key} deleted"));
    } else {
        soak.count("foreign record: gone before its deletion (its holder's lease ended, or it was handed over)");
    }
}

/// Waits, up to a TTL past the hold, until no node says it leads `shard`
/// while its record in etcd is still the foreign one written at
/// `mod_revision`; a node still claiming it then is counted as an answer
/// the issue does not allow.
async fn trusted_by_nobody(soak: &mut Soak, key: &str, shard: u32, mod_revision: u64) {
    let ttl = soak.ttl;
    let until = tokio::time::Instant::now() + ttl;
    loop {
        let mut claimed_by = Vec::new();
        for i in 0..soak.nodes.len() {
            if soak
                .shards_led_by(i)
                .await
                .is_some_and(|led| led.contains(&shard))
            {
                claimed_by.push(i);
            }
        }
        // Asked before etcd: a record still as written now was foreign
        // through every answer.
        let still_foreign = soak
            .etcd
            .v3_get(key, None)
            .await
            .is_some_and(|k| k.mod_revision == mod_revision);
        if !still_foreign {
            soak.count("foreign record: handed over or gone with its holder's lease");
            return;
        }
        if claimed_by.is_empty() {
            soak.count("foreign record: shard led by nobody while it stood");
            return;
        }
        if tokio::time::Instant::now() >= until {
            let nodes: Vec<String> = claimed_by.iter().map(|i| format!("n{i}")).collect();
            soak.unexpected.push(format!(
                "shard {shard} still led by {} a TTL after a foreign record replaced its own",
                nodes.join(", ")
            ));
            return;
        }
        sleep(Duration::from_millis(50)).await;
    }
}

/// A move of shards interrupted by kill -9 of either side: the moves
/// start with a drain of a node (its shards handed to the others) or an
/// undrain, or with the node joining (the others hand it its share); then,
/// a drawn moment later, that node or one on the other side of its moves
/// is killed (the whole node, or electd alone), and restarted after the
/// hold.
pub async fn move_interrupted(soak: &mut Soak, draw: &Draw, shards: &ShardDraw) {
    let &Draw {
        node: mover,
        hold,
        ref steer,
        ..
    } = draw;
    let other = soak.other(mover, steer.offset);
    let struck = if shards.strike_mover { mover } else { other };
    let asked = if shards.by_drain {
        let (what, path) = if soak.drained[mover] {
            ("undrain, a side killed midway", "/v1/undrain")
        } else {
            if !soak.may_take_out() {
                soak.restore_one().await;
            }
            ("drain, a side killed midway", "/v1/drain")
        };
        let url = format!("{}{path}", soak.nodes[mover].url());
        Some((what, tokio::spawn(post(soak.admin.clone(), url))))
    } else {
        // It leaves, the others take its shards; it comes back and the
        // others hand it its share.
        soak.terminate(mover).await;
        sleep(soak.ttl / 2).await;
        soak.spawn(mover);
        let answer_within = Duration::from_secs(20);
        if !soak.answering(mover, answer_within).await {
            soak.note(&format!("  n{mover} not answering after {answer_within:?}"));
        }
        None
    };
    sleep(steer.midway).await;
    if shards.whole_node {
        soak.kill(struck);
    } else {
        soak.kill_electd(struck).await;
    }
    let side = if struck == mover {
        "the mover"
    } else {
        "the other side"
    };
    let how = if shards.whole_node {
        "kill -9 of the node"
    } else {
        "kill -9 of electd"
    };
    soak.note(&format!(
        "  n{struck} ({side}): {how} {:?} into n{mover}'s moves",
        steer.midway
    ));
    soak.count(&format!("shard move interrupted: {side}, {how}"));
    if let Some((what, asked)) = asked {
        let reply = asked.await.unwrap_or(Reply {
            status: None,
            error: None,
        });
        soak.record(what, mover, &reply);
        if struck != mover && matches!(reply.status, None | Some(200)) {
            soak.drained[mover] = what.starts_with("drain");
        }
    }
    sleep(hold).await;
    soak.spawn(struck);
    if soak.drained[mover] && steer.restore {
        soak.undrain(mover).await;
    }
}

/// The election's leader, which leads shards too, is asked to hand the
/// election over (`POST /v1/resign?to=`, refused with `--shards`) and is
/// then drained, while its link to etcd is slow: the release that follows
/// frees its shards at once, so it must have stopped calling them its own
/// before, not when its slow watch shows them gone.
pub async fn slow_leader_hands_over(soak: &mut Soak, draw: &Draw, shards: &ShardDraw) {
    let &Draw {
        node,
        hold,
        ref steer,
        ..
    } = draw;
    let (from, to) = soak.transfer_ends(node, steer.offset).await;
    let lag = shards.lag;
    soak.link(from, |p| {
        p.set(
            Direction::Both,
            Fault::Delay {
                fixed: lag,
                jitter: Duration::ZERO,
            },
        )
    });
    soak.note(&format!("  n{from}'s link to etcd {lag:?} slower each way"));
    soak.admin(
        from,
        "resign?to=, leader's link slow",
        &format!("/v1/resign?to=n{to}"),
    )
    .await;
    let drained = soak.drained[from];
    if !drained {
        soak.drain(from).await;
    }
    sleep(hold).await;
    soak.link(from, FaultProxy::heal);
    if !drained && soak.drained[from] {
        soak.undrain(from).await;
    }
}
