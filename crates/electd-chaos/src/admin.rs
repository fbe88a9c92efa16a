//! What the soak asks of the nodes and how they answer: the admin
//! endpoints (each answer recorded, one the issue does not allow kept
//! aside), health switched, and who is kept out of the running.

use harness::app::Mode;

use crate::fleet::{ADMIN_TOKEN, Soak};

/// The answers from admin endpoints the issue allows: done (200), refused
/// (409), needs v3 (501), shutting down (503), hand-over timed out (504).
const ALLOWED_ANSWERS: [u16; 5] = [200, 409, 501, 503, 504];

/// What an admin endpoint answered: `None` when the node did not answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: Option<u16>,
    /// The JSON body's `error` code, on a refusal.
    pub error: Option<String>,
}

impl Reply {
    pub fn describe(&self) -> String {
        match (self.status, &self.error) {
            (None, _) => "no answer".to_owned(),
            (Some(code), Some(error)) => format!("{code} {error}"),
            (Some(code), None) => code.to_string(),
        }
    }
}

/// POSTs to an admin endpoint with the bearer token.
pub async fn post(http: reqwest::Client, url: String) -> Reply {
    let sent = http
        .post(&url)
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .send()
        .await;
    let Ok(resp) = sent else {
        return Reply {
            status: None,
            error: None,
        };
    };
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    let error = (status != 200)
        .then(|| serde_json::from_str::<serde_json::Value>(&body).ok())
        .flatten()
        .and_then(|v| v["error"].as_str().map(str::to_owned));
    Reply {
        status: Some(status),
        error,
    }
}

impl Soak {
    /// Records an admin answer: counted, logged, and kept aside when the
    /// issue does not allow it.
    pub fn record(&mut self, what: &str, node: usize, reply: &Reply) {
        let described = reply.describe();
        self.note(&format!("  {what} at n{node} -> {described}"));
        self.count(&format!("{what} -> {described}"));
        if let Some(code) = reply.status
            && !ALLOWED_ANSWERS.contains(&code)
        {
            self.unexpected
                .push(format!("{what} at n{node} answered {described}"));
        }
    }

    /// POSTs `path` to node `i`'s admin endpoint and records the answer.
    pub async fn admin(&mut self, i: usize, what: &str, path: &str) -> Reply {
        let reply = post(self.admin.clone(), format!("{}{path}", self.nodes[i].url())).await;
        self.record(what, i, &reply);
        reply
    }

    pub async fn drain(&mut self, i: usize) {
        let reply = self.admin(i, "drain", "/v1/drain").await;
        // Unanswered, it may have drained all the same: undrained at the end.
        if matches!(reply.status, None | Some(200)) {
            self.drained[i] = true;
        }
    }

    pub async fn undrain(&mut self, i: usize) {
        let reply = self.admin(i, "undrain", "/v1/undrain").await;
        if reply.status == Some(200) {
            self.drained[i] = false;
        }
    }

    /// Switches node `i`'s health endpoint.
    pub fn set_health(&mut self, i: usize, mode: Mode) {
        self.health[i].set(mode);
        self.health_mode[i] = mode;
        self.note(&format!("  n{i} health -> {mode:?}"));
        self.count(&format!("health -> {mode:?}"));
    }

    /// Whether node `i` is kept out of the running (unhealthy or drained).
    pub fn out(&self, i: usize) -> bool {
        self.health_mode[i] != Mode::Healthy || self.drained[i]
    }

    /// Brings back the first node kept out, if any; whether there was one.
    pub async fn restore_one(&mut self) -> bool {
        let Some(i) = (0..self.nodes.len()).find(|&i| self.out(i)) else {
            return false;
        };
        if self.health_mode[i] != Mode::Healthy {
            self.set_health(i, Mode::Healthy);
        }
        if self.drained[i] {
            self.undrain(i).await;
        }
        true
    }

    /// Whether another node may be kept out: at most `(nodes - 1) / 2` at once.
    pub fn may_take_out(&self) -> bool {
        let out = (0..self.nodes.len()).filter(|&i| self.out(i)).count();
        out < (self.nodes.len() - 1) / 2
    }

    /// The leader to ask for a hand-over (or `fallback` when none is seen:
    /// it answers 409 not_leader), and the node it is asked to hand to.
    pub async fn transfer_ends(&mut self, fallback: usize, offset: usize) -> (usize, usize) {
        let from = self.leader().await.unwrap_or(fallback);
        let to = self.other(from, offset);
        let state = match (self.health_mode[to], self.drained[to]) {
            (Mode::Healthy, false) => "a candidate".to_owned(),
            (mode, drained) => format!("{mode:?}, drained {drained}"),
        };
        self.note(&format!(
            "  asking n{from} (priority {}) to hand over to n{to} (priority {}, {state})",
            self.priority[from], self.priority[to]
        ));
        (from, to)
    }
}
