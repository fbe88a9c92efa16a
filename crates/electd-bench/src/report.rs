//! The report: every section's results, as JSON and as the table printed.

use serde::Serialize;

use crate::cost::{Http, Memory};
use crate::crash::{Crash, HostAlive};
use crate::fleet::Fleet;
use crate::stats::Summary;
use crate::steer::Steered;
use crate::{etcdctl, load};

#[derive(Default, Serialize)]
pub struct Report {
    pub machine: String,
    pub date: String,
    pub quick: bool,
    pub apis: Vec<ApiReport>,
    pub etcdctl: Option<etcdctl::Report>,
}

#[derive(Default, Serialize)]
pub struct ApiReport {
    pub api: String,
    /// SIGTERM of the leader → the next `acquired` (ms).
    pub sigterm_handover_ms: Option<Summary>,
    /// `POST /v1/resign` → the next `acquired` (ms).
    pub resign_handover_ms: Option<Summary>,
    /// `POST /v1/resign?to=ID`, `ID` the last of three in line (v3).
    pub to_handover: Option<Steered>,
    /// `POST /v1/drain` on the leader.
    pub drain_handover: Option<Steered>,
    /// A node of higher priority with `--preempt` takes over (v3).
    pub preempt_handover: Option<Steered>,
    pub crash: Vec<Crash>,
    /// kill -9 of the leader's electd alone, its guardian alive.
    pub host_alive: Vec<HostAlive>,
    /// SIGTERM hand-over by fleet size (v3).
    pub fleet: Vec<Fleet>,
    /// Start of three nodes → the first `acquired` (ms).
    pub cold_start_ms: Option<Summary>,
    pub load: Vec<load::Load>,
    pub memory: Option<Memory>,
    pub http: Vec<Http>,
}

fn row(name: &str, s: &Option<Summary>) {
    match s {
        Some(s) => println!(
            "  {name:<44} n={:<4} median {:>9.3}  p90 {:>9.3}  p99 {:>9.3}  min {:>9.3}  max {:>9.3}",
            s.n, s.median, s.p90, s.p99, s.min, s.max
        ),
        None => println!("  {name:<44} (no samples)"),
    }
}

/// Prints the report as a table.
pub fn print_table(report: &Report) {
    println!("electd-bench, {} — {}", report.date, report.machine);
    for api in &report.apis {
        println!("\n--api {} (milliseconds)", api.api);
        // Sections left out (--only) have nothing to show.
        if api.sigterm_handover_ms.is_some() || api.resign_handover_ms.is_some() {
            row(
                "hand-over: SIGTERM → next acquired",
                &api.sigterm_handover_ms,
            );
            row(
                "hand-over: /v1/resign → next acquired",
                &api.resign_handover_ms,
            );
        }
        for (name, asked, steered) in [
            ("?to= last in line", "request", &api.to_handover),
            ("drain", "request", &api.drain_handover),
            ("preemption", "/v1/undrain", &api.preempt_handover),
        ] {
            if let Some(steered) = steered {
                row(
                    &format!("{name}: {asked} → next acquired"),
                    &steered.request_to_acquired_ms,
                );
                row(
                    &format!("{name}: ended → next acquired"),
                    &steered.ended_to_acquired_ms,
                );
            }
        }
        for h in &api.host_alive {
            let exec = if h.exec { ", --exec" } else { "" };
            row(
                &format!("host alive TTL {} s{exec}: kill -9 electd → acq", h.ttl_s),
                &h.kill_to_acquired_ms,
            );
            row(
                &format!("host alive TTL {} s{exec}: guardian released", h.ttl_s),
                &h.guardian_released_in_ms,
            );
            row(
                &format!("host alive TTL {} s{exec}: kill → delete seen", h.ttl_s),
                &h.kill_to_delete_ms,
            );
            row(
                &format!("host alive TTL {} s{exec}: delete → acquired", h.ttl_s),
                &h.delete_to_acquired_ms,
            );
        }
        for f in &api.fleet {
            row(
                &format!("fleet {} candidates: SIGTERM → acquired", f.candidates),
                &f.sigterm_handover_ms,
            );
        }
        for c in &api.crash {
            row(
                &format!("crash TTL {} s: kill -9 → next acquired", c.ttl_s),
                &c.kill_to_acquired_ms,
            );
            row(
                &format!("crash TTL {} s: lease end → etcd deletes key", c.ttl_s),
                &c.lease_end_to_delete_ms,
            );
            row(
                &format!("crash TTL {} s: etcd deletes key → acquired", c.ttl_s),
                &c.delete_to_acquired_ms,
            );
        }
        if api.cold_start_ms.is_some() {
            row("cold start of 3 nodes → first acquired", &api.cold_start_ms);
        }
        if !api.load.is_empty() {
            println!(
                "  etcd load (proposals = raft entries; requests = gRPC messages or HTTP requests):"
            );
        }
        for l in &api.load {
            println!(
                "    {:>5} candidates: steady {:>7.2} proposals/s {:>8.1} requests/s; per hand-over {:>6.1} proposals {:>7.1} requests; {:>6.1} kB RSS per candidate",
                l.candidates,
                l.steady_proposals_per_s,
                l.steady_requests_per_s,
                l.proposals_per_handover,
                l.requests_per_handover,
                l.rss_kb_per_candidate
            );
        }
        if let Some(m) = &api.memory {
            println!(
                "  memory: idle leader {} kB, idle follower {} kB; leader over {} s: {} → {} kB (max {})",
                m.idle_leader_rss_kb,
                m.idle_follower_rss_kb,
                m.watched_seconds,
                m.leader_rss_kb_start,
                m.leader_rss_kb_end,
                m.leader_rss_kb_max
            );
        }
        for h in &api.http {
            let gap = h
                .worst_renewal_gap_ms
                .map_or_else(|| "n/a (too short)".to_owned(), |g| format!("{g:.1} ms"));
            println!(
                "  HTTP GET {:<11} {:>9.0} req/s, p99 {:>7.3} ms; worst renewal gap {gap} (interval {:.0} ms)",
                h.path, h.requests_per_second, h.p99_ms, h.renewal_interval_ms
            );
        }
    }
    if let Some(e) = &report.etcdctl {
        println!("\netcdctl elect (v3, session TTL 60 s; milliseconds)");
        for (who, p) in [
            ("electd v3 SIGTERM", &e.electd),
            ("etcdctl SIGINT", &e.etcdctl),
        ] {
            row(
                &format!("{who}: → released in etcd"),
                &p.released_in_etcd_ms,
            );
            row(
                &format!("{who}: → successor leads in etcd"),
                &p.leads_in_etcd_ms,
            );
            row(&format!("{who}: → successor says so"), &p.says_so_ms);
        }
        row(
            "etcdctl SIGINT, successor just spawned → printed",
            &e.fresh_successor_ms,
        );
        row("crash: kill -9 → next elected", &e.kill_to_elected_ms);
        row(
            "crash: etcd deletes key → next elected",
            &e.delete_to_elected_ms,
        );
    }
}
