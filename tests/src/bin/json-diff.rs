//! `json-diff OLD NEW [--ignore PATH]... [--max N]`: compares two JSON documents the way the
//! project's determinism rule needs them compared ("the same bytes of every JSON output, `host`
//! aside"), for `scripts/compare-outputs`.
//!
//! Every value is compared exactly: numbers by their text (so `1` differs from `1.0`), objects
//! key by key *and* in key order (the outputs are serialized structs, so a reordered field is a
//! changed byte), arrays element by element. A key of NEW that OLD lacks is a difference ("new
//! key") unless `--ignore` names it; a key OLD has and NEW lacks is always one. `PATH` is a
//! dotted key path from the root, `host` or `pool.erlang_b`, where `*` stands for any one array
//! index or object key (`per_seed.*.host`); an ignored path hides its whole subtree, in either
//! document. Keys containing `.` cannot be named.
//!
//! When the two trees agree, the layout is checked too: each file is classified as what
//! `serde_json::to_string_pretty` or `serde_json::to_string` would write (each with or without
//! a final newline) or as other, and the classes must match. Equal trees in the same serde_json
//! layout are equal bytes outside the ignored paths.
//!
//! Prints each difference with its path and both values (at most `N`, default 50, then a count
//! of the rest); exits 0 when equal, 1 when different, 2 on bad input.

use std::fmt::Write as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run(std::env::args().skip(1)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("json-diff: {e}");
            ExitCode::from(2)
        }
    }
}

const USAGE: &str = "usage: json-diff OLD NEW [--ignore PATH]... [--max N]";

/// Parses the arguments, compares the two files and prints the differences; `Ok(true)` when the
/// documents are equal outside the ignored paths.
fn run(args: impl Iterator<Item = String>) -> Result<bool, String> {
    let mut args = args;
    let mut files = Vec::new();
    let mut ignores = Vec::new();
    let mut max = 50usize;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--ignore" => {
                let p = args.next().ok_or("--ignore: expected a key path")?;
                ignores.push(Pattern::parse(&p));
            }
            "--max" => {
                max = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--max: expected a whole number")?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(true);
            }
            _ if a.starts_with("--") => return Err(format!("unknown option `{a}`\n{USAGE}")),
            _ => files.push(a),
        }
    }
    let [old_file, new_file] = <[String; 2]>::try_from(files).map_err(|_| USAGE.to_string())?;
    let read = |f: &str| std::fs::read_to_string(f).map_err(|e| format!("{f}: {e}"));
    let (old_text, new_text) = (read(&old_file)?, read(&new_file)?);
    let parse_file = |f: &str, t: &str| parse(t).map_err(|e| format!("{f}: {e}"));
    let (old, new) = (
        parse_file(&old_file, &old_text)?,
        parse_file(&new_file, &new_text)?,
    );

    let mut diffs = diff(&old, &new, &ignores);
    // The layout only matters once the values agree: with differing values the bytes differ
    // anyway, and the value differences are the useful report.
    if diffs.is_empty() {
        let (lo, ln) = (Layout::of(&old, &old_text), Layout::of(&new, &new_text));
        if lo != ln {
            diffs.push(Diff {
                path: "(layout)".into(),
                what: format!("{lo:?} -> {ln:?}"),
            });
        }
    }
    for d in diffs.iter().take(max) {
        println!("{}: {}", d.path, d.what);
    }
    if diffs.len() > max {
        println!("… and {} more difference(s)", diffs.len() - max);
    }
    Ok(diffs.is_empty())
}

/// A JSON value as written: objects keep their key order (which `serde_json::Value` without
/// its `preserve_order` feature drops, and turning that feature on would change the whole
/// workspace's output) and numbers keep their text (so `1`, `1.0` and `1e0` stay apart).
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// Parses one JSON document (RFC 8259; nothing after it but whitespace).
fn parse(text: &str) -> Result<Json, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        depth: 0,
    };
    p.ws();
    let v = p.value()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.error("trailing characters after the document"));
    }
    Ok(v)
}

/// A recursive-descent JSON parser over the document's bytes. A small one of our own rather
/// than serde's visitor machinery: it keeps numbers as text and needs no new dependency.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    /// Nesting depth, bounded so that a hostile file cannot overflow the stack.
    depth: usize,
}

