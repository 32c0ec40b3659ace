//! The limiter against the real Redis on the machine (`REDIS_URL`, default
//! `redis://127.0.0.1:6379`), and against a Redis of its own that goes away
//! and comes back. A Redis that cannot be reached fails the test: `.ci/run`
//! starts one.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anchor_ratelimit::{Limiter, Rate};

fn url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn prefix() -> String {
    format!("test-{:016x}", std::process::id() as u64 * 1_000_003 + Instant::now().elapsed().as_nanos() as u64)
}

async fn reachable(url: &str) {
    let client = redis::Client::open(url).expect("url");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("Redis at {url} cannot be reached ({e}); start it (see .ci/run)"));
    let pong: String = redis::cmd("PING").query_async(&mut connection).await.expect("ping");
    assert_eq!(pong, "PONG");
}

#[tokio::test]
async fn two_replicas_share_one_limit_through_redis() {
    reachable(&url()).await;
    let prefix = prefix();
    let (a, b) = (Limiter::redis(&url(), &prefix).expect("a"), Limiter::redis(&url(), &prefix).expect("b"));
    assert!(a.shared() && b.shared());
    let rate = Rate::per_minute(10);
    let mut admitted = 0;
    for i in 0..20 {
        let replica = if i % 2 == 0 { &a } else { &b };
        if replica.admit("portal.links", "192.0.2.7", rate).await.is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 10, "ten in all, whichever replica was asked");
    let wait = b.admit("portal.links", "192.0.2.7", rate).await.expect_err("over the limit");
    assert!(wait > Duration::from_secs(5) && wait <= Duration::from_secs(6), "{wait:?}");
    assert!(a.admit("portal.links", "192.0.2.8", rate).await.is_ok(), "another key has its own budget");
    assert!(a.admit("oidc.starts", "192.0.2.7", rate).await.is_ok(), "another limit has its own budget");
}

/// A redis-server of the test's own, on a free port.
struct OwnRedis {
    child: Child,
    port: u16,
}

impl OwnRedis {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (Debian's redis-server package)");
        Self { child, port }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn ready(&self) {
        for _ in 0..100 {
            if let Ok(client) = redis::Client::open(self.url())
                && client.get_multiplexed_async_connection().await.is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server on {} did not start", self.port);
    }

    fn stop(self) {}
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn when_redis_goes_away_limits_hold_per_process_and_nothing_fails_then_sharing_resumes() {
    let port = TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let redis = OwnRedis::start(port);
    redis.ready().await;
    let url = redis.url();
    let (a, b) = (Limiter::redis(&url, "t").expect("a"), Limiter::redis(&url, "t").expect("b"));
    let rate = Rate::per_minute(4);
    for replica in [&a, &b, &a, &b] {
        assert!(replica.admit("l", "k", rate).await.is_ok());
    }
    assert!(a.admit("l", "k", rate).await.is_err(), "shared: four in all");

    redis.stop();
    let started = Instant::now();
    let mut admitted = 0;
    for _ in 0..6 {
        if a.admit("l", "k", rate).await.is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 4, "counted in this process, with the same limit");
    assert!(started.elapsed() < Duration::from_secs(2), "no request waits long: {:?}", started.elapsed());

    // Back again (empty): after the cool-down the replicas share again.
    let redis = OwnRedis::start(port);
    redis.ready().await;
    tokio::time::sleep(anchor_ratelimit::REDIS_COOL_DOWN + Duration::from_millis(200)).await;
    let mut admitted = 0;
    for replica in [&a, &b, &a, &b, &a, &b] {
        if replica.admit("l", "fresh", rate).await.is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 4, "shared again");
    redis.stop();
}
