//! Operations, against a real etcd with real processes: `--exec` children
//! that never outlive their leadership, load-balancer health checks, the
//! hand-over endpoint (the Prometheus metrics are `metrics.rs`'s, the
//! event stream `watch.rs`'s).

use std::path::Path;
use std::time::{Duration, Instant};

use harness::eventually;
use harness::node::{Node, NodeArgs};
use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common;
use crate::common::{Run, metric};

const SLACK: Duration = Duration::from_secs(10);
const TOKEN: &str = "t0ken-for-tests";

fn gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

async fn children_never_overlap_nor_outlive_their_leadership(api: &'static str) {
    let _alone = common::exclusive().await;
    let mut run = Run::new(api, 2, 0).await;
    let script = harness::ticks::write_ticker(run.dir.path());
    let script = script.to_str().unwrap().to_owned();
    let offset = harness::ticks::realtime_offset();
    let mut files = Vec::new();
    let exec_args = |name: &str, dir: &Path| -> NodeArgs {
        let ticks = dir.join(format!("{name}.ticks"));
        NodeArgs::new().exec(["sh", &script, ticks.to_str().unwrap()])
    };
    let env = [("ELECTD_ADMIN_TOKEN", TOKEN)];
    for i in 0..3 {
        let name = format!("n{i}");
        let args = exec_args(&name, run.dir.path());
        run.spawn_with_env(&name, args, &env);
        files.push((name.clone(), run.dir.path().join(format!("{name}.ticks"))));
    }
    for node in &run.nodes {
        node.wait_serving().await;
    }
    let ticking = |run: &Run, i: usize, term: u64| {
        let file = run.dir.path().join(format!("{}.ticks", run.nodes[i].name));
        async move {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            text.contains(&format!("tick {term} ")).then_some(())
        }
    };

    // 1. kill -9 of the leader's electd (its PID only): the child dies with it.
    let leader = run.sole_leader(SLACK).await;
    let term = run.term(leader).await;
    eventually(SLACK, "the leader's child to tick", || {
        ticking(&run, leader, term)
    })
    .await;
    run.kill9(leader);
    let next = run
        .sole_leader_among(
            &run.alive()
                .into_iter()
                .filter(|&i| i != leader)
                .collect::<Vec<_>>(),
            run.ttl() + SLACK,
        )
        .await;
    let term = run.term(next).await;
    eventually(SLACK, "the new leader's child to tick", || {
        ticking(&run, next, term)
    })
    .await;
    let args = exec_args(&run.nodes[leader].name.clone(), run.dir.path());
    run.restart(leader, args, &env);
    run.nodes[leader].wait_serving().await;

    // 2. SIGSTOP of the leader's electd past the TTL: the watchdog stops the
    //    child by the deadline; another node leads.
    let leader = next;
    run.nodes[leader].pause();
    let others: Vec<usize> = run.alive().into_iter().filter(|&i| i != leader).collect();
    let next = run.sole_leader_among(&others, run.ttl() + SLACK).await;
    let term = run.term(next).await;
    eventually(SLACK, "the new leader's child to tick", || {
        ticking(&run, next, term)
    })
    .await;
    run.nodes[leader].resume();
    run.sole_leader(SLACK).await;

    // 3. SIGTERM: stop the child, resign, exit 0.
    let leader = run.sole_leader(SLACK).await;
    run.nodes[leader].terminate();
    assert_eq!(
        run.nodes[leader]
            .wait_exit(SLACK)
            .await
            .and_then(|s| s.code()),
        Some(0)
    );
    let others: Vec<usize> = run.alive().into_iter().filter(|&i| i != leader).collect();
    let next = run.sole_leader_among(&others, SLACK).await;
    let term = run.term(next).await;
    eventually(SLACK, "the new leader's child to tick", || {
        ticking(&run, next, term)
    })
    .await;
    let args = exec_args(&run.nodes[leader].name.clone(), run.dir.path());
    run.restart(leader, args, &env);
    run.nodes[leader].wait_serving().await;

    // 4. POST /v1/resign on the leader.
    let leader = next;
    let auth = format!("Bearer {TOKEN}");
    let answer = run.nodes[leader]
        .request(Method::POST, "/v1/resign", &[("Authorization", &auth)])
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    let others: Vec<usize> = run.alive().into_iter().filter(|&i| i != leader).collect();
    let next = run.sole_leader_among(&others, SLACK).await;
    let term = run.term(next).await;
    eventually(SLACK, "the new leader's child to tick", || {
        ticking(&run, next, term)
    })
    .await;

    // Stop everything in order, then read what the children wrote.
    for i in run.alive() {
        run.nodes[i].terminate();
    }
    for i in run.alive() {
        assert_eq!(
            run.nodes[i].wait_exit(SLACK).await.and_then(|s| s.code()),
            Some(0)
        );
    }
    let drift = (harness::ticks::realtime_offset() - offset).abs();
    assert!(
        drift < 5_000_000,
        "the wall clock moved by {drift} ns during the test"
    );
    let ticks = harness::ticks::read(&files, offset);
    let (children, grandchildren, env) = (ticks.children, ticks.grandchildren, ticks.env);
    assert!(children.len() >= 5, "{children:#?}");
    for pair in children.windows(2) {
        assert!(
            pair[1].first > pair[0].last,
            "two children ran at once: {:?} and {:?}",
            pair[0],
            pair[1]
        );
        assert!(pair[1].term > pair[0].term, "terms must grow: {pair:?}");
    }
    let report = run.assert_safe();
    for child in &children {
        let leadership = report
            .intervals
            .iter()
            .find(|i| i.id == child.node && i.term == child.term)
            .unwrap_or_else(|| panic!("no leadership in the journal for {child:?}"));
        // The end of the leadership in the journal: `ended`, or the last deadline
        // when the process was killed and wrote none.
        let end = match leadership.reason {
            Some(_) => leadership.end_ns,
            None => last_deadline(&run, &child.node, child.term),
        };
        assert!(
            child.last <= end,
            "{child:?} ran {} ms past its leadership {leadership:?}",
            (child.last - end) as f64 / 1e6
        );
    }
    for pid in grandchildren {
        assert!(
            gone(pid),
            "grandchild {pid} outlived its child: {}",
            std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default()
        );
    }
    assert!(env.iter().any(|v| v.starts_with("ELECTD_TERM=")), "{env:?}");
    assert!(env.iter().any(|v| v.starts_with("ELECTD_ID=")), "{env:?}");
    assert!(
        env.iter().any(|v| v.starts_with("ELECTD_ELECTION=leader")),
        "{env:?}"
    );
    assert!(
        env.iter()
            .any(|v| v.starts_with("ELECTD_ADVERTISE=http://")),
        "{env:?}"
    );
    assert!(
        !env.iter()
            .any(|v| v.contains(TOKEN) || v.starts_with("ELECTD_ADMIN_TOKEN")),
        "a secret reached the child: {env:?}"
    );
}

