//! Finding a JWT in a request and taking it apart, as Kong's jwt plugin does.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// A token split into its parts, its header and claims decoded.
pub struct Token {
    /// Length of `header.payload`, the part of the token that the signature covers.
    signed: usize,
    /// The header's `alg`, one that [`supported`] names.
    alg: Box<str>,
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    pub signature: Vec<u8>,
}

/// Base64url without padding; padded input is accepted too, as Kong's decoder does.
fn decode(part: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()
}

fn object(part: &str) -> Option<Map<String, Value>> {
    match serde_json::from_slice(&decode(part)?).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

impl Token {
    /// Parses a token; the error is Kong's text after "Bad token; ".
    pub fn parse(token: &str) -> Result<Token, &'static str> {
        let mut parts = token.splitn(3, '.');
        let (Some(header), Some(claims), Some(signature)) = (parts.next(), parts.next(), parts.next()) else {
            return Err("invalid JSON");
        };
        let (Some(h), Some(c)) = (object(header), object(claims)) else { return Err("invalid JSON") };
        let Some(alg) = h.get("alg").and_then(Value::as_str).filter(|a| supported(a)) else {
            return Err("invalid alg");
        };
        let alg = alg.into();
        let signature = decode(signature).ok_or("invalid signature")?;
        Ok(Token { signed: header.len() + 1 + claims.len(), alg, header: h, claims: c, signature })
    }

    /// What the signature covers in `token`, the text this was parsed from: `header.payload`.
    pub fn signing_input<'t>(&self, token: &'t str) -> &'t str {
        &token[..self.signed]
    }

    /// The token header's algorithm (checked by [`Token::parse`]).
    pub fn alg(&self) -> &str {
        &self.alg
    }
}

/// The algorithms Kong's jwt plugin verifies.
fn supported(alg: &str) -> bool {
    matches!(
        alg,
        "HS256"
            | "HS384"
            | "HS512"
            | "RS256"
            | "RS384"
            | "RS512"
            | "ES256"
            | "ES384"
            | "ES512"
            | "PS256"
            | "PS384"
            | "PS512"
            | "EdDSA"
    )
}

/// The token in an `Authorization`-style value: what follows `Bearer` (or `bearer`) and blanks.
pub fn bearer(value: &str) -> Option<&str> {
    // The usual form first, without a search.
    let usual = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "));
    if let Some(token) = usual.map(|t| t.trim_start_matches([' ', '\t'])).filter(|t| !t.is_empty()) {
        return Some(token);
    }
    let mut rest = value;
    while let Some(at) = rest.find("earer") {
        let before = &rest[..at];
        let after = &rest[at + 5..];
        let token = after.trim_start_matches([' ', '\t']);
        if (before.ends_with('B') || before.ends_with('b')) && token.len() < after.len() && !token.is_empty() {
            return Some(token);
        }
        rest = after;
    }
    None
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'h>(header: &'h str, name: &str) -> Option<&'h str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then(|| v.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_kong() {
        // {"alg":"HS256","typ":"JWT"} . {"iss":"k"} . "sig"
        let t = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJrIn0.c2ln";
        let token = Token::parse(t).unwrap();
        assert_eq!(token.alg(), "HS256");
        assert_eq!(token.claims["iss"], "k");
        assert_eq!(token.signature, b"sig");
        assert_eq!(token.signing_input(t), "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJrIn0");
        assert_eq!(Token::parse("abc").err(), Some("invalid JSON"));
        assert_eq!(Token::parse("e30.e30.c2ln").err(), Some("invalid alg"), "{{}} has no alg");
        // {"alg":"none"}
        assert_eq!(Token::parse("eyJhbGciOiJub25lIn0.e30.").err(), Some("invalid alg"));
        assert_eq!(Token::parse("eyJhbGciOiJIUzI1NiJ9.e30.*").err(), Some("invalid signature"));
    }

    #[test]
    fn bearer_and_cookies() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("  bearer   abc.def"), Some("abc.def"));
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearerabc"), None);
        assert_eq!(cookie("a=1; jwt=t.o.k; b=2", "jwt"), Some("t.o.k"));
        assert_eq!(cookie("a=1", "jwt"), None);
    }
}
