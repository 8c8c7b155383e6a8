//! Parsing one pattern of FILTER into its compiled [`Pattern`].
//!
//! Owns every check on a pattern, each made once here so that matching
//! cannot fail, and the errors naming where in FILTER a problem is
//! (`FILTER[1].eventName[0]`). It never looks at a record.

use std::cmp::Ordering;
use std::fmt::Write as _;

use super::decimal::Decimal;
use super::pattern::{Bound, Cond, Literal, Node, Pattern, Text, lower};
use super::raw::Raw;
use super::{FilterError, Problem};

/// Compiles one pattern. `path` names where `raw` sits (`FILTER[1]`); it is
/// extended while descending and names the place in any error.
pub(super) fn pattern(raw: &Raw, path: &mut String) -> Result<Pattern, FilterError> {
    match raw {
        Raw::Obj(entries) => parse_object(entries, path),
        other => Err(error(path, Problem::PatternNotObject(shown(other)))),
    }
}

fn parse_object(entries: &[(String, Raw)], path: &mut String) -> Result<Pattern, FilterError> {
    if entries.is_empty() {
        return Err(error(path, Problem::EmptyObject));
    }
    let mut pattern = Pattern {
        fields: Vec::with_capacity(entries.len()),
        or: Vec::new(),
    };
    for (i, (key, value)) in entries.iter().enumerate() {
        let len = path.len();
        push_key(path, key);
        // serde_json would silently keep the last one; the user meant both.
        if entries.iter().take(i).any(|(k, _)| k == key) {
            return Err(error(path, Problem::DuplicateKey));
        }
        if key == "$or" {
            pattern.or = parse_or(value, path)?;
        } else {
            let node = match value {
                Raw::Arr(items) => Node::Leaf(parse_leaf(items, path)?),
                Raw::Obj(sub) => Node::Object(parse_object(sub, path)?),
                scalar => {
                    let hint = if OPERATORS.contains(&key.as_str()) {
                        format!(
                            "; if {key:?} is meant as a condition, write [{}] in place of this object",
                            Raw::Obj(vec![(key.clone(), scalar.clone())])
                        )
                    } else {
                        String::new()
                    };
                    return Err(error(
                        path,
                        Problem::LeafNotArray {
                            got: shown(scalar),
                            hint,
                        },
                    ));
                }
            };
            pattern.fields.push((key.as_str().into(), node));
        }
        path.truncate(len);
    }
    Ok(pattern)
}

const OPERATORS: [&str; 6] = [
    "prefix",
    "suffix",
    "equals-ignore-case",
    "anything-but",
    "numeric",
    "exists",
];

fn parse_or(value: &Raw, path: &mut String) -> Result<Vec<Pattern>, FilterError> {
    let Raw::Arr(items) = value else {
        return Err(error(path, Problem::Or(shown(value))));
    };
    if items.len() < 2 {
        return Err(error(path, Problem::Or(shown(value))));
    }
    let mut out = Vec::with_capacity(items.len());
    for (j, item) in items.iter().enumerate() {
        let len = path.len();
        let _ = write!(path, "[{j}]");
        out.push(pattern(item, path)?);
        path.truncate(len);
    }
    Ok(out)
}

fn parse_leaf(items: &[Raw], path: &mut String) -> Result<Vec<Cond>, FilterError> {
    if items.is_empty() {
        return Err(error(path, Problem::EmptyLeaf));
    }
    let mut out = Vec::with_capacity(items.len());
    for (j, item) in items.iter().enumerate() {
        let len = path.len();
        let _ = write!(path, "[{j}]");
        out.push(parse_condition(item, path)?);
        path.truncate(len);
    }
    Ok(out)
}

