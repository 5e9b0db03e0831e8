//! The scenario's input errors. Every one names the file (`origin`) and, where there is one, the
//! dotted key, and says what was expected; the CLI exits with status 2 on any of them.

/// An input error in a scenario file or in a `--set` override.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The scenario file (or a file it names) could not be read.
    #[error("{origin}: cannot read `{path}`: {message}")]
    Read {
        /// The scenario file, as named in messages.
        origin: String,
        /// The file that could not be read.
        path: String,
        /// Why.
        message: String,
    },
    /// The file is not valid TOML.
    #[error("{origin}:{line}:{column}: invalid TOML: {message}")]
    Syntax {
        /// The scenario file, as named in messages.
        origin: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (in characters) of the error.
        column: usize,
        /// The TOML parser's message.
        message: String,
    },
    /// A key that the schema does not have (typically a typo).
    #[error("{origin}: unknown key `{key}` (expected one of: {expected})")]
    UnknownKey {
        /// The scenario file, as named in messages.
        origin: String,
        /// The dotted path of the unknown key (e.g. `cluster.pool_wrokers`).
        key: String,
        /// The keys that are allowed at that place, comma-separated.
        expected: String,
    },
    /// A key whose value is missing, of the wrong type, out of range or inconsistent.
    #[error("{origin}: key `{key}`: {message}")]
    Invalid {
        /// The scenario file, as named in messages.
        origin: String,
        /// The dotted path of the key (e.g. `faults[0].node`).
        key: String,
        /// What was expected and what was found.
        message: String,
    },
    /// A valid value whose feature the simulator does not implement yet
    /// (see [`check_supported`](super::check_supported)).
    #[error("{origin}: key `{key}`: {message}")]
    NotBuilt {
        /// The scenario file, as named in messages.
        origin: String,
        /// The dotted path of the key.
        key: String,
        /// What is not built yet, and what to write instead.
        message: String,
    },
    /// A malformed `--set KEY=VALUE` override.
    #[error("{origin}: --set `{set}`: {message}")]
    Set {
        /// The scenario file, as named in messages.
        origin: String,
        /// The override as given on the command line.
        set: String,
        /// What is wrong with it.
        message: String,
    },
}

impl ScenarioError {
    /// The dotted key the error is about, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            ScenarioError::UnknownKey { key, .. }
            | ScenarioError::Invalid { key, .. }
            | ScenarioError::NotBuilt { key, .. } => Some(key),
            _ => None,
        }
    }
}
