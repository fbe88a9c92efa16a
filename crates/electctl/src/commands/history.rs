//! `electctl history [-n N]`: `GET /v1/history?limit=N`, who led when and
//! how each leadership ended, newest first.

use crate::cli::Output;
use crate::client::{self, join};
use crate::context::Context;
use crate::context::{print, print_json};
use crate::error::Error;
use crate::refusal::{Asked, explain};
use crate::show::{self, or_dash};
use crate::wire::History;

pub async fn run(context: &Context, limit: u32) -> Result<(), Error> {
    let mut url = join(&context.node, "/v1/history")?;
    url.query_pairs_mut()
        .append_pair("limit", &limit.to_string());
    let body = match context.client.get(&url).await? {
        Ok(body) => body,
        Err(answer) if answer.status == reqwest::StatusCode::NOT_FOUND => {
            return Err(Error::Refused(format!(
                "{} has no /v1/history: it runs an electd older than 0.3.0, which keeps no \
                 history of the election; upgrade it",
                context.node
            )));
        }
        Err(answer) => {
            return Err(match client::refusal(&answer) {
                Some(refusal) => explain(&refusal, &context.node, Asked::History, false),
                None => client::unexpected(&url, &answer),
            });
        }
    };
    match context.output {
        // The node's answer as it is: {"history": [...]}.
        Output::Json => print_json(&client::parse(&url, &body)?),
        Output::Table => print(&table(&client::parse(&url, &body)?)),
    }
}

fn table(history: &History) -> String {
    let rows: Vec<Vec<String>> = history
        .history
        .iter()
        .map(|l| {
            vec![
                l.term.to_string(),
                or_dash(l.id.as_deref()),
                or_dash(l.acquired_at.as_deref().map(time_of).as_deref()),
                or_dash(l.ended_at.as_deref().map(time_of).as_deref()),
                or_dash(l.reason.as_deref()),
                or_dash(l.to.as_deref()),
            ]
        })
        .collect();
    show::table(&["TERM", "ID", "ACQUIRED", "ENDED", "REASON", "TO"], &rows)
}

/// A time of the history in UTC to the millisecond; as written when it is
/// not RFC 3339 (shown, not judged).
fn time_of(text: &str) -> String {
    show::parse_rfc3339(text).map_or_else(|| text.to_owned(), show::rfc3339)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer in the schema of issue 21, as `/v1/history` gives it.
    const FIXTURE: &str = r#"{"history": [
        {"term": 57, "id": "n3", "advertise": "http://127.0.0.1:8082",
         "acquired_at": "2026-12-07T18:01:02.345678Z", "ended_at": null,
         "reason": null, "to": null},
        {"term": 51, "id": "n1", "advertise": "http://127.0.0.1:8080",
         "acquired_at": "2026-12-07T17:40:00Z", "ended_at": "2026-12-07T18:01:02.3Z",
         "reason": "transfer", "to": "n3"},
        {"term": 12, "id": null, "advertise": null,
         "acquired_at": null, "ended_at": null, "reason": "unknown", "to": null}
    ]}"#;

    #[test]
    fn the_history_as_a_table() {
        let history: History = serde_json::from_str(FIXTURE).unwrap();
        assert_eq!(
            table(&history),
            "TERM  ID  ACQUIRED                  ENDED                   REASON    TO\n\
             57    n3  2026-12-07T18:01:02.345Z  -                       -         -\n\
             51    n1  2026-12-07T17:40:00Z      2026-12-07T18:01:02.3Z  transfer  n3\n\
             12    -   -                         -                       unknown   -\n"
        );
    }
}
