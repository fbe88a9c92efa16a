//! A switchable health endpoint, for electd's `--health-url`: on a free
//! loopback port, `GET /` answers 200 while healthy and 500 while not; it
//! can also hold requests unanswered (past any timeout) or refuse
//! connections, switched from the test at any moment, and it counts the
//! requests it got.
//!
//! A minimal HTTP/1.1 server on tokio's TCP rather than hyper: it must
//! misbehave on command (hold a request without answering, stop listening),
//! which a correct server makes awkward, and it needs no more of HTTP than
//! one request head and one fixed answer. It answers one request per
//! connection (`connection: close`), so each check is one connection and
//! one count.
//!
//! It runs on a thread and runtime of its own, so the switches are plain
//! methods whose effect is in place when they return (no test races the
//! change it asked for: after [`HealthSwitch::refuse`] no connection is
//! accepted), it works beside a test runtime whose time is paused, and
//! dropping the guard stops it and closes every connection from any context.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::eventually;

/// What the endpoint does with the next request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `GET /` answers `200 ok`.
    Healthy,
    /// `GET /` answers `500 unhealthy`.
    Unhealthy,
    /// Requests are read (and counted) but not answered; each is held open
    /// until the mode changes, then closed without an answer.
    Stall,
    /// Nothing listens on the port: connections are refused. Connections
    /// already open are reset when they send a request.
    Refuse,
}

/// The endpoint, stopped on drop.
pub struct HealthSwitch {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
    /// `None` once dropping: the server thread ends when this closes.
    commands: Option<mpsc::UnboundedSender<Switch>>,
    thread: Option<JoinHandle<()>>,
}

/// A change of mode, and where to say it is in effect (or why not).
struct Switch {
    mode: Mode,
    done: std::sync::mpsc::SyncSender<Result<(), String>>,
}

/// The longest request head read; a health check sends a few hundred bytes.
const MAX_HEAD: usize = 16 * 1024;

impl HealthSwitch {
    /// Listens on a free loopback port, healthy or not.
    pub fn start(healthy: bool) -> HealthSwitch {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("the loopback interface accepts binds");
        let addr = listener.local_addr().expect("a bound address");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let mode = if healthy {
            Mode::Healthy
        } else {
            Mode::Unhealthy
        };
        let requests = Arc::new(AtomicU64::new(0));
        let (commands, switches) = mpsc::unbounded_channel();
        let counted = requests.clone();
        let thread = std::thread::Builder::new()
            .name("health-switch".to_owned())
            .spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                    .expect("a runtime for the health endpoint")
                    .block_on(serve(listener, mode, switches, counted));
            })
            .expect("a thread for the health endpoint");
        HealthSwitch {
            addr,
            requests,
            commands: Some(commands),
            thread: Some(thread),
        }
    }

    /// Where it listens (also while refusing).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>/`, for `--health-url`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Switches to `mode`; in effect when this returns.
    ///
    /// Blocks for as long as the endpoint's thread takes to switch (it does
    /// nothing else that takes time), so it is fine to call from async code.
    pub fn set(&self, mode: Mode) {
        let (done, switched) = std::sync::mpsc::sync_channel(1);
        self.commands
            .as_ref()
            .expect("a running endpoint")
            .send(Switch { mode, done })
            .expect("the health endpoint is running");
        match switched.recv() {
            Ok(Ok(())) => {}
            Ok(Err(why)) => panic!("the health endpoint cannot switch to {mode:?}: {why}"),
            Err(_) => panic!("the health endpoint stopped"),
        }
    }

    /// 200 (`true`) or 500 (`false`).
    pub fn set_healthy(&self, healthy: bool) {
        self.set(if healthy {
            Mode::Healthy
        } else {
            Mode::Unhealthy
        });
    }

    /// Holds every request unanswered until the mode changes.
    pub fn stall(&self) {
        self.set(Mode::Stall);
    }

    /// Stops listening: connections are refused until the mode changes.
    pub fn refuse(&self) {
        self.set(Mode::Refuse);
    }

    /// Requests received so far (complete request heads, any path, in any
    /// mode but [`Mode::Refuse`], which receives none).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` requests have come in all told; returns the count.
    pub async fn wait_for_requests(&self, n: u64, limit: Duration) -> u64 {
        let what = format!("{n} requests to the health endpoint");
        eventually(limit, &what, || async {
            let got = self.requests();
            (got >= n).then_some(got)
        })
        .await
    }
}

