//! The knowledge base as commands: write an article (a draft), revise it
//! (every revision kept), publish it, archive it, and link it to a ticket
//! ("this article solved it"). Staff write (`knowledge.write`).
//!
//! An article's Markdown is rendered to HTML with `pulldown-cmark` and put
//! through `ammonia` when it is written: no script, no style, no event
//! handler, no `javascript:` or `data:` URL, no SVG; links get `rel="nofollow
//! noopener noreferrer external"`. Raw HTML in the Markdown is sanitized the
//! same way. What a page shows is that sanitized HTML.

use std::collections::HashSet;

use anchor_auth::permissions::Permission;
use anchor_domain::{ArticleId, TicketId};
use anchor_store::{
    WorkspaceTx,
    executions::Actor,
    kb::{Article, ArticleContent},
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    kit::{DomainCommand, Effect, Invalid, RefusalKind, Rejection},
    tickets::TICKET_NOT_FOUND,
};

pub const ARTICLE_NOT_FOUND: RefusalKind =
    RefusalKind { code: "article_not_found", status: 404, when: "the article does not exist in this workspace" };
pub const ARTICLE_STATE: RefusalKind = RefusalKind {
    code: "article_transition_not_allowed",
    status: 409,
    when: "the article's state does not allow it (draft -> published -> archived; an archived article is not revised)",
};

/// Who may read an article.
pub const AUDIENCES: [&str; 3] = ["internal", "client", "public"];

/// Markdown -> sanitized HTML (see the module documentation).
pub fn render(markdown: &str) -> String {
    use pulldown_cmark::{Options, Parser, html};
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    options.insert(Options::ENABLE_TASKLISTS);
    let mut unsafe_html = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut unsafe_html, Parser::new_ext(markdown, options));
    ammonia::Builder::default()
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .link_rel(Some("nofollow noopener noreferrer external"))
        .rm_tags(["img"])
        .clean(&unsafe_html)
        .to_string()
}

/// The content of an article.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content<'a> {
    pub title: &'a str,
    pub body: &'a str,
    pub audience: &'a str,
    pub category: Option<&'a str>,
    pub tags: &'a [String],
}

impl Content<'_> {
    fn check(&self) -> Result<(), Invalid> {
        let title = self.title.trim();
        if title.is_empty() || title.chars().count() > 200 || title.chars().any(char::is_control) {
            return Err(Invalid::at("/title", "1 to 200 characters, one line"));
        }
        if self.body.chars().count() > 100_000 {
            return Err(Invalid::at("/body", "up to 100,000 characters"));
        }
        if !AUDIENCES.contains(&self.audience) {
            return Err(Invalid::at("/audience", "internal, client or public"));
        }
        if let Some(c) = self.category
            && (c.trim().is_empty() || c.chars().count() > 80)
        {
            return Err(Invalid::at("/category", "1 to 80 characters"));
        }
        if self.tags.len() > 20
            || self.tags.iter().any(|t| {
                t.is_empty() || t.chars().count() > 40 || !t.chars().all(|c| c.is_alphanumeric() || "-_".contains(c))
            })
        {
            return Err(Invalid::at("/tags", "up to 20 tags of letters, digits, - and _ (1 to 40 characters)"));
        }
        Ok(())
    }
}

macro_rules! with_content {
    ($(#[$doc:meta])* $name:ident { $($field:ident: $ty:ty,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $(pub $field: $ty,)*
            /// 1 to 200 characters.
            pub title: String,
            /// Markdown, up to 100,000 characters.
            pub body: String,
            /// `internal` (staff only), `client` (the client's portal too) or `public` (anyone).
            pub audience: String,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub category: Option<String>,
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub tags: Vec<String>,
        }

        impl $name {
            pub fn content(&self) -> Content<'_> {
                Content {
                    title: &self.title,
                    body: &self.body,
                    audience: &self.audience,
                    category: self.category.as_deref(),
                    tags: &self.tags,
                }
            }
        }
    };
}

with_content!(
    /// Write a new article (a draft).
    ArticleCreate {}
);
with_content!(
    /// Revise an article: its next revision (the earlier ones are kept).
    ArticleRevise {
        article_id: ArticleId,
    }
);

/// Link an article to a ticket, saying whether it solved it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArticleLinkTicket {
    pub article_id: ArticleId,
    pub ticket_id: TicketId,
    /// "This article solved it."
    #[serde(default)]
    pub solved: bool,
}

