//! Routes compiled in creation order, nested ones first, each checked against its service.

use super::Route;
use crate::config::{ConfigErrors, GatewayConfig, RouteConfig};
use std::collections::HashMap;

/// A route with where it came from in the file.
pub(super) struct FlatRoute<'a> {
    pub(super) cfg: &'a RouteConfig,
    pub(super) label: String,
    /// Index of the service it is nested under, if any.
    parent: Option<usize>,
    position: usize,
}

/// Routes in creation order: those nested under services (in service order), then `[[routes]]`.
pub(super) fn flatten_routes(cfg: &GatewayConfig) -> Vec<FlatRoute<'_>> {
    let mut out = Vec::new();
    for (si, s) in cfg.services.iter().enumerate() {
        for (ri, r) in s.routes.iter().enumerate() {
            let label = match &r.name {
                Some(n) => format!("route {n:?}"),
                None => format!("services[{si}].routes[{ri}]"),
            };
            out.push(FlatRoute { cfg: r, label, parent: Some(si), position: out.len() });
        }
    }
    for (ri, r) in cfg.routes.iter().enumerate() {
        let label = match &r.name {
            Some(n) => format!("route {n:?}"),
            None => format!("routes[{ri}]"),
        };
        out.push(FlatRoute { cfg: r, label, parent: None, position: out.len() });
    }
    out
}

pub(super) fn build_route(
    fr: &FlatRoute<'_>,
    services: &HashMap<String, usize>,
    errors: &mut ConfigErrors,
) -> Option<Route> {
    let r = fr.cfg;
    let label = &fr.label;
    let named = match &r.service {
        None => None,
        Some(name) => match services.get(name.as_str()) {
            Some(i) => Some(*i),
            None => {
                errors.push(format!(
                    "{label}: service: no service is named {name:?}; define it under [[services]] or fix the name"
                ));
                return None;
            }
        },
    };
    let service = match (fr.parent, named) {
        (Some(parent), Some(other)) if parent != other => {
            errors.push(format!("{label}: service: names a different service than the one it is nested under"));
            return None;
        }
        (parent, named) => parent.or(named),
    };
    let (mut accepts_plain, mut grpc_only) = (false, !r.protocols.is_empty());
    for (i, p) in r.protocols.iter().enumerate() {
        match p.as_str() {
            "http" | "ws" => (accepts_plain, grpc_only) = (true, false),
            "https" | "wss" => grpc_only = false,
            "grpc" => accepts_plain = true,
            "grpcs" => {}
            other => errors
                .push(format!("{label}: protocols[{i}]: {other:?} is not one of http, https, grpc, grpcs, ws, wss")),
        }
    }
    if r.protocols.is_empty() {
        errors.push(format!("{label}: protocols: give at least one, e.g. [\"http\", \"https\"]"));
    }
    let https_redirect = r.https_redirect_status_code.unwrap_or(426);
    if ![426, 301, 302, 307, 308].contains(&https_redirect) {
        errors.push(format!(
            "{label}: https_redirect_status_code: {https_redirect} is not one of 426, 301, 302, 307, 308"
        ));
    }
    let id = crate::ids::route_id(r, fr.position).unwrap_or_else(|e| {
        errors.push(format!("{label}: id: {e}"));
        String::new()
    });
    Some(Route {
        id,
        name: r.name.clone(),
        service,
        // A gRPC path names the method (`/package.Service/Method`): it is never shortened.
        strip_path: r.strip_path && !grpc_only,
        preserve_host: r.preserve_host,
        accepts_plain,
        grpc_only,
        https_redirect,
    })
}
