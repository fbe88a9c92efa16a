//! A program that embeds an election, with no daemon: it runs its work only
//! while it leads, passes the fencing token along, and hands over at once on
//! Ctrl-C or SIGTERM.
//!
//! ```sh
//! cargo run -p elect --example worker -- http://127.0.0.1:2379 backups worker-1
//! ```

use std::time::Duration;

use elect::{Config, Election};
use tokio::signal::unix::{SignalKind, signal};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let endpoint = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:2379".into());
    let name = args.next().unwrap_or_else(|| "example".into());
    let id = args
        .next()
        .unwrap_or_else(|| format!("worker-{}", std::process::id()));

    let config = Config::builder()
        .endpoints([endpoint])
        .election(name)
        .id(id.clone())
        .advertise(format!("pid {}", std::process::id()))
        .ttl(Duration::from_secs(2))
        .build()?;
    let election = Election::start(config)?;

    let mut watch = election.observe();
    tokio::spawn(async move {
        while let Ok(leader) = watch.changed().await {
            match leader {
                Some(leader) => println!("leader is {:?} (term {})", leader.id, leader.term),
                None => println!("no leader"),
            }
        }
    });

    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    loop {
        let leadership = tokio::select! {
            leadership = election.campaign() => leadership?,
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        };
        println!("{id} leading term={}", leadership.term());
        tokio::select! {
            _ = leadership.lost() => println!("{id} lost term={}", leadership.term()),
            _ = terminate.recv() => {
                leadership.resign().await?;
                println!("{id} resigned");
                break;
            }
            _ = interrupt.recv() => {
                leadership.resign().await?;
                println!("{id} resigned");
                break;
            }
        }
    }
    election.shutdown().await;
    Ok(())
}
