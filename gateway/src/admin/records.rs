//! The entities as the Admin API sees them: Kong-shaped JSON records by kind and id, with
//! references as `{"id": ...}`. They convert to and from the TOML model, which is what snapshots
//! are built from, so both modes share one validation path.

use super::error::ApiError;
use super::kinds::Kind;
use crate::config::{GatewayConfig, RouteConfig};
use crate::ids;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

/// One entity, in Kong's JSON shape.
pub(crate) type Record = Map<String, Value>;

/// Every entity, by kind and id.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Records {
    by_kind: BTreeMap<Kind, BTreeMap<String, Record>>,
}

/// One row to write to the store: the record, or `None` for a delete.
pub(crate) type Change = (Kind, String, Option<Record>);

impl Records {
    /// The entity `id` of `kind`.
    pub(crate) fn get(&self, kind: Kind, id: &str) -> Option<&Record> {
        self.by_kind.get(&kind)?.get(id)
    }

    /// All entities of `kind`, ordered by id.
    pub(crate) fn all(&self, kind: Kind) -> impl Iterator<Item = &Record> {
        self.by_kind.get(&kind).into_iter().flat_map(|m| m.values())
    }

    /// All entities of `kind` in creation order (ties by id), the order snapshots are built in.
    fn created(&self, kind: Kind) -> Vec<&Record> {
        let mut list: Vec<&Record> = self.all(kind).collect();
        list.sort_by_key(|r| (r.get("created_at").and_then(Value::as_i64).unwrap_or(0), id_of(r).to_string()));
        list
    }

    /// How many entities of `kind` there are.
    pub(crate) fn count(&self, kind: Kind) -> usize {
        self.by_kind.get(&kind).map_or(0, BTreeMap::len)
    }

    /// An entity by id, or by one of its kind's endpoint keys (`/services/{name}`); a
    /// certificate also by one of its names (`/certificates/{sni}`), as Kong finds it.
    pub(crate) fn find(&self, kind: Kind, key: &str) -> Option<&Record> {
        self.get(kind, key)
            .or_else(|| {
                self.all(kind)
                    .find(|r| kind.endpoint_keys().iter().any(|f| r.get(*f).and_then(Value::as_str) == Some(key)))
            })
            .or_else(|| {
                let sni = (kind == Kind::Certificates).then(|| self.find(Kind::Snis, key)).flatten()?;
                self.get(Kind::Certificates, ref_id(sni, "certificate")?)
            })
    }

    /// The names of certificate `id`, in creation order.
    fn snis_of(&self, id: &str) -> Vec<String> {
        let mine = self.created(Kind::Snis).into_iter().filter(|r| ref_id(r, "certificate") == Some(id));
        mine.filter_map(|r| r.get("name").and_then(Value::as_str).map(str::to_string)).collect()
    }

    /// A record as the Admin API shows it: a certificate lists its names (`snis`).
    pub(crate) fn view(&self, kind: Kind, r: &Record) -> Value {
        let mut out = r.clone();
        if kind == Kind::Certificates {
            out.insert("snis".into(), Value::from(self.snis_of(id_of(r))));
        }
        Value::Object(out)
    }

    /// Inserts or replaces a record (it has an `id`).
    pub(crate) fn put(&mut self, kind: Kind, record: Record) {
        let id = id_of(&record).to_string();
        self.by_kind.entry(kind).or_default().insert(id, record);
    }

    /// Deletes an entity and, as Kong does, what belongs to it (credentials, targets, scoped
    /// plugins). Refused while routes still use a service.
    pub(crate) fn delete(&mut self, kind: Kind, id: &str) -> Result<(), ApiError> {
        for child in Kind::ALL {
            for (field, parent) in child.foreign_keys() {
                if *parent != kind {
                    continue;
                }
                let children: Vec<String> =
                    self.all(child).filter(|r| ref_id(r, field) == Some(id)).map(|r| id_of(r).to_string()).collect();
                if !children.is_empty() && !child.cascades() {
                    return Err(ApiError::referenced_by(child, kind));
                }
                for c in children {
                    self.delete(child, &c)?;
                }
            }
        }
        if let Some(m) = self.by_kind.get_mut(&kind) {
            m.remove(id);
        }
        Ok(())
    }

