//! A fault proxy: a TCP proxy on loopback that can, on command and per
//! direction, pass traffic, delay it (fixed and jittered, order kept), drop it
//! while keeping the connections open (a silent partition), or reset every
//! connection and refuse new ones (a loud partition). Pure Rust, no root.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

/// What happens to bytes going one way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forwarded at once.
    Pass,
    /// Forwarded after `fixed` plus a random part of up to `jitter`; order is kept.
    Delay { fixed: Duration, jitter: Duration },
    /// Read and thrown away: the sender sees an open connection that never answers.
    Drop,
}

/// Which way a fault applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the client (the node) to the target (etcd).
    Upstream,
    /// From the target back to the client.
    Downstream,
    /// Both ways.
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Plan {
    upstream: Fault,
    downstream: Fault,
    /// Loud partition: existing connections are reset, new ones refused.
    refuse: bool,
    /// Bumped to reset every connection open now.
    resets: u64,
}

/// One proxy in front of one target.
pub struct FaultProxy {
    addr: SocketAddr,
    plan: watch::Sender<Plan>,
    accept: JoinHandle<()>,
    bytes: Arc<AtomicU64>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `target`.
    pub async fn start(target: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the loopback interface accepts binds");
        let addr = listener.local_addr().expect("a bound address");
        let (plan, plans) = watch::channel(Plan {
            upstream: Fault::Pass,
            downstream: Fault::Pass,
            refuse: false,
            resets: 0,
        });
        let bytes = Arc::new(AtomicU64::new(0));
        let accept = tokio::spawn(accept_loop(listener, target, plans, bytes.clone()));
        FaultProxy {
            addr,
            plan,
            accept,
            bytes,
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Applies `fault` to `direction` (the other direction is unchanged).
    pub fn set(&self, direction: Direction, fault: Fault) {
        self.plan.send_modify(|plan| match direction {
            Direction::Upstream => plan.upstream = fault,
            Direction::Downstream => plan.downstream = fault,
            Direction::Both => {
                plan.upstream = fault;
                plan.downstream = fault;
            }
        });
    }

    /// A silent partition both ways.
    pub fn drop_all(&self) {
        self.set(Direction::Both, Fault::Drop);
    }

    /// A loud partition: resets every connection and refuses new ones until healed.
    pub fn refuse(&self) {
        self.plan.send_modify(|plan| {
            plan.refuse = true;
            plan.resets += 1;
        });
    }

    /// Resets every connection open now (new ones are accepted).
    pub fn reset_all(&self) {
        self.plan.send_modify(|plan| plan.resets += 1);
    }

    /// Back to passing everything. Connections that lost bytes to a `Drop`
    /// are reset, as TCP would end them after failed retransmissions: a real
    /// partition never hands an application a stream with a hole in it.
    pub fn heal(&self) {
        self.plan.send_modify(|plan| {
            if plan.upstream == Fault::Drop || plan.downstream == Fault::Drop {
                plan.resets += 1;
            }
            plan.upstream = Fault::Pass;
            plan.downstream = Fault::Pass;
            plan.refuse = false;
        });
    }

    /// Bytes forwarded so far, both ways.
    pub fn bytes_forwarded(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Reset whatever is still open so no connection outlives the proxy.
        self.plan.send_modify(|plan| plan.resets += 1);
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    plans: watch::Receiver<Plan>,
    bytes: Arc<AtomicU64>,
) {
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(_) => {
                // Out of descriptors, typically: back off instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        if plans.borrow().refuse {
            reset(client);
            continue;
        }
        tokio::spawn(connection(client, target, plans.clone(), bytes.clone()));
    }
}

/// Closes with RST instead of FIN.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

async fn connection(
    client: TcpStream,
    target: SocketAddr,
    mut plans: watch::Receiver<Plan>,
    bytes: Arc<AtomicU64>,
) {
    let Ok(server) = TcpStream::connect(target).await else {
        reset(client);
        return;
    };
    for stream in [&client, &server] {
        let _ = stream.set_nodelay(true);
        // Dropping a socket now sends RST: what a reset must look like.
        let _ = stream.set_zero_linger();
    }
    let resets = plans.borrow_and_update().resets;
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let mut up = tokio::spawn(pump(
        client_read,
        server_write,
        plans.clone(),
        Direction::Upstream,
        bytes.clone(),
    ));
    let mut down = tokio::spawn(pump(
        server_read,
        client_write,
        plans.clone(),
        Direction::Downstream,
        bytes,
    ));
    let reset_requested = async {
        let _ = plans.wait_for(|p| p.resets != resets).await;
    };
    tokio::select! {
        _ = reset_requested => {}
        _ = &mut up => {}
        _ = &mut down => {}
    }
    up.abort();
    down.abort();
}

/// Moves bytes one way according to the plan: a reader that never blocks on
/// the plan, and a writer that delivers in order at each chunk's due time.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    to: tokio::net::tcp::OwnedWriteHalf,
    plans: watch::Receiver<Plan>,
    direction: Direction,
    bytes: Arc<AtomicU64>,
) {
    let (tx, rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(deliver(to, rx, bytes));
    let mut buf = vec![0u8; 16 * 1024];
    let mut last_due = Instant::now();
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let fault = {
            let plan = plans.borrow();
            match direction {
                Direction::Upstream => plan.upstream,
                _ => plan.downstream,
            }
        };
        let due = match fault {
            Fault::Pass => Instant::now(),
            Fault::Drop => continue,
            Fault::Delay { fixed, jitter } => {
                let extra = jitter.mul_f64(rand::random::<f64>());
                Instant::now() + fixed + extra
            }
        };
        last_due = last_due.max(due);
        if tx.send((last_due, buf[..n].to_vec())).is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}

async fn deliver(
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<(Instant, Vec<u8>)>,
    bytes: Arc<AtomicU64>,
) {
    while let Some((due, chunk)) = rx.recv().await {
        sleep_until(due).await;
        if to.write_all(&chunk).await.is_err() {
            return;
        }
        bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
        let started = std::time::Instant::now();
        s.write_all(b"ping").await.ok()?;
        let mut buf = [0u8; 4];
        tokio::time::timeout(limit, s.read_exact(&mut buf))
            .await
            .ok()?
            .ok()?;
        Some(started.elapsed())
    }

    #[tokio::test]
    async fn pass_delay_drop_heal_reset_refuse() {
        let proxy = FaultProxy::start(echo_server().await).await;
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(round_trip(&mut s, Duration::from_secs(2)).await.is_some());

        proxy.set(
            Direction::Upstream,
            Fault::Delay {
                fixed: Duration::from_millis(200),
                jitter: Duration::ZERO,
            },
        );
        let took = round_trip(&mut s, Duration::from_secs(2)).await.unwrap();
        assert!(took >= Duration::from_millis(200), "{took:?}");

        proxy.set(Direction::Downstream, Fault::Drop);
        assert!(
            round_trip(&mut s, Duration::from_millis(500))
                .await
                .is_none()
        );
        proxy.heal();
        // A connection that lost bytes is reset; new ones pass.
        let closed = |mut s: TcpStream| async move {
            let mut buf = [0u8; 4];
            let read = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
                .await
                .unwrap();
            assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        };
        closed(s).await;
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(round_trip(&mut s, Duration::from_secs(2)).await.is_some());

        proxy.reset_all();
        closed(s).await;

        proxy.refuse();
        let mut refused = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(
            round_trip(&mut refused, Duration::from_secs(1))
                .await
                .is_none()
        );
        proxy.heal();
        let mut again = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(
            round_trip(&mut again, Duration::from_secs(2))
                .await
                .is_some()
        );
    }
}