impl Parser<'_> {
    const MAX_DEPTH: usize = 1000;

    fn error(&self, what: &str) -> String {
        let before = &self.s[..self.i.min(self.s.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let col = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
        format!("line {line} column {col}: {what}")
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), String> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected `{}`", b as char)))
        }
    }

    fn literal(&mut self, word: &str, v: Json) -> Result<Json, String> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.error("expected a value"))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        match self.peek() {
            Some(b'{') => self.nested(Parser::object),
            Some(b'[') => self.nested(Parser::array),
            Some(b'"') => self.string().map(Json::String),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("expected a value")),
            None => Err(self.error("unexpected end of input")),
        }
    }

    fn nested(&mut self, f: fn(&mut Self) -> Result<Json, String>) -> Result<Json, String> {
        self.depth += 1;
        if self.depth > Self::MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        let v = f(self);
        self.depth -= 1;
        v
    }

    fn object(&mut self) -> Result<Json, String> {
        self.expect(b'{')?;
        let mut m = Vec::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(Json::Object(m));
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a key string"));
            }
            let k = self.string()?;
            self.ws();
            self.expect(b':')?;
            self.ws();
            m.push((k, self.value()?));
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Json::Object(m));
                }
                _ => return Err(self.error("expected `,` or `}`")),
            }
        }
    }

    fn array(&mut self) -> Result<Json, String> {
        self.expect(b'[')?;
        let mut v = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(Json::Array(v));
        }
        loop {
            self.ws();
            v.push(self.value()?);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Json::Array(v));
                }
                _ => return Err(self.error("expected `,` or `]`")),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(self.error("expected a digit after `.`"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("expected a digit in the exponent"));
            }
        }
        // The slice is ASCII by construction.
        Ok(Json::Number(
            String::from_utf8_lossy(&self.s[start..self.i]).into_owned(),
        ))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self
            .s
            .get(self.i..self.i + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| self.error("expected four hex digits after `\\u`"))?;
        self.i += 4;
        Ok(h)
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    // Unescaped runs are copied whole from valid UTF-8 and split only at
                    // ASCII, escapes push whole chars: the bytes are valid UTF-8.
                    return String::from_utf8(out).map_err(|_| self.error("invalid UTF-8"));
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.i += 1;
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if !self.s[self.i..].starts_with(b"\\u") {
                                    return Err(self.error("a lone high surrogate"));
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.error("a bad low surrogate"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            let c = char::from_u32(code)
                                .ok_or_else(|| self.error("a lone low surrogate"))?;
                            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                            continue;
                        }
                        _ => return Err(self.error("a bad escape")),
                    };
                    self.i += 1;
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
                Some(b) if b < 0x20 => return Err(self.error("a control character in a string")),
                Some(b) => {
                    out.push(b);
                    self.i += 1;
                }
            }
        }
    }
}

/// Writes a value the way serde_json does: `to_string_pretty` (two-space indent, `"k": v`)
/// when `pretty`, else `to_string`. Strings go through serde_json itself, so escapes match.
fn write_json(v: &Json, pretty: bool, indent: usize, out: &mut String) {
    let newline = |out: &mut String, level: usize| {
        if pretty {
            out.push('\n');
            out.push_str(&"  ".repeat(level));
        }
    };
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => out.push_str(n),
        Json::String(s) => out.push_str(&quote(s)),
        Json::Array(a) if a.is_empty() => out.push_str("[]"),
        Json::Object(m) if m.is_empty() => out.push_str("{}"),
        Json::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent + 1);
                write_json(x, pretty, indent + 1, out);
            }
            newline(out, indent);
            out.push(']');
        }
        Json::Object(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent + 1);
                out.push_str(&quote(k));
                out.push_str(if pretty { ": " } else { ":" });
                write_json(x, pretty, indent + 1, out);
            }
            newline(out, indent);
            out.push('}');
        }
    }
}

/// A string as serde_json writes it.
fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serializes")
}

/// A value as compact JSON.
fn compact(v: &Json) -> String {
    let mut s = String::new();
    write_json(v, false, 0, &mut s);
    s
}

/// How a file's bytes relate to its parsed value; the flag is whether one final newline follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Exactly `serde_json::to_string_pretty`.
    Pretty { final_newline: bool },
    /// Exactly `serde_json::to_string`.
    Compact { final_newline: bool },
    /// Anything else (other whitespace, escapes serde_json would not write, …).
    Other,
}

impl Layout {
    fn of(value: &Json, text: &str) -> Layout {
        let (body, final_newline) = match text.strip_suffix('\n') {
            Some(b) => (b, true),
            None => (text, false),
        };
        let mut pretty = String::new();
        write_json(value, true, 0, &mut pretty);
        if pretty == body {
            Layout::Pretty { final_newline }
        } else if compact(value) == body {
            Layout::Compact { final_newline }
        } else {
            Layout::Other
        }
    }
}

/// One `--ignore` path, split at its dots; `None` is `*`.
#[derive(Debug, Clone)]
struct Pattern(Vec<Option<String>>);

impl Pattern {
    fn parse(p: &str) -> Pattern {
        Pattern(
            p.split('.')
                .map(|s| (s != "*").then(|| s.to_owned()))
                .collect(),
        )
    }