    /// 409 when another entity of `kind` has the same unique values as `record`.
    pub(crate) fn check_unique(&self, kind: Kind, record: &Record) -> Result<(), ApiError> {
        let id = id_of(record);
        for fields in kind.unique() {
            let values: Vec<Value> = fields.iter().map(|f| unique_value(record, f)).collect();
            if fields.len() == 1 && values[0].is_null() {
                continue;
            }
            let clash = self.all(kind).any(|other| {
                id_of(other) != id && fields.iter().zip(&values).all(|(f, v)| unique_value(other, f) == *v)
            });
            if clash {
                let shown = fields.iter().zip(values).filter(|(_, v)| !v.is_null());
                return Err(ApiError::unique(shown.map(|(f, v)| (f.to_string(), v)).collect()));
            }
        }
        Ok(())
    }

    /// The rows that turn `self` into `next`.
    pub(crate) fn diff(&self, next: &Records) -> Vec<Change> {
        let mut changes = Vec::new();
        for kind in Kind::ALL {
            for r in next.all(kind) {
                if self.get(kind, id_of(r)) != Some(r) {
                    changes.push((kind, id_of(r).to_string(), Some(r.clone())));
                }
            }
            for r in self.all(kind) {
                if next.get(kind, id_of(r)).is_none() {
                    changes.push((kind, id_of(r).to_string(), None));
                }
            }
        }
        changes
    }

    /// The TOML model of these entities (ids explicit, references by id), for building a snapshot
    /// or exporting.
    pub(crate) fn to_config(&self) -> Result<GatewayConfig, String> {
        let mut cfg = GatewayConfig::default();
        let mut targets: HashMap<&str, Vec<crate::config::TargetConfig>> = HashMap::new();
        for r in self.created(Kind::Targets) {
            targets.entry(ref_id(r, "upstream").unwrap_or_default()).or_default().push(model(r, Kind::Targets)?);
        }
        let mut creds: HashMap<&str, crate::config::ConsumerConfig> = HashMap::new();
        for kind in [Kind::KeyAuths, Kind::Acls, Kind::Jwts, Kind::BasicAuths, Kind::HmacAuths] {
            for r in self.created(kind) {
                let c = creds.entry(ref_id(r, "consumer").unwrap_or_default()).or_insert_with(empty_consumer);
                match kind {
                    Kind::KeyAuths => c.keyauth_credentials.push(model(r, kind)?),
                    Kind::Acls => c.acls.push(model(r, kind)?),
                    Kind::Jwts => c.jwt_secrets.push(model(r, kind)?),
                    Kind::HmacAuths => c.hmacauth_credentials.push(model(r, kind)?),
                    _ => c.basicauth_credentials.push(model(r, kind)?),
                }
            }
        }
        for r in self.created(Kind::Certificates) {
            let mut c: crate::config::CertificateConfig = model(r, Kind::Certificates)?;
            c.snis = self.snis_of(id_of(r));
            cfg.certificates.push(c);
        }
        for r in self.created(Kind::CaCertificates) {
            cfg.ca_certificates.push(model(r, Kind::CaCertificates)?);
        }
        for r in self.created(Kind::Services) {
            cfg.services.push(model(r, Kind::Services)?);
        }
        for r in self.created(Kind::Routes) {
            cfg.routes.push(model(r, Kind::Routes)?);
        }
        for r in self.created(Kind::Upstreams) {
            let mut u: crate::config::UpstreamConfig = model(r, Kind::Upstreams)?;
            u.targets = targets.remove(id_of(r)).unwrap_or_default();
            cfg.upstreams.push(u);
        }
        for r in self.created(Kind::Consumers) {
            let mut c: crate::config::ConsumerConfig = model(r, Kind::Consumers)?;
            if let Some(owned) = creds.remove(id_of(r)) {
                c.keyauth_credentials = owned.keyauth_credentials;
                c.acls = owned.acls;
                c.jwt_secrets = owned.jwt_secrets;
                c.basicauth_credentials = owned.basicauth_credentials;
                c.hmacauth_credentials = owned.hmacauth_credentials;
            }
            cfg.consumers.push(c);
        }
        for r in self.created(Kind::Plugins) {
            cfg.plugins.push(model(r, Kind::Plugins)?);
        }
        for r in self.all(Kind::Modules) {
            let mut settings = r.clone();
            settings.remove("id");
            cfg.modules.insert(id_of(r).to_string(), model(&settings, Kind::Modules)?);
        }
        Ok(cfg)
    }

