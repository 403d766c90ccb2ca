//! Pipelines in the store on a real SQLite file: versions accumulate with etags, an outdated
//! etag is refused, lists page and filter, criteria conflict by their match attributes, and a
//! deleted pipeline takes its versions and criteria with it.

mod support;

use std::collections::BTreeMap;

use gangplank_core::page::PageRequest;
use gangplank_store::{CriteriaRow, NewApp, NewPipelineVersion, PipelineFilter, Store, StoreError};

async fn store_with_apps() -> (tempfile::TempDir, Store) {
    let (dir, store, _url) = support::bootstrapped_store().await;
    for app in ["shop", "blog"] {
        store
            .create_app(NewApp {
                org_id: "acme".into(),
                id: app.into(),
                name: app.into(),
                created_by: "admin".into(),
                env: None,
            })
            .await
            .unwrap();
    }
    (dir, store)
}

fn new_version(
    app: &str,
    id: &str,
    triggers: &[&str],
    meta: &[(&str, &str)],
) -> NewPipelineVersion {
    NewPipelineVersion {
        app_id: app.into(),
        pipeline_id: id.into(),
        name: format!("{id} pipeline"),
        trigger_types: triggers.iter().map(|t| (*t).to_owned()).collect(),
        metadata: meta
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        definition: format!("name: {id}\n"),
        created_by: "admin".into(),
    }
}

fn page(per_page: usize) -> PageRequest {
    PageRequest {
        per_page,
        after: None,
    }
}

#[tokio::test]
async fn versions_and_etags() {
    let (_dir, store) = store_with_apps().await;
    let (created, v1) = store
        .create_pipeline(
            "acme",
            new_version("shop", "promote", &["pipeline_call"], &[]),
            1000,
        )
        .await
        .unwrap();
    assert_eq!((created.status.as_str(), v1.seq), ("active", 1));
    assert_eq!(created.version_id, v1.id);
    assert_eq!(created.trigger_types, r#"["pipeline_call"]"#);
    let again = store
        .create_pipeline(
            "acme",
            new_version("shop", "promote", &["pipeline_call"], &[]),
            1001,
        )
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::Conflict(_)), "{again:?}");

    let stale = store
        .update_pipeline(
            "acme",
            new_version("shop", "promote", &["artefact"], &[]),
            Some("not-the-etag".into()),
            2000,
        )
        .await
        .unwrap_err();
    assert!(matches!(stale, StoreError::Refused(_)), "{stale:?}");
    let (updated, v2) = store
        .update_pipeline(
            "acme",
            new_version("shop", "promote", &["artefact"], &[]),
            Some(created.etag.clone()),
            2000,
        )
        .await
        .unwrap();
    assert_eq!(v2.seq, 2);
    assert_ne!(updated.etag, created.etag);
    assert_eq!(updated.created_at, 1000);
    assert_eq!(updated.trigger_types, r#"["artefact"]"#);

    let (_, old) = store
        .get_pipeline("acme", "shop", "promote", Some(&v1.id))
        .await
        .unwrap();
    assert_eq!(old.id, v1.id);
    let versions = store
        .list_pipeline_versions("acme", "shop", "promote", &page(1))
        .await
        .unwrap();
    assert_eq!(versions.items[0].id, v2.id);
    let next = PageRequest {
        per_page: 1,
        after: versions.next.clone(),
    };
    let rest = store
        .list_pipeline_versions("acme", "shop", "promote", &next)
        .await
        .unwrap();
    assert_eq!(rest.items[0].id, v1.id);
    assert!(rest.next.is_none());
    let missing = store
        .get_pipeline("acme", "shop", "promote", Some("nope"))
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))));
    let by_trigger = store
        .pipelines_with_trigger("acme", "artefact")
        .await
        .unwrap();
    assert_eq!(by_trigger.len(), 1);
    assert_eq!(by_trigger[0].1.id, v2.id);
}

