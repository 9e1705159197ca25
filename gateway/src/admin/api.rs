//! The endpoints: Kong's paths and verbs over [`Records`], with every write validated as a whole
//! configuration and applied atomically (see [`super::Admin::write`]).

use super::entity::{self, Write, entity_schema};
use super::error::ApiError;
use super::kinds::Kind;
use super::records::{Record, Records, id_of, ref_id};
use super::{Admin, Reply};
use crate::config::Database;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// One admin request, parsed.
pub(crate) struct Request<'a> {
    /// HTTP method.
    pub(crate) method: &'a str,
    /// Path segments, percent-decoded.
    pub(crate) segments: Vec<String>,
    /// Query parameters.
    pub(crate) query: Vec<(String, String)>,
    /// The body as JSON, and whether it came form-encoded.
    pub(crate) body: Option<(Map<String, Value>, bool)>,
    /// The raw body (for `POST /config`).
    pub(crate) raw: &'a [u8],
}

impl Request<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn input(&self) -> (Map<String, Value>, bool) {
        self.body.clone().unwrap_or_default()
    }
}

/// Where a path points.
enum Target {
    Collection { kind: Kind, parent: Option<(&'static str, String)> },
    Entity { kind: Kind, key: String, parent: Option<(&'static str, String)> },
}

/// Answers one request.
pub(crate) async fn handle(admin: &Admin, req: &Request<'_>) -> Result<Reply, ApiError> {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    match (req.method, segs.as_slice()) {
        ("GET", []) => Ok(Reply::json(200, admin.node_info())),
        ("GET", ["status"]) => Ok(Reply::json(200, admin.status())),
        ("GET", ["metrics"]) => Ok(Reply::text(200, "text/plain; version=0.0.4", admin.status.metrics())),
        ("GET", ["config"]) => admin.export().await.map(|toml| Reply::text(200, "application/toml", toml)),
        ("POST", ["config"]) => admin.replace_config(req).await,
        ("GET", ["plugins", "enabled"]) => {
            let mut names: Vec<String> = admin.reloader.modules().into_keys().collect();
            names.sort();
            Ok(Reply::json(200, json!({ "enabled_plugins": names })))
        }
        ("GET", ["schemas", "plugins", name]) => match admin.reloader.modules().get(*name) {
            Some(m) => Ok(Reply::json(200, serde_json::from_str(&m.schema).unwrap_or(Value::Null))),
            None => Err(ApiError::not_found()),
        },
        ("GET", ["schemas", entity]) => {
            let kind = Kind::from_collection(entity).or_else(|| Kind::ALL.into_iter().find(|k| k.table() == *entity));
            kind.map(|k| Reply::json(200, entity_schema(k).clone())).ok_or_else(ApiError::not_found)
        }
        ("GET", ["modules"]) => {
            let mut modules: Vec<_> = admin.reloader.modules().into_values().collect();
            modules.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(Reply::json(
                200,
                json!({ "data": modules.iter().map(|m| module_view(m)).collect::<Vec<_>>(), "next": null }),
            ))
        }
        ("GET", ["modules", name]) => admin
            .reloader
            .modules()
            .get(*name)
            .map(|m| Reply::json(200, module_view(m)))
            .ok_or_else(ApiError::not_found),
        ("PATCH" | "PUT", ["modules", name]) => module_settings(admin, req, name.to_string()).await,
        ("GET", ["routes", route, "service"]) => {
            let records = admin.records().await;
            let service = records.find(Kind::Routes, route).and_then(|r| ref_id(r, "service"));
            let found = service.and_then(|s| records.get(Kind::Services, s)).ok_or_else(ApiError::not_found)?;
            Ok(Reply::json(200, Value::Object(found.clone())))
        }
        ("PATCH", ["routes", route, "service"]) => {
            let records = admin.records().await;
            let service = records.find(Kind::Routes, route).and_then(|r| ref_id(r, "service")).map(str::to_string);
            let key = service.ok_or_else(ApiError::not_found)?;
            entity_op(admin, req, Target::Entity { kind: Kind::Services, key, parent: None }).await
        }
        ("PUT" | "POST", ["upstreams", u, "targets", t, verdict @ ("healthy" | "unhealthy")]) => {
            let records = admin.records().await;
            let (snapshot, index, target) = live_target(admin, &records, u, t)?;
            let label = crate::balancer::TargetName(&snapshot.entities.upstreams[index].name, &target.address);
            target.health.set(*verdict == "healthy", "manual", &label);
            Ok(Reply::empty(204))
        }
        ("GET", ["upstreams", u, "health"]) => {
            let records = admin.records().await;
            let found = records.find(Kind::Upstreams, u).ok_or_else(ApiError::not_found)?;
            let snapshot = admin.reloader.live().load_full();
            let upstream =
                snapshot.entities.upstream(str_field(found, "name")).map(|i| &snapshot.entities.upstreams[i]);
            let upstream = upstream.ok_or_else(ApiError::not_found)?;
            if req.param("balancer_health").is_some_and(|v| v == "1" || v == "true") {
                let health =
                    if upstream.healthy_enough() && upstream.pick_possible() { "HEALTHY" } else { "UNHEALTHY" };
                return Ok(Reply::json(200, json!({"data": {"id": id_of(found), "health": health}})));
            }
            let id = id_of(found).to_string();
            let data: Vec<Value> = records
                .all(Kind::Targets)
                .filter(|r| ref_id(r, "upstream") == Some(id.as_str()))
                .map(|r| with_health(r, upstream))
                .collect();
            Ok(Reply::json(200, json!({"data": data, "next": null, "node_id": admin.node_id})))
        }
        ("GET", ["upstreams", u, "targets", t, "health"]) => {
            let records = admin.records().await;
            let (snapshot, index, target) = live_target(admin, &records, u, t)?;
            let upstream = records.find(Kind::Upstreams, u).map(|r| id_of(r).to_string());
            let belongs = |r: &&Record| ref_id(r, "upstream") == upstream.as_deref();
            let found = records.all(Kind::Targets).filter(belongs).find(|r| {
                crate::balancer::Address::parse(str_field(r, "target"), crate::balancer::DEFAULT_TARGET_PORT)
                    .is_ok_and(|a| a == target.address)
            });
            Ok(Reply::json(
                200,
                with_health(found.ok_or_else(ApiError::not_found)?, &snapshot.entities.upstreams[index]),
            ))
        }
        (_, ["upstreams", u, "targets", "all"]) if req.method == "GET" => {
            let target = nested(&*admin.records().await, "upstreams", u, "targets")?;
            entity_op(admin, req, target).await
        }
        _ => {
            let target = resolve_path(&*admin.records().await, &segs)?;
            entity_op(admin, req, target).await
        }
    }
}

/// Maps `/kind[/key]` and `/parent/{p}/kind[/key]`.
fn resolve_path(records: &Records, segs: &[&str]) -> Result<Target, ApiError> {
    match segs {
        [kind] => {
            Ok(Target::Collection { kind: Kind::from_collection(kind).ok_or_else(ApiError::not_found)?, parent: None })
        }
        [kind, key] => Ok(Target::Entity {
            kind: Kind::from_collection(kind).ok_or_else(ApiError::not_found)?,
            key: key.to_string(),
            parent: None,
        }),
        [parent, pkey, child] => nested(records, parent, pkey, child),
        [parent, pkey, child, key] => match nested(records, parent, pkey, child)? {
            Target::Collection { kind, parent } => Ok(Target::Entity { kind, key: key.to_string(), parent }),
            entity => Ok(entity),
        },
        _ => Err(ApiError::not_found()),
    }
}

/// `/parent/{p}/child`: the parent must exist.
fn nested(records: &Records, parent: &str, pkey: &str, child: &str) -> Result<Target, ApiError> {
    let parent_kind = Kind::from_collection(parent).ok_or_else(ApiError::not_found)?;
    let (kind, field) = Kind::nested(parent_kind, child).ok_or_else(ApiError::not_found)?;
    let found = records.find(parent_kind, pkey).ok_or_else(ApiError::not_found)?;
    Ok(Target::Collection { kind, parent: Some((field, id_of(found).to_string())) })
}

async fn entity_op(admin: &Admin, req: &Request<'_>, target: Target) -> Result<Reply, ApiError> {
    match (req.method, target) {
        ("GET", Target::Collection { kind, parent }) => list(admin, req, kind, parent).await,
        ("GET", Target::Entity { kind, key, parent }) => {
            let records = admin.records().await;
            let found = find_in(&records, kind, &key, &parent).ok_or_else(ApiError::not_found)?;
            Ok(Reply::json(200, records.view(kind, found)))
        }
        (method @ ("POST" | "PUT" | "PATCH" | "DELETE"), target) => {
            let kind = match &target {
                Target::Collection { kind, .. } | Target::Entity { kind, .. } => *kind,
            };
            if admin.database == Database::Off {
                let verb = match method {
                    "POST" => "create",
                    "DELETE" => "delete",
                    _ => "update",
                };
                return Err(ApiError::declarative(verb, kind.table()));
            }
            match (method, target) {
                ("POST", Target::Collection { kind, parent }) => create(admin, req, kind, parent).await,
                ("PUT", Target::Entity { kind, key, parent }) => upsert(admin, req, kind, key, parent).await,
                ("PATCH", Target::Entity { kind, key, parent }) => patch(admin, req, kind, key, parent).await,
                ("DELETE", Target::Entity { kind, key, parent }) => delete(admin, kind, key, parent).await,
                _ => Err(ApiError::method_not_allowed()),
            }
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// An entity by id or endpoint key; under a parent, it must belong to it.
fn find_in<'r>(
    records: &'r Records,
    kind: Kind,
    key: &str,
    parent: &Option<(&'static str, String)>,
) -> Option<&'r Record> {
    let belongs = |r: &&Record| parent.as_ref().is_none_or(|(field, id)| ref_id(r, field) == Some(id));
    match parent {
        // Under a parent, endpoint keys are looked up among its children only (targets by address).
        Some(_) => records.get(kind, key).filter(belongs).or_else(|| {
            records
                .all(kind)
                .filter(belongs)
                .find(|r| kind.endpoint_keys().iter().any(|f| r.get(*f).and_then(Value::as_str) == Some(key)))
        }),
        None => records.find(kind, key),
    }
}

/// `GET` a collection: `size` (1..=1000, default 100), `offset` (from `next`), `tags` (`a,b`: all
/// of them; `a/b`: any of them).
async fn list(
    admin: &Admin,
    req: &Request<'_>,
    kind: Kind,
    parent: Option<(&'static str, String)>,
) -> Result<Reply, ApiError> {
    let size = match req.param("size") {
        None => 100,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::field("size", "must be an integer between 1 and 1000"))?,
    };
    let tags = req.param("tags").map(TagFilter::parse).transpose()?;
    let records = admin.records().await;
    let after = req.param("offset").unwrap_or("");
    let mut page: Vec<Value> = Vec::new();
    let mut more = false;
    for r in records.all(kind) {
        if id_of(r) <= after
            || parent.as_ref().is_some_and(|(f, id)| ref_id(r, f) != Some(id))
            || tags.as_ref().is_some_and(|t| !t.matches(r))
        {
            continue;
        }
        if page.len() == size {
            more = true;
            break;
        }
        page.push(records.view(kind, r));
    }
    let mut body = Map::new();
    let last = page.last().and_then(|r| r.get("id")).and_then(Value::as_str).map(str::to_string);
    body.insert("data".into(), Value::Array(page));
    match last.filter(|_| more) {
        Some(offset) => {
            let path = format!("/{}", req.segments.join("/"));
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.append_pair("offset", &offset).append_pair("size", &size.to_string());
            if let Some(t) = req.param("tags") {
                query.append_pair("tags", t);
            }
            body.insert("next".into(), Value::String(format!("{path}?{}", query.finish())));
            body.insert("offset".into(), Value::String(offset));
        }
        None => {
            body.insert("next".into(), Value::Null);
        }
    }
    Ok(Reply::json(200, Value::Object(body)))
}

/// `?tags=a,b` (all) or `?tags=a/b` (any).
struct TagFilter {
    tags: Vec<String>,
    any: bool,
}

impl TagFilter {
    fn parse(s: &str) -> Result<TagFilter, ApiError> {
        if s.contains(',') && s.contains('/') {
            return Err(ApiError::field("tags", "use either ',' (all of) or '/' (any of), not both"));
        }
        let any = s.contains('/');
        let tags: Vec<String> = s.split([',', '/']).map(str::to_string).collect();
        if tags.iter().any(String::is_empty) {
            return Err(ApiError::field("tags", "a tag must not be empty"));
        }
        Ok(TagFilter { tags, any })
    }

    fn matches(&self, r: &Record) -> bool {
        let has =
            |t: &String| r.get("tags").and_then(Value::as_array).is_some_and(|a| a.iter().any(|v| v == t.as_str()));
        if self.any { self.tags.iter().any(has) } else { self.tags.iter().all(has) }
    }
}

/// What a write replaces (if anything) and the id the entity gets.
type Prepared = Result<(Option<Record>, String), ApiError>;

/// Validates and writes one entity, answering `status` with it. `prepare` looks at the current
/// entities and the body (which it may rewrite) and says what the entity replaces and its id.
async fn save_entity(
    admin: &Admin,
    req: &Request<'_>,
    kind: Kind,
    parent: Option<(&'static str, String)>,
    status: u16,
    prepare: impl FnOnce(&Records, &mut Map<String, Value>) -> Prepared,
) -> Result<Reply, ApiError> {
    let (mut input, form) = req.input();
    // Kong's shorthand: a certificate's `snis` become its SNI entities.
    let snis = if kind == Kind::Certificates { input.remove("snis") } else { None };
    admin
        .write(move |next, ctx| {
            let (existing, id) = prepare(next, &mut input)?;
            let rec = entity::build(kind, input, &ctx.write(next, existing.as_ref(), id.clone(), parent, form))?;
            next.put(kind, rec.clone());
            if let Some(names) = snis {
                set_snis(next, ctx, &id, names, form)?;
            }
            Ok(Reply::json(status, next.view(kind, &rec)))
        })
        .await
}

/// Replaces the names of certificate `id` with `names` (a list, or a comma-separated string from
/// a form); a name it already had keeps its SNI entity.
fn set_snis(next: &mut Records, ctx: &WriteContext, id: &str, names: Value, form: bool) -> Result<(), ApiError> {
    let names: Vec<String> = match names {
        Value::Null => Vec::new(),
        Value::String(s) if form => s.split(',').map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).collect(),
        Value::Array(a) => a
            .into_iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| ApiError::field("snis", "expected a list of server names"))?,
        _ => return Err(ApiError::field("snis", "expected a list of server names")),
    };
    let mine: Vec<Record> = next.all(Kind::Snis).filter(|r| ref_id(r, "certificate") == Some(id)).cloned().collect();
    for old in &mine {
        if !names.iter().any(|n| old.get("name").and_then(Value::as_str) == Some(n)) {
            next.delete(Kind::Snis, id_of(old))?;
        }
    }
    for (i, name) in names.into_iter().enumerate() {
        let existing = mine.iter().find(|r| r.get("name").and_then(Value::as_str) == Some(&name));
        let sni_id = existing.map_or_else(|| uuid::Uuid::new_v4().to_string(), |r| id_of(r).to_string());
        let input = Map::from_iter([("name".to_string(), Value::String(name))]);
        let parent = Some(("certificate", id.to_string()));
        let rec = entity::build(Kind::Snis, input, &ctx.write(next, existing, sni_id, parent, false))
            .map_err(|e| e.within(&format!("snis[{i}]")))?;
        next.put(Kind::Snis, rec);
    }
    Ok(())
}

/// `POST` a collection: 201 with the new entity. A target posted again for the same address
/// updates it (Kong's canary step).
async fn create(
    admin: &Admin,
    req: &Request<'_>,
    kind: Kind,
    parent: Option<(&'static str, String)>,
) -> Result<Reply, ApiError> {
    let upstream = parent.as_ref().map(|(_, id)| id.clone());
    save_entity(admin, req, kind, parent, 201, move |records, input| {
        let same_target =
            |r: &&Record| r.get("target") == input.get("target") && ref_id(r, "upstream") == upstream.as_deref();
        match records.all(kind).find(same_target).filter(|_| kind == Kind::Targets) {
            Some(old) => Ok((Some(old.clone()), id_of(old).to_string())),
            None => Ok((None, uuid::Uuid::new_v4().to_string())),
        }
    })
    .await
}

/// `PUT` an entity: create or replace it, by id or by name.
async fn upsert(
    admin: &Admin,
    req: &Request<'_>,
    kind: Kind,
    key: String,
    parent: Option<(&'static str, String)>,
) -> Result<Reply, ApiError> {
    let scope = parent.clone();
    save_entity(admin, req, kind, parent, 200, move |records, input| {
        let existing = find_in(records, kind, &key, &scope).cloned();
        let by_id = uuid::Uuid::parse_str(&key).ok().map(|u| u.to_string());
        if by_id.is_none() {
            // `PUT /services/{name}`: the name is the key.
            let field = kind.endpoint_keys().first().ok_or_else(ApiError::not_found)?;
            input.insert(field.to_string(), Value::String(key.clone()));
        }
        let id = match (&existing, by_id) {
            (Some(e), _) => id_of(e).to_string(),
            (None, Some(id)) => id,
            (None, None) => uuid::Uuid::new_v4().to_string(),
        };
        Ok((existing, id))
    })
    .await
}

/// `PATCH` an entity: the given fields over the stored ones (`config` merged field by field).
async fn patch(
    admin: &Admin,
    req: &Request<'_>,
    kind: Kind,
    key: String,
    parent: Option<(&'static str, String)>,
) -> Result<Reply, ApiError> {
    let scope = parent.clone();
    save_entity(admin, req, kind, parent, 200, move |records, input| {
        let existing = find_in(records, kind, &key, &scope).cloned().ok_or_else(ApiError::not_found)?;
        let mut merged = existing.clone();
        for (k, v) in std::mem::take(input) {
            match (merged.get_mut(&k), v) {
                (Some(Value::Object(old)), Value::Object(new)) if k == "config" => old.extend(new),
                (_, v) => {
                    merged.insert(k, v);
                }
            }
        }
        *input = merged;
        let id = id_of(&existing).to_string();
        Ok((Some(existing), id))
    })
    .await
}

/// `DELETE` an entity: 204, also when it does not exist (as Kong answers).
async fn delete(
    admin: &Admin,
    kind: Kind,
    key: String,
    parent: Option<(&'static str, String)>,
) -> Result<Reply, ApiError> {
    admin
        .write(move |next, _| {
            if let Some(id) = find_in(next, kind, &key, &parent).map(|r| id_of(r).to_string()) {
                next.delete(kind, &id)?;
            }
            Ok(Reply::empty(204))
        })
        .await
}

/// A string field of a record.
fn str_field<'r>(r: &'r Record, field: &str) -> &'r str {
    r.get(field).and_then(Value::as_str).unwrap_or_default()
}

/// The live upstream and target that `/upstreams/{u}/targets/{t}` names (`t`: id or address).
fn live_target(
    admin: &Admin,
    records: &Records,
    u: &str,
    t: &str,
) -> Result<(Arc<crate::snapshot::Snapshot>, usize, crate::balancer::Target), ApiError> {
    let upstream = records.find(Kind::Upstreams, u).ok_or_else(ApiError::not_found)?;
    let address = find_in(records, Kind::Targets, t, &Some(("upstream", id_of(upstream).to_string())))
        .map(|r| str_field(r, "target").to_string())
        .unwrap_or_else(|| t.to_string());
    let address = crate::balancer::Address::parse(&address, crate::balancer::DEFAULT_TARGET_PORT)
        .map_err(|_| ApiError::not_found())?;
    let snapshot = admin.reloader.live().load_full();
    let index = snapshot.entities.upstream(str_field(upstream, "name")).ok_or_else(ApiError::not_found)?;
    let live = &snapshot.entities.upstreams[index];
    let target = live.targets.iter().find(|x| x.address == address).cloned().ok_or_else(ApiError::not_found)?;
    Ok((snapshot, index, target))
}

/// A target record with its health, in Kong's shape.
fn with_health(r: &Record, upstream: &crate::balancer::Upstream) -> Value {
    let address = crate::balancer::Address::parse(str_field(r, "target"), crate::balancer::DEFAULT_TARGET_PORT).ok();
    let target = upstream.targets.iter().find(|t| Some(&t.address) == address.as_ref());
    let health = match target {
        Some(t) if !t.health.is_healthy() => "UNHEALTHY",
        Some(_) if !upstream.checks_enabled() => "HEALTHCHECKS_OFF",
        Some(_) => "HEALTHY",
        None => "UNHEALTHY",
    };
    let mut out = r.clone();
    out.insert("health".into(), Value::String(health.into()));
    Value::Object(out)
}

/// A loaded module and the settings it runs with.
fn module_view(m: &crate::plugins::module::Module) -> Value {
    json!({
        "name": &*m.name,
        "version": m.version,
        "path": m.path.display().to_string(),
        "priority": m.priority,
        "failure_policy": if m.fail_closed { "fail-closed" } else { "fail-open" },
        "cpu_ms": m.limits.cpu_ms,
        "memory_mb": m.limits.memory_mb,
    })
}

/// `PATCH /modules/{name}` (`PUT` replaces every override): priority, failure policy and limits,
/// applied by the same path as a hot load (the module is reloaded with the new settings).
async fn module_settings(admin: &Admin, req: &Request<'_>, name: String) -> Result<Reply, ApiError> {
    if admin.database == Database::Off {
        return Err(ApiError::declarative("update", "modules"));
    }
    if !admin.reloader.modules().contains_key(&name) {
        return Err(ApiError::not_found());
    }
    let replace = req.method == "PUT";
    let key = name.clone();
    save_entity(admin, req, Kind::Modules, None, 200, move |records, input| {
        let existing = records.get(Kind::Modules, &key).cloned();
        if !replace && let Some(old) = &existing {
            let given = std::mem::replace(input, old.clone());
            input.extend(given);
        }
        Ok((existing, key))
    })
    .await?;
    let module = admin.reloader.modules().get(&name).cloned().ok_or_else(ApiError::not_found)?;
    Ok(Reply::json(200, module_view(&module)))
}

/// What [`Admin::write`] lends to a write: the loaded modules and the live entities.
pub(crate) struct WriteContext {
    /// Loaded plugin modules.
    pub(crate) modules: std::collections::HashMap<String, Arc<crate::plugins::module::Module>>,
    /// Modules still compiling after start-up.
    pub(crate) compiling: std::collections::BTreeSet<String>,
    /// The live entities.
    pub(crate) entities: Arc<crate::entities::Entities>,
    /// Seconds since the epoch.
    pub(crate) now: i64,
}

impl WriteContext {
    fn write<'a>(
        &'a self,
        records: &'a Records,
        existing: Option<&'a Record>,
        id: String,
        parent: Option<(&'static str, String)>,
        form: bool,
    ) -> Write<'a> {
        let (modules, compiling) = (&self.modules, &self.compiling);
        Write { records, existing, id, parent, form, modules, compiling, entities: &self.entities, now: self.now }
    }
}
