//! Talking to electd nodes: bounded requests, JSON answers, the admin
//! token, and `/v1/watch`'s event stream (reconnected when it breaks).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::error::{Error, warn};
use crate::wire::{Refusal, Status};

/// A stream that sends nothing, not even electd's keep-alive comment (one
/// every 15 s), for this long is counted as broken.
const SILENT_STREAM: Duration = Duration::from_secs(45);

/// The first wait before reconnecting a broken stream; it doubles up to
/// [`RECONNECT_AT_MOST`].
const RECONNECT_FIRST: Duration = Duration::from_millis(100);
const RECONNECT_AT_MOST: Duration = Duration::from_secs(2);

/// An HTTP client for electd nodes.
pub struct Client {
    http: reqwest::Client,
    /// Each request's bound, and every wait's.
    pub timeout: Duration,
}

/// An answer that is not a success: its status and body.
pub struct Answer {
    pub status: StatusCode,
    pub body: String,
}

impl Client {
    pub fn new(timeout: Duration) -> Result<Client, Error> {
        // electd serves plain HTTP, but reqwest built without a provider of
        // its own needs a TLS configuration: one on ring that trusts nothing.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Usage(format!("cannot set up TLS: {e}")))?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(timeout)
            .read_timeout(SILENT_STREAM.max(timeout))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Usage(format!("cannot set up HTTP: {e}")))?;
        Ok(Client { http, timeout })
    }

    /// `GET base/v1/status`.
    pub async fn status(&self, base: &str) -> Result<Status, Error> {
        let url = join(base, "/v1/status")?;
        match self.send(self.http.get(url.as_str()), &url).await? {
            Ok(body) => parse(&url, &body),
            Err(answer) => Err(unexpected(&url, &answer)),
        }
    }

    /// `GET url`: the body of a success, or the answer that is not one.
    pub async fn get(&self, url: &url::Url) -> Result<Result<String, Answer>, Error> {
        self.send(self.http.get(url.as_str()), url).await
    }

    /// `POST url` with the admin token: the body of a success, or the
    /// answer that is not one.
    pub async fn post(
        &self,
        url: &url::Url,
        token: Option<&str>,
    ) -> Result<Result<String, Answer>, Error> {
        let mut request = self.http.post(url.as_str());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request, url).await
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &url::Url,
    ) -> Result<Result<String, Answer>, Error> {
        let response = request
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| Error::no_answer(url.as_str(), &e))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| Error::no_answer(url.as_str(), &e))?;
        Ok(if status.is_success() {
            Ok(body)
        } else {
            Err(Answer { status, body })
        })
    }

    /// `GET base/v1/watch?events=KIND`, followed: [`Follow::next`] reconnects
    /// when the stream breaks.
    pub async fn follow(&self, base: &str, kind: &str) -> Result<Follow<'_>, Error> {
        self.follow_named(base, kind, &[kind]).await
    }

    /// `GET base/v1/watch?events=KINDS`, followed, giving the events named
    /// one of `names` (`?events=shards` sends `shards` and `shard` events).
    pub async fn follow_named(
        &self,
        base: &str,
        kinds: &str,
        names: &[&str],
    ) -> Result<Follow<'_>, Error> {
        let mut url = join(base, "/v1/watch")?;
        url.query_pairs_mut().append_pair("events", kinds);
        let mut follow = Follow {
            client: self,
            url,
            names: names.iter().map(|name| (*name).to_owned()).collect(),
            stream: None,
        };
        follow.stream = Some(follow.connect().await?);
        Ok(follow)
    }
}

/// `base` (a node's URL) with `path` in place of its own.
pub fn join(base: &str, path: &str) -> Result<url::Url, Error> {
    let mut url = url::Url::parse(base)
        .map_err(|e| Error::Usage(format!("{base:?} is not a node's URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::Usage(format!(
            "{base:?} is not a node's URL: give http://HOST:PORT"
        )));
    }
    url.set_path(path);
    url.set_query(None);
    Ok(url)
}

/// A JSON answer of `url`, read as `T`.
pub fn parse<T: DeserializeOwned>(url: &url::Url, body: &str) -> Result<T, Error> {
    serde_json::from_str(body).map_err(|e| {
        Error::Refused(format!(
            "{url} answered what electctl cannot read ({e}): is it an electd node?"
        ))
    })
}

/// An answer that is neither a success nor a refusal electd explains.
pub fn unexpected(url: &url::Url, answer: &Answer) -> Error {
    let body = answer.body.trim();
    let body = if body.is_empty() {
        String::new()
    } else {
        format!(": {}", body.chars().take(200).collect::<String>())
    };
    Error::Refused(format!("{url} answered {}{body}", answer.status))
}

/// The refusal in an error answer, if it is one of electd's.
pub fn refusal(answer: &Answer) -> Option<Refusal> {
    serde_json::from_str(&answer.body).ok()
}

/// The admin token: from `file`, or from `ELECTD_ADMIN_TOKEN`, as electd
/// reads it (trimmed; given once).
pub fn admin_token(file: Option<&Path>) -> Result<Option<String>, Error> {
    let from_env = std::env::var("ELECTD_ADMIN_TOKEN").ok();
    let token = match (file, from_env) {
        (Some(_), Some(_)) => {
            return Err(Error::Usage(
                "give the admin token once: --token-file (ELECTD_ADMIN_TOKEN_FILE) or \
                 ELECTD_ADMIN_TOKEN"
                    .to_owned(),
            ));
        }
        (Some(path), None) => Some(std::fs::read_to_string(path).map_err(|e| {
            Error::Usage(format!("cannot read --token-file {}: {e}", path.display()))
        })?),
        (None, from_env) => from_env,
    };
    match token.map(|t| t.trim().to_owned()) {
        Some(t) if t.is_empty() => Err(Error::Usage("the admin token is empty".to_owned())),
        token => Ok(token),
    }
}

