//! Executions: one per accepted domain command, run through AgentField.

crate::names!(
    /// Where an execution is. `queued` until a worker hands it to AgentField,
    /// `running` until it finishes; the other four are final.
    pub enum ExecutionStatus {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
        Timeout = "timeout",
    }
);

impl ExecutionStatus {
    /// Final: nothing changes an execution after this.
    pub fn is_finished(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_four_are_final() {
        for status in ExecutionStatus::ALL {
            assert_eq!(ExecutionStatus::parse(status.as_str()), Some(status));
            assert_eq!(serde_json::to_value(status).expect("json"), status.as_str());
        }
        let finished = ExecutionStatus::ALL.iter().filter(|s| s.is_finished()).count();
        assert_eq!(finished, 4);
        assert_eq!(ExecutionStatus::parse("pending"), None);
    }
}
