//! SCIM filters (RFC 7644 §3.4.2.2): parser -> AST -> compiled against a schema -> evaluator.
//!
//! The parser never panics and reports the byte offset of every problem. Input length and
//! nesting are bounded, so hostile filters cannot exhaust the stack.

use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Number, Value};

use crate::error::{Result, ScimError};
use crate::path::AttrPath;
use crate::schema::{AttrType, Attribute, Resolved, ResourceDef};

/// Longest filter accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 8 * 1024;
/// Deepest nesting of parentheses, `not` and value paths.
pub const MAX_DEPTH: usize = 32;
/// Most comparisons in one filter.
pub const MAX_TERMS: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    /// Whether a value that compares `ord` to the literal satisfies this operator (the
    /// substring operators never follow from an ordering).
    pub fn holds(self, ord: Ordering) -> bool {
        match self {
            CompareOp::Eq => ord == Ordering::Equal,
            CompareOp::Ne => ord != Ordering::Equal,
            CompareOp::Gt => ord == Ordering::Greater,
            CompareOp::Ge => ord != Ordering::Less,
            CompareOp::Lt => ord == Ordering::Less,
            CompareOp::Le => ord != Ordering::Greater,
            CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
        }
    }

    fn parse(word: &str) -> Option<CompareOp> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }
    fn is_ordering(self) -> bool {
        matches!(
            self,
            CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
        )
    }
    fn is_substring(self) -> bool {
        matches!(self, CompareOp::Co | CompareOp::Sw | CompareOp::Ew)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    String(String),
    Number(Number),
    Bool(bool),
    Null,
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::String(s) => write!(f, "{}", Value::String(s.clone())),
            Literal::Number(n) => write!(f, "{n}"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Null => f.write_str("null"),
        }
    }
}

/// A parsed filter. Inside a `ValuePath`, paths name sub-attributes of the bracketed attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Or(Box<Filter>, Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Present(AttrPath),
    Compare(AttrPath, CompareOp, Literal),
    ValuePath(AttrPath, Box<Filter>),
}

impl Filter {
    pub fn parse(text: &str) -> Result<Filter> {
        if text.len() > MAX_FILTER_LEN {
            return Err(ScimError::invalid_filter(format!(
                "the filter is {} bytes long; at most {MAX_FILTER_LEN} are accepted",
                text.len()
            )));
        }
        let tokens = lex(text)?;
        let mut p = Parser {
            tokens,
            pos: 0,
            depth: 0,
            terms: 0,
            text_len: text.len(),
            in_value_path: false,
        };
        let f = p.parse_or()?;
        match p.peek() {
            None => Ok(f),
            Some(t) => Err(p.error_at(t.offset, format!("unexpected {}", t.kind.describe()))),
        }
    }

    fn precedence(&self) -> u8 {
        match self {
            Filter::Or(..) => 1,
            Filter::And(..) => 2,
            _ => 3,
        }
    }

    /// Attribute paths the filter names at the resource level.
    pub fn paths(&self) -> Vec<&AttrPath> {
        let mut out = Vec::new();
        self.collect_paths(&mut out);
        out
    }

    fn collect_paths<'a>(&'a self, out: &mut Vec<&'a AttrPath>) {
        match self {
            Filter::Or(a, b) | Filter::And(a, b) => {
                a.collect_paths(out);
                b.collect_paths(out);
            }
            Filter::Not(a) => a.collect_paths(out),
            Filter::Present(p) | Filter::Compare(p, _, _) | Filter::ValuePath(p, _) => out.push(p),
        }
    }

    /// Compiles a value filter (`attr[...]`) to test one record of the complex attribute `attr`.
    pub fn compile_for_element<'a>(&'a self, attr: &'a Attribute) -> Result<Compiled<'a>> {
        compile(self, &Scope::Complex(attr)).map(Compiled)
    }

    /// Resolves every path against a resource type and checks operator / type combinations.
    pub fn compile<'a>(&'a self, def: &'a ResourceDef) -> Result<Compiled<'a>> {
        compile(self, &Scope::Resource(def)).map(Compiled)
    }
}

