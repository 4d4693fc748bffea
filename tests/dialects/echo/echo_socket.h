// The echo dialect's socket: sends every text frame back as it came. Test-only. Kept apart from
// the dialect's registration so it can move onto the shared socket core (dialect/common/)
// without touching the rest. Owned by its shard; called only on its thread.
#pragma once

#include "transport/ws_types.h"

namespace herald::echo {

class echo_socket final : public ws_handler {
 public:
  explicit echo_socket(ws_connection& conn) : conn_(conn) {}

  void on_open() override {}
  void on_message(std::string_view text, bool binary) override;
  std::int64_t on_tick(std::int64_t) override { return 0; }  // no deadlines
  void on_drain() override { conn_.close(1012, "draining"); }
  void on_closed(int) override {}

 private:
  ws_connection& conn_;
};

}  // namespace herald::echo
