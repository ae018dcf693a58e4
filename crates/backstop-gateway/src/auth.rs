//! Client and admin bearer keys, compared in constant time. The two roles are separate: a
//! client key never opens an admin endpoint and the admin key is no client key.

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

/// What an endpoint asks of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Chat completions and models: a client key, when client keys are configured.
    Client,
    /// Read-only operational data (`/v1/breakers`, `/metrics`): a client key or the admin key,
    /// when client keys are configured.
    Monitor,
    /// Breaker trip and reset: the admin key, always.
    Admin,
}

/// Why a request may not proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No key, a wrong key, or an ambiguous one (401).
    Unauthenticated,
    /// A valid key of the other role (403).
    WrongRole,
    /// An admin endpoint while no admin key is configured (403).
    AdminDisabled,
}

/// A config names a key variable that yields no key: the gateway must not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The variable is not set.
    #[error(
        "server.{setting} names the environment variable {var}, but it is not set: set it, or remove {setting} from the config{hint}"
    )]
    Unset {
        /// `client_keys_env` or `admin_key_env`.
        setting: &'static str,
        /// The variable's name.
        var: String,
        /// What removing the setting means.
        hint: &'static str,
    },
    /// The variable is set but holds no key (empty, blank, or only separators).
    #[error(
        "server.{setting} names the environment variable {var}, but it holds no key (it is empty or only separators and spaces){hint}"
    )]
    NoKey {
        /// `client_keys_env` or `admin_key_env`.
        setting: &'static str,
        /// The variable's name.
        var: String,
        /// What the variable should hold.
        hint: &'static str,
    },
    /// The admin key is also one of the client keys, which would make every client an admin.
    #[error(
        "the admin key ({admin_var}) is also one of the client keys ({client_var}): use a different admin key"
    )]
    AdminIsClient {
        /// The admin key's variable.
        admin_var: String,
        /// The client keys' variable.
        client_var: String,
    },
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

/// Splits a comma-separated key list, trimming each key and dropping empty ones.
fn split_keys(list: &str) -> Vec<SecretString> {
    list.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| SecretString::from(k.to_owned()))
        .collect()
}

impl Keys {
    /// Keys from a comma-separated client list and an optional admin key (both trimmed).
    pub fn new(clients: Option<&str>, admin: Option<&str>) -> Self {
        Self {
            clients: clients.map(split_keys).unwrap_or_default(),
            admin: admin
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(|a| SecretString::from(a.to_owned())),
        }
    }

    /// Reads the keys from the variables the config names. A named variable that is unset
    /// or yields no key is an error: a gateway configured for keys never runs without them.
    pub fn from_env(
        client_keys_env: Option<&str>,
        admin_key_env: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, KeyError> {
        let mut keys = Keys::default();
        if let Some(var) = client_keys_env {
            let setting = "client_keys_env";
            let value = env(var).ok_or_else(|| KeyError::Unset {
                setting,
                var: var.to_owned(),
                hint: " to serve without client keys (loopback only)",
            })?;
            keys.clients = split_keys(&value);
            if keys.clients.is_empty() {
                return Err(KeyError::NoKey {
                    setting,
                    var: var.to_owned(),
                    hint: ": it must hold one or more keys separated by commas",
                });
            }
        }
        if let Some(var) = admin_key_env {
            let setting = "admin_key_env";
            let value = env(var).ok_or_else(|| KeyError::Unset {
                setting,
                var: var.to_owned(),
                hint: " to disable the admin endpoints",
            })?;
            let admin = value.trim();
            if admin.is_empty() {
                return Err(KeyError::NoKey {
                    setting,
                    var: var.to_owned(),
                    hint: ": it must hold the admin key",
                });
            }
            if keys
                .clients
                .iter()
                .any(|c| ct_eq(c.expose_secret().as_bytes(), admin.as_bytes()))
            {
                return Err(KeyError::AdminIsClient {
                    admin_var: var.to_owned(),
                    client_var: client_keys_env.unwrap_or_default().to_owned(),
                });
            }
            keys.admin = Some(SecretString::from(admin.to_owned()));
        }
        Ok(keys)
    }

    /// True when client endpoints need a client key.
    pub fn clients_required(&self) -> bool {
        !self.clients.is_empty()
    }

    /// True when an admin key is configured.
    pub fn has_admin(&self) -> bool {
        self.admin.is_some()
    }

    /// Every configured key, for scrubbing text that must never show one.
    pub fn secrets(&self) -> impl Iterator<Item = &SecretString> {
        self.clients.iter().chain(self.admin.as_ref())
    }

    /// Decides whether a request with these `Authorization` values may use an endpoint.
    /// Several values count as no valid key: a proxy in front may read another one than we do.
    pub fn check<'a>(
        &self,
        mut authorization: impl Iterator<Item = &'a [u8]>,
        access: Access,
    ) -> Result<(), Denied> {
        let first = authorization.next();
        let presented = if authorization.next().is_some() {
            None
        } else {
            first.and_then(bearer)
        };
        let is_admin = matches!((presented, &self.admin), (Some(p), Some(a)) if ct_eq(p, a.expose_secret().as_bytes()));
        // Check every key, so timing does not reveal which one matched.
        let is_client = presented.is_some_and(|p| {
            self.clients
                .iter()
                .fold(false, |m, k| ct_eq(p, k.expose_secret().as_bytes()) | m)
        });
        match access {
            Access::Client | Access::Monitor if !self.clients_required() => Ok(()),
            Access::Client if is_client => Ok(()),
            Access::Monitor if is_client || is_admin => Ok(()),
            Access::Client if is_admin => Err(Denied::WrongRole),
            Access::Client | Access::Monitor => Err(Denied::Unauthenticated),
            Access::Admin if !self.has_admin() => Err(Denied::AdminDisabled),
            Access::Admin if is_admin => Ok(()),
            Access::Admin if is_client => Err(Denied::WrongRole),
            Access::Admin => Err(Denied::Unauthenticated),
        }
    }
}

