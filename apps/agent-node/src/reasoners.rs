//! Reasoners: deterministic rules. The same input always gives the same
//! answer, with the rules that fired as reasons, so a technician can see why.
//! A language model may refine the ticket triage when one is configured
//! (`crate::refine`); nothing here needs one.

use serde::{Deserialize, Serialize};

pub(crate) const PRIORITIES: [&str; 4] = ["p1", "p2", "p3", "p4"];
pub(crate) const CATEGORIES: [&str; 6] = ["security", "outage", "access", "email", "hardware", "general"];

#[derive(Debug, Deserialize)]
pub(crate) struct TriageInput {
    pub(crate) title: String,
    #[serde(default)]
    pub(crate) description: String,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct Triage {
    pub(crate) priority: &'static str,
    pub(crate) category: &'static str,
    pub(crate) reasons: Vec<String>,
    /// The language model that refined the rules, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) refined_by: Option<String>,
}

/// (category, priority, words), most urgent first: the first category with
/// a matching word wins.
const RULES: [(&str, &str, &[&str]); 5] = [
    ("security", "p1", &["ransomware", "breach", "phishing", "malware", "virus", "hacked", "compromised"]),
    ("outage", "p1", &["outage", "down for everyone", "server down", "site down", "all users", "cannot work"]),
    ("access", "p2", &["locked out", "password", "mfa", "2fa", "cannot log in", "can't log in", "login"]),
    ("email", "p3", &["email", "e-mail", "outlook", "mailbox", "calendar"]),
    ("hardware", "p3", &["printer", "laptop", "monitor", "keyboard", "mouse", "dock", "screen"]),
];

/// Words that make anything one step more urgent.
const URGENT: [&str; 3] = ["urgent", "asap", "immediately"];

pub(crate) fn triage(input: &TriageInput) -> Triage {
    let text = format!("{} {}", input.title, input.description).to_lowercase();
    let mut reasons = Vec::new();
    let (category, mut priority) = RULES
        .iter()
        .find_map(|(category, priority, words)| {
            words.iter().find(|w| text.contains(*w)).map(|w| {
                reasons.push(format!("mentions \"{w}\": {category}, {priority}"));
                (*category, *priority)
            })
        })
        .unwrap_or_else(|| {
            reasons.push("no rule matched: general, p4".to_owned());
            ("general", "p4")
        });
    if let Some(word) = URGENT.iter().find(|w| text.contains(*w)) {
        let raised = match priority {
            "p4" => "p3",
            "p3" => "p2",
            _ => "p1",
        };
        if raised != priority {
            reasons.push(format!("says \"{word}\": raised to {raised}"));
            priority = raised;
        }
    }
    Triage { priority, category, reasons, refined_by: None }
}

#[derive(Debug, Deserialize)]
pub(crate) struct AlertInput {
    /// What happened last (`opened`, `reopened`, `resolved`); the decision
    /// follows the alert and its ticket as they are now.
    transition: String,
    alert: AlertFacts,
    #[serde(default)]
    ticket: Option<TicketFacts>,
}

#[derive(Debug, Deserialize)]
struct AlertFacts {
    severity: String,
    summary: String,
    state: String,
}

#[derive(Debug, Deserialize)]
struct TicketFacts {
    status: String,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct AlertDecision {
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    reasons: Vec<String>,
}

/// What to do about an alert, given the alert and its ticket as they are:
/// an open critical alert needs an open ticket (a new one, or its resolved
/// one reopened); a resolved alert resolves the ticket it opened, with a
/// note; anything else is shown in Ops and needs no ticket.
pub(crate) fn triage_alert(input: &AlertInput) -> AlertDecision {
    let decide = |action, note: Option<String>, reason: String| AlertDecision {
        action,
        priority: None,
        title: None,
        note,
        reasons: vec![format!("{reason} (after the alert {})", input.transition)],
    };
    let ticket = input.ticket.as_ref().map(|t| t.status.as_str());
    let open_ticket = |status: Option<&str>| status.is_some_and(|s| s != "resolved" && s != "closed");
    match (input.alert.state.as_str(), input.alert.severity.as_str(), ticket) {
        ("open", "critical", None | Some("closed")) => AlertDecision {
            action: "open_ticket",
            priority: Some("p2"),
            title: Some(input.alert.summary.chars().take(200).collect()),
            note: None,
            reasons: vec!["a critical alert is open and has no open ticket: a technician must look".into()],
        },
        ("open", "critical", Some("resolved")) => decide(
            "reopen_ticket",
            Some(format!("The alert came back: {}", input.alert.summary)),
            "the critical alert is open again and its ticket was resolved".into(),
        ),
        ("open", "critical", _) => decide("none", None, "its ticket is open already".into()),
        ("open", severity, _) => decide("none", None, format!("a {severity} alert: shown in Ops, no ticket")),
        ("resolved", _, status) if open_ticket(status) => decide(
            "resolve_ticket",
            Some(format!("Recovered: {}", input.alert.summary)),
            "the alert's condition cleared and its ticket is open".into(),
        ),
        ("resolved", _, _) => decide("none", None, "resolved; it has no open ticket".into()),
        (state, _, _) => decide("none", None, format!("unknown alert state {state:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(title: &str, description: &str) -> Triage {
        triage(&TriageInput { title: title.into(), description: description.into() })
    }

    #[test]
    fn rules_pick_category_and_priority_with_reasons() {
        let t = run("Ransomware note on the file server", "");
        assert_eq!((t.priority, t.category), ("p1", "security"));
        assert!(t.reasons[0].contains("ransomware"));
        assert_eq!(run("Printer jams", "").priority, "p3");
        assert_eq!(run("Printer jams", "urgent, board meeting").priority, "p2");
        let general = run("Question about invoices", "");
        assert_eq!((general.priority, general.category), ("p4", "general"));
        assert_eq!(run("Locked out", "after the MFA reset").category, "access");
    }

    #[test]
    fn critical_alerts_get_tickets_and_recoveries_resolve_them() {
        let input = |state: &str, severity: &str, ticket: Option<&str>| AlertInput {
            transition: "opened".into(),
            alert: AlertFacts {
                severity: severity.into(),
                summary: "Disk almost full on ws-1 (/)".into(),
                state: state.into(),
            },
            ticket: ticket.map(|status| TicketFacts { status: status.into() }),
        };
        let action = |state, severity, ticket| triage_alert(&input(state, severity, ticket)).action;
        assert_eq!(action("open", "critical", None), "open_ticket");
        assert_eq!(action("open", "critical", Some("closed")), "open_ticket", "a closed ticket stays closed");
        assert_eq!(action("open", "critical", Some("in_progress")), "none", "one ticket per alert");
        assert_eq!(action("open", "critical", Some("resolved")), "reopen_ticket", "a flap reopens it");
        assert_eq!(action("open", "warning", None), "none");
        let resolve = triage_alert(&input("resolved", "critical", Some("new")));
        assert_eq!(resolve.action, "resolve_ticket");
        assert!(resolve.note.expect("note").starts_with("Recovered: "));
        assert_eq!(action("resolved", "critical", Some("waiting_on_client")), "resolve_ticket");
        assert_eq!(action("resolved", "critical", Some("resolved")), "none");
        assert_eq!(action("resolved", "critical", None), "none");
        assert_eq!(action("resolved", "warning", Some("closed")), "none");
    }

    #[test]
    fn the_same_input_gives_the_same_answer() {
        assert_eq!(run("Outlook keeps asking for my password", ""), run("Outlook keeps asking for my password", ""));
    }
}
