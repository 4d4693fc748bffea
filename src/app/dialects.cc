// The registration table: one line per dialect. A dialect `x` lives in its own folder and defines
// `std::unique_ptr<dialect> make_x_dialect()`; its line here is all app/ needs. Render slots
// are allocated in this order (native 0, ringcentral 1, ...): keep it stable.
#include "app/dialects.h"

#include <stdexcept>

#include "core/event.h"

// Test-only dialects (tests/dialects/), in test builds of the binary only.
#ifdef HERALD_TEST_DIALECTS
#define HERALD_TEST_DIALECT_LINES(X) X(echo)
#else
#define HERALD_TEST_DIALECT_LINES(X)
#endif

#define HERALD_DIALECT_LINES(X) \
  X(native)                     \
  X(ringcentral)                \
  X(zoom)                       \
  X(smsgw)                      \
  X(tracker)                    \
  HERALD_TEST_DIALECT_LINES(X)

namespace herald {

#define HERALD_DECLARE(name) std::unique_ptr<dialect> make_##name##_dialect();
HERALD_DIALECT_LINES(HERALD_DECLARE)
#undef HERALD_DECLARE

std::vector<std::unique_ptr<dialect>> make_dialects() {
  std::vector<std::unique_ptr<dialect>> out;
#define HERALD_MAKE(name) out.push_back(make_##name##_dialect());
  HERALD_DIALECT_LINES(HERALD_MAKE)
#undef HERALD_MAKE
  if (out.size() > event::render_slots)
    throw std::logic_error("more dialects than event::render_slots");
  return out;
}

}  // namespace herald
