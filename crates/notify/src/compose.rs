//! The messages: a plain-text body (what every client shows) and the same in
//! HTML, from what they are about. Pure functions, so each wording is tested
//! without a mail server. Everything that comes from people (names, titles,
//! a reply's text) is escaped in the HTML part.

use maud::{DOCTYPE, Markup, html};
use time::{Date, OffsetDateTime, format_description::BorrowedFormatItem, macros::format_description};

/// One message, ready for the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A link into the portal: a one-time sign-in token in its path, nothing else.
#[derive(Debug, Clone)]
pub struct PortalLink {
    pub url: String,
    pub expires_at: OffsetDateTime,
}

/// Who it is for and on whose behalf.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The client company (the workspace's name).
    pub company: &'a str,
    pub contact_name: &'a str,
    /// `None`: the contact has no portal access that reaches this page.
    pub link: Option<PortalLink>,
}

/// What a message is about.
#[derive(Debug, Clone)]
pub enum About<'a> {
    Invite { invited_by: &'a str, role: &'a str },
    Reply { ticket: &'a str, title: &'a str, body: &'a str },
    Resolved { ticket: &'a str, title: &'a str },
    Quote { number: &'a str, title: &'a str, total: &'a str, valid_until: Date },
    Invoice { number: &'a str, credit_note: bool, total: &'a str, due_on: Option<Date> },
}

const DAY: &[BorrowedFormatItem<'static>] = format_description!("[day padding:none] [month repr:long] [year]");

fn day(date: Date) -> String {
    date.format(DAY).unwrap_or_else(|_| date.to_string())
}

/// Renders the message.
pub fn compose(context: &Context<'_>, about: &About<'_>) -> Email {
    let company = context.company;
    let (subject, lead, quoted, action): (String, String, Option<&str>, &str) = match about {
        About::Invite { invited_by, role } => (
            format!("Your invitation to {company}'s client portal"),
            format!(
                "{invited_by} invited you to {company}'s client portal as {role}. There you can open tickets with \
                 your IT provider, follow and answer them, and see what was promised."
            ),
            None,
            "Accept the invitation",
        ),
        About::Reply { ticket, title, body } => (
            format!("Re: {title} [{ticket}]"),
            format!("Your IT provider answered your ticket \u{201c}{title}\u{201d} ({ticket}):"),
            Some(body),
            "Read and answer it in the portal",
        ),
        About::Resolved { ticket, title } => (
            format!("Resolved: {title} [{ticket}]"),
            format!(
                "Your ticket \u{201c}{title}\u{201d} ({ticket}) was resolved. How did we do? A rating and a word \
                 help your IT provider get better, and if the problem is not solved, you can say so there."
            ),
            None,
            "Rate the resolution",
        ),
        About::Quote { number, title, total, valid_until } => (
            format!("Quote {number}: {title}"),
            format!(
                "Quote {number}, \u{201c}{title}\u{201d}, for {total}, is ready for your decision. It is valid until {}.",
                day(*valid_until)
            ),
            None,
            "Review, accept or decline it",
        ),
        About::Invoice { number, credit_note, total, due_on } => {
            let what = if *credit_note { "Credit note" } else { "Invoice" };
            let due = due_on.map(|d| format!(", due on {}", day(d))).unwrap_or_default();
            (
                format!("{what} {number} from your IT provider"),
                format!("{what} {number} for {total}{due} is ready."),
                None,
                "View it and download the PDF",
            )
        }
    };
    let closing = match &context.link {
        Some(link) => format!(
            "The link signs you in once and works until {}. After that, sign in from a newer e-mail or ask your IT provider.",
            day(link.expires_at.date())
        ),
        None => match about {
            About::Invite { .. } => String::new(),
            About::Reply { .. } | About::Resolved { .. } => {
                "To answer, contact your IT provider as you usually do.".to_owned()
            }
            About::Quote { .. } | About::Invoice { .. } => {
                "Your IT provider can send you the document, or give you portal access to see it.".to_owned()
            }
        },
    };
    let footer = format!(
        "This message was sent for {company} by Anchor, your IT provider's service desk. Replies to it are not read."
    );

    let mut text = format!("Hello {},\n\n{lead}\n", context.contact_name);
    if let Some(body) = quoted {
        text.push('\n');
        for line in body.lines() {
            text.push_str(if line.is_empty() { ">" } else { "> " });
            text.push_str(line);
            text.push('\n');
        }
    }
    if let Some(link) = &context.link {
        text.push_str(&format!("\n{action}:\n{}\n", link.url));
    }
    if !closing.is_empty() {
        text.push_str(&format!("\n{closing}\n"));
    }
    text.push_str(&format!("\n-- \n{footer}\n"));

    let html = page(
        &subject,
        html! {
            p { "Hello " (context.contact_name) "," }
            p { (lead) }
            @if let Some(body) = quoted {
                blockquote { @for line in body.lines() { (line) br; } }
            }
            @if let Some(link) = &context.link {
                p { a href=(link.url) { strong { (action) } } }
            }
            @if !closing.is_empty() { p { small { (closing) } } }
            hr;
            p { small { (footer) } }
        },
    );
    Email { subject, text, html: html.into_string() }
}

fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { (title) } }
            body { (body) }
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;

    fn with_link() -> Context<'static> {
        Context {
            company: "Acme Ltd",
            contact_name: "Ann Smith",
            link: Some(PortalLink {
                url: "https://desk.example/w/acme/portal/link/TOKEN".into(),
                expires_at: datetime!(2026-12-14 10:00 UTC),
            }),
        }
    }

    #[test]
    fn a_reply_quotes_the_answer_and_carries_the_link_and_its_expiry() {
        let body = "Restarted the spooler.\n\nTry again?";
        let email = compose(&with_link(), &About::Reply { ticket: "tkt_1", title: "Printer offline", body });
        assert_eq!(email.subject, "Re: Printer offline [tkt_1]");
        assert!(email.text.starts_with("Hello Ann Smith,\n\n"), "{}", email.text);
        assert!(email.text.contains("> Restarted the spooler.\n>\n> Try again?\n"), "{}", email.text);
        assert!(email.text.contains("https://desk.example/w/acme/portal/link/TOKEN"));
        assert!(email.text.contains("works until 14 December 2026"), "{}", email.text);
        assert!(email.html.contains("href=\"https://desk.example/w/acme/portal/link/TOKEN\""));
    }

    #[test]
    fn what_people_wrote_is_escaped_in_the_html_part() {
        let email = compose(
            &with_link(),
            &About::Reply { ticket: "tkt_1", title: "<b>x</b>", body: "<script>alert(1)</script>" },
        );
        assert!(!email.html.contains("<script>") && !email.html.contains("<b>x</b>"), "{}", email.html);
        assert!(email.html.contains("&lt;script&gt;"));
    }

    #[test]
    fn without_portal_access_there_is_no_link_and_the_message_says_what_to_do() {
        let context = Context { link: None, ..with_link() };
        let email = compose(
            &context,
            &About::Invoice {
                number: "INV-7",
                credit_note: false,
                total: "1210.00 EUR",
                due_on: Some(date!(2027 - 01 - 04)),
            },
        );
        assert_eq!(email.subject, "Invoice INV-7 from your IT provider");
        assert!(
            email.text.contains("Invoice INV-7 for 1210.00 EUR, due on 4 January 2027 is ready."),
            "{}",
            email.text
        );
        assert!(!email.text.contains("http"), "{}", email.text);
        assert!(email.text.contains("portal access"));
    }

    #[test]
    fn quotes_resolutions_and_invitations_name_their_action() {
        let quote = compose(
            &with_link(),
            &About::Quote {
                number: "Q-3",
                title: "New laptops",
                total: "4800.00 EUR",
                valid_until: date!(2027 - 01 - 31),
            },
        );
        assert!(quote.text.contains("valid until 31 January 2027") && quote.text.contains("Review, accept or decline"));
        let resolved = compose(&with_link(), &About::Resolved { ticket: "tkt_2", title: "VPN" });
        assert!(resolved.subject.starts_with("Resolved: VPN") && resolved.text.contains("Rate the resolution:"));
        let invite = compose(&with_link(), &About::Invite { invited_by: "Sam Jones", role: "Client user" });
        assert!(invite.text.contains("Sam Jones invited you to Acme Ltd's client portal as Client user."));
        assert!(invite.text.contains("Accept the invitation:\nhttps://"));
    }
}
