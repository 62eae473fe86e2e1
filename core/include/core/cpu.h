// CPU sets and pinning: which CPUs this process may run on, parsing "2-5,8" style lists, and
// pinning the calling thread to one CPU.
//
// Thread-safety: pure functions; pin_this_thread affects only the calling thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rc::cpu {

// The CPUs in the calling thread's affinity mask, ascending.
std::vector<int> allowed();
// Parses a list such as "0-3,6,8-9". Returns nullopt on malformed input or a CPU >= 4096.
std::optional<std::vector<int>> parse_list(std::string_view text);
// Pins the calling thread to `cpu`. Returns an errno-style message on failure, empty on success.
std::string pin_this_thread(int cpu);

}  // namespace rc::cpu
