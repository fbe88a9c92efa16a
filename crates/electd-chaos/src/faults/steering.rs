//! Steering under faults: health checks that fail or flap, drains,
//! hand-overs to a named node (some with their target struck midway), a
//! preempting node turning unhealthy around the moment it asks, a drain
//! during a failover.

use std::time::Duration;

use harness::app::Mode;
use tokio::time::sleep;

use crate::admin::{Reply, post};
use crate::draw::{Draw, Kind};
use crate::fleet::Soak;

/// The node's health check fails (or recovers, if it was failing).
pub async fn health_fail(soak: &mut Soak, draw: &Draw) {
    let &Draw {
        node,
        hold,
        ref steer,
        ..
    } = draw;
    if soak.health_mode[node] != Mode::Healthy {
        soak.set_health(node, Mode::Healthy);
        return;
    }
    if !soak.may_take_out() {
        soak.count("health fails: another node brought back instead");
        soak.restore_one().await;
        return;
    }
    soak.set_health(node, steer.failing);
    sleep(hold).await;
    if steer.restore {
        soak.set_health(node, Mode::Healthy);
    }
}

/// The node's health check flaps, then is healthy again.
pub async fn health_flap(soak: &mut Soak, draw: &Draw) {
    let &Draw {
        node, ref steer, ..
    } = draw;
    for flap in 0..steer.flaps {
        let mode = if flap % 2 == 0 {
            steer.failing
        } else {
            Mode::Healthy
        };
        soak.set_health(node, mode);
        sleep(steer.flap).await;
    }
    soak.set_health(node, Mode::Healthy);
}

/// The node drained (or undrained, if it was).
pub async fn drain(soak: &mut Soak, draw: &Draw) {
    let &Draw {
        node,
        hold,
        ref steer,
        ..
    } = draw;
    if soak.drained[node] {
        soak.undrain(node).await;
        return;
    }
    if !soak.may_take_out() {
        soak.count("drain: another node brought back instead");
        soak.restore_one().await;
        return;
    }
    soak.drain(node).await;
    sleep(hold).await;
    if steer.restore {
        soak.undrain(node).await;
    }
}

/// `POST /v1/resign?to=` another node.
pub async fn transfer(soak: &mut Soak, api: &str, draw: &Draw) {
    let &Draw {
        node, ref steer, ..
    } = draw;
    let (from, to) = soak.transfer_ends(node, steer.offset).await;
    let what = if api == "v3" {
        "resign?to="
    } else {
        "resign?to= (v2)"
    };
    soak.admin(from, what, &format!("/v1/resign?to=n{to}"))
        .await;
}

/// `POST /v1/resign?to=`, its target SIGSTOPped or killed before or during the hand-over.
pub async fn transfer_target_struck(soak: &mut Soak, kind: Kind, draw: &Draw) {
    let &Draw {
        node,
        hold,
        ref steer,
        ..
    } = draw;
    // The target dies (or freezes) while the hand-over is under way,
    // or just after it took over.
    let (from, to) = soak.transfer_ends(node, steer.offset).await;
    let url = format!("{}/v1/resign?to=n{to}", soak.nodes[from].url());
    let stopped = kind == Kind::TransferTargetStopped;
    let strike = |soak: &mut Soak| {
        if stopped {
            soak.nodes[to].pause();
        } else {
            soak.kill(to);
        }
    };
    let verb = if stopped { "SIGSTOPped" } else { "killed" };
    let asked = if steer.first {
        strike(soak);
        soak.note(&format!("  n{to} {verb} just before the ask"));
        tokio::spawn(post(soak.admin.clone(), url))
    } else {
        let asked = tokio::spawn(post(soak.admin.clone(), url));
        sleep(steer.midway).await;
        strike(soak);
        soak.note(&format!("  n{to} {verb} {:?} after the ask", steer.midway));
        asked
    };
    let reply = asked.await.unwrap_or(Reply {
        status: None,
        error: None,
    });
    let what = match (stopped, steer.first) {
        (true, true) => "resign?to=, target SIGSTOPped before",
        (true, false) => "resign?to=, target SIGSTOPped after",
        (false, true) => "resign?to=, target killed before",
        (false, false) => "resign?to=, target killed after",
    };
    soak.record(what, from, &reply);
    sleep(hold).await;
    if stopped {
        soak.nodes[to].resume();
    } else {
        soak.spawn(to);
    }
}

/// A preempting node turns unhealthy around the moment it asks.
pub async fn preemptor_unhealthy(soak: &mut Soak, draw: &Draw) {
    let &Draw {
        hold, ref steer, ..
    } = draw;
    // The preempting node of the highest priority: the one most
    // likely to outrank whoever leads once it is back.
    let top = (0..soak.nodes.len())
        .filter(|&i| soak.preempt[i])
        .map(|i| soak.priority[i])
        .max();
    let Some(top) = top else {
        soak.count("preempting node: none running");
        return;
    };
    let preempting: Vec<usize> = (0..soak.nodes.len())
        .filter(|&i| soak.preempt[i] && soak.priority[i] == top)
        .collect();
    let p = preempting[steer.offset % preempting.len()];
    if soak.drained[p] {
        soak.undrain(p).await;
    }
    // Out for a moment (a leader hands over), then a healthy
    // candidate again: after --preempt-after it asks any leader it
    // outranks to hand over; it turns unhealthy before, around or
    // after that moment.
    soak.set_health(p, steer.failing);
    // Long enough for a verdict, also from stalled checks (two
    // timeouts of 200 ms).
    sleep(Duration::from_millis(800)).await;
    soak.set_health(p, Mode::Healthy);
    sleep(steer.lag).await;
    let leader = soak.leader().await;
    let when = match leader {
        Some(l) if l == p => "while it led",
        Some(l) if soak.priority[l] < soak.priority[p] => "while it outranked the leader",
        Some(_) => "while it did not outrank the leader",
        None => "while nobody led",
    };
    soak.count(&format!("preempting node unhealthy {when}"));
    soak.set_health(p, steer.failing);
    sleep(hold).await;
    soak.set_health(p, Mode::Healthy);
}

/// kill -9 of the leader, and another node drained during the failover.
pub async fn drain_in_failover(soak: &mut Soak, draw: &Draw) {
    let &Draw {
        node,
        hold,
        ref steer,
        ..
    } = draw;
    let leader = soak.leader().await.unwrap_or(node);
    soak.kill(leader);
    soak.note(&format!("  n{leader} killed"));
    // Before its lease expires, or after.
    sleep(steer.failover).await;
    let drained = soak.other(leader, steer.offset);
    soak.drain(drained).await;
    sleep(hold).await;
    soak.spawn(leader);
    if steer.restore {
        soak.undrain(drained).await;
    }
}
