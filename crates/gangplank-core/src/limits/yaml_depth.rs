//! A one-pass upper bound on how deeply a YAML document nests and how much work scanning it
//! takes, so a hostile document is refused before a YAML parser sees it.
//!
//! libyaml (under serde_yaml_ng) scans flow collections in time proportional to their depth
//! for every token: `{a: ` repeated 50,000 times takes seconds, and the deserializer's own
//! recursion limit only applies after the whole document was scanned. The scan follows
//! libyaml's token rules (where a quote, comment, flow indicator or block scalar may start) so
//! that brackets inside quotes, comments, plain scalars and block scalars are not counted;
//! block depth is the stack of indentation columns, with compact `- - x` forms counted per
//! indicator. It never allocates more than that stack.

/// Why a document is refused, and at which (1-based) line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// It nests deeper than allowed.
    TooDeep { line: usize },
    /// Its tokens, each weighted by the flow collections around it (what libyaml's scan costs),
    /// add up to more than allowed: many deep collections side by side.
    TooComplex { line: usize },
}

/// Checks that the nesting of `text` (flow collections plus block indentation levels) stays
/// within `max_depth`, and its scanning work within `max_work`, in one pass over the bytes.
pub fn check_yaml_depth(text: &[u8], max_depth: usize, max_work: usize) -> Result<(), Refused> {
    let mut scan = Scan::default();
    for (index, line) in lines(text).enumerate() {
        scan.line(line);
        if scan.peak > max_depth {
            return Err(Refused::TooDeep { line: index + 1 });
        }
        if scan.work > max_work {
            return Err(Refused::TooComplex { line: index + 1 });
        }
    }
    Ok(())
}

/// The lines of `text`, split where libyaml breaks a line (its `IS_BREAK`): LF, CR, CR LF
/// (one break), NEL (U+0085), LS (U+2028) and PS (U+2029). A comment ends at any of them, so
/// splitting on LF alone would let `# x\r` hide everything after it.
fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let text = rest?;
        let Some((at, len)) = next_break(text) else {
            rest = None;
            return Some(text);
        };
        rest = Some(&text[at + len..]);
        Some(&text[..at])
    })
}

/// Where the first line break in `text` starts, and how many bytes it takes.
fn next_break(text: &[u8]) -> Option<(usize, usize)> {
    text.iter().enumerate().find_map(|(at, &byte)| {
        let next = |n: usize| text.get(at + n).copied();
        match byte {
            b'\n' => Some((at, 1)),
            b'\r' if next(1) == Some(b'\n') => Some((at, 2)),
            b'\r' => Some((at, 1)),
            0xC2 if next(1) == Some(0x85) => Some((at, 2)),
            0xE2 if next(1) == Some(0x80) && matches!(next(2), Some(0xA8 | 0xA9)) => Some((at, 3)),
            _ => None,
        }
    })
}

#[derive(Default)]
struct Scan {
    /// Open flow collections.
    flow: usize,
    /// Columns of the open block nodes.
    block: Vec<usize>,
    /// The quote character of a quoted scalar continuing from an earlier line.
    quote: Option<u8>,
    /// Inside a block scalar (`|` or `>`) whose parent node is at this column.
    block_scalar: Option<usize>,
    /// The deepest nesting seen so far.
    peak: usize,
    /// The sum over tokens of the flow collections enclosing each.
    work: usize,
}

/// What the lexer is in the middle of, outside quotes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Where a token may start.
    Start,
    /// A plain scalar: quotes and (in block context) brackets inside it are text.
    Plain,
    /// An anchor, alias or tag: text up to a blank or flow indicator.
    Property,
}

fn blank(byte: Option<&u8>) -> bool {
    matches!(byte, None | Some(b' ' | b'\t' | b'\r'))
}

