//! Rate limits: the generic cell rate algorithm (GCRA), per key.
//!
//! A [`Rate`] of `limit` per `period` lets a key have `limit` events at once
//! and then one every `period / limit`: each key keeps one instant, its
//! theoretical arrival time (TAT); an event is admitted when the TAT is at
//! most `period - period / limit` ahead of now, and moves the TAT one
//! interval on. Refused, the caller learns how long to wait.
//!
//! [`Limiter::in_process`] keeps the TATs in this process (the default: one
//! process serves everything). [`Limiter::redis`] keeps them in Redis, read
//! and moved in one atomic script on the server's own clock, so every
//! replica of the gateway counts against the same limit. When Redis cannot
//! be reached (or answers slower than [`REDIS_PATIENCE`]), the limiter
//! counts in process for a while ([`REDIS_COOL_DOWN`]) and then tries Redis
//! again: the limits hold per replica meanwhile, and nothing fails.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

/// How long a limit check waits for Redis before counting in process.
pub const REDIS_PATIENCE: Duration = Duration::from_millis(250);

/// How long the limiter counts in process after Redis failed it.
pub const REDIS_COOL_DOWN: Duration = Duration::from_secs(5);

/// Keys the in-process limiter remembers at most (then the idle are dropped).
const CAPACITY: usize = 100_000;

/// `limit` events per `period`, all of them at once if need be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub limit: u32,
    pub period: Duration,
}

impl Rate {
    pub const fn per_minute(limit: u32) -> Self {
        Self { limit, period: Duration::from_secs(60) }
    }

    /// The time one event takes of the budget.
    fn interval(self) -> Duration {
        self.period / self.limit.max(1)
    }

    /// How far ahead of now the TAT may be for one more event.
    fn tolerance(self) -> Duration {
        self.period.saturating_sub(self.interval())
    }
}

/// Counts in this process.
#[derive(Debug, Default)]
struct Local {
    tats: Mutex<HashMap<String, Instant>>,
}

impl Local {
    fn admit(&self, key: &str, rate: Rate) -> Result<(), Duration> {
        let now = Instant::now();
        let mut tats = self.tats.lock().unwrap_or_else(PoisonError::into_inner);
        if tats.len() >= CAPACITY && !tats.contains_key(key) {
            tats.retain(|_, tat| *tat > now);
            if tats.len() >= CAPACITY {
                // Full of live keys: everyone waits a little rather than memory growing.
                return Err(rate.interval());
            }
        }
        let tat = tats.get(key).copied().filter(|t| *t > now).unwrap_or(now);
        let ahead = tat - now;
        if ahead > rate.tolerance() {
            return Err(ahead - rate.tolerance());
        }
        tats.insert(key.to_owned(), tat + rate.interval());
        Ok(())
    }
}

/// The script: the TAT read, checked and moved in one step, on Redis's own
/// clock (microseconds), the key expiring when its TAT has passed.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - now > tolerance then
  return tat - now - tolerance
end
local next = tat + interval
redis.call('SET', KEYS[1], next, 'PX', math.ceil((next - now) / 1000))
return 0
";

struct Redis {
    client: redis::Client,
    script: redis::Script,
    /// The shared connection, once made.
    connection: tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
    /// Counting in process until then (Redis failed us).
    cool_down: Mutex<Option<Instant>>,
    /// Prefix of every key: the installation's, so that installations may share a server.
    prefix: String,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl Redis {
    fn cooling(&self) -> bool {
        let mut until = self.cool_down.lock().unwrap_or_else(PoisonError::into_inner);
        match *until {
            Some(t) if t > Instant::now() => true,
            Some(_) => {
                *until = None;
                false
            }
            None => false,
        }
    }

    fn failed(&self, why: &str) {
        let mut until = self.cool_down.lock().unwrap_or_else(PoisonError::into_inner);
        if until.is_none() {
            tracing::warn!(error = why, "Redis is unreachable: rate limits count in this process for now");
        }
        *until = Some(Instant::now() + REDIS_COOL_DOWN);
    }

    /// The shared connection, made if there is none; whether it is new.
    async fn connection(&self) -> Result<(redis::aio::MultiplexedConnection, bool), String> {
        let mut slot = self.connection.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok((c.clone(), false));
        }
        let made = tokio::time::timeout(REDIS_PATIENCE, self.client.get_multiplexed_async_connection())
            .await
            .map_err(|_| "no connection within the patience".to_owned())?
            .map_err(|e| e.to_string())?;
        *slot = Some(made.clone());
        Ok((made, true))
    }

