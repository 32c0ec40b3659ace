-- An accepted quote converts to a draft invoice or to a draft contract
-- (its total becoming the contract's fee per cycle). One or the other.
ALTER TABLE quotes ADD COLUMN contract_id text REFERENCES contracts (id);
ALTER TABLE quotes ADD CONSTRAINT quotes_converted_once CHECK (invoice_id IS NULL OR contract_id IS NULL);