fn fmt_child(f: &mut fmt::Formatter<'_>, child: &Filter, min_prec: u8) -> fmt::Result {
    if child.precedence() < min_prec {
        write!(f, "({child})")
    } else {
        write!(f, "{child}")
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The right operand is bracketed at equal precedence so printing keeps the tree shape.
            Filter::Or(a, b) => {
                fmt_child(f, a, 1)?;
                f.write_str(" or ")?;
                fmt_child(f, b, 2)
            }
            Filter::And(a, b) => {
                fmt_child(f, a, 2)?;
                f.write_str(" and ")?;
                fmt_child(f, b, 3)
            }
            Filter::Not(a) => write!(f, "not ({a})"),
            Filter::Present(p) => write!(f, "{p} pr"),
            Filter::Compare(p, op, v) => write!(f, "{p} {} {v}", op.as_str()),
            Filter::ValuePath(p, inner) => write!(f, "{p}[{inner}]"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lexer and parser

#[derive(Debug, Clone, PartialEq)]
enum TokenKind {
    Open,
    Close,
    BracketOpen,
    BracketClose,
    Word(String),
    Str(String),
}

impl TokenKind {
    fn describe(&self) -> String {
        match self {
            TokenKind::Open => "'('".into(),
            TokenKind::Close => "')'".into(),
            TokenKind::BracketOpen => "'['".into(),
            TokenKind::BracketClose => "']'".into(),
            TokenKind::Word(w) => format!("'{w}'"),
            TokenKind::Str(s) => format!("string {}", Value::String(s.clone())),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: TokenKind,
    offset: usize,
}

fn lex(text: &str) -> Result<Vec<Token>> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let single = match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'(' => Some(TokenKind::Open),
            b')' => Some(TokenKind::Close),
            b'[' => Some(TokenKind::BracketOpen),
            b']' => Some(TokenKind::BracketClose),
            _ => None,
        };
        if let Some(kind) = single {
            tokens.push(Token { kind, offset: i });
            i += 1;
            continue;
        }
        let start = i;
        if c == b'"' {
            i += 1;
            let mut escaped = false;
            loop {
                match bytes.get(i) {
                    None => {
                        return Err(ScimError::invalid_filter(format!(
                            "unterminated string starting at offset {start}"
                        )))
                    }
                    Some(_) if escaped => escaped = false,
                    Some(b'\\') => escaped = true,
                    Some(b'"') => break,
                    Some(_) => {}
                }
                i += 1;
            }
            i += 1;
            let raw = &text[start..i];
            let s: String = serde_json::from_str(raw).map_err(|e| {
                ScimError::invalid_filter(format!("invalid string literal at offset {start}: {e}"))
            })?;
            tokens.push(Token {
                kind: TokenKind::Str(s),
                offset: start,
            });
            continue;
        }
        while i < bytes.len()
            && !matches!(
                bytes[i],
                b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' | b'[' | b']' | b'"'
            )
        {
            i += 1;
        }
        tokens.push(Token {
            kind: TokenKind::Word(text[start..i].to_owned()),
            offset: start,
        });
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    terms: usize,
    text_len: usize,
    in_value_path: bool,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn error_at(&self, offset: usize, msg: impl fmt::Display) -> ScimError {
        ScimError::invalid_filter(format!("{msg} at offset {offset}"))
    }

    fn end_offset(&self) -> usize {
        self.text_len
    }

    fn peek_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Token { kind: TokenKind::Word(w), .. }) if w.eq_ignore_ascii_case(kw))
    }

    fn expect(&mut self, kind: TokenKind) -> Result<()> {
        match self.next() {
            Some(t) if t.kind == kind => Ok(()),
            Some(t) => Err(self.error_at(
                t.offset,
                format!("expected {}, found {}", kind.describe(), t.kind.describe()),
            )),
            None => Err(self.error_at(
                self.end_offset(),
                format!("expected {} before the end", kind.describe()),
            )),
        }
    }

    fn descend(&mut self, offset: usize) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error_at(offset, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn parse_or(&mut self) -> Result<Filter> {
        let mut left = self.parse_and()?;
        while self.peek_keyword("or") {
            self.pos += 1;
            let right = self.parse_and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_and(&mut self) -> Result<Filter> {
        let mut left = self.parse_unary()?;
        while self.peek_keyword("and") {
            self.pos += 1;
            let right = self.parse_unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_unary(&mut self) -> Result<Filter> {
        let Some(tok) = self.next() else {
            return Err(self.error_at(self.end_offset(), "expected an expression before the end"));
        };
        match tok.kind {
            TokenKind::Word(w) if w.eq_ignore_ascii_case("not") => {
                self.descend(tok.offset)?;
                self.expect(TokenKind::Open)?;
                let inner = self.parse_or()?;
                self.expect(TokenKind::Close)?;
                self.depth -= 1;
                Ok(Filter::Not(Box::new(inner)))
            }
            TokenKind::Open => {
                self.descend(tok.offset)?;
                let inner = self.parse_or()?;
                self.expect(TokenKind::Close)?;
                self.depth -= 1;
                Ok(inner)
            }
            TokenKind::Word(w) => self.parse_attr_expr(&w, tok.offset),
            other => Err(self.error_at(
                tok.offset,
                format!("expected an attribute, found {}", other.describe()),
            )),
        }
    }

    fn parse_attr_expr(&mut self, word: &str, offset: usize) -> Result<Filter> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(self.error_at(offset, format!("more than {MAX_TERMS} comparisons")));
        }
        let path = AttrPath::parse(word).map_err(|e| self.error_at(offset, e))?;
        if matches!(
            self.peek(),
            Some(Token {
                kind: TokenKind::BracketOpen,
                ..
            })
        ) {
            if self.in_value_path {
                return Err(self.error_at(offset, "value filters cannot be nested"));
            }
            if path.sub.is_some() {
                return Err(self.error_at(
                    offset,
                    "a value filter follows an attribute, not a sub-attribute",
                ));
            }
            self.pos += 1;
            self.descend(offset)?;
            self.in_value_path = true;
            let inner = self.parse_or()?;
            self.in_value_path = false;
            self.expect(TokenKind::BracketClose)?;
            self.depth -= 1;
            let inner = self.parse_sub_after_value_path(inner)?;
            return Ok(Filter::ValuePath(path, Box::new(inner)));
        }
        let Some(op_tok) = self.next() else {
            return Err(self.error_at(
                self.end_offset(),
                format!("expected an operator after '{word}'"),
            ));
        };
        let TokenKind::Word(op_word) = &op_tok.kind else {
            return Err(self.error_at(
                op_tok.offset,
                format!("expected an operator, found {}", op_tok.kind.describe()),
            ));
        };
        if op_word.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present(path));
        }
        let Some(op) = CompareOp::parse(op_word) else {
            return Err(self.error_at(op_tok.offset, format!("unknown operator '{op_word}'")));
        };
        let value = self.parse_literal()?;
        Ok(Filter::Compare(path, op, value))
    }

    /// `emails[type eq "work"].value eq "x"` (sent by Entra ID) means the same as
    /// `emails[type eq "work" and value eq "x"]`.
    fn parse_sub_after_value_path(&mut self, inner: Filter) -> Result<Filter> {
        let Some(Token {
            kind: TokenKind::Word(w),
            offset,
        }) = self.peek().cloned()
        else {
            return Ok(inner);
        };
        let Some(sub) = w.strip_prefix('.') else {
            return Ok(inner);
        };
        self.pos += 1;
        self.in_value_path = true;
        let tail = self.parse_attr_expr(sub, offset + 1);
        self.in_value_path = false;
        Ok(Filter::And(Box::new(inner), Box::new(tail?)))
    }

    fn parse_literal(&mut self) -> Result<Literal> {
        let Some(tok) = self.next() else {
            return Err(self.error_at(self.end_offset(), "expected a value before the end"));
        };
        match tok.kind {
            TokenKind::Str(s) => Ok(Literal::String(s)),
            TokenKind::Word(w) => match w.as_str() {
                "true" => Ok(Literal::Bool(true)),
                "false" => Ok(Literal::Bool(false)),
                "null" => Ok(Literal::Null),
                _ => match serde_json::from_str::<Value>(&w) {
                    Ok(Value::Number(n)) => Ok(Literal::Number(n)),
                    _ => Err(self.error_at(
                        tok.offset,
                        format!("'{w}' is not a value: use a quoted string, a number, true, false or null"),
                    )),
                },
            },
            other => Err(self.error_at(tok.offset, format!("expected a value, found {}", other.describe()))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Compilation and evaluation

enum Scope<'a> {
    Resource(&'a ResourceDef),
    /// Inside `attr[...]`: names are sub-attributes of `attr`.
    Complex(&'a Attribute),
}

/// Where a compiled comparison reads its values.
#[derive(Debug, Clone, Copy)]
enum Target<'a> {
    Resource(Resolved<'a>),
    Element(&'a Attribute),
}

impl<'a> Target<'a> {
    fn leaf(&self) -> &'a Attribute {
        match self {
            Target::Resource(r) => r.leaf(),
            Target::Element(a) => a,
        }
    }

    fn values<'d>(&self, obj: &'d Map<String, Value>) -> Vec<&'d Value> {
        match self {
            Target::Resource(r) => r.leaf_values(obj),
            Target::Element(a) => match obj.get(&a.name) {
                Some(Value::Array(items)) => items.iter().collect(),
                Some(v) => vec![v],
                None => Vec::new(),
            },
        }
    }
}

/// A comparison value prepared for the attribute's type.
#[derive(Debug, Clone)]
enum Operand {
    Str { exact: String, folded: String },
    Number(f64),
    Bool(bool),
    Time(DateTime<FixedOffset>),
    Null,
}

/// A filter resolved against a schema, ready to evaluate many times.
#[derive(Debug, Clone)]
pub struct Compiled<'a>(Node<'a>);

#[derive(Debug, Clone)]
enum Node<'a> {
    Or(Box<Node<'a>>, Box<Node<'a>>),
    And(Box<Node<'a>>, Box<Node<'a>>),
    Not(Box<Node<'a>>),
    Present(Target<'a>),
    Compare(Target<'a>, CompareOp, Operand),
    ValuePath(Resolved<'a>, Box<Node<'a>>),
}

fn resolve_target<'a>(path: &AttrPath, scope: &Scope<'a>) -> Result<Target<'a>> {
    let unknown = || ScimError::invalid_filter(format!("unknown attribute '{path}'"));
    match scope {
        Scope::Resource(def) => def.resolve(path).map(Target::Resource).ok_or_else(unknown),
        Scope::Complex(parent) => {
            if path.urn.is_some() || path.sub.is_some() {
                return Err(ScimError::invalid_filter(format!(
                    "'{path}' inside a value filter must name a sub-attribute of '{}'",
                    parent.name
                )));
            }
            parent
                .sub(&path.attr)
                .map(Target::Element)
                .ok_or_else(unknown)
        }
    }
}

/// A complex attribute compared as a whole compares its `value` sub-attribute.
fn value_sub_target<'a>(target: Target<'a>, path: &AttrPath) -> Result<Target<'a>> {
    let leaf = target.leaf();
    if !leaf.is_complex() {
        return Ok(target);
    }
    let value = leaf.sub("value").ok_or_else(|| {
        ScimError::invalid_filter(format!(
            "'{path}' is complex: compare one of its sub-attributes"
        ))
    })?;
    Ok(match target {
        Target::Resource(r) if r.sub.is_none() => Target::Resource(Resolved {
            sub: Some(value),
            ..r
        }),
        _ => Target::Element(value),
    })
}

fn compile<'a>(f: &'a Filter, scope: &Scope<'a>) -> Result<Node<'a>> {
    Ok(match f {
        Filter::Or(a, b) => Node::Or(Box::new(compile(a, scope)?), Box::new(compile(b, scope)?)),
        Filter::And(a, b) => Node::And(Box::new(compile(a, scope)?), Box::new(compile(b, scope)?)),
        Filter::Not(a) => Node::Not(Box::new(compile(a, scope)?)),
        Filter::Present(p) => Node::Present(resolve_target(p, scope)?),
        Filter::Compare(p, op, lit) => {
            let target = value_sub_target(resolve_target(p, scope)?, p)?;
            let operand = operand_for(target.leaf(), p, *op, lit)?;
            Node::Compare(target, *op, operand)
        }
        Filter::ValuePath(p, inner) => {
            let Scope::Resource(def) = scope else {
                return Err(ScimError::invalid_filter("value filters cannot be nested"));
            };
            let resolved = def
                .resolve(p)
                .ok_or_else(|| ScimError::invalid_filter(format!("unknown attribute '{p}'")))?;
            if !resolved.attr.is_complex() || resolved.sub.is_some() {
                return Err(ScimError::invalid_filter(format!(
                    "'{p}[...]' needs a complex attribute"
                )));
            }
            Node::ValuePath(
                resolved,
                Box::new(compile(inner, &Scope::Complex(resolved.attr))?),
            )
        }
    })
}

fn operand_for(attr: &Attribute, path: &AttrPath, op: CompareOp, lit: &Literal) -> Result<Operand> {
    let mismatch = || {
        ScimError::invalid_filter(format!(
            "'{path}' is of type {:?}; {lit} cannot be compared with it",
            attr.kind
        ))
    };
    if matches!(lit, Literal::Null) {
        return match op {
            CompareOp::Eq | CompareOp::Ne => Ok(Operand::Null),
            _ => Err(ScimError::invalid_filter(format!(
                "'{} null' is not meaningful",
                op.as_str()
            ))),
        };
    }
    match attr.kind {
        AttrType::Boolean | AttrType::Binary if op.is_ordering() => {
            Err(ScimError::invalid_filter(format!(
                "'{}' cannot be used on {:?} attribute '{path}'",
                op.as_str(),
                attr.kind
            )))
        }
        AttrType::Boolean => match (op, lit) {
            (CompareOp::Eq | CompareOp::Ne, Literal::Bool(b)) => Ok(Operand::Bool(*b)),
            (CompareOp::Eq | CompareOp::Ne, _) => Err(mismatch()),
            _ => Err(ScimError::invalid_filter(format!(
                "'{}' cannot be used on boolean attribute '{path}'",
                op.as_str()
            ))),
        },
        AttrType::Integer | AttrType::Decimal => match lit {
            _ if op.is_substring() => Err(ScimError::invalid_filter(format!(
                "'{}' cannot be used on numeric attribute '{path}'",
                op.as_str()
            ))),
            Literal::Number(n) => n.as_f64().map(Operand::Number).ok_or_else(mismatch),
            _ => Err(mismatch()),
        },
        AttrType::DateTime => match lit {
            Literal::String(s) if op.is_substring() => Ok(str_operand(s, true)),
            Literal::String(s) => {
                DateTime::parse_from_rfc3339(s)
                    .map(Operand::Time)
                    .map_err(|_| {
                        ScimError::invalid_filter(format!(
                            "'{s}' is not an xsd:dateTime (e.g. 2024-01-23T04:56:22Z)"
                        ))
                    })
            }
            _ => Err(mismatch()),
        },
        AttrType::Complex => Err(mismatch()),
        AttrType::String | AttrType::Reference | AttrType::Binary => match lit {
            Literal::String(s) => Ok(str_operand(s, attr.case_exact)),
            _ => Err(mismatch()),
        },
    }
}

fn str_operand(s: &str, case_exact: bool) -> Operand {
    let folded = if case_exact {
        s.to_owned()
    } else {
        s.to_lowercase()
    };
    Operand::Str {
        exact: s.to_owned(),
        folded,
    }
}

/// True when a value counts as assigned (RFC 7643 §2.5: null and empty are unassigned).
pub(crate) fn is_assigned(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(is_assigned),
        Value::Object(o) => o.values().any(is_assigned),
        _ => true,
    }
}

