// The job table as the Django migration (fastq_django/migrations) creates it, for tests
// that run the drivers without Django. The Django suite checks the drivers against the
// real migration, so a drift between the two fails there.
#pragma once

namespace fastq::testing {

inline constexpr const char* kSqliteSchema = R"sql(
DROP TABLE IF EXISTS fastq_job;
CREATE TABLE fastq_job (
  id char(32) NOT NULL PRIMARY KEY,
  task varchar(255) NOT NULL,
  queue varchar(100) NOT NULL DEFAULT 'default',
  priority smallint NOT NULL DEFAULT 0,
  state varchar(16) NOT NULL DEFAULT 'queued',
  args text NOT NULL DEFAULT '[]',
  kwargs text NOT NULL DEFAULT '{}',
  run_at datetime NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  max_attempts integer NOT NULL DEFAULT 4,
  lease_token bigint NULL,
  lease_expires_at datetime NULL,
  expires_at datetime NULL,
  cancel_requested bool NOT NULL DEFAULT 0,
  unique_key varchar(255) NULL,
  worker varchar(255) NOT NULL DEFAULT '',
  result text NULL,
  error_type varchar(255) NOT NULL DEFAULT '',
  error text NOT NULL DEFAULT '',
  traceback text NOT NULL DEFAULT '',
  created_at datetime NOT NULL,
  started_at datetime NULL,
  finished_at datetime NULL,
  envelope smallint NOT NULL DEFAULT 1,
  time_limit real NULL,
  soft_time_limit real NULL,
  rate_key varchar(255) NULL,
  interrupted integer NOT NULL DEFAULT 0 CHECK (interrupted >= 0),
  group_label varchar(100) NULL,
  workflow_id char(32) NULL,
  parents_pending integer NOT NULL DEFAULT 0,
  pass_results smallint NOT NULL DEFAULT 0,
  on_failure smallint NOT NULL DEFAULT 0
);
CREATE INDEX fastq_job_workflow ON fastq_job (workflow_id) WHERE workflow_id IS NOT NULL;
DROP TABLE IF EXISTS fastq_dependency;
CREATE TABLE fastq_dependency (
  id integer NOT NULL PRIMARY KEY AUTOINCREMENT,
  workflow_id char(32) NOT NULL,
  parent_id char(32) NOT NULL,
  child_id char(32) NOT NULL,
  position integer NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX fastq_dependency_edge ON fastq_dependency (parent_id, child_id);
CREATE INDEX fastq_dependency_child ON fastq_dependency (child_id, position);
DROP TABLE IF EXISTS fastq_rate_limit;
CREATE TABLE fastq_rate_limit (key varchar(255) NOT NULL PRIMARY KEY, tat bigint NOT NULL);
DROP TABLE IF EXISTS fastq_queue;
CREATE TABLE fastq_queue (
  name varchar(100) NOT NULL PRIMARY KEY,
  paused bool NOT NULL DEFAULT 0,
  concurrency integer NULL CHECK (concurrency >= 1 AND concurrency <= 1000000),
  settings_concurrency integer NULL,
  changed_by varchar(150) NOT NULL DEFAULT '',
  updated_at datetime NULL
);
CREATE INDEX fastq_job_claim ON fastq_job (queue, priority DESC, run_at, id) WHERE state = 'queued';
CREATE INDEX fastq_job_lease ON fastq_job (lease_expires_at) WHERE state = 'running';
CREATE INDEX fastq_job_finished ON fastq_job (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX fastq_job_prune ON fastq_job (state, finished_at, id) WHERE finished_at IS NOT NULL;
CREATE UNIQUE INDEX fastq_job_unique_active ON fastq_job (unique_key)
  WHERE state IN ('queued', 'running');
DROP TABLE IF EXISTS fastq_schedule;
CREATE TABLE fastq_schedule (
  id integer NOT NULL PRIMARY KEY AUTOINCREMENT,
  name varchar(200) NOT NULL UNIQUE,
  task varchar(255) NOT NULL,
  args text NOT NULL DEFAULT '[]',
  kwargs text NOT NULL DEFAULT '{}',
  queue varchar(100) NOT NULL DEFAULT '',
  priority smallint NOT NULL DEFAULT 0,
  cron varchar(255) NOT NULL DEFAULT '',
  timezone varchar(64) NOT NULL DEFAULT 'UTC',
  every real NULL,
  enabled bool NOT NULL DEFAULT 1,
  catch_up varchar(8) NOT NULL DEFAULT 'latest',
  max_instances integer NOT NULL DEFAULT 1,
  source varchar(8) NOT NULL DEFAULT 'admin',
  next_run_at datetime NULL,
  last_run_at datetime NULL,
  last_job_id char(32) NULL,
  last_outcome varchar(64) NOT NULL DEFAULT '',
  created_at datetime NULL,
  updated_at datetime NULL
);
DROP TABLE IF EXISTS fastq_schedule_run;
CREATE TABLE fastq_schedule_run (
  id integer NOT NULL PRIMARY KEY AUTOINCREMENT,
  schedule varchar(200) NOT NULL,
  slot datetime NOT NULL,
  job_id char(32) NULL,
  created_at datetime NOT NULL
);
CREATE UNIQUE INDEX fastq_schedule_run_slot ON fastq_schedule_run (schedule, slot);
CREATE INDEX fastq_schedule_run_job ON fastq_schedule_run (job_id) WHERE job_id IS NOT NULL;
DROP TABLE IF EXISTS fastq_leader;
CREATE TABLE fastq_leader (
  name varchar(100) NOT NULL PRIMARY KEY,
  holder varchar(255) NOT NULL,
  lease_expires_at datetime NOT NULL
);
DROP TABLE IF EXISTS fastq_poller_mark;
CREATE TABLE fastq_poller_mark (
  id integer NOT NULL PRIMARY KEY AUTOINCREMENT,
  poller varchar(200) NOT NULL,
  key varchar(255) NOT NULL,
  created_at datetime NOT NULL,
  job_id char(32) NULL
);
CREATE UNIQUE INDEX fastq_poller_mark_key ON fastq_poller_mark (poller, key);
CREATE INDEX fastq_poller_mark_job ON fastq_poller_mark (job_id) WHERE job_id IS NOT NULL;
DROP TABLE IF EXISTS fastq_workflow;
CREATE TABLE fastq_workflow (
  id char(32) NOT NULL PRIMARY KEY,
  root_id char(32) NOT NULL,
  kind varchar(16) NOT NULL,
  name varchar(255) NOT NULL DEFAULT '',
  members text NOT NULL DEFAULT '[]',
  created_at datetime NOT NULL
);
CREATE INDEX fastq_workflow_root ON fastq_workflow (root_id);
DROP TABLE IF EXISTS fastq_worker;
CREATE TABLE fastq_worker (
  id varchar(200) NOT NULL PRIMARY KEY,
  kind varchar(16) NOT NULL,
  supervisor varchar(200) NOT NULL DEFAULT '',
  host varchar(255) NOT NULL,
  pid bigint NOT NULL,
  version varchar(64) NOT NULL DEFAULT '',
  queues text NOT NULL DEFAULT '[]',
  tasks text NOT NULL DEFAULT '[]',
  concurrency integer NOT NULL DEFAULT 0,
  processes integer NOT NULL DEFAULT 0,
  state varchar(16) NOT NULL,
  started_at datetime NOT NULL,
  last_heartbeat datetime NOT NULL,
  expires_at datetime NOT NULL,
  stopped_at datetime NULL,
  processed bigint NOT NULL DEFAULT 0,
  failed bigint NOT NULL DEFAULT 0,
  rss_bytes bigint NOT NULL DEFAULT 0
);
CREATE INDEX fastq_worker_state ON fastq_worker (state, expires_at);
)sql";

inline constexpr const char* kPostgresSchema = R"sql(
DROP TABLE IF EXISTS fastq_job;
CREATE TABLE fastq_job (
  id uuid NOT NULL PRIMARY KEY,
  task varchar(255) NOT NULL,
  queue varchar(100) NOT NULL DEFAULT 'default',
  priority smallint NOT NULL DEFAULT 0,
  state varchar(16) NOT NULL DEFAULT 'queued',
  args text NOT NULL DEFAULT '[]',
  kwargs text NOT NULL DEFAULT '{}',
  run_at timestamptz NOT NULL DEFAULT statement_timestamp(),
  attempts integer NOT NULL DEFAULT 0,
  max_attempts integer NOT NULL DEFAULT 4,
  lease_token bigint NULL,
  lease_expires_at timestamptz NULL,
  expires_at timestamptz NULL,
  cancel_requested boolean NOT NULL DEFAULT false,
  unique_key varchar(255) NULL,
  worker varchar(255) NOT NULL DEFAULT '',
  result text NULL,
  error_type varchar(255) NOT NULL DEFAULT '',
  error text NOT NULL DEFAULT '',
  traceback text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT statement_timestamp(),
  started_at timestamptz NULL,
  finished_at timestamptz NULL,
  envelope smallint NOT NULL DEFAULT 1,
  time_limit double precision NULL,
  soft_time_limit double precision NULL,
  rate_key varchar(255) NULL,
  interrupted integer NOT NULL DEFAULT 0 CHECK (interrupted >= 0),
  group_label varchar(100) NULL,
  workflow_id uuid NULL,
  parents_pending integer NOT NULL DEFAULT 0,
  pass_results smallint NOT NULL DEFAULT 0,
  on_failure smallint NOT NULL DEFAULT 0
);
CREATE INDEX fastq_job_workflow ON fastq_job (workflow_id) WHERE workflow_id IS NOT NULL;
DROP TABLE IF EXISTS fastq_dependency;
CREATE TABLE fastq_dependency (
  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  workflow_id uuid NOT NULL,
  parent_id uuid NOT NULL,
  child_id uuid NOT NULL,
  position integer NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX fastq_dependency_edge ON fastq_dependency (parent_id, child_id);
CREATE INDEX fastq_dependency_child ON fastq_dependency (child_id, position);
DROP TABLE IF EXISTS fastq_rate_limit;
CREATE TABLE fastq_rate_limit (key varchar(255) NOT NULL PRIMARY KEY, tat bigint NOT NULL);
DROP TABLE IF EXISTS fastq_queue;
CREATE TABLE fastq_queue (
  name varchar(100) NOT NULL PRIMARY KEY,
  paused boolean NOT NULL DEFAULT false,
  concurrency integer NULL CHECK (concurrency >= 1 AND concurrency <= 1000000),
  settings_concurrency integer NULL,
  changed_by varchar(150) NOT NULL DEFAULT '',
  updated_at timestamptz NULL
);
CREATE INDEX fastq_job_claim ON fastq_job (queue, priority DESC, run_at, id) WHERE state = 'queued';
CREATE INDEX fastq_job_lease ON fastq_job (lease_expires_at) WHERE state = 'running';
CREATE INDEX fastq_job_finished ON fastq_job (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX fastq_job_prune ON fastq_job (state, finished_at, id) WHERE finished_at IS NOT NULL;
CREATE UNIQUE INDEX fastq_job_unique_active ON fastq_job (unique_key)
  WHERE state IN ('queued', 'running');
CREATE OR REPLACE FUNCTION fastq_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('fastq', ''); RETURN NULL; END $$;
CREATE TRIGGER fastq_job_notify AFTER INSERT ON fastq_job
  FOR EACH STATEMENT EXECUTE FUNCTION fastq_notify();
DROP TABLE IF EXISTS fastq_schedule;
CREATE TABLE fastq_schedule (
  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  name varchar(200) NOT NULL UNIQUE,
  task varchar(255) NOT NULL,
  args text NOT NULL DEFAULT '[]',
  kwargs text NOT NULL DEFAULT '{}',
  queue varchar(100) NOT NULL DEFAULT '',
  priority smallint NOT NULL DEFAULT 0,
  cron varchar(255) NOT NULL DEFAULT '',
  timezone varchar(64) NOT NULL DEFAULT 'UTC',
  every double precision NULL,
  enabled boolean NOT NULL DEFAULT true,
  catch_up varchar(8) NOT NULL DEFAULT 'latest',
  max_instances integer NOT NULL DEFAULT 1,
  source varchar(8) NOT NULL DEFAULT 'admin',
  next_run_at timestamptz NULL,
  last_run_at timestamptz NULL,
  last_job_id uuid NULL,
  last_outcome varchar(64) NOT NULL DEFAULT '',
  created_at timestamptz NULL,
  updated_at timestamptz NULL
);
DROP TABLE IF EXISTS fastq_schedule_run;
CREATE TABLE fastq_schedule_run (
  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  schedule varchar(200) NOT NULL,
  slot timestamptz NOT NULL,
  job_id uuid NULL,
  created_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX fastq_schedule_run_slot ON fastq_schedule_run (schedule, slot);
CREATE INDEX fastq_schedule_run_job ON fastq_schedule_run (job_id) WHERE job_id IS NOT NULL;
DROP TABLE IF EXISTS fastq_leader;
CREATE TABLE fastq_leader (
  name varchar(100) NOT NULL PRIMARY KEY,
  holder varchar(255) NOT NULL,
  lease_expires_at timestamptz NOT NULL
);
DROP TABLE IF EXISTS fastq_poller_mark;
CREATE TABLE fastq_poller_mark (
  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  poller varchar(200) NOT NULL,
  key varchar(255) NOT NULL,
  created_at timestamptz NOT NULL,
  job_id uuid NULL
);
CREATE UNIQUE INDEX fastq_poller_mark_key ON fastq_poller_mark (poller, key);
CREATE INDEX fastq_poller_mark_job ON fastq_poller_mark (job_id) WHERE job_id IS NOT NULL;
DROP TABLE IF EXISTS fastq_workflow;
CREATE TABLE fastq_workflow (
  id uuid NOT NULL PRIMARY KEY,
  root_id uuid NOT NULL,
  kind varchar(16) NOT NULL,
  name varchar(255) NOT NULL DEFAULT '',
  members text NOT NULL DEFAULT '[]',
  created_at timestamptz NOT NULL DEFAULT statement_timestamp()
);
CREATE INDEX fastq_workflow_root ON fastq_workflow (root_id);
DROP TABLE IF EXISTS fastq_worker;
CREATE TABLE fastq_worker (
  id varchar(200) NOT NULL PRIMARY KEY,
  kind varchar(16) NOT NULL,
  supervisor varchar(200) NOT NULL DEFAULT '',
  host varchar(255) NOT NULL,
  pid bigint NOT NULL,
  version varchar(64) NOT NULL DEFAULT '',
  queues text NOT NULL DEFAULT '[]',
  tasks text NOT NULL DEFAULT '[]',
  concurrency integer NOT NULL DEFAULT 0,
  processes integer NOT NULL DEFAULT 0,
  state varchar(16) NOT NULL,
  started_at timestamptz NOT NULL,
  last_heartbeat timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  stopped_at timestamptz NULL,
  processed bigint NOT NULL DEFAULT 0,
  failed bigint NOT NULL DEFAULT 0,
  rss_bytes bigint NOT NULL DEFAULT 0
);
CREATE INDEX fastq_worker_state ON fastq_worker (state, expires_at);
)sql";

}  // namespace fastq::testing
