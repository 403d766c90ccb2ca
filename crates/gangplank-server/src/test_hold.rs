//! A test-only hold point (`GANGPLANK_TEST_HOLD_AT=POINT:MARKER`): the server stops, forever,
//! at one named moment of its work after writing the file `MARKER`, so a test can SIGKILL it
//! exactly there and check that a restart resumes correctly. Read once at start; unset (the
//! only setting for real use) it costs one comparison per point passed.

use std::path::PathBuf;

/// The moments a server can be held at.
pub const POINTS: [&str; 1] = [
    // A promotion's archive tag (the version of the image live before it) is written and its
    // journal entry is `done`; the live tag has not moved yet.
    "promote.archived",
];

/// Where to hold, and the file that says the server got there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldPoint {
    pub point: String,
    pub marker: PathBuf,
}

impl HoldPoint {
    /// Parses `POINT:MARKER` (`MARKER` an absolute path), `POINT` one of [`POINTS`].
    pub fn parse(value: &str) -> Result<HoldPoint, String> {
        let (point, marker) = value
            .split_once(':')
            .ok_or_else(|| format!("{value:?} is not POINT:/path/to/marker"))?;
        if !POINTS.contains(&point) {
            return Err(format!(
                "{point:?} is not a hold point (known: {})",
                POINTS.join(", ")
            ));
        }
        let marker = PathBuf::from(marker);
        if !marker.is_absolute() {
            return Err(format!(
                "the marker {} is not an absolute path",
                marker.display()
            ));
        }
        Ok(HoldPoint {
            point: point.to_owned(),
            marker,
        })
    }
}

/// At `point`: when `hold` names it, writes `detail` to the marker file and never returns
/// (the task waits until the process is killed); otherwise returns at once.
pub async fn reached(hold: Option<&HoldPoint>, point: &str, detail: &str) {
    let Some(hold) = hold.filter(|h| h.point == point) else {
        return;
    };
    // Written to a temporary name and renamed, so a test polling for the marker never reads
    // it half-written.
    let partial = hold.marker.with_extension("partial");
    if let Err(error) =
        std::fs::write(&partial, detail).and_then(|()| std::fs::rename(&partial, &hold.marker))
    {
        tracing::error!(%error, marker = %hold.marker.display(), "writing the hold marker failed");
    }
    tracing::warn!(
        point,
        "held at a test hold point (GANGPLANK_TEST_HOLD_AT) until killed"
    );
    std::future::pending::<()>().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_points_and_absolute_markers_are_taken() {
        assert_eq!(
            HoldPoint::parse("promote.archived:/tmp/m").unwrap(),
            HoldPoint {
                point: "promote.archived".into(),
                marker: "/tmp/m".into()
            }
        );
        for bad in [
            "promote.archived",
            "nowhere:/tmp/m",
            "promote.archived:m",
            "",
        ] {
            assert!(HoldPoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn another_point_passes_at_once() {
        let hold = HoldPoint::parse("promote.archived:/nonexistent/m").unwrap();
        reached(Some(&hold), "elsewhere", "").await;
        reached(None, "promote.archived", "").await;
    }
}
