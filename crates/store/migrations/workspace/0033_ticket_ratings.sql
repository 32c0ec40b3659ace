-- The client's rating of a resolution: once per resolution of a ticket
-- (the n-th time it was resolved), by a contact from the portal.
CREATE TABLE ticket_ratings (
    ticket_id     text NOT NULL REFERENCES tickets (id),
    resolution    integer NOT NULL CHECK (resolution > 0),
    score         smallint NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment       text CHECK (length(comment) BETWEEN 1 AND 2000),
    rated_by      text NOT NULL,
    execution_id  text NOT NULL REFERENCES executions (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticket_id, resolution)
);
