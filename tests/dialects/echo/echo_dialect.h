// A test-only dialect proving the dialect seam: a folder plus one line in app/dialects.cc.
// `[echo]` table (enabled, prefix "/echo", listen, max_frame_bytes, ping_reply), REST
// `GET {prefix}/ping`, socket `{prefix}/ws` echoing text frames, its own 404 and refusal bodies,
// and an admin call `GET /v1/admin/echo` kept when disabled. Built only into the test binary.
#pragma once

#include <memory>

#include "dialect/dialect.h"

namespace herald {

std::unique_ptr<dialect> make_echo_dialect();

}  // namespace herald
