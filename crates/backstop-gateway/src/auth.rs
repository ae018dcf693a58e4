//! Client and admin bearer keys, compared in constant time.

use secrecy::{ExposeSecret, SecretString};

/// Who a request's bearer key says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// No key needed (auth is off) or a valid client key.
    Client,
    /// The admin key.
    Admin,
    /// No key, or a wrong one, while keys are required.
    Unknown,
}

/// The keys the gateway accepts. Held as secrets: never logged or printed.
#[derive(Default)]
pub struct Keys {
    clients: Vec<SecretString>,
    admin: Option<SecretString>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("clients", &self.clients.len())
            .field("admin", &self.admin.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl Keys {
    /// Keys from a comma-separated client list and an optional admin key.
    pub fn new(clients: Option<&str>, admin: Option<String>) -> Self {
        let clients = clients
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|k| SecretString::from(k.to_owned()))
            .collect();
        Self {
            clients,
            admin: admin
                .filter(|a| !a.trim().is_empty())
                .map(SecretString::from),
        }
    }

    /// True when requests must carry a key.
    pub fn required(&self) -> bool {
        !self.clients.is_empty() || self.admin.is_some()
    }

    /// True when an admin key is configured.
    pub fn has_admin(&self) -> bool {
        self.admin.is_some()
    }

    /// Classifies the `Authorization` header value.
    pub fn caller(&self, authorization: Option<&[u8]>) -> Caller {
        // The auth scheme is case-insensitive (RFC 9110 §11.1): `bearer KEY` is the same.
        let presented = authorization
            .and_then(|h| {
                let (scheme, key) = h.split_at_checked(7)?;
                scheme.eq_ignore_ascii_case(b"Bearer ").then_some(key)
            })
            .map(<[u8]>::trim_ascii);
        if let (Some(p), Some(admin)) = (presented, &self.admin)
            && ct_eq(p, admin.expose_secret().as_bytes())
        {
            return Caller::Admin;
        }
        if !self.required() {
            return Caller::Client;
        }
        match presented {
            // Check every key, so timing does not reveal which one matched.
            Some(p) => {
                let matched = self
                    .clients
                    .iter()
                    .fold(false, |m, k| ct_eq(p, k.expose_secret().as_bytes()) | m);
                if matched {
                    Caller::Client
                } else {
                    Caller::Unknown
                }
            }
            None => Caller::Unknown,
        }
    }
}

/// Equality whose time depends only on the lengths, not on where the bytes differ.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_classify_callers() {
        let k = Keys::new(Some("alpha, beta"), Some("root".into()));
        assert_eq!(k.caller(Some(b"Bearer alpha")), Caller::Client);
        assert_eq!(k.caller(Some(b"Bearer beta")), Caller::Client);
        assert_eq!(k.caller(Some(b"Bearer root")), Caller::Admin);
        assert_eq!(k.caller(Some(b"Bearer gamma")), Caller::Unknown);
        assert_eq!(k.caller(Some(b"alpha")), Caller::Unknown);
        assert_eq!(k.caller(None), Caller::Unknown);
        let open = Keys::new(None, None);
        assert!(!open.required());
        assert_eq!(open.caller(None), Caller::Client);
        assert!(!format!("{k:?}").contains("alpha"));
    }
}
