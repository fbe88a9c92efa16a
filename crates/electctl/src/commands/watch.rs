//! `electctl watch`: one line per change of leader, from `/v1/watch`'s
//! `leader` events, for scripts: `<RFC 3339 time> <id|-> term <T|-> <URL|->`.

use serde_json::json;
use time::OffsetDateTime;

use crate::cli::Output;
use crate::client::{self, join};
use crate::context::Context;
use crate::context::{print, print_json};
use crate::error::Error;
use crate::show::{self, or_dash};
use crate::wire::Leader;

pub async fn run(context: &Context) -> Result<(), Error> {
    let url = join(&context.node, "/v1/watch")?;
    let mut events = context.client.follow(&context.node, "leader").await?;
    // The leader last printed: a reconnected stream's first event repeats it.
    let mut last: Option<Option<Leader>> = None;
    loop {
        let event = events.next().await?;
        let leader: Option<Leader> = client::parse(&url, &event.data)?;
        if last.as_ref() == Some(&leader) {
            continue;
        }
        let at = show::rfc3339(OffsetDateTime::now_utc());
        match context.output {
            Output::Json => print_json(&json!({"at": at, "leader": leader}))?,
            Output::Table => print(&format!("{}\n", line(&at, leader.as_ref())))?,
        }
        last = Some(leader);
    }
}

fn line(at: &str, leader: Option<&Leader>) -> String {
    match leader {
        Some(l) => format!(
            "{at} {} term {} {}",
            or_dash(l.id.as_deref()),
            l.term,
            or_dash(l.advertise.as_deref())
        ),
        None => format!("{at} - term - -"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_leader() {
        let leader = Leader {
            id: Some("n2".into()),
            advertise: Some("http://h:2".into()),
            term: 40,
            verified: true,
        };
        assert_eq!(
            line("2026-12-07T18:00:00Z", Some(&leader)),
            "2026-12-07T18:00:00Z n2 term 40 http://h:2"
        );
        assert_eq!(line("T", None), "T - term - -");
    }
}
