//! The README's first command runs this program: it must elect, fail over
//! each of its three ways, name where to watch, bring every node back on
//! its own port, and stop when its time is up.

use std::process::Command;

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
