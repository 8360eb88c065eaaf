"""fastq's Django app: the job table, its admin, the ``fastq_worker`` command and the
database broker that enqueues inside the caller's transaction."""
