//! Sets of invariants (the ones judged), and reading them from names.

use crate::Invariant;
use std::fmt;

/// A name that is not an invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownInvariant(pub String);

impl fmt::Display for UnknownInvariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Invariant::ALL.iter().map(|i| i.name()).collect();
        write!(
            f,
            "unknown invariant `{}` (expected one of: {})",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownInvariant {}

/// A set of invariants (the ones judged).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InvariantSet(u16);

// One bit per invariant.
const _: () = assert!(Invariant::COUNT <= 16);

impl InvariantSet {
    /// The set of the invariants whose bits are set in `bits`.
    pub(crate) const fn of(bits: u16) -> Self {
        InvariantSet(bits)
    }

    /// Every invariant.
    pub fn all() -> Self {
        Invariant::ALL.into_iter().collect()
    }

    /// The invariants named in `names` (`"all"` stands for every one).
    ///
    /// # Errors
    /// [`UnknownInvariant`] for the first name that is neither an invariant nor `"all"`.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<Self, UnknownInvariant> {
        let mut set = InvariantSet::default();
        for n in names {
            let n = n.as_ref();
            if n == "all" {
                return Ok(InvariantSet::all());
            }
            set.0 |= bit(Invariant::from_name(n).ok_or_else(|| UnknownInvariant(n.to_string()))?);
        }
        Ok(set)
    }

    /// Whether `i` is in the set.
    #[inline(always)]
    pub fn contains(self, i: Invariant) -> bool {
        self.0 & bit(i) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The invariants in both sets.
    pub fn and(self, other: InvariantSet) -> InvariantSet {
        InvariantSet(self.0 & other.0)
    }

    /// The invariants in `self` and not in `other`.
    pub fn without(self, other: InvariantSet) -> InvariantSet {
        InvariantSet(self.0 & !other.0)
    }

    /// The invariants in the set, in table order.
    pub fn iter(self) -> impl Iterator<Item = Invariant> {
        Invariant::ALL
            .into_iter()
            .filter(move |i| self.contains(*i))
    }
}

#[inline(always)]
fn bit(i: Invariant) -> u16 {
    1 << i as u16
}

impl FromIterator<Invariant> for InvariantSet {
    fn from_iter<T: IntoIterator<Item = Invariant>>(iter: T) -> Self {
        InvariantSet(iter.into_iter().fold(0, |s, i| s | bit(i)))
    }
}
