//! Logs, metrics and the shutdown signal: what every process sets up once.
//!
//! Logs are `tracing` events, printed as text for people or as one JSON
//! object per line for collectors. Metrics use the `metrics` facade and are
//! rendered in the Prometheus text format on a listener of their own, never
//! on the public one.

use std::{io::IsTerminal, sync::OnceLock};

use anchor_config::LogFormat;
use axum::{Router, routing::get};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Installs the global log subscriber. Logs go to stderr, so stdout stays
/// free for command output. Calling it twice is harmless (tests do).
pub fn init_logging(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(filter));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Text => registry
            .with(fmt::layer().with_ansi(std::io::stderr().is_terminal()).with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().flatten_event(true).with_current_span(true).with_writer(std::io::stderr))
            .try_init(),
    };
    // Already installed (a second app in the same test process): keep the first.
    let _ = result;
}

/// The process-wide Prometheus recorder. Several apps in one process (as in
/// `anchor dev` and in tests) share it.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("duration_seconds".into()),
                    &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0],
                )
                .expect("bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // If another recorder is already global (a library's test harness),
            // ours still renders what is recorded through it; nothing to do.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Serves `GET /metrics` on `listener` until `shutdown` is cancelled.
pub async fn serve_metrics(listener: TcpListener, shutdown: CancellationToken) -> std::io::Result<()> {
    let handle = metrics_handle();
    let app = Router::new().route("/metrics", get(move || std::future::ready(handle.render())));
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await
}

/// Completes when the process is asked to stop: Ctrl-C (SIGINT) or SIGTERM,
/// which is how process supervisors and Kubernetes stop a process.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops this process");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// Cancels `shutdown` when the process is asked to stop (see [`shutdown_signal`]).
pub fn cancel_on_shutdown_signal(shutdown: CancellationToken) {
    tokio::spawn(async move {
        shutdown_signal().await;
        shutdown.cancel();
    });
}
