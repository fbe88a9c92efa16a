//! Faults of a node's links to etcd, through its own fault proxies.

use harness::proxy::{Direction, Fault, FaultProxy};
use tokio::time::sleep;

use crate::draw::Draw;
use crate::fleet::Soak;

/// The node's links to etcd drop everything for the hold.
pub async fn silent_partition(soak: &mut Soak, draw: &Draw) {
    let &Draw { node, hold, .. } = draw;
    soak.link(node, FaultProxy::drop_all);
    sleep(hold).await;
    soak.link(node, FaultProxy::heal);
}

/// The node's links to etcd refuse connections for the hold.
pub async fn loud_partition(soak: &mut Soak, draw: &Draw) {
    let &Draw { node, hold, .. } = draw;
    soak.link(node, FaultProxy::refuse);
    sleep(hold).await;
    soak.link(node, FaultProxy::heal);
}

/// The node's links to etcd delay both ways (with jitter) for the hold.
pub async fn delay(soak: &mut Soak, draw: &Draw) {
    let &Draw {
        node,
        hold,
        delay,
        jitter,
        ..
    } = draw;
    soak.link(node, |p| {
        p.set(
            Direction::Both,
            Fault::Delay {
                fixed: delay,
                jitter,
            },
        )
    });
    sleep(hold).await;
    soak.link(node, FaultProxy::heal);
}
