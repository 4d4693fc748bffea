#include "echo/echo_socket.h"

namespace herald::echo {

void echo_socket::on_message(std::string_view text, bool binary) {
  if (binary) return;  // a text protocol: binary frames are not echoed
  // A full queue means the peer does not read: drop it, as every dialect does (4010).
  if (!conn_.send(out_frame{std::string(text), nullptr, {}})) conn_.close(4010, "slow consumer");
}

}  // namespace herald::echo
