//! Hostile HTTP clients: oversized headers and bodies, slowloris, connection
//! and request floods. Memory and file descriptors stay bounded, slow clients
//! are cut off, and the election never notices: renewals keep their schedule
//! (measured from the journal's `renewed` lines).

use std::time::Duration;

use harness::now_ns;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::Run;

const SLACK: Duration = Duration::from_secs(10);

fn proc_status(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Times between consecutive `renewed` lines written within `[from, to]`, in ms.
fn renewal_gaps(run: &Run, node: usize, from: u64, to: u64) -> Vec<f64> {
    let times: Vec<u64> = run
        .journal(node)
        .iter()
        .filter(|r| r["event"] == "renewed")
        .filter_map(|r| r["t_ns"].as_u64())
        .filter(|&t| t >= from && t <= to)
        .collect();
    times
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64 / 1e6)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_http_flood_never_disturbs_the_election() {
    // This test opens hundreds of sockets of its own.
    harness::raise_fd_limit();
    let run = Run::new("v3", 3, 1).await;
    let leader = run.sole_leader(SLACK).await;
    let node = &run.nodes[leader];
    let pid = node.pid();
    let term = node.status().await.unwrap()["term"].clone();
    let addr = format!("127.0.0.1:{}", node.port);
    let rss_before = proc_status(pid, "VmRSS:");
    let started = now_ns();

    // Oversized headers: refused, nothing kept.
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let _ = s.write_all(huge.as_bytes()).await;
    let mut answer = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut answer)).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );

    // An oversized body to the admin endpoint: answered without being read.
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let head = "POST /v1/resign HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n";
    s.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..64 {
        if s.write_all(&chunk).await.is_err() {
            break;
        }
    }
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    let reply = String::from_utf8_lossy(&buf[..n]);
    assert!(n == 0 || reply.starts_with("HTTP/1.1 403"), "{reply}");
    drop(s);

    // Slowloris: headers that never finish are cut off after the header timeout.
    let mut slow = Vec::new();
    for _ in 0..100 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        slow.push(s);
    }

    // A connection flood far over the cap, and a request flood on top.
    let mut flood = Vec::new();
    for _ in 0..700 {
        if let Ok(s) = TcpStream::connect(&addr).await {
            flood.push(s);
        }
    }
    let mut fds_seen = open_fds(pid);
    let requests = (0..32)
        .map(|_| {
            let url = format!("http://{addr}/v1/status");
            tokio::spawn(async move {
                let client = harness::http()
                    .timeout(Duration::from_secs(2))
                    .build()
                    .unwrap();
                let mut ok = 0u32;
                let until = tokio::time::Instant::now() + Duration::from_secs(6);
                while tokio::time::Instant::now() < until {
                    if client
                        .get(&url)
                        .send()
                        .await
                        .is_ok_and(|r| r.status() == 200)
                    {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect::<Vec<_>>();
    let sampler = tokio::spawn(async move {
        let mut most = 0;
        for _ in 0..60 {
            most = most.max(open_fds(pid));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        most
    });
    let mut served = 0;
    for r in requests {
        served += r.await.unwrap();
    }
    fds_seen = fds_seen.max(sampler.await.unwrap());

    // The slow clients were cut off.
    let mut closed = 0;
    for s in &mut slow {
        let mut buf = [0u8; 256];
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(8), s.read(&mut buf)).await {
            closed += 1;
        }
    }
    drop(flood);
    drop(slow);
    let ended = now_ns();

    assert!(served > 0, "no status request was served during the flood");
    assert_eq!(
        closed, 100,
        "every slowloris connection is closed by the server"
    );
    assert!(
        fds_seen < 256 + 64,
        "{fds_seen} descriptors open during the flood"
    );
    let rss_after = proc_status(pid, "VmRSS:");
    assert!(
        rss_after < rss_before + 32 * 1024,
        "RSS grew from {rss_before} kB to {rss_after} kB"
    );
    // The election never noticed.
    assert!(node.is_leader().await);
    assert_eq!(node.status().await.unwrap()["term"], term);
    let gaps = renewal_gaps(&run, leader, started, ended);
    assert!(gaps.len() >= 5, "{gaps:?}");
    let worst = gaps.iter().cloned().fold(0.0, f64::max);
    let mut sorted = gaps.clone();
    sorted.sort_by(f64::total_cmp);
    eprintln!(
        "during the flood: {served} status requests served, {fds_seen} fds at most, RSS {rss_before} → {rss_after} kB, \
         renewal gaps median {:.1} ms, worst {worst:.1} ms (interval 1000 ms)",
        sorted[sorted.len() / 2]
    );
    assert!(
        worst < 1000.0 + 250.0,
        "a renewal came {worst:.1} ms after the previous one"
    );
    run.assert_safe();
}
