// Linux implementations of fastq/platform.hpp; other systems get the documented fallbacks.
#include "fastq/platform.hpp"

#include <unistd.h>

#include <fstream>
#include <string>

#if defined(__linux__)
#include <sys/prctl.h>
#endif

namespace fastq::platform {

bool die_with_parent(int signal) {
#if defined(__linux__)
  return prctl(PR_SET_PDEATHSIG, signal) == 0;
#else
  (void)signal;
  return false;
#endif
}

std::uint64_t resident_kb(pid_t pid) {
#if defined(__linux__)
  std::ifstream f("/proc/" + std::to_string(pid) + "/statm");
  std::uint64_t size = 0, resident = 0;
  if (!(f >> size >> resident)) return 0;
  return resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE)) / 1024;
#else
  (void)pid;
  return 0;
#endif
}

}  // namespace fastq::platform
