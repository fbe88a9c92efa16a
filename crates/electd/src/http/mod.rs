//! The HTTP surface: the seed's plain-text answer, JSON status, the
//! election's history, health checks for load balancers, Prometheus
//! metrics, leader-change events, and the hand-over endpoint.
//!
//! Every answer is computed from the election's shared [`elect::Status`] at
//! the instant of the request, so a leader paused past its deadline says
//! "follower" on its first request after waking.
//!
//! Bottom up: `answers` (the JSON bodies and the seed's words), `state`
//! (what handlers share), `read` and `admin` (the handlers), `server` (the
//! accept loop), and here the routes.

mod admin;
mod answers;
mod read;
mod server;
mod state;

use axum::Router;
use axum::routing::{get, post};

use self::read::{
    health_follower, health_leader, healthz, history, livez, metrics, not_found, seed_answer,
    status, watch,
};
pub use self::server::{Limits, serve};
pub use self::state::AppState;

/// The main port's routes; with `admin`, also `/metrics` and `/v1/resign`.
pub fn router(state: AppState, admin: bool) -> Router {
    let mut router = Router::new()
        .route("/", get(seed_answer))
        .route("/v1/status", get(status))
        .route("/v1/watch", get(watch))
        .route("/v1/history", get(history))
        .route("/healthz", get(healthz))
        .route("/livez", get(livez))
        .route("/health/leader", get(health_leader))
        .route("/health/follower", get(health_follower));
    if admin {
        router = with_admin(router);
    }
    router.fallback(not_found).with_state(state)
}

/// The `--admin-listen` port's routes.
pub fn admin_router(state: AppState) -> Router {
    with_admin(Router::new())
        .fallback(not_found)
        .with_state(state)
}

fn with_admin(router: Router<AppState>) -> Router<AppState> {
    router
        .route("/metrics", get(metrics))
        .route("/v1/resign", post(admin::resign))
        .route("/v1/drain", post(admin::drain))
        .route("/v1/undrain", post(admin::undrain))
}
