//! `electctl shards [--all] [-w]`: the shard map of an election started
//! with `--shards N`: how many shards have no leader, how many each node
//! leads, and each shard's leader and term (`GET /v1/shards`); with `-w`,
//! again on every change, from `/v1/watch?events=shards`, with the last
//! moves seen.

use std::collections::{BTreeMap, VecDeque};
use std::io::IsTerminal as _;
use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::cli::Output;
use crate::client::{self, join};
use crate::context::Context;
use crate::context::{print, print_json};
use crate::error::Error;
use crate::refusal::{Asked, explain};
use crate::show;
use crate::wire::{Shard, Shards};

/// Without `--all`, the table lists this many shards (an election of
/// thousands would fill screens); the header and the counts cover all.
const SHARDS_LISTED: usize = 20;

/// How many moves `-w` keeps and shows, newest first.
const MOVES_KEPT: usize = 10;

/// A move of many shards comes as one `shard` event each: events that
/// follow one another within this long make one redraw, ...
const GATHER: Duration = Duration::from_millis(100);
/// ... drawn this long after the first at the latest.
const GATHER_AT_MOST: Duration = Duration::from_secs(1);

/// The leaderless shards the header names, at most (as ranges).
const LEADERLESS_NAMED: usize = 8;

/// The map once.
pub async fn once(context: &Context, all: bool) -> Result<(), Error> {
    let map = Map::new(fetch(context).await?);
    show(context, &map, all, false)
}

/// The map, and again on every change until interrupted, with the moves
/// seen since electctl started: on a terminal each map replaces the last;
/// elsewhere they follow one another, a blank line apart (JSON: one object
/// per line).
pub async fn follow(context: &Context, all: bool) -> Result<(), Error> {
    // Asked first: an election without shards is refused with a sentence
    // (the stream would answer a bare 400), and the answer names the node.
    let mut map = Map::new(fetch(context).await?);
    let url = join(&context.node, "/v1/watch")?;
    let mut events = context
        .client
        .follow_named(&context.node, "shards", &["shards", "shard"])
        .await?;
    let mut first = true;
    loop {
        let mut event = events.next().await?;
        let draw_by = tokio::time::Instant::now() + GATHER_AT_MOST;
        loop {
            match event.name.as_str() {
                // On connect, and again after a reconnect: what changed
                // while the stream was down counts as moves too.
                "shards" => {
                    let whole: Shards = client::parse(&url, &event.data)?;
                    map.replace(whole.count, whole.shards, OffsetDateTime::now_utc());
                }
                _ => {
                    let shard: Shard = client::parse(&url, &event.data)?;
                    map.update(shard, OffsetDateTime::now_utc());
                }
            }
            let until = draw_by.min(tokio::time::Instant::now() + GATHER);
            match tokio::time::timeout_at(until, events.next()).await {
                Ok(next) => event = next?,
                Err(_) => break,
            }
        }
        show(context, &map, all, !first)?;
        first = false;
    }
}

/// `GET /v1/shards`, or the node's refusal as a sentence.
async fn fetch(context: &Context) -> Result<Shards, Error> {
    let url = join(&context.node, "/v1/shards")?;
    match context.client.get(&url).await? {
        Ok(body) => client::parse(&url, &body),
        Err(answer) => Err(match client::refusal(&answer) {
            Some(refusal) => explain(&refusal, &context.node, Asked::Shards, false),
            None if answer.status == reqwest::StatusCode::NOT_FOUND => Error::Refused(format!(
                "{} has no /v1/shards: it runs an electd without shards; upgrade it",
                context.node
            )),
            None => client::unexpected(&url, &answer),
        }),
    }
}

fn show(context: &Context, map: &Map, all: bool, again: bool) -> Result<(), Error> {
    match context.output {
        Output::Json => print_json(&map.json()),
        Output::Table => {
            let text = map.table(all);
            if !again {
                print(&text)
            } else if std::io::stdout().is_terminal() {
                // Home, then clear the screen: the new map in the old one's place.
                print(&format!("\x1b[H\x1b[2J{text}"))
            } else {
                print(&format!("\n{text}"))
            }
        }
    }
}

/// A shard's leader as electctl keeps it: its id and its term.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Led {
    id: String,
    term: u64,
}

/// A shard that went to a leader other than the last one electctl saw.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Move {
    shard: u32,
    /// `None` when electctl saw no leader of it before.
    from: Option<String>,
    to: String,
    term: u64,
    at: OffsetDateTime,
}

/// The shard map as one node shows it, and the moves seen.
struct Map {
    /// The node asked (`None` if its answer did not say).
    node: Option<String>,
    leaders: Vec<Option<Led>>,
    /// The last leader seen of each shard, kept while it has none: a move
    /// is from there.
    last_seen: Vec<Option<String>>,
    /// Newest first, at most [`MOVES_KEPT`].
    moves: VecDeque<Move>,
}

fn led(shard: &Shard) -> Option<Led> {
    Some(Led {
        id: shard.leader.as_ref()?.id.clone(),
        term: shard.term?,
    })
}

