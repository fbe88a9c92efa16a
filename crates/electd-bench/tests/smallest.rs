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
        let v3 = api["api"] == "v3";
        let kinds: &[&str] = if v3 {
            &["?to= last in line", "drain", "unhealthy", "preemption"]
        } else {
            &["drain"]
        };
        let steered = api["steered"].as_array().unwrap();
        assert_eq!(steered.len(), kinds.len(), "{api}");
        for (row, kind) in steered.iter().zip(kinds) {
            assert_eq!(row["kind"], *kind);
            for series in ["request_to_acquired_ms", "ended_to_acquired_ms"] {
                assert!(row[series]["n"].as_u64().unwrap() >= 1, "{kind}: {api}");
            }
            // etcd's account: the successor's term is a revision after the trigger.
            if v3 {
                assert!(row["cost"]["writes_to_term"]["min"].as_f64().unwrap() >= 1.0);
            }
        }
        assert_eq!(api["load"].as_array().unwrap().len(), 2);
        assert!(api["memory"]["idle_leader_rss_kb"].as_u64().unwrap() > 0);
        if v3 {
            let shards = &api["shards"];
            assert!(shards["all_led_ms"].as_f64().is_some(), "{shards}");
            for leave in ["sigterm", "kill_electd", "kill_node"] {
                assert!(
                    shards[leave]["gap_ms"]["n"].as_u64().unwrap() >= 1,
                    "{leave}: {shards}"
                );
            }
            assert!(
                shards["join"]["moved"][0].as_u64().unwrap() >= 1,
                "{shards}"
            );
            assert_eq!(shards["violations"], serde_json::json!([]), "{shards}");
        }
    }
    // Without etcdctl (not installed) the section is left out.
    let settled = &results["etcdctl"]["settled"];
    if !results["etcdctl"].is_null() {
        for series in [
            &settled["floor_ms"],
            &settled["electd"]["says_so_ms"],
            &settled["etcdctl"]["says_so_ms"],
        ] {
            assert!(series["median"].as_f64().unwrap() > 0.0, "{settled}");
        }
    }
    assert!(out.path().join("handover.svg").exists());
}
