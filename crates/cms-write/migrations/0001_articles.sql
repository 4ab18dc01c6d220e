create table if not exists articles (
    id uuid primary key,
    slug text not null unique,
    title text not null,
    body text not null,
    author_id uuid,
    status text not null,
    version bigint not null check (version >= 1),
    created_at timestamptz not null,
    updated_at timestamptz not null,
    published_at timestamptz
);
