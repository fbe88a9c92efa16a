//! `electctl switchover [--to ID]`: `POST /v1/resign[?to=ID]` to the
//! leader's admin endpoints, then the new leader, as `/v1/watch` of
//! `--node` reports it.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use crate::cli::Output;
use crate::client::{self, join};
use crate::context::Context;
use crate::context::{admin_post, admin_url, print, print_json};
use crate::error::Error;
use crate::refusal::Asked;
use crate::show;
use crate::wire::Leader;

pub async fn run(context: &Context, to: Option<&str>) -> Result<(), Error> {
    let status = context.client.status(&context.node).await?;
    let Some(before) = status.leader else {
        return Err(Error::Refused(format!(
            "nobody leads election {} now, so there is nothing to hand over: electctl list \
             shows why",
            status.election
        )));
    };
    let (Some(id), Some(advertise)) = (before.id.clone(), before.advertise.clone()) else {
        return Err(Error::Refused(
            "the leader key holds a value electd did not write, so no node can hand it over: \
             electctl list shows the obstacle and what to do"
                .to_owned(),
        ));
    };
    let leader_status = context.client.status(&advertise).await?;
    let admin = admin_url(&leader_status, &advertise);

    // The stream is open before the request, so the new leader cannot come
    // and go unseen.
    let mut events = context.client.follow(&context.node, "leader").await?;
    let url = join(&context.node, "/v1/watch")?;
    // The stream's first event is the leader when it opened: a newer term
    // there is a change nobody asked for, not the outcome of this request.
    let opened: Option<Leader> = client::parse(&url, &events.next().await?.data)?;
    if opened.as_ref().map(|l| l.term) != Some(before.term) {
        return Err(Error::Refused(
            "leadership moved while electctl asked: run electctl list, then try again".to_owned(),
        ));
    }
    let started = Instant::now();
    admin_post(
        context,
        &admin,
        "/v1/resign",
        to.map(|to| ("to", to)),
        &id,
        Asked::Switchover { to },
    )
    .await?;
    let after = tokio::time::timeout(context.client.timeout, async {
        loop {
            let event = events.next().await?;
            let leader: Option<Leader> = client::parse(&url, &event.data)?;
            if let Some(leader) = leader
                && leader.term > before.term
                && to.is_none_or(|to| leader.id.as_deref() == Some(to))
            {
                return Ok::<Leader, Error>(leader);
            }
        }
    })
    .await
    .map_err(|_| {
        Error::TimedOut(format!(
            "{id} stepped down, but {} did not lead within {:?}: electctl list shows why",
            to.unwrap_or("no successor"),
            context.client.timeout
        ))
    })??;
    let took = started.elapsed();
    report(context, &before, &after, took)
}

fn report(context: &Context, before: &Leader, after: &Leader, took: Duration) -> Result<(), Error> {
    match context.output {
        Output::Json => print_json(&json!({
            "leader": after,
            "previous": before,
            "took_ms": took.as_secs_f64() * 1000.0,
        })),
        Output::Table => print(&format!(
            "{} leads now (term {}), {} after the request; {} led before (term {})\n",
            after.id.as_deref().unwrap_or("-"),
            after.term,
            show::took(took),
            before.id.as_deref().unwrap_or("-"),
            before.term
        )),
    }
}
