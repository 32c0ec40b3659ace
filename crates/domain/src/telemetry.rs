//! Alerting on what edge agents report: what a rule watches, how a metric
//! rule compares, how urgent an alert is, and where an alert is.

crate::names!(
    /// What an alert rule watches: a metric sample against a threshold, a
    /// failing check, or an agent that stopped reporting.
    pub enum RuleKind {
        Metric = "metric",
        Check = "check",
        AgentOffline = "agent_offline",
    }
);

crate::names!(
    /// How a metric rule compares a sample with its threshold.
    pub enum Comparison {
        Above = ">",
        AtLeast = ">=",
        Below = "<",
        AtMost = "<=",
    }
);

impl Comparison {
    /// Whether `value` breaches `threshold` (never for NaN).
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::Above => value > threshold,
            Self::AtLeast => value >= threshold,
            Self::Below => value < threshold,
            Self::AtMost => value <= threshold,
        }
    }
}

crate::names!(
    /// How urgent an alert is: `critical` (automation opens a ticket),
    /// `warning` or `info`.
    pub enum Severity {
        Critical = "critical",
        Warning = "warning",
        Info = "info",
    }
);

crate::names!(
    /// Where an alert is: `open` while its condition holds, `resolved` once
    /// it has been clear long enough.
    pub enum AlertState {
        Open = "open",
        Resolved = "resolved",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in RuleKind::ALL {
            assert_eq!(RuleKind::parse(kind.as_str()), Some(kind));
        }
        for comparison in Comparison::ALL {
            assert_eq!(serde_json::to_value(comparison).expect("json"), comparison.as_str());
        }
        assert_eq!(Severity::parse("critical"), Some(Severity::Critical));
        assert_eq!(AlertState::parse("closed"), None);
        assert_eq!(serde_json::from_str::<RuleKind>("\"agent_offline\"").expect("kind"), RuleKind::AgentOffline);
    }

    #[test]
    fn comparisons_compare_and_nan_never_breaches() {
        assert!(Comparison::AtLeast.holds(90.0, 90.0) && !Comparison::Above.holds(90.0, 90.0));
        assert!(Comparison::Below.holds(1.0, 2.0) && Comparison::AtMost.holds(2.0, 2.0));
        assert!(Comparison::ALL.iter().all(|c| !c.holds(1.0, f64::NAN)));
    }
}