impl Map {
    fn new(answer: Shards) -> Map {
        let mut leaders = vec![None; answer.count as usize];
        for shard in &answer.shards {
            if let Some(slot) = leaders.get_mut(shard.shard as usize) {
                *slot = led(shard);
            }
        }
        let last_seen = leaders
            .iter()
            .map(|l: &Option<Led>| l.as_ref().map(|l| l.id.clone()))
            .collect();
        Map {
            node: answer.id,
            leaders,
            last_seen,
            moves: VecDeque::new(),
        }
    }

    /// The whole map anew (a `shards` event); a shard whose leader changed
    /// since is a move.
    fn replace(&mut self, count: u32, shards: Vec<Shard>, at: OffsetDateTime) {
        self.leaders.resize(count as usize, None);
        self.last_seen.resize(count as usize, None);
        let mut given = vec![false; count as usize];
        for shard in shards {
            if let Some(seen) = given.get_mut(shard.shard as usize) {
                *seen = true;
                self.update(shard, at);
            }
        }
        for (k, given) in given.into_iter().enumerate() {
            if !given {
                self.leaders[k] = None;
            }
        }
    }

    /// One shard's leader and term (a `shard` event).
    fn update(&mut self, shard: Shard, at: OffsetDateTime) {
        let k = shard.shard as usize;
        if k >= self.leaders.len() {
            return;
        }
        let now = led(&shard);
        if let Some(to) = &now
            && self.last_seen[k].as_deref() != Some(to.id.as_str())
        {
            self.moves.push_front(Move {
                shard: shard.shard,
                from: self.last_seen[k].clone(),
                to: to.id.clone(),
                term: to.term,
                at,
            });
            self.moves.truncate(MOVES_KEPT);
            self.last_seen[k] = Some(to.id.clone());
        }
        self.leaders[k] = now;
    }

    /// How many shards each node leads, by id.
    fn loads(&self) -> BTreeMap<&str, usize> {
        let mut loads = BTreeMap::new();
        for leader in self.leaders.iter().flatten() {
            *loads.entry(leader.id.as_str()).or_default() += 1;
        }
        loads
    }

    fn leaderless(&self) -> Vec<u32> {
        (0..self.leaders.len() as u32)
            .filter(|&k| self.leaders[k as usize].is_none())
            .collect()
    }

    /// The map for people: the header, the counts per node, the shards
    /// (the first [`SHARDS_LISTED`] unless `all`), then the moves seen.
    fn table(&self, all: bool) -> String {
        let count = self.leaders.len();
        let leaderless = self.leaderless();
        let mut text = format!(
            "Shards      {count} (as {} sees it)\n",
            show::or_dash(self.node.as_deref())
        );
        text.push_str(&format!("Leaderless  {}", leaderless.len()));
        if !leaderless.is_empty() {
            text.push_str(&format!(" (shards {})", ranges(&leaderless)));
        }
        text.push_str("\n\n");
        let loads: Vec<Vec<String>> = self
            .loads()
            .into_iter()
            .map(|(id, leads)| vec![id.to_owned(), leads.to_string()])
            .collect();
        text.push_str(&show::table(&["NODE", "LEADS"], &loads));
        text.push('\n');
        let listed = if all { count } else { count.min(SHARDS_LISTED) };
        let rows: Vec<Vec<String>> = self.leaders[..listed]
            .iter()
            .enumerate()
            .map(|(k, leader)| match leader {
                Some(l) => vec![k.to_string(), l.id.clone(), l.term.to_string()],
                None => vec![k.to_string(), "-".to_owned(), "-".to_owned()],
            })
            .collect();
        text.push_str(&show::table(&["SHARD", "LEADER", "TERM"], &rows));
        if listed < count {
            text.push_str(&format!(
                "… {} more: electctl shards --all lists every shard\n",
                count - listed
            ));
        }
        if !self.moves.is_empty() {
            text.push_str("\nRecent moves, newest first:\n");
            let rows: Vec<Vec<String>> = self
                .moves
                .iter()
                .map(|m| {
                    vec![
                        show::rfc3339(m.at),
                        m.shard.to_string(),
                        show::or_dash(m.from.as_deref()),
                        m.to.clone(),
                        m.term.to_string(),
                    ]
                })
                .collect();
            text.push_str(&show::table(&["AT", "SHARD", "FROM", "TO", "TERM"], &rows));
        }
        text
    }

    /// The map for programs: the schema the book's electctl reference gives.
    fn json(&self) -> Value {
        let shards: Vec<Value> = self
            .leaders
            .iter()
            .enumerate()
            .map(|(k, leader)| {
                json!({
                    "shard": k,
                    "leader": leader.as_ref().map(|l| &l.id),
                    "term": leader.as_ref().map(|l| l.term),
                })
            })
            .collect();
        let nodes: Vec<Value> = self
            .loads()
            .into_iter()
            .map(|(id, leads)| json!({"id": id, "leads": leads}))
            .collect();
        let moves: Vec<Value> = self
            .moves
            .iter()
            .map(|m| {
                json!({
                    "at": show::rfc3339(m.at),
                    "shard": m.shard,
                    "from": m.from,
                    "to": m.to,
                    "term": m.term,
                })
            })
            .collect();
        json!({
            "node": self.node,
            "count": self.leaders.len(),
            "leaderless": self.leaderless().len(),
            "nodes": nodes,
            "shards": shards,
            "moves": moves,
        })
    }
}