    /// `Ok(None)`: admitted; `Ok(Some(wait))`: refused; `Err`: Redis did not
    /// answer. A connection that broke (the server restarted, say) is made
    /// again once, at once.
    async fn admit(&self, name: &str, key: &str, rate: Rate) -> Result<Option<Duration>, String> {
        loop {
            let (mut connection, fresh) = self.connection().await?;
            let mut invocation = self.script.key(format!("{}:rl:{name}:{key}", self.prefix));
            invocation.arg(rate.interval().as_micros() as u64).arg(rate.tolerance().as_micros() as u64);
            let why = match tokio::time::timeout(REDIS_PATIENCE, invocation.invoke_async::<u64>(&mut connection)).await
            {
                Ok(Ok(0)) => return Ok(None),
                Ok(Ok(wait)) => return Ok(Some(Duration::from_micros(wait))),
                Ok(Err(e)) => e.to_string(),
                Err(_) => "no answer within the patience".to_owned(),
            };
            self.connection.lock().await.take();
            if fresh {
                return Err(why);
            }
        }
    }
}

/// Rate limits by name and key (`"portal.links"`, a source address).
#[derive(Debug, Clone, Default)]
pub struct Limiter {
    local: Arc<Local>,
    redis: Option<Arc<Redis>>,
}

/// Why Redis cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("redis_url: {0}")]
pub struct ConfigError(String);

impl Limiter {
    /// Counts in this process.
    pub fn in_process() -> Self {
        Self::default()
    }

    /// Counts in the Redis at `url` (`redis://host:6379/0`), under keys
    /// starting with `prefix`. Connects when first needed, so a Redis that
    /// is down at start delays nothing.
    pub fn redis(url: &str, prefix: &str) -> Result<Self, ConfigError> {
        let client = redis::Client::open(url).map_err(|e| ConfigError(e.to_string()))?;
        let redis = Redis {
            client,
            script: redis::Script::new(GCRA),
            connection: tokio::sync::Mutex::new(None),
            cool_down: Mutex::new(None),
            prefix: prefix.to_owned(),
        };
        Ok(Self { local: Arc::default(), redis: Some(Arc::new(redis)) })
    }

    /// Whether limits are shared through Redis (when it answers).
    pub fn shared(&self) -> bool {
        self.redis.is_some()
    }

    /// Counts one event of `key` under the limit `name`; `Err(wait)` when
    /// it is over `rate` and has to wait that long.
    pub async fn admit(&self, name: &str, key: &str, rate: Rate) -> Result<(), Duration> {
        if let Some(redis) = &self.redis
            && !redis.cooling()
        {
            match redis.admit(name, key, rate).await {
                Ok(None) => return Ok(()),
                Ok(Some(wait)) => return Err(wait),
                Err(why) => redis.failed(&why),
            }
        }
        self.local.admit(&format!("{name}:{key}"), rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_burst_then_one_per_interval_and_others_are_unaffected() {
        let local = Local::default();
        let rate = Rate { limit: 3, period: Duration::from_secs(60) };
        for _ in 0..3 {
            assert!(local.admit("a", rate).is_ok());
        }
        let wait = local.admit("a", rate).expect_err("over");
        assert!(wait > Duration::from_secs(19) && wait <= Duration::from_secs(20), "{wait:?}");
        assert!(local.admit("b", rate).is_ok());
    }

    #[test]
    fn the_budget_refills_evenly() {
        let local = Local::default();
        let rate = Rate { limit: 2, period: Duration::from_millis(200) };
        assert!(local.admit("a", rate).is_ok() && local.admit("a", rate).is_ok());
        assert!(local.admit("a", rate).is_err());
        std::thread::sleep(Duration::from_millis(110));
        assert!(local.admit("a", rate).is_ok(), "one interval later, one more");
        assert!(local.admit("a", rate).is_err());
    }

    #[tokio::test]
    async fn an_unreachable_redis_counts_in_process_without_failing() {
        // Port 1 on loopback: nothing listens.
        let limiter = Limiter::redis("redis://127.0.0.1:1/", "test").expect("url");
        let rate = Rate::per_minute(2);
        let started = Instant::now();
        assert!(limiter.admit("x", "k", rate).await.is_ok());
        assert!(limiter.admit("x", "k", rate).await.is_ok());
        assert!(limiter.admit("x", "k", rate).await.is_err(), "the limit holds in process");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }
}