fn parse_condition(raw: &Raw, path: &str) -> Result<Cond, FilterError> {
    if let Some(literal) = literal(raw, path)? {
        return Ok(Cond::Is(literal));
    }
    let Raw::Obj(entries) = raw else {
        return Err(error(path, Problem::BadCondition(shown(raw))));
    };
    let [(op, arg)] = entries.as_slice() else {
        return Err(error(path, Problem::OneOperator(shown(raw))));
    };
    let operand = |op: &'static str, want: &'static str| {
        error(
            path,
            Problem::Operand {
                op,
                want,
                got: shown(arg),
            },
        )
    };
    match op.as_str() {
        "prefix" => text(arg)
            .map(Cond::Prefix)
            .ok_or_else(|| operand("prefix", TEXT)),
        "suffix" => text(arg)
            .map(Cond::Suffix)
            .ok_or_else(|| operand("suffix", TEXT)),
        "equals-ignore-case" => match arg {
            Raw::Str(s) => Ok(Cond::EqualsIgnoreCase(lowered(s))),
            _ => Err(operand("equals-ignore-case", "a string")),
        },
        "exists" => match arg {
            Raw::Bool(b) => Ok(Cond::Exists(*b)),
            _ => Err(operand("exists", "true or false")),
        },
        "anything-but" => parse_anything_but(arg, path),
        "numeric" => parse_numeric(arg, path),
        other => Err(error(
            path,
            Problem::Unsupported {
                name: other.to_owned(),
                within: "",
                supported: "prefix, suffix, equals-ignore-case, anything-but, numeric, exists",
            },
        )),
    }
}

const TEXT: &str = "a string or {\"equals-ignore-case\": \"…\"}";

/// `Some` for a string, number, boolean or null.
fn literal(raw: &Raw, path: &str) -> Result<Option<Literal>, FilterError> {
    Ok(Some(match raw {
        Raw::Str(s) => Literal::Str(s.as_str().into()),
        Raw::Num(n) => Literal::Num(number(n, path)?),
        Raw::Bool(b) => Literal::Bool(*b),
        Raw::Null => Literal::Null,
        Raw::Arr(_) | Raw::Obj(_) => return Ok(None),
    }))
}

fn number(text: &str, path: &str) -> Result<Decimal, FilterError> {
    // serde_json accepted it as a JSON number, so this only fails if the
    // number scan in `raw` and serde_json ever disagree.
    Decimal::parse(text).ok_or_else(|| error(path, Problem::BadNumber(text.to_owned())))
}

fn text(arg: &Raw) -> Option<Text> {
    match arg {
        Raw::Str(s) => Some(Text {
            text: s.as_str().into(),
            ignore_case: false,
        }),
        Raw::Obj(entries) => match entries.as_slice() {
            [(k, Raw::Str(s))] if k == "equals-ignore-case" => Some(Text {
                text: lowered(s),
                ignore_case: true,
            }),
            _ => None,
        },
        _ => None,
    }
}

pub(super) fn lowered(s: &str) -> Box<str> {
    lower(s).collect::<String>().into_boxed_str()
}

fn parse_anything_but(arg: &Raw, path: &str) -> Result<Cond, FilterError> {
    const WANT: &str = "a value, a non-empty list of values, or one of {\"prefix\": …}, {\"suffix\": …}, {\"equals-ignore-case\": …}";
    let operand = |want: &'static str, got: &Raw| {
        error(
            path,
            Problem::Operand {
                op: "anything-but",
                want,
                got: shown(got),
            },
        )
    };
    if let Some(literal) = literal(arg, path)? {
        return Ok(Cond::AnythingBut(vec![Cond::Is(literal)]));
    }
    match arg {
        Raw::Arr(items) if !items.is_empty() => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match literal(item, path)? {
                    Some(literal) => out.push(Cond::Is(literal)),
                    None => return Err(operand(WANT, arg)),
                }
            }
            Ok(Cond::AnythingBut(out))
        }
        Raw::Obj(entries) => {
            let [(op, inner)] = entries.as_slice() else {
                return Err(operand(WANT, arg));
            };
            let excluded = match op.as_str() {
                "prefix" => vec![Cond::Prefix(text(inner).ok_or_else(|| operand(TEXT, arg))?)],
                "suffix" => vec![Cond::Suffix(text(inner).ok_or_else(|| operand(TEXT, arg))?)],
                "equals-ignore-case" => {
                    const STRINGS: &str =
                        "{\"equals-ignore-case\": a string or a non-empty list of strings}";
                    match inner {
                        Raw::Str(s) => vec![Cond::EqualsIgnoreCase(lowered(s))],
                        Raw::Arr(items) if !items.is_empty() => items
                            .iter()
                            .map(|item| match item {
                                Raw::Str(s) => Ok(Cond::EqualsIgnoreCase(lowered(s))),
                                _ => Err(operand(STRINGS, arg)),
                            })
                            .collect::<Result<_, _>>()?,
                        _ => return Err(operand(STRINGS, arg)),
                    }
                }
                other => {
                    return Err(error(
                        path,
                        Problem::Unsupported {
                            name: other.to_owned(),
                            within: " inside \"anything-but\"",
                            supported: "a value, a list of values, prefix, suffix, equals-ignore-case",
                        },
                    ));
                }
            };
            Ok(Cond::AnythingBut(excluded))
        }
        _ => Err(operand(WANT, arg)),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