/// Shard numbers, in order, as ranges: `3, 7-9, 12`; past
/// [`LEADERLESS_NAMED`] ranges, `…`.
fn ranges(shards: &[u32]) -> String {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &k in shards {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == k => *end = k,
            _ => runs.push((k, k)),
        }
    }
    let mut words: Vec<String> = runs
        .iter()
        .take(LEADERLESS_NAMED)
        .map(|&(start, end)| {
            if start == end {
                start.to_string()
            } else {
                format!("{start}-{end}")
            }
        })
        .collect();
    if runs.len() > LEADERLESS_NAMED {
        words.push("…".to_owned());
    }
    words.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ShardLeader;

    fn shard(k: u32, leader: Option<(&str, u64)>) -> Shard {
        Shard {
            shard: k,
            leader: leader.map(|(id, _)| ShardLeader {
                id: id.to_owned(),
                advertise: format!("http://{id}"),
            }),
            term: leader.map(|(_, term)| term),
        }
    }

    fn map(leaders: &[Option<(&str, u64)>]) -> Map {
        Map::new(Shards {
            count: leaders.len() as u32,
            id: Some("n1".to_owned()),
            shards: leaders
                .iter()
                .enumerate()
                .map(|(k, l)| shard(k as u32, *l))
                .collect(),
        })
    }

    fn at() -> OffsetDateTime {
        show::parse_rfc3339("2026-12-07T18:00:00Z").unwrap()
    }

    #[test]
    fn the_table_has_the_counts_and_the_first_shards_unless_all() {
        let mut leaders: Vec<Option<(&str, u64)>> = (0..24)
            .map(|k| Some((if k % 2 == 0 { "n1" } else { "n2" }, 100 + k)))
            .collect();
        leaders[3] = None;
        leaders[4] = None;
        leaders[9] = None;
        let map = map(&leaders);
        let table = map.table(false);
        assert!(
            table.starts_with(
                "Shards      24 (as n1 sees it)\n\
                 Leaderless  3 (shards 3-4, 9)\n\
                 \n\
                 NODE  LEADS\n\
                 n1    11\n\
                 n2    10\n\
                 \n\
                 SHARD  LEADER  TERM\n\
                 0      n1      100\n\
                 1      n2      101\n\
                 2      n1      102\n\
                 3      -       -\n"
            ),
            "{table}"
        );
        assert!(
            table.ends_with(
                "19     n2      119\n… 4 more: electctl shards --all lists every shard\n"
            )
        );
        let all = map.table(true);
        assert!(all.ends_with("23     n2      123\n"), "{all}");
    }

    #[test]
    fn a_shard_going_to_another_leader_is_a_move_even_through_no_leader() {
        let mut map = map(&[Some(("n1", 5)), Some(("n2", 6)), None]);
        map.update(shard(0, None), at());
        map.update(shard(0, Some(("n2", 9))), at());
        // The same leader anew (a restart under the same id) is no move.
        map.update(shard(1, None), at());
        map.update(shard(1, Some(("n2", 10))), at());
        map.replace(
            3,
            vec![
                shard(0, Some(("n2", 9))),
                shard(1, Some(("n2", 10))),
                shard(2, Some(("n1", 11))),
            ],
            at(),
        );
        let moves: Vec<(u32, Option<&str>, &str, u64)> = map
            .moves
            .iter()
            .map(|m| (m.shard, m.from.as_deref(), m.to.as_str(), m.term))
            .collect();
        assert_eq!(moves, [(2, None, "n1", 11), (0, Some("n1"), "n2", 9)]);
        let json = map.json();
        assert_eq!(json["moves"][1]["from"], "n1", "{json}");
        assert_eq!(
            json["nodes"],
            json!([{"id": "n1", "leads": 1}, {"id": "n2", "leads": 2}])
        );
        assert_eq!(
            json["shards"][2],
            json!({"shard": 2, "leader": "n1", "term": 11})
        );
        assert_eq!(json["leaderless"], 0);
        assert!(map.table(false).contains(
            "AT                    SHARD  FROM  TO  TERM\n\
             2026-12-07T18:00:00Z  2      -     n1  11\n\
             2026-12-07T18:00:00Z  0      n1    n2  9\n"
        ));
    }

    #[test]
    fn many_leaderless_shards_are_named_as_a_few_ranges() {
        let every_other: Vec<u32> = (0..40).step_by(2).collect();
        assert_eq!(ranges(&every_other), "0, 2, 4, 6, 8, 10, 12, 14, …");
        assert_eq!(ranges(&[1, 2, 3, 7]), "1-3, 7");
    }
}