    /// The records of a declarative configuration (its plugin instances include those of
    /// `plugins.toml`), with the ids its snapshot derives.
    pub(crate) fn from_config(cfg: &GatewayConfig, now: i64) -> Result<Records, String> {
        let mut out = Records::default();
        let mut routes = Vec::new();
        // Declared earlier is created earlier: routes that tie in priority keep their file order
        // when the records become a configuration again (they are ordered by `created_at`).
        let earlier = |i: usize, n: usize| now - (n - 1 - i) as i64;
        for (i, c) in cfg.certificates.iter().enumerate() {
            // Files were read into the PEM fields: the record carries the PEM.
            let mut c = crate::config::CertificateConfig { cert_file: None, key_file: None, ..c.clone() };
            let id = crate::tls::certificate_id(&c, i)?;
            for name in std::mem::take(&mut c.snis) {
                let sni = crate::config::SniConfig { id: None, name: name.clone(), tags: Vec::new() };
                let sni_id = ids::entity_id("sni", None, &name.to_ascii_lowercase())?;
                let mut rec = record(&sni, Kind::Snis, sni_id, now)?;
                rec.insert("certificate".into(), reference(Some(id.clone())));
                out.put(Kind::Snis, rec);
            }
            out.put(Kind::Certificates, record(&c, Kind::Certificates, id, now)?);
        }
        for (i, c) in cfg.ca_certificates.iter().enumerate() {
            let c = crate::config::CaCertificateConfig { cert_file: None, ..c.clone() };
            out.put(
                Kind::CaCertificates,
                record(&c, Kind::CaCertificates, crate::tls::ca_certificate_id(&c, i)?, now)?,
            );
        }
        let services = cfg.services.len();
        for (i, s) in cfg.services.iter().enumerate() {
            let mut s = s.clone();
            let client_certificate = s.client_certificate.take();
            if let Some(url) = s.url.take() {
                let parts = expand_url(&url)?;
                (s.protocol, s.host, s.port, s.path) =
                    (Some(parts.protocol), Some(parts.host), Some(parts.port), parts.path);
            }
            s.protocol.get_or_insert_with(|| "http".into());
            s.port.get_or_insert(80);
            let id = ids::service_id(&s, s.host.as_deref().unwrap_or_default())?;
            routes.extend(s.routes.iter().map(|r| (r.clone(), Some(id.clone()))));
            let mut rec = record(&s, Kind::Services, id, earlier(i, services))?;
            let certificate = client_certificate.map(|c| out.id_for(Kind::Certificates, &c)).transpose()?;
            rec.insert("client_certificate".into(), reference(certificate));
            out.put(Kind::Services, rec);
        }
        routes.extend(cfg.routes.iter().map(|r| (r.clone(), None)));
        let total = routes.len();
        for (position, (r, parent)) in routes.into_iter().enumerate() {
            let id = ids::route_id(&r, position)?;
            let service = match parent {
                Some(p) => Some(p),
                None => r.service.as_deref().map(|s| out.id_for(Kind::Services, s)).transpose()?,
            };
            let mut rec = record(&RouteConfig { service: None, ..r }, Kind::Routes, id, earlier(position, total))?;
            rec.insert("service".into(), reference(service));
            out.put(Kind::Routes, rec);
        }
        for u in &cfg.upstreams {
            let uid = ids::upstream_id(u)?;
            for t in &u.targets {
                let id = ids::entity_id("target", t.id.as_deref(), &format!("{}/{}", u.name, t.target))?;
                let mut rec = record(t, Kind::Targets, id, now)?;
                rec.insert("upstream".into(), reference(Some(uid.clone())));
                out.put(Kind::Targets, rec);
            }
            out.put(Kind::Upstreams, record(u, Kind::Upstreams, uid, now)?);
        }
        for c in &cfg.consumers {
            let cid = ids::consumer_id(c)?;
            let mut owned = Vec::new();
            for (position, k) in c.keyauth_credentials.iter().enumerate() {
                owned.push((Kind::KeyAuths, ids::keyauth_id(k, &cid, position)?, serde_json::to_value(k)));
            }
            for a in &c.acls {
                let id = ids::entity_id("acl", a.id.as_deref(), &format!("{cid}/{}", a.group))?;
                owned.push((Kind::Acls, id, serde_json::to_value(a)));
            }
            for j in &c.jwt_secrets {
                owned.push((
                    Kind::Jwts,
                    ids::entity_id("jwt_secret", j.id.as_deref(), &j.key)?,
                    serde_json::to_value(j),
                ));
            }
            for b in &c.basicauth_credentials {
                let id = ids::entity_id("basicauth_credential", b.id.as_deref(), &b.username)?;
                owned.push((Kind::BasicAuths, id, serde_json::to_value(b)));
            }
            for h in &c.hmacauth_credentials {
                let id = ids::entity_id("hmacauth_credential", h.id.as_deref(), &h.username)?;
                owned.push((Kind::HmacAuths, id, serde_json::to_value(h)));
            }
            for (kind, id, value) in owned {
                let mut rec = record(&value.map_err(|e| e.to_string())?, kind, id, now)?;
                rec.insert("consumer".into(), reference(Some(cid.clone())));
                out.put(kind, rec);
            }
            out.put(Kind::Consumers, record(c, Kind::Consumers, cid, now)?);
        }
        for p in &cfg.plugins {
            let id = ids::plugin_id(p)?;
            let scope = [
                ("route", Kind::Routes, &p.route),
                ("service", Kind::Services, &p.service),
                ("consumer", Kind::Consumers, &p.consumer),
            ];
            let mut rec = record(p, Kind::Plugins, id, now)?;
            for (field, kind, key) in scope {
                let target = key.as_deref().map(|k| out.id_for(kind, k)).transpose()?;
                rec.insert(field.into(), reference(target));
            }
            out.put(Kind::Plugins, rec);
        }
        for (name, settings) in &cfg.modules {
            out.put(Kind::Modules, record(settings, Kind::Modules, name.clone(), now)?);
        }
        Ok(out)
    }

