//! Building each op's HTTP request from `[target]`: its route (the scenario's, else Zun's),
//! the placeholders filled in (`{name}`, `{uuid}`, `{container}`, `{op_id}`), the headers, and
//! the op id as the `Idempotency-Key`.

use crate::zun;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request};
use scenario::{OpKind, Target};

/// Everything a request needs but its op: the target's address and routes, and the headers
/// resolved (environment variables read once, at the start).
pub struct Requests {
    authority: String,
    base_path: String,
    routes: Vec<(Method, String, String)>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Requests {
    /// The requests of `target` to `authority` (`HOST:PORT`); an environment variable that is
    /// unset, or a header that HTTP refuses, is an error naming it.
    pub fn new(authority: &str, target: &Target) -> Result<Requests, String> {
        let routes = OpKind::ALL
            .iter()
            .map(|&op| match target.route(op) {
                Some(r) => (
                    Method::from_bytes(r.method.name().as_bytes()).unwrap_or(Method::POST),
                    r.path.clone(),
                    r.body.clone(),
                ),
                None => (
                    Method::from_bytes(zun::method(op).as_bytes()).unwrap_or(Method::POST),
                    zun::path_template(op).to_string(),
                    zun::body_template(op).to_string(),
                ),
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
        Ok(Requests {
            authority: authority.to_string(),
            base_path: target.base_path.clone(),
            routes,
            headers,
        })
    }

    /// The HTTP request of op `op_id`, of `kind`, on container `container`.
    pub fn build(&self, kind: OpKind, container: u64, op_id: u64) -> Request<Full<Bytes>> {
        let (method, path, body) = &self.routes[kind.index()];
        let fill = |t: &str| {
            t.replace("{name}", &zun::default_name(container))
                .replace("{uuid}", &zun::uuid(container))
                .replace("{container}", &container.to_string())
                .replace("{op_id}", &op_id.to_string())
        };
        let uri = format!("{}{}", self.base_path, fill(path));
        let body = fill(body);
        let mut b = Request::builder()
            .method(method.clone())
            .uri(uri)
            .header(hyper::header::HOST, &self.authority)
            .header(zun::IDEMPOTENCY_KEY, op_id);
        if !body.is_empty() {
            b = b.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        for (n, v) in &self.headers {
            b = b.header(n, v);
        }
        // Every part was validated (paths by the scenario's parser, headers above).
        b.body(Full::new(Bytes::from(body))).unwrap_or_else(|_| {
            Request::new(Full::new(Bytes::new()))
        })
    }
}
