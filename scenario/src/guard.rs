//! Guard rails: warnings for a scenario or a run whose figures measure something other than
//! the capacity the user asked about — most requests refused by the API's state validation or
//! failed, ops still in flight when the drain ended — each naming the cause and the key to
//! change. Warnings never change a verdict or an exit status; they go to stderr.

use crate::workload::{dead_ends, follows_state};
use crate::{Model, Scenario};
use conductor::op::{OpKind, Status};

/// Above this share of the requests refused (or of the accepted ops failed) a run warns: a
/// sensible workload under Zun's validation refuses only the races of open-loop ops on one
/// container (a few percent at the rates of a capacity question), and beyond a tenth the
/// pool's figures describe refusals and failures more than they describe capacity.
pub const WARN_RATIO: f64 = 0.10;

/// What `check` can tell from the scenario alone.
pub fn static_warnings(scn: &Scenario) -> Vec<String> {
    let w = &scn.workload;
    let mut out = Vec::new();
    let total: f64 = w.mix.iter().map(|(_, x)| x).sum();
    let share = |pred: &dyn Fn(OpKind) -> bool| -> f64 {
        if total <= 0.0 {
            return 0.0;
        }
        w.mix
            .iter()
            .filter(|(k, _)| pred(*k))
            .map(|(_, x)| x)
            .sum::<f64>()
            / total
    };
    match w.model {
        Model::Ops => {
            let creates = share(&|k| k == OpKind::Create);
            if creates > 0.0 {
                out.push(format!(
                    "workload.mix: {:.0}% of the `ops` model's requests are creates, on \
                     pre-created containers that exist already: {}; use `workload.model = \
                     \"mixed\"` (new containers through `lifecycle` at `arrival`, ops on \
                     existing ones at `ops_arrival`)",
                    creates * 100.0,
                    if scn.api.validate_state {
                        "the API's state validation refuses every one"
                    } else {
                        "every one holds a worker and fails at the host"
                    }
                ));
            }
            let refused = share(&|k| k != OpKind::Create && !k.allowed_from(Status::Running));
            if scn.api.validate_state && refused > 0.0 {
                out.push(format!(
                    "workload.mix: {:.0}% of the requests are ops Zun refuses on a running \
                     container (the `ops` model's containers start running, and it does not \
                     follow their state): expect at least that share refused; use \
                     `workload.model = \"mixed\"`, whose ops follow each container's state",
                    refused * 100.0
                ));
            }
        }
        Model::Mixed => {
            let dead = dead_ends(w);
            if !dead.is_empty() {
                let names: Vec<String> = dead.iter().map(|s| format!("{s:?}")).collect();
                out.push(format!(
                    "workload.mix: pre-created containers can reach {} where no op of the mix \
                     follows the state; ops drawn there are sent anyway and refused: add an op \
                     that leaves the state (e.g. start for Stopped, unpause for Paused)",
                    names.join(", ")
                ));
            }
            if w.mix
                .iter()
                .all(|(k, _)| !follows_state(*k, Status::Running))
            {
                out.push("workload.mix: no op of the mix acts on a running container".to_string());
            }
        }
        Model::Lifecycle => {}
    }
    if matches!(w.model, Model::Lifecycle | Model::Mixed) && !w.lifecycle.is_empty() {
        // The mean time from a container's first request to its last op's end.
        let gaps = w.gap.mean().as_secs_f64() * (w.lifecycle.len() - 1) as f64;
        let last = scn
            .backend
            .dist(w.lifecycle[w.lifecycle.len() - 1])
            .mean()
            .as_secs_f64();
        let span = gaps + last;
        if span > scn.drain.as_secs_f64() {
            out.push(format!(
                "drain: a lifecycle takes about {span:.0} s on average (gaps and its last op), \
                 more than the drain ({} s): lifecycles begun near the end will be cut (`lost`); \
                 raise `drain`",
                scn.drain.as_secs()
            ));
        }
    }
    out
}

/// The counts of a run that the guard rails look at.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outcome {
    /// Requests sent.
    pub submitted: u64,
    /// Refused by the API.
    pub rejected: u64,
    /// Accepted by the API.
    pub accepted: u64,
    /// Finished failed.
    pub failed: u64,
    /// Never became terminal by the end of the drain.
    pub lost: u64,
}

/// What a finished run warns about.
pub fn run_warnings(scn: &Scenario, o: &Outcome) -> Vec<String> {
    let mut out = Vec::new();
    let ratio = |n: u64, of: u64| if of == 0 { 0.0 } else { n as f64 / of as f64 };
    let refused = ratio(o.rejected, o.submitted);
    if refused > WARN_RATIO {
        let cause = if scn.api.validate_state {
            "refused by the API (Zun's state validation, `api.validate_state`)"
        } else {
            "refused by the API"
        };
        let hint = match scn.workload.model {
            Model::Ops => {
                "the `ops` model acts on pre-created running containers and does not follow \
                 their state; use `workload.model = \"mixed\"`"
            }
            _ => {
                "look at `workload.mix` and `workload.initial`: ops that the containers' states \
                 do not allow, or too many ops per container at once"
            }
        };
        out.push(format!(
            "{:.0}% of the requests were {cause}: the pool's figures describe the rest only; \
             {hint}",
            refused * 100.0
        ));
    }
    let failed = ratio(o.failed, o.accepted);
    if failed > WARN_RATIO {
        let hint = if scn.workload.model == Model::Ops
            && scn.workload.mix.iter().any(|(k, _)| *k == OpKind::Create)
        {
            "creates on the `ops` model's existing containers fail at the host after holding \
             a worker; use `workload.model = \"mixed\"`"
        } else {
            "see `backend.failure_rate`, the faults and `cluster.overflow`"
        };
        out.push(format!(
            "{:.0}% of the accepted ops failed: {hint}",
            failed * 100.0
        ));
    }
    if o.lost > 0 {
        let faults = if scn.faults.is_empty() && scn.nemesis.is_none() {
            ""
        } else {
            " — unless the faults lost them (the `no-lost-ops` invariant says which)"
        };
        out.push(format!(
            "the drain ended with {} op{} in flight (`lost`): raise `drain` (now {}){faults}",
            o.lost,
            if o.lost == 1 { "" } else { "s" },
            humantime::format_duration(scn.drain)
        ));
    }
    out
}
