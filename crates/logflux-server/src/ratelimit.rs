//! Per-API-key token buckets: `rate` requests per second with bursts up to `burst`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::http::ApiError;

#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `rate` 0 disables limiting.
    pub(crate) fn new(rate: u32, burst: u32) -> Self {
        RateLimiter {
            rate: f64::from(rate),
            burst: f64::from(burst.max(rate).max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `key`'s bucket, or says when to retry.
    pub(crate) fn check(&self, key: &str) -> Result<(), ApiError> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), ApiError> {
        if self.rate == 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().expect("lock");
        if buckets.len() > 100_000 {
            buckets.clear();
        }
        let (tokens, last) = buckets.entry(key.to_owned()).or_insert((self.burst, now));
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * self.rate).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return Ok(());
        }
        let wait = ((1.0 - *tokens) / self.rate).ceil().max(1.0) as u64;
        let now_s = logflux_proto::timefmt::now_ns() / 1_000_000_000;
        Err(ApiError::RateLimited {
            retry_after: wait,
            limit: self.rate as u32,
            reset: now_s as u64 + wait,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_refills_per_key() {
        let l = RateLimiter::new(10, 20);
        let t0 = Instant::now();
        for _ in 0..20 {
            l.check_at("a", t0).unwrap();
        }
        assert!(matches!(
            l.check_at("a", t0),
            Err(ApiError::RateLimited {
                retry_after: 1,
                limit: 10,
                ..
            })
        ));
        l.check_at("b", t0).unwrap();
        // 0.5 s later, five more.
        let t1 = t0 + Duration::from_millis(500);
        for _ in 0..5 {
            l.check_at("a", t1).unwrap();
        }
        assert!(l.check_at("a", t1).is_err());
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let l = RateLimiter::new(0, 0);
        for _ in 0..10_000 {
            l.check("a").unwrap();
        }
    }
}