    /// Whether the pattern names exactly this path (its subtree is then ignored by not
    /// descending into it).
    fn matches(&self, path: &[String]) -> bool {
        self.0.len() == path.len()
            && self
                .0
                .iter()
                .zip(path)
                .all(|(p, k)| p.as_ref().is_none_or(|p| p == k))
    }
}

/// One difference: where, and what changed there.
#[derive(Debug, Clone, PartialEq)]
struct Diff {
    path: String,
    what: String,
}

/// Every difference between OLD and NEW outside the ignored paths, in document order.
fn diff(old: &Json, new: &Json, ignores: &[Pattern]) -> Vec<Diff> {
    let mut out = Vec::new();
    walk(old, new, &mut Vec::new(), ignores, &mut out);
    out
}

fn walk(old: &Json, new: &Json, path: &mut Vec<String>, ignores: &[Pattern], out: &mut Vec<Diff>) {
    let ignored = |path: &[String]| ignores.iter().any(|p| p.matches(path));
    match (old, new) {
        (Json::Object(o), Json::Object(n)) => {
            for (k, ov) in o {
                path.push(k.clone());
                if !ignored(path) {
                    match lookup(n, k) {
                        Some(nv) => walk(ov, nv, path, ignores, out),
                        None => out.push(Diff {
                            path: show(path),
                            what: format!("missing in new (old {})", brief(ov)),
                        }),
                    }
                }
                path.pop();
            }
            for (k, nv) in n {
                path.push(k.clone());
                if lookup(o, k).is_none() && !ignored(path) {
                    out.push(Diff {
                        path: show(path),
                        what: format!("new key (new {})", brief(nv)),
                    });
                }
                path.pop();
            }
            // Order of the keys both have (and nobody ignores): the rest is reported above.
            let order = |m: &[(String, Json)], other: &[(String, Json)], path: &mut Vec<String>| {
                let mut keys = Vec::new();
                for (k, _) in m {
                    path.push(k.clone());
                    if lookup(other, k).is_some() && !ignored(path) {
                        keys.push(k.clone());
                    }
                    path.pop();
                }
                keys
            };
            let (ko, kn) = (order(o, n, path), order(n, o, path));
            if ko != kn {
                out.push(Diff {
                    path: show(path),
                    what: format!("key order {} -> {}", ko.join(","), kn.join(",")),
                });
            }
        }
        (Json::Array(o), Json::Array(n)) => {
            for i in 0..o.len().max(n.len()) {
                path.push(i.to_string());
                if !ignored(path) {
                    match (o.get(i), n.get(i)) {
                        (Some(ov), Some(nv)) => walk(ov, nv, path, ignores, out),
                        (Some(ov), None) => out.push(Diff {
                            path: show(path),
                            what: format!("missing in new (old {})", brief(ov)),
                        }),
                        (None, Some(nv)) => out.push(Diff {
                            path: show(path),
                            what: format!("new element (new {})", brief(nv)),
                        }),
                        (None, None) => unreachable!("i is below one of the lengths"),
                    }
                }
                path.pop();
            }
        }
        // Numbers are text here, so this is the textual comparison (0.0 and -0.0 differ).
        _ if old == new => {}
        _ => changed(old, new, path, out),
    }
}

fn changed(old: &Json, new: &Json, path: &[String], out: &mut Vec<Diff>) {
    out.push(Diff {
        path: show(path),
        what: format!("{} -> {}", brief(old), brief(new)),
    });
}

/// The value under `key` (the first, should a document repeat a key).
fn lookup<'a>(m: &'a [(String, Json)], key: &str) -> Option<&'a Json> {
    m.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn show(path: &[String]) -> String {
    if path.is_empty() {
        "(root)".into()
    } else {
        path.join(".")
    }
}

