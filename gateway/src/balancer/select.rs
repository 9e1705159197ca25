//! Target selection as a `pingora-load-balancing` [`BackendSelection`]: each target is a
//! [`Backend`] whose `ext` holds its [`Slot`] (its place in the upstream and its health), and
//! [`Picks`] yields the targets in the order a request should try them, skipping unhealthy ones:
//!
//! - smooth weighted round-robin (nginx's: weights 100/100/50 interleave as a b a c b, not in runs);
//! - consistent hashing on a `pingora-ketama` ring, walked clockwise from the request's key;
//! - least-connections and latency: the lowest `cost × (in flight + 1) / weight`, ties shared
//!   round-robin.
//!
//! The crate's own selectors are not used as they are: its round-robin runs in blocks rather than
//! interleaved, it has no least-connections or latency, and its ketama selector gives every weight
//! unit 160 points (10 million for Kong's largest weight) where Kong's `slots` sets the density.

use crate::health::TargetHealth;
use pingora_ketama::{Bucket, Continuum};
use pingora_load_balancing::Backend;
use pingora_load_balancing::selection::{BackendIter, BackendSelection};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Ring points `pingora-ketama` places per unit of bucket weight.
const POINTS_PER_WEIGHT: u64 = 160;

/// What a target's [`Backend`] carries: its index in the upstream's targets and its health.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    /// Index in [`super::Upstream::targets`].
    pub(crate) index: usize,
    /// Health, in-flight requests and latency, shared across configuration versions.
    pub(crate) health: Arc<TargetHealth>,
}

/// How an upstream orders its targets for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Algorithm {
    /// Smooth weighted round-robin.
    RoundRobin,
    /// A ring with about `weight × slots / 1000` points per target.
    ConsistentHashing {
        /// Kong's `slots`: the ring's density.
        slots: u32,
    },
    /// The fewest requests in flight, relative to weight.
    LeastConnections,
    /// The lowest moving-average response time times requests in flight, relative to weight.
    Latency,
}

impl Algorithm {
    /// Kong's `algorithm` name, with its `slots`.
    pub(crate) fn parse(name: &str, slots: u32) -> Algorithm {
        match name {
            "consistent-hashing" => Algorithm::ConsistentHashing { slots },
            "least-connections" => Algorithm::LeastConnections,
            "latency" => Algorithm::Latency,
            _ => Algorithm::RoundRobin,
        }
    }
}

/// The targets of one upstream (weight above 0, in configuration order) and the balancing state.
#[derive(Debug)]
pub(crate) struct Selector {
    backends: Vec<Backend>,
    /// Each backend's slot, as its `ext` holds it: read per pick, so not through the type map.
    slots: Vec<Slot>,
    algorithm: Algorithm,
    ring: Option<Ring>,
    /// Smooth round-robin's current weights.
    current: parking_lot::Mutex<Vec<i64>>,
}

/// A consistent-hashing ring and the position (in [`Selector`]'s lists) of each of its addresses.
struct Ring {
    continuum: Continuum,
    position_of: HashMap<std::net::SocketAddr, usize>,
    points: usize,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ring({} points)", self.points)
    }
}

/// The slot a backend made by the gateway carries.
pub(crate) fn slot(backend: &Backend) -> &Slot {
    backend.ext.get::<Slot>().expect("every backend of an upstream has a slot")
}

impl BackendSelection for Selector {
    type Iter = Picks;
    type Config = Algorithm;

    fn build_with_config(backends: &BTreeSet<Backend>, algorithm: &Algorithm) -> Selector {
        let mut backends: Vec<Backend> = backends.iter().filter(|b| b.weight > 0).cloned().collect();
        backends.sort_by_key(|b| slot(b).index);
        let slots: Vec<Slot> = backends.iter().map(|b| slot(b).clone()).collect();
        let ring = match algorithm {
            Algorithm::ConsistentHashing { slots } => Ring::new(&backends, *slots),
            _ => None,
        };
        let current = parking_lot::Mutex::new(vec![0; backends.len()]);
        Selector { backends, slots, algorithm: *algorithm, ring, current }
    }

    fn build(backends: &BTreeSet<Backend>) -> Selector {
        Selector::build_with_config(backends, &Algorithm::RoundRobin)
    }

