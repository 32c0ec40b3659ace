-- Enrollment tokens are bounded: every token has a number of uses (a new
-- one, unless its creator asks for more, one use). A token that had none
-- gets the most a new token may have (10,000), counted from now.
UPDATE platform.enrollment_tokens SET max_uses = uses + 10000 WHERE max_uses IS NULL;
ALTER TABLE platform.enrollment_tokens ALTER COLUMN max_uses SET NOT NULL;

-- A machine (facts.machine_id) whose agent is still active is enrolled
-- again only with a token made for that (replace_agents, set by staff when
-- they reinstall machines), or after staff revoked the active agent: a
-- machine id is a claim anyone can make, not a credential.
ALTER TABLE platform.enrollment_tokens ADD COLUMN replace_agents boolean NOT NULL DEFAULT false;
