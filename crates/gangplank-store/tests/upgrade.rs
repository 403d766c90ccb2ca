//! Upgrading an older database: migration 0008's one-active-deployment index must not abort
//! startup when the database already holds two active deployments in one environment (two
//! replicas on PostgreSQL could create them at once before); the newest stays active.

use std::path::Path;

use gangplank_store::Store;
use sqlx::ConnectOptions;
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqliteConnectOptions;

#[tokio::test]
async fn two_active_deployments_in_one_environment_keep_only_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("db.sqlite");
    // The database as release 0007 left it.
    let mut before = Migrator::new(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/migrations/sqlite"
    )))
    .await
    .unwrap();
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version < 8)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    // Only the deployment tables matter here: no organization or app rows.
    let mut conn = SqliteConnectOptions::new()
        .filename(&file)
        .create_if_missing(true)
        .foreign_keys(false)
        .connect()
        .await
        .unwrap();
    before.run(&mut conn).await.unwrap();
    for (seq, id, env, status) in [
        (1, "old", "dev", "in progress"),
        (2, "new", "dev", "pending"),
        (3, "done", "dev", "succeeded"),
        (4, "other", "prod", "in progress"),
    ] {
        sqlx::query(
            "INSERT INTO deploys (seq, org_id, app_id, env_id, id, from_id, delta_id, set_id, \
             comment, status, status_changed_at, created_at, created_by, triggered_by) \
             VALUES (?, 'acme', 'shop', ?, ?, '', '', 's1', '', ?, 0, 0, 'admin', 'admin')",
        )
        .bind(seq)
        .bind(env)
        .bind(id)
        .bind(status)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    for id in ["old", "new", "other"] {
        sqlx::query(
            "INSERT INTO deploy_jobs (org_id, app_id, deploy_id, attempts, lease_until) \
             VALUES ('acme', 'shop', ?, 0, 0)",
        )
        .bind(id)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    drop(conn);

    let url = format!("sqlite://{}", file.display());
    let store = Store::connect(&url)
        .await
        .expect("the upgrade does not abort");
    drop(store);

    let mut conn = SqliteConnectOptions::new()
        .filename(&file)
        .connect()
        .await
        .unwrap();
    let statuses: Vec<(String, String, String)> =
        sqlx::query_as("SELECT id, status, failure FROM deploys ORDER BY seq")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let statuses: Vec<(&str, &str, &str)> = statuses
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("old", "failed", "errored"),
            ("new", "pending", ""),
            ("done", "succeeded", ""),
            ("other", "in progress", ""),
        ]
    );
    // Migration 0013 moved the deploy queue into the one work queue, in its order.
    let jobs: Vec<(String,)> =
        sqlx::query_as("SELECT subject_id FROM work_queue WHERE kind = 'deploy' ORDER BY seq")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(jobs, [("new".to_owned(),), ("other".to_owned(),)]);
    let errors: Vec<(String, String)> = sqlx::query_as("SELECT deploy_id, code FROM deploy_errors")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(errors, [("old".to_owned(), "GP-SUPERSEDED".to_owned())]);
}