/// The result of an article command.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ArticleRef {
    pub article_id: ArticleId,
    pub state: String,
    pub revision: i32,
}

async fn article(tx: &mut WorkspaceTx, id: ArticleId, lock: bool) -> Result<Article, Rejection> {
    let found = if lock { tx.lock_article(id).await? } else { tx.article(id).await? };
    found.ok_or_else(|| ARTICLE_NOT_FOUND.because(format!("no article {id} in this workspace")).into())
}

fn content_of<'a>(content: &Content<'a>, html: &'a str) -> ArticleContent<'a> {
    ArticleContent {
        title: content.title.trim(),
        category: content.category.map(str::trim),
        tags: content.tags,
        audience: content.audience,
        body: content.body,
        body_html: html,
    }
}

fn reference(a: &Article) -> ArticleRef {
    ArticleRef { article_id: a.id, state: a.state.clone(), revision: a.revision }
}

impl DomainCommand for ArticleCreate {
    const NAME: &'static str = "kb.article.create";
    const SKILL: &'static str = "kb_article_create";
    const PERMISSION: Permission = Permission::KnowledgeWrite;
    const SUMMARY: &'static str = "Write a knowledge base article (a draft)";
    const TAGS: &'static [&'static str] = &["knowledge"];
    type Output = ArticleRef;

    fn validate(&self) -> Result<(), Invalid> {
        self.content().check()
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<ArticleRef, Rejection> {
        let id = ArticleId::new();
        let html = render(&self.body);
        effect.tx.insert_article(id, &content_of(&self.content(), &html), effect.actor, effect.execution).await?;
        Ok(ArticleRef { article_id: id, state: "draft".into(), revision: 1 })
    }
}

impl DomainCommand for ArticleRevise {
    const NAME: &'static str = "kb.article.revise";
    const SKILL: &'static str = "kb_article_revise";
    const PERMISSION: Permission = Permission::KnowledgeWrite;
    const SUMMARY: &'static str = "Revise a knowledge base article (its next revision)";
    const TAGS: &'static [&'static str] = &["knowledge"];
    const REFUSALS: &'static [&'static RefusalKind] = &[&ARTICLE_NOT_FOUND, &ARTICLE_STATE];
    type Output = ArticleRef;

    fn validate(&self) -> Result<(), Invalid> {
        self.content().check()
    }

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        revisable(&article(tx, self.article_id, false).await?)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<ArticleRef, Rejection> {
        revisable(&article(effect.tx, self.article_id, true).await?)?;
        let html = render(&self.body);
        let content = content_of(&self.content(), &html);
        effect.tx.revise_article(self.article_id, &content, effect.actor, effect.execution).await?;
        Ok(reference(&article(effect.tx, self.article_id, false).await?))
    }
}

fn revisable(a: &Article) -> Result<(), Rejection> {
    if a.state == "archived" {
        return Err(ARTICLE_STATE.because(format!("article {} is archived; write a new one", a.id)).into());
    }
    Ok(())
}

fn moved(a: &Article, to: &str) -> Result<(), Rejection> {
    let allowed = matches!((a.state.as_str(), to), ("draft", "published") | ("draft" | "published", "archived"));
    if !allowed {
        return Err(ARTICLE_STATE.because(format!("article {} is {}; it cannot be {to}", a.id, a.state)).into());
    }
    Ok(())
}

/// Publish a draft article.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArticlePublish {
    pub article_id: ArticleId,
}

/// Archive an article (kept, no longer shown to its audience).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArticleArchive {
    pub article_id: ArticleId,
}

impl DomainCommand for ArticlePublish {
    const NAME: &'static str = "kb.article.publish";
    const SKILL: &'static str = "kb_article_publish";
    const PERMISSION: Permission = Permission::KnowledgeWrite;
    const SUMMARY: &'static str = "Publish a knowledge base article to its audience";
    const TAGS: &'static [&'static str] = &["knowledge"];
    const REFUSALS: &'static [&'static RefusalKind] = &[&ARTICLE_NOT_FOUND, &ARTICLE_STATE];
    type Output = ArticleRef;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        moved(&article(tx, self.article_id, false).await?, "published")
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<ArticleRef, Rejection> {
        moved(&article(effect.tx, self.article_id, true).await?, "published")?;
        effect.tx.set_article_state(self.article_id, "published").await?;
        Ok(reference(&article(effect.tx, self.article_id, false).await?))
    }
}

