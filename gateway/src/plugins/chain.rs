//! Plugin instances and their scopes, resolved into chains once per configuration version: one
//! chain per route, one of the global plugins, and — only when consumer-scoped plugins exist —
//! chains per (route, consumer), computed on first use and cached.
//!
//! Kong's rules: one instance per plugin name per request, the most specific scope wins
//! (route+service+consumer, route+consumer, service+consumer, route+service, consumer, route,
//! service, global), higher priority runs first.

use super::module::{Accepted, Module};
use super::pending::Pending;
use super::quarantine::Quarantine;
use crate::config::ConfigErrors;
use crate::config::PluginEntry;
use crate::entities::Entities;
use crate::request::redact::Redactions;
use parking_lot::RwLock;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// One accepted `[[plugins]]` entry.
pub(crate) struct Configured {
    /// Its module.
    pub(crate) module: Arc<Module>,
    /// Configuration id, stable for the same module name and configuration.
    pub(crate) config_id: u64,
    /// The configuration as JSON.
    pub(crate) config_json: String,
    /// What it applies to.
    pub(crate) scope: Scope,
    /// Whether it needs the request body before access.
    pub(crate) needs_body: bool,
    /// The credential places it reads.
    redactions: Redactions,
    /// Whether its body-filter runs.
    pub(crate) filters_body: bool,
    /// Its quarantine state (kept while the module is unchanged).
    pub(crate) quarantine: Arc<Quarantine>,
}

impl Configured {
    /// Order in a chain: higher priority first, then by name.
    fn order_key(&self) -> (std::cmp::Reverse<i32>, &str) {
        (std::cmp::Reverse(self.module.priority), &self.module.name)
    }
}

/// What a plugin instance applies to: route, service and consumer indexes (unset: any).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Scope {
    /// Route index.
    pub(crate) route: Option<usize>,
    /// Service index.
    pub(crate) service: Option<usize>,
    /// Consumer index.
    pub(crate) consumer: Option<usize>,
}

impl Scope {
    /// Specificity for a request's route, service and consumer, 1 (most specific) to 8
    /// (global); `None` if it does not apply.
    fn rank(&self, route: Option<usize>, service: Option<usize>, consumer: Option<usize>) -> Option<u8> {
        let fits = |scope: Option<usize>, actual: Option<usize>| scope.is_none() || scope == actual;
        if !(fits(self.route, route) && fits(self.service, service) && fits(self.consumer, consumer)) {
            return None;
        }
        Some(match (self.route.is_some(), self.service.is_some(), self.consumer.is_some()) {
            (true, true, true) => 1,
            (true, false, true) => 2,
            (false, true, true) => 3,
            (true, true, false) => 4,
            (false, false, true) => 5,
            (true, false, false) => 6,
            (false, true, false) => 7,
            (false, false, false) => 8,
        })
    }
}

/// The plugins that run for a request, in order.
#[derive(Default)]
pub struct Chain {
    /// In run order.
    pub(crate) plugins: Vec<Arc<Configured>>,
    /// Some plugin needs the request body before access.
    pub(crate) needs_body: bool,
    /// Some plugin filters the response body (so its length may change).
    pub(crate) filters_body: bool,
    /// Some plugin has a log phase.
    pub(crate) logs: bool,
    /// A plugin of the chain whose module is still compiling: the chain does not run, and
    /// requests get its 503.
    pub(crate) pending: Option<Arc<Pending>>,
}

impl Chain {
    fn new(mut plugins: Vec<Arc<Configured>>, pending: Option<Arc<Pending>>) -> Chain {
        plugins.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
        let needs_body = plugins.iter().any(|p| p.needs_body);
        let filters_body = plugins.iter().any(|p| p.filters_body);
        let logs = plugins.iter().any(|p| p.module.phases.has(crate::request::Phase::Log));
        Chain { plugins, needs_body, filters_body, logs, pending }
    }

    /// Whether the rewrite and access phases have nothing to do: no plugins, none pending.
    pub(crate) fn is_empty(&self) -> bool {
        self.plugins.is_empty() && self.pending.is_none()
    }

    /// Index of the first plugin that runs after `after` (by order), for switching chains midway.
    pub(crate) fn position_after(&self, after: &Configured) -> usize {
        self.plugins.iter().position(|p| p.order_key() > after.order_key()).unwrap_or(self.plugins.len())
    }
}

