//! Building each op's HTTP request from `[target]`: its route (the scenario's, else Zun's),
//! the placeholders filled in (`{name}`, `{uuid}`, `{container}`, `{op_id}`), the headers, and
//! the op id as the `Idempotency-Key`. Everything that does not depend on the op — the
//! templates split at their placeholders, the header names and values, a body without
//! placeholders — is prepared once, so that a request costs one path string and, for a body
//! that names its container, one body: the sender builds one per send, thousands a second.

use crate::zun;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request};
use scenario::{OpKind, Target};
use std::fmt::Write;

/// What a placeholder of a template stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hole {
    /// `{name}`: the container's default name (`c-ID`).
    Name,
    /// `{uuid}`: the container's UUID.
    Uuid,
    /// `{container}`: the container's id.
    Container,
    /// `{op_id}`: the op's id.
    OpId,
}

impl Hole {
    /// Every placeholder with its spelling.
    const ALL: [(&'static str, Hole); 4] = [
        ("{name}", Hole::Name),
        ("{uuid}", Hole::Uuid),
        ("{container}", Hole::Container),
        ("{op_id}", Hole::OpId),
    ];
}

/// A path or body template split at its placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Template {
    /// Literal text, then a placeholder, in order (the last part's hole is `None`).
    parts: Vec<(String, Option<Hole>)>,
}

