//! Webhooks, and their outbox: events become delivery rows in the same transaction as the
//! change that caused them, so a committed change always gets its deliveries, even across a
//! crash.

use std::collections::BTreeMap;

use gangplank_core::webhook;
use serde_json::Value;

use gangplank_core::page::{Page, PageRequest};

use crate::conn::Conn;
use crate::page::{Keyed, after_ascending, after_descending, into_page};
use crate::sql::{query, row_struct};
use crate::{Store, StoreError};

/// A stored webhook. JSON columns are kept as text; `secret_sealed` is ciphertext, and so is
/// `headers` unless it is `{}` (the server seals the name → value map).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRow {
    pub id: String,
    pub app_id: String,
    pub url: String,
    pub disabled: bool,
    pub headers: String,
    pub payload: String,
    pub triggers: String,
    pub secret_sealed: String,
    pub created_at: i64,
    pub created_by: String,
}
row_struct!(WebhookRow {
    id,
    app_id,
    url,
    disabled,
    headers,
    payload,
    triggers,
    secret_sealed,
    created_at,
    created_by
});

/// A delivery, as listed to users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub id: String,
    pub webhook_id: String,
    pub event: String,
    pub url: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_status: i64,
    pub last_error: String,
    pub created_at: i64,
    pub finished_at: i64,
}
row_struct!(DeliveryRow {
    id,
    webhook_id,
    event,
    url,
    state,
    attempts,
    next_attempt_at,
    last_status,
    last_error,
    created_at,
    finished_at
});

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRow {
    pub delivery_id: String,
    pub n: i64,
    pub started_at: i64,
    pub duration_ms: i64,
    pub status_code: i64,
    pub error: String,
}
row_struct!(AttemptRow {
    delivery_id,
    n,
    started_at,
    duration_ms,
    status_code,
    error
});

/// A delivery claimed for sending, with what is needed to send it: the webhook's stored
/// (sealed) headers and secret, and the event's variables for the headers' placeholders.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: String,
    pub org_id: String,
    pub webhook_id: String,
    pub event: String,
    pub url: String,
    pub headers: String,
    pub vars: String,
    pub body: String,
    pub attempts: i64,
    pub created_at: i64,
    pub secret_sealed: String,
}
row_struct!(DueDelivery {
    id,
    org_id,
    webhook_id,
    event,
    url,
    headers,
    vars,
    body,
    attempts,
    created_at,
    secret_sealed
});

/// How an attempt ended, as the delivery worker decided.
#[derive(Debug, Clone)]
pub enum AttemptOutcome {
    Delivered,
    RetryAt(i64),
    Failed(String),
}

/// An attempt to record.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub started_at: i64,
    pub duration_ms: i64,
    /// 0 when no response arrived.
    pub status_code: i64,
    pub error: String,
    pub outcome: AttemptOutcome,
}

/// An event that happened, for the outbox.
#[derive(Debug, Clone)]
pub struct Event {
    pub org_id: String,
    /// The app whose webhooks hear it; `None` for org-wide events (every app's webhooks).
    pub app_id: Option<String>,
    pub scope: &'static str,
    pub kind: &'static str,
    /// The payload variables, `event` and `org_id` included.
    pub vars: BTreeMap<String, String>,
}

impl Event {
    /// An event with the common variables (`event`, `org_id`, `app_id` when app-scoped,
    /// `triggered_at`, `triggered_by`) and the event's own.
    pub(crate) fn new(
        org_id: &str,
        app_id: Option<&str>,
        (scope, kind): (&'static str, &'static str),
        triggered_by: &str,
        now: i64,
        own: &[(&str, &str)],
    ) -> Event {
        let mut vars: BTreeMap<String, String> = own
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        vars.insert("event".to_owned(), format!("{scope}.{kind}"));
        vars.insert("org_id".to_owned(), org_id.to_owned());
        vars.insert("triggered_by".to_owned(), triggered_by.to_owned());
        vars.insert(
            "triggered_at".to_owned(),
            gangplank_core::timestamp::format_millis(now),
        );
        if let Some(app_id) = app_id {
            vars.insert("app_id".to_owned(), app_id.to_owned());
        }
        Event {
            org_id: org_id.to_owned(),
            app_id: app_id.map(str::to_owned),
            scope,
            kind,
            vars,
        }
    }
}

