-- The knowledge base: articles with every revision kept, their audience
-- (internal: staff only; client: the client's portal too; public: anyone,
-- at the workspace's public URL), draft -> published -> archived, and the
-- tickets they answered.
CREATE TABLE kb_articles (
    id            text PRIMARY KEY,
    title         text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    category      text CHECK (length(category) BETWEEN 1 AND 80),
    tags          text[] NOT NULL DEFAULT '{}',
    audience      text NOT NULL CHECK (audience IN ('internal', 'client', 'public')),
    state         text NOT NULL DEFAULT 'draft' CHECK (state IN ('draft', 'published', 'archived')),
    revision      integer NOT NULL DEFAULT 1 CHECK (revision > 0),
    body          text NOT NULL CHECK (length(body) <= 100000),
    -- The body rendered and sanitized when it was written.
    body_html     text NOT NULL,
    search        tsvector GENERATED ALWAYS AS (
                      setweight(to_tsvector('simple', title), 'A') ||
                      setweight(to_tsvector('simple', coalesce(category, '')), 'B') ||
                      setweight(to_tsvector('simple', body), 'C')) STORED,
    created_by_issuer text NOT NULL,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX kb_articles_search ON kb_articles USING gin (search);
CREATE INDEX kb_articles_listing ON kb_articles (state, audience, updated_at DESC);

CREATE TABLE kb_revisions (
    article_id    text NOT NULL REFERENCES kb_articles (id),
    revision      integer NOT NULL,
    title         text NOT NULL,
    category      text,
    tags          text[] NOT NULL,
    audience      text NOT NULL,
    body          text NOT NULL,
    actor_issuer  text NOT NULL,
    actor         text NOT NULL,
    execution_id  text NOT NULL REFERENCES executions (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (article_id, revision)
);

CREATE TABLE kb_ticket_links (
    article_id    text NOT NULL REFERENCES kb_articles (id),
    ticket_id     text NOT NULL REFERENCES tickets (id),
    -- "This article solved it."
    solved        boolean NOT NULL DEFAULT false,
    actor_issuer  text NOT NULL,
    actor         text NOT NULL,
    execution_id  text NOT NULL REFERENCES executions (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (article_id, ticket_id)
);
CREATE INDEX kb_ticket_links_by_ticket ON kb_ticket_links (ticket_id);
