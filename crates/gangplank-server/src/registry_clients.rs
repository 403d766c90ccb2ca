//! Registry clients kept between uses. A client holds its connection pool, the registry's
//! auth challenge and its bearer tokens: made afresh for every step, each promotion paid a
//! TLS set-up, a scheme probe and a 401 round trip per repository before its first request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gangplank_oci::{Client, Credentials};
use sha2::{Digest, Sha256};

/// More distinct logins than this (ECR tokens rotate, credentials change) and the cache
/// starts afresh: old entries are never reused once their login changed.
const MAX_CLIENTS: usize = 256;

/// Clients by what they connect as: the host, TLS leniency and the login. The key is a hash,
/// so the cache's map holds no password.
#[derive(Default)]
pub struct RegistryClients {
    clients: Mutex<HashMap<[u8; 32], Arc<Client>>>,
}

impl RegistryClients {
    /// The client for `host` logged in as `creds`, made with `http` the first time.
    pub fn get(
        &self,
        http: &reqwest::Client,
        host: &str,
        creds: Option<Credentials>,
        insecure: bool,
    ) -> Arc<Client> {
        let key = key(host, creds.as_ref(), insecure);
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(client) = clients.get(&key) {
            return client.clone();
        }
        if clients.len() >= MAX_CLIENTS {
            clients.clear();
        }
        let client = Arc::new(Client::new(http.clone(), host, creds, insecure));
        clients.insert(key, client.clone());
        client
    }
}

fn key(host: &str, creds: Option<&Credentials>, insecure: bool) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in [host.as_bytes(), &[u8::from(insecure)]] {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    if let Some(creds) = creds {
        for part in [creds.username.as_bytes(), creds.password.as_bytes()] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part);
        }
    }
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(user: &str, password: &str) -> Option<Credentials> {
        Some(Credentials {
            username: user.to_owned(),
            password: password.to_owned(),
        })
    }

    #[test]
    fn one_client_per_login() {
        let cache = RegistryClients::default();
        let http = reqwest::Client::new();
        let a = cache.get(&http, "r.example", creds("u", "p"), false);
        assert!(Arc::ptr_eq(
            &a,
            &cache.get(&http, "r.example", creds("u", "p"), false)
        ));
        for other in [
            cache.get(&http, "r.example", creds("u", "q"), false),
            cache.get(&http, "r.example", creds("v", "p"), false),
            cache.get(&http, "r.example", None, false),
            cache.get(&http, "r.example", creds("u", "p"), true),
            cache.get(&http, "s.example", creds("u", "p"), false),
        ] {
            assert!(!Arc::ptr_eq(&a, &other));
        }
    }

    #[test]
    fn the_parts_of_a_login_do_not_run_together() {
        assert_ne!(
            key("h", creds("ab", "c").as_ref(), false),
            key("h", creds("a", "bc").as_ref(), false)
        );
    }
}
