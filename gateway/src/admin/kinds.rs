//! The entity kinds the Admin API serves, with Kong's names, keys and references.

/// One kind of entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// `/certificates`
    Certificates,
    /// `/snis` and `/certificates/{c}/snis`
    Snis,
    /// `/ca_certificates`
    CaCertificates,
    /// `/services`
    Services,
    /// `/routes`
    Routes,
    /// `/upstreams`
    Upstreams,
    /// `/upstreams/{u}/targets`
    Targets,
    /// `/consumers`
    Consumers,
    /// `/consumers/{c}/key-auth`
    KeyAuths,
    /// `/consumers/{c}/acls`
    Acls,
    /// `/consumers/{c}/jwt`
    Jwts,
    /// `/consumers/{c}/basic-auth`
    BasicAuths,
    /// `/consumers/{c}/hmac-auth`
    HmacAuths,
    /// `/plugins`
    Plugins,
    /// `/modules/{name}`: run-time module settings (not a Kong entity; served by its own handler).
    Modules,
}

/// A reference from one kind to another: the field and the kind it names.
pub(crate) type ForeignKey = (&'static str, Kind);

impl Kind {
    /// Every kind, parents before children.
    pub(crate) const ALL: [Kind; 15] = [
        Kind::Certificates,
        Kind::Snis,
        Kind::CaCertificates,
        Kind::Services,
        Kind::Routes,
        Kind::Upstreams,
        Kind::Targets,
        Kind::Consumers,
        Kind::KeyAuths,
        Kind::Acls,
        Kind::Jwts,
        Kind::BasicAuths,
        Kind::HmacAuths,
        Kind::Plugins,
        Kind::Modules,
    ];

    /// Kong's table name, used in messages and in the store.
    pub(crate) fn table(self) -> &'static str {
        match self {
            Kind::Certificates => "certificates",
            Kind::Snis => "snis",
            Kind::CaCertificates => "ca_certificates",
            Kind::Services => "services",
            Kind::Routes => "routes",
            Kind::Upstreams => "upstreams",
            Kind::Targets => "targets",
            Kind::Consumers => "consumers",
            Kind::KeyAuths => "keyauth_credentials",
            Kind::Acls => "acls",
            Kind::Jwts => "jwt_secrets",
            Kind::BasicAuths => "basicauth_credentials",
            Kind::HmacAuths => "hmacauth_credentials",
            Kind::Plugins => "plugins",
            Kind::Modules => "modules",
        }
    }

    /// The kind served at a top-level path segment (`/services`, `/key-auths`, ...).
    pub(crate) fn from_collection(segment: &str) -> Option<Kind> {
        Some(match segment {
            "certificates" => Kind::Certificates,
            "snis" => Kind::Snis,
            "ca_certificates" => Kind::CaCertificates,
            "services" => Kind::Services,
            "routes" => Kind::Routes,
            "upstreams" => Kind::Upstreams,
            "targets" => Kind::Targets,
            "consumers" => Kind::Consumers,
            "key-auths" => Kind::KeyAuths,
            "acls" => Kind::Acls,
            "jwts" => Kind::Jwts,
            "basic-auths" => Kind::BasicAuths,
            "hmac-auths" => Kind::HmacAuths,
            "plugins" => Kind::Plugins,
            _ => return None,
        })
    }

    /// The kind served under a parent entity (`/consumers/{c}/key-auth`, ...), and the field of
    /// the child that names the parent.
    pub(crate) fn nested(parent: Kind, segment: &str) -> Option<(Kind, &'static str)> {
        let child = match segment {
            "key-auth" => Kind::KeyAuths,
            "acls" => Kind::Acls,
            "jwt" => Kind::Jwts,
            "basic-auth" => Kind::BasicAuths,
            "hmac-auth" => Kind::HmacAuths,
            other => Kind::from_collection(other)?,
        };
        child.foreign_keys().iter().find(|(_, k)| *k == parent).map(|(field, _)| (child, *field))
    }

    /// Fields that name other entities.
    pub(crate) fn foreign_keys(self) -> &'static [ForeignKey] {
        match self {
            Kind::Snis => &[("certificate", Kind::Certificates)],
            Kind::Services => &[("client_certificate", Kind::Certificates)],
            Kind::Routes => &[("service", Kind::Services)],
            Kind::Targets => &[("upstream", Kind::Upstreams)],
            Kind::KeyAuths | Kind::Acls | Kind::Jwts | Kind::BasicAuths | Kind::HmacAuths => {
                &[("consumer", Kind::Consumers)]
            }
            Kind::Plugins => &[("route", Kind::Routes), ("service", Kind::Services), ("consumer", Kind::Consumers)],
            Kind::Certificates | Kind::CaCertificates | Kind::Upstreams | Kind::Consumers | Kind::Modules => &[],
        }
    }

    /// The reference a child cannot exist without (a target's upstream, a credential's consumer).
    pub(crate) fn owner(self) -> Option<ForeignKey> {
        match self {
            Kind::Snis
            | Kind::Targets
            | Kind::KeyAuths
            | Kind::Acls
            | Kind::Jwts
            | Kind::BasicAuths
            | Kind::HmacAuths => Some(self.foreign_keys()[0]),
            _ => None,
        }
    }

    /// Fields that identify an entity in a URL besides its id (`/services/{name}`). A
    /// certificate is also found by one of its names (see [`super::records::Records::find`]).
    pub(crate) fn endpoint_keys(self) -> &'static [&'static str] {
        match self {
            Kind::Snis => &["name"],
            Kind::Certificates | Kind::CaCertificates => &[],
            Kind::Services | Kind::Routes | Kind::Upstreams => &["name"],
            Kind::Consumers => &["username", "custom_id"],
            Kind::Targets => &["target"],
            Kind::KeyAuths | Kind::Jwts => &["key"],
            Kind::Acls => &["group"],
            Kind::BasicAuths | Kind::HmacAuths => &["username"],
            Kind::Plugins | Kind::Modules => &[],
        }
    }

    /// Sets of fields whose values must be unique together among entities of this kind.
    pub(crate) fn unique(self) -> &'static [&'static [&'static str]] {
        match self {
            Kind::Snis => &[&["name"]],
            Kind::Certificates | Kind::CaCertificates => &[],
            Kind::Services | Kind::Routes | Kind::Upstreams => &[&["name"]],
            Kind::Consumers => &[&["username"], &["custom_id"]],
            Kind::Targets => &[&["upstream", "target"]],
            Kind::KeyAuths | Kind::Jwts => &[&["key"]],
            Kind::Acls => &[&["consumer", "group"]],
            Kind::BasicAuths | Kind::HmacAuths => &[&["username"]],
            Kind::Plugins => &[&["name", "route", "service", "consumer"]],
            Kind::Modules => &[],
        }
    }

    /// Fields of the TOML model that the Admin API shape leaves out (children are their own
    /// entities; `url` is expanded).
    pub(crate) fn hidden(self) -> &'static [&'static str] {
        match self {
            Kind::Certificates => &["snis"],
            Kind::Services => &["routes", "url"],
            Kind::Upstreams => &["targets"],
            Kind::Consumers => {
                &["keyauth_credentials", "acls", "jwt_secrets", "basicauth_credentials", "hmacauth_credentials"]
            }
            _ => &[],
        }
    }

    /// Whether a DELETE of a parent removes this kind's entities that name it (Kong's cascade);
    /// otherwise the delete is refused while they exist (routes of a service, services that
    /// present a certificate).
    pub(crate) fn cascades(self) -> bool {
        !matches!(self, Kind::Routes | Kind::Services)
    }
}