/// One server-sent event.
#[derive(Debug, PartialEq, Eq)]
pub struct Event {
    pub name: String,
    pub data: String,
}

/// Server-sent events read off a response as they come.
struct Stream {
    response: reqwest::Response,
    /// Bytes received and not yet a whole line.
    pending: Vec<u8>,
    event: Parser,
}

impl Stream {
    /// The next event; `None` when the stream ended.
    async fn next(&mut self) -> Result<Option<Event>, reqwest::Error> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                if let Some(event) = self.event.line(&String::from_utf8_lossy(&line)) {
                    return Ok(Some(event));
                }
                continue;
            }
            match self.response.chunk().await? {
                Some(chunk) => self.pending.extend_from_slice(&chunk),
                None => return Ok(None),
            }
        }
    }
}

/// The server-sent events format, line by line: `event:` names the event,
/// `data:` lines make its data, a blank line sends it, `:` is a comment.
#[derive(Default)]
struct Parser {
    name: Option<String>,
    data: Option<String>,
}

impl Parser {
    fn line(&mut self, line: &str) -> Option<Event> {
        let line = line.trim_end_matches('\n').trim_end_matches('\r');
        if line.is_empty() {
            let data = self.data.take();
            let name = self.name.take();
            return data.map(|data| Event {
                name: name.unwrap_or_else(|| "message".to_owned()),
                data,
            });
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.name = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            _ => {}
        }
        None
    }
}

/// A `/v1/watch` stream, reconnected when it breaks.
pub struct Follow<'a> {
    client: &'a Client,
    url: url::Url,
    /// The names of the events given; the others are skipped.
    names: Vec<String>,
    stream: Option<Stream>,
}

impl Follow<'_> {
    /// The next event of a name asked for. When the stream breaks it
    /// says so on stderr and reconnects, waiting 0.1 s, then twice as long
    /// each time up to 2 s; when the node has not answered for the client's
    /// timeout, it gives up with [`Error::NoAnswer`].
    pub async fn next(&mut self) -> Result<Event, Error> {
        loop {
            let stream = match &mut self.stream {
                Some(stream) => stream,
                None => {
                    let stream = self.reconnect().await?;
                    self.stream.insert(stream)
                }
            };
            let why = match stream.next().await {
                Ok(Some(event)) if self.names.contains(&event.name) => return Ok(event),
                Ok(Some(_)) => continue,
                Ok(None) => "the node closed it".to_owned(),
                Err(e) => Error::no_answer(self.url.as_str(), &e).to_string(),
            };
            warn(format_args!(
                "the event stream {} broke ({why}); reconnecting",
                self.url
            ));
            self.stream = None;
        }
    }

    async fn connect(&self) -> Result<Stream, Error> {
        let url = self.url.as_str();
        // A stream has no bound on its whole answer, only on its headers:
        // a node that takes the connection and never answers is no answer.
        let request = self
            .client
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send();
        let response = tokio::time::timeout(self.client.timeout, request)
            .await
            .map_err(|_| Error::no_answer_in_time(url))?
            .map_err(|e| Error::no_answer(url, &e))?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(unexpected(&self.url, &Answer { status, body }));
        }
        // What is not an event stream (a proxy's page, another server)
        // would end at once, and be reconnected without end.
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("no content type");
        if !content_type.starts_with("text/event-stream") {
            return Err(Error::Refused(format!(
                "{url} answered {content_type}, not an event stream: is it an electd node?"
            )));
        }
        Ok(Stream {
            response,
            pending: Vec::new(),
            event: Parser::default(),
        })
    }

    async fn reconnect(&self) -> Result<Stream, Error> {
        let give_up = Instant::now() + self.client.timeout;
        let mut wait = RECONNECT_FIRST;
        loop {
            tokio::time::sleep(wait).await;
            match self.connect().await {
                Ok(stream) => {
                    warn(format_args!("the event stream {} is back", self.url));
                    return Ok(stream);
                }
                Err(e @ Error::NoAnswer { .. }) if Instant::now() >= give_up => return Err(e),
                Err(Error::NoAnswer { .. }) => wait = (wait * 2).min(RECONNECT_AT_MOST),
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(text: &str) -> Vec<Event> {
        let mut parser = Parser::default();
        text.split_inclusive('\n')
            .filter_map(|line| parser.line(line))
            .collect()
    }

    #[test]
    fn reads_server_sent_events() {
        let text = "event: leader\ndata: {\"term\":4}\n\n:\n\nevent: status\r\ndata: a\r\ndata: b\r\n\r\ndata: x\n\n";
        assert_eq!(
            events(text),
            [
                Event {
                    name: "leader".into(),
                    data: "{\"term\":4}".into()
                },
                Event {
                    name: "status".into(),
                    data: "a\nb".into()
                },
                Event {
                    name: "message".into(),
                    data: "x".into()
                },
            ]
        );
    }

    #[test]
    fn a_node_url_is_checked() {
        assert_eq!(
            join("http://127.0.0.1:8080/x?y", "/v1/status")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8080/v1/status"
        );
        for bad in ["127.0.0.1:8080", "localhost", "ftp://h/", "http://"] {
            assert!(matches!(join(bad, "/"), Err(Error::Usage(_))), "{bad}");
        }
    }
}
