//! Registry watches: each due watch lists its repository's tags through the org's registry
//! client, keeps the new ones its filter accepts, and registers each through
//! `verified_versions::register` (which resolves the digest through the registry: a listing
//! alone is never trusted), then records them as seen and schedules the next poll. Schedules
//! and seen tags are in the store, so a restart continues where it was.
//!
//! All watches of one registry host share one request budget (`[watch] requests_per_minute`
//! tag-list calls per minute) and one back-off: the OCI client sits out a 429 for its
//! `Retry-After` (up to a minute, five times) before answering, and while it waits the host's
//! other watches wait behind it (one host's watches poll one after another, in a task of the
//! host's own, so other registries are not held up); a registry that
//! still answers 429 after that is left alone for four times the minimum interval (two minutes by
//! default), every watch of it, with the 429 recorded as their `last_error`. The budget and
//! back-off live in memory: after a restart each host starts with a fresh window.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use gangplank_core::image::RepositoryName;
use gangplank_core::watch::{Admission, RegistryBudget, TagFilter, new_tags};
use gangplank_oci::OciError;
use gangplank_store::{PollRecord, WatchRow};

use crate::state::AppState;
use crate::verified_versions::{Pushed, VerifyError, register};

/// Watches taken per tick.
const BATCH: i64 = 64;

/// The worker's memory: the per-host budget and back-off.
pub struct Watcher {
    budget: Mutex<RegistryBudget>,
    /// Why each backed-off host is backed off (the 429), for the watches put off meanwhile.
    reasons: Mutex<HashMap<String, String>>,
    /// Hosts whose polling task has not ended.
    busy: Mutex<HashSet<String>>,
    /// How long a host that still answers 429 is left alone, in ms.
    throttle_backoff_ms: i64,
}

impl Watcher {
    pub fn new(state: &AppState) -> Watcher {
        Watcher {
            budget: Mutex::new(RegistryBudget::new(state.watch_requests_per_minute)),
            reasons: Mutex::default(),
            busy: Mutex::default(),
            throttle_backoff_ms: state.watch_min_interval_seconds.saturating_mul(4_000),
        }
    }

    fn admit(&self, host: &str, now: i64) -> Admission {
        self.budget
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .admit(host, now)
    }

    fn back_off(&self, host: &str, until: i64, reason: &str) {
        self.budget
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .back_off(host, until);
        self.reasons
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(host.to_owned(), reason.to_owned());
    }

    fn reason(&self, host: &str) -> String {
        self.reasons
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(host)
            .cloned()
            .unwrap_or_default()
    }
}

/// What one tick started.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Due watches found (at most a batch).
    pub due: usize,
    /// Hosts whose due watches began polling (each in a task of its own).
    pub hosts_started: usize,
    /// Hosts skipped because their previous polling has not ended (a 429 being sat out).
    pub hosts_busy: usize,
    /// Due watches handed to the started hosts.
    pub watches: usize,
}

/// What one host's polling did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HostOutcome {
    /// Watches whose tags were listed.
    pub polled: usize,
    /// Versions registered (new ones, not those already known).
    pub registered: usize,
    /// Watches put off by the budget or a registry's back-off.
    pub deferred: usize,
    /// Watches whose poll failed (recorded as their `last_error`).
    pub failed: usize,
}

pub async fn run(state: AppState) {
    let watcher = Arc::new(Watcher::new(&state));
    loop {
        let now = gangplank_store::now_millis();
        let full = match tick(&state, &watcher, now).await {
            Ok(outcome) => {
                if outcome != Outcome::default() {
                    tracing::debug!(?outcome, "watches polling");
                }
                // A full batch may have left due watches behind: look again at once, unless
                // every host found is still busy (then their tasks wake the loop).
                i64::try_from(outcome.due).unwrap_or(i64::MAX) >= BATCH && outcome.hosts_started > 0
            }
            Err(error) => {
                tracing::error!(%error, "listing due watches failed");
                false
            }
        };
        if full {
            continue;
        }
        // Watches already due belong to hosts still polling: each such host's task wakes
        // the loop when it ends, so only future due times are waited for.
        let next = state.store.next_watch_due(now).await.ok().flatten();
        super::idle(&state.wake.watcher, next).await;
    }
}

