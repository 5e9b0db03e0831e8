//! The API's HTTP face (`conductor api --http ADDR`): Zun's container API ([`crate::zun`]) in
//! front of the API's own binary protocol. Each HTTP request becomes one op sent to the API on a
//! loopback connection of this process, and its answer becomes the HTTP answer: 202 with the
//! container for an async op, 204 for a delete, 200 for a blocking op (answered inline), 409
//! with Zun's message when the state forbids the op, 422/409 for a reused idempotency key, 503,
//! 504. The `Idempotency-Key` header carries the op id; the API's key table
//! (`conductor::idempotency`) gives a reused key its stored answer.
//!
//! Bounds: keep-alive HTTP/1.1; at most `--max-connections` connections (one more is answered
//! 503 and closed); request bodies of at most [`MAX_BODY`]; a request's head must arrive within
//! `--frame-deadline`.

use crate::zun;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use conductor::net::{Link, Net};
use conductor::op::OpKind;
use conductor::proto::{Answer, Msg, OpSpec};
use conductor::rpc::lock;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};

/// The largest request body accepted (a create's JSON is far smaller).
pub const MAX_BODY: usize = 64 * 1024;

/// Ids of ops whose request carried no `Idempotency-Key` start here, above any client's.
const GATEWAY_IDS: u64 = 1 << 62;

/// Ids of containers created under a name of the client's own start here.
const NAMED_IDS: u64 = 1 << 40;

struct Gateway {
    /// The API's binary listener, on this process.
    api: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    /// The connection to the API and its generation (how many were dialled).
    link: Option<(Link, u64)>,
    generation: u64,
    /// Requests waiting for the API's answer, by op id, with the generation of the link they
    /// went on (one per id: a second request with an id in flight is refused here, as the API
    /// would).
    waiting: HashMap<u64, (u64, oneshot::Sender<Answer>)>,
    next_id: u64,
    /// Containers created under a name that is not a default name, and their ids.
    names: BTreeMap<String, u64>,
    next_container: u64,
}

/// Serves Zun's API on `listener`, sending each op to the API at `api`, until the task is
/// dropped.
pub async fn serve(listener: TcpListener, api: SocketAddr, limits: conductor::net::Limits) {
    let gw = Arc::new(Gateway {
        api,
        inner: Arc::new(Mutex::new(Inner {
            next_id: GATEWAY_IDS,
            next_container: NAMED_IDS,
            ..Inner::default()
        })),
    });
    let app = Router::new()
        .route("/v1/containers", post(create))
        .route("/v1/containers/{id}", get(show).delete(delete))
        .route("/v1/containers/{id}/logs", get(logs))
        .route("/v1/containers/{id}/{action}", post(act))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(gw);
    let slots = Arc::new(Semaphore::new(limits.max_connections as usize));
    let mut backoff = Duration::from_millis(5);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => {
                backoff = Duration::from_millis(5);
                c
            }
            Err(e) => {
                conductor::net::warn(format_args!("http: accept failed: {e}"));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let permit = slots.clone().try_acquire_owned();
        let svc = hyper_util::service::TowerToHyperService::new(app.clone());
        let deadline = limits.frame_deadline;
        tokio::spawn(async move {
            let io = TokioIo::new(stream);
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(deadline)
                .keep_alive(true);
            match permit {
                Ok(_permit) => {
                    let _ = http.serve_connection(io, svc).await;
                }
                Err(_) => {
                    conductor::net::warn(format_args!(
                        "http: refused {peer}: too many connections (limit {})",
                        limits.max_connections
                    ));
                    let refuse = hyper::service::service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(too_many())
                    });
                    http.keep_alive(false);
                    let _ = http.serve_connection(io, refuse).await;
                }
            }
        });
    }
}

/// The answer on a connection over the limit.
fn too_many() -> Response {
    error(503, "Service Unavailable", "too many connections")
}

fn error(status: u16, title: &str, detail: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, Json(zun::error_json(status, title, detail))).into_response()
}

async fn not_found() -> Response {
    error(404, "Not Found", "no such route")
}

/// `POST /v1/containers`: `{"name": …}` (optional) names the container.
async fn create(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> Response {
    let name = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(v) if v.is_object() => match v.get("name") {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(s)) if !s.is_empty() && s.len() <= 255 => {
                    Some(s.clone())
                }
                Some(_) => {
                    return error(
                        400,
                        "Bad Request",
                        "`name` must be a string of 1 to 255 characters",
                    )
                }
            },
            _ => return error(400, "Bad Request", "the body must be a JSON object"),
        }
    };
    let (container, name) = {
        let mut g = lock(&gw.inner);
        match name {
            None => {
                g.next_container += 1;
                let id = g.next_container;
                (id, zun::default_name(id))
            }
            Some(n) => match zun::parse_default_name(&n) {
                Some(id) => (id, n),
                None => match g.names.get(&n) {
                    Some(&id) => (id, n),
                    None => {
                        g.next_container += 1;
                        let id = g.next_container;
                        g.names.insert(n.clone(), id);
                        (id, n)
                    }
                },
            },
        }
    };
    gw.op(&headers, OpKind::Create, container, &name).await
}

