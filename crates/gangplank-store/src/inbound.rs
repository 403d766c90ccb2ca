//! Inbound hooks (endpoints senders POST events to, each with a sealed secret) and the record
//! of every delivery they received. A sender's delivery id is unique per hook, so recording a
//! redelivery is how the server learns it has seen it and does nothing twice.

use gangplank_core::page::{Page, PageRequest};

use crate::conn::Conn;
use crate::page::{Keyed, after_ascending, after_descending, into_page};
use crate::sql::{query, row_struct};
use crate::{Store, StoreError};

/// A stored inbound hook; `secret_sealed` is ciphertext, `watches` a JSON list of prefixes.
#[derive(Clone, PartialEq, Eq)]
pub struct InboundHookRow {
    pub id: String,
    pub kind: String,
    pub secret_sealed: String,
    pub watches: String,
    pub registry: String,
    pub disabled: bool,
    pub created_at: i64,
    pub created_by: String,
}
row_struct!(InboundHookRow {
    id,
    kind,
    secret_sealed,
    watches,
    registry,
    disabled,
    created_at,
    created_by
});

impl std::fmt::Debug for InboundHookRow {
    // The sealed secret is ciphertext, but logs have no use for it either.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundHookRow")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("secret_sealed", &"***")
            .field("watches", &self.watches)
            .field("registry", &self.registry)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// One received delivery. `headers` and `caused` are JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundDeliveryRow {
    pub id: String,
    pub hook_id: String,
    pub received_at: i64,
    pub delivery_id: String,
    pub headers: String,
    pub body_sha256: String,
    pub verdict: String,
    pub message: String,
    pub caused: String,
}
row_struct!(InboundDeliveryRow {
    id,
    hook_id,
    received_at,
    delivery_id,
    headers,
    body_sha256,
    verdict,
    message,
    caused
});

/// The message of a delivery recorded but not yet acted on to the end.
pub const IN_PROGRESS: &str = "being processed";

/// What recording a delivery claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryClaim {
    /// Recorded: act on it.
    New,
    /// The sender's id was seen before and acted on (or is being acted on now): do nothing.
    Redelivery,
    /// The sender's id was seen, but acting on it never finished; act on it again, finishing
    /// the stored delivery `id`.
    Unfinished { id: String },
}

struct IdRow {
    id: String,
}
row_struct!(IdRow { id });

const HOOK_COLUMNS: &str = "SELECT id, kind, secret_sealed, watches, registry, disabled, \
     created_at, created_by FROM inbound_hooks";
const DELIVERY_COLUMNS: &str = "SELECT id, hook_id, received_at, delivery_id, headers, \
     body_sha256, verdict, message, caused FROM inbound_deliveries";