impl Compiled<'_> {
    pub fn matches(&self, obj: &Map<String, Value>) -> bool {
        self.0.matches(obj)
    }
}

impl Node<'_> {
    fn matches(&self, obj: &Map<String, Value>) -> bool {
        match self {
            Node::Or(a, b) => a.matches(obj) || b.matches(obj),
            Node::And(a, b) => a.matches(obj) && b.matches(obj),
            Node::Not(a) => !a.matches(obj),
            Node::Present(t) => t.values(obj).into_iter().any(is_assigned),
            Node::Compare(t, op, operand) => {
                let values = t.values(obj);
                let leaf = t.leaf();
                if let Operand::Null = operand {
                    // `eq null` asks for an unassigned attribute, `ne null` for an assigned one.
                    return values.into_iter().any(is_assigned) == (*op == CompareOp::Ne);
                }
                match op {
                    CompareOp::Ne => !values
                        .iter()
                        .any(|v| compare(leaf, v, CompareOp::Eq, operand)),
                    _ => values.iter().any(|v| compare(leaf, v, *op, operand)),
                }
            }
            Node::ValuePath(r, inner) => match r.top_value(obj) {
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(Value::as_object)
                    .any(|o| inner.matches(o)),
                Some(Value::Object(o)) => inner.matches(o),
                _ => false,
            },
        }
    }
}

