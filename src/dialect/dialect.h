// The dialect table: each dialect installs its REST routes and socket endpoints at start-up;
// the core never names a dialect. Render slots: each dialect variant owns one slot of
// event::rendered() so an event is rendered once per dialect, not once per connection.
#pragma once

#include <string>
#include <vector>

#include "api/router.h"
#include "api/services.h"
#include "transport/server.h"

namespace herald {

namespace render_slot {
inline constexpr std::size_t native_event = 0;
inline constexpr std::size_t ringcentral_notification = 1;  // ServerNotification body, shared part
}

struct dialect_install {
  services& svc;
  router& routes;                // this dialect's own router (request-over-socket reaches it)
  std::vector<ws_mount>& mounts; // socket endpoints (paths include the prefix)
  std::string prefix;            // "" for native
};

void install_native(dialect_install& d);

}  // namespace herald
