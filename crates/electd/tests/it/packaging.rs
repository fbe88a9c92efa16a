//! The image and the Debian package as users get them, run for real: two
//! containers of the image and a plain electd elect one leader against the
//! harness's etcd, hand over on `podman stop` and expire on `podman kill`,
//! and the image's electctl lists them; the package installs, upgrades,
//! runs its unit's command as its user against etcd, and purges, with
//! electctl, both man pages and both programs' completions.
//!
//! Ignored unless asked for: they need the image and the package built, and
//! the package test installs on this host, as root. `scripts/test.sh`
//! builds both (scripts/image.sh, scripts/deb.sh), names them in
//! ELECTD_TEST_IMAGE and ELECTD_TEST_DEB, and runs these too.

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use elect::journal::EndReason;
use harness::checker::{Apart, check_apart};
use harness::container::Podman;
use harness::etcd::Etcd;
use harness::node::{LEADER, Node, NodeArgs};
use harness::process::Owned;
use harness::{eventually, free_port, now_ns};
use rustix::process::Signal;

use crate::common::{SLACK, electd};

/// What a test needs from scripts/test.sh; missing, it says so and fails.
fn required(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: scripts/test.sh builds the image and the package and sets it")
    })
}

/// Short enough that the kill waits little, long enough that a hand-over
/// (milliseconds) and an expiry (most of it) are far apart.
const TTL: Duration = Duration::from_secs(6);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the image and the package: scripts/test.sh builds them"]
async fn the_image_hands_over_on_stop_and_expires_on_kill() {
    let podman = Podman::new(&required("ELECTD_TEST_IMAGE"));
    eprintln!("image: containers run with {}", podman.runtime());
    let etcd = Etcd::single().await;
    let dir = tempfile::Builder::new()
        .prefix("electd-image-")
        .tempdir()
        .expect("a temporary directory");
    // By host name, as etcd-0.etcd in Kubernetes: the image must resolve it.
    let endpoint = etcd.endpoints()[0].replace("127.0.0.1", "localhost");
    let args = NodeArgs::new().ttl(TTL.as_secs()).etcd([&endpoint]);
    // The image's /var/lib/electd is its user's.
    let stateful = args.clone().state_file("/var/lib/electd/state");

    let mut first = podman.run(dir.path(), "c1", &stateful);
    first.wait_serving().await;
    eventually(SLACK, "the first container to lead", || async {
        first.is_leader().await.then_some(())
    })
    .await;
    // The guardian is the container's PID 1, electd its child.
    let processes = first.processes().await;
    let guardian = processes.iter().find(|(pid, _)| *pid == 1);
    assert!(
        guardian
            .is_some_and(|(_, args)| args.starts_with("/usr/bin/electd ")
                && !args.contains("__electd-guarded")),
        "{processes:?}"
    );
    assert!(
        processes
            .iter()
            .any(|(pid, args)| *pid != 1 && args.contains("__electd-guarded")),
        "{processes:?}"
    );
    // The second container is preferred to the plain process as the next
    // leader, so that the kill below finds a container leading.
    let mut second = podman.run(dir.path(), "c2", &stateful.clone().priority(1));
    let plain = Node::spawn(electd(), dir.path(), "host", &args);
    second.wait_serving().await;
    plain.wait_serving().await;
    let named = format!("the leader is on port {}", first.port);
    eventually(SLACK, "one leader that the others name", || async {
        let second = second.answer().await?;
        let plain = plain.answer().await?;
        (first.is_leader().await && second.ends_with(&named) && plain.ends_with(&named))
            .then_some(())
    })
    .await;

    // The image's electctl, in a container of its own, lists the election.
    let version = podman.run_program("/usr/bin/electctl", &["--version"]);
    assert_eq!(
        String::from_utf8_lossy(&version.stdout),
        format!("electctl {}\n", env!("CARGO_PKG_VERSION")),
        "{version:?}"
    );
    let listed = podman.run_program(
        "/usr/bin/electctl",
        &["--node", &first.url(), "list", "-o", "json"],
    );
    assert!(listed.status.success(), "{listed:?}");
    let listing: serde_json::Value =
        serde_json::from_slice(&listed.stdout).expect("electctl's JSON");
    assert_eq!(listing["leader"]["id"], "c1", "{listing}");

    // `podman stop`: SIGTERM to the guardian, which passes it on; electd
    // resigns and exits 0, well within podman's grace.
    let stopped = now_ns();
    let stopping = Instant::now();
    first.stop(Duration::from_secs(30)).await;
    let status = first.wait_exit(SLACK).await;
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "podman stop took {:?}:\n{}",
        stopping.elapsed(),
        first.output()
    );
    eprintln!("image: podman stop returned after {:?}", stopping.elapsed());
    eventually(SLACK, "the second container to lead", || async {
        second.is_leader().await.then_some(())
    })
    .await;

    // `podman kill`: the whole container dies, as with its host, and its
    // lease runs out: the TTL.
    let killed = second.kill().await;
    let status = second.wait_exit(SLACK).await;
    assert_eq!(status.and_then(|s| s.code()), Some(128 + 9), "{status:?}");
    eventually(TTL + SLACK, "the plain process to lead", || async {
        plain.is_leader().await.then_some(())
    })
    .await;

    let report = check_apart(&[
        first.apart(),
        second.apart(),
        Apart {
            path: plain.journal.clone(),
            killed_at: None,
        },
    ])
    .expect("journals are well-formed");
    report.assert_safe();
    let leaders: Vec<&str> = report.intervals.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(leaders, ["c1", "c2", "host"], "{:#?}", report.intervals);
    let [first_term, second_term, plain_term] = &report.intervals[..] else {
        unreachable!("three leaderships");
    };
    assert_eq!(first_term.reason, Some(EndReason::Shutdown));
    let handed_over = Duration::from_nanos(second_term.start_ns.saturating_sub(stopped));
    let resigned = Duration::from_nanos(second_term.start_ns.saturating_sub(first_term.end_ns));
    eprintln!(
        "image: podman stop to the next leader: {handed_over:?} (its resign to the next \
         leader: {resigned:?})"
    );
    assert!(handed_over < TTL / 2, "{handed_over:?}: not a hand-over");
    let expired = Duration::from_nanos(plain_term.start_ns.saturating_sub(killed));
    eprintln!("image: podman kill to the next leader: {expired:?} (TTL {TTL:?})");
    assert!(expired >= TTL / 2, "{expired:?}: not an expiry");
}

