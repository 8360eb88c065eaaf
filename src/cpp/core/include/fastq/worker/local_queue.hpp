// Local queue: the claimed jobs waiting for an executor, and the jobs set aside on their way
// back to the database (popped but not started before a stop, lease in doubt, queue
// paused). Also the set of paused queues, as last read by the poller.
//
// Shared by the poller (push, pause, close, take_*) and the executors (pop_batch, keep_*,
// hold_back_if_paused), its mutex and condition variable inside; run() takes what is left
// once the executors are gone. Every method takes the lock for its own duration only.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "fastq/types.hpp"

namespace fastq {

class LocalQueue {
 public:
  // Poller thread: appends `jobs` (left empty) and wakes as many executors.
  void push(std::vector<ClaimedJob>& jobs);
  // Executor thread: waits for jobs or for close(); false once closed and empty. Takes up
  // to `limit` jobs, and never more than an even share of what is waiting among
  // `concurrency` executors (executor_pool::batch_share).
  bool pop_batch(std::vector<ClaimedJob>& batch, std::size_t concurrency, std::size_t limit);
  // Poller thread, at a stop: no more pops; returns what was waiting and wakes every
  // executor.
  std::vector<ClaimedJob> close();

  // Executor thread: batch[from..] was popped but not started before a stop.
  void keep_unrun(std::vector<ClaimedJob>& batch, std::size_t from);
  // Executor thread: not started, its lease in doubt; the poller hands it back (take_stale).
  void keep_stale(const ClaimedJob& job);
  std::vector<ClaimedJob> take_stale();

  // Paused queues (fastq_queue): executors never start a job of one, and the poller hands
  // back the ones it holds. `any_paused` keeps the check to one relaxed load per job while
  // nothing is paused.
  //
  // Poller thread: `names` are paused now. If any is, the waiting jobs of paused queues
  // move to `from_queue` and those executors held back to `held_back`.
  void pause(const std::vector<std::string>& names, std::vector<ClaimedJob>& from_queue,
             std::vector<ClaimedJob>& held_back);
  bool any_paused() const { return any_paused_.load(std::memory_order_relaxed); }
  // Executor thread: whether `job` belongs to a paused queue; if so it is kept for the
  // poller to hand back (take_paused).
  bool hold_back_if_paused(const ClaimedJob& job);
  std::vector<ClaimedJob> take_paused();

  // run(), once the executors are gone: jobs popped by executors and never started, then
  // those set aside as stale, then those held back as paused.
  std::vector<ClaimedJob> take_leftovers();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<ClaimedJob> queue_;
  bool closed_ = false;
  std::vector<ClaimedJob> unrun_;   // popped by an executor but not started before a stop
  std::vector<ClaimedJob> stale_;   // not started, lease in doubt
  std::atomic<bool> any_paused_{false};
  std::unordered_set<std::string> paused_;
  std::vector<ClaimedJob> paused_jobs_;  // popped, not started, queue paused
};

}  // namespace fastq
