//! electctl against real etcd and real electd processes (started through
//! the harness): every command, each refusal's sentence and exit status,
//! and the admin endpoints found wherever `--admin-listen` put them.

mod cluster;
mod shards;

use std::process::Stdio;
use std::time::Duration;

use harness::eventually;
use harness::node::{Node, NodeArgs};
use harness::process::Owned;
use serde_json::Value;

use crate::cluster::{Cluster, SLACK, TOKEN, base_command, electctl};

fn names(listing: &Value) -> Vec<String> {
    let mut ids: Vec<String> = listing["candidates"]
        .as_array()
        .expect("candidates")
        .iter()
        .map(|c| c["id"].as_str().expect("an id").to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_switchover_name_the_leader_and_refusals_say_what_to_do() {
    let cluster = Cluster::start("v3", &["n0", "n1", "n2"], false).await;
    let leader = cluster.settled().await;
    let follower = ["n0", "n1", "n2"]
        .into_iter()
        .find(|&n| n != leader)
        .expect("a follower");

    // The table: the leader in the header, every candidate in a row.
    let list = cluster.ctl(follower, &["list"]).await;
    assert_eq!(list.status, Some(0), "{list:?}");
    assert!(
        list.stdout.contains(&format!("Leader    {leader}  term ")),
        "{list:?}"
    );
    for name in ["n0", "n1", "n2"] {
        let row = list
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name}  ")));
        let row = row.unwrap_or_else(|| panic!("no row for {name}: {list:?}"));
        let role = if name == leader {
            "leader"
        } else {
            "candidate"
        };
        assert!(row.contains(role), "{row}");
    }
    // The JSON: the same, for programs; -o after the command too.
    let json = cluster.ctl(follower, &["list", "-o", "json"]).await.json();
    assert_eq!(json["leader"]["id"], leader, "{json}");
    assert_eq!(names(&json), ["n0", "n1", "n2"], "{json}");

    // Refusals: each a sentence, exit 1, and nothing changed.
    cluster
        .ctl(follower, &["switchover", "--to", "nobody"])
        .await
        .refused(1, "no live candidate is called nobody");
    cluster
        .ctl(follower, &["switchover", "--to", &leader])
        .await
        .refused(1, &format!("{leader} leads already"));
    let wrong = cluster.dir.path().join("wrong");
    let url = cluster.node(follower).url();
    electctl(&[
        "--node".into(),
        url.clone(),
        "--token-file".into(),
        wrong.display().to_string(),
        "switchover".into(),
    ])
    .await
    .refused(1, "refused the admin token");
    electctl(&["--node".into(), url, "switchover".into()])
        .await
        .refused(1, "needs the admin token");
    let drained = cluster.last_in_line(follower).await;
    let drain = cluster.ctl(follower, &["drain", &drained]).await;
    assert_eq!(drain.status, Some(0), "{drain:?}");
    assert!(drain.stdout.starts_with(&format!("{drained} is drained")));
    // The leader, which judges a hand-over, has seen it.
    cluster.lists_drained(&leader, &drained, true).await;
    cluster
        .ctl(follower, &["switchover", "--to", &drained])
        .await
        .refused(1, &format!("run electctl undrain {drained} first"));
    assert_eq!(cluster.settled().await, leader, "a refusal changed nothing");
    let undrain = cluster.ctl(follower, &["undrain", &drained]).await;
    assert_eq!(undrain.status, Some(0), "{undrain:?}");

    // A switchover to the last in line: it leads, and electctl says so.
    cluster.lists_drained(&leader, &drained, false).await;
    let last = cluster.last_in_line(&leader).await;
    let switched = cluster.ctl(follower, &["switchover", "--to", &last]).await;
    assert_eq!(switched.status, Some(0), "{switched:?}");
    assert!(
        switched
            .stdout
            .starts_with(&format!("{last} leads now (term ")),
        "{switched:?}"
    );
    assert!(cluster.node(&last).is_leader().await, "{last} leads");
    eprintln!("switchover --to: {}", switched.stdout.trim());

    // A plain switchover, in JSON: whoever is next, with how long it took.
    let plain = cluster.ctl(follower, &["-o", "json", "switchover"]).await;
    assert_eq!(plain.status, Some(0), "{plain:?}");
    let plain = plain.json();
    assert_eq!(plain["previous"]["id"], last.as_str(), "{plain}");
    assert_ne!(plain["leader"]["id"], last.as_str(), "{plain}");
    assert!(plain["took_ms"].as_f64().is_some(), "{plain}");
    eprintln!("switchover: {plain}");

    // Nobody there: exit 3.
    let dead = format!("http://127.0.0.1:{}", harness::free_port());
    electctl(&["--node".into(), dead, "list".into()])
        .await
        .refused(3, "no answer from");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_reaches_a_node_on_its_admin_port_and_watchers_see_each_change() {
    let cluster = Cluster::start("v3", &["a", "b", "c"], true).await;
    let leader = cluster.settled().await;
    let other = ["a", "b", "c"]
        .into_iter()
        .find(|&n| n != leader)
        .expect("a follower");
    let watch = cluster.follow("watch", other, &["watch"]);
    let listing = cluster.follow("list", other, &["list", "-w"]);
    eventually(SLACK, "the first watch line and the first list", || async {
        (watch.output().lines().count() == 1 && listing.output().contains("DRAINED")).then_some(())
    })
    .await;
    let first = watch.output();
    assert!(
        first.contains(&format!(" {leader} term ")),
        "the leader at connect: {first}"
    );

    // The leader, drained through electctl asking another node: its admin
    // endpoints are on another port, which its status names.
    let drain = cluster.ctl(other, &["drain", &leader]).await;
    assert_eq!(drain.status, Some(0), "{drain:?}");
    let status = cluster.node(&leader).status().await.expect("a status");
    assert_eq!(status["drained"], true, "{status}");
    let next = eventually(SLACK, "another leader", || async {
        let status = cluster.node(other).status().await?;
        let id = status["leader"]["id"].as_str()?.to_owned();
        (id != leader).then_some(id)
    })
    .await;

    // `watch`: one more line, naming the new leader (maybe after a line
    // saying nobody leads for a moment).
    eventually(SLACK, "a watch line for the new leader", || async {
        let text = watch.output();
        let last = text.lines().last()?;
        last.contains(&format!(" {next} term ")).then_some(())
    })
    .await;
    let lines = watch.output();
    for line in lines.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 5, "{line}");
        assert_eq!(fields[2], "term", "{line}");
    }
    // `list -w`: a new list, the leader drained, a blank line before it.
    eventually(SLACK, "a list showing the drain", || async {
        let text = listing.output();
        let newest = text.rsplit("\n\n").next()?;
        newest
            .lines()
            .any(|l| l.starts_with(&format!("{leader} ")) && l.contains("ineligible"))
            .then_some(())
    })
    .await;

    // Undrain, from the node itself (no ID: the node --node names).
    let undrain = cluster.ctl(&leader, &["undrain"]).await;
    assert_eq!(undrain.status, Some(0), "{undrain:?}");
    assert!(
        undrain
            .stdout
            .starts_with(&format!("{leader} is a candidate again"))
    );
    let status = cluster.node(&leader).status().await.expect("a status");
    assert_eq!(status["drained"], false, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_v2_a_named_hand_over_needs_v3_and_an_observer_cannot_drain() {
    let mut cluster = Cluster::start("v2", &["p", "q"], false).await;
    cluster
        .ctl("p", &["switchover", "--to", "q"])
        .await
        .refused(1, "needs --api v3");
    let observer = Node::spawn_with_env(
        &harness::workspace_binary("electd", "electd"),
        cluster.dir.path(),
        "o",
        &NodeArgs::new()
            .api("v2")
            .ttl(2)
            .etcd(cluster.etcd.endpoints())
            .observe(),
        &[("ELECTD_ADMIN_TOKEN", TOKEN)],
    );
    observer.wait_serving().await;
    cluster.nodes.push(observer);
    cluster
        .ctl("o", &["drain"])
        .await
        .refused(1, "o is an observer");
}

/// The election's history from every node, after hand-overs of three
/// kinds. Needs `/v1/history` (issue 21's second part).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_lists_each_hand_over_the_same_from_every_node() {
    let cluster = Cluster::start("v3", &["h0", "h1", "h2"], false).await;
    let first = cluster.settled().await;
    let to = cluster.last_in_line(&first).await;
    let named = cluster.ctl(&first, &["switchover", "--to", &to]).await;
    assert_eq!(named.status, Some(0), "{named:?}");
    let plain = cluster.ctl(&first, &["switchover"]).await;
    assert_eq!(plain.status, Some(0), "{plain:?}");
    let third = cluster.settled().await;
    let drain = cluster.ctl(&first, &["drain", &third]).await;
    assert_eq!(drain.status, Some(0), "{drain:?}");
    cluster.settled().await;

    let mut answers = Vec::new();
    for node in ["h0", "h1", "h2"] {
        let history = cluster.ctl(node, &["history", "-o", "json"]).await;
        assert_eq!(history.status, Some(0), "{history:?}");
        answers.push(history.json());
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:#?}");
    let entries = answers[0]["history"].as_array().expect("entries");
    let reasons: Vec<&str> = entries
        .iter()
        .skip(1)
        .take(3)
        .map(|e| e["reason"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(reasons, ["drain", "resign", "transfer"], "{entries:#?}");
    assert_eq!(entries[3]["to"], to.as_str(), "{entries:#?}");
    let table = cluster.ctl("h1", &["history"]).await;
    assert_eq!(table.status, Some(0), "{table:?}");
    assert!(table.stdout.starts_with("TERM  ID"), "{table:?}");
    let listed = cluster.ctl("h1", &["list"]).await;
    assert!(listed.stdout.contains("leading for ") && !listed.stdout.contains("leading for —"));
}

/// Needs `/v1/history` (issue 21's second part), which answers 501
/// `needs_v3` on v2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_v2_the_history_needs_v3() {
    let cluster = Cluster::start("v2", &["p"], false).await;
    cluster
        .ctl("p", &["history"])
        .await
        .refused(1, "kept in etcd by the v3 API only");
}

/// A loopback server that takes connections and treats each as `serve`
/// says, on a thread that ends with the test process.
fn fake_node(serve: fn(std::net::TcpStream)) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream));
        }
    });
    url
}

