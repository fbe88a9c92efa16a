//! The live web view at `GET /ui`: one page, its script and its stylesheet,
//! embedded in the binary (nothing to build, nothing fetched: it works
//! offline). The page reads `/v1/status`, follows `/v1/watch` and shows
//! `/v1/history` (and `/v1/shards` with `--shards`), all from the origin
//! that served it; the admin actions
//! POST there too, so it needs no cross-origin rules, and it gets none.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("ui/index.html");
const SCRIPT: &str = include_str!("ui/app.js");
const STYLE: &str = include_str!("ui/app.css");

/// Only this origin's script, stylesheet and requests: no inline code, so
/// an id or a message from etcd that slipped into the page as markup would
/// still run nothing. Not framed, and no form posts anywhere.
pub(super) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// An embedded file with the headers every part of the page carries. The
/// browser asks again each time (`no-cache`), so a node upgraded under an
/// open tab serves its own script after a reload.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

pub(super) async fn page() -> Response {
    asset("text/html; charset=utf-8", PAGE)
}

pub(super) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub(super) async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}
