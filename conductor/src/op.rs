//! Container operations, Zun's container statuses, and the rules that tie them together.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One kind of container operation, as the API accepts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum OpKind {
    /// Creates the container on its host (async).
    Create,
    /// Starts it (async).
    Start,
    /// Stops it (async).
    Stop,
    /// Restarts it (async).
    Reboot,
    /// Pauses it (async).
    Pause,
    /// Unpauses it (async).
    Unpause,
    /// Kills its process (async).
    Kill,
    /// Deletes it, forcibly (async).
    Delete,
    /// Reads its logs (blocking: answered inline on the RPC slot).
    Logs,
    /// Runs a command in it (blocking).
    Exec,
    /// Reads its record (blocking).
    Show,
}

impl OpKind {
    /// Every kind, in a fixed order used wherever kinds are listed.
    pub const ALL: [OpKind; 11] = [
        OpKind::Create,
        OpKind::Start,
        OpKind::Stop,
        OpKind::Reboot,
        OpKind::Pause,
        OpKind::Unpause,
        OpKind::Kill,
        OpKind::Delete,
        OpKind::Logs,
        OpKind::Exec,
        OpKind::Show,
    ];

    /// The lowercase name used in scenarios and reports.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Create => "create",
            OpKind::Start => "start",
            OpKind::Stop => "stop",
            OpKind::Reboot => "reboot",
            OpKind::Pause => "pause",
            OpKind::Unpause => "unpause",
            OpKind::Kill => "kill",
            OpKind::Delete => "delete",
            OpKind::Logs => "logs",
            OpKind::Exec => "exec",
            OpKind::Show => "show",
        }
    }

    /// Blocking ops are answered inline on the RPC slot and never reach the pool.
    pub fn is_blocking(self) -> bool {
        matches!(self, OpKind::Logs | OpKind::Exec | OpKind::Show)
    }

    /// Index into [`OpKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Zun's `validate_container_state`: may this op be accepted while the record is in `status`?
    pub fn allowed_from(self, status: Status) -> bool {
        use Status::*;
        match self {
            OpKind::Create => matches!(status, Absent),
            OpKind::Start => matches!(status, Created | Stopped | Error),
            OpKind::Stop | OpKind::Reboot => matches!(status, Created | Running | Stopped | Error),
            OpKind::Pause | OpKind::Kill | OpKind::Exec => matches!(status, Running),
            OpKind::Unpause => matches!(status, Paused),
            OpKind::Delete => matches!(status, Created | Error | Stopped | Deleted),
            OpKind::Logs => matches!(status, Created | Error | Paused | Running | Stopped),
            OpKind::Show => !matches!(status, Absent),
        }
    }

    /// The transient status and task_state an op puts on the record while it runs.
    pub fn task_state(self) -> Option<(Status, &'static str)> {
        Some(match self {
            OpKind::Create => (Status::Creating, "container_creating"),
            OpKind::Start => (Status::Running, "container_starting"),
            OpKind::Stop => (Status::Stopped, "container_stopping"),
            OpKind::Reboot => (Status::Running, "container_rebooting"),
            OpKind::Pause => (Status::Paused, "container_pausing"),
            OpKind::Unpause => (Status::Running, "container_unpausing"),
            OpKind::Kill => (Status::Stopped, "container_killing"),
            OpKind::Delete => (Status::Deleting, "container_deleting"),
            OpKind::Logs | OpKind::Exec | OpKind::Show => return None,
        })
    }

    /// The status the record takes when the op succeeds.
    pub fn result_status(self) -> Option<Status> {
        self.task_state().map(|(s, _)| match s {
            Status::Creating => Status::Created,
            Status::Deleting => Status::Deleted,
            other => other,
        })
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown op name.
#[derive(Debug, thiserror::Error)]
#[error("unknown op `{0}` (expected one of: create, start, stop, reboot, pause, unpause, kill, delete, logs, exec, show)")]
pub struct UnknownOp(pub String);

impl FromStr for OpKind {
    type Err = UnknownOp;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OpKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownOp(s.to_string()))
    }
}

/// Zun's container `status` as the store records it (`Absent`: no record yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Status {
    /// No record.
    Absent,
    /// Create accepted, not finished.
    Creating,
    /// Created, not running.
    Created,
    /// Running.
    Running,
    /// Stopped.
    Stopped,
    /// Paused.
    Paused,
    /// Delete in progress.
    Deleting,
    /// Deleted.
    Deleted,
    /// An op failed; the record no longer says what the host holds.
    Error,
}

