//! Idempotency keys: the op id is the key of its request (the IETF httpapi `Idempotency-Key`
//! draft; Stripe's API). The one definition the API answers by, that the client's
//! `retry_same_op` and an HTTP front end are to read the same way:
//! - the same key with the same payload gets the stored answer again, and nothing runs twice;
//! - the same key with a different payload is refused ([`KeyReuse::Mismatch`], HTTP 422);
//! - the same key while the first request is still in flight is refused
//!   ([`KeyReuse::InFlight`], HTTP 409): ask again later.
//!
//! An answer is stored only once the op was persisted (as Stripe saves a result only once the
//! endpoint began executing): a request refused before that (503: the store unreachable; 409:
//! the container's state) leaves no trace, and the same key may be tried again as new.
//! Answers are kept for the last [`Keys::DEFAULT_RETAIN`] keys answered (Stripe keeps them 24
//! hours): memory follows a bound, not the history.

use crate::proto::{Answer, OpSpec};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// How a request reused a key already taken: why it is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyReuse {
    /// The first request with this key has not been answered yet (HTTP 409 Conflict).
    InFlight,
    /// The key was used for a different payload (HTTP 422 Unprocessable Content).
    Mismatch,
}

impl KeyReuse {
    /// The HTTP status an HTTP API answers this refusal with.
    pub fn http_status(self) -> u16 {
        match self {
            KeyReuse::InFlight => 409,
            KeyReuse::Mismatch => 422,
        }
    }

    /// Whether asking again with the same key and payload can succeed later.
    pub fn retryable(self) -> bool {
        self == KeyReuse::InFlight
    }

    /// How a request with payload `new` reuses the key of `stored`, still in flight.
    pub fn of_in_flight(stored: &OpSpec, new: &OpSpec) -> Self {
        if same_payload(stored, new) {
            KeyReuse::InFlight
        } else {
            KeyReuse::Mismatch
        }
    }
}

impl std::fmt::Display for KeyReuse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyReuse::InFlight => "an op with this id is still in flight",
            KeyReuse::Mismatch => "this op id was used for a different op",
        })
    }
}

/// Whether two requests under one key ask for the same thing: the container and the op
/// (the intended send time is when, not what: a retry is sent later).
pub fn same_payload(a: &OpSpec, b: &OpSpec) -> bool {
    a.container == b.container && a.kind == b.kind
}

/// What a request's key says should happen to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// A new key: run the request, then [`Keys::answered`] (or [`Keys::release`]).
    Fresh,
    /// The same request again: give this stored answer, run nothing.
    Replay(Answer),
    /// Refused, for this reason.
    Refused(KeyReuse),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    op: OpSpec,
    answer: Option<Answer>,
}

/// The keys a service has seen: in flight, or answered (the last `retain` of those).
#[derive(Debug)]
pub struct Keys {
    entries: BTreeMap<u64, Entry>,
    /// Answered keys, oldest first: the next to forget.
    answered: VecDeque<u64>,
    retain: usize,
}

impl Default for Keys {
    fn default() -> Self {
        Keys::new(Keys::DEFAULT_RETAIN)
    }
}

impl Keys {
    /// How many answered keys the API remembers by default.
    pub const DEFAULT_RETAIN: usize = 100_000;

    /// Remembers the answers of the last `retain` keys answered (keys in flight are always
    /// remembered).
    pub fn new(retain: usize) -> Self {
        Keys {
            entries: BTreeMap::new(),
            answered: VecDeque::new(),
            retain,
        }
    }

    /// A request arrives under its key (`op.id`).
    pub fn claim(&mut self, op: &OpSpec) -> Claim {
        match self.entries.get(&op.id) {
            None => {
                self.entries.insert(
                    op.id,
                    Entry {
                        op: *op,
                        answer: None,
                    },
                );
                Claim::Fresh
            }
            Some(e) if !same_payload(&e.op, op) => Claim::Refused(KeyReuse::Mismatch),
            Some(Entry {
                answer: Some(a), ..
            }) => Claim::Replay(*a),
            Some(_) => Claim::Refused(KeyReuse::InFlight),
        }
    }

    /// The request under `id` was answered `answer` after its op was persisted: later
    /// requests with the key get it again.
    pub fn answered(&mut self, id: u64, answer: Answer) {
        let Some(e) = self.entries.get_mut(&id) else {
            return;
        };
        if e.answer.is_some() {
            return;
        }
        e.answer = Some(answer);
        self.answered.push_back(id);
        while self.answered.len() > self.retain {
            if let Some(old) = self.answered.pop_front() {
                self.entries.remove(&old);
            }
        }
    }

    /// The request under `id` was refused before its op was persisted: the key is free again.
    pub fn release(&mut self, id: u64) {
        if self.entries.get(&id).is_some_and(|e| e.answer.is_none()) {
            self.entries.remove(&id);
        }
    }

    /// Keys remembered (in flight or answered).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::OpKind;

    fn op(id: u64, container: u64, kind: OpKind) -> OpSpec {
        OpSpec {
            id,
            container,
            kind,
            intended_us: id * 10,
            deadline: None,
        }
    }

    #[test]
    fn same_key_same_payload_replays_and_different_payload_is_refused() {
        let mut k = Keys::new(10);
        let first = op(1, 4, OpKind::Start);
        assert_eq!(k.claim(&first), Claim::Fresh);
        // In flight: the same request again is a conflict, another under its key a mismatch.
        let mut again = first;
        again.intended_us += 5;
        assert_eq!(k.claim(&again), Claim::Refused(KeyReuse::InFlight));
        assert_eq!(
            k.claim(&op(1, 5, OpKind::Start)),
            Claim::Refused(KeyReuse::Mismatch)
        );
        assert_eq!(
            k.claim(&op(1, 4, OpKind::Stop)),
            Claim::Refused(KeyReuse::Mismatch)
        );
        k.answered(1, Answer::Accepted);
        // Answered: the stored answer, whatever the intended time; a second answer is ignored.
        k.answered(1, Answer::Timeout);
        assert_eq!(k.claim(&again), Claim::Replay(Answer::Accepted));
        assert_eq!(
            k.claim(&op(1, 5, OpKind::Start)),
            Claim::Refused(KeyReuse::Mismatch)
        );
        assert_eq!(KeyReuse::InFlight.http_status(), 409);
        assert_eq!(KeyReuse::Mismatch.http_status(), 422);
        assert!(KeyReuse::InFlight.retryable() && !KeyReuse::Mismatch.retryable());
    }

    #[test]
    fn a_released_key_is_new_again_and_answers_are_kept_within_the_bound() {
        let mut k = Keys::new(2);
        assert_eq!(k.claim(&op(7, 1, OpKind::Start)), Claim::Fresh);
        k.release(7);
        assert!(k.is_empty());
        assert_eq!(k.claim(&op(7, 2, OpKind::Stop)), Claim::Fresh);
        for id in 1..=3 {
            assert_eq!(k.claim(&op(id, 0, OpKind::Start)), Claim::Fresh);
            k.answered(id, Answer::Done);
        }
        // 1 was forgotten (the bound is 2 answered keys); 7 is in flight and kept.
        assert_eq!(k.len(), 3);
        assert_eq!(k.claim(&op(1, 0, OpKind::Start)), Claim::Fresh);
        assert_eq!(
            k.claim(&op(7, 2, OpKind::Stop)),
            Claim::Refused(KeyReuse::InFlight)
        );
        // Releasing an answered key keeps its answer.
        k.release(3);
        assert_eq!(
            k.claim(&op(3, 0, OpKind::Start)),
            Claim::Replay(Answer::Done)
        );
    }
}