/// The election the package test's instance campaigns in: electd@NAME.
const INSTANCE: &str = "packaging-test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the image and the package: scripts/test.sh builds them"]
async fn the_package_installs_runs_its_unit_and_purges() {
    let deb = PathBuf::from(required("ELECTD_TEST_DEB"));
    assert!(
        rustix::process::getuid().is_root(),
        "the package test installs the package on this host: run it as root"
    );
    let dir = tempfile::Builder::new()
        .prefix("electd-deb-")
        .tempdir()
        .expect("a temporary directory");
    // Never over a real installation: this test purges what it installs.
    let known = Command::new("dpkg-query")
        .args(["--show", "electd"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        !known,
        "the package electd is on this host already, and this test would purge it: \
         dpkg --purge electd first, or leave this test out (ELECTD_TEST_NO_PACKAGING=1)"
    );
    let _purged = PurgedOnPanic;

    // Installs over an older build, then over itself.
    let older = rebuilt_as(&deb, dir.path(), "0.1.0");
    run("dpkg", &["-i".as_ref(), older.as_os_str()]);
    run("dpkg", &["-i".as_ref(), deb.as_os_str()]);
    run("dpkg", &["-i".as_ref(), deb.as_os_str()]);
    for program in ["electd", "electctl"] {
        assert_eq!(
            run(&format!("/usr/bin/{program}"), &["--version".as_ref()]),
            format!("{program} {}\n", env!("CARGO_PKG_VERSION"))
        );
    }

    let lintian = Command::new("lintian")
        .arg(&deb)
        .output()
        .expect("lintian runs");
    let findings = String::from_utf8_lossy(&lintian.stdout);
    eprintln!(
        "lintian: {}",
        if findings.trim().is_empty() {
            "no errors, no warnings"
        } else {
            &findings
        }
    );
    assert!(
        !findings.lines().any(|l| l.starts_with("E: ")),
        "lintian finds errors:\n{findings}"
    );

    // The template, instantiated: no complaint at all.
    let unit = format!("electd@{INSTANCE}.service");
    let verify = Command::new("systemd-analyze")
        .args(["verify", &unit])
        .output()
        .expect("systemd-analyze runs");
    assert!(
        verify.status.success() && verify.stdout.is_empty() && verify.stderr.is_empty(),
        "systemd-analyze verify {unit}: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );

    let pages = [
        (
            "electd",
            &[
                "NAME",
                "ENDPOINTS",
                "ENVIRONMENT",
                "EXIT STATUS",
                "SIGNALS",
                "FILES",
            ][..],
        ),
        (
            "electctl",
            &["NAME", "COMMANDS", "EXIT STATUS", "ENVIRONMENT"][..],
        ),
    ];
    for (program, sections) in pages {
        let man = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(format!("/usr/share/man/man1/{program}.1.gz"))
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .output()
            .expect("man runs");
        let page = String::from_utf8_lossy(&man.stdout);
        assert!(
            man.status.success() && man.stderr.is_empty(),
            "man {program}: {}",
            String::from_utf8_lossy(&man.stderr)
        );
        for section in sections {
            assert!(
                page.lines().any(|l| l == *section),
                "no {section} in:\n{page}"
            );
        }
    }

    // Each completion script, from where its shell looks, completes a flag.
    for (program, typed, flag) in [
        ("electd", "--etcd-ca", "--etcd-cacert"),
        ("electctl", "--token-f", "--token-file"),
    ] {
        let completions = [
            (
                "bash",
                format!(
                    "source /usr/share/bash-completion/completions/{program}
                     COMP_WORDS=({program} {typed}) COMP_CWORD=1 COMP_LINE='{program} {typed}'
                     COMP_POINT=${{#COMP_LINE}}
                     _{program} {program} {typed} {program}
                     echo \"${{COMPREPLY[@]}}\""
                ),
            ),
            (
                "zsh",
                format!(
                    "autoload -Uz compinit && compinit -u -D
                     [[ ${{_comps[{program}]}} == _{program} ]] && autoload -Uz +X _{program} \
                     && functions _{program}"
                ),
            ),
            (
                "fish",
                format!("complete --do-complete='{program} {typed}'"),
            ),
        ];
        for (shell, script) in completions {
            let mut command = Command::new(shell);
            if shell == "zsh" {
                // No user start-up files; the system's fpath has vendor-completions.
                command.arg("-f");
            }
            let output = command
                .args(["-c", &script])
                .env("HOME", dir.path())
                .output()
                .expect("the shell runs");
            let out = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success() && out.contains(flag),
                "{shell} completion of {program}: {out}{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }

    the_units_command_leads(dir.path()).await;

    let files = run("dpkg", &["-L".as_ref(), "electd".as_ref()]);
    for shipped in [
        "/usr/bin/electctl",
        "/usr/share/man/man1/electctl.1.gz",
        "/usr/share/bash-completion/completions/electctl",
        "/usr/share/zsh/vendor-completions/_electctl",
        "/usr/share/fish/vendor_completions.d/electctl.fish",
    ] {
        assert!(
            files.lines().any(|f| f == shipped),
            "{shipped} not in:\n{files}"
        );
    }
    run("dpkg", &["--purge".as_ref(), "electd".as_ref()]);
    // Every file gone; a directory stays only while another package has it.
    for path in files.lines().filter(|&p| p != "/.").map(Path::new) {
        if std::fs::symlink_metadata(path).is_err() {
            continue;
        }
        // Followed: /lib is a link to a directory where /usr is merged.
        let is_dir = std::fs::metadata(path).is_ok_and(|m| m.is_dir());
        let shared = Command::new("dpkg")
            .arg("-S")
            .arg(path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            is_dir && shared,
            "{} is left behind by dpkg --purge",
            path.display()
        );
    }
    for dir in ["/etc/electd", "/var/lib/electd"] {
        assert!(
            !Path::new(dir).exists(),
            "{dir} is left behind by dpkg --purge"
        );
    }
}

/// Runs the installed unit's command as systemd would, systemd not being
/// PID 1 here: as its user, with its environment (the example env file as
/// the instance's, plus this test's etcd and port), in its state directory.
/// It must lead, in the election the instance names, keep its state file,
/// and stop with 0 on SIGTERM.
async fn the_units_command_leads(dir: &Path) {
    let unit = Unit::read(Path::new("/lib/systemd/system/electd@.service"), INSTANCE);
    let etcd = Etcd::single().await;
    let port = free_port();
    let example = std::fs::read_to_string("/etc/electd/example.env").expect("the example env file");
    let env_file = format!("/etc/electd/{INSTANCE}.env");
    assert_eq!(unit.get("EnvironmentFile"), [env_file.as_str()]);
    std::fs::write(
        &env_file,
        format!(
            "{example}\nELECTD_ETCD={}\nELECTD_PORT={port}\n",
            etcd.endpoints_arg()
        ),
    )
    .expect("the instance's env file");

    let mut environment = vec![(
        "PATH".to_owned(),
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin".to_owned(),
    )];
    for setting in unit.get("Environment") {
        environment.push(assignment(setting));
    }
    for line in std::fs::read_to_string(&env_file)
        .expect("the env file")
        .lines()
        .map(str::trim)
    {
        if !line.is_empty() && !line.starts_with('#') && !line.starts_with(';') {
            environment.push(assignment(line));
        }
    }
    let environment: HashMap<String, String> = environment.into_iter().collect();

    let [user] = unit.get("User")[..] else {
        panic!("the unit names no single User=");
    };
    let [group] = unit.get("Group")[..] else {
        panic!("the unit names no single Group=");
    };
    let uid: u32 = run("id", &["-u".as_ref(), user.as_ref()])
        .trim()
        .parse()
        .expect("the package's user");
    let [state] = unit.get("StateDirectory")[..] else {
        panic!("the unit names no single StateDirectory=");
    };
    let state = Path::new("/var/lib").join(state);
    std::fs::create_dir_all(&state).expect("the state directory");
    run(
        "chown",
        &[format!("{user}:{group}").as_ref(), state.as_os_str()],
    );
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o750))
        .expect("the state directory's mode");

    let [exec_start] = unit.get("ExecStart")[..] else {
        panic!("the unit has no single ExecStart=");
    };
    let log = dir.join("unit.log");
    let out = std::fs::File::create(&log).expect("a log file");
    let _shown = ShownOnPanic(log.clone());
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid", user, "--regid", group, "--init-groups", "--"])
        .args(exec_start.split_whitespace())
        .env_clear()
        .envs(&environment)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("a log handle"))
        .stderr(out);
    let mut service = Owned::new(command.spawn().expect("setpriv starts"));

    let http = harness::http()
        .timeout(Duration::from_secs(3))
        .build()
        .expect("an HTTP client");
    let url = format!("http://127.0.0.1:{port}");
    let output = || std::fs::read_to_string(&log).unwrap_or_default();
    let status: serde_json::Value = eventually(SLACK, "the unit's command to lead", || {
        if let Some(status) = service.try_exit() {
            panic!("the unit's command exited ({status}):\n{}", output());
        }
        async {
            let body = http.get(&url).send().await.ok()?.text().await.ok()?;
            (body == LEADER).then_some(())?;
            http.get(format!("{url}/v1/status"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()
        }
    })
    .await;
    assert_eq!(status["election"], INSTANCE, "{status}\n{}", output());
    let state_file = state.join("state");
    assert_eq!(
        environment.get("ELECTD_STATE_FILE").map(PathBuf::from),
        Some(state_file.clone())
    );
    // Written once the term is known, beside the election's thread.
    let meta = eventually(SLACK, "the state file", || async {
        std::fs::metadata(&state_file).ok()
    })
    .await;
    assert_eq!(meta.uid(), uid, "the state file is not the package user's");

    service.signal(Signal::TERM);
    let status = service.wait_exit(SLACK).await;
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", output());
    std::fs::remove_file(&env_file).expect("the instance's env file goes");
}

/// The package purged, and the instance's settings removed, when the test
/// fails half-way: nothing of a failed run may stay (a state file's term
/// floor, from another etcd, would keep the next run from leading).
struct PurgedOnPanic;

impl Drop for PurgedOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = std::fs::remove_file(format!("/etc/electd/{INSTANCE}.env"));
            let _ = Command::new("dpkg")
                .args(["--purge", "electd"])
                .stdout(Stdio::null())
                .status();
        }
    }
}

/// A log that a failing test prints, as its temporary directory goes.
struct ShownOnPanic(PathBuf);

impl Drop for ShownOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.0).unwrap_or_default();
            eprintln!("{}:\n{log}", self.0.display());
        }
    }
}

