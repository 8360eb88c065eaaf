// A driver is one database's implementation of the stores fastq keeps there, each its own
// narrow interface with its own conformance suite:
//
//   JobStore        job_store.hpp        jobs: enqueue, claim, complete, rescue, cancel...
//   LeaderStore     leader_store.hpp     the leader lease and the database's clock
//   ScheduleStore   schedule_store.hpp   periodic schedules and their fired slots
//   RateStore       rate_store.hpp       fleet-wide rate-limit buckets
//   WorkerRegistry  worker_registry.hpp  the worker registry
//   QueueControls   queue_controls.hpp   paused queues (claim honours pause and limits)
//   Notifier        notifier.hpp         wake-ups (LISTEN, in-process, or none)
//   KeysetSource    keyset_source.hpp    batch pollers' pages and marks (SQL drivers only)
//
// Driver is the aggregate of the stores every implementation offers (memory, sqlite,
// postgres); code that needs one store takes that store's interface. A store only some
// implementations offer is reached through an accessor that says clearly when it is not
// offered (keyset_source() below).
//
// A driver object is used by one thread at a time. connect_another() opens a sibling on
// the same database for another thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "fastq/driver_error.hpp"
#include "fastq/job_store.hpp"
#include "fastq/keyset_source.hpp"
#include "fastq/leader_store.hpp"
#include "fastq/notifier.hpp"
#include "fastq/queue_controls.hpp"
#include "fastq/rate_store.hpp"
#include "fastq/schedule_store.hpp"
#include "fastq/types.hpp"
#include "fastq/worker_registry.hpp"

namespace fastq {

class Driver : public JobStore,
               public LeaderStore,
               public ScheduleStore,
               public RateStore,
               public WorkerRegistry,
               public QueueControls,
               public Notifier {
 public:
  ~Driver() override = default;

  virtual std::string name() const = 0;  // "memory", "sqlite", "postgres"
  virtual std::unique_ptr<Driver> connect_another() const = 0;
};

// The driver's keyset source (batch pollers), or DriverError (not transient) naming the
// driver when it offers none (memory).
KeysetSource& keyset_source(Driver& driver);

// Checks a workflow before any driver writes it: ids unique, every edge between two of
// `jobs`, no edge twice, no cycle, no unique keys, a handler (OnFailure::kHandler) has
// parents. Returns each job's number of parents (parents_pending), in `jobs` order.
// Throws std::invalid_argument naming the problem.
std::vector<int> check_workflow(std::span<const NewJob> jobs, std::span<const Dependency> deps);

// For the SQL drivers: after an INSERT that skipped unique-key conflicts, the id standing
// for each job. `inserted` holds the ids written; `lookup(keys)` maps keys to the active
// job holding them; `reinsert(jobs)` enqueues again the jobs whose key freed up meanwhile.
std::vector<std::string> resolve_unique(
    std::span<const NewJob> jobs, const std::vector<std::string>& inserted,
    const std::function<std::vector<std::pair<std::string, std::string>>(
        const std::vector<std::string>&)>& lookup,
    const std::function<std::vector<std::string>(std::span<const NewJob>)>& reinsert);

// Factories. Each opens its connection eagerly so that a bad DSN fails here, clearly.
std::unique_ptr<Driver> make_memory_driver();
// `path` is a file path (":memory:" is refused: a worker needs a database other processes
// can see). WAL mode and a busy timeout are set on every connection.
std::unique_ptr<Driver> make_sqlite_driver(const std::string& path,
                                           std::chrono::milliseconds busy_timeout =
                                               std::chrono::milliseconds(30000));
// `conninfo` is a libpq connection string or URI.
std::unique_ptr<Driver> make_postgres_driver(const std::string& conninfo);

}  // namespace fastq
