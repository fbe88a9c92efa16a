//! `electctl list [-w]`: the election, its leader and how long it has
//! led, then every candidate in succession order; with `-w`, again on
//! every `status` event of `/v1/watch`.

use std::io::IsTerminal as _;
use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::cli::Output;
use crate::client::{self, join};
use crate::context::Context;
use crate::context::{print, print_json};
use crate::error::Error;
use crate::show::{self, or_dash, yes_no};
use crate::wire::{Candidate, History, Status};

/// The list once.
pub async fn once(context: &Context) -> Result<(), Error> {
    let status = context.client.status(&context.node).await?;
    let since = leading_since(context, &status).await;
    show(context, &status, since, false)
}

/// The list, and again on every change until interrupted: on a terminal
/// each list replaces the last; elsewhere they follow one another, a blank
/// line apart (JSON: one object per line).
pub async fn follow(context: &Context) -> Result<(), Error> {
    let mut events = context.client.follow(&context.node, "status").await?;
    // (term, since): the history is read again only for a new term.
    let mut known: Option<(u64, Option<OffsetDateTime>)> = None;
    let mut first = true;
    let url = join(&context.node, "/v1/watch")?;
    loop {
        let event = events.next().await?;
        let status: Status = client::parse(&url, &event.data)?;
        let term = status.leader.as_ref().map_or(0, |l| l.term);
        let since = match known {
            Some((known_term, since)) if known_term == term => since,
            _ => leading_since(context, &status).await,
        };
        known = Some((term, since));
        show(context, &status, since, !first)?;
        first = false;
    }
}

fn show(
    context: &Context,
    status: &Status,
    since: Option<OffsetDateTime>,
    again: bool,
) -> Result<(), Error> {
    match context.output {
        Output::Json => print_json(&listing(status, since)),
        Output::Table => {
            let text = table(status, since, OffsetDateTime::now_utc());
            if !again {
                print(&text)
            } else if std::io::stdout().is_terminal() {
                // Home, then clear the screen: the new list in the old one's place.
                print(&format!("\x1b[H\x1b[2J{text}"))
            } else {
                print(&format!("\n{text}"))
            }
        }
    }
}

/// When the current leader's leadership began, from the newest entry of
/// the election's history if it is this term's (electd 0.3.0 and later, on
/// v3); `None` when no answer says.
async fn leading_since(context: &Context, status: &Status) -> Option<OffsetDateTime> {
    let term = status.leader.as_ref()?.term;
    let mut url = join(&context.node, "/v1/history").ok()?;
    url.query_pairs_mut().append_pair("limit", "1");
    let body = context.client.get(&url).await.ok()?.ok()?;
    let history: History = serde_json::from_str(&body).ok()?;
    let newest = history.history.first()?;
    if newest.term != term {
        return None;
    }
    show::parse_rfc3339(newest.acquired_at.as_deref()?)
}

/// Each candidate's role and place: `(role, position)`, where the leader
/// is 0, the eligible ones 1, 2, … in succession order, and the others
/// (unhealthy, drained, or a value electd did not write) have none.
fn places(candidates: &[Candidate]) -> Vec<(&'static str, Option<usize>)> {
    let mut next = 0;
    candidates
        .iter()
        .map(|c| {
            if !c.verified {
                ("unverified", None)
            } else if c.leads {
                ("leader", Some(0))
            } else if c.eligible() {
                next += 1;
                ("candidate", Some(next))
            } else {
                ("ineligible", None)
            }
        })
        .collect()
}

