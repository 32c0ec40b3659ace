//! The knowledge base: articles, their revisions and the tickets they
//! answered. Written by the `kb.article.*` skills; read by the Console, the
//! Portal (client and public audiences, published only) and the public URL
//! (public audience, published only).

use anchor_domain::{ArticleId, ExecutionId, TicketId};
use serde::Serialize;
use time::OffsetDateTime;

use crate::{StoreError, WorkspaceTx, executions::Actor};

/// An article as it is now.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Article {
    #[schema(value_type = String)]
    pub id: ArticleId,
    pub title: String,
    pub category: Option<String>,
    pub tags: Vec<String>,
    /// `internal`, `client` or `public`.
    pub audience: String,
    /// `draft`, `published` or `archived`.
    pub state: String,
    pub revision: i32,
    /// Markdown, as written.
    pub body: String,
    /// The body rendered and sanitized.
    pub body_html: String,
    pub created_by_issuer: String,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub published_at: Option<OffsetDateTime>,
}

/// One revision of an article.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Revision {
    pub revision: i32,
    pub title: String,
    pub audience: String,
    #[sqlx(flatten)]
    pub actor: Actor,
    #[schema(value_type = String)]
    pub execution_id: ExecutionId,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// A ticket an article is linked to.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct TicketLink {
    #[schema(value_type = String)]
    pub article_id: ArticleId,
    #[schema(value_type = String)]
    pub ticket_id: TicketId,
    pub title: String,
    pub solved: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// An article's content, as a command writes it.
#[derive(Debug, Clone)]
pub struct ArticleContent<'a> {
    pub title: &'a str,
    pub category: Option<&'a str>,
    pub tags: &'a [String],
    pub audience: &'a str,
    pub body: &'a str,
    pub body_html: &'a str,
}

/// Which articles to list.
#[derive(Debug, Clone, Default)]
pub struct ArticleFilter {
    /// Only these audiences (none: all).
    pub audiences: Vec<String>,
    /// Only this state (none: all).
    pub state: Option<String>,
    /// Words to look for (title, category and body), each a prefix.
    pub search: Option<String>,
    pub category: Option<String>,
}

/// The audiences the client's people may read.
pub const CLIENT_AUDIENCES: [&str; 2] = ["client", "public"];

/// Whether whoever holds `roles` is one of the client's people (no MSP
/// role): they read what the Portal shows, wherever they ask.
pub fn clients_only(roles: &[anchor_domain::Role]) -> bool {
    roles.iter().all(|r| matches!(r, anchor_domain::Role::ClientAdmin | anchor_domain::Role::ClientUser))
}

impl ArticleFilter {
    /// This filter narrowed to what the client's people may read: published
    /// articles of the client and public audiences. Asking for anything
    /// else finds nothing.
    pub fn for_clients(mut self) -> Self {
        // An audience and a state no article has: the narrowed filter then matches nothing.
        const NONE: &str = "-";
        self.audiences = if self.audiences.is_empty() {
            CLIENT_AUDIENCES.map(str::to_owned).to_vec()
        } else {
            self.audiences.into_iter().filter(|a| CLIENT_AUDIENCES.contains(&a.as_str())).collect()
        };
        if self.audiences.is_empty() {
            self.audiences.push(NONE.to_owned());
        }
        self.state = match self.state.as_deref() {
            None | Some("published") => Some("published".to_owned()),
            Some(_) => Some(NONE.to_owned()),
        };
        self
    }
}

impl Article {
    /// Whether the client's people may read it (published, client or public).
    pub fn readable_by_clients(&self) -> bool {
        self.state == "published" && CLIENT_AUDIENCES.contains(&self.audience.as_str())
    }
}

const COLUMNS: &str = "id, title, category, tags, audience, state, revision, body, body_html, created_by_issuer,
    created_by, created_at, updated_at, published_at";

/// `printer offl` -> `printer:* & offl:*` (words only, so nothing the user
/// types is read as query syntax).
pub fn prefix_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(8)
        .map(|w| format!("{}:*", w.to_lowercase()))
        .collect();
    (!words.is_empty()).then(|| words.join(" & "))
}