/// A resolved chain, shared.
type Chained = Arc<Chain>;

/// All plugin instances of one configuration version and their resolved chains.
#[derive(Default)]
pub struct PluginSet {
    by_name: BTreeMap<Arc<str>, Vec<Arc<Configured>>>,
    /// Instances of modules still compiling, with their scopes.
    waiting: Vec<(Arc<Pending>, Scope)>,
    global: Arc<Chain>,
    routes: Vec<Arc<Chain>>,
    consumer_scoped: bool,
    /// What log records hide: the credential places of every instance.
    redactions: Arc<Redactions>,
    consumer_chains: RwLock<HashMap<(Option<usize>, usize), Chained>>,
}

impl PluginSet {
    /// Validates entries against the modules and entities (each plugin checks its own
    /// configuration) and resolves the chains. An entry whose module is `pending` (still
    /// compiling) is kept as a placeholder, its scope checked and its configuration not yet.
    /// Problems go to `errors`.
    pub fn build(
        entries: &[PluginEntry],
        modules: &HashMap<String, Arc<Module>>,
        pending: &HashMap<String, Arc<Pending>>,
        entities: &Arc<Entities>,
        errors: &mut ConfigErrors,
    ) -> PluginSet {
        let mut by_name: BTreeMap<Arc<str>, Vec<Arc<Configured>>> = BTreeMap::new();
        let mut waiting = Vec::new();
        let mut seen_scopes = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            let label = entry_label(i, e);
            let placeholder = pending.get(&e.name).filter(|_| !modules.contains_key(&e.name));
            let entry = match placeholder {
                Some(p) => scope_of(e, entities).map(|scope| Entry::Waiting(p.clone(), scope)),
                None => configure_entry(e, modules, entities).map(Entry::Configured),
            };
            let entry = match entry {
                Ok(entry) if e.enabled => entry,
                Ok(_) => continue,
                Err(msgs) => {
                    errors.0.extend(msgs.into_iter().map(|m| format!("{label}: {m}")));
                    continue;
                }
            };
            let scope = match &entry {
                Entry::Configured(c) => c.scope,
                Entry::Waiting(_, scope) => *scope,
            };
            if let Some(prev) = seen_scopes.insert((e.name.clone(), scope), i) {
                errors.push(format!(
                    "{label}: plugins[{prev}] already configures {:?} for this scope; merge them",
                    e.name
                ));
            }
            match entry {
                Entry::Configured(c) => by_name.entry(c.module.name.clone()).or_default().push(Arc::new(c)),
                Entry::Waiting(p, scope) => waiting.push((p, scope)),
            }
        }
        let mut scopes = by_name.values().flatten().map(|c| c.scope).chain(waiting.iter().map(|(_, s)| *s));
        let consumer_scoped = scopes.any(|s| s.consumer.is_some());
        let mut redactions = Redactions::default();
        for c in by_name.values().flatten() {
            redactions.merge(&c.redactions);
        }
        let redactions = Arc::new(redactions);
        let mut set = PluginSet { by_name, waiting, consumer_scoped, redactions, ..PluginSet::default() };
        set.global = Arc::new(set.resolve(None, None, None));
        set.routes = entities
            .routes
            .iter()
            .enumerate()
            .map(|(r, route)| Arc::new(set.resolve(Some(r), route.service, None)))
            .collect();
        set
    }

    /// The chain for this scope: the most specific instance of each plugin name, and the
    /// first instance that applies of a module still compiling.
    fn resolve(&self, route: Option<usize>, service: Option<usize>, consumer: Option<usize>) -> Chain {
        let plugins = self
            .by_name
            .values()
            .filter_map(|candidates| {
                candidates
                    .iter()
                    .filter_map(|c| c.scope.rank(route, service, consumer).map(|r| (r, c)))
                    .min_by_key(|(r, _)| *r)
                    .map(|(_, c)| c.clone())
            })
            .collect();
        let pending = self.waiting.iter().find(|(_, scope)| scope.rank(route, service, consumer).is_some());
        Chain::new(plugins, pending.map(|(p, _)| p.clone()))
    }

    /// Global plugins: the rewrite phase, and requests that matched no route.
    pub(crate) fn global(&self) -> &Arc<Chain> {
        &self.global
    }

    /// The chain of a route (before a consumer is known).
    pub fn for_route(&self, route: usize) -> &Arc<Chain> {
        &self.routes[route]
    }

    /// The credential places the instances read, which log records hide.
    pub(crate) fn redactions(&self) -> &Arc<Redactions> {
        &self.redactions
    }

    /// Whether any instance is scoped to a consumer (otherwise authentication changes nothing).
    pub(crate) fn has_consumer_scope(&self) -> bool {
        self.consumer_scoped
    }

    /// The chain once the consumer is known; computed on first use per (route, consumer).
    pub(crate) fn for_consumer(&self, route: Option<usize>, service: Option<usize>, consumer: usize) -> Arc<Chain> {
        if let Some(chain) = self.consumer_chains.read().get(&(route, consumer)) {
            return chain.clone();
        }
        let chain = Arc::new(self.resolve(route, service, Some(consumer)));
        self.consumer_chains.write().entry((route, consumer)).or_insert(chain).clone()
    }

    /// Every accepted instance.
    pub(crate) fn instances(&self) -> impl Iterator<Item = &Arc<Configured>> {
        self.by_name.values().flatten()
    }
}