    /// `key` is the request's hash key for consistent hashing (four bytes), or empty.
    fn iter(self: &Arc<Self>, key: &[u8]) -> Picks {
        let ring_position = match (&self.ring, key.len()) {
            (Some(ring), 4) => Some(ring.continuum.node_idx(key)),
            _ => None,
        };
        Picks { selector: self.clone(), ring_position, steps: 0, last: None, earlier: Vec::new() }
    }
}

impl Ring {
    /// Points per target as Kong's `slots` sets them (at least one bucket-weight unit), placed by
    /// the target's own address only, so adding a target moves only the keys it takes.
    fn new(backends: &[Backend], slots: u32) -> Option<Ring> {
        let mut buckets = Vec::with_capacity(backends.len());
        let mut position_of = HashMap::with_capacity(backends.len());
        let mut points = 0;
        for (position, b) in backends.iter().enumerate() {
            let addr = b.addr.as_inet()?;
            let weight = (b.weight as u64 * u64::from(slots) / 1000).div_ceil(POINTS_PER_WEIGHT).max(1);
            let weight = u32::try_from(weight).unwrap_or(u32::MAX / POINTS_PER_WEIGHT as u32);
            points += weight as usize * POINTS_PER_WEIGHT as usize;
            buckets.push(Bucket::new(*addr, weight));
            position_of.insert(*addr, position);
        }
        Some(Ring { continuum: Continuum::new(&buckets), position_of, points })
    }
}

impl Selector {
    /// Whether target `i` (a position in `self.slots`) may take a request now.
    fn healthy(&self, i: usize) -> bool {
        self.slots[i].health.is_healthy()
    }

    /// Smooth weighted round-robin among the positions `ok` accepts.
    fn smooth(&self, ok: impl Fn(usize) -> bool) -> Option<usize> {
        let mut current = self.current.lock();
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for (i, b) in self.backends.iter().enumerate() {
            if !ok(i) {
                continue;
            }
            current[i] += b.weight as i64;
            total += b.weight as i64;
            if best.is_none_or(|x| current[i] > current[x]) {
                best = Some(i);
            }
        }
        let best = best?;
        current[best] -= total;
        Some(best)
    }

    /// The position `ok` accepts with the least `cost × (in flight + 1) / weight`; ties go
    /// round-robin, so equal targets share the load.
    fn least(&self, ok: impl Fn(usize) -> bool, cost: impl Fn(&TargetHealth) -> u64) -> Option<usize> {
        let score = |i: usize| {
            let health = &self.slots[i].health;
            let load = health.connections.load(Ordering::Acquire) as u128 + 1;
            cost(health) as u128 * load * 65_536 / self.backends[i].weight.max(1) as u128
        };
        let best = (0..self.backends.len()).filter(|&i| ok(i)).map(score).min()?;
        self.smooth(|i| ok(i) && score(i) == best)
    }
}

/// The targets of one request, best first: healthy ones only, each once.
pub(crate) struct Picks {
    selector: Arc<Selector>,
    /// Where the ring walk is, for a hashed request.
    ring_position: Option<usize>,
    steps: usize,
    /// The last position yielded, and those before it (kept apart: most requests take one).
    last: Option<usize>,
    earlier: Vec<usize>,
}

impl Picks {
    fn yielded(&self, i: usize) -> bool {
        self.last == Some(i) || self.earlier.contains(&i)
    }

    fn next_position(&mut self) -> Option<usize> {
        let s = &*self.selector;
        if let (Some(ring), Some(mut position)) = (&s.ring, self.ring_position) {
            let mut found = None;
            while found.is_none() && self.steps < ring.points {
                self.steps += 1;
                let Some(addr) = ring.continuum.get_addr(&mut position) else { break };
                let i = ring.position_of[addr];
                found = (s.healthy(i) && !self.yielded(i)).then_some(i);
            }
            self.ring_position = Some(position);
            return found;
        }
        let fresh = |i: usize| s.healthy(i) && !self.yielded(i);
        match s.algorithm {
            Algorithm::LeastConnections => s.least(fresh, |_| 1),
            Algorithm::Latency => s.least(fresh, |h| h.latency_us() + 1),
            _ => s.smooth(fresh),
        }
    }
}

impl BackendIter for Picks {
    fn next(&mut self) -> Option<&Backend> {
        let i = self.next_position()?;
        if let Some(last) = self.last.replace(i) {
            self.earlier.push(last);
        }
        Some(&self.selector.backends[i])
    }
}
