//! A one-pass upper bound on how deeply a YAML document nests, so a hostile document is
//! refused before a YAML parser sees it.
//!
//! libyaml (under serde_yaml_ng) scans flow collections in time proportional to their depth
//! for every token: `{a: ` repeated 50,000 times takes seconds, and the deserializer's own
//! recursion limit only applies after the whole document was scanned. The scan follows
//! libyaml's token rules (where a quote, comment, flow indicator or block scalar may start) so
//! that brackets inside quotes, comments, plain scalars and block scalars are not counted;
//! block depth is the stack of indentation columns, with compact `- - x` forms counted per
//! indicator. It never allocates more than that stack.

/// Where a document nests deeper than allowed: the 1-based line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooDeep {
    pub line: usize,
}

/// Checks that the nesting of `text` (flow collections plus block indentation levels) stays
/// within `max`, in one pass over the bytes.
pub fn check_yaml_depth(text: &[u8], max: usize) -> Result<(), TooDeep> {
    let mut scan = Scan::default();
    for (index, line) in text.split(|&b| b == b'\n').enumerate() {
        scan.line(line);
        if scan.peak > max {
            return Err(TooDeep { line: index + 1 });
        }
    }
    Ok(())
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
                match b {
                    b'[' | b'{' => {
                        self.flow += 1;
                        self.peak = self.peak.max(self.block.len() + self.flow);
                    }
                    b']' | b'}' => self.flow = self.flow.saturating_sub(1),
                    b',' => {}
                    b'\'' | b'"' => self.quote = Some(b),
                    b'|' | b'>' if !in_flow => {
                        let header = &line[i + 1..];
                        let header = &header[..header
                            .iter()
                            .position(|&c| c == b'#')
                            .unwrap_or(header.len())];
                        if header
                            .iter()
                            .all(|&c| matches!(c, b'+' | b'-' | b'0'..=b'9' | b' ' | b'\t' | b'\r'))
                        {
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
    use super::{TooDeep, check_yaml_depth};

    fn depth_ok(text: &str, max: usize) -> bool {
        check_yaml_depth(text.as_bytes(), max).is_ok()
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
            assert_eq!(
                check_yaml_depth(doc.as_bytes(), 128).map_err(|e| e.line > 0),
                Err(true),
                "{}",
                &doc[..40]
            );
        }
        assert_eq!(
            check_yaml_depth(b"a: 1\nb: [[[\n", 2),
            Err(TooDeep { line: 2 })
        );
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
}
