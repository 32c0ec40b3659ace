-- What a client's terms and the conversation decide about a ticket.
--
-- The SLA policy a site or a contact brings to its tickets (a client's
-- premium contract for a head office, a VIP): a ticket's policy is its
-- contact's, else its site's, else its queue's, else the workspace default.
ALTER TABLE sites ADD COLUMN sla_policy_id text REFERENCES sla_policies (id);
ALTER TABLE contacts ADD COLUMN sla_policy_id text REFERENCES sla_policies (id);
CREATE INDEX sites_sla_policy ON sites (sla_policy_id) WHERE sla_policy_id IS NOT NULL;
CREATE INDEX contacts_sla_policy ON contacts (sla_policy_id) WHERE sla_policy_id IS NOT NULL;

-- Who owes the next answer, from the conversation: `us` (a new ticket, the
-- client wrote, work resumed) or `client` (we replied to them, or we wait on
-- them). Kept by the ticket commands; lists filter and sort on it.
ALTER TABLE tickets ADD COLUMN awaiting text NOT NULL DEFAULT 'us' CHECK (awaiting IN ('us', 'client'));
CREATE INDEX tickets_awaiting ON tickets (awaiting, id) WHERE status NOT IN ('resolved', 'closed');