const WEBHOOK_COLUMNS: &str = "SELECT id, app_id, url, disabled, headers, payload, triggers, \
     secret_sealed, created_at, created_by FROM webhooks";
const DELIVERY_COLUMNS: &str = "SELECT id, webhook_id, event, url, state, attempts, \
     next_attempt_at, last_status, last_error, created_at, finished_at FROM webhook_deliveries";

/// Writes one delivery row per enabled webhook that subscribes to `event` (no triggers means
/// all events), with its payload rendered now and the event's variables for its headers.
/// Returns how many were written.
pub(crate) async fn enqueue_event(
    conn: &mut Conn<'_>,
    event: &Event,
    now: i64,
) -> Result<usize, StoreError> {
    // Triggers are stored as serde_json writes them, so a LIKE on the exact member text
    // narrows the rows in SQL; the JSON check below stays the authority. The pattern is an
    // expression, not a bare parameter: SQLite re-prepares a statement whenever the value bound
    // to a bare LIKE parameter changes (it may use an index for it), which cost the writer a
    // quarter of its time.
    let sql = format!(
        "{WEBHOOK_COLUMNS} WHERE org_id = $1 AND ($2 IS NULL OR app_id = $2) AND NOT disabled \
         AND (triggers = '[]' OR triggers LIKE '%' || $3 || '%')"
    );
    let member = format!("\"scope\":\"{}\",\"type\":\"{}\"", event.scope, event.kind);
    let hooks = query(sql)
        .bind(&event.org_id)
        .bind(&event.app_id)
        .bind(&member)
        .fetch_all::<WebhookRow>(conn)
        .await?;
    let name = format!("{}.{}", event.scope, event.kind);
    let mut written = 0;
    for hook in hooks {
        let triggers: Vec<(String, String)> = serde_json::from_str::<Vec<Value>>(&hook.triggers)
            .unwrap_or_default()
            .iter()
            .map(|t| {
                let field = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                (field("scope"), field("type"))
            })
            .collect();
        let subscribed = triggers.is_empty()
            || triggers
                .iter()
                .any(|(scope, kind)| scope == event.scope && kind == event.kind);
        if !subscribed {
            continue;
        }
        let template: Value = serde_json::from_str(&hook.payload).unwrap_or(Value::Null);
        let body = webhook::render(&template, &event.vars).to_string();
        // Header values are sealed; the delivery worker renders them with these variables.
        let vars = serde_json::to_string(&event.vars).unwrap_or_else(|_| "{}".to_owned());
        let id = format!("msg_{}", uuid::Uuid::now_v7().simple());
        query(
            "INSERT INTO webhook_deliveries (id, org_id, app_id, webhook_id, event, url, headers, \
             vars, body, state, attempts, next_attempt_at, lease_until, last_status, last_error, \
             created_at, finished_at) \
             VALUES ($1, $2, $3, $4, $5, $6, '{}', $7, $8, 'pending', 0, $9, 0, 0, '', $9, 0)",
        )
        .bind(&id)
        .bind(&event.org_id)
        .bind(&hook.app_id)
        .bind(&hook.id)
        .bind(&name)
        .bind(&hook.url)
        .bind(&vars)
        .bind(&body)
        .bind(now)
        .execute(conn)
        .await?;
        written += 1;
    }
    Ok(written)
}

