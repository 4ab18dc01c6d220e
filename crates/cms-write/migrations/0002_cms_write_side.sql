-- Articles gain tags and a publication schedule.
alter table articles add column if not exists tags text[] not null default '{}';
alter table articles add column if not exists scheduled_at timestamptz;
create index if not exists articles_due on articles (scheduled_at) where status = 'SCHEDULED';

create table if not exists authors (
    id uuid primary key,
    name text not null,
    bio text,
    version bigint not null check (version >= 1),
    created_at timestamptz not null,
    updated_at timestamptz not null
);

-- The first answer to a command sent with an Idempotency-Key.
create table if not exists idempotency_keys (
    scope text not null,
    key text not null,
    request_hash bytea not null,
    status int,
    location text,
    response jsonb,
    created_at timestamptz not null default now(),
    primary key (scope, key)
);
create index if not exists idempotency_keys_created on idempotency_keys (created_at);

-- Catch-up log for GET /changes: one row per event, ordered by the writing
-- transaction's id; read only below the snapshot's xmin horizon so that a
-- transaction committing late is never skipped.
create table if not exists changes (
    txid xid8 not null default pg_current_xact_id(),
    seq bigserial not null,
    aggregate_type text not null,
    aggregate_id text not null,
    version bigint not null,
    event_type text not null,
    snapshot jsonb not null,
    created_at timestamptz not null default now(),
    primary key (txid, seq)
);
