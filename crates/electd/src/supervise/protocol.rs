//! The line protocol between electd and its `--exec` watchdog, over the
//! socket pair only the two of them hold: one message per line, each
//! side's words typed here and nowhere else.
//!
//! ```text
//! electd ──"extend <deadline ns>" / "stop"───────────▶ watchdog
//!        ◀──"pid <pid>" / "ok" / "exited <status>"──
//! ```

use rustix::process::Pid;

/// What electd tells the watchdog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// The leadership holds until this `CLOCK_MONOTONIC` instant (ns):
    /// after each confirmed renewal.
    Extend(u64),
    /// Leadership ended: stop the command now.
    Stop,
}

/// What the watchdog tells electd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// The command's PID (and process group), once it started.
    Pid(Pid),
    /// It acted on a line of electd's.
    Ok,
    /// The command's status, once nothing of it lives: its exit code, or
    /// 128 + the signal that killed it; 127 when it could not start.
    Exited(u8),
}

impl Order {
    /// The line, newline included.
    pub fn line(self) -> String {
        match self {
            Order::Extend(ns) => format!("extend {ns}\n"),
            Order::Stop => "stop\n".to_owned(),
        }
    }

    /// Reads a line (without its newline); `None` for anything else.
    pub fn parse(line: &str) -> Option<Order> {
        match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["stop"] => Some(Order::Stop),
            ["extend", ns] => ns.parse().ok().map(Order::Extend),
            _ => None,
        }
    }
}

impl Report {
    /// The line, newline included.
    pub fn line(self) -> String {
        match self {
            Report::Pid(pid) => format!("pid {}\n", pid.as_raw_nonzero()),
            Report::Ok => "ok\n".to_owned(),
            Report::Exited(code) => format!("exited {code}\n"),
        }
    }

    /// Reads a line (without its newline); `None` for anything else.
    pub fn parse(line: &str) -> Option<Report> {
        match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["ok"] => Some(Report::Ok),
            ["pid", pid] => {
                Pid::from_raw(i32::try_from(pid.parse::<u32>().ok()?).ok()?).map(Report::Pid)
            }
            ["exited", code] => code.parse().ok().map(Report::Exited),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips() {
        for order in [Order::Extend(0), Order::Extend(u64::MAX), Order::Stop] {
            let line = order.line();
            assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
            assert_eq!(Order::parse(line.trim_end()), Some(order));
        }
        let pid = Pid::from_raw(42).expect("a pid");
        for report in [
            Report::Pid(pid),
            Report::Ok,
            Report::Exited(0),
            Report::Exited(255),
        ] {
            let line = report.line();
            assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
            assert_eq!(Report::parse(line.trim_end()), Some(report));
        }
    }

    #[test]
    fn anything_else_is_no_message() {
        for line in [
            "",
            "ok ok",
            "pid 0",
            "pid -1",
            "pid x",
            "exited 256",
            "exited",
            "hello",
        ] {
            assert_eq!(Report::parse(line), None, "{line:?}");
        }
        for line in ["", "stop now", "extend", "extend -1", "extend x", "ok"] {
            assert_eq!(Order::parse(line), None, "{line:?}");
        }
    }
}
