//! Reasoners: deterministic rules. The same input always gives the same
//! answer, with the rules that fired as reasons, so a technician can see why.
//! (An LLM may refine them in production; nothing here needs one.)

use serde::{Deserialize, Serialize};

pub(crate) const CATEGORIES: [&str; 6] = ["security", "outage", "access", "email", "hardware", "general"];

#[derive(Debug, Deserialize)]
pub(crate) struct TriageInput {
    title: String,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct Triage {
    priority: &'static str,
    category: &'static str,
    reasons: Vec<String>,
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
    Triage { priority, category, reasons }
}

#[derive(Debug, Deserialize)]
pub(crate) struct AlertInput {
    transition: String,
    alert: AlertFacts,
}

#[derive(Debug, Deserialize)]
struct AlertFacts {
    severity: String,
    summary: String,
    #[serde(default)]
    ticket_id: Option<String>,
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

/// What to do about an alert: critical alerts get a ticket; a recovery
/// resolves the ticket its alert opened, with a note.
pub(crate) fn triage_alert(input: &AlertInput) -> AlertDecision {
    let none = |reason: String| AlertDecision {
        action: "none",
        priority: None,
        title: None,
        note: None,
        reasons: vec![reason],
    };
    match (input.transition.as_str(), input.alert.severity.as_str(), &input.alert.ticket_id) {
        ("opened", "critical", _) => AlertDecision {
            action: "open_ticket",
            priority: Some("p2"),
            title: Some(input.alert.summary.chars().take(200).collect()),
            note: None,
            reasons: vec!["a critical alert opened: a technician must look".into()],
        },
        ("opened", severity, _) => none(format!("a {severity} alert: shown in Ops, no ticket")),
        ("resolved", _, Some(_)) => AlertDecision {
            action: "resolve_ticket",
            priority: None,
            title: None,
            note: Some(format!("Recovered: {}", input.alert.summary)),
            reasons: vec!["the alert's condition cleared".into()],
        },
        ("resolved", _, None) => none("resolved; it had no ticket".into()),
        (other, _, _) => none(format!("unknown transition {other:?}")),
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
        let input = |transition: &str, severity: &str, ticket: Option<&str>| AlertInput {
            transition: transition.into(),
            alert: AlertFacts {
                severity: severity.into(),
                summary: "Disk almost full on ws-1 (/)".into(),
                ticket_id: ticket.map(Into::into),
            },
        };
        assert_eq!(triage_alert(&input("opened", "critical", None)).action, "open_ticket");
        assert_eq!(triage_alert(&input("opened", "warning", None)).action, "none");
        let resolve = triage_alert(&input("resolved", "critical", Some("tkt_1")));
        assert_eq!(resolve.action, "resolve_ticket");
        assert!(resolve.note.expect("note").starts_with("Recovered: "));
        assert_eq!(triage_alert(&input("resolved", "critical", None)).action, "none");
    }

    #[test]
    fn the_same_input_gives_the_same_answer() {
        assert_eq!(run("Outlook keeps asking for my password", ""), run("Outlook keeps asking for my password", ""));
    }
}
