-- GET /changes orders rows by `order_txid`: the writing transaction's id,
-- raised to the order_txid of the same aggregate's previous change when that
-- one is larger. Transaction ids are assigned at a transaction's first write,
-- not at its commit, so a command that wrote something (its idempotency key)
-- before it locked its aggregate can hold a smaller id than the command that
-- wrote the previous version; without the raise its version came out first.
alter table changes add column if not exists order_txid xid8;
update changes c
   set order_txid = s.order_txid
  from (select txid, seq,
               max(txid) over (partition by aggregate_type, aggregate_id order by version
                               rows between unbounded preceding and current row) as order_txid
          from changes) s
 where c.txid = s.txid and c.seq = s.seq and c.order_txid is null;
alter table changes alter column order_txid set not null;
create index if not exists changes_order on changes (order_txid, seq);
-- One row per aggregate version; also finds an aggregate's latest change.
create unique index if not exists changes_aggregate_version on changes (aggregate_type, aggregate_id, version);
