//! TLS session-ticket keys, rotated. The current key encrypts new tickets; it and the one before
//! it decrypt, so a ticket resumes for one to two rotation periods (`ssl_session_ticket_rotation`)
//! and a key that leaked stops being useful after two. A ticket under the previous key resumes
//! and gets a new ticket; one under an older or unknown key gets a full handshake, never an
//! error. Keys are random, in memory only, and shared by every `ssl` listener of the process.
//!
//! OpenSSL asks for them through its ticket-key callback (`SSL_CTX_set_tlsext_ticket_key_cb`),
//! which the `openssl` crate does not wrap; rotation happens in that callback, under a lock held
//! for a copy of 80 bytes, once the period is over.

use foreign_types_shared::ForeignTypeRef;
use openssl::ex_data::Index;
use openssl::ssl::{SslAcceptorBuilder, SslContext, SslRef};
use openssl_sys::{EVP_CIPHER_CTX, HMAC_CTX, SSL};
use std::ffi::{c_int, c_uchar};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// `SSL_CTRL_SET_TLSEXT_TICKET_KEY_CB` in OpenSSL's `ssl.h` (the setter is a macro over it).
const SET_TICKET_KEY_CB: c_int = 72;
/// Length of a ticket's key name, of its IV, and of each key.
const NAME_LEN: usize = 16;
const IV_LEN: usize = 16;
const KEY_LEN: usize = 32;

/// One key: its name (sent in the ticket), the HMAC-SHA256 key and the AES-256-CBC key.
#[derive(Clone, Copy)]
struct Key {
    name: [u8; NAME_LEN],
    hmac: [u8; KEY_LEN],
    aes: [u8; KEY_LEN],
}

impl Key {
    fn random() -> Result<Key, openssl::error::ErrorStack> {
        let mut key = Key { name: [0; NAME_LEN], hmac: [0; KEY_LEN], aes: [0; KEY_LEN] };
        openssl::rand::rand_bytes(&mut key.name)?;
        openssl::rand::rand_bytes(&mut key.hmac)?;
        openssl::rand::rand_bytes(&mut key.aes)?;
        Ok(key)
    }
}

struct Keys {
    current: Key,
    /// When `current` became current.
    since: Instant,
    /// The key before it, while tickets under it still resume.
    previous: Option<Key>,
}

/// The ticket keys of the process's TLS listeners.
pub(crate) struct TicketKeys {
    rotation: Duration,
    keys: Mutex<Keys>,
}

impl TicketKeys {
    /// Random keys, replaced every `rotation`.
    pub(crate) fn new(rotation: Duration) -> Result<Arc<TicketKeys>, openssl::error::ErrorStack> {
        let keys = Keys { current: Key::random()?, since: Instant::now(), previous: None };
        Ok(Arc::new(TicketKeys { rotation, keys: Mutex::new(keys) }))
    }

    /// Has the acceptor take its ticket keys from these.
    pub(crate) fn install(self: &Arc<Self>, b: &mut SslAcceptorBuilder) -> Result<(), openssl::error::ErrorStack> {
        b.set_ex_data(index()?, Arc::clone(self));
        type Callback = unsafe extern "C" fn(
            *mut SSL,
            *mut c_uchar,
            *mut c_uchar,
            *mut EVP_CIPHER_CTX,
            *mut HMAC_CTX,
            c_int,
        ) -> c_int;
        let callback: Callback = ticket_key_callback;
        // SAFETY: OpenSSL calls the function with the signature of `Callback` for this command
        // (`SSL_CTX_set_tlsext_ticket_key_cb`); the cast only erases it for the generic setter.
        let callback = unsafe { std::mem::transmute::<Callback, unsafe extern "C" fn()>(callback) };
        // SAFETY: the context pointer is the builder's own, alive for the call.
        unsafe { openssl_sys::SSL_CTX_callback_ctrl__fixed_rust(b.as_ptr(), SET_TICKET_KEY_CB, Some(callback)) };
        Ok(())
    }

    /// The key for a new ticket, after rotating if the period is over.
    fn for_new_ticket(&self, now: Instant) -> Option<Key> {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let age = now.saturating_duration_since(keys.since);
        if age >= self.rotation {
            let next = Key::random().ok()?;
            // A key current for two periods without a new ticket is too old to keep.
            keys.previous = (age < 2 * self.rotation).then_some(keys.current);
            keys.current = next;
            keys.since = now;
        }
        Some(keys.current)
    }

