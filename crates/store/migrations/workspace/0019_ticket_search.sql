-- Ticket search, sorts and saved views.

-- The words of a ticket: its title (weight A), description (B) and every
-- comment (C), English configuration (stemming: "printers" finds
-- "printer"; hostnames, addresses and error codes stay whole tokens).
-- Internal notes are included: every reader of tickets today is staff. A
-- client-facing search would need a second vector over public comments.
-- Kept by triggers, not generated: the comments live in another table.
CREATE FUNCTION ticket_search_vector(ticket text, title text, description text) RETURNS tsvector
    LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT setweight(to_tsvector('english', title), 'A')
        || setweight(to_tsvector('english', description), 'B')
        || setweight(to_tsvector('english', coalesce(
               (SELECT string_agg(c.body, ' ' ORDER BY c.id) FROM ticket_comments c WHERE c.ticket_id = ticket),
               '')), 'C')
$$;

ALTER TABLE tickets ADD COLUMN search tsvector NOT NULL DEFAULT ''::tsvector;
UPDATE tickets SET search = ticket_search_vector(id, title, description);
CREATE INDEX tickets_search ON tickets USING gin (search);

CREATE FUNCTION tickets_search_own() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    NEW.search := ticket_search_vector(NEW.id, NEW.title, NEW.description);
    RETURN NEW;
END
$$;
CREATE TRIGGER tickets_search BEFORE INSERT OR UPDATE OF title, description ON tickets
    FOR EACH ROW EXECUTE FUNCTION tickets_search_own();

CREATE FUNCTION ticket_comments_search() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE tickets t SET search = ticket_search_vector(t.id, t.title, t.description)
     WHERE t.id IN (NEW.ticket_id, OLD.ticket_id);
    RETURN NULL;
END
$$;
CREATE TRIGGER ticket_comments_search AFTER INSERT OR DELETE OR UPDATE OF body, ticket_id ON ticket_comments
    FOR EACH ROW EXECUTE FUNCTION ticket_comments_search();

-- The sorts of the ticket list, each with its keyset.
CREATE INDEX tickets_updated ON tickets (updated_at DESC, id DESC);
CREATE INDEX tickets_priority ON tickets (priority, id DESC);
CREATE INDEX tickets_created ON tickets (created_at);

-- Saved views: a named query string of the ticket list, personal or shared
-- (configuration, written directly with a change record).
CREATE TABLE ticket_views (
    id           text PRIMARY KEY CHECK (id ~ '^viw_[0-9a-z]{26}$'),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 120),
    -- The list's parameters, as the list takes them (validated on write).
    query        text NOT NULL CHECK (length(query) <= 2000),
    owner_issuer text NOT NULL,
    owner        text NOT NULL,
    shared       boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ticket_views_owner ON ticket_views (owner, owner_issuer, id);
CREATE INDEX ticket_views_shared ON ticket_views (id) WHERE shared;
