"""The run directory as a contract, whatever kind of run wrote it: its files (:mod:`.files`:
manifest, shards, checksums, loading), the shard plan and checks (:mod:`.directory`), the
one-writer lock (:mod:`.lock`), the run log (:mod:`.runlog`), comparing two runs
(:mod:`.compare`), and what each kind of run tells it about its shards (:mod:`.kinds`).
A kind hands this layer its schema and key; this layer imports no kind."""
