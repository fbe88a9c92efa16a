//! The benchmark at its smallest size, so that it cannot rot: every section
//! runs once against a real etcd and real electd processes.

use std::process::Command;

#[test]
fn the_benchmark_runs_at_its_smallest_size() {
    let out = tempfile::tempdir().unwrap();
    let bench = env!("CARGO_BIN_EXE_electd-bench");
    let electd = harness::workspace_binary("electd", "electd");
    let status = Command::new(bench)
        .args(["--quick", "--out"])
        .arg(out.path())
        .arg("--electd")
        .arg(&electd)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("electd-bench runs");
    assert!(status.success());
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("results.json")).unwrap())
            .unwrap();
    for api in results["apis"].as_array().unwrap() {
        assert!(
            api["sigterm_handover_ms"]["median"].as_f64().unwrap() > 0.0,
            "{api}"
        );
        assert!(api["resign_handover_ms"]["n"].as_u64().unwrap() >= 1);
        assert!(
            api["crash"][0]["kill_to_acquired_ms"]["n"]
                .as_u64()
                .unwrap()
                >= 1
        );
        let steered: &[&str] = match api["api"].as_str().unwrap() {
            "v3" => &["to_handover", "drain_handover", "preempt_handover"],
            _ => &["drain_handover"],
        };
        for row in steered {
            for series in ["request_to_acquired_ms", "ended_to_acquired_ms"] {
                assert!(api[row][series]["n"].as_u64().unwrap() >= 1, "{row}: {api}");
            }
        }
        assert_eq!(api["load"].as_array().unwrap().len(), 2);
        assert!(api["memory"]["idle_leader_rss_kb"].as_u64().unwrap() > 0);
    }
    assert!(out.path().join("handover.svg").exists());
}
