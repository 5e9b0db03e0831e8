//! Serialisation back to the scenario's TOML form: durations as humantime strings, ops by
//! name, and the few structs whose TOML shape differs from their Rust fields.

use super::{Backend, ClientBudget, ClientRetry, Network, OpKind, Retry};
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};
use std::time::Duration;

/// A duration that serialises as a humantime string (`"1h 30m"`, `"0s"`).
struct H(Duration);

impl Serialize for H {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

/// `#[serde(with = "ser::dur")]`: a duration as a humantime string.
pub(super) mod dur {
    use super::*;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        H(*d).serialize(s)
    }
}

/// `#[serde(with = "ser::opt_dur")]`: an optional duration as a humantime string.
pub(super) mod opt_dur {
    use super::*;
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&H(*d)),
            None => s.serialize_none(),
        }
    }
}

/// A list of durations as humantime strings.
pub(super) fn durs<S: Serializer>(v: &[Duration], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|d| H(*d)))
}

/// A list of ops by name.
pub(super) fn ops<S: Serializer>(v: &[OpKind], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|o| o.name()))
}

/// `workload.mix` as a table `{ op = weight }`.
pub(super) fn mix<S: Serializer>(v: &[(OpKind, f64)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(v.iter().map(|(o, w)| (o.name(), *w)))
}

#[derive(Serialize)]
struct Bounds {
    min: H,
    max: H,
}

impl Serialize for Network {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Network", 2)?;
        st.serialize_field("loss", &self.loss)?;
        st.serialize_field(
            "latency",
            &Bounds {
                min: H(self.latency_min),
                max: H(self.latency_max),
            },
        )?;
        st.end()
    }
}

#[derive(Serialize)]
struct Budget {
    ratio: f64,
    min_per_s: f64,
}

impl Serialize for Retry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Retry", 5)?;
        st.serialize_field("policy", &self.policy)?;
        st.serialize_field("base", &H(self.base))?;
        st.serialize_field("cap", &H(self.cap))?;
        st.serialize_field("max_attempts", &self.max_attempts)?;
        st.serialize_field(
            "budget",
            &Budget {
                ratio: self.budget_ratio,
                min_per_s: self.budget_min_per_s,
            },
        )?;
        st.end()
    }
}

impl Serialize for Backend {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2 + self.per_op.len()))?;
        m.serialize_entry("failure_rate", &self.failure_rate)?;
        m.serialize_entry("default", &self.default)?;
        for (op, d) in &self.per_op {
            m.serialize_entry(op.name(), d)?;
        }
        m.end()
    }
}

#[derive(Serialize)]
struct FinagleBudget {
    ttl: H,
    min_per_s: u32,
    percent: f64,
}

#[derive(Serialize)]
struct Throttling {
    max_tokens: f64,
    token_ratio: f64,
}

#[derive(Serialize)]
struct Breaker {
    #[serde(skip_serializing_if = "Option::is_none")]
    failures: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    window: Option<H>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_requests: Option<u32>,
    open_for: H,
    probes: u32,
}

/// `[client.retry]` in its TOML form (an unlimited budget, no throttling, no breaker: absent).
impl Serialize for ClientRetry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("policy", &self.policy)?;
        m.serialize_entry("base", &H(self.base))?;
        m.serialize_entry("cap", &H(self.cap))?;
        m.serialize_entry("max_attempts", &self.max_attempts)?;
        match self.budget {
            // `Ratio` is `[retry].budget`, which only a file without `[client.retry]` gets
            // (from `Scenario::client_retry`), and such a file echoes `[retry]` instead.
            ClientBudget::Unlimited | ClientBudget::Ratio { .. } => {}
            ClientBudget::Finagle(b) => m.serialize_entry(
                "budget",
                &FinagleBudget {
                    ttl: H(Duration::from_micros(b.ttl_us)),
                    min_per_s: b.min_per_s,
                    percent: b.percent,
                },
            )?,
        }
        if let Some(t) = self.throttling {
            m.serialize_entry(
                "throttling",
                &Throttling {
                    max_tokens: t.max_milli as f64 / 1000.0,
                    token_ratio: t.ratio_milli as f64 / 1000.0,
                },
            )?;
        }
        if let Some(b) = self.breaker {
            let r = b.trip.ratio;
            m.serialize_entry(
                "breaker",
                &Breaker {
                    failures: b.trip.consecutive,
                    failure_ratio: r.map(|r| f64::from(r.permille) / 1000.0),
                    window: r.map(|r| H(Duration::from_micros(r.window_us))),
                    min_requests: r.map(|r| r.min_requests),
                    open_for: H(Duration::from_micros(b.open_us)),
                    probes: b.probes,
                },
            )?;
        }
        m.end()
    }
}
