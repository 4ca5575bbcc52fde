//! Quota planning and pacing of one account's endpoint (SPEC section 10).
//!
//! WeChat counts each API's calls per appid and day, and other systems of the
//! same appid draw on the same count. So before an endpoint's first request in
//! a run, the client asks `/cgi-bin/openapi/quota/get` and sends at most
//! `remain - quota_reserve` requests (retries included); the client's chunks
//! come newest first, so the days users look at are the ones sent. Requests
//! are also spaced so that no `refresh_second` window holds more than
//! `call_count` of them (else WeChat answers 45011).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::config::QuotaReserve;
use crate::endpoint::Endpoint;

/// How an account's client plans its quota.
#[derive(Debug, Clone, Copy)]
pub struct QuotaPolicy {
    /// Look the quota up (`quota_check`); when false, only 45009 stops an endpoint.
    pub check: bool,
    /// Left to other systems (`quota_reserve`).
    pub reserve: QuotaReserve,
}

/// One quota look-up and what this run made of it.
#[derive(Debug, Clone)]
pub struct QuotaSeen {
    pub endpoint: Endpoint,
    pub daily_limit: u64,
    pub used: u64,
    pub remain: u64,
    /// `quota_reserve` applied to `daily_limit`.
    pub reserve: u64,
    /// `remain - reserve`: the most this run may send today.
    pub budget: u64,
    /// Requests sent against the budget in this run.
    pub sent: u64,
    /// `rate_limit.call_count` per `rate_limit.refresh_second`, when given.
    pub call_count: Option<u64>,
    pub refresh_second: Option<u64>,
    pub seen_at: DateTime<Utc>,
}

impl QuotaSeen {
    /// Nothing more may be sent today.
    pub fn spent(&self) -> bool {
        self.sent >= self.budget
    }
}

/// The plan of one endpoint in one run: shared by its chunks in flight.
pub(crate) struct EndpointQuota {
    /// None when the look-up failed or was off: no budget, no pacing.
    seen: Option<QuotaSeen>,
    /// Requests taken from the budget.
    sent: AtomicU64,
    pacer: Option<Pacer>,
}

impl EndpointQuota {
    pub(crate) fn new(seen: Option<QuotaSeen>) -> EndpointQuota {
        let pacer = seen.as_ref().and_then(|s| {
            let count = usize::try_from(s.call_count?).ok()?;
            Some(Pacer::new(count, Duration::from_secs(s.refresh_second?)))
        });
        EndpointQuota {
            seen,
            sent: AtomicU64::new(0),
            pacer,
        }
    }

    /// Takes one request from the budget; false when it is used up.
    pub(crate) fn take(&self) -> bool {
        let Some(seen) = &self.seen else {
            return true;
        };
        self.sent
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < seen.budget).then_some(n + 1)
            })
            .is_ok()
    }

    /// Why `take` said no, for the chunk's message.
    pub(crate) fn spent_reason(&self) -> String {
        match &self.seen {
            Some(s) => format!(
                "not sent: today's share of the daily quota is used (remain {} at the start of the run, {} kept in reserve for other systems, {} sent)",
                s.remain,
                s.reserve,
                self.sent.load(Ordering::SeqCst)
            ),
            None => "not sent".to_string(),
        }
    }

    /// Waits until one more request fits in the rate limit.
    pub(crate) async fn pace(&self) {
        if let Some(pacer) = &self.pacer {
            let at = pacer.reserve();
            tokio::time::sleep_until(at).await;
        }
    }

    /// The look-up with the requests sent so far.
    pub(crate) fn seen(&self) -> Option<QuotaSeen> {
        let mut seen = self.seen.clone()?;
        seen.sent = self.sent.load(Ordering::SeqCst);
        Some(seen)
    }
}

/// Hands out send times so that any `window` holds at most `count` of them.
struct Pacer {
    count: usize,
    window: Duration,
    /// Reserved send times, non-decreasing; only the last `count` matter.
    slots: Mutex<VecDeque<Instant>>,
}

impl Pacer {
    fn new(count: usize, window: Duration) -> Pacer {
        Pacer {
            count: count.max(1),
            window,
            slots: Mutex::new(VecDeque::new()),
        }
    }

    /// The next free send time (now, or later), reserved.
    fn reserve(&self) -> Instant {
        // WeChat counts arrivals, not sends: keep a margin for the network.
        let margin = Duration::from_millis(50) + self.window / 100;
        let now = Instant::now();
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        while slots.len() > self.count {
            slots.pop_front();
        }
        let mut at = slots.back().map_or(now, |last| now.max(*last));
        if slots.len() == self.count {
            at = at.max(slots[0] + self.window + margin);
        }
        slots.push_back(at);
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(remain: u64, budget: u64) -> QuotaSeen {
        QuotaSeen {
            endpoint: Endpoint::ALL[0],
            daily_limit: 100,
            used: 100 - remain,
            remain,
            reserve: remain - budget,
            budget,
            sent: 0,
            call_count: None,
            refresh_second: None,
            seen_at: Utc::now(),
        }
    }

    #[test]
    fn the_budget_is_taken_exactly() {
        let q = EndpointQuota::new(Some(seen(12, 3)));
        assert!(q.take() && q.take() && q.take());
        assert!(!q.take());
        assert_eq!(q.seen().unwrap().sent, 3);
        assert!(EndpointQuota::new(None).take());
    }

    #[test]
    fn reserve_is_a_count_or_a_rounded_up_share() {
        assert_eq!(QuotaReserve::Percent(10).of(1000), 100);
        assert_eq!(QuotaReserve::Percent(10).of(15), 2);
        assert_eq!(QuotaReserve::Count(7).of(1000), 7);
    }

    #[tokio::test]
    async fn the_pacer_keeps_each_window_within_the_count() {
        let pacer = Pacer::new(3, Duration::from_secs(1));
        let times: Vec<Instant> = (0..7).map(|_| pacer.reserve()).collect();
        for i in 3..times.len() {
            assert!(times[i] - times[i - 3] > Duration::from_secs(1));
        }
        assert!(times[2] - times[0] < Duration::from_millis(100));
    }
}
