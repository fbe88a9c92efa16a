//! A child process that is killed and reaped when its guard goes away, for
//! the harness's own processes and for those a test starts itself.

use std::process::{Child, ExitStatus};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};

/// A child, killed (SIGKILL) and reaped on drop.
pub struct Owned {
    child: Child,
    exited: Option<ExitStatus>,
}

impl Owned {
    /// Owns `child` from now on.
    pub fn new(child: Child) -> Owned {
        Owned {
            child,
            exited: None,
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal`, unless it was reaped.
    pub fn signal(&self, signal: Signal) {
        if self.exited.is_none()
            && let Some(pid) = Pid::from_raw(self.child.id() as i32)
        {
            let _ = kill_process(pid, signal);
        }
    }

    /// SIGKILL and reap; returns when the process is gone.
    pub fn kill(&mut self) {
        if self.exited.is_none() {
            self.signal(Signal::CONT);
            let _ = self.child.kill();
            self.exited = self.child.wait().ok();
        }
    }

    /// Its exit status, if it exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// Waits up to `limit` for the process to exit on its own.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.try_exit() {
                return Some(status);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        self.kill();
    }
}
