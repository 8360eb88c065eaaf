#include <unordered_map>
#include <unordered_set>

#include "fastq/driver.hpp"

namespace fastq {

std::vector<std::string> resolve_unique(
    std::span<const NewJob> jobs, const std::vector<std::string>& inserted,
    const std::function<std::vector<std::pair<std::string, std::string>>(
        const std::vector<std::string>&)>& lookup,
    const std::function<std::vector<std::string>(std::span<const NewJob>)>& reinsert) {
  std::vector<std::string> ids;
  ids.reserve(jobs.size());
  if (inserted.size() == jobs.size()) {
    for (const auto& j : jobs) ids.push_back(j.id);
    return ids;
  }
  const std::unordered_set<std::string> written(inserted.begin(), inserted.end());
  std::vector<std::string> keys;
  for (const auto& j : jobs) {
    if (!written.contains(j.id)) {
      if (j.unique_key.empty()) {
        throw DriverError("job " + j.id + " was not inserted and has no unique key", false);
      }
      keys.push_back(j.unique_key);
    }
  }
  std::unordered_map<std::string, std::string> holder;
  for (auto& [key, id] : lookup(keys)) holder.emplace(std::move(key), std::move(id));
  std::vector<NewJob> again;
  for (const auto& j : jobs) {
    if (written.contains(j.id)) continue;
    if (!holder.contains(j.unique_key)) again.push_back(j);  // the holder finished just now
  }
  std::unordered_map<std::string, std::string> reinserted;
  if (!again.empty()) {
    const auto got = reinsert(again);
    for (std::size_t i = 0; i < again.size(); ++i) reinserted.emplace(again[i].id, got[i]);
  }
  for (const auto& j : jobs) {
    if (written.contains(j.id)) {
      ids.push_back(j.id);
    } else if (auto it = holder.find(j.unique_key); it != holder.end()) {
      ids.push_back(it->second);
    } else {
      ids.push_back(reinserted.at(j.id));
    }
  }
  return ids;
}

}  // namespace fastq