    fn id_for(&self, kind: Kind, key: &str) -> Result<String, String> {
        self.find(kind, key)
            .map(|r| id_of(r).to_string())
            .ok_or_else(|| format!("no entity of {} is named {key:?}", kind.table()))
    }
}

/// The id of a record.
pub(crate) fn id_of(r: &Record) -> &str {
    r.get("id").and_then(Value::as_str).unwrap_or_default()
}

/// The id a reference field holds (`{"id": ...}`).
pub(crate) fn ref_id<'a>(r: &'a Record, field: &str) -> Option<&'a str> {
    r.get(field)?.get("id")?.as_str()
}

/// `{"id": id}`, or `null`.
pub(crate) fn reference(id: Option<String>) -> Value {
    match id {
        Some(id) => serde_json::json!({ "id": id }),
        None => Value::Null,
    }
}

/// The value compared for uniqueness: a reference compares by id.
fn unique_value(r: &Record, field: &str) -> Value {
    match r.get(field) {
        Some(Value::Object(o)) => o.get("id").cloned().unwrap_or(Value::Null),
        Some(v) => v.clone(),
        None => Value::Null,
    }
}

/// A record from a model value: the model's fields minus the hidden ones, with id and timestamps.
pub(crate) fn record(model: &impl Serialize, kind: Kind, id: String, now: i64) -> Result<Record, String> {
    let Value::Object(mut rec) = serde_json::to_value(model).map_err(|e| e.to_string())? else {
        return Err("an entity must be an object".into());
    };
    for h in kind.hidden() {
        rec.remove(*h);
    }
    rec.insert("id".into(), Value::String(id));
    rec.insert("created_at".into(), Value::from(now));
    rec.insert("updated_at".into(), Value::from(now));
    Ok(rec)
}

/// The model value of a record: timestamps dropped, references to owners dropped, other
/// references as id strings.
pub(crate) fn model<T: DeserializeOwned>(r: &Record, kind: Kind) -> Result<T, String> {
    let mut m = r.clone();
    m.remove("created_at");
    m.remove("updated_at");
    for (field, _) in kind.foreign_keys() {
        let id = ref_id(r, field).map(str::to_string);
        m.remove(*field);
        if kind.owner().is_none()
            && let Some(id) = id
        {
            m.insert(field.to_string(), Value::String(id));
        }
    }
    serde_path_to_error::deserialize(Value::Object(m)).map_err(|e| format!("{} {}: {e}", kind.table(), id_of(r)))
}

