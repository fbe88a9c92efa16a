//! Secure etcd connections, against a real etcd: elections over TLS with
//! client certificates; each certificate problem named as such; etcd
//! authentication with the least-privilege role the book documents
//! (docs/src/guides/production-etcd.md); wrong passwords and missing
//! permissions named as such, and never leading; and
//! secrets kept out of logs, answers, `--help`, argv and the `--exec` child.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use harness::etcd::{Etcd, EtcdOptions};
use harness::eventually;
use harness::node::{Node, NodeArgs};
use harness::tls::Pki;

use crate::common;
use crate::common::{Run, SLACK, unhealthy, warned_once};

both_apis!(
    elections_over_tls_work_and_certificate_problems_are_named,
    the_least_privilege_role_elects_and_bad_credentials_are_named,
);

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// Waits until `node` has seen at least `n` etcd requests fail: retries
/// happened, so a problem said once was not said only once by luck.
async fn failed_requests(node: &Node, n: f64) {
    let what = format!("{} to fail {n} etcd requests", node.name);
    eventually(SLACK, &what, || async {
        let metrics = node.get("/metrics").await?.body;
        let failed: f64 = metrics
            .lines()
            .filter(|l| {
                l.starts_with("electd_etcd_requests_total{") && l.contains("outcome=\"error\"")
            })
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum();
        (failed >= n).then_some(())
    })
    .await;
}

fn journal_is_empty(node: &Node) {
    let journal = std::fs::read_to_string(&node.journal).unwrap_or_default();
    assert!(journal.is_empty(), "{} led:\n{journal}", node.name);
}

/// Stops the leader among `pair` and waits for the other to lead.
async fn hand_over(run: &mut Run, pair: [usize; 2]) {
    let leader = run.sole_leader_among(&pair, SLACK).await;
    let next = pair[0] + pair[1] - leader;
    run.nodes[leader].terminate();
    let status = run.nodes[leader].wait_exit(SLACK).await;
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    run.sole_leader_among(&[next], run.ttl() + SLACK).await;
}

async fn elections_over_tls_work_and_certificate_problems_are_named(api: &'static str) {
    let pki = Arc::new(Pki::new());
    let etcd = Etcd::start(EtcdOptions {
        tls: Some(pki.clone()),
        ..EtcdOptions::default()
    })
    .await;
    let mut run = Run::with_etcd(etcd, api, 2, 0).await;
    let a = run.spawn("a", pki.electd_args(NodeArgs::new()));
    let b = run.spawn("b", pki.electd_args(NodeArgs::new()));

    // etcd's certificate names 127.0.0.1 only.
    let good = run.etcd.endpoint(0);
    let wrong_host = format!("https://localhost:{}", run.etcd.client_port(0));
    let (ca, other_ca) = (path(&pki.ca), path(&pki.other_ca));
    let (stranger, stranger_key) = (path(&pki.stranger_cert), path(&pki.stranger_key));
    let client = NodeArgs::new().etcd_client_cert(&pki.client_cert, &pki.client_key);
    let cases: [(&str, NodeArgs, Vec<&str>); 4] = [
        (
            "wrong-ca",
            client.clone().etcd([&good]).etcd_cacert(other_ca),
            vec!["unknown certificate authority", other_ca, &good],
        ),
        (
            "wrong-host",
            client.clone().etcd([&wrong_host]).etcd_cacert(ca),
            vec!["wrong host name", "localhost", &wrong_host],
        ),
        (
            "no-client-cert",
            NodeArgs::new().etcd([&good]).etcd_cacert(ca),
            vec!["missing client certificate", "--etcd-cert", &good],
        ),
        (
            "stranger-cert",
            NodeArgs::new()
                .etcd([&good])
                .etcd_cacert(ca)
                .etcd_client_cert(stranger, stranger_key),
            vec!["client certificate refused", stranger, &good],
        ),
    ];
    let mut refused = Vec::new();
    for (name, own, _) in &cases {
        let args = own.clone().api(api).ttl(2);
        refused.push(Node::spawn(common::electd(), run.dir.path(), name, &args));
    }
    for node in run.nodes.iter().chain(&refused) {
        node.wait_serving().await;
    }

    run.sole_leader_among(&[a, b], SLACK).await;
    for (node, (_, _, words)) in refused.iter().zip(&cases) {
        let body = unhealthy(node, words).await;
        assert!(body.starts_with("TLS with etcd failed: "), "{body}");
        assert!(!node.is_leader().await);
    }
    hand_over(&mut run, [a, b]).await;
    // Many retries later: still one warning each, never a vaguer one, and nobody led.
    for (node, (_, _, words)) in refused.iter().zip(&cases) {
        failed_requests(node, 5.0).await;
        warned_once(node, words[0]);
        assert_eq!(
            node.output().matches("WARN").count(),
            1,
            "{}",
            node.output()
        );
        journal_is_empty(node);
    }
    run.assert_safe();
}

