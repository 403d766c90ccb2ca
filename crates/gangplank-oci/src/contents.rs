//! What a manifest refers to, read from its bytes alone: the blobs of an image (or of an
//! artifact shaped like one), or the child manifests of an image index. Pure, so a hostile
//! manifest is judged before any request is made for what it names.

use serde_json::Value;

/// The most child manifests an image index may name for Gangplank to copy it. Each child costs
/// a manifest read and write plus its blobs' copies, so without a bound one hostile index could
/// make a promotion do unbounded work; real multi-platform images name a handful (twice that
/// with build attestations).
pub const MAX_INDEX_CHILDREN: usize = 64;

/// What a manifest refers to, every digest checked to be one (never a tag or a path).
#[derive(Debug, PartialEq, Eq)]
pub enum Contents {
    /// An image manifest, or an artifact with `config` or `layers`: its blobs, config first.
    Image(Vec<String>),
    /// An OCI image index or a Docker manifest list: its children, in the index's order.
    Index(Vec<String>),
}

/// Reads a manifest of `media_type`; the error says why it is not copied.
pub fn contents(media_type: &str, bytes: &[u8]) -> Result<Contents, String> {
    let parsed: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("the manifest is not JSON: {e}"))?;
    if let Some(children) = parsed.get("manifests") {
        return index_children(children).map(Contents::Index);
    }
    if parsed.get("config").is_none() && parsed.get("layers").is_none() {
        let media_type = if media_type.is_empty() {
            "(none given)"
        } else {
            media_type
        };
        return Err(format!(
            "a manifest of media type {} with neither config nor layers: only images, image \
             indexes and artifacts with config or layers are copied",
            clip(media_type)
        ));
    }
    image_blobs(&parsed).map(Contents::Image)
}

/// The digests of an index's `manifests`, at most `MAX_INDEX_CHILDREN` of them.
fn index_children(children: &Value) -> Result<Vec<String>, String> {
    let children = children
        .as_array()
        .ok_or("an image index whose manifests is not a list")?;
    if children.len() > MAX_INDEX_CHILDREN {
        return Err(format!(
            "an image index of {} manifests: at most {MAX_INDEX_CHILDREN} are copied",
            children.len()
        ));
    }
    children
        .iter()
        .map(|child| descriptor_digest(child, "manifests"))
        .collect()
}

/// The digests of an image's config and layers.
fn image_blobs(parsed: &Value) -> Result<Vec<String>, String> {
    let mut blobs = Vec::new();
    if let Some(config) = parsed.get("config") {
        blobs.push(descriptor_digest(config, "config")?);
    }
    if let Some(layers) = parsed.get("layers") {
        let layers = layers.as_array().ok_or("layers is not a list")?;
        for layer in layers {
            blobs.push(descriptor_digest(layer, "layers")?);
        }
    }
    Ok(blobs)
}

/// A descriptor's `digest`, refused unless it is one: it goes into request paths and queries,
/// and a child named by a tag would copy whatever that tag points at.
fn descriptor_digest(descriptor: &Value, field: &str) -> Result<String, String> {
    match descriptor.get("digest").and_then(Value::as_str) {
        Some(digest) if is_digest(digest) => Ok(digest.to_owned()),
        Some(digest) => Err(format!("{field} names {:?}, not a digest", clip(digest))),
        None => Err(format!("an entry of {field} has no digest")),
    }
}

/// Whether `text` is a digest in the OCI grammar: `algorithm:encoded`, the algorithm of
/// `[a-z0-9]` and `+._-`, the encoded part of `[a-zA-Z0-9=_-]`.
fn is_digest(text: &str) -> bool {
    let Some((algorithm, encoded)) = text.split_once(':') else {
        return false;
    };
    !algorithm.is_empty()
        && algorithm
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
        && !encoded.is_empty()
        && encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b))
}

/// At most 100 characters of a text a registry sent, for an error message.
fn clip(text: &str) -> String {
    text.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::{Contents, MAX_INDEX_CHILDREN, contents, is_digest};

    fn digest(n: usize) -> String {
        format!("sha256:{n:064x}")
    }

    #[test]
    fn an_image_lists_its_config_then_its_layers() {
        let manifest = format!(
            r#"{{"config":{{"digest":"{}"}},"layers":[{{"digest":"{}"}},{{"digest":"{}"}}]}}"#,
            digest(1),
            digest(2),
            digest(3)
        );
        assert_eq!(
            contents(
                "application/vnd.oci.image.manifest.v1+json",
                manifest.as_bytes()
            ),
            Ok(Contents::Image(vec![digest(1), digest(2), digest(3)]))
        );
    }

    #[test]
    fn an_index_lists_its_children_up_to_the_bound() {
        let index = |n: usize| {
            let children: Vec<String> = (0..n)
                .map(|i| format!(r#"{{"digest":"{}"}}"#, digest(i)))
                .collect();
            format!(r#"{{"manifests":[{}]}}"#, children.join(","))
        };
        assert_eq!(
            contents("", index(MAX_INDEX_CHILDREN).as_bytes()),
            Ok(Contents::Index(
                (0..MAX_INDEX_CHILDREN).map(digest).collect()
            ))
        );
        assert_eq!(
            contents("", index(MAX_INDEX_CHILDREN + 1).as_bytes()),
            Err("an image index of 65 manifests: at most 64 are copied".to_owned())
        );
    }

    #[test]
    fn refuses_what_it_cannot_copy_saying_why() {
        let refused = |media_type: &str, bytes: &str| contents(media_type, bytes.as_bytes());
        assert_eq!(
            refused(
                "application/vnd.oci.artifact.manifest.v1+json",
                r#"{"blobs":[]}"#
            ),
            Err(
                "a manifest of media type application/vnd.oci.artifact.manifest.v1+json with \
                 neither config nor layers: only images, image indexes and artifacts with \
                 config or layers are copied"
                    .to_owned()
            )
        );
        assert_eq!(
            refused("", r#"{"manifests":[{"digest":"latest"}]}"#),
            Err(r#"manifests names "latest", not a digest"#.to_owned())
        );
        assert_eq!(
            refused("", r#"{"config":{},"layers":[]}"#),
            Err("an entry of config has no digest".to_owned())
        );
        assert_eq!(
            refused("", r#"{"manifests":{}}"#),
            Err("an image index whose manifests is not a list".to_owned())
        );
        assert!(refused("", "not json").is_err());
    }

    #[test]
    fn digests_are_algorithm_and_encoded() {
        assert!(is_digest(&digest(7)));
        assert!(is_digest("sha512+b64u:abc-_="));
        for text in [
            "latest",
            "sha256:",
            ":abc",
            "sha256:../x",
            "sha256:a?b=c",
            "SHA256:ab",
        ] {
            assert!(!is_digest(text), "{text}");
        }
    }
}
