-- Accounts, their API keys, preferences and billing details.
-- gen_random_uuid() is built into PostgreSQL 13 and later.

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text NOT NULL,
    name          text,
    password_hash text,
    plan          text NOT NULL DEFAULT 'free',
    status        text NOT NULL DEFAULT 'active',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_format CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    CONSTRAINT users_plan_check CHECK (plan IN ('free', 'pro', 'enterprise')),
    CONSTRAINT users_status_check CHECK (status IN ('active', 'suspended', 'deleted'))
);

-- One account per address, whatever its case: login looks users up by lower(email).
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_status_idx ON users (status) WHERE status <> 'active';

CREATE TABLE api_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- a user's keys go with the user
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL,
    key_prefix   text NOT NULL,
    key_hash     text NOT NULL,
    scopes       text[] NOT NULL DEFAULT '{}',
    last_used_at timestamptz,
    expires_at   timestamptz,
    revoked_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash),
    CONSTRAINT api_keys_expiry_check CHECK (expires_at IS NULL OR expires_at > created_at)
);

CREATE INDEX api_keys_user_id_idx ON api_keys (user_id);
-- authentication looks a key up by its visible prefix, among keys not revoked
CREATE INDEX api_keys_active_prefix_idx ON api_keys (key_prefix) WHERE revoked_at IS NULL;

CREATE TABLE user_preferences (
    user_id             uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    timezone            text NOT NULL DEFAULT 'UTC',
    locale              text NOT NULL DEFAULT 'en',
    email_notifications boolean NOT NULL DEFAULT true,
    settings            jsonb NOT NULL DEFAULT '{}',
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE billing_info (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- RESTRICT: a user with billing history is never deleted by accident
    user_id            uuid NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    stripe_customer_id text,
    billing_email      text NOT NULL,
    plan               text NOT NULL DEFAULT 'free',
    status             text NOT NULL DEFAULT 'active',
    current_period_end timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT billing_info_user_id_key UNIQUE (user_id),
    CONSTRAINT billing_info_stripe_customer_id_key UNIQUE (stripe_customer_id),
    CONSTRAINT billing_info_plan_check CHECK (plan IN ('free', 'pro', 'enterprise')),
    CONSTRAINT billing_info_status_check CHECK (status IN ('active', 'trialing', 'past_due', 'canceled'))
);