/// A value as compact JSON, cut short so that one changed array does not flood the report.
fn brief(v: &Json) -> String {
    const LIMIT: usize = 160;
    let s = compact(v);
    if s.chars().count() <= LIMIT {
        return s;
    }
    let mut cut: String = s.chars().take(LIMIT).collect();
    let _ = write!(cut, "… ({} chars)", s.chars().count());
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(s: &str) -> Json {
        parse(s).unwrap()
    }

    fn paths(old: &str, new: &str, ignores: &[&str]) -> Vec<String> {
        let ig: Vec<Pattern> = ignores.iter().map(|p| Pattern::parse(p)).collect();
        diff(&doc(old), &doc(new), &ig)
            .into_iter()
            .map(|d| format!("{}: {}", d.path, d.what))
            .collect()
    }

    #[test]
    fn equal_documents_have_no_differences() {
        let doc = r#"{"a": 1, "b": [1.5, {"c": null, "d": "x"}], "e": true}"#;
        assert!(paths(doc, doc, &[]).is_empty());
    }

    #[test]
    fn a_changed_nested_value_is_reported_with_its_path() {
        let old = r#"{"pool": {"per_conductor": [{"arrivals": 10}, {"arrivals": 11}]}}"#;
        let new = r#"{"pool": {"per_conductor": [{"arrivals": 10}, {"arrivals": 12}]}}"#;
        assert_eq!(
            paths(old, new, &[]),
            ["pool.per_conductor.1.arrivals: 11 -> 12"]
        );
    }

    #[test]
    fn numbers_compare_by_their_text() {
        assert_eq!(paths(r#"{"x": 1}"#, r#"{"x": 1.0}"#, &[]), ["x: 1 -> 1.0"]);
        assert_eq!(paths(r#"[0.0]"#, r#"[-0.0]"#, &[]), ["0: 0.0 -> -0.0"]);
        assert!(paths(r#"[0.130815]"#, r#"[0.130815]"#, &[]).is_empty());
    }

    #[test]
    fn an_ignored_path_with_a_star_hides_its_subtree_in_every_element() {
        let old = r#"{"host": {"wall_s": 1}, "per_seed": [{"n": 1, "host": {"wall_s": 2}}, {"n": 2, "host": 3}]}"#;
        let new = r#"{"host": {"wall_s": 9}, "per_seed": [{"n": 1, "host": {"wall_s": 7}}, {"n": 2, "host": 8}]}"#;
        assert!(paths(old, new, &["host", "per_seed.*.host"]).is_empty());
        // Without the star pattern only the top-level host is hidden.
        assert_eq!(
            paths(old, new, &["host"]),
            ["per_seed.0.host.wall_s: 2 -> 7", "per_seed.1.host: 3 -> 8"]
        );
    }

    #[test]
    fn a_new_key_is_a_difference_unless_ignored() {
        let old = r#"{"pool": {"workers": 10}}"#;
        let new = r#"{"pool": {"workers": 10, "erlang_b": 0.13}}"#;
        assert_eq!(paths(old, new, &[]), ["pool.erlang_b: new key (new 0.13)"]);
        assert!(paths(old, new, &["pool.erlang_b"]).is_empty());
        assert!(paths(old, new, &["*.erlang_b"]).is_empty());
    }

    #[test]
    fn a_missing_key_and_a_shorter_array_are_differences() {
        assert_eq!(
            paths(r#"{"a": 1, "b": [1, 2]}"#, r#"{"b": [1]}"#, &[]),
            ["a: missing in new (old 1)", "b.1: missing in new (old 2)"]
        );
    }

    #[test]
    fn reordered_keys_are_a_difference() {
        assert_eq!(
            paths(r#"{"a": 1, "b": 2}"#, r#"{"b": 2, "a": 1}"#, &[]),
            ["(root): key order a,b -> b,a"]
        );
        // A new key inserted in the middle (and ignored) does not count as a reordering.
        assert!(paths(r#"{"a": 1, "b": 2}"#, r#"{"a": 1, "n": 0, "b": 2}"#, &["n"]).is_empty());
    }

    #[test]
    fn the_parser_keeps_key_order_number_text_and_decodes_escapes() {
        assert_eq!(
            doc(r#" {"b": -1.50e+3, "a": [true, null, "\u00e9\ud83d\ude00\"\\\/\n"]} "#),
            Json::Object(vec![
                ("b".into(), Json::Number("-1.50e+3".into())),
                (
                    "a".into(),
                    Json::Array(vec![
                        Json::Bool(true),
                        Json::Null,
                        Json::String("é😀\"\\/\n".into())
                    ])
                ),
            ])
        );
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "01",
            "1.",
            "\"\\ud800\"",
            "nul",
            "1 2",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn layout_tells_pretty_from_compact() {
        let v = doc(r#"{"a": [1, 2], "b": {}, "c": "\u00e9\n"}"#);
        let serde: serde_json::Value =
            serde_json::from_str(r#"{"a": [1, 2], "b": {}, "c": "\u00e9\n"}"#).unwrap();
        let pretty = serde_json::to_string_pretty(&serde).unwrap();
        let pretty_nl = format!("{pretty}\n");
        assert_eq!(
            Layout::of(&v, &pretty),
            Layout::Pretty {
                final_newline: false
            }
        );
        assert_eq!(
            Layout::of(&v, &pretty_nl),
            Layout::Pretty {
                final_newline: true
            }
        );
        assert_eq!(
            Layout::of(&v, &serde_json::to_string(&serde).unwrap()),
            Layout::Compact {
                final_newline: false
            }
        );
        assert_eq!(
            Layout::of(&v, r#"{"a": [1,2], "b": {}, "c": "\u00e9\n"}"#),
            Layout::Other
        );
    }
}