fn parse_numeric(arg: &Raw, path: &str) -> Result<Cond, FilterError> {
    let bad = |problem: fn(String) -> Problem| error(path, problem(shown(arg)));
    let needs = |got: String| Problem::Operand {
        op: "numeric",
        want: "an operator and a number",
        got,
    };
    let comparison = |op: &Raw, n: &Raw| -> Result<(Op, Decimal), FilterError> {
        let op = match op {
            Raw::Str(s) => match s.as_str() {
                "=" => Op::Eq,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                ">=" => Op::Ge,
                _ => return Err(bad(needs)),
            },
            _ => return Err(bad(needs)),
        };
        match n {
            Raw::Num(text) => Ok((op, number(text, path)?)),
            _ => Err(bad(needs)),
        }
    };
    let Raw::Arr(items) = arg else {
        return Err(bad(needs));
    };
    let bound = |value, inclusive| Some(Bound { value, inclusive });
    match items.as_slice() {
        [op, n] => {
            let (op, value) = comparison(op, n)?;
            let (lower, upper) = match op {
                Op::Eq => (bound(value.clone(), true), bound(value, true)),
                Op::Gt => (bound(value, false), None),
                Op::Ge => (bound(value, true), None),
                Op::Lt => (None, bound(value, false)),
                Op::Le => (None, bound(value, true)),
            };
            Ok(Cond::Numeric { lower, upper })
        }
        [op1, n1, op2, n2] => {
            let (op1, low) = comparison(op1, n1)?;
            let (op2, high) = comparison(op2, n2)?;
            if !matches!(op1, Op::Gt | Op::Ge) || !matches!(op2, Op::Lt | Op::Le) {
                return Err(bad(Problem::NumericOrder));
            }
            let (low_in, high_in) = (op1 == Op::Ge, op2 == Op::Le);
            let empty = match low.cmp_decimal(&high) {
                Ordering::Greater => true,
                Ordering::Equal => !(low_in && high_in),
                Ordering::Less => false,
            };
            if empty {
                return Err(bad(Problem::NumericEmpty));
            }
            Ok(Cond::Numeric {
                lower: bound(low, low_in),
                upper: bound(high, high_in),
            })
        }
        _ => Err(bad(needs)),
    }
}

/// `.key` for plain keys, `["a key"]` for the rest, so the path reads back.
fn push_key(path: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$'));
    if plain {
        path.push('.');
        path.push_str(key);
    } else {
        let quoted = serde_json::to_string(key).unwrap_or_else(|_| format!("{key:?}"));
        let _ = write!(path, "[{quoted}]");
    }
}

/// What a message shows as "got": compact JSON, cut short to stay one line.
pub(super) fn shown(raw: &Raw) -> String {
    const MAX_CHARS: usize = 100;
    let s = raw.to_string();
    match s.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", s.get(..cut).unwrap_or_default()),
        None => s,
    }
}

fn error(path: &str, problem: Problem) -> FilterError {
    FilterError {
        at: path.to_owned(),
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_quote_keys_that_would_not_read_back() {
        let mut p = String::from("FILTER[0]");
        push_key(&mut p, "NewImage");
        push_key(&mut p, "my attr.x");
        push_key(&mut p, "");
        push_key(&mut p, "$or");
        assert_eq!(p, r#"FILTER[0].NewImage["my attr.x"][""].$or"#);
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let long = Raw::Str("é".repeat(300));
        let s = shown(&long);
        assert_eq!(s.chars().count(), 101);
        assert!(s.ends_with('…'));
    }
}
