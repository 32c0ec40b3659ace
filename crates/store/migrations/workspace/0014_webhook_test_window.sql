-- Test messages (`POST .../webhooks/{id}/test`) are limited per endpoint:
-- the window the endpoint's count runs in, and the count. On the endpoint's
-- row, so every gateway process shares the count and the row lock orders
-- concurrent tests; deleted with the endpoint.
ALTER TABLE webhook_endpoints
    ADD COLUMN tests_window_start timestamptz,
    ADD COLUMN tests_in_window    integer NOT NULL DEFAULT 0;