fn compare(attr: &Attribute, value: &Value, op: CompareOp, operand: &Operand) -> bool {
    match operand {
        Operand::Null => false,
        Operand::Bool(b) => value.as_bool() == Some(*b),
        Operand::Number(n) => value
            .as_f64()
            .is_some_and(|v| ordered(v.partial_cmp(n), op)),
        Operand::Time(t) => value
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .is_some_and(|v| ordered(Some(v.cmp(t)), op)),
        Operand::Str { exact, folded } => {
            let Some(s) = value.as_str() else {
                return false;
            };
            let (s, needle) = if attr.case_exact || matches!(attr.kind, AttrType::DateTime) {
                (std::borrow::Cow::Borrowed(s), exact.as_str())
            } else {
                (std::borrow::Cow::Owned(s.to_lowercase()), folded.as_str())
            };
            match op {
                CompareOp::Co => s.contains(needle),
                CompareOp::Sw => s.starts_with(needle),
                CompareOp::Ew => s.ends_with(needle),
                _ => ordered(Some(s.as_ref().cmp(needle)), op),
            }
        }
    }
}

fn ordered(ord: Option<Ordering>, op: CompareOp) -> bool {
    ord.is_some_and(|ord| op.holds(ord))
}

/// One index probe: every resource whose `path` holds `value` (already case-folded as the
/// attribute's `caseExact` says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub path: String,
    pub value: String,
}

