//! Group commit for SQLite: one writer thread runs every queued write in one transaction.
//!
//! SQLite allows one writer at a time and a durable commit costs an `fsync`. Instead of
//! queueing callers on the database lock, the writer drains whatever operations are waiting,
//! runs each inside its own savepoint (so one failure undoes only itself), commits once, and
//! then answers every caller. Under load many writes share one `fsync`; alone, a write costs
//! the same as before. No caller hears "ok" before its data is durable.
//!
//! The writer is a plain thread that owns its connection: operations are futures, but on
//! SQLite every query completes without waiting, so the thread polls each to completion in
//! place and statements cost no thread hand-off.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::StoreError;
use crate::conn::{Conn, Op};

/// How many operations one transaction takes at most, to bound the latency of a batch.
const MAX_BATCH: usize = 512;

/// A type-erased operation: runs on the connection and answers its caller itself, once the
/// transaction's fate is known, through the `Finish` it returns.
type Job = Box<dyn FnOnce(&mut rusqlite::Connection) -> (bool, Finish) + Send>;

/// Delivers an operation's result once its transaction's fate is known.
type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

enum Message {
    Job(Job),
    Close(oneshot::Sender<()>),
}

/// The handle to the writer thread.
pub(crate) struct GroupCommit {
    sender: mpsc::Sender<Message>,
}

impl GroupCommit {
    /// Starts the writer thread on `conn`, which must not be used by anything else.
    pub(crate) fn start(conn: rusqlite::Connection) -> Result<Self, StoreError> {
        let (sender, receiver) = mpsc::channel();
        std::thread::Builder::new()
            .name("gangplank-sqlite-writer".to_owned())
            .spawn(move || run_writer(conn, receiver))
            .map_err(|e| StoreError::Database(format!("starting the database writer: {e}")))?;
        Ok(GroupCommit { sender })
    }

    /// Queues `op` and waits until it is committed (or has failed).
    pub(crate) async fn submit<T: Send + 'static>(&self, op: Op<T>) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(move |sqlite| {
            let outcome = futures::executor::block_on(op(&mut Conn::Sqlite(sqlite)));
            let succeeded = outcome.is_ok();
            let finish: Finish = Box::new(move |commit: Result<(), StoreError>| {
                let _ = reply.send(commit.and(outcome));
            });
            (succeeded, finish)
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

fn run_writer(mut conn: rusqlite::Connection, receiver: mpsc::Receiver<Message>) {
    let mut batch: Vec<Job> = Vec::new();
    let mut closing = None;
    while let Ok(message) = receiver.recv() {
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
            commit_batch(&mut conn, std::mem::take(&mut batch));
        }
        if let Some(done) = closing.take() {
            let _ = done.send(());
            return;
        }
    }
}

/// Runs one batch in one transaction. A job that panicked is dropped, which answers its caller
/// with an error; an infrastructure failure (the savepoint or the commit) fails the whole
/// batch, so nobody hears "ok" for a write that was rolled back.
fn commit_batch(conn: &mut rusqlite::Connection, batch: Vec<Job>) {
    if let Err(error) = exec(conn, "BEGIN IMMEDIATE") {
        tracing::error!(%error, "could not begin a write transaction");
        return;
    }
    let mut finishes = Vec::with_capacity(batch.len());
    let mut outcome = Ok(());
    for job in batch {
        if let Err(error) = exec(conn, "SAVEPOINT op") {
            outcome = Err(error);
            break;
        }
        let succeeded = match std::panic::catch_unwind(AssertUnwindSafe(|| job(conn))) {
            Ok((succeeded, finish)) => {
                finishes.push(finish);
                succeeded
            }
            Err(_) => {
                tracing::error!("a write operation panicked; it was rolled back");
                false
            }
        };
        let end = if succeeded {
            exec(conn, "RELEASE op")
        } else {
            conn.execute_batch("ROLLBACK TO op; RELEASE op")
        };
        if let Err(error) = end {
            outcome = Err(error);
            break;
        }
    }
    let outcome = outcome.and_then(|()| exec(conn, "COMMIT"));
    let outcome = outcome.map_err(|error| {
        tracing::error!(%error, "a write transaction failed; the batch was rolled back");
        let _ = conn.execute_batch("ROLLBACK");
        StoreError::from(error)
    });
    for finish in finishes {
        finish(outcome.clone());
    }
}

/// Runs one statement from the connection's statement cache (these run for every operation).
fn exec(conn: &rusqlite::Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}
