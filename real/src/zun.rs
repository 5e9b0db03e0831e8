//! Zun's container API as the reference deployment speaks it over HTTP: the routes of each op,
//! how a container is named and addressed (by UUID or by name), the JSON of a container, the
//! error body, and the HTTP status of each answer. One home for it: the HTTP API
//! (`conductor api --http`) serves it and `conductor load` sends it by default.

use conductor::idempotency::KeyReuse;
use conductor::op::{OpKind, Status};
use conductor::proto::{Answer, Failure};
use serde_json::{json, Value};

/// The prefix of a container's default name: container 17 is `c-17` unless it was created with
/// another name.
pub const NAME_PREFIX: &str = "c-";

/// The HTTP header carrying a request's op id (the IETF httpapi draft's, Stripe's).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The UUID of container `id`: a version-4-shaped UUID whose last 48 bits are the id (ids of
/// the reference deployment fit; a larger one is reduced to them).
pub fn uuid(id: u64) -> String {
    let low = id & 0xffff_ffff_ffff;
    format!("00000000-0000-4000-8000-{low:012x}")
}

/// The container id a UUID made by [`uuid`] stands for.
pub fn parse_uuid(s: &str) -> Option<u64> {
    let hex = s.strip_prefix("00000000-0000-4000-8000-")?;
    if hex.len() != 12 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// The default name of container `id`.
pub fn default_name(id: u64) -> String {
    format!("{NAME_PREFIX}{id}")
}

/// The container id a default name stands for (`c-17` → 17).
pub fn parse_default_name(s: &str) -> Option<u64> {
    let digits = s.strip_prefix(NAME_PREFIX)?;
    if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The HTTP method of an op on Zun's API.
pub fn method(kind: OpKind) -> &'static str {
    match kind {
        OpKind::Delete => "DELETE",
        OpKind::Show | OpKind::Logs => "GET",
        _ => "POST",
    }
}

/// The path of an op on Zun's API, under the base path, `{name}` standing for the container
/// (its UUID or its name).
pub fn path_template(kind: OpKind) -> &'static str {
    match kind {
        OpKind::Create => "/v1/containers",
        OpKind::Start => "/v1/containers/{name}/start",
        OpKind::Stop => "/v1/containers/{name}/stop",
        OpKind::Reboot => "/v1/containers/{name}/reboot",
        OpKind::Pause => "/v1/containers/{name}/pause",
        OpKind::Unpause => "/v1/containers/{name}/unpause",
        OpKind::Kill => "/v1/containers/{name}/kill",
        OpKind::Delete | OpKind::Show => "/v1/containers/{name}",
        OpKind::Logs => "/v1/containers/{name}/logs",
        OpKind::Exec => "/v1/containers/{name}/execute",
    }
}

/// The request body of an op on Zun's API: a create names its container; `execute` carries its
/// command; the others have none.
pub fn body_template(kind: OpKind) -> &'static str {
    match kind {
        OpKind::Create => r#"{"name": "{name}", "image": "cirros"}"#,
        OpKind::Exec => r#"{"command": "true"}"#,
        _ => "",
    }
}

/// The action of `POST /v1/containers/{id}/{action}`.
pub fn action(name: &str) -> Option<OpKind> {
    Some(match name {
        "start" => OpKind::Start,
        "stop" => OpKind::Stop,
        "reboot" => OpKind::Reboot,
        "pause" => OpKind::Pause,
        "unpause" => OpKind::Unpause,
        "kill" => OpKind::Kill,
        "execute" => OpKind::Exec,
        _ => return None,
    })
}

/// Zun's status name of a container record.
pub fn status_name(s: Status) -> &'static str {
    match s {
        Status::Absent => "Absent",
        Status::Creating => "Creating",
        Status::Created => "Created",
        Status::Running => "Running",
        Status::Stopped => "Stopped",
        Status::Paused => "Paused",
        Status::Deleting => "Deleting",
        Status::Deleted => "Deleted",
        Status::Error => "Error",
    }
}

/// The JSON of a container as the API answers it (`status` when the API knows it).
pub fn container_json(id: u64, name: &str, status: Option<Status>) -> Value {
    let mut v = json!({ "uuid": uuid(id), "name": name });
    if let Some(s) = status {
        v["status"] = json!(status_name(s));
    }
    v
}

