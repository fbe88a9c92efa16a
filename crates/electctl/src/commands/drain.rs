//! `electctl drain [ID]` and `undrain [ID]`: `POST /v1/drain` or
//! `/v1/undrain` to the node's admin endpoints, found through its own
//! `/v1/status` (its `admin` field), wherever `--admin-listen` put them.

use crate::cli::Output;
use crate::context::Context;
use crate::context::{admin_post, admin_url, print, print_json};
use crate::error::Error;
use crate::refusal::Asked;
use crate::wire::Status;

pub async fn run(context: &Context, id: Option<&str>, drained: bool) -> Result<(), Error> {
    let asked = context.client.status(&context.node).await?;
    let (target, at) = match id {
        None => (asked, context.node.clone()),
        Some(id) if id == asked.id => (asked, context.node.clone()),
        Some(id) => {
            let advertise = advertise_of(&asked, id)?;
            let target = context.client.status(&advertise).await?;
            if target.id != id {
                return Err(Error::Refused(format!(
                    "{id}'s address {advertise} answers as {}: two nodes advertise one URL; \
                     give each its own --advertise",
                    target.id
                )));
            }
            (target, advertise)
        }
    };
    let admin = admin_url(&target, &at);
    let path = if drained { "/v1/drain" } else { "/v1/undrain" };
    let asked = Asked::Drain {
        id: &target.id,
        drained,
    };
    let after = admin_post(context, &admin, path, None, &target.id, asked).await?;
    match context.output {
        // The node's /v1/status after it acted, as it answered.
        Output::Json => print_json(&after),
        Output::Table => {
            let leader = match after["leader"]["id"].as_str() {
                Some(leader) => format!("{leader} leads (term {})", after["leader"]["term"]),
                None => "no leader is known".to_owned(),
            };
            let what = if drained {
                "is drained: it will not lead until undrained or restarted"
            } else {
                "is a candidate again"
            };
            print(&format!("{} {what}; {leader}\n", target.id))
        }
    }
}

/// The advertise URL of candidate `id`, as `status` lists it.
fn advertise_of(status: &Status, id: &str) -> Result<String, Error> {
    let listed = status
        .candidates
        .iter()
        .flatten()
        .find(|c| c.id.as_deref() == Some(id));
    match listed.and_then(|c| c.advertise.clone()) {
        Some(advertise) => Ok(advertise),
        None if status.api == "v2" => Err(Error::Refused(format!(
            "{id} is not the leader, and on --api v2 a node lists the leader only: run \
             electctl with --node set to {id}'s own URL"
        ))),
        None => Err(Error::Refused(format!(
            "{} lists no candidate called {id}: electctl list shows the candidates' ids",
            status.id
        ))),
    }
}
