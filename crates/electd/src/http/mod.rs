//! The HTTP surface: the seed's plain-text answer, JSON status, the
//! election's history, health checks for load balancers, Prometheus
//! metrics, leader-change events, the hand-over endpoint, and a live web
//! view of the election.
//!
//! Every answer is computed from the election's shared [`elect::Status`] at
//! the instant of the request, so a leader paused past its deadline says
//! "follower" on its first request after waking.
//!
//! Bottom up: `answers` (the JSON bodies and the seed's words), `state`
//! (what handlers share), `read`, `admin` and `ui` (the handlers), `server`
//! (the accept loop), and here the routes.

mod admin;
mod answers;
mod read;
mod server;
mod shards;
mod state;
mod ui;

use axum::Router;
use axum::routing::{get, post};

use self::read::{
    health_follower, health_leader, healthz, history, livez, metrics, not_found, seed_answer,
    status, watch,
};
pub use self::server::{Limits, serve};
pub use self::state::AppState;

/// The main port's routes; with `admin`, also `/metrics` and the admin
/// `POST`s.
pub fn router(state: AppState, admin: bool) -> Router {
    let mut router = with_page(Router::new())
        .route("/", get(seed_answer))
        .route("/healthz", get(healthz))
        .route("/livez", get(livez))
        .route("/health/leader", get(health_leader))
        .route("/health/follower", get(health_follower))
        .route("/health/shard/{shard}", get(shards::health_shard));
    if admin {
        router = with_admin(router);
    }
    router.fallback(not_found).with_state(state)
}

/// The `--admin-listen` port's routes: the admin endpoints, and the page
/// with what it reads, so that a page served here can act (a page on the
/// main port cannot POST to another origin).
pub fn admin_router(state: AppState) -> Router {
    with_admin(with_page(Router::new()))
        .fallback(not_found)
        .with_state(state)
}

/// `/ui`, its assets, and the reads the page makes from its own origin.
fn with_page(router: Router<AppState>) -> Router<AppState> {
    router
        .route("/ui", get(ui::page))
        .route("/ui/app.js", get(ui::script))
        .route("/ui/app.css", get(ui::style))
        .route("/v1/status", get(status))
        .route("/v1/watch", get(watch))
        .route("/v1/history", get(history))
        .route("/v1/shards", get(shards::shards))
        .route("/v1/shards/{shard}", get(shards::shard))
}

fn with_admin(router: Router<AppState>) -> Router<AppState> {
    router
        .route("/metrics", get(metrics))
        .route("/v1/resign", post(admin::resign))
        .route("/v1/drain", post(admin::drain))
        .route("/v1/undrain", post(admin::undrain))
}

#[cfg(test)]
mod tests {
    //! The page and its assets as a browser gets them, over real HTTP from
    //! each router, on the library's in-memory election.

    use std::sync::Arc;

    use elect::Config;
    use elect::testing::start_single;
    use tokio::net::TcpListener;

    use super::*;
    use crate::metrics::Metrics;

    /// Serves `app` on a loopback port until the test ends; its base URL.
    async fn serving(app: Router) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(serve(
            listener,
            app,
            Limits::default(),
            std::future::pending(),
        ));
        url
    }

    fn state(dir: &std::path::Path) -> AppState {
        let config = Config::builder()
            .id("me")
            .api(elect::Api::V2)
            .journal(dir.join("journal"))
            .build()
            .unwrap();
        let (election, _store) = start_single(config).unwrap();
        AppState::new(
            Arc::new(election),
            Arc::new(Metrics::new(false, false)),
            None,
            None,
            false,
            "http://127.0.0.1:1",
        )
    }

    #[tokio::test]
    async fn every_listener_serves_the_page_with_a_strict_policy() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path());
        let http = harness::http().build().unwrap();
        for app in [
            router(state.clone(), true),
            router(state.clone(), false),
            admin_router(state),
        ] {
            let base = serving(app).await;
            for (path, content_type, holds) in [
                ("/ui", "text/html; charset=utf-8", "id=\"leader\""),
                (
                    "/ui/app.js",
                    "text/javascript; charset=utf-8",
                    "EventSource",
                ),
                ("/ui/app.css", "text/css; charset=utf-8", "focus-visible"),
            ] {
                let answer = http.get(format!("{base}{path}")).send().await.unwrap();
                assert_eq!(answer.status(), 200, "{base}{path}");
                let headers = answer.headers().clone();
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                assert_eq!(header("content-type").as_deref(), Some(content_type));
                assert_eq!(
                    header("content-security-policy").as_deref(),
                    Some(ui::CONTENT_SECURITY_POLICY)
                );
                assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"));
                assert_eq!(header("referrer-policy").as_deref(), Some("no-referrer"));
                assert!(
                    !headers
                        .keys()
                        .any(|name| name.as_str().starts_with("access-control-")),
                    "no cross-origin rules: {headers:?}"
                );
                assert!(answer.text().await.unwrap().contains(holds), "{path}");
            }
            // What the page reads, from the origin that served it.
            let status = http.get(format!("{base}/v1/status")).send().await.unwrap();
            assert_eq!(status.status(), 200, "{base}/v1/status");
            let beside = http.get(format!("{base}/ui/")).send().await.unwrap();
            assert_eq!(beside.status(), 404, "{base}/ui/");
        }
    }

    #[test]
    fn the_policy_allows_no_inline_code_and_the_page_needs_none() {
        assert!(!ui::CONTENT_SECURITY_POLICY.contains("unsafe"));
        assert!(ui::CONTENT_SECURITY_POLICY.starts_with("default-src 'none'"));
        let page = include_str!("ui/index.html");
        assert!(!page.contains("<script>"), "an inline script");
        assert!(!page.contains("<style"), "an inline stylesheet");
        assert!(!page.contains(" style="), "an inline style");
        assert!(
            !page
                .split_whitespace()
                .any(|word| word.starts_with("on") && word.contains('=')),
            "an inline event handler"
        );
        assert!(!page.contains("//"), "something from another origin");
    }
}
