//! Erlang B agreement (docs/queueing.md): with Poisson arrivals, one conductor, no faults
//! and an overflow that sends excess work elsewhere (caller-runs, reject), the pool is an
//! M/G/c/c loss system and the fraction of arrivals that find it exhausted is E_B(c, A) with
//! A = λ × mean hold time, whatever the hold-time distribution (insensitivity).
//!
//! Each point runs 8 seeds of one simulated hour (1 min warm-up excluded). Per seed i the
//! offered load is measured, A_i = λ_i × hold_i (pool arrivals per second of the load phase
//! after the warm-up, times that seed's mean hold), and the test judges the per-seed
//! differences ratio_i − E_B(c, A_i): their mean must be within 3 standard errors of zero
//! (with a floor of 1% of E_B so that a degenerate SE cannot fail it), and 3 SE must be below
//! 15% of E_B (so that a noisy run cannot pass anything). The prediction for c ± 1 workers
//! must be refused by the same yardstick: the test can tell.

use reports::erlang_b;
use scenario::Scenario;
use tests::{assert_agrees, offered, run, Capacity};

const SEEDS: u64 = 8;

struct Point {
    name: &'static str,
    workers: u32,
    rate: f64,
    overflow: &'static str,
    service: &'static str,
    /// `None`: the default network; else (latency table, duration s, warm-up s).
    fast: Option<(&'static str, u64, u64)>,
}

/// Runs a point and judges it; returns (mean measured ratio, mean predicted ratio).
fn judge(p: &Point) -> (f64, f64) {
    eprintln!("{}:", p.name);
    let mut cap = Capacity::new(p.workers, p.rate)
        .overflow(p.overflow)
        .service(p.service);
    if let Some((latency, duration_s, warmup_s)) = p.fast {
        cap = cap.latency(latency).duration(duration_s, warmup_s);
    }
    let scn: Scenario = cap.scenario();
    let seeds = run(&scn, 1, SEEDS);
    let c = p.workers;
    let measured: Vec<f64> = seeds.iter().map(|m| m.exhaustion_ratio()).collect();
    let loads: Vec<f64> = seeds.iter().map(|m| offered(&scn, m)).collect();
    let predicted: Vec<f64> = loads.iter().map(|&a| erlang_b(c, a)).collect();
    let eb = predicted.iter().sum::<f64>() / predicted.len() as f64;
    eprintln!("  offered load per seed: {loads:.3?}");
    let d = assert_agrees(
        &format!("{}: E_B({c}, A)", p.name),
        &measured,
        &predicted,
        3.0,
        0.01 * eb,
        0.15 * eb,
    );

    // Power: the same yardstick refuses a pool one worker larger or smaller.
    let tol = (3.0 * d.se).max(0.01 * eb);
    let mean_measured = measured.iter().sum::<f64>() / measured.len() as f64;
    for other in [c - 1, c + 1] {
        let wrong = loads.iter().map(|&a| erlang_b(other, a)).sum::<f64>() / loads.len() as f64;
        assert!(
            (mean_measured - wrong).abs() > tol,
            "{}: the test cannot tell c = {c} from c = {other} ({mean_measured:.5} vs {wrong:.5}, \
             tolerance {tol:.5})",
            p.name
        );
    }

    // Every seed's traffic is accounted for, and the policy did what it says.
    for m in &seeds {
        assert!(
            m.exhausted > 0,
            "{}: seed {}: no exhaustion",
            p.name,
            m.seed
        );
        assert_eq!(m.lost, 0, "{}: seed {}: lost ops", p.name, m.seed);
        match p.overflow {
            "caller-runs" => {
                assert_eq!(m.caller_runs, m.exhausted, "{}: seed {}", p.name, m.seed);
                assert_eq!(m.failed, 0, "{}: seed {}", p.name, m.seed);
            }
            "reject" => {
                assert_eq!(m.caller_runs, 0, "{}: seed {}", p.name, m.seed);
                // `failed` counts by intended send time, `exhausted` by arrival time at the
                // pool: they may differ by the few ops in flight at the end of the warm-up.
                let slack = 5 + m.exhausted / 1000;
                assert!(
                    m.failed.abs_diff(m.exhausted) <= slack,
                    "{}: seed {}: failed {} vs exhausted {}",
                    p.name,
                    m.seed,
                    m.failed,
                    m.exhausted
                );
            }
            _ => unreachable!(),
        }
    }

    // The report's own prediction (pooled hold time, nominal rate) agrees too.
    let rep = sim::run::report(&scn, 1, &seeds, 0.0);
    let b = rep
        .pool
        .erlang_b
        .expect("an Erlang model applies to this scenario");
    assert_eq!(b.workers, c);
    assert!(
        (rep.pool.exhaustion_ratio - b.blocking).abs() <= tol.max(0.05 * b.blocking),
        "{}: report.json: pool.exhaustion_ratio {} vs pool.erlang_b.blocking {}",
        p.name,
        rep.pool.exhaustion_ratio,
        b.blocking
    );
    let [lo, hi] = rep.pool.exhaustion_ratio_ci95;
    assert!(lo <= rep.pool.exhaustion_ratio && rep.pool.exhaustion_ratio <= hi);
    (mean_measured, eb)
}

#[test]
fn c5_a5_exp_reject() {
    judge(&Point {
        name: "c=5 A≈5 exp reject",
        workers: 5,
        rate: 5.0,
        overflow: "reject",
        service: r#"{ dist = "exp", mean = "1s" }"#,
        fast: None,
    });
}

#[test]
fn c10_a8_exp_caller_runs() {
    judge(&Point {
        name: "c=10 A≈8 exp caller-runs",
        workers: 10,
        rate: 8.0,
        overflow: "caller-runs",
        service: r#"{ dist = "exp", mean = "1s" }"#,
        fast: None,
    });
}

#[test]
fn c20_a15_exp_reject() {
    judge(&Point {
        name: "c=20 A≈15 exp reject",
        workers: 20,
        rate: 15.0,
        overflow: "reject",
        service: r#"{ dist = "exp", mean = "1s" }"#,
        fast: None,
    });
}

/// Insensitivity: a constant and a heavy-tailed lognormal service time give the same
/// exhaustion ratio as the exponential at the same offered load.
#[test]
fn insensitivity_constant_and_lognormal() {
    let (constant, eb_c) = judge(&Point {
        name: "c=10 A≈8 constant caller-runs",
        workers: 10,
        rate: 8.0,
        overflow: "caller-runs",
        service: r#"{ dist = "constant", value = "1s" }"#,
        fast: None,
    });
    // median 0.5 s, p99 4 s: σ ≈ 0.894, mean ≈ 0.746 s; 10.7/s offers ≈ 8 erlangs.
    let (lognormal, eb_l) = judge(&Point {
        name: "c=10 A≈8 lognormal reject",
        workers: 10,
        rate: 10.7,
        overflow: "reject",
        service: r#"{ dist = "lognormal", median = "500ms", p99 = "4s" }"#,
        fast: None,
    });
    // Both near the same E_B(10, ≈8.3), whatever the distribution's shape.
    assert!(
        (constant - lognormal).abs() < 0.1 * (eb_c + eb_l) / 2.0 + (eb_c - eb_l).abs(),
        "constant {constant} vs lognormal {lognormal} (E_B {eb_c} and {eb_l})"
    );
}

/// High rate, short holds: 400 arrivals a second, a 20 ms mean service, ops 2.5 ms apart on
/// each connection. Timers must be exact here: a sleep rounded up to 1 ms (madsim's tokio
/// behaviour) bunches arrivals less than 1 ms apart and moved the ratio 2% below Erlang B.
/// The network's latency is nearly constant so that in-order delivery does not bunch messages
/// either (with 1–10 ms of jitter per message, TCP's ordering makes arrivals at the pool
/// burstier than Poisson at this rate — a property of the network, not of the pool).
#[test]
fn c10_high_rate_short_holds() {
    judge(&Point {
        name: "c=10 A≈9.6 exp 20ms at 400/s reject",
        workers: 10,
        rate: 400.0,
        overflow: "reject",
        service: r#"{ dist = "exp", mean = "20ms" }"#,
        fast: Some((r#"{ min = "1ms", max = "1010us" }"#, 300, 30)),
    });
}