/// The key of a `Bearer` credential. The scheme is case-insensitive (RFC 9110 §11.1).
pub(crate) fn bearer(h: &[u8]) -> Option<&[u8]> {
    let (scheme, key) = h.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"Bearer ")
        .then_some(key.trim_ascii())
}

/// Equality whose time depends only on the lengths, not on where the bytes differ (`subtle`).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(k: &Keys, auth: Option<&str>, access: Access) -> Result<(), Denied> {
        k.check(auth.map(str::as_bytes).into_iter(), access)
    }

    #[test]
    fn roles_are_separate() {
        let k = Keys::new(Some("alpha, beta"), Some(" root\n"));
        assert_eq!(check(&k, Some("Bearer alpha"), Access::Client), Ok(()));
        assert_eq!(check(&k, Some("Bearer beta"), Access::Monitor), Ok(()));
        assert_eq!(
            check(&k, Some("Bearer root"), Access::Admin),
            Ok(()),
            "trimmed"
        );
        assert_eq!(check(&k, Some("Bearer root"), Access::Monitor), Ok(()));
        assert_eq!(
            check(&k, Some("Bearer root"), Access::Client),
            Err(Denied::WrongRole)
        );
        assert_eq!(
            check(&k, Some("Bearer alpha"), Access::Admin),
            Err(Denied::WrongRole)
        );
        for bad in [None, Some("Bearer gamma"), Some("alpha"), Some("Bearer ")] {
            assert_eq!(check(&k, bad, Access::Client), Err(Denied::Unauthenticated));
            assert_eq!(check(&k, bad, Access::Admin), Err(Denied::Unauthenticated));
        }
        assert!(!format!("{k:?}").contains("alpha"));
    }

    #[test]
    fn an_admin_key_alone_leaves_client_endpoints_to_the_no_key_rules() {
        let k = Keys::new(None, Some("root"));
        assert!(!k.clients_required());
        assert_eq!(check(&k, None, Access::Client), Ok(()));
        assert_eq!(check(&k, None, Access::Monitor), Ok(()));
        assert_eq!(check(&k, None, Access::Admin), Err(Denied::Unauthenticated));
        assert_eq!(check(&k, Some("Bearer root"), Access::Admin), Ok(()));
        let open = Keys::new(None, None);
        assert_eq!(
            check(&open, Some("Bearer x"), Access::Admin),
            Err(Denied::AdminDisabled)
        );
    }

    #[test]
    fn two_authorization_values_are_no_key() {
        let k = Keys::new(Some("alpha"), None);
        let both = [&b"Bearer alpha"[..], &b"Bearer junk"[..]];
        assert_eq!(
            k.check(both.into_iter(), Access::Client),
            Err(Denied::Unauthenticated)
        );
    }

    #[test]
    fn named_key_variables_that_yield_no_key_are_errors() {
        let env = |value: Option<&'static str>| move |_: &str| value.map(str::to_owned);
        for value in [Some(""), Some("  "), Some(" , ,, "), Some("\n")] {
            let e = Keys::from_env(Some("CK"), None, &env(value)).unwrap_err();
            assert!(matches!(e, KeyError::NoKey { .. }), "{value:?}: {e}");
            assert!(e.to_string().contains("CK"), "{e}");
        }
        let e = Keys::from_env(Some("CK"), None, &env(None)).unwrap_err();
        assert!(matches!(e, KeyError::Unset { .. }));
        assert!(
            e.to_string().contains("CK is not set")
                || e.to_string().contains("CK, but it is not set"),
            "{e}"
        );
        let e = Keys::from_env(None, Some("AK"), &env(Some(" \n"))).unwrap_err();
        assert!(e.to_string().contains("AK"), "{e}");
        let same = |var: &str| Some(if var == "CK" { "a,b" } else { "b\n" }.to_owned());
        let e = Keys::from_env(Some("CK"), Some("AK"), &same).unwrap_err();
        assert!(matches!(e, KeyError::AdminIsClient { .. }), "{e}");
        let ok = |var: &str| Some(if var == "CK" { "a, b" } else { "root\n" }.to_owned());
        let k = Keys::from_env(Some("CK"), Some("AK"), &ok).unwrap();
        assert!(k.clients_required() && k.has_admin());
        assert_eq!(check(&k, Some("Bearer root"), Access::Admin), Ok(()));
    }
}