impl Store {
    /// Creates a webhook; its ID is unique in the organization.
    pub async fn create_webhook(
        &self,
        org_id: &str,
        row: WebhookRow,
    ) -> Result<WebhookRow, StoreError> {
        let org_id = org_id.to_owned();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                query(
                    "INSERT INTO webhooks (org_id, id, app_id, url, disabled, headers, payload, \
                     triggers, secret_sealed, created_at, created_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(&org_id)
                .bind(&row.id)
                .bind(&row.app_id)
                .bind(&row.url)
                .bind(row.disabled)
                .bind(&row.headers)
                .bind(&row.payload)
                .bind(&row.triggers)
                .bind(&row.secret_sealed)
                .bind(row.created_at)
                .bind(&row.created_by)
                .execute(conn)
                .await
                .map_err(|e| {
                    e.conflict_as(|| format!("a webhook {} exists in the organization", row.id))
                })?;
                Ok(row)
            })
        }))
        .await
    }

    /// A page of the webhooks of an app, by id.
    pub async fn list_webhooks(
        &self,
        org_id: &str,
        app_id: &str,
        page: &PageRequest,
    ) -> Result<Page<WebhookRow>, StoreError> {
        let (org_id, app_id) = (org_id.to_owned(), app_id.to_owned());
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let (_, after) = after_ascending(&page);
                // The key columns go in front of the shared column list (the outbox's hot
                // query reads that list and need not carry them).
                let sql = format!(
                    "SELECT CAST(0 AS BIGINT) AS page_n, id AS page_s, {} WHERE org_id = $1 \
                     AND app_id = $2 AND id > $3 ORDER BY id LIMIT $4",
                    WEBHOOK_COLUMNS.trim_start_matches("SELECT ")
                );
                let rows = query(sql)
                    .bind(&org_id)
                    .bind(&app_id)
                    .bind(after)
                    .bind(page.fetch_limit())
                    .fetch_all::<Keyed<WebhookRow>>(conn)
                    .await?;
                Ok(into_page(rows, &page))
            })
        }))
        .await
    }

    /// One webhook of an app.
    pub async fn get_webhook(
        &self,
        org_id: &str,
        app_id: &str,
        id: &str,
    ) -> Result<WebhookRow, StoreError> {
        let (org_id, app_id, id) = (org_id.to_owned(), app_id.to_owned(), id.to_owned());
        self.read(Box::new(move |conn| {
            Box::pin(async move { webhook_by_id(conn, &org_id, &app_id, &id).await })
        }))
        .await
    }

    /// Replaces a webhook's changeable fields (not its ID, secret or creation).
    pub async fn update_webhook(
        &self,
        org_id: &str,
        row: WebhookRow,
    ) -> Result<WebhookRow, StoreError> {
        let org_id = org_id.to_owned();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let changed = query(
                    "UPDATE webhooks SET url = $4, disabled = $5, headers = $6, payload = $7, \
                     triggers = $8 WHERE org_id = $1 AND app_id = $2 AND id = $3",
                )
                .bind(&org_id)
                .bind(&row.app_id)
                .bind(&row.id)
                .bind(&row.url)
                .bind(row.disabled)
                .bind(&row.headers)
                .bind(&row.payload)
                .bind(&row.triggers)
                .execute(conn)
                .await?;
                if changed == 0 {
                    return Err(StoreError::NotFound(format!("no webhook {}", row.id)));
                }
                webhook_by_id(conn, &org_id, &row.app_id, &row.id).await
            })
        }))
        .await
    }

    /// Deletes one webhook (`Some(id)`) or all of an app's (`None`), with their deliveries.
    pub async fn delete_webhooks(
        &self,
        org_id: &str,
        app_id: &str,
        id: Option<&str>,
    ) -> Result<(), StoreError> {
        let (org_id, app_id, id) = (org_id.to_owned(), app_id.to_owned(), id.map(str::to_owned));
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let removed = query(
                    "DELETE FROM webhooks WHERE org_id = $1 AND app_id = $2 AND ($3 IS NULL OR id = $3)"
                )
                .bind(&org_id)
                .bind(&app_id)
                .bind(&id)
                .execute(conn)
                .await?;
                match id {
                    Some(id) if removed == 0 => Err(StoreError::NotFound(format!("no webhook {id}"))),
                    _ => Ok(()),
                }
            })
        }))
        .await
    }

    /// A page of a webhook's deliveries, newest first, each with its attempts.
    pub async fn list_deliveries(
        &self,
        org_id: &str,
        webhook_id: &str,
        page: &PageRequest,
    ) -> Result<Page<(DeliveryRow, Vec<AttemptRow>)>, StoreError> {
        let (org_id, webhook_id) = (org_id.to_owned(), webhook_id.to_owned());
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT seq AS page_n, '' AS page_s, {} WHERE org_id = $1 AND webhook_id = $2 \
                     AND seq < $3 ORDER BY seq DESC LIMIT $4",
                    DELIVERY_COLUMNS.trim_start_matches("SELECT ")
                );
                let rows = query(sql)
                    .bind(&org_id)
                    .bind(&webhook_id)
                    .bind(after_descending(&page))
                    .bind(page.fetch_limit())
                    .fetch_all::<Keyed<DeliveryRow>>(conn)
                    .await?;
                let deliveries = into_page(rows, &page);
                let mut items = Vec::with_capacity(deliveries.items.len());
                for delivery in deliveries.items {
                    let attempts = query(
                        "SELECT delivery_id, n, started_at, duration_ms, status_code, error \
                         FROM webhook_attempts WHERE delivery_id = $1 ORDER BY n",
                    )
                    .bind(&delivery.id)
                    .fetch_all::<AttemptRow>(conn)
                    .await?;
                    items.push((delivery, attempts));
                }
                Ok(Page {
                    items,
                    next: deliveries.next,
                })
            })
        }))
        .await
    }

    /// Queues a delivery again, now, with the same ID (so receivers can deduplicate).
    pub async fn redeliver(
        &self,
        org_id: &str,
        webhook_id: &str,
        delivery_id: &str,
    ) -> Result<(), StoreError> {
        let (org_id, webhook_id, delivery_id) = (
            org_id.to_owned(),
            webhook_id.to_owned(),
            delivery_id.to_owned(),
        );
        let now = crate::now_millis();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let changed = query(
                    "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $4, \
                     lease_until = 0, finished_at = 0, created_at = $4 \
                     WHERE org_id = $1 AND webhook_id = $2 AND id = $3",
                )
                .bind(&org_id)
                .bind(&webhook_id)
                .bind(&delivery_id)
                .bind(now)
                .execute(conn)
                .await?;
                if changed == 0 {
                    return Err(StoreError::NotFound(format!("no delivery {delivery_id}")));
                }
                Ok(())
            })
        }))
        .await
    }

    /// Claims up to `limit` due deliveries for `lease_ms`; an unfinished claim (a crash) lapses
    /// and the delivery is claimed again.
    pub async fn claim_deliveries(
        &self,
        now: i64,
        limit: i64,
        lease_ms: i64,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let mut due = query(
                    "UPDATE webhook_deliveries SET lease_until = $2 WHERE seq IN \
                       (SELECT seq FROM webhook_deliveries WHERE state = 'pending' \
                        AND next_attempt_at <= $1 AND lease_until <= $1 ORDER BY next_attempt_at, seq LIMIT $3) \
                     RETURNING id, org_id, webhook_id, event, url, '' AS headers, vars, body, \
                       attempts, created_at, '' AS secret_sealed"
                )
                .bind(now)
                .bind(now + lease_ms)
                .bind(limit)
                .fetch_all::<DueDelivery>(conn)
                .await?;
                let mut hooks: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
                for delivery in &mut due {
                    let key = (delivery.org_id.clone(), delivery.webhook_id.clone());
                    if !hooks.contains_key(&key) {
                        let hook = query(
                            "SELECT secret_sealed, headers FROM webhooks WHERE org_id = $1 AND id = $2"
                        )
                        .bind(&key.0)
                        .bind(&key.1)
                        .fetch_optional::<(String, String)>(conn)
                        .await?;
                        hooks.insert(key.clone(), hook.unwrap_or_default());
                    }
                    let (secret, headers) = &hooks[&key];
                    delivery.secret_sealed.clone_from(secret);
                    delivery.headers.clone_from(headers);
                }
                Ok(due)
            })
        }))
        .await
    }

    /// When the next pending delivery is due, if any is pending.
    pub async fn next_delivery_due(&self) -> Result<Option<i64>, StoreError> {
        self.read(Box::new(|conn| {
            Box::pin(async move {
                query(
                    "SELECT MIN(CASE WHEN lease_until > next_attempt_at THEN lease_until \
                     ELSE next_attempt_at END) FROM webhook_deliveries WHERE state = 'pending'",
                )
                .fetch_one::<Option<i64>>(conn)
                .await
            })
        }))
        .await
    }

    /// Records an attempt and the delivery's new state.
    pub async fn record_attempt(
        &self,
        delivery_id: &str,
        attempt: Attempt,
    ) -> Result<(), StoreError> {
        let delivery_id = delivery_id.to_owned();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let n = query(
                    "UPDATE webhook_deliveries SET attempts = attempts + 1 WHERE id = $1 RETURNING attempts"
                )
                .bind(&delivery_id)
                .fetch_optional::<i64>(conn)
                .await?;
                // The webhook (and so the delivery) may have been deleted meanwhile.
                let Some(n) = n else { return Ok(()) };
                query(
                    "INSERT INTO webhook_attempts (delivery_id, n, started_at, duration_ms, status_code, error) \
                     VALUES ($1, $2, $3, $4, $5, $6)"
                )
                .bind(&delivery_id)
                .bind(n)
                .bind(attempt.started_at)
                .bind(attempt.duration_ms)
                .bind(attempt.status_code)
                .bind(&attempt.error)
                .execute(conn)
                .await?;
                let finished = attempt.started_at + attempt.duration_ms;
                let (state, next, finished_at, error) = match &attempt.outcome {
                    AttemptOutcome::Delivered => ("succeeded", 0, finished, String::new()),
                    AttemptOutcome::RetryAt(at) => ("pending", *at, 0, attempt.error.clone()),
                    AttemptOutcome::Failed(reason) => ("failed", 0, finished, reason.clone()),
                };
                query(
                    "UPDATE webhook_deliveries SET state = $2, next_attempt_at = $3, lease_until = 0, \
                     last_status = $4, last_error = $5, finished_at = $6 WHERE id = $1"
                )
                .bind(&delivery_id)
                .bind(state)
                .bind(next)
                .bind(attempt.status_code)
                .bind(&error)
                .bind(finished_at)
                .execute(conn)
                .await?;
                Ok(())
            })
        }))
        .await
    }
}

