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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(target: &str) -> Result<Target, String> {
        let src = format!("name = \"t\"\n[target]\n{target}\n");
        crate::parse_str(&src, "t.toml", &[], None)
            .map(|s| s.target)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn absent_is_zuns_api_with_the_defaults() {
        let t = parse("").expect("valid");
        assert!(t.is_default());
        assert_eq!(t.route(OpKind::Start), None);
    }

    #[test]
    fn every_key_is_read() {
        let t = parse(
            "base_path = \"/container\"\nconnections = 8\nmax_in_flight = 100\nlate_after = \"5ms\"\n\
             setup = true\nteardown = true\nheaders = { \"OpenStack-API-Version\" = \"container 1.29\" }\n\
             env_headers = { \"X-Auth-Token\" = \"OS_TOKEN\" }\n\
             [[target.routes]]\nop = \"exec\"\nmethod = \"PUT\"\npath = \"/x/{uuid}\"\nbody = \"{}\"\n",
        )
        .expect("valid");
        assert_eq!(t.base_path, "/container");
        assert_eq!((t.connections, t.max_in_flight), (8, 100));
        assert_eq!(t.late_after, Duration::from_millis(5));
        assert!(t.setup && t.teardown);
        assert_eq!(t.headers["OpenStack-API-Version"], "container 1.29");
        assert_eq!(t.env_headers["X-Auth-Token"], "OS_TOKEN");
        let r = t.route(OpKind::Exec).expect("a route");
        assert_eq!(
            (r.method, r.path.as_str(), r.body.as_str()),
            (Method::Put, "/x/{uuid}", "{}")
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        for (src, key) in [
            ("base_path = \"container\"", "target.base_path"),
            ("base_path = \"/c/\"", "target.base_path"),
            ("connections = 0", "target.connections"),
            ("late_after = \"0s\"", "target.late_after"),
            (
                "headers = { \"bad header\" = \"x\" }",
                "target.headers.bad header",
            ),
            ("headers = { a = \"line\\nbreak\" }", "target.headers.a"),
            ("env_headers = { a = \"\" }", "target.env_headers.a"),
            (
                "[[target.routes]]\nop = \"dance\"\nmethod = \"GET\"\npath = \"/\"",
                "target.routes[0].op",
            ),
            (
                "[[target.routes]]\nop = \"show\"\nmethod = \"FETCH\"\npath = \"/\"",
                "target.routes[0].method",
            ),
            (
                "[[target.routes]]\nop = \"show\"\nmethod = \"GET\"\npath = \"no slash\"",
                "target.routes[0].path",
            ),
            (
                "[[target.routes]]\nop = \"show\"\nmethod = \"GET\"",
                "target.routes[0].path",
            ),
            (
                "[[target.routes]]\nop = \"show\"\nmethod = \"GET\"\npath = \"/\"\nverb = 1",
                "target.routes[0].verb",
            ),
            ("pool = 3", "target.pool"),
        ] {
            let e = parse(src).expect_err(src);
            assert!(e.contains(key), "{src}: {e}");
        }
    }
}
