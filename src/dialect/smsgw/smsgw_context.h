// What the smsgw dialect's routes and sockets share: the services, its limits, its render slot
// and the cross-request guards, plus the credential helpers both sides use. Built once at
// install; lives as long as the server (every socket and route refers to it).
// Thread-safe: immutable after install but for the guards, which lock.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "api/services.h"
#include "core/live.h"
#include "dialect/smsgw/smsgw_guard.h"
#include "dialect/smsgw/smsgw_limits.h"

namespace herald {

struct smsgw_context {
  smsgw_context(services& s, const smsgw_limits& l, std::size_t slot)
      : svc(s),
        cfg(l),
        render_slot(slot),
        auth_fails(l.auth_fail_limit, l.auth_fail_window_s * 1000, l.auth_fail_block_s * 1000),
        rest_rate(l.rate_limit_window_s * 1000) {}

  services& svc;
  live<smsgw_limits> cfg;         // SIGHUP publishes its reloadable keys' new values
  const std::size_t render_slot;  // event::rendered() slot of the sms_status/sms_inbound frame
  smsgw::fail_block auth_fails;   // per address, REST and sockets alike (§7)
  smsgw::sliding_window rest_rate;
  smsgw::key_slots sockets;  // open sockets per API key (app id)
};

namespace smsgw {

// The API key's app as a principal: any live key of any format (lookup by hash). Errors:
// auth_failed (unknown, deleted or rotated), forbidden (a publisher app). In memory: any thread.
result<principal> principal_of_key(const services& s, std::string_view key);

// A new single-use ws token ("wst_" + 64 hex) of `who`, valid for cfg.ws_token_ttl_s; kept in the
// store so any node can redeem it. Blocking (a store write): not on a shard.
result<std::string> issue_ws_token(smsgw_context& cx, const principal& who);

// Redeems a ws token once: unknown, expired or used → auth_failed; its app gone → auth_failed;
// a publisher app → forbidden. Blocking (the store's replay guard): not on a shard.
result<principal> redeem_ws_token(smsgw_context& cx, std::string_view token);

}  // namespace smsgw
}  // namespace herald
