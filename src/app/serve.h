// `herald serve`: builds the store, directory, hub, routers and dialects, then serves until
// SIGTERM/SIGINT drains it. Start-up only; blocks.
#pragma once

#include "app/config.h"

namespace herald {

// Returns the process exit code. Takes the configuration: its dialects are installed.
// `list_routes`: print every registered route ("METHOD /path", "WS /path" for a socket) to
// stdout once installed and return 0 without listening (`herald routes`).
int serve(config cfg, bool demo, bool list_routes = false);

}  // namespace herald
