//! Faults of a node's processes: electd and its guardian, electd alone,
//! and with `--exec` its watchdog and its command.

use harness::procs;
use tokio::time::sleep;

use crate::draw::{Draw, Kind};
use crate::fleet::Soak;

/// kill -9 of the node (guardian and electd), restarted after the hold.
pub async fn kill_restart(soak: &mut Soak, draw: &Draw) {
    let &Draw { node, hold, .. } = draw;
    soak.nodes[node].kill9();
    soak.deaths.extend(soak.nodes[node].deaths());
    sleep(hold).await;
    soak.spawn(node);
}

/// kill -9 of electd alone (its guardian releases), restarted after the hold.
pub async fn electd_kill_restart(soak: &mut Soak, draw: &Draw) {
    let &Draw { node, hold, .. } = draw;
    soak.kill_electd(node).await;
    sleep(hold).await;
    soak.spawn(node);
}

/// SIGSTOP of electd for the hold, then SIGCONT.
pub async fn pause_resume(soak: &mut Soak, draw: &Draw) {
    let &Draw { node, hold, .. } = draw;
    soak.nodes[node].pause();
    sleep(hold).await;
    soak.nodes[node].resume();
}

/// SIGTERM (kill -9 if it does not exit), restarted after the hold.
pub async fn term_restart(soak: &mut Soak, draw: &Draw) {
    let &Draw { node, hold, .. } = draw;
    soak.terminate(node).await;
    sleep(hold).await;
    soak.spawn(node);
}

/// With `--exec`: kill -9 or SIGSTOP of the watchdog, or kill -9 of the command.
pub async fn watchdog_or_command(soak: &mut Soak, kind: Kind, draw: &Draw) {
    let &Draw { node, hold, .. } = draw;
    let Some(watchdog) = soak.watchdog(node) else {
        return;
    };
    match kind {
        Kind::WatchdogKill => procs::signal(watchdog, rustix::process::Signal::KILL),
        Kind::WatchdogPause => {
            procs::signal(watchdog, rustix::process::Signal::STOP);
            sleep(hold).await;
            procs::signal(watchdog, rustix::process::Signal::CONT);
        }
        _ => {
            if let Some(command) = procs::children(watchdog).into_iter().find(|p| !p.zombie()) {
                procs::signal(command.pid, rustix::process::Signal::KILL);
            }
        }
    }
}
