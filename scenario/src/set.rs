//! `--set KEY=VALUE`: overrides applied to the TOML tree before validation.
//!
//! KEY is a dotted path (`cluster.pool_workers`, `network.latency.min`); array entries are
//! addressed as `faults[0].at` or `faults.0.at`, and index `len` appends. VALUE parses as a
//! TOML value, else is taken as a string. Missing tables on the way are created, starting from
//! their defaults in [`DEFAULTS_TOML`](super::DEFAULTS_TOML) when they have some.

use super::{ScenarioError, DEFAULTS_TOML};
use toml::{Table, Value};

enum Seg {
    Key(String),
    Index(usize),
}

/// Applies one `--set` to `root`.
pub(super) fn apply(origin: &str, root: &mut Table, set: &str) -> Result<(), ScenarioError> {
    let err = |message: String| ScenarioError::Set {
        origin: origin.to_string(),
        set: set.to_string(),
        message,
    };
    let Some((k, v)) = set.split_once('=') else {
        return Err(err("expected KEY=VALUE".to_string()));
    };
    let k = k.trim();
    if k.is_empty() {
        return Err(err("expected KEY=VALUE, got an empty KEY".to_string()));
    }
    let segs = parse_path(k).map_err(err)?;
    let value = parse_value(v);
    let defaults = DEFAULTS_TOML.parse::<Table>().map(Value::Table).ok();
    let mut cur = Value::Table(std::mem::take(root));
    let r = walk(&mut cur, &segs, value, "", defaults.as_ref());
    if let Value::Table(t) = cur {
        *root = t;
    }
    r.map_err(err)
}

/// VALUE as a TOML value (`5`, `true`, `"x"`, `[1, 2]`, `{ a = 1 }`), else as a string.
fn parse_value(v: &str) -> Value {
    match format!("v = {v}").parse::<Table>() {
        Ok(mut t) if t.len() == 1 => t.remove("v").unwrap_or_else(|| Value::String(v.into())),
        _ => Value::String(v.to_string()),
    }
}

fn parse_path(k: &str) -> Result<Vec<Seg>, String> {
    let mut segs = Vec::new();
    for part in k.split('.') {
        let part = part.trim();
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if name.is_empty() {
            return Err(format!(
                "expected a dotted KEY like `cluster.pool_workers`, got `{k}`"
            ));
        }
        if name.contains(']') {
            return Err(format!("malformed index in `{k}`"));
        }
        segs.push(Seg::Key(name.to_string()));
        while !rest.is_empty() {
            let close = rest
                .find(']')
                .ok_or_else(|| format!("malformed index in `{k}`"))?;
            let idx = rest[1..close]
                .trim()
                .parse::<usize>()
                .map_err(|_| format!("expected an index like `faults[0]` in `{k}`"))?;
            segs.push(Seg::Index(idx));
            rest = &rest[close + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err(format!("malformed index in `{k}`"));
            }
        }
    }
    Ok(segs)
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a datetime",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

/// The container a missing key becomes: its default if it has one of the right shape, else
/// an empty table (or array, when `next` is an index).
fn fresh(next: &Seg, dflt: Option<&Value>) -> Value {
    match (next, dflt) {
        (Seg::Key(_), Some(Value::Table(t))) => Value::Table(t.clone()),
        (Seg::Index(_), Some(Value::Array(a))) => Value::Array(a.clone()),
        (Seg::Key(_), _) => Value::Table(Table::new()),
        (Seg::Index(_), _) => Value::Array(Vec::new()),
    }
}

fn walk(
    cur: &mut Value,
    segs: &[Seg],
    value: Value,
    shown: &str,
    dflt: Option<&Value>,
) -> Result<(), String> {
    let Some((first, rest)) = segs.split_first() else {
        return Ok(());
    };
    match cur {
        Value::Table(t) => {
            let name = match first {
                Seg::Key(k) => k,
                Seg::Index(i) => {
                    return Err(format!(
                        "`{shown}` is a table, not an array: [{i}] does not apply"
                    ))
                }
            };
            let here = if shown.is_empty() {
                name.clone()
            } else {
                format!("{shown}.{name}")
            };
            let d = dflt.and_then(|d| d.get(name.as_str()));
            let Some(next) = rest.first() else {
                t.insert(name.clone(), value);
                return Ok(());
            };
            let child = t.entry(name.clone()).or_insert_with(|| fresh(next, d));
            walk(child, rest, value, &here, d)
        }
        Value::Array(a) => {
            let i = match first {
                Seg::Index(i) => *i,
                Seg::Key(k) => k.parse::<usize>().map_err(|_| {
                    format!("`{shown}` is an array: expected an index like `{shown}[0]`, got `{k}`")
                })?,
            };
            if i > a.len() {
                return Err(format!(
                    "`{shown}` has {} entries: index {i} is out of range (use {} to append)",
                    a.len(),
                    a.len()
                ));
            }
            let here = format!("{shown}[{i}]");
            let Some(next) = rest.first() else {
                if i == a.len() {
                    a.push(value);
                } else {
                    a[i] = value;
                }
                return Ok(());
            };
            if i == a.len() {
                a.push(fresh(next, None));
            }
            walk(&mut a[i], rest, value, &here, None)
        }
        other => Err(format!("`{shown}` is {}, not a table", type_of(other))),
    }
}
