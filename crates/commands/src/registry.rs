//! Every domain command, once. A command added here is parsed by the
//! gateway and the pages, offered and performed by the agent node, and
//! documented; nothing else needs to list it.

use anchor_events::EventSpec;

use crate::{
    alert_handling, assignment, billing, cmdb, contracts, invoices, kb,
    kit::{RefusalKind, Spec},
    payments, portal, quotes, runbooks, sites, tickets, time_entries,
};

pub static COMMANDS: &[Spec] = &[
    Spec::of::<tickets::TicketCreate>(),
    Spec::of::<tickets::TicketTransition>(),
    Spec::of::<tickets::TicketComment>(),
    Spec::of::<tickets::TicketResolve>(),
    Spec::of::<tickets::TicketReopen>(),
    Spec::of::<tickets::TicketSetPriority>(),
    Spec::of::<assignment::TicketAssign>(),
    Spec::of::<assignment::TicketUnassign>(),
    Spec::of::<assignment::TicketSetQueue>(),
    Spec::of::<assignment::TicketTag>(),
    Spec::of::<assignment::TicketMerge>(),
    Spec::of::<assignment::TicketRelate>(),
    Spec::of::<sites::SiteCreate>(),
    Spec::of::<sites::SiteUpdate>(),
    Spec::of::<sites::SiteArchive>(),
    Spec::of::<sites::ContactCreate>(),
    Spec::of::<sites::ContactUpdate>(),
    Spec::of::<sites::ContactArchive>(),
    Spec::of::<time_entries::TimeEntryLog>(),
    Spec::of::<time_entries::TimeEntryUpdate>(),
    Spec::of::<time_entries::TimeEntrySubmit>(),
    Spec::of::<time_entries::TimeEntryApprove>(),
    Spec::of::<time_entries::TimeEntryReject>(),
    Spec::of::<time_entries::TimeEntryDiscard>(),
    Spec::of::<cmdb::AssetCreate>(),
    Spec::of::<cmdb::AssetUpdate>(),
    Spec::of::<cmdb::AssetMove>(),
    Spec::of::<cmdb::AssetTag>(),
    Spec::of::<cmdb::AssetSetStatus>(),
    Spec::of::<cmdb::AssetRetire>(),
    Spec::of::<cmdb::AssetRelate>(),
    Spec::of::<cmdb::AssetUnrelate>(),
    Spec::of::<alert_handling::AlertAcknowledge>(),
    Spec::of::<alert_handling::AlertSnooze>(),
    Spec::of::<alert_handling::AlertGroup>(),
    Spec::of::<runbooks::RunbookStart>(),
    Spec::of::<runbooks::RunbookRecordStep>(),
    Spec::of::<invoices::InvoiceCreate>(),
    Spec::of::<invoices::InvoiceUpdate>(),
    Spec::of::<invoices::InvoiceDiscard>(),
    Spec::of::<invoices::InvoiceFinalize>(),
    Spec::of::<invoices::InvoiceSend>(),
    Spec::of::<invoices::CreditNoteCreate>(),
    Spec::of::<payments::PaymentRecord>(),
    Spec::of::<payments::PaymentAllocate>(),
    Spec::of::<payments::PaymentRefund>(),
    Spec::of::<contracts::ContractCreate>(),
    Spec::of::<contracts::ContractUpdate>(),
    Spec::of::<contracts::ContractActivate>(),
    Spec::of::<contracts::ContractSuspend>(),
    Spec::of::<contracts::ContractResume>(),
    Spec::of::<contracts::ContractCancel>(),
    Spec::of::<quotes::QuoteCreate>(),
    Spec::of::<quotes::QuoteRevise>(),
    Spec::of::<quotes::QuoteSend>(),
    Spec::of::<quotes::QuoteAccept>(),
    Spec::of::<quotes::QuoteDecline>(),
    Spec::of::<quotes::QuoteConvert>(),
    Spec::of::<quotes::QuoteToContract>(),
    Spec::of::<billing::BillingRunCommand>(),
    Spec::of::<kb::ArticleCreate>(),
    Spec::of::<kb::ArticleRevise>(),
    Spec::of::<kb::ArticlePublish>(),
    Spec::of::<kb::ArticleArchive>(),
    Spec::of::<kb::ArticleLinkTicket>(),
    Spec::of::<portal::PortalTicketOpen>(),
    Spec::of::<portal::PortalTicketReply>(),
    Spec::of::<portal::PortalTicketRate>(),
    Spec::of::<portal::PortalQuoteAccept>(),
    Spec::of::<portal::PortalQuoteDecline>(),
];

/// The command called `name`.
pub fn find(name: &str) -> Option<&'static Spec> {
    COMMANDS.iter().find(|spec| spec.name == name)
}

/// The command a skill performs.
pub fn for_skill(skill: &str) -> Option<&'static Spec> {
    COMMANDS.iter().find(|spec| spec.skill == skill)
}

/// The refusal kind with this code, from any command.
pub fn refusal_kind(code: &str) -> Option<&'static RefusalKind> {
    std::iter::once(&crate::kit::FORBIDDEN)
        .chain(COMMANDS.iter().flat_map(|spec| spec.refusals.iter().copied()))
        .find(|kind| kind.code == code)
}

/// Every event a command publishes, once each, plus the executions' own.
pub fn events() -> Vec<EventSpec> {
    let mut events = crate::finish::EVENTS.to_vec();
    for event in COMMANDS.iter().flat_map(|spec| spec.events) {
        if !events.iter().any(|e| e.name == event.name) {
            events.push(*event);
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_skills_are_unique_and_well_formed() {
        for (i, spec) in COMMANDS.iter().enumerate() {
            assert!(COMMANDS[i + 1..].iter().all(|o| o.name != spec.name && o.skill != spec.skill), "{spec:?} twice");
            let (entity, verb) = spec.name.split_once('.').expect("entity.verb");
            assert!(!entity.is_empty() && !verb.is_empty() && spec.name == spec.name.to_lowercase());
            assert_eq!(spec.skill, spec.name.replace('.', "_"), "the skill is named after the command");
        }
    }

    #[test]
    fn every_command_parses_its_own_example() {
        for spec in COMMANDS {
            let schema = spec.args_schema();
            let Some(examples) = schema.get("examples").and_then(|e| e.as_array()) else { continue };
            for example in examples {
                let command = spec.parse(example.clone()).unwrap_or_else(|e| panic!("{}: {e}", spec.name));
                assert_eq!(command.name(), spec.name);
                assert_eq!(&command.args(), example, "arguments round-trip");
            }
        }
    }

    #[test]
    fn argument_schemas_are_closed_and_self_contained() {
        for spec in COMMANDS {
            let schema = serde_json::to_value(spec.args_schema()).expect("json");
            assert_eq!(schema["type"], "object", "{}", spec.name);
            assert_eq!(schema["additionalProperties"], false, "{}: unknown members are refused", spec.name);
            assert!(!schema.to_string().contains("$ref"), "{}: {schema}", spec.name);
        }
    }
}