/// Starts polling the watches due at `now`: hosts side by side, each in a task of its own
/// (so a host sitting out a 429 holds up no other), one host's watches in turn. A host whose
/// previous polling has not ended is skipped.
pub async fn tick(
    state: &AppState,
    watcher: &Arc<Watcher>,
    now: i64,
) -> Result<Outcome, gangplank_store::StoreError> {
    let due = state.store.due_watches(now, BATCH).await?;
    let mut outcome = Outcome {
        due: due.len(),
        ..Outcome::default()
    };
    let mut by_host: BTreeMap<String, Vec<WatchRow>> = BTreeMap::new();
    for watch in due {
        let host = RepositoryName::parse(&watch.image)
            .map(|name| name.domain().to_owned())
            .unwrap_or_default();
        by_host.entry(host).or_default().push(watch);
    }
    for (host, watches) in by_host {
        let Some(claim) = HostClaim::take(watcher, &host) else {
            outcome.hosts_busy += 1;
            continue;
        };
        outcome.hosts_started += 1;
        outcome.watches += watches.len();
        let state = state.clone();
        tokio::spawn(async move {
            match poll_host(&state, &claim.watcher, &claim.host, watches, now).await {
                Ok(done) => tracing::debug!(registry = %claim.host, ?done, "watches polled"),
                Err(error) => {
                    tracing::error!(registry = %claim.host, %error, "polling watches failed")
                }
            }
            drop(claim);
            state.wake.watcher.notify_one();
        });
    }
    Ok(outcome)
}

/// A host being polled; released when dropped (even by a panicking task).
struct HostClaim {
    watcher: Arc<Watcher>,
    host: String,
}

impl HostClaim {
    fn take(watcher: &Arc<Watcher>, host: &str) -> Option<HostClaim> {
        let mut busy = watcher
            .busy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        busy.insert(host.to_owned()).then(|| HostClaim {
            watcher: watcher.clone(),
            host: host.to_owned(),
        })
    }
}

impl Drop for HostClaim {
    fn drop(&mut self) {
        self.watcher
            .busy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.host);
    }
}

/// How one watch's poll ended.
enum Polled {
    Done {
        registered: usize,
        failed: bool,
    },
    /// The registry still answered 429 after the client sat it out.
    Throttled(String),
}

async fn poll_host(
    state: &AppState,
    watcher: &Watcher,
    host: &str,
    watches: Vec<WatchRow>,
    now: i64,
) -> Result<HostOutcome, gangplank_store::StoreError> {
    let host = host.to_owned();
    let mut outcome = HostOutcome::default();
    let mut throttled: Option<(i64, String)> = None;
    for listed in watches {
        // Read afresh: the row may predate the last poll of this host's previous task (then
        // it is no longer due, and its first-poll state may have changed) or be deleted.
        let watch = match state.store.get_watch(&listed.org_id, &listed.id).await {
            Ok(watch) if watch.next_poll_at <= now => watch,
            Ok(_) | Err(gangplank_store::StoreError::NotFound(_)) => continue,
            Err(error) => return Err(error),
        };
        if let Some((until, error)) = &throttled {
            put_off(state, &watch, *until, error).await?;
            outcome.deferred += 1;
            continue;
        }
        match watcher.admit(&host, now) {
            Admission::Go => {}
            // A spent budget is not a failure: last_error stays as it was.
            Admission::Spent(at) => {
                put_off(state, &watch, at, &watch.last_error).await?;
                outcome.deferred += 1;
                continue;
            }
            Admission::BackedOff(at) => {
                put_off(state, &watch, at, &watcher.reason(&host)).await?;
                outcome.deferred += 1;
                continue;
            }
        }
        match poll(state, &watch, now).await? {
            Polled::Done { registered, failed } => {
                outcome.polled += 1;
                outcome.registered += registered;
                outcome.failed += usize::from(failed);
            }
            Polled::Throttled(error) => {
                // From the clock, not the tick's start: the client may have sat out 429s.
                let until = gangplank_store::now_millis() + watcher.throttle_backoff_ms;
                watcher.back_off(&host, until, &error);
                tracing::warn!(registry = %host, %error, "registry throttles watches: backing off");
                put_off(state, &watch, until, &error).await?;
                outcome.deferred += 1;
                throttled = Some((until, error));
            }
        }
    }
    Ok(outcome)
}

