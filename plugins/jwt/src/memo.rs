//! Tokens that verified, kept decoded. A client sends the same token until it expires, and
//! decoding it (three base64url parts, two JSON objects) is most of this plugin's own work.
//!
//! Only the decoding is remembered. The signature is still checked against the credential on
//! every request, so a changed or deleted credential takes effect at once, and so are the claims.
//! Only tokens whose signature verified are kept, so made-up tokens cannot crowd them out.

use crate::token::Token;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::rc::Rc;

/// Most tokens kept; when full, the memo starts over.
const CAPACITY: usize = 1024;
/// Most bytes of token text kept; when over, the memo starts over.
const BUDGET: usize = 1 << 20;
/// Longer tokens are decoded on every request.
const LONGEST: usize = 4096;
/// The bytes of a token that its key hashes: its end, 96 bits of the signature.
const HASHED: usize = 16;

/// The memo's keys are already hashes (keyed ones: see [`Memo::key`]).
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("the keys are u64");
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[derive(Default)]
struct Memo {
    /// By [`Memo::key`]: the token and its decoding.
    decoded: HashMap<u64, (Box<str>, Rc<Token>), BuildHasherDefault<Prehashed>>,
    bytes: usize,
    seed: RandomState,
}

impl Memo {
    /// A keyed hash of the token's length and last bytes: its signature, which differs between
    /// any two tokens that verified, so hashing the rest would only cost time.
    fn key(&self, token: &str) -> u64 {
        let tail = &token.as_bytes()[token.len().saturating_sub(HASHED)..];
        self.seed.hash_one((token.len(), tail))
    }
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::default();
}

/// `token` decoded, if it verified before.
pub fn get(token: &str) -> Option<Rc<Token>> {
    MEMO.with_borrow(|m| {
        let (kept, decoded) = m.decoded.get(&m.key(token))?;
        same(kept.as_bytes(), token.as_bytes()).then(|| Rc::clone(decoded))
    })
}

/// Keeps `decoded`, the decoding of `token`, whose signature has just verified.
pub fn remember(token: &str, decoded: &Rc<Token>) {
    if token.len() > LONGEST {
        return;
    }
    MEMO.with_borrow_mut(|m| {
        if m.decoded.len() >= CAPACITY || m.bytes + token.len() > BUDGET {
            m.decoded.clear();
            m.bytes = 0;
        }
        m.bytes += token.len();
        let key = m.key(token);
        m.decoded.insert(key, (token.into(), Rc::clone(decoded)));
    });
}

/// `a == b`, eight bytes at a time: the `memcmp` that wasi-libc links compares byte by byte,
/// and was most of a look-up's cost.
fn same(a: &[u8], b: &[u8]) -> bool {
    let ((words_a, rest_a), (words_b, rest_b)) = (a.as_chunks::<8>(), b.as_chunks::<8>());
    a.len() == b.len()
        && words_a.iter().zip(words_b).all(|(x, y)| u64::from_ne_bytes(*x) == u64::from_ne_bytes(*y))
        && rest_a.iter().zip(rest_b).all(|(x, y)| x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `{"alg":"HS256"}` . `{"iss":"<n>"}` . "sig"
    fn token(n: usize) -> String {
        let claims =
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, format!("{{\"iss\":\"{n}\"}}"));
        format!("eyJhbGciOiJIUzI1NiJ9.{claims}.c2ln")
    }

    #[test]
    fn keeps_what_it_is_given_within_its_bounds() {
        let first = token(0);
        assert!(get(&first).is_none());
        remember(&first, &Rc::new(Token::parse(&first).unwrap()));
        assert_eq!(get(&first).unwrap().claims["iss"], "0");
        for n in 1..CAPACITY {
            let t = token(n);
            remember(&t, &Rc::new(Token::parse(&t).unwrap()));
        }
        assert!(get(&first).is_some(), "{CAPACITY} tokens fit");
        let one_more = token(CAPACITY);
        remember(&one_more, &Rc::new(Token::parse(&one_more).unwrap()));
        assert!(get(&first).is_none(), "a full memo starts over");
        assert!(get(&one_more).is_some());

        let long = format!("{}{}", token(0), "x".repeat(LONGEST));
        remember(&long, &Rc::new(Token::parse(&first).unwrap()));
        assert!(get(&long).is_none(), "too long to keep");
    }

    #[test]
    fn a_token_is_found_only_by_all_of_its_text() {
        let kept = token(7);
        remember(&kept, &Rc::new(Token::parse(&kept).unwrap()));
        // Another token with the same length and signature: the same key, but not the same token.
        let other = kept.replacen("eyJ", "eyK", 1);
        assert_eq!(other.len(), kept.len());
        assert!(get(&other).is_none());
        assert!(get(&kept).is_some());
        assert!(same(b"0123456789", b"0123456789"));
        assert!(!same(b"0123456789", b"0123456788"), "a difference past the last whole word");
        assert!(!same(b"0123456789", b"1123456789"));
        assert!(!same(b"012345678", b"0123456789"));
    }
}