/// The id an instance keeps a configuration under: stable for the same module and configuration.
pub(crate) fn config_id(module: &str, config_json: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (module, config_json).hash(&mut h);
    h.finish()
}

fn entry_label(i: usize, e: &PluginEntry) -> String {
    let mut scope = Vec::new();
    for (k, v) in [("route", &e.route), ("service", &e.service), ("consumer", &e.consumer)] {
        if let Some(v) = v {
            scope.push(format!("{k} {v:?}"));
        }
    }
    let scope = if scope.is_empty() { "global".to_string() } else { scope.join(", ") };
    format!("plugins[{i}] ({} on {scope})", e.name)
}

/// An accepted entry: configured, or waiting for its module.
enum Entry {
    Configured(Configured),
    Waiting(Arc<Pending>, Scope),
}

/// The route, service and consumer an entry names, each of which must exist.
fn scope_of(e: &PluginEntry, entities: &Entities) -> Result<Scope, Vec<String>> {
    let mut errors = Vec::new();
    let mut find = |kind: &str, name: &Option<String>, lookup: &dyn Fn(&str) -> Option<usize>| -> Option<usize> {
        let name = name.as_ref()?;
        let found = lookup(name);
        if found.is_none() {
            errors.push(format!("{kind}: no {kind} is named {name:?}"));
        }
        found
    };
    let route = find("route", &e.route, &|n| entities.route_index(n));
    let service = find("service", &e.service, &|n| entities.service_index(n));
    let consumer = find("consumer", &e.consumer, &|n| entities.consumers.find(n));
    match errors.is_empty() {
        true => Ok(Scope { route, service, consumer }),
        false => Err(errors),
    }
}