async fn show(gw: State<Arc<Gateway>>, Path(id): Path<String>, h: HeaderMap) -> Response {
    gw.on(&h, OpKind::Show, &id).await
}

async fn delete(gw: State<Arc<Gateway>>, Path(id): Path<String>, h: HeaderMap) -> Response {
    gw.on(&h, OpKind::Delete, &id).await
}

async fn logs(gw: State<Arc<Gateway>>, Path(id): Path<String>, h: HeaderMap) -> Response {
    gw.on(&h, OpKind::Logs, &id).await
}

async fn act(
    gw: State<Arc<Gateway>>,
    Path((id, action)): Path<(String, String)>,
    h: HeaderMap,
) -> Response {
    match zun::action(&action) {
        Some(kind) => gw.on(&h, kind, &id).await,
        None => error(404, "Not Found", &format!("no action `{action}`")),
    }
}

impl Gateway {
    /// The op `kind` on the container addressed as `id` (its UUID or its name).
    async fn on(&self, headers: &HeaderMap, kind: OpKind, id: &str) -> Response {
        let container = zun::parse_uuid(id)
            .or_else(|| zun::parse_default_name(id))
            .or_else(|| lock(&self.inner).names.get(id).copied());
        match container {
            Some(c) => self.op(headers, kind, c, id).await,
            None => error(
                404,
                "Not Found",
                &format!("Container {id} could not be found."),
            ),
        }
    }

    /// Sends the op to the API and answers with its answer.
    async fn op(&self, headers: &HeaderMap, kind: OpKind, container: u64, name: &str) -> Response {
        let id = match headers.get(zun::IDEMPOTENCY_KEY) {
            None => {
                let mut g = lock(&self.inner);
                g.next_id += 1;
                g.next_id
            }
            Some(v) => match v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()) {
                Some(id) => id,
                None => {
                    return error(
                        400,
                        "Bad Request",
                        "Idempotency-Key must be an op id: a decimal integer below 2^64",
                    )
                }
            },
        };
        let intended_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let op = OpSpec {
            id,
            container,
            kind,
            intended_us,
            // HTTP requests carry no deadline (no header maps to one yet): they run whenever
            // their turn comes, as with `client.cancel = "none"`.
            deadline: None,
        };
        let answer = match self.ask(op).await {
            Some(a) => a,
            None => {
                return error(
                    503,
                    "Service Unavailable",
                    "the API's own listener could not be reached",
                )
            }
        };
        let (status, err) = zun::answer_status(kind, name, answer);
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match err {
            Some(body) => (code, Json(body)).into_response(),
            None if status == 204 => code.into_response(),
            None => {
                let body = match kind {
                    OpKind::Logs => serde_json::json!({ "logs": "" }),
                    OpKind::Exec => serde_json::json!({ "output": "", "exit_code": 0 }),
                    OpKind::Create => {
                        zun::container_json(container, name, Some(conductor::op::Status::Creating))
                    }
                    _ => zun::container_json(container, name, None),
                };
                (code, Json(body)).into_response()
            }
        }
    }

    /// The API's answer to `op`; `None` when the API cannot be reached.
    async fn ask(&self, op: OpSpec) -> Option<Answer> {
        if lock(&self.inner).waiting.contains_key(&op.id) {
            return Some(Answer::Refused(conductor::idempotency::KeyReuse::InFlight));
        }
        let (link, generation) = self.link().await?;
        let (tx, rx) = oneshot::channel();
        {
            let mut g = lock(&self.inner);
            if g.waiting.contains_key(&op.id) {
                return Some(Answer::Refused(conductor::idempotency::KeyReuse::InFlight));
            }
            g.waiting.insert(op.id, (generation, tx));
        }
        if !link.send(Msg::Request(op)) {
            lock(&self.inner).waiting.remove(&op.id);
            return None;
        }
        // The sender is dropped when the connection to the API is lost.
        rx.await.ok()
    }

    /// The connection to the API and its generation, dialled again when it is gone; its
    /// reader hands answers to the requests waiting for them, and fails those sent on it when
    /// it ends.
    async fn link(&self) -> Option<(Link, u64)> {
        if let Some(l) = &lock(&self.inner).link {
            if !l.0.is_closed() {
                return Some(l.clone());
            }
        }
        let (link, mut reader) = Net::Tcp.connect(self.api.ip(), self.api).await.ok()?;
        let mut g = lock(&self.inner);
        // Another request may have dialled meanwhile: keep the first link.
        if let Some(l) = &g.link {
            if !l.0.is_closed() {
                return Some(l.clone());
            }
        }
        g.generation += 1;
        let generation = g.generation;
        g.link = Some((link.clone(), generation));
        drop(g);
        let inner = self.inner.clone();
        tokio::spawn(async move {
            while let Ok(Some(msg)) = reader.next().await {
                if let Msg::Answer { id, answer } = msg {
                    if let Some((_, tx)) = lock(&inner).waiting.remove(&id) {
                        let _ = tx.send(answer);
                    }
                }
            }
            // Lost: every request sent on this link fails (its sender dropped).
            lock(&inner).waiting.retain(|_, (g, _)| *g != generation);
        });
        Some((link, generation))
    }
}
