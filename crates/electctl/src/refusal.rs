//! A node's refusal (the `error` code of electd's JSON error answers) as
//! a sentence that says what to do, and the exit status it comes with.

use crate::error::Error;
use crate::wire::Refusal;

/// What electctl asked for, which the sentence is about.
#[derive(Clone, Copy, Debug)]
pub enum Asked<'a> {
    /// `POST /v1/resign`, maybe `?to=ID`.
    Switchover { to: Option<&'a str> },
    /// `POST /v1/drain` or `/v1/undrain` to node `id`.
    Drain { id: &'a str, drained: bool },
    /// `GET /v1/history`.
    History,
    /// `GET /v1/shards`.
    Shards,
}

/// The error for `refusal`, answered by the node at `node` (its id or URL)
/// to what was `asked`. `transfer_timed_out`, `shutting_down` and
/// `etcd_unavailable` exit 3 (the node did not get it done in time, or
/// cannot answer now); every other
/// code exits 1, an unknown one with the node's own message.
pub fn explain(refusal: &Refusal, node: &str, asked: Asked<'_>, token_given: bool) -> Error {
    let target = match asked {
        Asked::Switchover { to: Some(to) } => to,
        _ => "the candidate",
    };
    let leader = || match &refusal.leader {
        Some(leader) => format!(
            "{} leads now (term {})",
            leader
                .id
                .as_deref()
                .unwrap_or("a leader electd did not write"),
            leader.term
        ),
        None => "no leader is known now".to_owned(),
    };
    let sentence = match refusal.error.as_str() {
        "admin_off" => format!(
            "{node} has no admin token, so its admin endpoints are off: start electd there with \
             --admin-token-file (or ELECTD_ADMIN_TOKEN), and give electctl the same token"
        ),
        "unauthorized" if token_given => format!(
            "{node} refused the admin token: give electctl the token electd was started with \
             (--token-file, ELECTD_ADMIN_TOKEN_FILE or ELECTD_ADMIN_TOKEN)"
        ),
        "unauthorized" => format!(
            "{node} needs the admin token: give it with --token-file FILE, \
             ELECTD_ADMIN_TOKEN_FILE or ELECTD_ADMIN_TOKEN"
        ),
        "not_leader" => match asked {
            Asked::Drain { id, drained } => format!(
                "{id} is an observer (--observe): it never campaigns, so there is nothing to {}",
                if drained { "drain" } else { "undrain" }
            ),
            _ => format!(
                "{node} no longer leads (leadership moved while electctl asked): run electctl \
                 list, then try again"
            ),
        },
        "no_such_candidate" => {
            format!("no live candidate is called {target}: electctl list shows the candidates' ids")
        }
        "ambiguous_candidate" => format!(
            "several candidates are called {target}: give every node its own --id, then try again"
        ),
        "candidate_is_self" => format!(
            "{target} leads already: name another candidate, or leave out --to to hand over to \
             the next in line"
        ),
        "candidate_unhealthy" => format!(
            "{target} fails its health check (--health-url), so it may not lead: fix what its \
             check reports, or name another candidate"
        ),
        "candidate_drained" => format!(
            "{target} is drained, so it may not lead: run electctl undrain {target} first, or \
             name another candidate"
        ),
        "old_releases_present" => "nodes of the oldest-key layout, or etcd election clients, \
             are still in the election, and they would not honour a named hand-over: upgrade \
             them (the book's Upgrading guide), or leave out --to"
            .to_owned(),
        "needs_v3" => match asked {
            Asked::History => "the election's history is kept in etcd by the v3 API only, and \
                 this election runs --api v2: each node's --journal has its own leaderships"
                .to_owned(),
            _ => "a hand-over to a named node needs --api v3: leave out --to to hand over to \
                 the next in line"
                .to_owned(),
        },
        "not_with_shards" => format!(
            "the election {node} runs has shards (--shards), and a switchover would give up the \
             lease every shard of the leader is bound to: run electctl drain on the leader to \
             move its shards and the lead off it, or stop that node"
        ),
        "no_shards" => format!(
            "the election {node} runs has no shards: start every node with --shards N (etcd \
             v3) to split it into shards, or run electctl list for its one leader"
        ),
        "transfer_timed_out" => {
            return Error::TimedOut(format!(
                "{target} did not take over in time, so the hand-over was withdrawn and the \
                 ordinary succession went on; {}: run electctl list to see why {target} could \
                 not lead",
                leader()
            ));
        }
        "transfer_failed" => format!(
            "the leader stepped down, but etcd failed the hand-over ({}), and the ordinary \
             succession went on; {}",
            refusal.message,
            leader()
        ),
        "shutting_down" => {
            return Error::TimedOut(format!(
                "{node} is shutting down: try again once it is back"
            ));
        }
        "etcd_unavailable" => {
            return Error::TimedOut(format!(
                "{node} cannot read etcd now ({}): its /healthz says why; try again, or ask \
                 another node with --node",
                refusal.message
            ));
        }
        // A code this electctl does not know (from a newer electd): the
        // node's own words.
        _ => format!("{node} refused ({}): {}", refusal.error, refusal.message),
    };
    Error::Refused(sentence)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(code: &str) -> Refusal {
        Refusal {
            error: code.to_owned(),
            message: "the node's words".to_owned(),
            leader: None,
        }
    }

    #[test]
    fn every_known_code_is_a_sentence_of_its_own() {
        let codes = [
            "admin_off",
            "unauthorized",
            "not_leader",
            "no_such_candidate",
            "ambiguous_candidate",
            "candidate_is_self",
            "candidate_unhealthy",
            "candidate_drained",
            "old_releases_present",
            "needs_v3",
            "transfer_failed",
            "no_shards",
            "not_with_shards",
        ];
        let asked = Asked::Switchover { to: Some("web-3") };
        for code in codes {
            let err = explain(&refusal(code), "http://n1", asked, true);
            assert_eq!(err.exit_status(), 1, "{code}");
            let sentence = err.to_string();
            assert!(!sentence.contains(code), "{code}: {sentence}");
        }
        for code in ["transfer_timed_out", "shutting_down", "etcd_unavailable"] {
            assert_eq!(explain(&refusal(code), "n1", asked, true).exit_status(), 3);
        }
    }

    #[test]
    fn an_unknown_code_shows_the_nodes_words() {
        let err = explain(&refusal("new_code"), "n1", Asked::History, true);
        assert_eq!(err.exit_status(), 1);
        assert_eq!(err.to_string(), "n1 refused (new_code): the node's words");
    }
}
