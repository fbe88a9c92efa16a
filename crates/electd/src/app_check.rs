//! Health-gated candidacy, the checking half: GET `--health-url` every
//! `--health-interval` and turn the outcomes into a [`Verdict`] (healthy or
//! not, and why) that changes only after `--health-failures` failed checks
//! or `--health-successes` passed checks in a row.
//!
//! The URL checks a service that runs beside electd on every candidate (the
//! app it fronts), not the `--exec` command, which runs only on the leader:
//! a follower checks it to know whether it is fit to lead.
//!
//! Three layers, each tested alone:
//!
//! * [`Tally`] counts outcomes into verdicts: pure, no I/O, no clock;
//! * `schedule` runs a probe on the schedule, bounds each probe by the
//!   timeout and publishes and logs each change of verdict (tested under
//!   paused time with a scripted probe);
//! * [`HealthChecker`] is the HTTP probe, and puts the two together.
//!
//! A node starts unhealthy ("no check has succeeded yet"), like a readiness
//! probe: a node whose app never came up must never count as healthy.

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use url::Url;

/// `--health-url` and its settings, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthSpec {
    /// An `http://` URL: 2xx is a passed check, anything else a failed one.
    pub url: Url,
    /// From the start of one check to the start of the next.
    pub interval: Duration,
    /// How long one check may take; longer is a failed check.
    pub timeout: Duration,
    /// Failed checks in a row that make a healthy node unhealthy.
    pub failures: NonZeroU32,
    /// Passed checks in a row that make an unhealthy node healthy.
    pub successes: NonZeroU32,
}

/// Whether this node is fit to lead, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub healthy: bool,
    /// What the check that decided it saw: `GET http://… answered 500`,
    /// `… timed out after 1s`, `… failed: connection refused`; for a
    /// healthy verdict, `GET http://… answered 200`.
    pub reason: String,
}

impl Verdict {
    /// Before the first check has passed: unhealthy.
    pub fn initial() -> Verdict {
        Verdict {
            healthy: false,
            reason: "no check has succeeded yet".to_owned(),
        }
    }
}

/// One check: `Ok` with what it saw when it passed, `Err` with why it failed.
pub type Outcome = Result<String, String>;

/// Counts check outcomes into verdicts.
#[derive(Debug)]
pub struct Tally {
    failures: u32,
    successes: u32,
    verdict: Verdict,
    /// Outcomes in a row that disagree with the verdict.
    against: u32,
    /// Before any verdict from checks: failures in a row, which confirm
    /// the initial verdict with their reason.
    confirming: u32,
    /// Whether the verdict comes from checks, not from the start.
    settled: bool,
}

impl Tally {
    pub fn new(failures: NonZeroU32, successes: NonZeroU32) -> Tally {
        Tally {
            failures: failures.get(),
            successes: successes.get(),
            verdict: Verdict::initial(),
            against: 0,
            confirming: 0,
            settled: false,
        }
    }

    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }

    /// Counts one outcome; returns the verdict when this outcome changed it
    /// (or, for an app that never came up, confirmed the initial verdict
    /// with a reason, once).
    pub fn record(&mut self, outcome: Outcome) -> Option<Verdict> {
        let (passed, reason) = match outcome {
            Ok(seen) => (true, seen),
            Err(why) => (false, why),
        };
        if passed == self.verdict.healthy {
            // Only an unbroken run counts: one agreeing check starts it over.
            self.against = 0;
            if self.settled {
                return None;
            }
            self.confirming += 1;
            if self.confirming < self.failures {
                return None;
            }
            return Some(self.settle(passed, reason));
        }
        self.confirming = 0;
        self.against += 1;
        let needed = if passed {
            self.successes
        } else {
            self.failures
        };
        if self.against < needed {
            return None;
        }
        self.against = 0;
        Some(self.settle(passed, reason))
    }

    fn settle(&mut self, healthy: bool, reason: String) -> Verdict {
        self.settled = true;
        self.verdict = Verdict { healthy, reason };
        self.verdict.clone()
    }

    /// For the log line: how many checks in a row it took.
    fn run_length(&self) -> u32 {
        if self.verdict.healthy {
            self.successes
        } else {
            self.failures
        }
    }
}

