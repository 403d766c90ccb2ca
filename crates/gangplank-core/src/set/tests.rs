//! Set IDs and the images a set runs.

use serde_json::json;

use super::Set;

fn set_of(modules: serde_json::Value) -> Set {
    serde_json::from_value(json!({"modules": modules})).unwrap()
}

#[test]
fn id_depends_on_content_not_key_order() {
    let a: Set = serde_json::from_str(r#"{"modules":{"w":{"spec":{"b":1,"a":2}}}}"#).unwrap();
    let b: Set = serde_json::from_str(r#"{"modules":{"w":{"spec":{"a":2,"b":1}}}}"#).unwrap();
    assert_eq!(a.id(), b.id());
    assert_eq!(a.id().len(), 43, "unpadded base64url of 32 bytes");
    let c = set_of(json!({"w": {"spec": {"a": 2, "b": 3}}}));
    assert_ne!(a.id(), c.id());
    assert_ne!(Set::default().id(), a.id());
}

#[test]
fn container_images_and_normalised_repositories() {
    let set = set_of(json!({
        "app1": {"spec": {"containers": {"main": {"image": "nginx:1.25"}, "side": {"image": "docker.io/library/nginx@sha256:aa"}}}},
        "app2": {"spec": {"containers": {"main": {"image": "registry.test:5000/team/app2:abc"}}}},
        "noimage": {"spec": {"containers": {"main": {}}}}
    }));
    assert_eq!(set.container_images().len(), 3);
    assert_eq!(
        set.repositories(),
        vec!["docker.io/library/nginx", "registry.test:5000/team/app2"]
    );
}