/// A node that accepts the connection and never answers: a stream's
/// headers are bounded by `--timeout`, as every other request is (not by
/// the 45 s a silent stream is given once open).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_never_answers_a_stream_is_no_answer_within_the_timeout() {
    let silent = fake_node(|stream| {
        std::thread::sleep(Duration::from_secs(120));
        drop(stream);
    });
    for command in [&["watch"][..], &["list", "-w"]] {
        let mut args = vec!["--timeout".to_owned(), "1".to_owned(), "--node".to_owned()];
        args.push(silent.clone());
        args.extend(command.iter().map(|a| (*a).to_owned()));
        let started = std::time::Instant::now();
        electctl(&args).await.refused(3, "no answer in time");
        assert!(
            started.elapsed() < SLACK,
            "{command:?}: {:?}",
            started.elapsed()
        );
    }
}

/// A node that answers a stream with a page (a proxy's, another server's):
/// electctl says it cannot read it and exits 1, rather than reconnecting
/// to it without end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_is_no_event_stream_is_refused_not_reconnected_forever() {
    let page = fake_node(|mut stream| {
        use std::io::{Read as _, Write as _};
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request);
        let body = "<html><body>Bad Gateway</body></html>";
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        );
    });
    for command in [&["watch"][..], &["list", "-w"]] {
        let mut args = vec!["--timeout".to_owned(), "1".to_owned(), "--node".to_owned()];
        args.push(page.clone());
        args.extend(command.iter().map(|a| (*a).to_owned()));
        let mut run = base_command();
        run.args(&args).stdout(Stdio::null()).stderr(Stdio::null());
        let mut process = Owned::new(run.spawn().expect("electctl runs"));
        let status = process.wait_exit(SLACK).await;
        assert_eq!(status.and_then(|s| s.code()), Some(1), "{command:?}");
    }
}

/// An error said to a reader of standard error that went away
/// (`electctl history 2>&1 | head -0`) still exits with the error's status,
/// not with a panic on the broken pipe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_to_a_closed_stderr_keeps_its_exit_status() {
    let dead = format!("http://127.0.0.1:{}", harness::free_port());
    let mut run = base_command();
    run.args(["--node", &dead, "history"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = run.spawn().expect("electctl runs");
    drop(child.stderr.take());
    let status = Owned::new(child).wait_exit(SLACK).await;
    assert_eq!(status.and_then(|s| s.code()), Some(3), "{status:?}");
}