async fn hook_by_id(
    conn: &mut Conn<'_>,
    org_id: &str,
    id: &str,
) -> Result<InboundHookRow, StoreError> {
    query(format!("{HOOK_COLUMNS} WHERE org_id = $1 AND id = $2"))
        .bind(org_id)
        .bind(id)
        .fetch_optional::<InboundHookRow>(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no inbound hook {id}")))
}

impl Store {
    /// Creates an inbound hook; 409 on the same id.
    pub async fn create_inbound_hook(
        &self,
        org_id: &str,
        row: InboundHookRow,
    ) -> Result<InboundHookRow, StoreError> {
        let org_id = org_id.to_owned();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                query(
                    "INSERT INTO inbound_hooks (org_id, id, kind, secret_sealed, watches, registry, \
                     disabled, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&org_id)
                .bind(&row.id)
                .bind(&row.kind)
                .bind(&row.secret_sealed)
                .bind(&row.watches)
                .bind(&row.registry)
                .bind(row.disabled)
                .bind(row.created_at)
                .bind(&row.created_by)
                .execute(conn)
                .await
                .map_err(|e| {
                    e.conflict_as(|| format!("an inbound hook with id {} already exists", row.id))
                })?;
                Ok(row)
            })
        }))
        .await
    }

    /// A page of the organization's inbound hooks, by id.
    pub async fn list_inbound_hooks(
        &self,
        org_id: &str,
        page: &PageRequest,
    ) -> Result<Page<InboundHookRow>, StoreError> {
        let org_id = org_id.to_owned();
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let (_, after) = after_ascending(&page);
                let sql = format!(
                    "SELECT CAST(0 AS BIGINT) AS page_n, id AS page_s, {} WHERE org_id = $1 \
                     AND id > $2 ORDER BY id LIMIT $3",
                    HOOK_COLUMNS.trim_start_matches("SELECT ")
                );
                let rows = query(sql)
                    .bind(&org_id)
                    .bind(after)
                    .bind(page.fetch_limit())
                    .fetch_all::<Keyed<InboundHookRow>>(conn)
                    .await?;
                Ok(into_page(rows, &page))
            })
        }))
        .await
    }

    /// One inbound hook.
    pub async fn get_inbound_hook(
        &self,
        org_id: &str,
        id: &str,
    ) -> Result<InboundHookRow, StoreError> {
        let (org_id, id) = (org_id.to_owned(), id.to_owned());
        self.read(Box::new(move |conn| {
            Box::pin(async move { hook_by_id(conn, &org_id, &id).await })
        }))
        .await
    }

    /// Replaces an inbound hook's changeable fields (watches, registry, disabled).
    pub async fn update_inbound_hook(
        &self,
        org_id: &str,
        row: InboundHookRow,
    ) -> Result<InboundHookRow, StoreError> {
        let org_id = org_id.to_owned();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let changed = query(
                    "UPDATE inbound_hooks SET watches = $3, registry = $4, disabled = $5 \
                     WHERE org_id = $1 AND id = $2",
                )
                .bind(&org_id)
                .bind(&row.id)
                .bind(&row.watches)
                .bind(&row.registry)
                .bind(row.disabled)
                .execute(conn)
                .await?;
                if changed == 0 {
                    return Err(StoreError::NotFound(format!("no inbound hook {}", row.id)));
                }
                hook_by_id(conn, &org_id, &row.id).await
            })
        }))
        .await
    }

    /// Deletes an inbound hook and its deliveries.
    pub async fn delete_inbound_hook(&self, org_id: &str, id: &str) -> Result<(), StoreError> {
        let (org_id, id) = (org_id.to_owned(), id.to_owned());
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let removed = query("DELETE FROM inbound_hooks WHERE org_id = $1 AND id = $2")
                    .bind(&org_id)
                    .bind(&id)
                    .execute(conn)
                    .await?;
                if removed == 0 {
                    return Err(StoreError::NotFound(format!("no inbound hook {id}")));
                }
                query("DELETE FROM inbound_deliveries WHERE org_id = $1 AND hook_id = $2")
                    .bind(&org_id)
                    .bind(&id)
                    .execute(conn)
                    .await?;
                Ok(())
            })
        }))
        .await
    }

    /// Records a delivery, as the claim on its sender's delivery id. A hook that already holds
    /// a delivery with the same non-empty id answers [`DeliveryClaim::Redelivery`] and nothing
    /// is recorded, unless that delivery is still marked [`IN_PROGRESS`] and was received
    /// before `stale_before` (the server stopped while acting on it): then the claim passes to
    /// this one, atomically, and the stored delivery is acted on again under its own id.
    pub async fn record_inbound_delivery(
        &self,
        org_id: &str,
        row: InboundDeliveryRow,
        stale_before: i64,
    ) -> Result<DeliveryClaim, StoreError> {
        let org_id = org_id.to_owned();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let inserted = query(
                    "INSERT INTO inbound_deliveries (org_id, hook_id, id, received_at, delivery_id, \
                     headers, body_sha256, verdict, message, caused) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
                )
                .bind(&org_id)
                .bind(&row.hook_id)
                .bind(&row.id)
                .bind(row.received_at)
                .bind(&row.delivery_id)
                .bind(&row.headers)
                .bind(&row.body_sha256)
                .bind(&row.verdict)
                .bind(&row.message)
                .bind(&row.caused)
                .execute(conn)
                .await?;
                if inserted == 1 {
                    if row.verdict == "refused" {
                        // Only the newest refused deliveries stay: an unauthenticated sender
                        // cannot grow the table without bound.
                        query(
                            "DELETE FROM inbound_deliveries WHERE org_id = $1 AND hook_id = $2 \
                             AND verdict = 'refused' AND seq <= (SELECT seq FROM \
                             inbound_deliveries WHERE org_id = $1 AND hook_id = $2 \
                             AND verdict = 'refused' ORDER BY seq DESC LIMIT 1 OFFSET $3)",
                        )
                        .bind(&org_id)
                        .bind(&row.hook_id)
                        .bind(gangplank_core::inbound::MAX_REFUSED_DELIVERIES)
                        .execute(conn)
                        .await?;
                    }
                    return Ok(DeliveryClaim::New);
                }
                let taken = query(
                    "UPDATE inbound_deliveries SET received_at = $4 WHERE org_id = $1 \
                     AND hook_id = $2 AND delivery_id = $3 AND message = $5 AND received_at < $6",
                )
                .bind(&org_id)
                .bind(&row.hook_id)
                .bind(&row.delivery_id)
                .bind(row.received_at)
                .bind(IN_PROGRESS)
                .bind(stale_before)
                .execute(conn)
                .await?;
                if taken == 0 {
                    return Ok(DeliveryClaim::Redelivery);
                }
                let id = query(
                    "SELECT id FROM inbound_deliveries WHERE org_id = $1 AND hook_id = $2 \
                     AND delivery_id = $3",
                )
                .bind(&org_id)
                .bind(&row.hook_id)
                .bind(&row.delivery_id)
                .fetch_one::<IdRow>(conn)
                .await?;
                Ok(DeliveryClaim::Unfinished { id: id.id })
            })
        }))
        .await
    }

    /// Sets a recorded delivery's outcome once it has been acted on. With `release`, the
    /// sender's delivery id is cleared so that its retry is acted on (the outcome was a
    /// passing failure, e.g. an unreachable registry), not taken for a redelivery.
    #[allow(clippy::too_many_arguments)]
    pub async fn finish_inbound_delivery(
        &self,
        org_id: &str,
        hook_id: &str,
        id: &str,
        verdict: &str,
        message: &str,
        caused: &str,
        release: bool,
    ) -> Result<(), StoreError> {
        let (org_id, hook_id, id, verdict, message, caused) = (
            org_id.to_owned(),
            hook_id.to_owned(),
            id.to_owned(),
            verdict.to_owned(),
            message.to_owned(),
            caused.to_owned(),
        );
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let sql = if release {
                    "UPDATE inbound_deliveries SET verdict = $4, message = $5, caused = $6, \
                     delivery_id = '' WHERE org_id = $1 AND hook_id = $2 AND id = $3"
                } else {
                    "UPDATE inbound_deliveries SET verdict = $4, message = $5, caused = $6 \
                     WHERE org_id = $1 AND hook_id = $2 AND id = $3"
                };
                query(sql)
                    .bind(&org_id)
                    .bind(&hook_id)
                    .bind(&id)
                    .bind(&verdict)
                    .bind(&message)
                    .bind(&caused)
                    .execute(conn)
                    .await?;
                Ok(())
            })
        }))
        .await
    }

    /// A page of a hook's deliveries, newest first.
    pub async fn list_inbound_deliveries(
        &self,
        org_id: &str,
        hook_id: &str,
        page: &PageRequest,
    ) -> Result<Page<InboundDeliveryRow>, StoreError> {
        let (org_id, hook_id) = (org_id.to_owned(), hook_id.to_owned());
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT seq AS page_n, '' AS page_s, {} WHERE org_id = $1 AND hook_id = $2 \
                     AND seq < $3 ORDER BY seq DESC LIMIT $4",
                    DELIVERY_COLUMNS.trim_start_matches("SELECT ")
                );
                let rows = query(sql)
                    .bind(&org_id)
                    .bind(&hook_id)
                    .bind(after_descending(&page))
                    .bind(page.fetch_limit())
                    .fetch_all::<Keyed<InboundDeliveryRow>>(conn)
                    .await?;
                Ok(into_page(rows, &page))
            })
        }))
        .await
    }
}