impl DomainCommand for ArticleArchive {
    const NAME: &'static str = "kb.article.archive";
    const SKILL: &'static str = "kb_article_archive";
    const PERMISSION: Permission = Permission::KnowledgeWrite;
    const SUMMARY: &'static str = "Archive a knowledge base article";
    const TAGS: &'static [&'static str] = &["knowledge"];
    const REFUSALS: &'static [&'static RefusalKind] = &[&ARTICLE_NOT_FOUND, &ARTICLE_STATE];
    type Output = ArticleRef;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        moved(&article(tx, self.article_id, false).await?, "archived")
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<ArticleRef, Rejection> {
        moved(&article(effect.tx, self.article_id, true).await?, "archived")?;
        effect.tx.set_article_state(self.article_id, "archived").await?;
        Ok(reference(&article(effect.tx, self.article_id, false).await?))
    }
}

impl DomainCommand for ArticleLinkTicket {
    const NAME: &'static str = "kb.article.link_ticket";
    const SKILL: &'static str = "kb_article_link_ticket";
    const PERMISSION: Permission = Permission::KnowledgeWrite;
    const SUMMARY: &'static str = "Link a knowledge base article to a ticket (and whether it solved it)";
    const TAGS: &'static [&'static str] = &["knowledge"];
    const REFUSALS: &'static [&'static RefusalKind] = &[&ARTICLE_NOT_FOUND, &TICKET_NOT_FOUND];
    type Output = ArticleRef;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        article(tx, self.article_id, false).await?;
        crate::tickets::current_ticket(tx, self.ticket_id).await.map(drop)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<ArticleRef, Rejection> {
        let a = article(effect.tx, self.article_id, false).await?;
        crate::tickets::current_ticket(effect.tx, self.ticket_id).await?;
        effect.tx.link_article_ticket(a.id, self.ticket_id, self.solved, effect.actor, effect.execution).await?;
        Ok(reference(&a))
    }
}

#[cfg(test)]
mod tests {
    use super::render;

    /// A hostile corpus: nothing in it may run, load or style anything.
    #[test]
    fn hostile_markdown_renders_inert() {
        let corpus = [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "[click](javascript:alert(1))",
            "[click](JaVaScRiPt:alert(1))",
            "[click]( javascript:alert(1))",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">x</a>",
            "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
            "<svg onload=alert(1)><circle r=10 /></svg>",
            "<math><mi xlink:href=\"javascript:alert(1)\">x</mi></math>",
            "<div style=\"background:url(javascript:alert(1))\">styled</div>",
            "<p onclick=\"alert(1)\" onmouseover=\"alert(1)\">handlers</p>",
            "<iframe src=\"https://evil.example\"></iframe>",
            "<object data=\"x\"></object><embed src=\"x\">",
            "<form action=\"https://evil.example\"><input name=a><button>go</button></form>",
            "<style>body{display:none}</style>",
            "<link rel=stylesheet href=https://evil.example/x.css>",
            "<meta http-equiv=refresh content=\"0;url=https://evil.example\">",
            "<base href=\"https://evil.example/\">",
            "[x](vbscript:msgbox(1))",
            "<a href=\"&#106;avascript:alert(1)\">entity</a>",
            "<scr<script>ipt>alert(1)</script>",
        ];
        for markdown in corpus {
            let html = render(markdown).to_lowercase();
            for bad in [
                "<script",
                "javascript:",
                "vbscript:",
                "data:",
                "onerror",
                "onload",
                "onclick",
                "onmouseover",
                "<svg",
                "<math",
                "style=",
                "<style",
                "<iframe",
                "<object",
                "<embed",
                "<form",
                "<input",
                "<link",
                "<meta",
                "<base",
                "<img",
            ] {
                assert!(!html.contains(bad), "{markdown:?} rendered {html:?}, which holds {bad:?}");
            }
        }
        // Markdown itself still works, and links are marked as leaving.
        let html = render("# Title\n\nSee **the guide** at [docs](https://docs.example/vpn).\n\n- one\n- two");
        assert!(html.contains("<h1>Title</h1>") && html.contains("<strong>the guide</strong>"), "{html}");
        assert!(html.contains("rel=\"nofollow noopener noreferrer external\""), "{html}");
        assert!(html.contains("<li>one</li>"), "{html}");
    }
}