fn last_deadline(run: &Run, node: &str, term: u64) -> u64 {
    let text = std::fs::read_to_string(run.dir.path().join(format!("{node}.jsonl"))).unwrap();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["term"] == term)
        .filter_map(|r| r["deadline_ns"].as_u64())
        .max()
        .unwrap()
}

async fn health_checks_never_show_two_leaders(api: &'static str) {
    let _alone = common::exclusive().await;
    let mut run = Run::new(api, 2, 3).await;
    let leader = run.sole_leader(SLACK).await;
    for (i, node) in run.nodes.iter().enumerate() {
        let l = node.get("/health/leader").await.unwrap();
        let f = node.get("/health/follower").await.unwrap();
        if i == leader {
            assert_eq!((l.status, f.status), (200, 503));
            assert_eq!(l.body, run.term(i).await.to_string());
        } else {
            eventually(SLACK, "followers to know the leader", || async {
                (node.get("/health/follower").await?.status == 200).then_some(())
            })
            .await;
            assert_eq!(l.status, 503);
        }
    }

    // Poll every node's /health/leader every 10 ms through a hand-over and a crash.
    let polling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let oks: std::sync::Arc<Vec<std::sync::atomic::AtomicUsize>> = std::sync::Arc::new(
        (0..3)
            .map(|_| std::sync::atomic::AtomicUsize::new(0))
            .collect(),
    );
    let mut pollers = Vec::new();
    for (i, node) in run.nodes.iter().enumerate() {
        let url = format!("{}/health/leader", node.url());
        let polling = polling.clone();
        let oks = oks.clone();
        pollers.push(tokio::spawn(async move {
            let client = harness::http()
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap();
            let mut answered = Vec::new();
            while polling.load(std::sync::atomic::Ordering::Relaxed) {
                let start = Instant::now();
                if let Ok(resp) = client.get(&url).send().await
                    && resp.status() == 200
                {
                    answered.push((start, Instant::now()));
                    oks[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            answered
        }));
    }
    run.nodes[leader].terminate();
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let next = run.sole_leader_among(&others, SLACK).await;
    run.kill9(next);
    let last = others.into_iter().find(|&i| i != next).unwrap();
    run.sole_leader_among(&[last], run.ttl() + SLACK).await;
    eventually(SLACK, "the last leader's poller to see 200", || async {
        (oks[last].load(std::sync::atomic::Ordering::Relaxed) > 0).then_some(())
    })
    .await;
    polling.store(false, std::sync::atomic::Ordering::Relaxed);
    let mut all = Vec::new();
    for (i, poller) in pollers.into_iter().enumerate() {
        all.extend(poller.await.unwrap().into_iter().map(|(s, e)| (s, e, i)));
    }
    all.sort();
    for pair in all.windows(2) {
        let ((_, end_a, a), (start_b, _, b)) = (pair[0], pair[1]);
        assert!(
            a == b || start_b >= end_a,
            "nodes {a} and {b} both answered 200 at once"
        );
    }

    // A paused leader answers 503 on its first request after waking.
    run.nodes[last].pause();
    tokio::time::sleep(run.ttl() + Duration::from_millis(500)).await;
    run.nodes[last].resume();
    assert_eq!(
        run.nodes[last].get("/health/leader").await.unwrap().status,
        503
    );
    run.assert_safe();
}

/// An admin endpoint's answer: the status, the `WWW-Authenticate` header,
/// and the body, which is JSON whatever the status.
pub struct AdminAnswer {
    pub status: u16,
    pub authenticate: Option<String>,
    pub body: serde_json::Value,
}

impl AdminAnswer {
    /// Asserts a refusal: `status`, the machine-readable `error` code, and
    /// a `message` for people.
    fn assert_refused(&self, status: u16, error: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.body["error"], error, "{}", self.body);
        assert!(
            self.body["message"]
                .as_str()
                .is_some_and(|m| !m.trim().is_empty()),
            "no message: {}",
            self.body
        );
        // 401 says how to authenticate; nothing else asks for credentials.
        let expected = (status == 401).then_some("Bearer");
        assert_eq!(self.authenticate.as_deref(), expected, "{}", self.body);
    }
}

/// POSTs `path` to `node`, with `Authorization: <auth>` when given.
pub async fn admin_post(node: &Node, path: &str, auth: Option<&str>) -> AdminAnswer {
    let http = harness::http()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut request = http.post(format!("{}{path}", node.url()));
    if let Some(auth) = auth {
        request = request.header("Authorization", auth);
    }
    let answer = request.send().await.expect("the node answers");
    let status = answer.status().as_u16();
    let authenticate = answer
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let content_type = answer
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = answer.text().await.expect("a body");
    assert!(
        content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("application/json")),
        "POST {path} answered {status} with {content_type:?}: {text}"
    );
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("POST {path} answered {status} with no JSON ({e}): {text}"));
    AdminAnswer {
        status,
        authenticate,
        body,
    }
}