/// The production etcd guide's commands (docs/src/guides/production-etcd.md),
/// first part: a root user, the role an election needs (read/write on its
/// key or prefix, nothing else) and a user with it; and, for the tests, a
/// user whose role is for another election.
fn add_users_and_roles(etcd: &Etcd, api: &str) {
    let commands: &[&[&str]] = match api {
        "v2" => &[
            &["user", "add", "root:root-pw"],
            &["role", "add", "electd-leader"],
            &[
                "role",
                "grant",
                "electd-leader",
                "--path",
                "/leader",
                "--readwrite",
            ],
            &["user", "add", "electd:electd-pw"],
            &["user", "grant", "electd", "--roles", "electd-leader"],
            &["role", "add", "electd-other"],
            &[
                "role",
                "grant",
                "electd-other",
                "--path",
                "/other",
                "--readwrite",
            ],
            &["user", "add", "intruder:intruder-pw"],
            &["user", "grant", "intruder", "--roles", "electd-other"],
        ],
        _ => &[
            &["user", "add", "root", "--new-user-password=root-pw"],
            &["role", "add", "electd-leader"],
            &[
                "role",
                "grant-permission",
                "electd-leader",
                "--prefix=true",
                "readwrite",
                "/electd/leader/",
            ],
            &["user", "add", "electd", "--new-user-password=electd-pw"],
            &["user", "grant-role", "electd", "electd-leader"],
            &["role", "add", "electd-other"],
            &[
                "role",
                "grant-permission",
                "electd-other",
                "--prefix=true",
                "readwrite",
                "/electd/other/",
            ],
            &["user", "add", "intruder", "--new-user-password=intruder-pw"],
            &["user", "grant-role", "intruder", "electd-other"],
        ],
    };
    for args in commands {
        etcd.etcdctl(api, args);
    }
}

/// The production etcd guide's commands, second part.
fn enable_auth(etcd: &Etcd, api: &str) {
    etcd.etcdctl(api, &["auth", "enable"]);
    if api == "v2" {
        // Until this, v2's guest role lets anyone do anything.
        etcd.etcdctl(
            api,
            &[
                "--username",
                "root:root-pw",
                "role",
                "revoke",
                "guest",
                "--path",
                "/*",
                "--readwrite",
            ],
        );
    }
}

