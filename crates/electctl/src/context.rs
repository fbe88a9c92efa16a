//! What every command shares: the node asked, how to print, the client,
//! the admin token; printing; finding a node's admin endpoints and
//! `POST`ing to them.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{Cli, Output};
use crate::client::{self, join};
use crate::error::Error;
use crate::refusal::{Asked, explain};
use crate::wire::Status;

/// What every command needs: the node asked, how to print, the client.
pub struct Context {
    pub node: String,
    pub output: Output,
    token_file: Option<PathBuf>,
    pub client: client::Client,
}

impl Context {
    pub fn new(cli: &Cli) -> Result<Context, Error> {
        Ok(Context {
            node: cli.node.trim_end_matches('/').to_owned(),
            output: cli.output,
            token_file: cli.token_file.clone(),
            client: client::Client::new(Duration::from_secs_f64(cli.timeout))?,
        })
    }

    /// The admin token, read when a command needs it (a bad token file
    /// does not keep `list` from working).
    fn token(&self) -> Result<Option<String>, Error> {
        client::admin_token(self.token_file.as_deref())
    }
}

/// Writes `text` to standard output at once (a reader of a stream sees
/// each change as it comes).
pub fn print(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// One JSON value on a line of its own.
pub fn print_json(value: &serde_json::Value) -> Result<(), Error> {
    print(&format!("{value}\n"))
}

/// Where the admin endpoints of the node `status` describes listen: its
/// `admin` field, or (electd before 0.3.0 did not say) the URL it was
/// asked at.
pub fn admin_url(status: &Status, asked_at: &str) -> String {
    status.admin.clone().unwrap_or_else(|| asked_at.to_owned())
}

/// `POST admin + path` with the token: the node's status after it acted,
/// or its refusal as a sentence (about `who`, for `asked`).
pub async fn admin_post(
    context: &Context,
    admin: &str,
    path: &str,
    query: Option<(&str, &str)>,
    who: &str,
    asked: Asked<'_>,
) -> Result<serde_json::Value, Error> {
    let token = context.token()?;
    let mut url = join(admin, path)?;
    if let Some((name, value)) = query {
        url.query_pairs_mut().append_pair(name, value);
    }
    match context.client.post(&url, token.as_deref()).await? {
        Ok(body) => client::parse(&url, &body),
        Err(answer) => Err(match client::refusal(&answer) {
            Some(refusal) => explain(&refusal, who, asked, token.is_some()),
            None => client::unexpected(&url, &answer),
        }),
    }
}
