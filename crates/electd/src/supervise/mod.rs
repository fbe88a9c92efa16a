//! Supervision: the processes electd starts and watches over, and how it
//! makes sure nothing of a leadership outlives it.
//!
//! Bottom up: `contain` (killing and reaping a process tree, and knowing it
//! is all gone), `protocol` (the lines electd and its watchdog exchange),
//! `watchdog` (the process that parents the `--exec` command), `exec`
//! (electd's end of it), `guardian` (electd's parent, which releases a dead
//! electd's claims once its processes are gone).

pub mod contain;
pub mod exec;
pub mod guardian;
pub mod protocol;
pub mod watchdog;
