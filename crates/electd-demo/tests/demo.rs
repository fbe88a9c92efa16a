//! The README's first command runs this program: it must elect, fail over
//! each of its three ways, name where to watch, bring every node back on
//! its own port, and stop when its time is up.

use std::io::{BufRead, BufReader};
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn the_demo_fails_over_three_ways_and_keeps_each_nodes_address() {
    let electd = harness::workspace_binary("electd", "electd");
    let output = Command::new(env!("CARGO_BIN_EXE_electd-demo"))
        .args(["--duration", "15", "--electd"])
        .arg(&electd)
        .output()
        .expect("electd-demo runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}\n{errors}");
    for phrase in [
        "leads after",
        "See it live in a browser",
        "/ui",
        "electctl --node http://127.0.0.1:",
        "took over",
        "after the crash",
        "after SIGTERM",
        "restarted node",
        "on its port again",
        "stopped.",
    ] {
        assert!(text.contains(phrase), "no {phrase:?} in:\n{text}");
    }
    // Each node keeps the address it was first shown with.
    let mut first_seen = std::collections::HashMap::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if let (Some(name), Some(url)) = (words.next(), words.next())
            && name.starts_with("node")
            && url.starts_with("http://")
        {
            let first = first_seen.entry(name.to_owned()).or_insert(url.to_owned());
            assert_eq!(first, url, "{name} moved:\n{text}");
        }
    }
    assert_eq!(first_seen.len(), 3, "{text}");
}

/// A demo started for a minute, and what its first lines say: where etcd
/// listens and the nodes' directory.
struct Started {
    demo: std::process::Child,
    /// Kept open while the test reads; `None` once it stops.
    output: Option<BufReader<std::process::ChildStdout>>,
    etcd: String,
    dir: String,
}

/// Starts a demo and reads its first three lines, calling `after_etcd`
/// with the demo's pid once etcd is up, before the nodes start.
fn start_demo(after_etcd: impl FnOnce(u32)) -> Started {
    let electd = harness::workspace_binary("electd", "electd");
    let mut demo = Command::new(env!("CARGO_BIN_EXE_electd-demo"))
        .args(["--duration", "60", "--electd"])
        .arg(&electd)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("electd-demo runs");
    let mut output = BufReader::new(demo.stdout.take().expect("its output"));
    let mut head = Vec::new();
    let mut after_etcd = Some(after_etcd);
    for i in 0..3 {
        if let Some(call) = after_etcd.take_if(|_| i == 2) {
            call(demo.id());
        }
        let mut line = String::new();
        output.read_line(&mut line).expect("a line");
        assert!(!line.is_empty(), "the demo ended after {head:?}");
        head.push(line);
    }
    let etcd = head[1]
        .trim()
        .strip_prefix("etcd at ")
        .expect("etcd's address");
    let dir = head[2]
        .trim()
        .rsplit(' ')
        .next()
        .expect("the nodes' directory");
    Started {
        etcd: etcd.to_owned(),
        dir: dir.to_owned(),
        demo,
        output: Some(output),
    }
}

impl Started {
    /// Waits (30 s at most) for the demo to exit, and checks that nothing
    /// it started is left running.
    fn ends_with_everything(mut self) -> std::process::ExitStatus {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.demo.try_wait().expect("the demo's status") {
                break status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the demo went on"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let left: Vec<String> = std::fs::read_dir("/proc")
            .expect("/proc")
            .flatten()
            .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
            .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
            .filter(|cmdline| cmdline.contains(&self.dir) || cmdline.contains(&self.etcd))
            .collect();
        assert!(left.is_empty(), "left running: {left:?}");
        status
    }
}

/// `scripts/demo.sh | head -3`: once nobody reads, the demo stops, and its
/// nodes and etcd with it. (A panic on the closed pipe would unwind here,
/// in a test build, but abort in the release build the script runs, which
/// has `panic = "abort"`: the demo must not panic.)
#[test]
fn a_demo_nobody_reads_stops_everything_it_started() {
    let mut started = start_demo(|_| {});
    started.output = None;
    let status = started.ends_with_everything();
    assert!(!status.success(), "{status:?}");
}

fn terminate(pid: u32) {
    let pid = rustix::process::Pid::from_raw(pid as i32).expect("a pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
}

/// `kill -TERM` (a `timeout`, a service manager): the demo stops what it
/// started and exits 0, as on Ctrl-C.
#[test]
fn a_demo_told_to_stop_stops_everything_it_started() {
    let started = start_demo(|_| {});
    terminate(started.demo.id());
    let status = started.ends_with_everything();
    assert!(status.success(), "{status:?}");
}

/// A SIGTERM that comes while the nodes are starting is kept until they
/// have started, then stops them all: it must not kill the demo outright
/// and leave its children behind.
#[test]
fn a_demo_told_to_stop_while_starting_stops_everything_it_started() {
    let started = start_demo(terminate);
    let status = started.ends_with_everything();
    assert!(status.success(), "{status:?}");
}
