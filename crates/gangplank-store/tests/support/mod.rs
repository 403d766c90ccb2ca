//! Shared set-up: a store on a fresh SQLite file, bootstrapped with organization `acme`.

use gangplank_store::{Bootstrap, Store};

/// The temporary directory (keep it alive), the store, and its database URL.
pub async fn bootstrapped_store() -> (tempfile::TempDir, Store, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let store = Store::connect(&url).await.unwrap();
    store
        .bootstrap(Bootstrap {
            org_id: "acme".into(),
            admin_user_id: "admin".into(),
            admin_name: "admin".into(),
            token_hash: "00".into(),
            env_types: vec![("development".into(), String::new())],
        })
        .await
        .unwrap();
    (dir, store, url)
}
