//! The expression language's syntax: splitting templates at `${{ … }}` and parsing one
//! expression into a tree, with bounds so hostile text cannot recurse without end.

use serde_json::Value;

use crate::pipeline::expr::ExprError;

/// The longest expression source accepted, in bytes.
const MAX_EXPR_LEN: usize = 1024;
/// How deeply parentheses, `!` and indexing may nest.
const MAX_NESTING: usize = 32;

/// A part of a template string.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Piece<'a> {
    Text(&'a str),
    /// The source between `${{` and `}}`.
    Expr(&'a str),
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Expr {
    Literal(Value),
    /// `inputs…` or `steps…`, then fields and indexes.
    Path(Root, Vec<Access>),
    Not(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Call(Func, Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Root {
    Inputs,
    Steps,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Access {
    Field(String),
    Index(Expr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Func {
    ToJson,
    Contains,
    StartsWith,
    EndsWith,
}

impl Func {
    fn from_name(name: &str) -> Option<(Func, usize)> {
        // Function names are case-insensitive, as in GitHub Actions (`toJSON`, `startsWith`).
        match name.to_ascii_lowercase().as_str() {
            "tojson" => Some((Func::ToJson, 1)),
            "contains" => Some((Func::Contains, 2)),
            "startswith" => Some((Func::StartsWith, 2)),
            "endswith" => Some((Func::EndsWith, 2)),
            _ => None,
        }
    }
}

impl Expr {
    /// Adds the ids named by `steps.<id>` anywhere in the expression.
    pub(super) fn step_ids(&self, ids: &mut Vec<String>) {
        match self {
            Expr::Literal(_) => {}
            Expr::Path(root, accesses) => {
                if let (Root::Steps, Some(Access::Field(id))) = (root, accesses.first()) {
                    ids.push(id.clone());
                }
                for access in accesses {
                    if let Access::Index(expr) = access {
                        expr.step_ids(ids);
                    }
                }
            }
            Expr::Not(inner) => inner.step_ids(ids),
            Expr::Binary(_, left, right) => {
                left.step_ids(ids);
                right.step_ids(ids);
            }
            Expr::Call(_, args) => args.iter().for_each(|arg| arg.step_ids(ids)),
        }
    }
}

/// Splits `text` into plain text and the sources of its `${{ … }}` expressions.
pub(super) fn split_template(text: &str) -> Result<Vec<Piece<'_>>, ExprError> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        if start > 0 {
            pieces.push(Piece::Text(&rest[..start]));
        }
        let after = &rest[start + 3..];
        let end = find_close(after).ok_or_else(|| ExprError::new("unterminated ${{ (no }})"))?;
        pieces.push(Piece::Expr(&after[..end]));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

/// The source of an `if`: the text inside `${{ }}` when it is wrapped, else the whole text.
pub(super) fn condition_source(text: &str) -> Result<&str, ExprError> {
    let trimmed = text.trim();
    if !trimmed.contains("${{") {
        return Ok(trimmed);
    }
    match split_template(trimmed)?.as_slice() {
        [Piece::Expr(source)] => Ok(source),
        _ => Err(ExprError::new(
            "a condition is one expression, bare or wrapped in ${{ }}",
        )),
    }
}

/// Parses one expression.
pub(super) fn parse(source: &str) -> Result<Expr, ExprError> {
    if source.len() > MAX_EXPR_LEN {
        return Err(ExprError::new(format!(
            "expression is longer than {MAX_EXPR_LEN} bytes"
        )));
    }
    let tokens = tokenize(source)?;
    if tokens.is_empty() {
        return Err(ExprError::new("empty expression"));
    }
    let mut parser = Parser {
        tokens,
        at: 0,
        depth: 0,
    };
    let expr = parser.or()?;
    match parser.peek() {
        None => Ok(expr),
        Some(token) => Err(ExprError::new(format!(
            "unexpected {} in `{}`",
            token.describe(),
            source.trim()
        ))),
    }
}

/// The end of an expression: the first `}}` outside a quoted string.
fn find_close(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut quoted = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => quoted = !quoted,
            b'}' if !quoted && bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Num(serde_json::Number),
    Punct(&'static str),
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Ident(name) => format!("`{name}`"),
            Token::Str(text) => format!("'{text}'"),
            Token::Num(number) => format!("`{number}`"),
            Token::Punct(punct) => format!("`{punct}`"),
        }
    }
}

const PUNCTS: [&str; 15] = [
    "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "(", ")", "[", "]", ".", ",",
];

fn tokenize(source: &str) -> Result<Vec<Token>, ExprError> {
    let mut tokens = Vec::new();
    let mut rest = source;
    loop {
        rest = rest.trim_start();
        let Some(first) = rest.chars().next() else {
            return Ok(tokens);
        };
        if first == '\'' {
            // Single-quoted, with '' for a quote, as in GitHub Actions.
            let mut text = String::new();
            let mut chars = rest[1..].char_indices();
            let end = loop {
                match chars.next() {
                    None => return Err(ExprError::new("unterminated string literal")),
                    Some((i, '\'')) => {
                        if rest[1 + i + 1..].starts_with('\'') {
                            text.push('\'');
                            chars.next();
                        } else {
                            break 1 + i + 1;
                        }
                    }
                    Some((_, c)) => text.push(c),
                }
            };
            tokens.push(Token::Str(text));
            rest = &rest[end..];
        } else if first.is_ascii_digit()
            || (first == '-' && rest[1..].starts_with(|c: char| c.is_ascii_digit()))
        {
            let len = 1 + rest[1..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
                .unwrap_or(rest.len() - 1);
            let text = &rest[..len];
            let number = text
                .parse::<i64>()
                .ok()
                .map(serde_json::Number::from)
                .or_else(|| {
                    text.parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                })
                .ok_or_else(|| ExprError::new(format!("`{text}` is not a number")))?;
            tokens.push(Token::Num(number));
            rest = &rest[len..];
        } else if first.is_ascii_alphabetic() || first == '_' {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                .unwrap_or(rest.len());
            tokens.push(Token::Ident(rest[..len].to_owned()));
            rest = &rest[len..];
        } else if let Some(punct) = PUNCTS.into_iter().find(|p| rest.starts_with(p)) {
            tokens.push(Token::Punct(punct));
            rest = &rest[punct.len()..];
        } else {
            return Err(ExprError::new(format!("unexpected character `{first}`")));
        }
    }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn eat(&mut self, punct: &str) -> bool {
        if matches!(self.peek(), Some(Token::Punct(p)) if *p == punct) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, punct: &str) -> Result<(), ExprError> {
        if self.eat(punct) {
            return Ok(());
        }
        Err(ExprError::new(match self.peek() {
            Some(token) => format!("expected `{punct}`, found {}", token.describe()),
            None => format!("expected `{punct}` at the end"),
        }))
    }

    fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Parser) -> Result<T, ExprError>,
    ) -> Result<T, ExprError> {
        if self.depth >= MAX_NESTING {
            return Err(ExprError::new(format!(
                "expression nests deeper than {MAX_NESTING} levels"
            )));
        }
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        result
    }

    fn binary(
        &mut self,
        ops: &[(&str, BinOp)],
        operand: fn(&mut Parser) -> Result<Expr, ExprError>,
    ) -> Result<Expr, ExprError> {
        let mut left = operand(self)?;
        'more: loop {
            for (punct, op) in ops {
                if self.eat(punct) {
                    let right = operand(self)?;
                    left = Expr::Binary(*op, Box::new(left), Box::new(right));
                    continue 'more;
                }
            }
            return Ok(left);
        }
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        self.binary(&[("||", BinOp::Or)], Parser::and)
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        self.binary(&[("&&", BinOp::And)], Parser::equality)
    }

    fn equality(&mut self) -> Result<Expr, ExprError> {
        self.binary(&[("==", BinOp::Eq), ("!=", BinOp::Ne)], Parser::comparison)
    }

    fn comparison(&mut self) -> Result<Expr, ExprError> {
        self.binary(
            &[
                ("<=", BinOp::Le),
                (">=", BinOp::Ge),
                ("<", BinOp::Lt),
                (">", BinOp::Gt),
            ],
            Parser::unary,
        )
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        if self.eat("!") {
            return self.nested(|p| Ok(Expr::Not(Box::new(p.unary()?))));
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, ExprError> {
        let token = self
            .next()
            .ok_or_else(|| ExprError::new("expression ends too early"))?;
        match token {
            Token::Str(text) => Ok(Expr::Literal(Value::String(text))),
            Token::Num(number) => Ok(Expr::Literal(Value::Number(number))),
            Token::Punct("(") => self.nested(|p| {
                let inner = p.or()?;
                p.expect(")")?;
                Ok(inner)
            }),
            Token::Ident(name) => self.named(name),
            other => Err(ExprError::new(format!("unexpected {}", other.describe()))),
        }
    }

    fn named(&mut self, name: String) -> Result<Expr, ExprError> {
        match name.as_str() {
            "true" => return Ok(Expr::Literal(Value::Bool(true))),
            "false" => return Ok(Expr::Literal(Value::Bool(false))),
            "null" => return Ok(Expr::Literal(Value::Null)),
            _ => {}
        }
        if self.eat("(") {
            let (func, arity) = Func::from_name(&name)
                .ok_or_else(|| ExprError::new(format!("unknown function `{name}`")))?;
            let args = self.nested(|p| {
                let mut args = Vec::new();
                if !p.eat(")") {
                    loop {
                        args.push(p.or()?);
                        if p.eat(")") {
                            break;
                        }
                        p.expect(",")?;
                    }
                }
                Ok(args)
            })?;
            if args.len() != arity {
                return Err(ExprError::new(format!(
                    "{name}() takes {arity} argument{}, not {}",
                    if arity == 1 { "" } else { "s" },
                    args.len()
                )));
            }
            return Ok(Expr::Call(func, args));
        }
        let root = match name.as_str() {
            "inputs" => Root::Inputs,
            "steps" => Root::Steps,
            _ => {
                return Err(ExprError::new(format!(
                    "unknown name `{name}` (expressions see `inputs` and `steps`)"
                )));
            }
        };
        let mut accesses = Vec::new();
        loop {
            if self.eat(".") {
                match self.next() {
                    Some(Token::Ident(field)) => accesses.push(Access::Field(field)),
                    Some(other) => {
                        return Err(ExprError::new(format!(
                            "expected a name after `.`, found {}",
                            other.describe()
                        )));
                    }
                    None => return Err(ExprError::new("expected a name after `.`")),
                }
            } else if self.eat("[") {
                let index = self.nested(|p| {
                    let index = p.or()?;
                    p.expect("]")?;
                    Ok(index)
                })?;
                accesses.push(match index {
                    Expr::Literal(Value::String(field)) => Access::Field(field),
                    other => Access::Index(other),
                });
            } else {
                break;
            }
        }
        if root == Root::Steps {
            check_steps_path(&accesses)?;
        }
        Ok(Expr::Path(root, accesses))
    }
}

/// `steps` is only read as `steps.<id>.status` or `steps.<id>.outputs…`: anything else is a
/// mistake worth refusing when the pipeline is created.
fn check_steps_path(accesses: &[Access]) -> Result<(), ExprError> {
    match accesses {
        [Access::Field(_), Access::Field(what), rest @ ..]
            if (what == "status" && rest.is_empty()) || what == "outputs" =>
        {
            Ok(())
        }
        [Access::Field(id), ..] => Err(ExprError::new(format!(
            "steps.{id} is read as steps.{id}.status or steps.{id}.outputs.<name>"
        ))),
        _ => Err(ExprError::new(
            "steps is read as steps.<id>.status or steps.<id>.outputs.<name>",
        )),
    }
}
