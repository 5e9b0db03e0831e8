//! Container operations as the API and the workload name them.
//!
//! The scenario uses the reference deployment's own [`OpKind`] (`conductor::op`), so that the
//! simulator's services and the scenario agree on one type. What this module relies on:
//! `OpKind::ALL` (a stable order), `name()` (lowercase names), `is_blocking()`, `index()` and
//! `FromStr`.

pub use conductor::op::{OpKind, UnknownOp};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order() {
        let names: Vec<&str> = OpKind::ALL.iter().map(|o| o.name()).collect();
        assert_eq!(
            names,
            [
                "create", "start", "stop", "reboot", "pause", "unpause", "kill", "delete", "logs",
                "exec", "show"
            ]
        );
        for (i, op) in OpKind::ALL.iter().enumerate() {
            assert_eq!(op.index(), i);
            assert_eq!(op.name().parse::<OpKind>().ok(), Some(*op));
            assert_eq!(op.is_blocking(), i >= 8);
        }
        let e = "strat".parse::<OpKind>().unwrap_err().to_string();
        assert!(e.contains("unknown op `strat`"), "{e}");
    }
}
