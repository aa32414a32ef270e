-- Lock the chain heads of a batch's workspaces ($1) for this transaction, and read where each
-- chain ends: the daemon chains the batch's events from them (src/chain.rs).
select workspace_id, seq, hash from chain_heads($1::text[])
