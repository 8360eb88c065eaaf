// The operating-system calls fastq uses that POSIX does not have: the one place to port
// when the core is built for another system (only Linux is supported and built today;
// docs/installing.md). Everything else in the core is POSIX or standard C++.
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace fastq::platform {

// Asks the kernel to send `signal` to the calling process when its parent exits (Linux:
// prctl(PR_SET_PDEATHSIG)). Returns false where the system has no such request; the
// caller then relies on noticing the parent's exit itself.
bool die_with_parent(int signal);

// The resident memory of process `pid` in KiB (Linux: /proc/<pid>/statm), or 0 when it
// cannot be read (the process is gone, or the system has no such source).
std::uint64_t resident_kb(pid_t pid);

}  // namespace fastq::platform
