"""Running a job, whatever its kind: the job protocol (:mod:`.job`), worker threads
(:mod:`.threads`), batches and shards (:mod:`.compute`), run directories under their lock
with the run log and progress (:mod:`.runner`), signals (:mod:`.signals`) and Dask
(:mod:`.cluster`)."""
