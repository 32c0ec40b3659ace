//! What the edge agent's end-to-end tests share: the agent binary, a
//! running agent that is killed with the test, and polling.

use std::{
    process::{Child, Command},
    time::Duration,
};

/// The agent binary, keeping its state in `state`.
pub(crate) fn agent(state: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_anchor-edge-agent"));
    command.arg("--state-dir").arg(state);
    command
}

/// A running agent, killed when dropped.
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `probe` every 200 ms until it answers, for at most a minute.
pub(crate) async fn poll<F, Fut, T>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
