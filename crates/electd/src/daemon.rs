//! The daemon's wiring: settings → election + HTTP server + the leadership
//! loop, and the ordered shutdown with its bounds.
//!
//! The election runs on its own single-threaded runtime, on its own OS
//! thread, so that nothing the HTTP side does (a flood of requests, a slow
//! client) can delay a renewal. The two sides share only channels.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use elect::{Config, Election};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::settings::{BAD_CONFIG, Bind, Settings};
use crate::supervise::exec;
use crate::{app_check, http, lead, metrics, settings};

/// How long the resign (or abandon) at shutdown may take once the command
/// is stopped: one request to etcd. Past it the claim simply expires; the
/// library bounds each request by the time model too.
const RESIGN_WITHIN: Duration = Duration::from_secs(5);

/// How long each HTTP server may take to let requests in flight finish.
const HTTP_DRAIN_WITHIN: Duration = Duration::from_secs(2);

/// Runs electd itself until a signal (or its command asks it to exit):
/// its runtime, then [`run`]; the process's exit status.
pub fn run_electd(settings: Settings) -> ExitCode {
    // HTTP, signals and --exec supervision share one thread: a sidecar's
    // status answers need no more, and every thread costs memory (a stack,
    // a malloc arena). The election has a thread of its own.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("electd: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(settings)) {
        Ok(code) => ExitCode::from(code),
        Err(Failure::Config(message)) => {
            eprintln!("electd: {message}");
            ExitCode::from(BAD_CONFIG)
        }
        Err(Failure::Other(err)) => {
            eprintln!("electd: {err:#}");
            ExitCode::FAILURE
        }
    }
}

enum Failure {
    Config(String),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(err: anyhow::Error) -> Self {
        Failure::Other(err)
    }
}

/// Binds HTTP. Failing to is the user's configuration (a port in use, a
/// privileged port, an address not on this host): one line, exit status 2.
async fn bind(bind: Bind) -> Result<TcpListener, Failure> {
    let at = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|err| (err.kind(), format!("cannot listen on {addr}: {err}")))
    };
    let bound = match bind {
        Bind::Address(addr) => at(addr).await,
        Bind::AllAddresses(port) => {
            // Like Go's ":8080": IPv6 and IPv4 on one socket, where IPv6 exists.
            match at(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))).await {
                Err((kind, _)) if kind != std::io::ErrorKind::AddrInUse => {
                    at(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))).await
                }
                bound => bound,
            }
        }
    };
    bound.map_err(|(_, message)| Failure::Config(message))
}

fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// Where clients reach the admin endpoints: the advertise URL, or with
/// `--admin-listen` its address (an unspecified one, such as `0.0.0.0`,
/// on the advertised host).
fn admin_url(advertise: &str, admin: Option<&tokio::net::TcpListener>) -> String {
    let Some(addr) = admin.and_then(|l| l.local_addr().ok()) else {
        return advertise.to_owned();
    };
    if !addr.ip().is_unspecified() {
        return format!("http://{addr}");
    }
    let on_advertised_host = url::Url::parse(advertise).ok().and_then(|mut url| {
        url.set_port(Some(addr.port())).ok()?;
        url.set_path("");
        Some(url.as_str().trim_end_matches('/').to_owned())
    });
    on_advertised_host.unwrap_or_else(|| format!("http://127.0.0.1:{}", addr.port()))
}

