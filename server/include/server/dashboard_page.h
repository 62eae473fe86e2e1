// The dashboard page (server/assets/dashboard.html: HTML with inline CSS and JS), compiled into
// the binary by server/embed_asset.cmake, served by GET /dashboard.
//
// Thread-safety: immutable static bytes.
#pragma once

#include <string_view>

namespace rc::server {

std::string_view dashboard_page();

}  // namespace rc::server
