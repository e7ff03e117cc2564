//! One Ayrshare User Profile (a brand), named by the `Profile-Key` header (`""`: the primary
//! profile): its own world and ledger, fault set, request budget, stats, webhook registrations
//! and deliveries. [`Sim`](crate::sim::Sim) keeps one per key, made on first use; a reset
//! replaces it with a fresh one.
//!
//! The primary profile's world is generated from the configured seed; a named profile's from
//! that seed mixed with its key, so each brand has posts, comments and ids of its own, the same
//! on every run.

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::SimConfig;
use crate::delivery::Deliveries;
use crate::faults::{ActiveFaults, FaultSet};
use crate::ids;
use crate::rate_limit::RateLimiter;
use crate::stats::Stats;
use crate::webhooks::Webhooks;
use crate::world::{self, World};

pub(crate) struct Profile {
    /// The `Profile-Key` (`""`: the primary profile).
    pub key: String,
    /// The seed of its world and of its arrivals.
    pub seed: u64,
    world: RwLock<World>,
    faults: RwLock<Arc<ActiveFaults>>,
    pub limiter: RateLimiter,
    pub stats: Stats,
    pub webhooks: Webhooks,
    pub deliveries: Deliveries,
}

impl Profile {
    /// A profile as it starts: its seeded world at `anchor`, the start-up fault set, a full
    /// budget, no stats, webhooks or deliveries.
    pub fn new(cfg: &SimConfig, key: &str, anchor: DateTime<Utc>) -> Self {
        let seed = if key.is_empty() {
            cfg.seed
        } else {
            ids::mix(cfg.seed ^ ids::digest(key))
        };
        Profile {
            key: key.to_owned(),
            seed,
            world: RwLock::new(world::generate(cfg, seed, anchor)),
            faults: RwLock::new(Arc::new(ActiveFaults::new(cfg.faults.clone()))),
            limiter: RateLimiter::new(cfg.rate_limit, Duration::from_secs(cfg.rate_window_seconds)),
            stats: Stats::new(),
            webhooks: Webhooks::default(),
            deliveries: Deliveries::default(),
        }
    }

    pub fn world(&self) -> RwLockReadGuard<'_, World> {
        self.world.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn world_mut(&self) -> RwLockWriteGuard<'_, World> {
        self.world.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The fault set in force.
    pub fn faults(&self) -> Arc<ActiveFaults> {
        self.faults
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the fault set.
    pub fn set_faults(&self, set: FaultSet) {
        *self.faults.write().unwrap_or_else(PoisonError::into_inner) =
            Arc::new(ActiveFaults::new(set));
    }

    /// When something created now becomes visible to GET requests.
    pub fn visible_from(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now.checked_add_signed(self.faults().cache_delay())
            .unwrap_or(now)
    }
}
