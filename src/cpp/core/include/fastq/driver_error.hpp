// The error every store raises for a database error.
#pragma once

#include <stdexcept>
#include <string>

namespace fastq {

// Raised by drivers for database errors. `transient` marks errors worth retrying after a
// reconnect (connection lost, server shutting down, lock timeout). Also raised, not
// transient, when a store is asked for that its implementation does not offer
// (keyset_source() of the memory driver).
class DriverError : public std::runtime_error {
 public:
  DriverError(const std::string& what, bool transient)
      : std::runtime_error(what), transient_(transient) {}
  bool transient() const noexcept { return transient_; }

 private:
  bool transient_;
};

}  // namespace fastq
