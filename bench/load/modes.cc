#include "load/mode.h"

#include <array>

namespace rc::load {

std::span<const mode_spec* const> all_modes() {
  // The specs are constant-initialised aggregates, so their addresses are usable at any time.
  static constexpr std::array<const mode_spec*, 7> table = {
      &http_mode,     &ws_echo_mode, &fanout_mode, &ws_idle_mode,
      &sse_chat_mode, &ws_chat_mode, &broker_mode};
  return table;
}

const mode_spec* find_mode(std::string_view name) {
  for (const mode_spec* m : all_modes())
    if (m->name == name) return m;
  return nullptr;
}

}  // namespace rc::load