/// The list for people: a header, then the candidates.
fn table(status: &Status, since: Option<OffsetDateTime>, now: OffsetDateTime) -> String {
    let mut text = format!(
        "Election  {} ({}, as {} sees it)\n",
        status.election, status.api, status.id
    );
    match &status.leader {
        None => text.push_str("Leader    none\n"),
        Some(leader) => {
            let led = match since {
                Some(since) => format!(
                    "leading for {} (since {})",
                    show::duration(Duration::try_from(now - since).unwrap_or_default()),
                    show::rfc3339(since)
                ),
                None => "leading for —".to_owned(),
            };
            text.push_str(&format!(
                "Leader    {}  term {}, {led}\n",
                or_dash(leader.id.as_deref()),
                leader.term
            ));
        }
    }
    if let Some(obstacle) = &status.obstacle {
        text.push_str(&format!(
            "Obstacle  {}: {}\n",
            obstacle.kind, obstacle.message
        ));
    }
    text.push('\n');
    let Some(candidates) = &status.candidates else {
        text.push_str("(no candidates: the node could not read etcd)\n");
        return text;
    };
    let rows: Vec<Vec<String>> = candidates
        .iter()
        .zip(places(candidates))
        .map(|(c, (role, position))| {
            let place = match position {
                Some(0) => format!("term {}", c.term),
                Some(n) => n.to_string(),
                None => "-".to_owned(),
            };
            vec![
                or_dash(c.id.as_deref()),
                or_dash(c.advertise.as_deref()),
                role.to_owned(),
                place,
                c.priority.to_string(),
                yes_no(c.healthy),
                yes_no(c.drained),
            ]
        })
        .collect();
    text.push_str(&show::table(
        &[
            "ID", "ADDRESS", "ROLE", "TERM/POS", "PRIORITY", "HEALTHY", "DRAINED",
        ],
        &rows,
    ));
    text
}

/// The list for programs: the schema the book's electctl reference gives.
fn listing(status: &Status, since: Option<OffsetDateTime>) -> Value {
    let candidates = status.candidates.as_ref().map(|candidates| {
        candidates
            .iter()
            .zip(places(candidates))
            .map(|(c, (role, position))| {
                json!({
                    "id": c.id,
                    "advertise": c.advertise,
                    "role": role,
                    "term": c.leads.then_some(c.term),
                    "position": position,
                    "priority": c.priority,
                    "healthy": c.healthy,
                    "drained": c.drained,
                    "verified": c.verified,
                })
            })
            .collect::<Vec<_>>()
    });
    json!({
        "election": status.election,
        "api": status.api,
        "node": status.id,
        "leader": status.leader.as_ref().map(|l| json!({
            "id": l.id,
            "advertise": l.advertise,
            "term": l.term,
            "verified": l.verified,
            "since": since.map(show::rfc3339),
        })),
        "candidates": candidates,
        "obstacle": status.obstacle,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> Status {
        serde_json::from_value(json!({
            "id": "n1", "role": "follower", "election": "jobs", "api": "v3",
            "leader": {"id": "n2", "advertise": "http://h:2", "term": 40, "verified": true},
            "candidates": [
                {"id": "n2", "advertise": "http://h:2", "term": 40, "verified": true,
                 "leads": true, "priority": 0, "healthy": true, "drained": false},
                {"id": "n3", "advertise": "http://h:3", "term": 41, "verified": true,
                 "leads": false, "priority": 5, "healthy": true, "drained": false},
                {"id": "n1", "advertise": "http://h:1", "term": 39, "verified": true,
                 "leads": false, "priority": 0, "healthy": true, "drained": true}
            ],
            "obstacle": null, "admin": "http://h:1"
        }))
        .unwrap()
    }

    #[test]
    fn the_table_names_the_leader_and_each_candidates_place() {
        let now = show::parse_rfc3339("2026-12-07T18:00:00Z").unwrap();
        let since = show::parse_rfc3339("2026-12-07T17:56:48Z");
        assert_eq!(
            table(&status(), since, now),
            "Election  jobs (v3, as n1 sees it)\n\
             Leader    n2  term 40, leading for 3m 12s (since 2026-12-07T17:56:48Z)\n\
             \n\
             ID  ADDRESS     ROLE        TERM/POS  PRIORITY  HEALTHY  DRAINED\n\
             n2  http://h:2  leader      term 40   0         yes      no\n\
             n3  http://h:3  candidate   1         5         yes      no\n\
             n1  http://h:1  ineligible  -         0         yes      yes\n"
        );
        assert!(table(&status(), None, now).contains("term 40, leading for —\n"));
    }

    #[test]
    fn the_json_has_each_candidates_role_and_position() {
        let listing = listing(&status(), None);
        assert_eq!(listing["leader"]["id"], "n2");
        assert_eq!(listing["leader"]["since"], Value::Null);
        let roles: Vec<(&str, Value)> = listing["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["role"].as_str().unwrap(), c["position"].clone()))
            .collect();
        assert_eq!(
            roles,
            [
                ("leader", json!(0)),
                ("candidate", json!(1)),
                ("ineligible", Value::Null)
            ]
        );
    }
}