async fn resign_on_demand_needs_the_token_and_the_leader(api: &'static str) {
    let mut run = Run::new(api, 2, 0).await;
    let env = [("ELECTD_ADMIN_TOKEN", TOKEN)];
    for i in 0..2 {
        run.spawn_with_env(&format!("n{i}"), NodeArgs::new(), &env);
    }
    // Without a token; an observer, so that it never leads.
    let plain = run.spawn("plain", NodeArgs::new().observe());
    for node in &run.nodes {
        node.wait_serving().await;
    }
    let leader = run.sole_leader(SLACK).await;
    let term = run.term(leader).await;
    let bearer = format!("Bearer {TOKEN}");
    let follower = (0..2).find(|&i| i != leader).expect("a follower");
    for path in ["/v1/resign", "/v1/drain", "/v1/undrain"] {
        let node = &run.nodes[leader];
        for auth in [
            None,
            Some("Bearer wrong"),
            Some("Basic dDBrZW4tZm9yLXRlc3Rz"),
            Some(TOKEN),
        ] {
            admin_post(node, path, auth)
                .await
                .assert_refused(401, "unauthorized");
            unchanged(&run, leader, term).await;
        }
        // No token configured: off, whatever the request says.
        for auth in [None, Some(bearer.as_str())] {
            admin_post(&run.nodes[plain], path, auth)
                .await
                .assert_refused(403, "admin_off");
        }
    }
    admin_post(&run.nodes[follower], "/v1/resign", Some(&bearer))
        .await
        .assert_refused(409, "not_leader");
    assert_eq!(
        run.nodes[leader]
            .request(Method::GET, "/v1/resign", &[])
            .await
            .unwrap()
            .status,
        405
    );
    unchanged(&run, leader, term).await;

    let answer = admin_post(&run.nodes[leader], "/v1/resign", Some(&bearer)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_ne!(answer.body["role"], "leader");
    let next = run.sole_leader_among(&[follower], SLACK).await;
    assert!(run.term(next).await > term);
    admin_post(&run.nodes[leader], "/v1/resign", Some(&bearer))
        .await
        .assert_refused(409, "not_leader");
    // A resigned node waits a TTL (the default cooldown) before campaigning
    // again: with both resigned, the election stays empty until then.
    let resigned_ns = run
        .journal(leader)
        .into_iter()
        .find(|r| r["reason"] == "resign")
        .and_then(|r| r["t_ns"].as_u64())
        .expect("the resignation in the journal");
    let answer = admin_post(&run.nodes[next], "/v1/resign", Some(&bearer)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let again = run.sole_leader(SLACK * 2).await;
    let acquired_ns = run
        .journal(again)
        .into_iter()
        .filter(|r| r["event"] == "acquired")
        .filter_map(|r| r["t_ns"].as_u64())
        .max()
        .expect("a new acquisition");
    let waited = Duration::from_nanos(acquired_ns.saturating_sub(resigned_ns));
    assert!(
        waited >= run.ttl() - Duration::from_millis(50),
        "led again {waited:?} after resigning"
    );
    run.assert_safe();
}

async fn unchanged(run: &Run, leader: usize, term: u64) {
    assert!(run.nodes[leader].is_leader().await, "the leader changed");
    assert_eq!(run.term(leader).await, term, "the term changed");
}

both_apis!(
    children_never_overlap_nor_outlive_their_leadership,
    health_checks_never_show_two_leaders,
    resign_on_demand_needs_the_token_and_the_leader,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_exits_makes_the_leader_resign_or_electd_exit() {
    let mut run = Run::new("v3", 2, 0).await;
    let a = run.spawn("a", NodeArgs::new().exec(["sh", "-c", "sleep 0.2; exit 3"]));
    run.nodes[a].wait_serving().await;
    run.sole_leader(SLACK).await;
    eventually(
        SLACK,
        "the exit to be logged and leadership given up",
        || async {
            let log = run.nodes[a].output();
            (log.contains("exited with status 3") && !run.nodes[a].is_leader().await).then_some(())
        },
    )
    .await;
    let ended = run.journal(a).into_iter().find(|r| r["event"] == "ended");
    assert_eq!(ended.unwrap()["reason"], "resign");

    let b = run.spawn(
        "b",
        NodeArgs::new()
            .exec_on_exit("exit")
            .exec(["sh", "-c", "sleep 0.2; exit 7"]),
    );
    run.nodes[a].terminate();
    let status = run.nodes[b].wait_exit(SLACK * 2).await;
    assert_eq!(status.and_then(|s| s.code()), Some(7));
    run.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_command_is_counted_and_admin_can_move_to_its_own_port() {
    let mut run = Run::new("v3", 2, 0).await;
    let admin_port = harness::free_port();
    let admin = format!("127.0.0.1:{admin_port}");
    let node = run.spawn(
        "r",
        NodeArgs::new()
            .admin_listen(&admin)
            .exec_on_exit("restart")
            .exec(["sh", "-c", "sleep 0.1"]),
    );
    run.nodes[node].wait_serving().await;
    run.sole_leader(SLACK).await;
    assert_eq!(run.nodes[node].get("/metrics").await.unwrap().status, 404);
    let status = run.nodes[node].status().await.unwrap();
    assert_eq!(status["admin"], format!("http://{admin}"), "{status}");
    let url = format!("http://{admin}/metrics");
    let http = harness::http().build().unwrap();
    eventually(SLACK, "a restart to be counted", || async {
        let text = http.get(&url).send().await.ok()?.text().await.ok()?;
        (metric(&text, "electd_exec_restarts_total")? >= 1.0).then_some(())
    })
    .await;
    assert!(
        run.nodes[node].is_leader().await,
        "restart keeps the leadership"
    );
    run.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reads_are_shared_and_watch_streams_are_capped() {
    let run = Run::new("v3", 3, 1).await;
    let node = &run.nodes[run.sole_leader(SLACK).await];
    let ranges = || async {
        let text = node.get("/metrics").await.unwrap().body;
        metric(
            &text,
            "electd_etcd_requests_total{op=\"range\",outcome=\"ok\"}",
        )
        .expect("a range counter")
    };
    let before = ranges().await;
    let started = Instant::now();
    let readers = (0..4).map(|_| {
        let url = format!("{}/v1/status", node.url());
        tokio::spawn(async move {
            let http = harness::http().build().unwrap();
            let mut listed = 0;
            for _ in 0..50 {
                let body: serde_json::Value =
                    http.get(&url).send().await.unwrap().json().await.unwrap();
                if body["candidates"].as_array().is_some_and(|c| !c.is_empty()) {
                    listed += 1;
                }
            }
            listed
        })
    });
    let mut listed = 0;
    for reader in readers.collect::<Vec<_>>() {
        listed += reader.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let reads = ranges().await - before;
    assert_eq!(listed, 200, "every answer lists the candidates");
    eprintln!("{reads} etcd reads for 200 status requests in {elapsed:.2} s");
    // At most one read per half second, plus the election's own.
    assert!(
        reads <= (elapsed / 0.5).ceil() + 3.0,
        "{reads} etcd reads for 200 status requests in {elapsed:.2} s"
    );

    let addr = node.url().trim_start_matches("http://").to_owned();
    let open_watch = || async {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /v1/watch HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 12];
        tokio::time::timeout(SLACK, s.read_exact(&mut head))
            .await
            .unwrap()
            .unwrap();
        (String::from_utf8_lossy(&head).into_owned(), s)
    };
    let mut streams = Vec::new();
    for _ in 0..64 {
        let (head, s) = open_watch().await;
        assert_eq!(head, "HTTP/1.1 200");
        streams.push(s);
    }
    assert_eq!(open_watch().await.0, "HTTP/1.1 503");
    // A closed stream frees its place.
    streams.pop();
    eventually(SLACK, "a freed watch slot", || async {
        let (head, s) = open_watch().await;
        (head == "HTTP/1.1 200").then_some(s)
    })
    .await;
    // Other requests are still served meanwhile.
    assert!(node.is_leader().await);
}
