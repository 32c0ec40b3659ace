-- The SLA policy a site or a contact brings to its tickets (a client's
-- premium contract for a head office, a VIP): a ticket's policy is its
-- contact's, else its site's, else its queue's, else the workspace default.
ALTER TABLE sites ADD COLUMN sla_policy_id text REFERENCES sla_policies (id);
ALTER TABLE contacts ADD COLUMN sla_policy_id text REFERENCES sla_policies (id);
CREATE INDEX sites_sla_policy ON sites (sla_policy_id) WHERE sla_policy_id IS NOT NULL;
CREATE INDEX contacts_sla_policy ON contacts (sla_policy_id) WHERE sla_policy_id IS NOT NULL;
