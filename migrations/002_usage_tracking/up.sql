-- One row per API request, for usage-based billing and rate limits.

CREATE TABLE usage_tracking (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- usage is billed: keep it while the user exists, drop it with the user
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- a revoked and deleted key keeps its history, unattributed
    api_key_id       uuid REFERENCES api_keys (id) ON DELETE SET NULL,
    endpoint         text NOT NULL,
    method           text NOT NULL,
    status_code      smallint NOT NULL,
    response_time_ms integer,
    ip_address       inet,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT usage_tracking_method_check
        CHECK (method IN ('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS')),
    CONSTRAINT usage_tracking_status_code_check CHECK (status_code BETWEEN 100 AND 599),
    CONSTRAINT usage_tracking_response_time_check CHECK (response_time_ms >= 0)
);

-- per-user and per-key usage over a period
CREATE INDEX usage_tracking_user_created_idx ON usage_tracking (user_id, created_at DESC);
CREATE INDEX usage_tracking_api_key_created_idx ON usage_tracking (api_key_id, created_at DESC)
    WHERE api_key_id IS NOT NULL;

-- A running total, so that quota checks need not count usage_tracking rows.
-- A constant default adds the column without rewriting api_keys.
ALTER TABLE api_keys ADD COLUMN usage_count bigint NOT NULL DEFAULT 0;