fn configure_entry(
    e: &PluginEntry,
    modules: &HashMap<String, Arc<Module>>,
    entities: &Arc<Entities>,
) -> Result<Configured, Vec<String>> {
    let Some(module) = modules.get(&e.name) else {
        let mut known: Vec<_> = modules.keys().map(String::as_str).collect();
        known.sort();
        return Err(vec![format!("name: no plugin module {:?} is loaded (loaded: {})", e.name, known.join(", "))]);
    };
    let (scope, mut errors) = match scope_of(e, entities) {
        Ok(scope) => (Some(scope), Vec::new()),
        Err(errors) => (None, errors),
    };
    if e.consumer.is_some() && module.no_consumer {
        errors.push(format!("consumer: {:?} cannot be scoped to a consumer", e.name));
    }
    let config_json = match serde_json::to_string(&e.config) {
        Ok(j) => j,
        Err(err) => {
            errors.push(format!("config: cannot be represented as JSON: {err}"));
            String::new()
        }
    };
    let config_id = config_id(&module.name, &config_json);
    let accepted = match module.configure(config_id, &config_json, entities) {
        Ok(accepted) => Some(accepted),
        Err(msg) => {
            errors.push(msg);
            None
        }
    };
    if let Err(err) = crate::ids::plugin_id(e) {
        errors.push(format!("id: {err}"));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let (Some(Accepted { needs_body, redactions, filters_body }), Some(scope)) = (accepted, scope) else {
        return Err(errors);
    };
    let quarantine = module.quarantine(config_id);
    Ok(Configured {
        module: module.clone(),
        config_id,
        config_json,
        scope,
        needs_body,
        redactions,
        filters_body,
        quarantine,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GatewayConfig;

    const ENTITIES: &str = r#"
[[services]]
name = "s"
url = "http://127.0.0.1:1"
[[services.routes]]
name = "a"
paths = ["/a"]
[[services.routes]]
name = "b"
paths = ["/b"]
[[consumers]]
username = "alice"
[[consumers]]
username = "bob"
"#;

    /// Builds a set whose `[[plugins]]` (TOML) name modules that are all still compiling.
    fn waiting(plugins: &str) -> (PluginSet, Arc<Entities>, ConfigErrors) {
        let cfg: GatewayConfig = toml::from_str(&format!("{ENTITIES}{plugins}")).expect("test config parses");
        let entities = Arc::new(Entities::compile(&cfg).expect("test entities compile"));
        let pending = ["jwt", "cors"].map(|n| (n.to_string(), Pending::new(n))).into_iter().collect();
        let mut errors = ConfigErrors::default();
        let set = PluginSet::build(&cfg.plugins, &HashMap::new(), &pending, &entities, &mut errors);
        (set, entities, errors)
    }

    fn waits_for(chain: &Chain) -> Option<&str> {
        chain.pending.as_ref().map(|p| &*p.name)
    }

    #[test]
    fn a_placeholder_holds_the_chains_its_scope_reaches() {
        let (set, e, errors) = waiting("[[plugins]]\nname = \"jwt\"\nroute = \"a\"\n");
        assert!(errors.0.is_empty(), "{errors}");
        let (a, b) = (e.route_index("a").unwrap(), e.route_index("b").unwrap());
        assert_eq!(waits_for(set.for_route(a)), Some("jwt"));
        assert!(set.for_route(a).plugins.is_empty() && !set.for_route(a).is_empty());
        assert_eq!(waits_for(set.for_route(b)), None);
        assert!(set.for_route(b).is_empty());
        assert_eq!(waits_for(set.global()), None);
    }

    #[test]
    fn a_global_placeholder_holds_every_chain() {
        let (set, e, _) = waiting("[[plugins]]\nname = \"cors\"\n");
        assert_eq!(waits_for(set.global()), Some("cors"));
        assert_eq!(waits_for(set.for_route(e.route_index("b").unwrap())), Some("cors"));
    }

    #[test]
    fn a_consumer_placeholder_holds_only_that_consumers_chains() {
        let (set, e, _) = waiting("[[plugins]]\nname = \"jwt\"\nconsumer = \"alice\"\n");
        assert!(set.has_consumer_scope());
        let a = e.route_index("a");
        assert_eq!(waits_for(set.for_route(a.unwrap())), None);
        let (alice, bob) = (e.consumers.find("alice").unwrap(), e.consumers.find("bob").unwrap());
        assert_eq!(waits_for(&set.for_consumer(a, None, alice)), Some("jwt"));
        assert_eq!(waits_for(&set.for_consumer(a, None, bob)), None);
    }

    #[test]
    fn a_placeholder_scope_is_still_checked() {
        let plugins = "[[plugins]]\nname = \"jwt\"\nroute = \"nope\"\n[[plugins]]\nname = \"cors\"\n\
                       [[plugins]]\nname = \"cors\"\n";
        let text = waiting(plugins).2.to_string();
        assert!(text.contains("plugins[0] (jwt on route \"nope\"): route: no route is named \"nope\""), "{text}");
        assert!(text.contains("plugins[2] (cors on global): plugins[1] already configures \"cors\""), "{text}");
    }

    #[test]
    fn a_disabled_instance_is_not_waited_for() {
        let (set, e, errors) = waiting("[[plugins]]\nname = \"jwt\"\nroute = \"b\"\nenabled = false\n");
        assert!(errors.0.is_empty(), "{errors}");
        assert!(set.for_route(e.route_index("b").unwrap()).is_empty());
    }
}
