//! Closed sets of names: the configuration vocabulary (ordering, routing, overflow, RPC kind,
//! backoff, recovery…) is defined once, as keyword enums, and used as it is by the scenario
//! parser, the real binary's flags (clap) and the reports (serde). No parallel enums, no
//! translation between them.

/// A keyword-valued enum: its values and their names in scenario files, on the command line
/// and in reports.
pub trait Keyword: Copy + Sized + 'static {
    /// What the key is, for messages (e.g. "an overflow policy").
    const WHAT: &'static str;
    /// Every value, in the order documentation lists them.
    const ALL: &'static [Self];
    /// The value's name as written in scenario files and on the command line.
    fn name(self) -> &'static str;
    /// The value named `s`, if any.
    fn from_name(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.name() == s)
    }
}

/// Defines a keyword enum: the enum itself with serde (its name as a string), clap
/// (`ValueEnum`, so it can be a flag's value), [`Display`](std::fmt::Display) and [`Keyword`].
///
/// ```ignore
/// keyword_enum! {
///     /// `cluster.overflow`: …
///     pub enum Overflow, "an overflow policy" {
///         /// The RPC slot runs the op itself.
///         CallerRuns = "caller-runs",
///         …
///     }
/// }
/// ```
#[macro_export]
macro_rules! keyword_enum {
    ($(#[$m:meta])* pub enum $name:ident, $what:literal {
        $($(#[$vm:meta])* $var:ident = $s:literal),+ $(,)?
    }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vm])* $var),+
        }
        impl $crate::keyword::Keyword for $name {
            const WHAT: &'static str = $what;
            const ALL: &'static [$name] = &[$($name::$var),+];
            fn name(self) -> &'static str {
                match self { $($name::$var => $s),+ }
            }
        }
        impl $name {
            /// The value's name as written in scenario files and on the command line.
            pub fn name(self) -> &'static str {
                <Self as $crate::keyword::Keyword>::name(self)
            }
        }
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.name())
            }
        }
        impl $crate::keyword::__serde::Serialize for $name {
            fn serialize<S: $crate::keyword::__serde::Serializer>(
                &self,
                s: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                // As serde's derive does for a unit variant: a string in JSON and TOML, the
                // variant's index in bincode.
                let index = <Self as $crate::keyword::Keyword>::ALL
                    .iter()
                    .position(|k| k == self)
                    .unwrap_or(0) as u32;
                s.serialize_unit_variant(stringify!($name), index, self.name())
            }
        }
        impl<'de> $crate::keyword::__serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::keyword::__serde::Deserializer<'de>>(
                d: D,
            ) -> ::std::result::Result<Self, D::Error> {
                $crate::keyword::deserialize_keyword(d, stringify!($name))
            }
        }
        impl $crate::keyword::__clap::ValueEnum for $name {
            fn value_variants<'a>() -> &'a [Self] {
                <Self as $crate::keyword::Keyword>::ALL
            }
            fn to_possible_value(&self) -> Option<$crate::keyword::__clap::builder::PossibleValue> {
                Some($crate::keyword::__clap::builder::PossibleValue::new(self.name()))
            }
        }
    };
}

#[doc(hidden)]
pub use clap as __clap;
#[doc(hidden)]
pub use serde as __serde;

/// Deserialises a keyword enum the way serde's derive does a unit-variant enum: from its name
/// (JSON, TOML) or from its index (bincode).
#[doc(hidden)]
pub fn deserialize_keyword<'de, K: Keyword, D: serde::Deserializer<'de>>(
    d: D,
    enum_name: &'static str,
) -> Result<K, D::Error> {
    use serde::de::{self, EnumAccess, VariantAccess};
    use std::marker::PhantomData;

    struct Variant<K>(PhantomData<K>);
    impl<'de, K: Keyword> de::DeserializeSeed<'de> for Variant<K> {
        type Value = K;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<K, D::Error> {
            d.deserialize_identifier(Ident(PhantomData))
        }
    }
    struct Ident<K>(PhantomData<K>);
    impl<K: Keyword> de::Visitor<'_> for Ident<K> {
        type Value = K;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "{}", K::WHAT)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<K, E> {
            usize::try_from(v)
                .ok()
                .and_then(|i| K::ALL.get(i).copied())
                .ok_or_else(|| E::custom(format!("no {} has index {v}", K::WHAT)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<K, E> {
            K::from_name(v).ok_or_else(|| {
                let names: Vec<&str> = K::ALL.iter().map(|k| k.name()).collect();
                E::custom(format!(
                    "expected {} ({}), got `{v}`",
                    K::WHAT,
                    names.join(" | ")
                ))
            })
        }
    }
    struct Enum<K>(PhantomData<K>);
    impl<'de, K: Keyword> de::Visitor<'de> for Enum<K> {
        type Value = K;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "{}", K::WHAT)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<K, E> {
            Ident(PhantomData).visit_str(v)
        }
        fn visit_enum<A: EnumAccess<'de>>(self, a: A) -> Result<K, A::Error> {
            let (k, rest) = a.variant_seed(Variant(PhantomData))?;
            rest.unit_variant()?;
            Ok(k)
        }
    }
    let names: &'static [&'static str] = &[];
    d.deserialize_enum(enum_name, names, Enum(PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::keyword_enum! {
        /// A test vocabulary.
        pub enum Colour, "a colour" {
            /// Red.
            Red = "red",
            /// Dark blue.
            DarkBlue = "dark-blue",
        }
    }

    #[test]
    fn names_serde_and_bincode_round_trip() {
        assert_eq!(Colour::DarkBlue.to_string(), "dark-blue");
        assert_eq!(Colour::from_name("red"), Some(Colour::Red));
        assert_eq!(Colour::from_name("blue"), None);
        let j = serde_json::to_string(&Colour::DarkBlue).unwrap();
        assert_eq!(j, "\"dark-blue\"");
        assert_eq!(
            serde_json::from_str::<Colour>(&j).unwrap(),
            Colour::DarkBlue
        );
        let e = serde_json::from_str::<Colour>("\"blue\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected a colour (red | dark-blue)"), "{e}");
        let b = bincode::serialize(&Colour::DarkBlue).unwrap();
        assert_eq!(b, 1u32.to_le_bytes());
        assert_eq!(
            bincode::deserialize::<Colour>(&b).unwrap(),
            Colour::DarkBlue
        );
    }

    #[test]
    fn clap_values() {
        use clap::ValueEnum;
        assert_eq!(Colour::from_str("dark-blue", false), Ok(Colour::DarkBlue));
        let names: Vec<String> = Colour::value_variants()
            .iter()
            .map(|v| v.to_possible_value().unwrap().get_name().to_string())
            .collect();
        assert_eq!(names, ["red", "dark-blue"]);
    }
}
