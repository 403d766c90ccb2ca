//! A promotion's journal of registry writes: each write is recorded `planned` before it is
//! made and `done` after, under a fixed sequence number per kind of write, so a resumed step
//! knows which writes certainly happened and re-checks the registry for one left `planned`.

use gangplank_store::{Store, TagOpRow};

use super::PromotionError;

/// The journal of one promotion, as last read or written.
pub struct Journal {
    promotion_id: String,
    ops: Vec<TagOpRow>,
}

/// One write to journal.
pub struct Write<'a> {
    pub seq: i64,
    pub op: &'a str,
    pub repository: &'a str,
    pub tag: &'a str,
    pub digest_before: &'a str,
    pub digest_after: &'a str,
}

impl Journal {
    /// Reads the journal of `promotion_id`.
    pub async fn load(store: &Store, promotion_id: &str) -> Result<Journal, PromotionError> {
        Ok(Journal {
            promotion_id: promotion_id.to_owned(),
            ops: store.tag_ops(promotion_id).await?,
        })
    }

    /// The journal of `promotion_id` as read with its record.
    pub fn new(promotion_id: &str, ops: Vec<TagOpRow>) -> Journal {
        Journal {
            promotion_id: promotion_id.to_owned(),
            ops,
        }
    }

    /// The entry `seq`, if written.
    pub fn get(&self, seq: i64) -> Option<&TagOpRow> {
        self.ops.iter().find(|o| o.seq == seq)
    }

    /// Whether write `seq` is known to be done.
    pub fn done(&self, seq: i64) -> bool {
        self.get(seq).is_some_and(|o| o.state == "done")
    }

    /// Records `write` in `state` (`planned`, `done`, `failed`).
    pub async fn record(
        &mut self,
        store: &Store,
        write: &Write<'_>,
        state: &str,
        now: i64,
    ) -> Result<(), PromotionError> {
        let row = self.note(write, state, now);
        store.journal_tag_op(&self.promotion_id, row).await?;
        Ok(())
    }

    /// Notes `write` in `state` here and returns the entry, for the caller to write with
    /// others in one transaction (`Store::record_promotion`).
    pub fn note(&mut self, write: &Write<'_>, state: &str, now: i64) -> TagOpRow {
        let row = TagOpRow {
            seq: write.seq,
            op: write.op.to_owned(),
            repository: write.repository.to_owned(),
            tag: write.tag.to_owned(),
            digest_before: write.digest_before.to_owned(),
            digest_after: write.digest_after.to_owned(),
            state: state.to_owned(),
            at: now,
        };
        match self.ops.iter_mut().find(|o| o.seq == write.seq) {
            Some(existing) => *existing = row.clone(),
            None => {
                self.ops.push(row.clone());
                self.ops.sort_by_key(|o| o.seq);
            }
        }
        row
    }
}