/// Zun's error body: `{"errors": [{"status", "code", "title", "detail"}]}`.
pub fn error_json(status: u16, title: &str, detail: &str) -> Value {
    json!({ "errors": [{
        "request_id": "",
        "code": "",
        "status": status,
        "title": title,
        "detail": detail,
        "links": [],
    }]})
}

/// The HTTP status of an answer to an op of `kind`, with the error body of a refusal or
/// failure (`None` for a success, whose body is the op's own).
pub fn answer_status(kind: OpKind, name: &str, answer: Answer) -> (u16, Option<Value>) {
    let fail = |status: u16, title: &str, detail: String| {
        (status, Some(error_json(status, title, &detail)))
    };
    match answer {
        Answer::Accepted if kind == OpKind::Delete => (204, None),
        Answer::Accepted => (202, None),
        Answer::Done if kind == OpKind::Delete => (204, None),
        Answer::Done => (200, None),
        Answer::Conflict(s) => fail(
            409,
            "Conflict",
            format!(
                "Cannot {} container {name} in {} state.",
                kind.name(),
                status_name(s)
            ),
        ),
        Answer::Unavailable => fail(
            503,
            "Service Unavailable",
            "the op could not be persisted".into(),
        ),
        Answer::Error(Failure::Unavailable) => fail(
            503,
            "Service Unavailable",
            "a service the op needed was unreachable".into(),
        ),
        Answer::Error(Failure::PoolRejected) => fail(
            503,
            "Service Unavailable",
            "every worker of the conductor's pool was busy".into(),
        ),
        Answer::Error(Failure::Host(e)) => fail(
            500,
            "Internal Server Error",
            format!("the host failed the op: {e:?}"),
        ),
        Answer::Error(Failure::Cancelled(why)) => fail(
            504,
            "Gateway Timeout",
            format!("the op was cancelled unrun: {}", why.name()),
        ),
        Answer::Timeout => fail(
            504,
            "Gateway Timeout",
            "the conductor did not answer within the RPC timeout".into(),
        ),
        Answer::Refused(KeyReuse::InFlight) => fail(
            409,
            "Conflict",
            "a request with this Idempotency-Key is still in flight".into(),
        ),
        Answer::Refused(KeyReuse::Mismatch) => fail(
            422,
            "Unprocessable Content",
            "this Idempotency-Key was used for another request".into(),
        ),
    }
}

/// The answer an HTTP status stands for, as `conductor load` reads a target's reply (the inverse
/// of [`answer_status`] as far as the status tells; the conflicting status is not told).
pub fn answer_of_status(status: u16) -> Answer {
    match status {
        200..=299 => Answer::Accepted,
        409 => Answer::Conflict(Status::Absent),
        422 => Answer::Refused(KeyReuse::Mismatch),
        504 => Answer::Timeout,
        503 | 429 => Answer::Unavailable,
        _ => Answer::Error(Failure::Unavailable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_and_default_names_round_trip() {
        for id in [0, 1, 17, 0xffff_ffff_ffff] {
            assert_eq!(parse_uuid(&uuid(id)), Some(id));
            assert_eq!(parse_default_name(&default_name(id)), Some(id));
        }
        assert_eq!(parse_uuid("not-a-uuid"), None);
        assert_eq!(parse_default_name("c-"), None);
        assert_eq!(parse_default_name("c-1x"), None);
        assert_eq!(parse_default_name("web"), None);
    }

    #[test]
    fn every_action_route_names_its_op() {
        for kind in OpKind::ALL {
            let path = path_template(kind);
            if method(kind) == "POST" && kind != OpKind::Create {
                let last = path.rsplit('/').next().unwrap_or_default();
                assert_eq!(action(last), Some(kind), "{path}");
            }
        }
    }

    #[test]
    fn a_conflict_is_zuns_409_message() {
        let (s, body) = answer_status(OpKind::Start, "web", Answer::Conflict(Status::Running));
        assert_eq!(s, 409);
        let body = body.expect("an error body");
        assert_eq!(
            body["errors"][0]["detail"],
            "Cannot start container web in Running state."
        );
        assert_eq!(answer_of_status(s), Answer::Conflict(Status::Absent));
    }
}