impl Scan {
    fn line(&mut self, line: &[u8]) {
        let indent = line.iter().take_while(|&&b| b == b' ').count();
        let rest = &line[indent..];
        let is_blank = rest.iter().all(u8::is_ascii_whitespace);
        if let Some(parent) = self.block_scalar {
            if is_blank || indent > parent {
                return;
            }
            self.block_scalar = None;
        }
        let mut start = indent;
        if self.quote.is_none() && self.flow == 0 && !is_blank && rest[0] != b'#' {
            while self.block.last().is_some_and(|&column| column >= indent) {
                self.block.pop();
            }
            self.block.push(indent);
            self.peak = self.peak.max(self.block.len());
            if rest.starts_with(b"---") && blank(rest.get(3)) {
                start += 3;
            }
            // Compact nesting on one line: `- - - x`, `? - x`, `- a: …`.
            loop {
                let at = start + line[start..].iter().take_while(|&&b| b == b' ').count();
                if !(matches!(line.get(at), Some(b'-' | b'?' | b':')) && blank(line.get(at + 1))) {
                    break;
                }
                start = at + 1;
                let next = start + line[start..].iter().take_while(|&&b| b == b' ').count();
                if !line[next..].iter().all(u8::is_ascii_whitespace) {
                    self.block.push(next);
                    self.peak = self.peak.max(self.block.len());
                }
            }
        }
        self.tokens(line, start);
    }