/// The HTTP health checker of one node.
pub struct HealthChecker {
    spec: HealthSpec,
    client: reqwest::Client,
}

impl HealthChecker {
    pub fn new(spec: HealthSpec) -> Result<HealthChecker, String> {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(unused_tls()?)
            // The app is beside electd: never through $HTTP_PROXY.
            .no_proxy()
            // The check is of this URL; a redirect elsewhere is not a pass.
            .redirect(reqwest::redirect::Policy::none())
            // A fresh connection per check, like kubelet's probes: a pooled
            // connection would hide an app that no longer accepts any.
            .pool_max_idle_per_host(0)
            .user_agent(concat!(
                "electd/",
                env!("CARGO_PKG_VERSION"),
                " health check"
            ))
            .build()
            .map_err(|e| format!("cannot build the health check's HTTP client: {e}"))?;
        Ok(HealthChecker { spec, client })
    }

    /// Checks until `shutdown` turns true (or its sender goes away),
    /// publishing each change of verdict on `verdicts`, which starts at
    /// [`Verdict::initial`].
    pub async fn run(self, verdicts: watch::Sender<Verdict>, mut shutdown: watch::Receiver<bool>) {
        let HealthChecker { spec, client } = self;
        tracing::info!(
            url = %spec.url,
            interval = ?spec.interval,
            timeout = ?spec.timeout,
            failures = spec.failures,
            successes = spec.successes,
            "checking health; unhealthy until a check passes"
        );
        let what = format!("GET {}", spec.url);
        schedule(
            &spec,
            &what,
            || probe(&client, &spec.url),
            &verdicts,
            &mut shutdown,
        )
        .await;
    }
}

/// reqwest is built here without a crypto provider of its own (one
/// provider in the graph: ring, ARCHITECTURE.md), so even a client that
/// only ever speaks `http://` needs a TLS configuration. This one trusts
/// nothing, and is never used: the URL is `http://` and redirects are not
/// followed.
fn unused_tls() -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot configure TLS for the health check: {e}"))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
}

/// One GET: 2xx passes. Only the status line is awaited; dropping the
/// answer closes the connection (nothing is pooled).
async fn probe(client: &reqwest::Client, url: &Url) -> Outcome {
    match client.get(url.clone()).send().await {
        Ok(answer) => {
            let seen = format!("GET {url} answered {}", answer.status().as_u16());
            if answer.status().is_success() {
                Ok(seen)
            } else {
                Err(seen)
            }
        }
        Err(err) => Err(format!("GET {url} failed: {}", cause(&err))),
    }
}

/// The part of a transport error that says what happened: reqwest's own
/// message only names the URL, and the cause is deep in `source()`.
fn cause(err: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut innermost: &dyn std::error::Error = err;
    let mut source = err.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            return match io.kind() {
                ErrorKind::ConnectionRefused => "connection refused".to_owned(),
                ErrorKind::ConnectionReset => "connection reset".to_owned(),
                ErrorKind::ConnectionAborted => "connection aborted".to_owned(),
                _ => io.to_string(),
            };
        }
        innermost = cause;
        source = cause.source();
    }
    innermost.to_string()
}

