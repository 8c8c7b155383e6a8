//! `FILTER`: which records become events, in EventBridge pattern syntax as
//! AWS Lambda's FilterCriteria uses it.
//!
//! Owns parsing FILTER's JSON into a [`RecordFilter`] and deciding, for one
//! record in its "aws" shape (the Streams record as Lambda delivers it), whether
//! it passes. It must never panic or fail while matching, whatever the record
//! holds: every check on the pattern happens once, in [`RecordFilter::parse`].
//! It never decides what happens to a filtered-out record (the engine still
//! advances the position past it) and never touches the record.
//!
//! Semantics, beyond the reference table:
//! - the patterns of FILTER are OR-ed (Lambda's rule), the keys of one pattern
//!   AND-ed; `{"$or": [p1, p2, …]}` at any object level is AND-ed with that
//!   level's other keys;
//! - a leaf meeting an array (an `SS`/`NS` set) matches if any element does;
//!   a sub-pattern meeting an array (an `L` of maps) must match one element
//!   as a whole;
//! - numbers compare exactly as decimals, both a record's JSON numbers and its
//!   numeric strings (DynamoDB's `N`), so 38-digit values stay exact;
//! - `{"exists": true}` holds for any present value, objects and `null`
//!   included (EventBridge only looks at leaves); `{"exists": false}` also
//!   holds when a parent is absent.

mod decimal;
mod parse;
mod pattern;
mod raw;

use awsdynamodbsource_vars as vars;

use raw::Raw;

/// A parsed FILTER: a record passes when any of its patterns matches.
#[derive(Debug, Clone)]
pub struct RecordFilter {
    patterns: Vec<pattern::Pattern>,
}

/// Why FILTER was rejected, on one line: where (`FILTER[1].eventName[0]`) and
/// what is wrong there.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("{at}{}{problem}", .problem.separator())]
pub struct FilterError {
    at: String,
    problem: Problem,
}

impl FilterError {
    /// Where in FILTER the problem is, e.g. `FILTER[0].dynamodb.Keys`.
    pub fn at(&self) -> &str {
        &self.at
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
enum Problem {
    #[error("is not JSON: {0}")]
    NotJson(String),
    #[error("must be a JSON array of patterns (wrap a single pattern in [ ]), got {0}")]
    NotArray(String),
    #[error("has no pattern; leave {var} unset to pass every record", var = vars::FILTER)]
    NoPattern,
    #[error("a pattern must be a JSON object mirroring the record, got {0}")]
    PatternNotObject(String),
    #[error("is an empty object; a pattern level needs at least one field to match")]
    EmptyObject,
    #[error("appears twice in the same object; write each key once")]
    DuplicateKey,
    #[error(
        "must be an array of conditions (EventBridge requires arrays, e.g. [\"INSERT\"]), got {got}{hint}"
    )]
    LeafNotArray { got: String, hint: String },
    #[error("is an empty array; a leaf needs at least one condition")]
    EmptyLeaf,
    #[error(
        "a condition must be a string, number, boolean, null or an operator object such as {{\"prefix\": \"a\"}}, got {0}"
    )]
    BadCondition(String),
    #[error("a condition object needs exactly one operator, got {0}")]
    OneOperator(String),
    #[error("{name:?} is not supported{within} (supported: {supported})")]
    Unsupported {
        name: String,
        within: &'static str,
        supported: &'static str,
    },
    #[error("{op:?} needs {want}, got {got}")]
    Operand {
        op: &'static str,
        want: &'static str,
        got: String,
    },
    #[error(
        "\"numeric\" with two comparisons needs a lower bound (> or >=) then an upper bound (< or <=), got {0}"
    )]
    NumericOrder(String),
    #[error("\"numeric\" range is empty, no number satisfies {0}")]
    NumericEmpty(String),
    #[error("{0} is not a number")]
    BadNumber(String),
    #[error("\"$or\" needs an array of at least two patterns, got {0}")]
    Or(String),
}

impl Problem {
    /// "FILTER has no pattern" reads as a sentence; every other message
    /// follows its place after a colon.
    fn separator(&self) -> &'static str {
        match self {
            Problem::NoPattern => " ",
            _ => ": ",
        }
    }
}

const ROOT: &str = vars::FILTER;

impl RecordFilter {
    /// FILTER's value: a JSON array of patterns. A record passes when ANY
    /// pattern matches (Lambda's rule). An empty array is an error: a filter
    /// that passes nothing is surely a mistake, and "everything" is spelled by
    /// leaving FILTER unset.
    pub fn parse(json: &str) -> Result<RecordFilter, FilterError> {
        let at_root = |problem| FilterError {
            at: ROOT.to_owned(),
            problem,
        };
        let raw = raw::read(json).map_err(|e| at_root(Problem::NotJson(e.to_string())))?;
        let Raw::Arr(items) = &raw else {
            return Err(at_root(Problem::NotArray(parse::shown(&raw))));
        };
        if items.is_empty() {
            return Err(at_root(Problem::NoPattern));
        }
        let mut path = String::with_capacity(64);
        let mut patterns = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            path.clear();
            path.push_str(ROOT);
            path.push_str(&format!("[{i}]"));
            patterns.push(parse::pattern(item, &mut path)?);
        }
        Ok(RecordFilter { patterns })
    }

    /// Whether `record` (the "aws" shape) passes: any pattern matches.
    pub fn matches(&self, record: &serde_json::Value) -> bool {
        self.patterns.iter().any(|p| p.matches(Some(record)))
    }

    /// How many patterns (for a log line).
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// Always false: [`RecordFilter::parse`] rejects an empty FILTER. Here
    /// because a `len` without it surprises readers (and clippy).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

#[cfg(test)]
mod tests;
