// `herald serve`: builds the store, directory, hub, routers and dialects, then serves until
// SIGTERM/SIGINT drains it. Start-up only; blocks.
#pragma once

#include "app/config.h"

namespace herald {

// Returns the process exit code. Takes the configuration: its dialects are installed.
int serve(config cfg, bool demo);

}  // namespace herald