impl Drop for HealthSwitch {
    fn drop(&mut self) {
        // Closing the channel ends the server; its runtime, dropped with
        // it, closes every connection.
        self.commands = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    mode: Mode,
    mut switches: mpsc::UnboundedReceiver<Switch>,
    requests: Arc<AtomicU64>,
) {
    let addr = listener.local_addr().expect("a bound address");
    let (modes, watching) = watch::channel(mode);
    let mut listener = Some(TcpListener::from_std(listener).expect("a tokio listener"));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            switch = switches.recv() => {
                let Some(Switch { mode, done }) = switch else {
                    return;
                };
                let listening = match (mode, listener.take()) {
                    // Dropping the listener is what makes the kernel refuse.
                    (Mode::Refuse, _) => Ok(None),
                    (_, Some(open)) => Ok(Some(open)),
                    // The same port again (tokio sets SO_REUSEADDR, so the
                    // connections it closed, in TIME_WAIT, do not stop it).
                    (_, None) => TcpListener::bind(addr).await.map(Some).map_err(|e| {
                        format!("cannot listen on {addr} again: {e}")
                    }),
                };
                let switched = listening.map(|open| {
                    listener = open;
                    modes.send_replace(mode);
                });
                let _ = done.send(switched);
            }
            accepted = accept(listener.as_ref()) => {
                // A failed accept (out of descriptors, say) leaves the client
                // to time out, as a real overloaded app would.
                if let Ok(stream) = accepted {
                    connections.spawn(answer(stream, watching.clone(), requests.clone()));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn accept(listener: Option<&TcpListener>) -> std::io::Result<TcpStream> {
    match listener {
        Some(listener) => listener.accept().await.map(|(stream, _)| stream),
        None => std::future::pending().await,
    }
}

async fn answer(mut stream: TcpStream, mut modes: watch::Receiver<Mode>, requests: Arc<AtomicU64>) {
    let Some(head) = read_head(&mut stream).await else {
        return;
    };
    requests.fetch_add(1, Ordering::SeqCst);
    let mode = *modes.borrow_and_update();
    let request_line = head.lines().next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next(), parts.next().unwrap_or_default());
    let path = target.split('?').next().unwrap_or_default();
    let checked = method == Some("GET") && path == "/";
    let (status, body) = match mode {
        Mode::Refuse => {
            // Closed with RST, as a connection to a process that just died.
            let _ = stream.set_zero_linger();
            return;
        }
        Mode::Stall => {
            let _ = modes.wait_for(|mode| *mode != Mode::Stall).await;
            return;
        }
        _ if !checked => ("404 Not Found", "not found"),
        Mode::Healthy => ("200 OK", "ok"),
        Mode::Unhealthy => ("500 Internal Server Error", "unhealthy"),
    };
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Reads up to the end of the request head; `None` if the client closes
/// first or sends too much.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut buf).await.ok()?;
        if read == 0 || head.len() + read > MAX_HEAD {
            return None;
        }
        head.extend_from_slice(&buf[..read]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> reqwest::Client {
        crate::http()
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap()
    }

    async fn get(client: &reqwest::Client, url: &str) -> Result<(u16, String), reqwest::Error> {
        let answer = client.get(url).send().await?;
        let status = answer.status().as_u16();
        Ok((status, answer.text().await?))
    }

    fn refused(addr: SocketAddr) -> bool {
        matches!(
            std::net::TcpStream::connect(addr),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
        )
    }

    #[tokio::test]
    async fn answers_by_the_switch_and_counts() {
        let switch = HealthSwitch::start(true);
        let http = client();
        assert_eq!(get(&http, &switch.url()).await.unwrap(), (200, "ok".into()));
        switch.set_healthy(false);
        assert_eq!(
            get(&http, &switch.url()).await.unwrap(),
            (500, "unhealthy".into())
        );
        let other = format!("{}elsewhere", switch.url());
        assert_eq!(get(&http, &other).await.unwrap().0, 404);
        switch.set_healthy(true);
        let with_query = format!("{}?probe=1", switch.url());
        assert_eq!(get(&http, &with_query).await.unwrap().0, 200);
        assert_eq!(switch.requests(), 4);
        assert_eq!(switch.wait_for_requests(4, Duration::ZERO).await, 4);
    }

    #[tokio::test]
    async fn refusing_stops_listening_until_switched_back() {
        let switch = HealthSwitch::start(false);
        let http = client();
        switch.refuse();
        assert!(refused(switch.addr()));
        let err = get(&http, &switch.url()).await.unwrap_err();
        assert!(err.is_connect(), "{err:?}");
        switch.set_healthy(true);
        assert_eq!(get(&http, &switch.url()).await.unwrap().0, 200);
        // Refused connections never arrived.
        assert_eq!(switch.requests(), 1);
        // Refusing twice is refusing; any other mode listens again.
        switch.refuse();
        switch.refuse();
        assert!(refused(switch.addr()));
        switch.stall();
        assert!(!refused(switch.addr()));
    }

    #[tokio::test]
    async fn a_stalled_request_is_counted_and_never_answered() {
        let switch = HealthSwitch::start(true);
        switch.stall();
        let err = get(&client(), &switch.url()).await.unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        assert_eq!(switch.requests(), 1);
        // A request held open is closed, unanswered, when the mode changes.
        let mut held = tokio::net::TcpStream::connect(switch.addr()).await.unwrap();
        held.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        switch.wait_for_requests(2, Duration::from_secs(5)).await;
        switch.set_healthy(true);
        let mut rest = Vec::new();
        held.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "{rest:?}");
        assert_eq!(get(&client(), &switch.url()).await.unwrap().0, 200);
    }

    #[tokio::test]
    async fn dropping_the_guard_stops_it_and_closes_its_connections() {
        let switch = HealthSwitch::start(true);
        switch.stall();
        let addr = switch.addr();
        let mut held = tokio::net::TcpStream::connect(addr).await.unwrap();
        held.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        switch.wait_for_requests(1, Duration::from_secs(5)).await;
        drop(switch);
        let mut rest = Vec::new();
        // Closed: end of stream (or a reset), never an answer.
        let read = held.read_to_end(&mut rest).await;
        assert!(rest.is_empty(), "{read:?} {rest:?}");
        assert!(refused(addr));
    }
}