    /// The key named in a ticket, and whether it is the current one; `None` if it is unknown or
    /// retired.
    fn for_ticket(&self, name: &[u8], now: Instant) -> Option<(Key, bool)> {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let age = now.saturating_duration_since(keys.since);
        if keys.current.name == name && age < 2 * self.rotation {
            return Some((keys.current, age < self.rotation));
        }
        match keys.previous {
            Some(previous) if previous.name == name && age < self.rotation => Some((previous, false)),
            _ => None,
        }
    }
}

/// Where an acceptor keeps its [`TicketKeys`].
fn index() -> Result<Index<SslContext, Arc<TicketKeys>>, openssl::error::ErrorStack> {
    static INDEX: OnceLock<Index<SslContext, Arc<TicketKeys>>> = OnceLock::new();
    if let Some(index) = INDEX.get() {
        return Ok(*index);
    }
    let index = SslContext::new_ex_index()?;
    Ok(*INDEX.get_or_init(|| index))
}

/// OpenSSL's ticket-key callback: `enc` 1 sets up a new ticket (1 done, 0 none, -1 error); `enc` 0
/// sets up the decryption of one (1 done, 2 done and send a new ticket, 0 unknown key: a full
/// handshake).
unsafe extern "C" fn ticket_key_callback(
    ssl: *mut SSL,
    name: *mut c_uchar,
    iv: *mut c_uchar,
    cipher: *mut EVP_CIPHER_CTX,
    hmac: *mut HMAC_CTX,
    enc: c_int,
) -> c_int {
    // SAFETY: OpenSSL passes the connection being handshaken, a 16-byte name and a 16-byte IV
    // (EVP_MAX_IV_LENGTH) buffer, and live cipher and HMAC contexts, for this call only.
    unsafe {
        let ssl = SslRef::from_ptr(ssl);
        // Without keys (a context this module did not set up): no ticket, a full handshake.
        let Some(keys) = index().ok().and_then(|i| ssl.ssl_context().ex_data(i)) else { return 0 };
        let now = Instant::now();
        let name = std::slice::from_raw_parts_mut(name, NAME_LEN);
        let iv = std::slice::from_raw_parts_mut(iv, IV_LEN);
        let (key, renew) = if enc == 1 {
            let Some(key) = keys.for_new_ticket(now) else { return -1 };
            if openssl::rand::rand_bytes(iv).is_err() {
                return -1;
            }
            name.copy_from_slice(&key.name);
            (key, false)
        } else {
            match keys.for_ticket(name, now) {
                Some((key, current)) => (key, !current),
                None => return 0,
            }
        };
        let len = KEY_LEN as c_int;
        if openssl_sys::HMAC_Init_ex(
            hmac,
            key.hmac.as_ptr().cast(),
            len,
            openssl_sys::EVP_sha256(),
            std::ptr::null_mut(),
        ) != 1
        {
            return -1;
        }
        let aes = openssl_sys::EVP_aes_256_cbc();
        let engine = std::ptr::null_mut();
        let ready = match enc {
            1 => openssl_sys::EVP_EncryptInit_ex(cipher, aes, engine, key.aes.as_ptr(), iv.as_ptr()),
            _ => openssl_sys::EVP_DecryptInit_ex(cipher, aes, engine, key.aes.as_ptr(), iv.as_ptr()),
        };
        match (ready, renew) {
            (1, true) => 2,
            (1, false) => 1,
            _ => -1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_decrypts_for_two_periods_and_renews_in_the_second() {
        let period = Duration::from_secs(10);
        let keys = TicketKeys::new(period).unwrap();
        let t0 = keys.keys.lock().unwrap().since;
        let first = keys.for_new_ticket(t0).unwrap();
        assert_eq!(keys.for_ticket(&first.name, t0 + period / 2).map(|(_, current)| current), Some(true));
        // The next period: a new key; the first still decrypts, as the previous one.
        let second = keys.for_new_ticket(t0 + period).unwrap();
        assert_ne!(first.name, second.name);
        assert_eq!(keys.for_ticket(&first.name, t0 + period * 3 / 2).map(|(_, current)| current), Some(false));
        assert_eq!(keys.for_ticket(&second.name, t0 + period * 3 / 2).map(|(_, current)| current), Some(true));
        // Two periods on, the first is gone.
        assert!(keys.for_ticket(&first.name, t0 + period * 2).is_none());
        assert!(keys.for_ticket(&[0; NAME_LEN], t0).is_none());
        // Idle for two periods: nothing from before resumes.
        let third = keys.for_new_ticket(t0 + period * 5).unwrap();
        assert!(keys.for_ticket(&second.name, t0 + period * 5).is_none());
        assert!(keys.for_ticket(&third.name, t0 + period * 5).is_some());
    }
}
