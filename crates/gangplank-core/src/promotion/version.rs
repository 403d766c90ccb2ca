//! A repository's version numbers: tags `MAJOR.MINOR` or `MAJOR.MINOR.PATCH`, every component
//! decimal digits read as a decimal integer (`0.09` is minor 9, never octal), ordered
//! numerically per component (`0.9` < `0.10`). Any other tag (`latest`, `v1.2`, `1`, `1.2-rc`)
//! is not a version and never yields one (the seed's `latest.1`).

use std::cmp::Ordering;
use std::fmt;

/// A parsed version tag. Ordered by (major, minor, patch) where a two-part tag sorts before a
/// three-part one of the same major and minor (`1.2` < `1.2.0` < `1.2.1`), then by the tag's
/// text, so the order is total and zero-padded spellings (`0.09`, `0.9`) stay distinct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: Option<u64>,
    /// The tag exactly as the registry has it.
    pub tag: String,
}

impl Version {
    /// The version a tag spells, or `None` when the tag is not a version.
    pub fn parse(tag: &str) -> Option<Version> {
        let parts: Vec<&str> = tag.split('.').collect();
        if !(2..=3).contains(&parts.len()) {
            return None;
        }
        let mut numbers = Vec::with_capacity(3);
        for part in &parts {
            if part.is_empty() || part.len() > 18 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            numbers.push(part.parse::<u64>().ok()?);
        }
        Some(Version {
            major: numbers[0],
            minor: numbers[1],
            patch: numbers.get(2).copied(),
            tag: tag.to_owned(),
        })
    }

    /// The next version after this one: one more minor, two parts, no padding (`0.09` → `0.10`,
    /// `1.2.3` → `1.3`).
    pub fn next(&self) -> String {
        format!("{}.{}", self.major, self.minor.saturating_add(1))
    }

    /// The highest version among `tags` (non-version tags ignored).
    pub fn highest<'a>(tags: impl IntoIterator<Item = &'a String>) -> Option<Version> {
        tags.into_iter().filter_map(|t| Version::parse(t)).max()
    }

    /// The version the next archived image gets: one above the highest, or `0.1` when the
    /// repository has no version yet.
    pub fn next_after<'a>(tags: impl IntoIterator<Item = &'a String>) -> String {
        Version::highest(tags).map_or_else(|| "0.1".to_owned(), |v| v.next())
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch, &self.tag).cmp(&(
            other.major,
            other.minor,
            other.patch,
            &other.tag,
        ))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.tag)
    }
}