/// What a host holds for one container: its ground truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Truth {
    /// No such container on the host.
    Absent,
    /// Created, never started or stopped.
    Created,
    /// Running.
    Running,
    /// Stopped.
    Stopped,
    /// Paused.
    Paused,
}

/// Why the host refused an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostError {
    /// The container does not exist (404).
    NoSuchContainer,
    /// The op is not valid in the container's state (409).
    Conflict,
    /// The backend failed (injected at `failure_rate`).
    Backend,
    /// The op carried a fencing token older than one the host has seen for the container.
    Fenced,
}

impl Truth {
    /// Docker's answer to `op` on a container in this state: `Ok(Some(new))` changes it,
    /// `Ok(None)` is a no-op (304), `Err` refuses.
    pub fn apply(self, op: OpKind) -> Result<Option<Truth>, HostError> {
        use Truth::*;
        let next = match (op, self) {
            (OpKind::Create, Absent) => Created,
            (OpKind::Create, _) => return Err(HostError::Conflict),
            (OpKind::Delete, Absent) => return Ok(None),
            (OpKind::Delete, _) => Absent,
            (_, Absent) => return Err(HostError::NoSuchContainer),
            (OpKind::Start, Running) => return Ok(None),
            (OpKind::Start, Created | Stopped) => Running,
            (OpKind::Stop, Stopped | Created) => return Ok(None),
            (OpKind::Stop, Running | Paused) => Stopped,
            (OpKind::Reboot, Paused) => return Err(HostError::Conflict),
            (OpKind::Reboot, _) => Running,
            (OpKind::Pause, Paused) => return Ok(None),
            (OpKind::Pause, Running) => Paused,
            (OpKind::Unpause, Paused) => Running,
            (OpKind::Kill, Running) => Stopped,
            (OpKind::Logs | OpKind::Exec | OpKind::Show, _) => return Ok(None),
            _ => return Err(HostError::Conflict),
        };
        Ok(Some(next))
    }

    /// The status a record should have for what its host holds: the one place truths map to
    /// statuses (the reconciler writes it; a record agrees with its host when it says it).
    pub fn status(self) -> Status {
        match self {
            Truth::Absent => Status::Deleted,
            Truth::Created => Status::Created,
            Truth::Running => Status::Running,
            Truth::Stopped => Status::Stopped,
            Truth::Paused => Status::Paused,
        }
    }
}

impl Status {
    /// Whether a record with this status says what its host holds: the status
    /// [`Truth::status`] gives, or no record at all for a container the host does not have.
    pub fn agrees_with(self, truth: Truth) -> bool {
        self == truth.status() || (self == Status::Absent && truth == Truth::Absent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_of_truths() {
        let truths = [
            Truth::Absent,
            Truth::Created,
            Truth::Running,
            Truth::Stopped,
            Truth::Paused,
        ];
        for t in truths {
            assert!(t.status().agrees_with(t), "{t:?}");
            for u in truths.into_iter().filter(|&u| u != t) {
                assert!(!t.status().agrees_with(u), "{t:?} vs {u:?}");
            }
        }
        assert!(Status::Absent.agrees_with(Truth::Absent));
        for s in [Status::Creating, Status::Deleting, Status::Error] {
            assert!(truths.iter().all(|&t| !s.agrees_with(t)), "{s:?}");
        }
    }

    #[test]
    fn names_round_trip() {
        for k in OpKind::ALL {
            assert_eq!(k.name().parse::<OpKind>().unwrap(), k);
            assert_eq!(OpKind::ALL[k.index()], k);
        }
        assert!("frobnicate".parse::<OpKind>().is_err());
    }

    #[test]
    fn docker_semantics() {
        assert_eq!(Truth::Running.apply(OpKind::Start), Ok(None));
        assert_eq!(
            Truth::Created.apply(OpKind::Start),
            Ok(Some(Truth::Running))
        );
        assert_eq!(
            Truth::Absent.apply(OpKind::Start),
            Err(HostError::NoSuchContainer)
        );
        assert_eq!(Truth::Absent.apply(OpKind::Delete), Ok(None));
        assert_eq!(
            Truth::Stopped.apply(OpKind::Unpause),
            Err(HostError::Conflict)
        );
    }

    #[test]
    fn zun_validation() {
        assert!(OpKind::Start.allowed_from(Status::Stopped));
        assert!(!OpKind::Start.allowed_from(Status::Running));
        assert!(!OpKind::Logs.allowed_from(Status::Creating));
        assert!(OpKind::Delete.allowed_from(Status::Error));
    }
}