async fn run(settings: Settings) -> Result<u8, Failure> {
    let listener = bind(settings.bind).await?;
    let admin_listener = match settings.admin_listen {
        Some(addr) => Some(bind(Bind::Address(addr)).await?),
        None => None,
    };
    let local = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let port = local.port();
    let advertise = settings
        .advertise
        .clone()
        .unwrap_or_else(|| match settings.bind {
            Bind::AllAddresses(_) => format!("http://127.0.0.1:{port}"),
            Bind::Address(_) => format!("http://{local}"),
        });
    let id = settings
        .id
        .clone()
        .unwrap_or_else(|| format!("{}-{port}", hostname()));

    // Built before the election starts, so that a checker that cannot be
    // built never leaves a claim behind.
    let health_checker = settings
        .health
        .clone()
        .map(app_check::HealthChecker::new)
        .transpose()
        .map_err(|e| Failure::Other(anyhow::anyhow!(e)))?;

    let metrics = Arc::new(metrics::Metrics::new(
        health_checker.is_some(),
        settings.election.shards().is_some(),
    ));
    let config = settings
        .election
        .clone()
        .with_identity(&id, &advertise)
        .map_err(|e| Failure::Config(settings::config_error(&e)))?
        .with_telemetry(metrics.clone());
    let election = Arc::new(start_election(config).await?);
    let config = election.config();
    tracing::info!(
        %id,
        %advertise,
        listen = %local,
        api = %config.api(),
        election = %config.election(),
        etcd = %config.endpoints().join(","),
        etcd_tls = config.uses_tls(),
        etcd_user = config.user().unwrap_or_default(),
        ttl_s = config.ttl().as_secs(),
        "electd started"
    );

    let (requests_tx, requests_rx) = tokio::sync::mpsc::channel(8);
    let state = http::AppState::new(
        election.clone(),
        metrics.clone(),
        settings.admin_token.as_ref().map(|t| Arc::from(t.expose())),
        (!settings.observe).then_some(requests_tx),
        health_checker.is_some(),
        &admin_url(&advertise, admin_listener.as_ref()),
    );
    let (stop_http, http_stopped) = watch::channel(false);
    let mut servers = vec![tokio::spawn(http::serve(
        listener,
        http::router(state.clone(), admin_listener.is_none()),
        http::Limits::default(),
        wait_for(http_stopped.clone()),
    ))];
    if let Some(admin) = admin_listener {
        servers.push(tokio::spawn(http::serve(
            admin,
            http::admin_router(state),
            http::Limits::default(),
            wait_for(http_stopped),
        )));
    }

    let (stop_leading, shutdown) = watch::channel(false);
    // Health-gated candidacy: the leadership loop turns each verdict into
    // the election's candidacy (and a leader's hand-over).
    let health_verdicts = health_checker.map(|checker| {
        let (verdicts, health_verdicts) = watch::channel(app_check::Verdict::initial());
        // On this thread, not the election's: a slow app must never be
        // able to delay a renewal. It stops when shutting down begins.
        tokio::spawn(checker.run(verdicts, stop_leading.subscribe()));
        // Ends with the checker (its sender goes).
        tokio::spawn(metrics.clone().follow_health(health_verdicts.clone()));
        health_verdicts
    });
    let mut leading = (!settings.observe).then(|| {
        let lead = lead::Lead {
            election: election.clone(),
            exec: settings.exec.clone(),
            cooldown: settings.resign_cooldown,
            metrics,
            health: health_verdicts,
        };
        tokio::spawn(lead.run(requests_rx, shutdown))
    });

    // Runs until a signal, or until the command asks electd to exit with it.
    let mut contained = true;
    let exit_code = tokio::select! {
        signal = wait_for_signal() => {
            signal?;
            tracing::info!(%id, "shutting down");
            None
        }
        code = join_leading(&mut leading, &mut contained) => Some(code),
    };
    // A second signal means "now": with --exec, kill what electd parents
    // first (a watchdog dying with electd kills its command, but orphans
    // electd adopted from a failed one would go to init, still running).
    let exec = settings.exec.is_some();
    tokio::spawn(async move {
        if wait_for_signal().await.is_ok() {
            if exec {
                exec::sweep_before_exit();
            }
            std::process::exit(130);
        }
    });
    // In order: stop the command, resign (both bounded in time, also when
    // etcd is unreachable), then stop serving HTTP.
    let _ = stop_leading.send(true);
    let bound = settings
        .exec
        .as_ref()
        .map_or(Duration::ZERO, |e| exec::stop_bound(e.grace))
        + RESIGN_WITHIN;
    // The task itself, not `join_leading`: that waits for an exit request,
    // and a shutdown makes none.
    if let Some(task) = leading.take() {
        contained = match tokio::time::timeout(bound, task).await {
            Ok(Ok(finish)) => finish.contained,
            _ => false,
        };
    }
    if contained {
        let _ = tokio::time::timeout(RESIGN_WITHIN, election.shutdown()).await;
    } else {
        // A command may still be alive: never hand over early.
        tracing::error!(%id, "leaving the claim to expire: the command is not confirmed gone");
        let _ = tokio::time::timeout(RESIGN_WITHIN, election.abandon()).await;
    }
    if settings.exec.is_some() && !exec::sweep_before_exit() {
        tracing::error!(%id, "exiting with descendants of the command that outlived SIGKILL");
    }
    let _ = stop_http.send(true);
    for server in servers {
        let _ = tokio::time::timeout(HTTP_DRAIN_WITHIN, server).await;
    }
    tracing::info!(%id, "stopped");
    Ok(exit_code.unwrap_or(0))
}

/// Waits for the leadership task's exit request; never resolves without
/// one. Notes whether its commands are confirmed gone once it ended.
async fn join_leading(
    task: &mut Option<tokio::task::JoinHandle<lead::Finish>>,
    contained: &mut bool,
) -> u8 {
    if let Some(handle) = task {
        let finish = handle.await.ok();
        *task = None;
        *contained = finish.as_ref().is_some_and(|f| f.contained);
        if let Some(code) = finish.and_then(|f| f.exit) {
            return code;
        }
    }
    std::future::pending().await
}

/// Runs the election on its own thread and runtime, which lives as long as
/// the process.
async fn start_election(config: Config) -> Result<Election, Failure> {
    let (started, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("electd-election".to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => {
                    let _ = started.send(Err(Failure::Other(
                        anyhow::Error::new(err).context("cannot start the election runtime"),
                    )));
                    return;
                }
            };
            let election = {
                let _entered = runtime.enter();
                Election::start(config)
            };
            match election {
                Ok(election) => {
                    let _ = started.send(Ok(election));
                    runtime.block_on(std::future::pending::<()>());
                }
                Err(err) => {
                    let message = match &err {
                        elect::Error::Config(err) => settings::config_error(err),
                        err => err.to_string(),
                    };
                    let _ = started.send(Err(Failure::Config(message)));
                }
            }
        })
        .context("cannot start the election thread")?;
    result
        .await
        .map_err(|_| Failure::Other(anyhow::anyhow!("the election thread stopped")))?
}

async fn wait_for(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    Ok(())
}
