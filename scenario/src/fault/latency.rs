//! `latency`: network latency for everyone.

use super::{length, Draw, FaultWorld, Spec, Step};
use crate::parse::{check_latency, Nodes, Tb, D, R};
use crate::MAX_LATENCY;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// Network latency for everyone: every message's delay is drawn in `[min, max]` instead of
/// `network.latency`. TOML: `min = "50ms"`, `max = "500ms"`, `duration = "1m"`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Latency {
    /// Lower bound (< `max`).
    #[serde(with = "crate::ser::dur")]
    pub min: Duration,
    /// Upper bound (<= 60 s).
    #[serde(with = "crate::ser::dur")]
    pub max: Duration,
    /// How long it lasts (> 0).
    #[serde(with = "crate::ser::dur")]
    pub duration: Duration,
}

impl Spec for Latency {
    const NAME: &'static str = "latency";
    const KEYS: &'static [&'static str] = &["min", "max", "duration"];

    fn parse(t: &Tb, _nodes: &Nodes) -> R<Self> {
        let (min, max) = (t.req_dur("min", D::Any)?, t.req_dur("max", D::Any)?);
        check_latency(t.cx, t, min, max)?;
        Ok(Latency {
            min,
            max,
            duration: length(t)?,
        })
    }

    /// Ten times the configured network: from its max to 10 × its max (at most 60 s); none
    /// when that is no slower. Draws nothing.
    fn draw(cx: &Draw, _rng: &mut ChaCha8Rng) -> Option<Self> {
        let lo = cx.network.latency_max;
        let hi = (lo * 10).min(MAX_LATENCY);
        if hi <= lo {
            return None;
        }
        Some(Latency {
            min: lo,
            max: hi,
            duration: cx.len,
        })
    }

    fn lasts(&self) -> Option<Duration> {
        Some(self.duration)
    }

    fn apply(&self, world: &mut dyn FaultWorld, index: usize, step: &Step) {
        let bounds = matches!(step, Step::Begin).then_some((self.min, self.max));
        world.latency(index, bounds);
    }

    fn label(&self) -> String {
        format!(
            "latency {}..{}",
            humantime::format_duration(self.min),
            humantime::format_duration(self.max)
        )
    }
}