impl Compiled<'_> {
    /// Index probes whose union holds every match, or `None` when only a scan can answer.
    /// `indexed` says whether a canonical attribute path has an index.
    pub fn index_plan(&self, indexed: &dyn Fn(&str) -> bool) -> Option<Vec<Probe>> {
        self.0.index_plan(indexed)
    }
}

impl Node<'_> {
    fn index_plan(&self, indexed: &dyn Fn(&str) -> bool) -> Option<Vec<Probe>> {
        match self {
            Node::Compare(Target::Resource(r), CompareOp::Eq, Operand::Str { folded, exact }) => {
                let path = r.canonical_name();
                indexed(&path).then(|| {
                    let value = if r.leaf().case_exact { exact } else { folded };
                    vec![Probe {
                        path,
                        value: value.clone(),
                    }]
                })
            }
            Node::And(a, b) => match (a.index_plan(indexed), b.index_plan(indexed)) {
                (Some(x), Some(y)) => Some(if x.len() <= y.len() { x } else { y }),
                (x, y) => x.or(y),
            },
            Node::Or(a, b) => {
                let mut x = a.index_plan(indexed)?;
                x.extend(b.index_plan(indexed)?);
                Some(x)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::user_resource;
    use proptest::prelude::*;
    use serde_json::json;

    fn parse_err(text: &str) -> String {
        Filter::parse(text).unwrap_err().detail
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        let f = Filter::parse(r#"a eq "1" or b eq "2" and c eq "3""#).unwrap();
        assert!(matches!(f, Filter::Or(_, ref r) if matches!(**r, Filter::And(..))));
        let f = Filter::parse(r#"(a eq "1" or b eq "2") and not (c pr)"#).unwrap();
        assert_eq!(f.to_string(), r#"(a eq "1" or b eq "2") and not (c pr)"#);
    }

    #[test]
    fn operators_and_keywords_are_case_insensitive() {
        let f = Filter::parse(r#"userName EQ "x" AND NOT (title PR)"#).unwrap();
        assert_eq!(f.to_string(), r#"userName eq "x" and not (title pr)"#);
    }

    #[test]
    fn literals_follow_the_abnf() {
        let f = Filter::parse(r#"a eq "q\"uote" or b eq 1.5 or c eq -3 or d eq true or e eq null"#)
            .unwrap();
        assert_eq!(
            f.to_string(),
            r#"a eq "q\"uote" or b eq 1.5 or c eq -3 or d eq true or e eq null"#
        );
    }

    #[test]
    fn errors_name_the_offset() {
        assert_eq!(
            parse_err(r#"userName eq"#),
            "expected a value before the end at offset 11"
        );
        assert_eq!(
            parse_err(r#"userName zz "x""#),
            "unknown operator 'zz' at offset 9"
        );
        assert_eq!(
            parse_err(r#"userName eq "x" )"#),
            "unexpected ')' at offset 16"
        );
        assert_eq!(
            parse_err(r#"userName eq bob"#),
            "'bob' is not a value: use a quoted string, a number, true, false or null at offset 12"
        );
        assert_eq!(
            parse_err(r#"a eq "x"#),
            "unterminated string starting at offset 5"
        );
        assert_eq!(
            parse_err(r#"not a eq "x""#),
            "expected '(', found 'a' at offset 4"
        );
        assert_eq!(
            parse_err(""),
            "expected an expression before the end at offset 0"
        );
    }

    #[test]
    fn hostile_nesting_is_refused_without_overflow() {
        let deep = format!("{}a pr{}", "(".repeat(3_000), ")".repeat(3_000));
        assert!(parse_err(&deep).contains("offset"));
        let deep_not = "not (".repeat(1000) + "a pr" + &")".repeat(1000);
        assert!(parse_err(&deep_not).contains("nesting deeper"));
        let long = vec![r#"a eq "x""#; 2000].join(" or ");
        assert!(
            parse_err(&long).contains("bytes long") || parse_err(&long).contains("comparisons")
        );
    }

    #[test]
    fn entra_sub_attribute_after_value_path_is_understood() {
        let f = Filter::parse(r#"emails[type eq "work"].value eq "a@x.org""#).unwrap();
        assert_eq!(
            f.to_string(),
            r#"emails[type eq "work" and value eq "a@x.org"]"#
        );
    }

    fn doc() -> Map<String, Value> {
        json!({
            "userName": "Alice", "id": "ABC", "active": true, "title": "",
            "name": {"givenName": "Alice", "familyName": "Liddell"},
            "emails": [{"value": "alice@corp.example", "type": "work"}, {"value": "al@home.example", "type": "home"}],
            "meta": {"lastModified": "2024-05-01T10:00:00Z"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "42"}
        })
        .as_object()
        .cloned()
        .unwrap()
    }

    fn check(filter: &str, expected: bool) {
        let def = user_resource();
        let f = Filter::parse(filter).unwrap();
        let c = f.compile(&def).unwrap();
        assert_eq!(c.matches(&doc()), expected, "{filter}");
    }

    #[test]
    fn evaluation_follows_types_and_case_exactness() {
        check(r#"userName eq "alice""#, true);
        check(r#"USERNAME eq "ALICE""#, true);
        check(r#"id eq "abc""#, false);
        check(r#"id eq "ABC""#, true);
        check(r#"userName ne "alice""#, false);
        check(r#"userName co "lic""#, true);
        check(r#"userName sw "AL""#, true);
        check(r#"userName ew "ce""#, true);
        check(r#"userName gt "aaa""#, true);
        check(r#"userName lt "aaa""#, false);
        check(r#"title pr"#, false);
        check(r#"nickName pr"#, false);
        check(r#"name pr"#, true);
        check(r#"active eq true"#, true);
        check(r#"emails.value co "@corp""#, true);
        check(r#"emails co "@home""#, true);
        check(r#"emails[type eq "work" and value co "@corp"]"#, true);
        check(r#"emails[type eq "home" and value co "@corp"]"#, false);
        check(r#"meta.lastModified gt "2024-04-30T23:00:00-02:00""#, true);
        check(r#"meta.lastModified ge "2024-05-01T12:00:00+02:00""#, true);
        check(r#"meta.lastModified gt "2024-05-01T12:00:00+02:00""#, false);
        check(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "42""#,
            true,
        );
        check(
            r#"name.familyName eq "liddell" and not (userName eq "bob")"#,
            true,
        );
        check(r#"userName eq "bob" or name.givenName sw "a""#, true);
        check(r#"nickName eq null"#, true);
    }

    #[test]
    fn type_errors_are_invalid_filter() {
        let def = user_resource();
        for bad in [
            r#"active gt true"#,
            r#"active eq "yes""#,
            r#"unknownAttr eq "x""#,
            r#"meta.lastModified gt "yesterday""#,
            r#"emails[nope eq "x"]"#,
        ] {
            let f = Filter::parse(bad).unwrap();
            let e = f.compile(&def).unwrap_err();
            assert_eq!(
                e.scim_type,
                Some(crate::error::ScimType::InvalidFilter),
                "{bad}"
            );
        }
    }

    fn arb_path() -> impl Strategy<Value = AttrPath> {
        let name = prop::sample::select(vec!["userName", "title", "name", "emails", "x-Y_1"]);
        let sub = prop::option::of(prop::sample::select(vec!["value", "givenName", "type"]));
        let urn = prop::option::of(Just("urn:ietf:params:scim:schemas:core:2.0:User"));
        (urn, name, sub).prop_map(|(u, n, s)| AttrPath::new(u, n, s))
    }

    fn arb_literal() -> impl Strategy<Value = Literal> {
        prop_oneof![
            any::<String>().prop_map(Literal::String),
            any::<i64>().prop_map(|n| Literal::Number(n.into())),
            (-1.0e6f64..1.0e6)
                .prop_filter_map("finite", |f| Number::from_f64(f).map(Literal::Number)),
            any::<bool>().prop_map(Literal::Bool),
            Just(Literal::Null),
        ]
    }

    fn arb_op() -> impl Strategy<Value = CompareOp> {
        prop::sample::select(vec![
            CompareOp::Eq,
            CompareOp::Ne,
            CompareOp::Co,
            CompareOp::Sw,
            CompareOp::Ew,
            CompareOp::Gt,
            CompareOp::Ge,
            CompareOp::Lt,
            CompareOp::Le,
        ])
    }

    fn arb_leaf() -> impl Strategy<Value = Filter> {
        prop_oneof![
            arb_path().prop_map(Filter::Present),
            (arb_path(), arb_op(), arb_literal()).prop_map(|(p, o, l)| Filter::Compare(p, o, l)),
        ]
    }

    fn arb_filter() -> impl Strategy<Value = Filter> {
        let leaf = prop_oneof![
            3 => arb_leaf(),
            1 => (prop::sample::select(vec!["emails", "addresses"]), arb_leaf().prop_filter("plain", |f| match f {
                Filter::Present(p) | Filter::Compare(p, _, _) => p.urn.is_none() && p.sub.is_none(),
                _ => false,
            }))
                .prop_map(|(n, inner)| Filter::ValuePath(AttrPath::new(None, n, None), Box::new(inner))),
        ];
        leaf.prop_recursive(6, 48, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone())
                    .prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner.clone())
                    .prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
                inner.prop_map(|a| Filter::Not(Box::new(a))),
            ]
        })
    }

    proptest! {
        #[test]
        fn printing_then_parsing_gives_the_same_tree(f in arb_filter()) {
            let printed = f.to_string();
            let reparsed = Filter::parse(&printed).map_err(|e| TestCaseError::fail(format!("{printed}: {e}")))?;
            prop_assert_eq!(reparsed, f);
        }

        #[test]
        fn the_parser_never_panics(s in ".{0,200}") {
            let _ = Filter::parse(&s);
        }

        #[test]
        fn the_parser_never_panics_on_filter_like_noise(s in r#"[a-z()\[\]" .]{0,80}( (eq|and|or|not|pr) ?)?[0-9"()]{0,5}"#) {
            let _ = Filter::parse(&s);
        }
    }
}
