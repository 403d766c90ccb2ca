//! Group commit for SQLite: one writer task runs every queued write in one transaction.
//!
//! SQLite allows one writer at a time and a durable commit costs an `fsync`. Instead of
//! queueing callers on the database lock, the writer drains whatever operations are waiting,
//! runs each inside its own savepoint (so one failure undoes only itself), commits once, and
//! then answers every caller. Under load many writes share one `fsync`; alone, a write costs
//! the same as before. No caller hears "ok" before its data is durable.

use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use sqlx::SqliteConnection;
use tokio::sync::{mpsc, oneshot};

use crate::StoreError;
use crate::conn::{Conn, Op};

/// How many operations one transaction takes at most, to bound the latency of a batch.
const MAX_BATCH: usize = 512;

/// Delivers an operation's result once its transaction's fate is known.
type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// A type-erased operation: runs, says whether it succeeded, and hands back its `Finish`.
type Job = Box<
    dyn for<'c> FnOnce(&'c mut SqliteConnection) -> futures::future::BoxFuture<'c, (bool, Finish)>
        + Send,
>;

enum Message {
    Job(Job),
    Close(oneshot::Sender<()>),
}

/// The handle to the writer task.
pub(crate) struct GroupCommit {
    sender: mpsc::UnboundedSender<Message>,
}

impl GroupCommit {
    /// Starts the writer task on `conn`, which must not be used by anything else.
    pub(crate) fn start(conn: SqliteConnection) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run_writer(conn, receiver));
        GroupCommit { sender }
    }

    /// Queues `op` and waits until it is committed (or has failed).
    pub(crate) async fn submit<T: Send + 'static>(&self, op: Op<T>) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(move |sqlite| {
            Box::pin(async move {
                let outcome = op(&mut Conn::Sqlite(sqlite)).await;
                let succeeded = outcome.is_ok();
                let finish: Finish = Box::new(move |commit: Result<(), StoreError>| {
                    let result = commit.and(outcome);
                    let _ = reply.send(result);
                });
                (succeeded, finish)
            })
        });
        self.sender
            .send(Message::Job(job))
            .map_err(|_| StoreError::Database("the database writer has stopped".to_owned()))?;
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Database(
                "the write was not committed; see the server log".to_owned(),
            ))
        })
    }

    /// Lets queued writes finish, then stops the writer.
    pub(crate) async fn close(&self) {
        let (done, wait) = oneshot::channel();
        if self.sender.send(Message::Close(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

async fn run_writer(mut conn: SqliteConnection, mut receiver: mpsc::UnboundedReceiver<Message>) {
    let mut batch: Vec<Job> = Vec::new();
    let mut closing = None;
    while let Some(message) = receiver.recv().await {
        match message {
            Message::Job(job) => batch.push(job),
            Message::Close(done) => closing = Some(done),
        }
        while closing.is_none() && batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(Message::Job(job)) => batch.push(job),
                Ok(Message::Close(done)) => closing = Some(done),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit_batch(&mut conn, std::mem::take(&mut batch)).await;
        }
        if let Some(done) = closing.take() {
            let _ = done.send(());
            return;
        }
    }
}

async fn exec(conn: &mut SqliteConnection, sql: &'static str) -> Result<(), StoreError> {
    sqlx::raw_sql(sql)
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(StoreError::from)
}

/// Runs one batch in one transaction. Jobs whose connection work never ran are dropped, which
/// answers their callers with an error. Each statement is a round trip to sqlx's SQLite worker
/// thread, the writer's main cost, so the savepoint bookkeeping between two jobs (and around
/// the first and last) travels as one multi-statement call.
async fn commit_batch(conn: &mut SqliteConnection, batch: Vec<Job>) {
    if let Err(error) = exec(conn, "BEGIN IMMEDIATE; SAVEPOINT op").await {
        tracing::error!(%error, "could not begin a write transaction");
        let _ = exec(conn, "ROLLBACK").await;
        return;
    }
    let last = batch.len().saturating_sub(1);
    let mut finishes = Vec::with_capacity(batch.len());
    let mut outcome = Ok(());
    for (index, job) in batch.into_iter().enumerate() {
        let ran = AssertUnwindSafe(job(conn)).catch_unwind().await;
        let succeeded = match ran {
            Ok((succeeded, finish)) => {
                finishes.push(finish);
                succeeded
            }
            Err(_) => {
                tracing::error!("a write operation panicked; it was rolled back");
                false
            }
        };
        let undo = if succeeded {
            Ok(())
        } else {
            exec(conn, "ROLLBACK TO op").await
        };
        let next = if index == last {
            "RELEASE op; COMMIT"
        } else {
            "RELEASE op; SAVEPOINT op"
        };
        if let Err(error) = undo.and(exec(conn, next).await) {
            tracing::error!(%error, "a write transaction failed; the batch was rolled back");
            outcome = Err(error);
            break;
        }
    }
    if outcome.is_err() {
        let _ = exec(conn, "ROLLBACK").await;
    }
    for finish in finishes {
        finish(outcome.clone());
    }
}