impl Template {
    /// `src` split at every placeholder (text that only looks like one stays literal).
    fn parse(src: &str) -> Template {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = src;
        while !rest.is_empty() {
            match Hole::ALL.iter().find(|(p, _)| rest.starts_with(p)) {
                Some(&(p, hole)) => {
                    parts.push((std::mem::take(&mut lit), Some(hole)));
                    rest = &rest[p.len()..];
                }
                None => {
                    let c = rest.chars().next().unwrap_or_default();
                    lit.push(c);
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
        parts.push((lit, None));
        Template { parts }
    }

    /// `path` under the literal `base` (a base path is not a template).
    fn under(base: &str, path: &str) -> Template {
        let mut t = Template::parse(path);
        t.parts[0].0.insert_str(0, base);
        t
    }

    /// Whether the template has no placeholder.
    fn is_literal(&self) -> bool {
        self.parts.iter().all(|(_, h)| h.is_none())
    }

    /// Appends the template filled for `container` and `op_id` to `out`.
    fn fill(&self, out: &mut String, container: u64, op_id: u64) {
        for (lit, hole) in &self.parts {
            out.push_str(lit);
            // Writing to a String cannot fail.
            let _ = match hole {
                None => Ok(()),
                Some(Hole::Name) => write!(out, "{}{container}", zun::NAME_PREFIX),
                Some(Hole::Uuid) => {
                    out.push_str(&zun::uuid(container));
                    Ok(())
                }
                Some(Hole::Container) => write!(out, "{container}"),
                Some(Hole::OpId) => write!(out, "{op_id}"),
            };
        }
    }
}

/// One op's route, prepared.
struct Route {
    method: Method,
    /// The base path and the route's path.
    path: Template,
    body: Template,
    /// The body, when it has no placeholder (shared by every request).
    fixed_body: Option<Bytes>,
}

/// Everything a request needs but its op: the target's address and routes, and the headers
/// resolved (environment variables read once, at the start).
pub struct Requests {
    authority: HeaderValue,
    routes: Vec<Route>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// The `Idempotency-Key` header's name.
static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static(zun::IDEMPOTENCY_KEY);

impl Requests {
    /// The requests of `target` to `authority` (`HOST:PORT`); an environment variable that is
    /// unset, or a header that HTTP refuses, is an error naming it.
    pub fn new(authority: &str, target: &Target) -> Result<Requests, String> {
        let routes = OpKind::ALL
            .iter()
            .map(|&op| {
                let (method, path, body) = match target.route(op) {
                    Some(r) => (r.method.name(), r.path.as_str(), r.body.as_str()),
                    None => (zun::method(op), zun::path_template(op), zun::body_template(op)),
                };
                let body = Template::parse(body);
                Route {
                    method: Method::from_bytes(method.as_bytes()).unwrap_or(Method::POST),
                    path: Template::under(&target.base_path, path),
                    fixed_body: body
                        .is_literal()
                        .then(|| Bytes::from(body.parts[0].0.clone())),
                    body,
                }
            })
            .collect();
        let mut headers = Vec::new();
        let mut add = |name: &str, value: &str, what: &str| -> Result<(), String> {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| format!("target.{what}.{name}: not a header name ({e})"))?;
            let v = HeaderValue::from_str(value)
                .map_err(|e| format!("target.{what}.{name}: not a header value ({e})"))?;
            headers.push((n, v));
            Ok(())
        };
        for (name, value) in &target.headers {
            add(name, value, "headers")?;
        }
        for (name, var) in &target.env_headers {
            let value = std::env::var(var).map_err(|_| {
                format!("target.env_headers.{name}: the environment variable `{var}` is not set")
            })?;
            add(name, &value, "env_headers")?;
        }
        let authority = HeaderValue::from_str(authority)
            .map_err(|e| format!("--target: `{authority}` is not a host header ({e})"))?;
        Ok(Requests {
            authority,
            routes,
            headers,
        })
    }

    /// The HTTP request of op `op_id`, of `kind`, on container `container`.
    pub fn build(&self, kind: OpKind, container: u64, op_id: u64) -> Request<Full<Bytes>> {
        let r = &self.routes[kind.index()];
        let mut uri = String::with_capacity(64);
        r.path.fill(&mut uri, container, op_id);
        let body = match &r.fixed_body {
            Some(b) => b.clone(),
            None => {
                let mut s = String::with_capacity(64);
                r.body.fill(&mut s, container, op_id);
                Bytes::from(s)
            }
        };
        let mut b = Request::builder()
            .method(r.method.clone())
            .uri(uri)
            .header(hyper::header::HOST, self.authority.clone())
            .header(&IDEMPOTENCY_KEY, HeaderValue::from(op_id));
        if !body.is_empty() {
            b = b.header(
                hyper::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        for (n, v) in &self.headers {
            b = b.header(n, v);
        }
        // Every part was validated (paths by the scenario's parser, headers above).
        b.body(Full::new(body))
            .unwrap_or_else(|_| Request::new(Full::new(Bytes::new())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_every_placeholder_and_keep_the_rest() {
        let t = Template::parse("/x/{name}/{uuid}?c={container}&op={op_id}&{other}é");
        let mut s = String::new();
        t.fill(&mut s, 17, 99);
        assert_eq!(
            s,
            format!("/x/c-17/{}?c=17&op=99&{{other}}é", zun::uuid(17))
        );
        assert!(Template::parse("{}").is_literal());
        assert!(!t.is_literal());
    }

    #[test]
    fn a_request_carries_its_route_headers_and_key() {
        let target = Target {
            base_path: "/container".into(),
            headers: [("X-A".to_string(), "b".to_string())].into(),
            ..Target::default()
        };
        let r = Requests::new("127.0.0.1:9", &target).expect("valid");
        let req = r.build(OpKind::Create, 3, 42);
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.uri(), "/container/v1/containers");
        assert_eq!(req.headers()["host"], "127.0.0.1:9");
        assert_eq!(req.headers()["idempotency-key"], "42");
        assert_eq!(req.headers()["x-a"], "b");
        assert_eq!(req.headers()["content-type"], "application/json");
        let body = r.routes[OpKind::Create.index()].body.clone();
        let mut s = String::new();
        body.fill(&mut s, 3, 42);
        assert_eq!(s, r#"{"name": "c-3", "image": "cirros"}"#);
        let show = r.build(OpKind::Show, 3, 43);
        assert_eq!((show.method(), show.uri().path()), (&Method::GET, "/container/v1/containers/c-3"));
        assert!(show.headers().get("content-type").is_none());
    }
}