/// A service `url`, split as Kong stores it.
pub(crate) struct UrlParts {
    /// `http` or `https`.
    pub(crate) protocol: String,
    /// Host name or IP.
    pub(crate) host: String,
    /// The port, or the protocol's default.
    pub(crate) port: u16,
    /// The path, if the URL has one.
    pub(crate) path: Option<String>,
}

/// Splits `url` into protocol, host, port and path.
pub(crate) fn expand_url(url: &str) -> Result<UrlParts, String> {
    let (protocol, host, port, path) = crate::entities::split_url(url)?;
    let port = port.unwrap_or(if matches!(protocol.as_str(), "https" | "grpcs") { 443 } else { 80 });
    Ok(UrlParts { protocol, host, port, path })
}

fn empty_consumer() -> crate::config::ConsumerConfig {
    serde_json::from_value(serde_json::json!({})).expect("every consumer field has a default")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::Entities;

    const DECLARATIVE: &str = r#"
[[services]]
name = "api"
url = "http://10.0.0.1:8080/v1"
[[services.routes]]
name = "nested"
paths = ["/a"]
[[services.routes]]
paths = ["/unnamed"]

[[routes]]
paths = ["/top"]
service = "api"

[[upstreams]]
name = "pool"
[[upstreams.targets]]
target = "10.0.0.2:80"
weight = 5

[[consumers]]
username = "alice"
[[consumers.keyauth_credentials]]
key = "k"
[[consumers.acls]]
group = "admins"

[[plugins]]
name = "key-auth"
route = "nested"
[plugins.config]
key_names = ["apikey"]
"#;

    #[test]
    fn records_of_a_declarative_config_keep_the_ids_its_snapshot_derives() {
        let cfg: GatewayConfig = toml::from_str(DECLARATIVE).unwrap();
        let records = Records::from_config(&cfg, 1_000).unwrap();
        assert_eq!(records.count(Kind::Routes), 3);
        let api = records.find(Kind::Services, "api").unwrap();
        assert_eq!(
            (api["host"].as_str(), api["port"].as_u64(), api["path"].as_str()),
            (Some("10.0.0.1"), Some(8080), Some("/v1"))
        );
        let plugin = records.all(Kind::Plugins).next().unwrap();
        assert_eq!(ref_id(plugin, "route"), records.find(Kind::Routes, "nested").map(id_of), "references by id");

        let original = Entities::build(&cfg, &Default::default()).unwrap();
        let round_trip = records.to_config().unwrap();
        let rebuilt = Entities::build(&round_trip, &Default::default()).unwrap();
        let ids = |e: &Entities, c: &GatewayConfig| {
            let mut ids: Vec<String> = e.services.iter().map(|s| s.id.clone()).collect();
            ids.extend(e.routes.iter().map(|r| r.id.clone()));
            ids.extend(c.upstreams.iter().map(|u| crate::ids::upstream_id(u).unwrap()));
            ids
        };
        assert_eq!(ids(&rebuilt, &round_trip), ids(&original, &cfg), "same entities, same ids, same order");
        assert_eq!(Records::from_config(&round_trip, 1_000).unwrap(), records, "a second round trip changes nothing");
    }

    #[test]
    fn deleting_cascades_to_owned_entities_but_not_over_routes() {
        let cfg: GatewayConfig = toml::from_str(DECLARATIVE).unwrap();
        let mut records = Records::from_config(&cfg, 1).unwrap();
        let alice = id_of(records.find(Kind::Consumers, "alice").unwrap()).to_string();
        records.delete(Kind::Consumers, &alice).unwrap();
        assert_eq!((records.count(Kind::KeyAuths), records.count(Kind::Acls)), (0, 0));
        let api = id_of(records.find(Kind::Services, "api").unwrap()).to_string();
        let refused = records.delete(Kind::Services, &api).unwrap_err();
        assert_eq!(refused.status, 400);
        assert_eq!(records.count(Kind::Services), 1);
    }
}