/// Moves a watch's next poll to `until` without polling.
async fn put_off(
    state: &AppState,
    watch: &WatchRow,
    until: i64,
    error: &str,
) -> Result<(), gangplank_store::StoreError> {
    state
        .store
        .record_poll(
            &watch.org_id,
            &watch.id,
            PollRecord {
                polled_at: None,
                next_poll_at: until,
                error: error.to_owned(),
                seen: Vec::new(),
            },
        )
        .await
}

/// Lists one watch's tags and registers the new ones it accepts.
async fn poll(
    state: &AppState,
    watch: &WatchRow,
    now: i64,
) -> Result<Polled, gangplank_store::StoreError> {
    let next = now + watch.interval_seconds.saturating_mul(1000);
    let failed = |error: String| PollRecord {
        polled_at: None,
        next_poll_at: next,
        error,
        seen: Vec::new(),
    };
    // Both were checked when the watch was created; a stored one that no longer parses is
    // reported on the watch rather than polled.
    let (filter, image) = match (
        TagFilter::parse(&watch.filter_kind, &watch.filter_pattern),
        RepositoryName::parse(&watch.image),
    ) {
        (Ok(filter), Ok(image)) => (filter, image),
        (Err(e), _) => return record_failure(state, watch, failed(e.to_string())).await,
        (_, Err(e)) => return record_failure(state, watch, failed(e)).await,
    };
    let opened = match crate::registry_login::client_for(state, &watch.org_id, &image).await {
        Ok(opened) => opened,
        Err(crate::registry_login::ClientError::Store(e)) => return Err(e),
        Err(e) => return record_failure(state, watch, failed(e.to_string())).await,
    };
    let started = Instant::now();
    let listed = opened.client.all_tags(image.path()).await;
    crate::metrics::registry_call(
        &watch.org_id,
        &opened.registry_id,
        "list_tags",
        match &listed {
            Ok(_) => "ok",
            Err(error) => super::resolver::oci_outcome(error),
        },
        started.elapsed(),
    );
    let listed = match listed {
        Ok(tags) => tags,
        Err(error @ OciError::Status { status: 429, .. }) => {
            return Ok(Polled::Throttled(error.to_string()));
        }
        Err(error) => return record_failure(state, watch, failed(error.to_string())).await,
    };
    let seen: BTreeSet<String> = state
        .store
        .seen_tags(&watch.org_id, &watch.id)
        .await?
        .into_iter()
        .collect();
    let found = new_tags(&filter, &listed, &seen, watch.last_polled_at == 0);
    let mut record = PollRecord {
        polled_at: Some(now),
        next_poll_at: next,
        error: String::new(),
        seen: found
            .baseline
            .into_iter()
            .map(|tag| (tag, String::new()))
            .collect(),
    };
    let created_by = format!("watch:{}", watch.id);
    let mut registered = 0;
    for tag in found.register {
        let pushed = Pushed {
            image: image.clone(),
            tag: tag.clone(),
            git_ref: String::new(),
            commit: String::new(),
        };
        match register(state, &watch.org_id, &pushed, &created_by).await {
            Ok(done) => {
                if matches!(done, crate::verified_versions::Registered::Created(_)) {
                    registered += 1;
                }
                record.seen.push((tag, done.row().digest.clone()));
            }
            // Listed, then gone before it was resolved: the next poll looks again.
            Err(VerifyError::NotInRegistry { .. }) => {}
            // A tag that cannot be a version never will be: seen, with the reason.
            Err(VerifyError::Invalid(message)) => {
                record.error = format!("tag {tag}: {message}");
                record.seen.push((tag, String::new()));
            }
            Err(VerifyError::Store(e)) => return Err(e),
            // The registry could not be asked: the rest waits for the next poll.
            Err(error @ (VerifyError::Unavailable(_) | VerifyError::NoRegistry(_))) => {
                record.error = format!("tag {tag}: {error}");
                break;
            }
        }
    }
    let failed = !record.error.is_empty();
    state
        .store
        .record_poll(&watch.org_id, &watch.id, record)
        .await?;
    Ok(Polled::Done { registered, failed })
}

async fn record_failure(
    state: &AppState,
    watch: &WatchRow,
    record: PollRecord,
) -> Result<Polled, gangplank_store::StoreError> {
    tracing::warn!(org = %watch.org_id, watch = %watch.id, error = %record.error, "watch poll failed");
    state
        .store
        .record_poll(&watch.org_id, &watch.id, record)
        .await?;
    Ok(Polled::Done {
        registered: 0,
        failed: true,
    })
}
