// The native frame decoder: any bytes → a command or a named error, never a crash; filters
// that decode are compiled too.
#include <cstddef>
#include <cstdint>

#include "dialect/native/native_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  herald::native_decoded d = herald::decode_native(text, 100);
  if (d.err) {
    if (d.err->message.empty()) __builtin_trap();  // every refusal names its problem
    return 0;
  }
  for (const auto& f : d.msg.filters) (void)herald::filter::compile(f, "tenant", {});
  return 0;
}
