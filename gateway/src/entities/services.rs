//! `[[services]]` compiled: where each sends its requests, with its timeouts.

use super::{Destination, Service, UpstreamHttp, UpstreamTls};
use crate::balancer::Address;
use crate::config::{ConfigErrors, ServiceConfig};
use crate::tls::Certificates;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub(super) fn placeholder_service() -> Service {
    Service {
        id: String::new(),
        name: None,
        destination: Destination::Direct(Address::new(String::new(), 0, None)),
        path: "/".into(),
        retries: 0,
        connect_timeout: Duration::ZERO,
        read_timeout: Duration::ZERO,
        write_timeout: Duration::ZERO,
        tls: None,
        http: UpstreamHttp::H1,
    }
}

pub(super) fn service_label(s: &ServiceConfig, i: usize) -> String {
    match &s.name {
        Some(n) => format!("service {n:?}"),
        None => format!("services[{i}]"),
    }
}

pub(super) fn build_service(
    s: &ServiceConfig,
    label: &str,
    upstreams: &HashMap<String, usize>,
    certificates: &Certificates,
    errors: &mut ConfigErrors,
) -> Option<Service> {
    let before = errors.0.len();
    let (mut protocol, mut host, mut port, mut path) = (s.protocol.clone(), s.host.clone(), s.port, s.path.clone());
    if let Some(url) = &s.url {
        if s.protocol.is_some() || s.host.is_some() || s.port.is_some() || s.path.is_some() {
            errors.push(format!("{label}: url: give either `url` or protocol/host/port/path, not both"));
        }
        match split_url(url) {
            Ok((p, h, po, pa)) => (protocol, host, port, path) = (Some(p), Some(h), po, pa),
            Err(e) => errors.push(format!("{label}: url: {e}")),
        }
    }
    let protocol = protocol.unwrap_or_else(|| "http".into());
    let (tls, http) = match (protocol.as_str(), s.http2) {
        ("http", false) => (false, UpstreamHttp::H1),
        ("http", true) | ("grpc", _) => (false, UpstreamHttp::H2),
        ("https", false) => (true, UpstreamHttp::H1),
        ("https", true) => (true, UpstreamHttp::H2OrH1),
        ("grpcs", _) => (true, UpstreamHttp::H2),
        (other, _) => {
            errors.push(format!("{label}: protocol: {other:?} is not supported; use http, https, grpc or grpcs"));
            (false, UpstreamHttp::H1)
        }
    };
    if !tls {
        let given = [
            ("tls_verify", s.tls_verify.is_some()),
            ("tls_verify_depth", s.tls_verify_depth.is_some()),
            ("ca_certificates", s.ca_certificates.is_some()),
            ("client_certificate", s.client_certificate.is_some()),
        ];
        for (field, _) in given.iter().filter(|(_, given)| *given) {
            errors.push(format!("{label}: {field}: applies to protocols \"https\" and \"grpcs\" only"));
        }
    }
    let upstream_tls = |sni: &str, errors: &mut ConfigErrors| {
        let mut ca = Vec::new();
        for (i, id) in s.ca_certificates.iter().flatten().enumerate() {
            match certificates.ca(id) {
                Some(cert) => ca.push(cert.clone()),
                None => errors.push(format!(
                    "{label}: ca_certificates[{i}]: no CA certificate has id {id:?}; add it under [[ca_certificates]]"
                )),
            }
        }
        let client = s.client_certificate.as_ref().and_then(|id| {
            let found = certificates.client(id);
            if found.is_none() {
                errors.push(format!(
                    "{label}: client_certificate: no certificate has id or name {id:?}; add it under [[certificates]]"
                ));
            }
            found
        });
        UpstreamTls {
            sni: sni.to_string(),
            verify: s.tls_verify.unwrap_or(true),
            depth_check: s.tls_verify_depth.map(crate::tls::depth_check),
            ca: (!ca.is_empty()).then(|| Arc::new(ca.into_boxed_slice())),
            client,
        }
    };
    let Some(host) = host.filter(|h| !h.is_empty()) else {
        errors.push(format!("{label}: host: required (or give `url`, e.g. url = \"http://10.0.0.5:8080\")"));
        return None;
    };
    let port = port.unwrap_or(if tls { 443 } else { 80 });
    let tls = tls.then(|| upstream_tls(&host, errors));
    let path = path.unwrap_or_else(|| "/".into());
    if !path.starts_with('/') {
        errors.push(format!("{label}: path: {path:?} must start with '/'"));
    }
    let destination = match upstreams.get(&host) {
        Some(u) => Destination::Upstream(*u),
        None => match Address::parse(&format!("{host}:{port}"), port) {
            Ok(a) => Destination::Direct(a),
            Err(e) => {
                errors.push(format!("{label}: host: {e}"));
                return None;
            }
        },
    };
    let id = crate::ids::service_id(s, &host).unwrap_or_else(|e| {
        errors.push(format!("{label}: id: {e}"));
        String::new()
    });
    for (field, ms) in
        [("connect_timeout", s.connect_timeout), ("read_timeout", s.read_timeout), ("write_timeout", s.write_timeout)]
    {
        if ms == 0 {
            errors.push(format!("{label}: {field}: must be at least 1 (milliseconds)"));
        }
    }
    if errors.0.len() > before {
        return None;
    }
    Some(Service {
        id,
        name: s.name.clone(),
        destination,
        path,
        retries: s.retries,
        connect_timeout: Duration::from_millis(s.connect_timeout),
        read_timeout: Duration::from_millis(s.read_timeout),
        write_timeout: Duration::from_millis(s.write_timeout),
        tls,
        http,
    })
}

/// Splits `http://host[:port][/path]`.
pub(crate) fn split_url(url: &str) -> Result<(String, String, Option<u16>, Option<String>), String> {
    let (scheme, rest) =
        url.split_once("://").ok_or_else(|| format!("{url:?} is not a URL like http://host:port/path"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(rest[i..].to_string())),
        None => (rest, None),
    };
    let default_port = if matches!(scheme, "https" | "grpcs") { 443 } else { 80 };
    let addr = Address::parse(authority, default_port).map_err(|e| format!("in {url:?}: {e}"))?;
    let explicit_port = authority.rsplit_once(':').filter(|(_, p)| p.parse::<u16>().is_ok()).map(|_| addr.port);
    Ok((scheme.to_ascii_lowercase(), addr.host, explicit_port, path))
}