    fn tokens(&mut self, line: &[u8], from: usize) {
        let mut mode = Mode::Start;
        let mut after_blank = false;
        let mut i = from;
        while i < line.len() {
            let b = line[i];
            if let Some(quote) = self.quote {
                if quote == b'"' && b == b'\\' {
                    i += 1;
                } else if b == quote {
                    if quote == b'\'' && line.get(i + 1) == Some(&b'\'') {
                        i += 1;
                    } else {
                        self.quote = None;
                        mode = Mode::Start;
                        after_blank = false;
                    }
                }
                i += 1;
                continue;
            }
            if blank(Some(&b)) {
                after_blank = true;
                if mode == Mode::Property {
                    mode = Mode::Start;
                }
                i += 1;
                continue;
            }
            if b == b'#' && (mode == Mode::Start || after_blank) {
                return;
            }
            let in_flow = self.flow > 0;
            let flow_indicator = matches!(b, b'[' | b']' | b'{' | b'}' | b',');
            if mode == Mode::Start || (in_flow && flow_indicator) {
                mode = Mode::Start;
                self.work += self.flow;
                match b {
                    b'[' | b'{' => {
                        self.flow += 1;
                        self.peak = self.peak.max(self.block.len() + self.flow);
                    }
                    b']' | b'}' => self.flow = self.flow.saturating_sub(1),
                    b',' => {}
                    b'\'' | b'"' => self.quote = Some(b),
                    b'|' | b'>' if !in_flow => {
                        // The header (`|-`, `>2`, …) runs to the end of the line or a
                        // comment. It is read only as far as it is valid, so each byte is
                        // read at most twice however many `|` a line has.
                        let header_len = line[i + 1..]
                            .iter()
                            .take_while(|&&c| {
                                matches!(c, b'+' | b'-' | b'0'..=b'9' | b' ' | b'\t' | b'\r')
                            })
                            .count();
                        let after = line.get(i + 1 + header_len);
                        if matches!(after, None | Some(b'#')) {
                            // The scalar's lines are those indented more than its parent node.
                            let parent = match self.block.as_slice() {
                                [.., parent, own] if *own == i => *parent,
                                [.., own] if *own == i => 0,
                                [.., parent] => *parent,
                                [] => 0,
                            };
                            self.block_scalar = Some(parent);
                            return;
                        }
                        mode = Mode::Plain;
                    }
                    b':' | b'?' if in_flow || blank(line.get(i + 1)) => {}
                    b'-' if blank(line.get(i + 1)) => {}
                    b'&' | b'*' | b'!' => mode = Mode::Property,
                    _ => mode = Mode::Plain,
                }
            } else if mode == Mode::Plain && b == b':' && blank(line.get(i + 1)) {
                mode = Mode::Start;
            }
            after_blank = false;
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Refused, check_yaml_depth};

    fn depth_ok(text: &str, max: usize) -> bool {
        check_yaml_depth(text.as_bytes(), max, usize::MAX).is_ok()
    }

    #[test]
    fn ordinary_score_files_pass() {
        let score = "apiVersion: score.dev/v1b1\nmetadata:\n  name: shop # the shop\ncontainers:\n  main:\n    image: nginx:1.27\n    command: [\"sh\", \"-c\", \"echo ]]]] [ok\"]\n    args:\n      - |\n        if [ -f x ]; then [[[[\n        fi\n      - 'don''t [ '\n    variables:\n      A: \"{x}\"\nresources: {db: {type: postgres, params: {a: [1, [2]]}}}\n";
        assert!(depth_ok(score, 8), "{score}");
        assert!(!depth_ok(score, 4));
        assert!(depth_ok("{\"a\": {\"b\": [1, 2, {\"c\": null}]}}", 5));
        assert!(!depth_ok("{\"a\": {\"b\": [1, 2, {\"c\": null}]}}", 4));
        assert!(depth_ok("", 0));
    }

    #[test]
    fn deep_documents_are_refused_in_every_style() {
        let flow = format!("{}{}", "{a: ".repeat(200), "}".repeat(200));
        let seq = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let block = format!("{}x\n", "- ".repeat(200));
        let mut indented = String::new();
        for i in 0..200 {
            indented.push_str(&format!("{}k{i}:\n", " ".repeat(i)));
        }
        for doc in [flow, seq, block, indented] {
            assert!(
                matches!(
                    check_yaml_depth(doc.as_bytes(), 128, usize::MAX),
                    Err(Refused::TooDeep { .. })
                ),
                "{}",
                &doc[..40]
            );
        }
        assert_eq!(
            check_yaml_depth(b"a: 1\nb: [[[\n", 2, usize::MAX),
            Err(Refused::TooDeep { line: 2 })
        );
        let wide = format!("[{}]", "[[[[x]]]], ".repeat(100));
        assert_eq!(check_yaml_depth(wide.as_bytes(), 8, 10_000), Ok(()));
        assert_eq!(
            check_yaml_depth(wide.as_bytes(), 8, 1_000),
            Err(Refused::TooComplex { line: 1 })
        );
    }

    #[test]
    fn many_block_scalar_indicators_on_one_line_are_read_once() {
        // `[]|` then `: ` returns to a token start: a header scan to the end of the line per
        // `|` would be quadratic.
        let line = "[]|: ".repeat(200_000);
        let start = std::time::Instant::now();
        assert!(depth_ok(&line, 8));
        println!("{} bytes scanned in {:?}", line.len(), start.elapsed());
    }

    #[test]
    fn quotes_and_comments_cannot_hide_openings() {
        // Closings inside quotes or comments do not count; openings always do.
        let hidden = "[\"]\", ".repeat(200);
        assert!(!depth_ok(&hidden, 128));
        let commented = "[a, #]\n".repeat(200);
        assert!(!depth_ok(&commented, 128));
        let apostrophes = "[x', ".repeat(200);
        assert!(!depth_ok(&apostrophes, 128));
    }

    #[test]
    fn every_libyaml_line_break_ends_a_comment() {
        let nested = format!("{}{}", "[".repeat(200), "]".repeat(200));
        for line_break in ["\n", "\r", "\r\n", "\u{85}", "\u{2028}", "\u{2029}"] {
            let doc = format!("# x{line_break}{nested}");
            assert_eq!(
                check_yaml_depth(doc.as_bytes(), 128, usize::MAX),
                Err(Refused::TooDeep { line: 2 }),
                "{line_break:?}"
            );
        }
        // CR LF is one break, as in libyaml: the line numbers stay right.
        assert_eq!(
            check_yaml_depth(b"a: 1\r\nb: [[[\r\n", 2, usize::MAX),
            Err(Refused::TooDeep { line: 2 })
        );
    }
}
