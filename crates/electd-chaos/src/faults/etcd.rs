//! Faults of etcd itself: a member killed, a member cut off from the
//! others, the data wiped.

use tokio::time::sleep;

use crate::draw::Draw;
use crate::fleet::Soak;

/// An etcd member killed, restarted after the hold.
pub async fn member_restart(soak: &mut Soak, draw: &Draw) {
    let &Draw { member, hold, .. } = draw;
    soak.etcd.kill(member);
    sleep(hold).await;
    soak.etcd.restart(member);
}

/// An etcd member cut off from the others for the hold.
pub async fn member_cut_off(soak: &mut Soak, draw: &Draw) {
    let &Draw { member, hold, .. } = draw;
    soak.etcd.isolate(member);
    sleep(hold).await;
    soak.etcd.rejoin(member);
}

/// etcd's data wiped; after the hold its revision is raised past the nodes' floor.
pub async fn wipe(soak: &mut Soak, api: &str, draw: &Draw) {
    let &Draw { hold, .. } = draw;
    let floor = soak.highest_floor().await;
    soak.etcd.wipe().await;
    sleep(hold).await;
    // The operator's way out: traffic until the revision passes the floor.
    let floor = floor.max(soak.highest_floor().await);
    soak.etcd.raise_past(api, floor).await;
}