#[tokio::test]
async fn lists_page_and_filter() {
    let (_dir, store) = store_with_apps().await;
    store
        .create_pipeline(
            "acme",
            new_version("shop", "a", &["pipeline_call"], &[("team", "x_y")]),
            1,
        )
        .await
        .unwrap();
    store
        .create_pipeline(
            "acme",
            new_version(
                "shop",
                "b",
                &["artefact", "pipeline_call"],
                &[("team", "xzy")],
            ),
            2,
        )
        .await
        .unwrap();
    store
        .create_pipeline(
            "acme",
            new_version("blog", "c", &["deployment_request"], &[]),
            2,
        )
        .await
        .unwrap();
    let ids = |rows: &[gangplank_store::PipelineRow]| -> Vec<String> {
        rows.iter()
            .map(|r| format!("{}/{}", r.app_id, r.id))
            .collect()
    };
    let all = PipelineFilter::default();
    let first = store
        .list_pipelines("acme", None, &all, &page(2))
        .await
        .unwrap();
    assert_eq!(ids(&first.items), ["shop/a", "blog/c"]);
    let second = store
        .list_pipelines(
            "acme",
            None,
            &all,
            &PageRequest {
                per_page: 2,
                after: first.next,
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&second.items), ["shop/b"]);
    assert!(second.next.is_none());

    let shop = store
        .list_pipelines("acme", Some("shop"), &all, &page(50))
        .await
        .unwrap();
    assert_eq!(ids(&shop.items), ["shop/a", "shop/b"]);
    let artefact = PipelineFilter {
        trigger: Some("artefact".into()),
        ..PipelineFilter::default()
    };
    let found = store
        .list_pipelines("acme", None, &artefact, &page(50))
        .await
        .unwrap();
    assert_eq!(ids(&found.items), ["shop/b"]);
    // `_` is a LIKE wildcard: the filter must match it literally.
    let team = PipelineFilter {
        metadata: BTreeMap::from([("team".to_owned(), "x_y".to_owned())]),
        ..PipelineFilter::default()
    };
    let found = store
        .list_pipelines("acme", None, &team, &page(50))
        .await
        .unwrap();
    assert_eq!(ids(&found.items), ["shop/a"]);
    let apps = PipelineFilter {
        apps: vec!["blog".into()],
        ..PipelineFilter::default()
    };
    let found = store
        .list_pipelines("acme", None, &apps, &page(50))
        .await
        .unwrap();
    assert_eq!(ids(&found.items), ["blog/c"]);
    let stranger = PipelineFilter {
        visible_to: Some("nobody".into()),
        ..PipelineFilter::default()
    };
    let found = store
        .list_pipelines("acme", None, &stranger, &page(50))
        .await
        .unwrap();
    assert!(found.items.is_empty());
}

fn criteria(id: &str, pipeline: &str, env_id: &str) -> CriteriaRow {
    CriteriaRow {
        org_id: "acme".into(),
        app_id: "shop".into(),
        pipeline_id: pipeline.into(),
        pipeline_name: String::new(),
        id: id.into(),
        trigger_type: "deployment_request".into(),
        env_type: String::new(),
        match_app_id: "shop".into(),
        env_id: env_id.into(),
        deployment_type: String::new(),
        created_at: 5,
    }
}

#[tokio::test]
async fn criteria_conflict_and_go_with_their_pipeline() {
    let (_dir, store) = store_with_apps().await;
    for id in ["p1", "p2"] {
        store
            .create_pipeline(
                "acme",
                new_version("shop", id, &["deployment_request"], &[]),
                1,
            )
            .await
            .unwrap();
    }
    let made = store
        .create_pipeline_criteria("acme", criteria("c1", "p1", "prod"))
        .await
        .unwrap();
    assert_eq!(made.pipeline_name, "p1 pipeline");
    let clash = store
        .create_pipeline_criteria("acme", criteria("c2", "p2", "prod"))
        .await
        .unwrap_err();
    assert!(matches!(clash, StoreError::Conflict(_)), "{clash:?}");
    store
        .create_pipeline_criteria("acme", criteria("c3", "p2", "test"))
        .await
        .unwrap();
    let no_pipeline = store
        .create_pipeline_criteria("acme", criteria("c4", "p9", "dev"))
        .await;
    assert!(matches!(no_pipeline, Err(StoreError::NotFound(_))));

    let all = store
        .list_pipeline_criteria("acme", "shop", None, &BTreeMap::new(), &page(50))
        .await
        .unwrap();
    assert_eq!(all.items.len(), 2);
    let prod = BTreeMap::from([("env_id".to_owned(), "prod".to_owned())]);
    let found = store
        .list_pipeline_criteria("acme", "shop", None, &prod, &page(50))
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].id, "c1");
    let of_p2 = store
        .list_pipeline_criteria("acme", "shop", Some("p2"), &BTreeMap::new(), &page(50))
        .await
        .unwrap();
    assert_eq!(of_p2.items[0].id, "c3");
    assert_eq!(
        store
            .deployment_request_criteria("acme", "shop")
            .await
            .unwrap()
            .len(),
        2
    );

    store
        .delete_pipeline("acme", "shop", "p1", None)
        .await
        .unwrap();
    let gone = store
        .get_pipeline_criteria("acme", "shop", "p1", "c1")
        .await;
    assert!(matches!(gone, Err(StoreError::NotFound(_))));
    assert!(matches!(
        store.get_pipeline("acme", "shop", "p1", None).await,
        Err(StoreError::NotFound(_))
    ));
    store
        .delete_pipeline_criteria("acme", "shop", "p2", "c3")
        .await
        .unwrap();
    let twice = store
        .delete_pipeline_criteria("acme", "shop", "p2", "c3")
        .await;
    assert!(matches!(twice, Err(StoreError::NotFound(_))));
    let stale = store
        .delete_pipeline("acme", "shop", "p2", Some("old".into()))
        .await;
    assert!(matches!(stale, Err(StoreError::Refused(_))));
}
