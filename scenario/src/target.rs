//! `[target]`: how `conductor load` speaks to a live HTTP target — the base path, the route of
//! each op (method, path and body templates), headers (literal or read from the environment),
//! the connection pool, the in-flight limit, when a late send counts as behind schedule, and
//! the setup and teardown phases. The simulator ignores the section; absent, the target is Zun's
//! container API as the reference deployment serves it (`conductor api --http`).

use conductor::op::OpKind;
use std::collections::BTreeMap;
use std::time::Duration;

conductor::keyword_enum! {
    /// An HTTP method of a `[[target.routes]]` entry.
    pub enum Method, "an HTTP method" {
        /// GET.
        Get = "GET",
        /// POST.
        Post = "POST",
        /// PUT.
        Put = "PUT",
        /// PATCH.
        Patch = "PATCH",
        /// DELETE.
        Delete = "DELETE",
    }
}

/// One op's route, replacing the default (Zun's) for that op.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Route {
    /// The op it carries.
    #[serde(serialize_with = "op_name")]
    pub op: OpKind,
    /// The HTTP method.
    pub method: Method,
    /// The path under `base_path`; `{name}`, `{uuid}`, `{container}` and `{op_id}` are
    /// replaced.
    pub path: String,
    /// The request body (JSON, the same placeholders); empty: none.
    pub body: String,
}

/// `[target]`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Target {
    /// Prefixed to every route's path (e.g. `/container` behind a gateway).
    pub base_path: String,
    /// Routes replacing Zun's, by op.
    pub routes: Vec<Route>,
    /// Headers sent with every request, by name.
    pub headers: BTreeMap<String, String>,
    /// Headers whose value is read from an environment variable when the run starts, by
    /// header name → variable name (an auth token: `X-Auth-Token = "OS_TOKEN"`).
    pub env_headers: BTreeMap<String, String>,
    /// The HTTP connection pool: connections open at once, at most.
    pub connections: u32,
    /// Requests in flight at once, at most; a send beyond waits (and is counted).
    pub max_in_flight: u32,
    /// A send later than this after its intended time counts as behind schedule.
    #[serde(with = "crate::ser::dur")]
    pub late_after: Duration,
    /// Create the `ops` model's pre-existing containers before the load.
    pub setup: bool,
    /// Delete the containers the run made (setup's and the lifecycle's) after the drain.
    pub teardown: bool,
}

impl Default for Target {
    fn default() -> Self {
        Target {
            base_path: String::new(),
            routes: Vec::new(),
            headers: BTreeMap::new(),
            env_headers: BTreeMap::new(),
            connections: 64,
            max_in_flight: 10_000,
            late_after: Duration::from_millis(10),
            setup: false,
            teardown: false,
        }
    }
}

impl Target {
    /// Every key at its default (the section is then left out of the echoed scenario).
    pub fn is_default(&self) -> bool {
        *self == Target::default()
    }

    /// The route given for `op`, if any (the last one listed wins).
    pub fn route(&self, op: OpKind) -> Option<&Route> {
        self.routes.iter().rev().find(|r| r.op == op)
    }
}

/// An op as its scenario name.
fn op_name<S: serde::Serializer>(op: &OpKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(op.name())
}