async fn the_least_privilege_role_elects_and_bad_credentials_are_named(api: &'static str) {
    // Unused v3 tokens expire after a second: a quiet election outlives its tokens.
    let etcd = Etcd::start(EtcdOptions {
        extra: vec!["--auth-token-ttl".into(), "1".into()],
        ..EtcdOptions::default()
    })
    .await;
    add_users_and_roles(&etcd, api);
    let mut run = Run::with_etcd(etcd, api, 2, 0).await;
    let dir = run.dir.path().to_owned();
    let password_file = |name: &str, password: &str| {
        let file = dir.join(name);
        // As `echo` writes it: the trailing newline is not part of the password.
        std::fs::write(&file, format!("{password}\n")).expect("a password file");
        file.to_string_lossy().into_owned()
    };
    let electd_pw = password_file("electd.pw", "electd-pw");
    let intruder_pw = password_file("intruder.pw", "intruder-pw");
    // Rolled out as the production etcd guide says: nodes get their user first, etcd
    // enables authentication after, and the leader keeps leading.
    let a = run.spawn(
        "a",
        NodeArgs::new()
            .etcd_user("electd")
            .etcd_password_file(&electd_pw),
    );
    run.nodes[a].wait_serving().await;
    run.sole_leader_among(&[a], SLACK).await;
    enable_auth(&run.etcd, api);
    let b = run.spawn_with_env(
        "b",
        NodeArgs::new().etcd_user("electd"),
        &[("ELECTD_ETCD_PASSWORD", "electd-pw")],
    );
    let wrong = run.spawn_with_env(
        "wrong-password",
        NodeArgs::new().etcd_user("electd"),
        &[("ELECTD_ETCD_PASSWORD", "wrong-pw")],
    );
    let intruder = run.spawn(
        "intruder",
        NodeArgs::new()
            .etcd_user("intruder")
            .etcd_password_file(&intruder_pw),
    );
    for node in &run.nodes {
        node.wait_serving().await;
    }
    run.sole_leader_among(&[a, b], SLACK).await;

    let endpoint = run.etcd.endpoint(0);
    let (wrong_words, intruder_words) = match api {
        // etcd's v2 API answers a wrong password and a missing permission alike.
        "v2" => (
            vec![
                "etcd rejected the credentials",
                "wrong user name or password",
                &endpoint,
            ],
            vec![
                "etcd rejected the credentials",
                "lack read/write permission on /leader",
            ],
        ),
        _ => (
            vec![
                "etcd rejected the credentials",
                "wrong user name or password",
                &endpoint,
            ],
            vec![
                "etcd denied permission",
                "user \"intruder\" needs a role with readwrite on the prefix /electd/leader/",
                &endpoint,
            ],
        ),
    };
    unhealthy(&run.nodes[wrong], &wrong_words).await;
    unhealthy(&run.nodes[intruder], &intruder_words).await;

    if api == "v3" {
        // `a` connected before authentication was on: it connects again as
        // its user when etcd first refuses it.
        eventually(SLACK, "a to read the candidates as its user", || async {
            let status = run.nodes[a].status().await?;
            (status["candidates"].as_array()?.len() == 2).then_some(())
        })
        .await;
        // Let every token expire (etcd checks each second), then ask for
        // something only a fresh token gets: the candidates, read on demand.
        tokio::time::sleep(Duration::from_secs(3)).await;
        for i in [a, b] {
            let status = run.nodes[i].status().await.expect("a status");
            let candidates = status["candidates"].as_array().map(Vec::len);
            assert_eq!(candidates, Some(2), "{status}");
        }
    }
    hand_over(&mut run, [a, b]).await;

    // Retries happened. (A v3 node whose password is refused fails when it
    // connects, which the request counters do not count; it has retried
    // through the seconds the tokens took to expire.)
    let counted = match api {
        "v2" => vec![wrong, intruder],
        _ => vec![intruder],
    };
    for i in counted {
        failed_requests(&run.nodes[i], 5.0).await;
    }
    for (node, phrase) in [(wrong, wrong_words[0]), (intruder, intruder_words[0])] {
        let node = &run.nodes[node];
        assert!(!node.is_leader().await);
        warned_once(node, phrase);
        journal_is_empty(node);
    }
    for node in &run.nodes {
        let status = node
            .get("/v1/status")
            .await
            .map(|a| a.body)
            .unwrap_or_default();
        let health = node
            .get("/healthz")
            .await
            .map(|a| a.body)
            .unwrap_or_default();
        for text in [node.output(), status, health] {
            for secret in ["electd-pw", "intruder-pw", "wrong-pw"] {
                assert!(
                    !text.contains(secret),
                    "{} shows {secret}:\n{text}",
                    node.name
                );
            }
        }
    }
    run.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_stay_out_of_logs_answers_help_argv_and_the_command() {
    const TOKEN: &str = "admin-token-5e1f";
    let secrets = ["electd-pw", "wrong-pw", TOKEN];
    let etcd = Etcd::single().await;
    // One etcd, both user stores: v2's and v3's are separate.
    for api in ["v2", "v3"] {
        add_users_and_roles(&etcd, api);
        enable_auth(&etcd, api);
    }
    let mut run = Run::with_etcd(etcd, "v3", 2, 0).await;
    let dir = run.dir.path().to_owned();
    let env = |password: &'static str| {
        vec![
            ("ELECTD_ETCD_PASSWORD", password),
            ("ELECTD_ADMIN_TOKEN", TOKEN),
        ]
    };
    let child_env = |name: &str| dir.join(format!("{name}.env"));
    let exec = |name: &str| {
        let script = format!("env > {}; exec sleep 60", child_env(name).display());
        NodeArgs::new()
            .etcd_user("electd")
            .exec(["sh".to_owned(), "-c".to_owned(), script])
    };
    let mut v3_env = env("electd-pw");
    // Every library's logs too, at their most talkative.
    v3_env.push(("RUST_LOG", "trace"));
    let v3 = run.spawn_with_env("v3", exec("v3"), &v3_env);
    let wrong = run.spawn_with_env(
        "wrong",
        NodeArgs::new().etcd_user("electd"),
        &env("wrong-pw"),
    );
    let v2_args = exec("v2").api("v2").ttl(2).etcd([run.etcd.endpoint(0)]);
    let mut v2_env = env("electd-pw");
    v2_env.push(("RUST_LOG", "trace"));
    let v2 = Node::spawn_with_env(common::electd(), &dir, "v2", &v2_args, &v2_env);
    for node in run.nodes.iter().chain([&v2]) {
        node.wait_serving().await;
    }
    run.sole_leader_among(&[v3], SLACK).await;
    eventually(SLACK, "the v2 node to lead", || async {
        v2.is_leader().await.then_some(())
    })
    .await;
    unhealthy(&run.nodes[wrong], &["etcd rejected the credentials"]).await;
    let children = eventually(
        SLACK,
        "both commands to write their environment",
        || async {
            ["v3", "v2"]
                .iter()
                .map(|name| {
                    std::fs::read_to_string(child_env(name))
                        .ok()
                        .filter(|env| env.contains("ELECTD_TERM="))
                })
                .collect::<Option<Vec<_>>>()
        },
    )
    .await;
    for env in &children {
        for var in ["ELECTD_ETCD_PASSWORD", "ELECTD_ADMIN_TOKEN"] {
            assert!(!env.contains(var), "the command got {var}:\n{env}");
        }
    }
    // The admin token in use: a hand-over on demand.
    let resign = run.nodes[v3]
        .request(
            reqwest::Method::POST,
            "/v1/resign",
            &[("Authorization", &format!("Bearer {TOKEN}"))],
        )
        .await
        .expect("an answer");
    assert_eq!(resign.status, 200, "{}", resign.body);

    let mut seen = children;
    for node in run.nodes.iter().chain([&v2]) {
        for path in ["/", "/v1/status", "/healthz", "/metrics", "/health/leader"] {
            seen.push(node.get(path).await.map(|a| a.body).unwrap_or_default());
        }
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", node.pid())).unwrap_or_default();
        seen.push(String::from_utf8_lossy(&cmdline).into_owned());
    }
    let help = std::process::Command::new(common::electd())
        .arg("--help")
        .envs(env("electd-pw"))
        .env("ELECTD_ETCD_USER", "electd")
        .output()
        .expect("electd --help runs");
    assert_eq!(help.status.code(), Some(0));
    seen.push(String::from_utf8_lossy(&help.stdout).into_owned());
    // Logs last: they now hold the resignation and the failures.
    for node in run.nodes.iter().chain([&v2]) {
        seen.push(node.output());
    }
    for text in &seen {
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} shows in:\n{text}");
        }
    }
    run.assert_safe();
}
