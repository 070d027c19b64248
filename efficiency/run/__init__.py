"""Running jobs: the job, the isolated worker, the runner and its executors."""