impl WorkspaceTx {
    pub async fn article(&mut self, id: ArticleId) -> Result<Option<Article>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM kb_articles WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }

    pub async fn lock_article(&mut self, id: ArticleId) -> Result<Option<Article>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM kb_articles WHERE id = $1 FOR UPDATE")))
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }

    /// Articles matching `filter`: by relevance when searching, else the
    /// most recently changed first.
    pub async fn articles(&mut self, filter: &ArticleFilter, limit: i64) -> Result<Vec<Article>, StoreError> {
        let query = filter.search.as_deref().and_then(prefix_query);
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM kb_articles
              WHERE (cardinality($1::text[]) = 0 OR audience = ANY($1))
                AND ($2::text IS NULL OR state = $2)
                AND ($3::text IS NULL OR search @@ to_tsquery('simple', $3))
                AND ($4::text IS NULL OR category = $4)
              ORDER BY CASE WHEN $3::text IS NULL THEN 0 ELSE ts_rank(search, to_tsquery('simple', $3)) END DESC,
                       updated_at DESC, id DESC
              LIMIT $5"
        )))
        .bind(&filter.audiences)
        .bind(&filter.state)
        .bind(query)
        .bind(&filter.category)
        .bind(limit)
        .fetch_all(self.conn())
        .await?)
    }

    /// A new draft article, its first revision recorded.
    pub async fn insert_article(
        &mut self,
        id: ArticleId,
        content: &ArticleContent<'_>,
        actor: &Actor,
        execution: ExecutionId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO kb_articles (id, title, category, tags, audience, body, body_html, created_by_issuer, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id)
        .bind(content.title)
        .bind(content.category)
        .bind(content.tags)
        .bind(content.audience)
        .bind(content.body)
        .bind(content.body_html)
        .bind(&actor.issuer)
        .bind(&actor.subject)
        .execute(self.conn())
        .await?;
        self.insert_revision(id, 1, content, actor, execution).await
    }

    /// The article's next revision (its content replaced, the old kept).
    pub async fn revise_article(
        &mut self,
        id: ArticleId,
        content: &ArticleContent<'_>,
        actor: &Actor,
        execution: ExecutionId,
    ) -> Result<i32, StoreError> {
        let revision: i32 = sqlx::query_scalar(
            "UPDATE kb_articles SET title = $2, category = $3, tags = $4, audience = $5, body = $6, body_html = $7,
                    revision = revision + 1, updated_at = now()
              WHERE id = $1 RETURNING revision",
        )
        .bind(id)
        .bind(content.title)
        .bind(content.category)
        .bind(content.tags)
        .bind(content.audience)
        .bind(content.body)
        .bind(content.body_html)
        .fetch_one(self.conn())
        .await?;
        self.insert_revision(id, revision, content, actor, execution).await?;
        Ok(revision)
    }

    async fn insert_revision(
        &mut self,
        id: ArticleId,
        revision: i32,
        content: &ArticleContent<'_>,
        actor: &Actor,
        execution: ExecutionId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO kb_revisions (article_id, revision, title, category, tags, audience, body, actor_issuer, actor,
                                       execution_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(id)
        .bind(revision)
        .bind(content.title)
        .bind(content.category)
        .bind(content.tags)
        .bind(content.audience)
        .bind(content.body)
        .bind(&actor.issuer)
        .bind(&actor.subject)
        .bind(execution)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Moves the article to `state` (`published` records when, the first time).
    pub async fn set_article_state(&mut self, id: ArticleId, state: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE kb_articles SET state = $2, updated_at = now(),
                    published_at = CASE WHEN $2 = 'published' THEN coalesce(published_at, now()) ELSE published_at END
              WHERE id = $1",
        )
        .bind(id)
        .bind(state)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn article_revisions(&mut self, id: ArticleId) -> Result<Vec<Revision>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT revision, title, audience, actor_issuer AS issuer, actor AS subject, execution_id, created_at
               FROM kb_revisions WHERE article_id = $1 ORDER BY revision DESC",
        )
        .bind(id)
        .fetch_all(self.conn())
        .await?)
    }

    /// Links an article and a ticket (or changes whether it solved it).
    pub async fn link_article_ticket(
        &mut self,
        article: ArticleId,
        ticket: TicketId,
        solved: bool,
        actor: &Actor,
        execution: ExecutionId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO kb_ticket_links (article_id, ticket_id, solved, actor_issuer, actor, execution_id)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (article_id, ticket_id) DO UPDATE SET solved = EXCLUDED.solved",
        )
        .bind(article)
        .bind(ticket)
        .bind(solved)
        .bind(&actor.issuer)
        .bind(&actor.subject)
        .bind(execution)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// The tickets an article is linked to, or the articles a ticket is
    /// (with the ticket's or the article's title).
    pub async fn article_links(
        &mut self,
        article: Option<ArticleId>,
        ticket: Option<TicketId>,
    ) -> Result<Vec<TicketLink>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT l.article_id, l.ticket_id, CASE WHEN $1::text IS NULL THEN a.title ELSE t.title END AS title,
                    l.solved, l.created_at
               FROM kb_ticket_links l JOIN kb_articles a ON a.id = l.article_id JOIN tickets t ON t.id = l.ticket_id
              WHERE ($1::text IS NULL OR l.article_id = $1) AND ($2::text IS NULL OR l.ticket_id = $2)
              ORDER BY l.created_at DESC LIMIT 100",
        )
        .bind(article)
        .bind(ticket)
        .fetch_all(self.conn())
        .await?)
    }
}
