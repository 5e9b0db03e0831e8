//! Every key the parser accepts is documented in `docs/scenario.md` (written there in backticks
//! as its full dotted path), and every key path the reference lists is one the parser accepts.
//!
//! The parser notes the keys it allows as it opens each table (`parse::accepted`); the inputs
//! below open every table and every variant of every tagged table (arrival kinds, picks,
//! distributions, fault kinds). A value that does not validate is fine: the keys are noted when
//! the table is opened, before its values are read.

use crate::parse::accepted;
use crate::parse_str;
use std::collections::BTreeSet;

/// Inputs that, between them, open every table of the schema and every variant of every tag.
fn inputs() -> Vec<String> {
    let mut v = vec![crate::DEFAULTS_TOML.to_string()];
    let base = "name = \"x\"\nduration = \"10m\"\n";
    for arrival in [
        "kind = \"poisson\"\nrate = 1.0",
        "kind = \"constant\"\nrate = 1.0",
        "kind = \"bursty\"\nrate = 1.0\nburst_rate = 2.0\non = \"1s\"\noff = \"1s\"",
        "kind = \"ramp\"\nfrom = 1.0\nto = 2.0",
        "kind = \"schedule\"\nphases = [{ rate = 1.0, for = \"1m\" }]\nrepeat = 2",
        "kind = \"trace\"\nfile = \"t.csv\"\nformat = \"counts\"\ninterval = \"1s\"\nscale = 1.0",
    ] {
        v.push(format!("{base}[workload.arrival]\n{arrival}\n"));
        v.push(format!(
            "{base}[workload]\nmodel = \"mixed\"\n[workload.ops_arrival]\n{arrival}\n"
        ));
    }
    for pick in [
        "pick = \"uniform\"",
        "pick = { kind = \"uniform\" }",
        "pick = { kind = \"zipf\", s = 1.1 }",
        "pick = { zipf = { s = 1.1 } }",
    ] {
        v.push(format!("{base}[workload]\n{pick}\n"));
    }
    for dist in [
        "dist = \"exp\", mean = \"1s\"",
        "dist = \"constant\", value = \"1s\"",
        "dist = \"uniform\", min = \"1s\", max = \"2s\"",
        "dist = \"lognormal\", median = \"1s\", p99 = \"4s\"",
        "dist = \"empirical\", samples = [\"1s\"]",
        "dist = \"empirical\", histogram = { cumulative = true, le = [1, \"+Inf\"], counts = [1, 2], tail = { kind = \"exp\", mean = \"1s\" } }",
    ] {
        v.push(format!("{base}[backend]\ndefault = {{ {dist} }}\n"));
        for op in conductor::op::OpKind::ALL {
            v.push(format!("{base}[backend]\n{} = {{ {dist} }}\n", op.name()));
        }
        v.push(format!(
            "{base}[workload]\nmodel = \"lifecycle\"\ngap = {{ {dist} }}\n"
        ));
    }
    for fault in [
        "kind = \"partition\"\ngroups = [[\"api\"], [\"bus\"]]\nduration = \"1s\"",
        "kind = \"isolate\"\nnode = \"bus\"\nduration = \"1s\"",
        "kind = \"kill\"\nnode = \"bus\"",
        "kind = \"pause\"\nnode = \"bus\"\nduration = \"1s\"",
        "kind = \"clog\"\nnodes = [\"bus\"]\nduration = \"1s\"",
        "kind = \"latency\"\nmin = \"1ms\"\nmax = \"2ms\"\nduration = \"1s\"",
        "kind = \"slow-host\"\nnode = \"host-1\"\nfactor = 2.0\nduration = \"1s\"",
        "kind = \"host-errors\"\nnode = \"host-1\"\nrate = 0.5\nduration = \"1s\"",
    ] {
        v.push(format!("{base}[[faults]]\nat = \"1m\"\n{fault}\n"));
    }
    v.push(format!(
        "{base}[nemesis]\nkinds = [\"kill\"]\nmean_interval = \"1m\"\nmean_duration = \"1s\"\n"
    ));
    v.push(format!(
        "{base}[workload]\nmodel = \"mixed\"\nops_arrival = {{ kind = \"poisson\", rate = 1.0 }}\ninitial = {{ running = 0.5, stopped = 0.5 }}\n"
    ));
    v.push(format!("{base}[retry]\nbudget = {{ ratio = 0.1 }}\n"));
    v.push(format!(
        "{base}[client]\nwait_for = \"done\"\ninstances = 2\nretry_same_op = true\n[client.retry]\npolicy = \"fixed\"\nbase = \"1s\"\ncap = \"2s\"\nmax_attempts = 3\nbudget = {{ ttl = \"10s\", min_per_s = 1, percent = 0.1 }}\nthrottling = {{ max_tokens = 10, token_ratio = 0.1 }}\nbreaker = {{ failures = 5, failure_ratio = 0.5, window = \"10s\", min_requests = 10, open_for = \"5s\", probes = 1 }}\n"
    ));
    v.push(format!(
        "{base}[target]\nheaders = {{ x-a = \"b\" }}\nenv_headers = {{ x-auth-token = \"OS_TOKEN\" }}\n[[target.routes]]\nop = \"start\"\nmethod = \"POST\"\npath = \"/s/{{name}}\"\nbody = \"\"\n"
    ));
    v.push(format!(
        "{base}[network]\nlatency = {{ min = \"1ms\", max = \"2ms\" }}\n"
    ));
    v
}

/// Key paths written in backticks in `doc` (every `` `a.b` `` or `` `a` `` span that looks
/// like a key path).
fn documented(doc: &str) -> BTreeSet<String> {
    doc.split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn every_accepted_key_is_documented_in_docs_scenario_md() {
    for src in inputs() {
        let _ = parse_str(&src, "doc-coverage.toml", &[], None);
    }
    let accepted = accepted::seen();
    // The inputs reach every table: a regression here means the collector stopped working.
    assert!(accepted.len() > 150, "only {} keys noted", accepted.len());
    for k in [
        "cluster.pool_workers",
        "workload.arrival.burst_rate",
        "faults.restart_after",
    ] {
        assert!(accepted.contains(k), "{k} not noted: {accepted:?}");
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/scenario.md");
    let doc = std::fs::read_to_string(path).expect("docs/scenario.md is readable");
    let documented = documented(&doc);
    let missing: Vec<&String> = accepted.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "keys the parser accepts but docs/scenario.md does not name (in backticks, as the full \
         dotted path): {missing:?}"
    );
}

#[test]
fn the_collector_strips_indices_and_joins_paths() {
    accepted::note("faults[3]", &["node"]);
    accepted::note("", &["seed"]);
    let seen = accepted::seen();
    assert!(
        seen.contains("faults.node") && seen.contains("seed"),
        "{seen:?}"
    );
}
