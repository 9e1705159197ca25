//! Plugin quarantine, per client: a client whose requests keep driving a plugin configuration
//! into its CPU deadline (a loop, a pathological token) would hold a worker thread for `cpu_ms` on
//! each such request. After `after` deadline hits from one client within `within_s` seconds, that
//! client's requests do not call the plugin for `for_s` seconds: its failure policy applies at
//! once. Then one trial call of that client is let through; if it finishes in time the quarantine
//! ends, otherwise it starts again. Every other client's requests still call the plugin, so a
//! slow input costs its sender, not everybody.
//!
//! A client is the authenticated consumer once known, else the client address. At most
//! [`MAX_CLIENTS`] clients are tracked per configuration (the least recently seen go first), and
//! a configuration that tracks none costs one atomic load per call.

use crate::config::QuarantineSettings;
use crate::health::now_ms;
use parking_lot::Mutex;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Most clients with deadline hits or a quarantine tracked per plugin configuration.
pub(crate) const MAX_CLIENTS: usize = 10_000;

/// Who a call is for, as the quarantine tells clients apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ClientKey {
    /// The authenticated consumer (a hash of its id, which stays the same across reloads).
    Consumer(u64),
    /// The client address.
    Ip(IpAddr),
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientKey::Consumer(h) => write!(f, "consumer #{h:016x}"),
            ClientKey::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// One client's hits and quarantine.
#[derive(Debug, Default)]
struct ClientState {
    window_start: u64,
    hits: u32,
    /// End of the quarantine, ms since the epoch; 0 when not quarantined.
    until: u64,
    /// A trial call is running.
    trial: bool,
}

/// The quarantine state of one plugin configuration (kept while its module is unchanged).
#[derive(Debug)]
pub(crate) struct Quarantine {
    /// How many clients `clients` holds: 0 on the fast path, where nothing is locked.
    tracked: AtomicUsize,
    clients: Mutex<lru::LruCache<ClientKey, ClientState>>,
}

impl Default for Quarantine {
    fn default() -> Self {
        let cap = NonZeroUsize::new(MAX_CLIENTS).expect("not zero");
        Quarantine { tracked: AtomicUsize::new(0), clients: Mutex::new(lru::LruCache::new(cap)) }
    }
}

impl Quarantine {
    /// Whether any client has deadline hits or a quarantine (then calls need their [`ClientKey`]).
    pub(crate) fn tracking(&self) -> bool {
        self.tracked.load(Ordering::Acquire) > 0
    }

    /// Whether a call for `client` may run now: the client is not quarantined, or this is its one
    /// trial after the cool-down.
    pub(crate) fn admits(&self, client: ClientKey) -> bool {
        let mut clients = self.clients.lock();
        let Some(c) = clients.get_mut(&client) else { return true };
        if c.until == 0 {
            return true;
        }
        if now_ms() >= c.until && !c.trial {
            c.trial = true;
            return true;
        }
        false
    }

    /// Records how an admitted call for `client` ended.
    pub(crate) fn record(&self, client: ClientKey, deadline_hit: bool, s: &QuarantineSettings, plugin: &str) {
        let mut clients = self.clients.lock();
        if let Some(c) = clients.get_mut(&client)
            && c.until != 0
            && c.trial
        {
            c.trial = false;
            if deadline_hit {
                c.until = now_ms() + s.for_s * 1000;
                tracing::warn!(plugin, %client, for_s = s.for_s, "plugin trial call hit its deadline; client quarantined again");
            } else {
                clients.pop(&client);
                tracing::warn!(plugin, %client, "plugin quarantine ended: a trial call finished in time");
            }
        } else if deadline_hit && s.after > 0 {
            let now = now_ms();
            let c = clients.get_or_insert_mut(client, ClientState::default);
            if now.saturating_sub(c.window_start) > s.within_s * 1000 {
                (c.window_start, c.hits) = (now, 0);
            }
            c.hits += 1;
            if c.hits >= s.after && c.until == 0 {
                c.until = now + s.for_s * 1000;
                tracing::warn!(
                    plugin,
                    %client,
                    hits = c.hits,
                    within_s = s.within_s,
                    for_s = s.for_s,
                    "plugin quarantined for a client: its requests keep hitting the CPU deadline; its failure \
                     policy applies to them without calling the plugin"
                );
            }
        }
        self.tracked.store(clients.len(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> ClientKey {
        ClientKey::Ip(IpAddr::from([203, 0, 113, last]))
    }

    #[test]
    fn hits_quarantine_their_client_only_and_a_good_trial_ends_it() {
        let s = QuarantineSettings { after: 3, within_s: 10, for_s: 0 };
        let q = Quarantine::default();
        assert!(!q.tracking(), "nothing to track: the fast path");
        for _ in 0..3 {
            assert!(q.admits(ip(1)));
            q.record(ip(1), true, &s, "p");
        }
        assert!(q.tracking());
        assert!(q.admits(ip(2)), "another client still calls the plugin");
        assert!(q.admits(ip(1)), "for_s = 0: the trial is due at once");
        assert!(!q.admits(ip(1)), "only one trial at a time");
        q.record(ip(1), false, &s, "p");
        assert!(q.admits(ip(1)), "a call in time ends it");
        assert!(!q.tracking(), "and forgets the client");
    }

    #[test]
    fn the_number_of_tracked_clients_is_bounded() {
        let s = QuarantineSettings { after: 1, within_s: 10, for_s: 60 };
        let q = Quarantine::default();
        for i in 0..(MAX_CLIENTS as u64 + 100) {
            q.record(ClientKey::Consumer(i), true, &s, "p");
        }
        assert_eq!(q.tracked.load(Ordering::Acquire), MAX_CLIENTS);
        assert!(!q.admits(ClientKey::Consumer(MAX_CLIENTS as u64 + 99)), "the newest are kept");
    }
}
