//! An in-process cache of the two lookups every API request makes (token → principal, and
//! org membership), so authentication costs no database round trip on the hot path.
//!
//! Only used on SQLite, where this process is the only writer and so sees every change. Only
//! positive answers are cached (unknown tokens cannot grow it), it is bounded, and every write
//! that can revoke access (`delete_token`, `set_org_role`, `remove_member`) clears it after
//! committing. An epoch counter stops a lookup that raced such a write from re-inserting what
//! it read before the write committed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{MemberRow, Principal};

/// Entries per map before it is cleared wholesale; a cheap bound, not an LRU.
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub(crate) struct AuthCache {
    epoch: AtomicU64,
    principals: Mutex<HashMap<String, Principal>>,
    members: Mutex<HashMap<(String, String), MemberRow>>,
}

impl AuthCache {
    /// The epoch to pass back to `put_*` after a database lookup.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    pub fn principal(&self, token_hash: &str) -> Option<Principal> {
        lock(&self.principals).get(token_hash).cloned()
    }

    pub fn member(&self, org_id: &str, user_id: &str) -> Option<MemberRow> {
        lock(&self.members)
            .get(&(org_id.to_owned(), user_id.to_owned()))
            .cloned()
    }

    pub fn put_principal(&self, epoch: u64, principal: &Principal) {
        let mut map = lock(&self.principals);
        if self.epoch() == epoch {
            bound(&mut map);
            map.insert(principal.token_hash.clone(), principal.clone());
        }
    }

    pub fn put_member(&self, epoch: u64, org_id: &str, member: &MemberRow) {
        let mut map = lock(&self.members);
        if self.epoch() == epoch {
            bound(&mut map);
            map.insert((org_id.to_owned(), member.id.clone()), member.clone());
        }
    }

    /// Forgets everything; call after committing a write that can revoke access.
    pub fn invalidate(&self) {
        let mut principals = lock(&self.principals);
        let mut members = lock(&self.members);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        principals.clear();
        members.clear();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a map half-updated in a harmful way.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn bound<K, V>(map: &mut HashMap<K, V>) {
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
}