/// A unit file's settings, its specifiers replaced for one instance.
struct Unit {
    settings: Vec<(String, String)>,
}

impl Unit {
    /// Reads `path` as the unit of instance `instance`; only what this
    /// unit uses is understood (no continuation lines, no quoting, the
    /// specifiers %i, %S and %%), and anything else fails loudly.
    fn read(path: &Path, instance: &str) -> Unit {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut settings = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with(['#', ';', '[']) {
                continue;
            }
            assert!(
                !line.ends_with('\\') && !line.contains(['"', '\'']),
                "this test does not read {line:?}"
            );
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("not a setting: {line:?}"));
            let value = value
                .replace("%%", "\u{0}")
                .replace("%i", instance)
                .replace("%S", "/var/lib");
            assert!(!value.contains('%'), "an unknown specifier in {line:?}");
            settings.push((key.trim().to_owned(), value.replace('\u{0}', "%")));
        }
        Unit { settings }
    }

    /// Every value of `key`, in order.
    fn get(&self, key: &str) -> Vec<&str> {
        self.settings
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// `NAME=value`, as Environment= and environment files give it.
fn assignment(setting: &str) -> (String, String) {
    let (name, value) = setting
        .split_once('=')
        .unwrap_or_else(|| panic!("not an assignment: {setting:?}"));
    assert!(
        !value.starts_with(['"', '\'']),
        "this test does not read quoted values: {setting:?}"
    );
    (name.trim().to_owned(), value.trim().to_owned())
}

/// Runs `program`, which must succeed; its standard output.
fn run(program: &str, args: &[&std::ffi::OsStr]) -> String {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `deb` rebuilt in `dir` with another version: an older build to upgrade from.
fn rebuilt_as(deb: &Path, dir: &Path, version: &str) -> PathBuf {
    let tree = dir.join("older");
    run(
        "dpkg-deb",
        &["-R".as_ref(), deb.as_os_str(), tree.as_os_str()],
    );
    let control = tree.join("DEBIAN/control");
    let text = std::fs::read_to_string(&control).expect("the package's control file");
    let text: String = text
        .lines()
        .map(|line| match line.strip_prefix("Version: ") {
            Some(_) => format!("Version: {version}\n"),
            None => format!("{line}\n"),
        })
        .collect();
    std::fs::write(&control, text).expect("the control file");
    let older = dir.join(format!("electd_{version}.deb"));
    run(
        "dpkg-deb",
        &[
            "--root-owner-group".as_ref(),
            "--build".as_ref(),
            tree.as_os_str(),
            older.as_os_str(),
        ],
    );
    older
}