/// Runs `probe` every `spec.interval` (the first at once), each bounded by
/// `spec.timeout`, until `shutdown`. A check starts `interval` after the
/// previous one started, or as soon as it ended when it took longer: a slow
/// check delays the next by at most its own timeout, and checks never
/// overlap (an app slow to answer gets one request at a time, not a pile).
async fn schedule<P, F>(
    spec: &HealthSpec,
    what: &str,
    mut probe: P,
    verdicts: &watch::Sender<Verdict>,
    shutdown: &mut watch::Receiver<bool>,
) where
    P: FnMut() -> F,
    F: Future<Output = Outcome>,
{
    let mut tally = Tally::new(spec.failures, spec.successes);
    verdicts.send_if_modified(|published| {
        let fresh = *published != *tally.verdict();
        if fresh {
            *published = tally.verdict().clone();
        }
        fresh
    });
    let mut started = Instant::now();
    loop {
        let outcome = tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => return,
            outcome = tokio::time::timeout(spec.timeout, probe()) => outcome.unwrap_or_else(
                |_| Err(format!("{what} timed out after {:?}", spec.timeout)),
            ),
        };
        if let Some(verdict) = tally.record(outcome) {
            let times = match tally.run_length() {
                1 => "once".to_owned(),
                n => format!("{n} times in a row"),
            };
            if verdict.healthy {
                tracing::info!(reason = %verdict.reason, "healthy: the health check passed {times}");
            } else {
                tracing::warn!(reason = %verdict.reason, "unhealthy: the health check failed {times}");
            }
            verdicts.send_replace(verdict);
        }
        let Some(next) = started.checked_add(spec.interval) else {
            // An interval past the end of time: that one check was all.
            let _ = shutdown.wait_for(|stop| *stop).await;
            return;
        };
        // From the slot, not from when the timer fired: no drift. From the
        // end of a check that overran: never two at once.
        let next = next.max(Instant::now());
        tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => return,
            () = tokio::time::sleep_until(next) => {}
        }
        started = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::VecDeque;
    use std::sync::Mutex;

    fn n(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    fn pass() -> Outcome {
        Ok("GET http://app/ answered 200".to_owned())
    }

    fn fail(why: &str) -> Outcome {
        Err(why.to_owned())
    }

    /// Feeds `outcomes`; returns, per outcome, the verdict it produced.
    fn tally(failures: u32, successes: u32, outcomes: Vec<Outcome>) -> Vec<Option<Verdict>> {
        let mut tally = Tally::new(n(failures), n(successes));
        outcomes.into_iter().map(|o| tally.record(o)).collect()
    }

    fn healthy() -> Option<Verdict> {
        Some(Verdict {
            healthy: true,
            reason: "GET http://app/ answered 200".to_owned(),
        })
    }

    fn unhealthy(why: &str) -> Option<Verdict> {
        Some(Verdict {
            healthy: false,
            reason: why.to_owned(),
        })
    }

    #[test]
    fn a_node_starts_unhealthy_until_a_check_passes() {
        let fresh = Tally::new(n(3), n(1));
        assert_eq!(fresh.verdict(), &Verdict::initial());
        assert!(!Verdict::initial().healthy);
        // Failures before the first pass confirm it once, with the reason.
        assert_eq!(
            tally(1, 1, vec![fail("a"), fail("b"), pass()]),
            [unhealthy("a"), None, healthy()]
        );
        assert_eq!(
            tally(2, 1, vec![fail("a"), fail("b"), fail("c"), pass()]),
            [None, unhealthy("b"), None, healthy()]
        );
    }

    #[test]
    fn thresholds_count_outcomes_in_a_row() {
        // --health-successes 2: a failure in between starts the count over.
        assert_eq!(
            tally(3, 2, vec![pass(), fail("x"), pass(), pass(), pass()]),
            [None, None, None, healthy(), None]
        );
        // --health-failures 3: the third failure in a row decides, with its reason.
        assert_eq!(
            tally(
                3,
                1,
                vec![
                    pass(),
                    fail("a"),
                    fail("b"),
                    pass(),
                    fail("c"),
                    fail("d"),
                    fail("e"),
                    fail("f"),
                ]
            ),
            [
                healthy(),
                None,
                None,
                None,
                None,
                None,
                unhealthy("e"),
                None
            ]
        );
    }

    #[test]
    fn each_change_is_reported_once() {
        let outcomes = vec![
            pass(),
            pass(),
            fail("a"),
            fail("b"),
            fail("c"),
            pass(),
            fail("d"),
            fail("e"),
        ];
        assert_eq!(
            tally(2, 1, outcomes),
            [
                healthy(),
                None,
                None,
                unhealthy("b"),
                None,
                healthy(),
                None,
                unhealthy("e")
            ]
        );
        // Thresholds of one: every flip of the outcome is a flip of the verdict.
        assert_eq!(
            tally(1, 1, vec![pass(), fail("a"), pass()]),
            [healthy(), unhealthy("a"), healthy()]
        );
    }

    /// How long a check takes, and its outcome (`None`: it never answers).
    type Step = (Duration, Option<Outcome>);

    /// A probe that plays a script: each step takes its time, then yields
    /// its outcome (`None`: never answers). Records when each check started.
    #[derive(Clone, Default)]
    struct Script {
        steps: Arc<Mutex<VecDeque<Step>>>,
        starts: Arc<Mutex<Vec<Duration>>>,
    }

    impl Script {
        fn new(steps: Vec<Step>) -> Script {
            Script {
                steps: Arc::new(Mutex::new(steps.into())),
                starts: Arc::default(),
            }
        }

        fn probe(&self, origin: Instant) -> impl Future<Output = Outcome> + use<> {
            self.starts.lock().unwrap().push(origin.elapsed());
            let step = self.steps.lock().unwrap().pop_front();
            async move {
                // Past its end, the script passes every check.
                let (takes, outcome) = step.unwrap_or((Duration::ZERO, Some(pass())));
                tokio::time::sleep(takes).await;
                match outcome {
                    Some(outcome) => outcome,
                    None => std::future::pending().await,
                }
            }
        }

        fn starts(&self) -> Vec<Duration> {
            self.starts.lock().unwrap().clone()
        }
    }

    fn spec(interval_ms: u64, timeout_ms: u64, failures: u32, successes: u32) -> HealthSpec {
        HealthSpec {
            url: Url::parse("http://app/").unwrap(),
            interval: Duration::from_millis(interval_ms),
            timeout: Duration::from_millis(timeout_ms),
            failures: n(failures),
            successes: n(successes),
        }
    }

    fn ms(ms: &[u64]) -> Vec<Duration> {
        ms.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    struct Running {
        origin: Instant,
        verdicts: watch::Receiver<Verdict>,
        stop: watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
    }

    fn start(spec: HealthSpec, script: &Script) -> Running {
        // Whatever the channel held, the checker publishes the initial verdict.
        let (tx, verdicts) = watch::channel(Verdict {
            healthy: true,
            reason: "stale".to_owned(),
        });
        let (stop, mut shutdown) = watch::channel(false);
        let script = script.clone();
        let origin = Instant::now();
        let task = tokio::spawn(async move {
            let spec = spec;
            schedule(
                &spec,
                "GET http://app/",
                || script.probe(origin),
                &tx,
                &mut shutdown,
            )
            .await;
        });
        Running {
            origin,
            verdicts,
            stop,
            task,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn checks_start_every_interval_and_the_first_at_once() {
        let quick = |o: Outcome| (Duration::from_millis(30), Some(o));
        let script = Script::new(vec![quick(pass()), quick(pass()), quick(pass())]);
        let running = start(spec(200, 100, 3, 1), &script);
        tokio::time::sleep(Duration::from_millis(450)).await;
        assert_eq!(script.starts(), ms(&[0, 200, 400]));
        let _ = running.stop.send(true);
        running.task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_that_never_answers_fails_at_its_timeout() {
        // Timeout under the interval: the next check keeps its slot.
        let script = Script::new(vec![
            (Duration::ZERO, Some(pass())),
            (Duration::ZERO, None),
            (Duration::from_millis(30), Some(pass())),
        ]);
        let mut running = start(spec(200, 100, 1, 1), &script);
        running.verdicts.changed().await.unwrap();
        assert!(running.verdicts.borrow_and_update().healthy);
        running.verdicts.changed().await.unwrap();
        assert_eq!(
            *running.verdicts.borrow_and_update(),
            Verdict {
                healthy: false,
                reason: "GET http://app/ timed out after 100ms".to_owned()
            }
        );
        // Failed at 200 + 100 ms.
        assert_eq!(running.origin.elapsed(), Duration::from_millis(300));
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(script.starts(), ms(&[0, 200, 400]));
        let _ = running.stop.send(true);
        running.task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_check_delays_the_next_by_at_most_its_timeout() {
        // Timeout over the interval: a check that uses it all is followed
        // by the next at once, never later, and checks never overlap.
        let script = Script::new(vec![
            (Duration::ZERO, None),
            (Duration::from_millis(250), Some(pass())),
            (Duration::ZERO, Some(pass())),
        ]);
        let running = start(spec(100, 300, 1, 1), &script);
        tokio::time::sleep(Duration::from_millis(600)).await;
        // 0: cut at 300; 300: answers at 550; 550: the next at once.
        assert_eq!(script.starts(), ms(&[0, 300, 550]));
        let _ = running.stop.send(true);
        running.task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn verdicts_are_published_only_when_they_change() {
        let at_once = |o: Outcome| (Duration::ZERO, Some(o));
        let script = Script::new(vec![
            at_once(fail("a")),
            at_once(pass()),
            at_once(pass()),
            at_once(fail("b")),
            at_once(fail("c")),
            at_once(pass()),
        ]);
        let mut running = start(spec(100, 50, 2, 1), &script);
        let mut seen = Vec::new();
        while tokio::time::timeout(Duration::from_secs(1), running.verdicts.changed())
            .await
            .is_ok()
        {
            seen.push(running.verdicts.borrow_and_update().clone());
        }
        let verdict = |healthy, reason: &str| Verdict {
            healthy,
            reason: reason.to_owned(),
        };
        assert_eq!(
            seen,
            [
                Verdict::initial(),
                verdict(true, "GET http://app/ answered 200"),
                verdict(false, "c"),
                verdict(true, "GET http://app/ answered 200"),
            ]
        );
        let _ = running.stop.send(true);
        running.task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_interrupts_a_check_in_flight() {
        let script = Script::new(vec![(Duration::ZERO, None)]);
        let running = start(spec(1000, 60_000, 3, 1), &script);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let asked = Instant::now();
        let _ = running.stop.send(true);
        running.task.await.unwrap();
        assert_eq!(asked.elapsed(), Duration::ZERO);
    }

    /// The HTTP probe against a real endpoint: what each failure is called.
    #[tokio::test]
    async fn the_probe_names_what_failed() {
        use harness::app::HealthSwitch;
        let switch = HealthSwitch::start(true);
        let url = Url::parse(&switch.url()).unwrap();
        let checker = HealthChecker::new(HealthSpec {
            url: url.clone(),
            ..spec(100, 100, 1, 1)
        })
        .unwrap();
        let check = || probe(&checker.client, &url);
        assert_eq!(check().await, Ok(format!("GET {url} answered 200")));
        switch.set_healthy(false);
        assert_eq!(check().await, Err(format!("GET {url} answered 500")));
        switch.refuse();
        assert_eq!(
            check().await,
            Err(format!("GET {url} failed: connection refused"))
        );
        // A fresh connection each time: back at once, nothing stale pooled.
        switch.set_healthy(true);
        assert_eq!(check().await, Ok(format!("GET {url} answered 200")));
        assert_eq!(switch.requests(), 3);
    }

    /// The whole checker on a real endpoint, in real time: a stalled app
    /// fails by the timeout.
    #[tokio::test]
    async fn a_stalled_app_fails_by_the_timeout() {
        use harness::app::HealthSwitch;
        let switch = HealthSwitch::start(true);
        let url = Url::parse(&switch.url()).unwrap();
        let checker = HealthChecker::new(HealthSpec {
            url: url.clone(),
            ..spec(50, 200, 1, 1)
        })
        .unwrap();
        let (tx, mut verdicts) = watch::channel(Verdict::initial());
        let (stop, shutdown) = watch::channel(false);
        let task = tokio::spawn(checker.run(tx, shutdown));
        verdicts.wait_for(|v| v.healthy).await.unwrap();
        switch.stall();
        let stalled = verdicts.wait_for(|v| !v.healthy).await.unwrap().clone();
        assert_eq!(stalled.reason, format!("GET {url} timed out after 200ms"));
        let _ = stop.send(true);
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn an_interval_too_long_for_the_clock_checks_once() {
        let script = Script::new(vec![]);
        let mut running = start(
            HealthSpec {
                interval: Duration::MAX,
                timeout: Duration::MAX,
                ..spec(0, 0, 1, 1)
            },
            &script,
        );
        running.verdicts.wait_for(|v| v.healthy).await.unwrap();
        tokio::time::sleep(Duration::from_secs(86_400 * 365)).await;
        assert_eq!(script.starts(), ms(&[0]));
        let _ = running.stop.send(true);
        running.task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_shutdown_sender_stops_the_checker() {
        let script = Script::new(vec![]);
        let running = start(spec(100, 50, 3, 1), &script);
        drop(running.stop);
        running.task.await.unwrap();
    }
}
