//! Tokens that verified, kept decoded. A client sends the same token until it expires, and
//! decoding it (three base64url parts, two JSON objects) is most of this plugin's own work.
//!
//! Only the decoding is remembered. The signature is still checked against the credential on
//! every request, so a changed or deleted credential takes effect at once, and so are the claims.
//! Only tokens whose signature verified are kept, so made-up tokens cannot crowd them out.

use crate::token::Token;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Most tokens kept; when full, the memo starts over.
const CAPACITY: usize = 1024;
/// Most bytes of token text kept; when over, the memo starts over.
const BUDGET: usize = 1 << 20;
/// Longer tokens are decoded on every request.
const LONGEST: usize = 4096;

#[derive(Default)]
struct Memo {
    decoded: HashMap<Box<str>, Rc<Token>>,
    bytes: usize,
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::default();
}

/// `token` decoded, if it verified before.
pub fn get(token: &str) -> Option<Rc<Token>> {
    MEMO.with_borrow(|m| m.decoded.get(token).cloned())
}

/// Keeps `decoded`, the decoding of `token`, whose signature has just verified.
pub fn remember(token: &str, decoded: &Rc<Token>) {
    if token.len() > LONGEST {
        return;
    }
    MEMO.with_borrow_mut(|m| {
        if m.decoded.len() >= CAPACITY || m.bytes + token.len() > BUDGET {
            *m = Memo::default();
        }
        m.bytes += token.len();
        m.decoded.insert(token.into(), Rc::clone(decoded));
    });
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
}
