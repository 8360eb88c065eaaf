// Completer: writes outcomes and start marks in batches (write_outcomes, outcome.hpp),
// fenced by lease token, on a sibling connection. Owning thread: the completer (its own
// Boost.Asio io_context); executors and the event loop hand it outcomes under its mutex.
// Its thread code is the class Completer, src/cpp/core/worker/completer.cpp.
//
// When to flush is decided here, as pure functions tested without threads or a database.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>

namespace fastq::completer {

using std::chrono::milliseconds;

// Back-off between retries of a flush that met a transient error.
inline constexpr milliseconds kRetryFirst{100};
inline constexpr milliseconds kRetryMax{5000};

enum class FlushAction {
  kNone,      // a flush is already due (timer armed or flush posted)
  kFlushNow,  // enough outcomes wait: flush at once
  kArm,       // start the flush_interval timer
};

// After `pending` outcomes wait: flush at once when they fill a batch, otherwise make sure
// a timer will flush them within flush_interval. `armed`: a timer is set; `posted`: a
// flush is already on its way.
constexpr FlushAction flush_action(std::size_t pending, std::size_t flush_batch, bool armed,
                                   bool posted) {
  if (posted) return FlushAction::kNone;
  if (pending >= flush_batch) return FlushAction::kFlushNow;
  return armed ? FlushAction::kNone : FlushAction::kArm;
}

constexpr milliseconds next_retry(milliseconds current) {
  return std::min(current * 2, kRetryMax);
}

}  // namespace fastq::completer