impl Store {
    /// Webhooks whose headers are still stored as plain JSON (from before they were sealed):
    /// (org, id, headers).
    pub async fn plain_webhook_headers(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        self.read(Box::new(|conn| {
            Box::pin(async move {
                query(
                    "SELECT org_id, id, headers FROM webhooks \
                     WHERE headers NOT LIKE 'k1:%' AND headers <> '{}'",
                )
                .fetch_all::<(String, String, String)>(conn)
                .await
            })
        }))
        .await
    }

    /// Replaces a webhook's plain headers with their sealed form, unless they changed.
    pub async fn seal_webhook_headers(
        &self,
        org_id: &str,
        id: &str,
        plain: &str,
        sealed: &str,
    ) -> Result<(), StoreError> {
        let (org_id, id, plain, sealed) = (
            org_id.to_owned(),
            id.to_owned(),
            plain.to_owned(),
            sealed.to_owned(),
        );
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                query("UPDATE webhooks SET headers = $4 WHERE org_id = $1 AND id = $2 AND headers = $3")
                    .bind(&org_id)
                    .bind(&id)
                    .bind(&plain)
                    .bind(&sealed)
                    .execute(conn)
                    .await?;
                Ok(())
            })
        }))
        .await
    }
}

async fn webhook_by_id(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    id: &str,
) -> Result<WebhookRow, StoreError> {
    let sql = format!("{WEBHOOK_COLUMNS} WHERE org_id = $1 AND app_id = $2 AND id = $3");
    query(sql)
        .bind(org_id)
        .bind(app_id)
        .bind(id)
        .fetch_optional::<WebhookRow>(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no webhook {id} in app {app_id}")))
}
