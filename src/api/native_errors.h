// The native dialect's wire form of an errc: the snake_case code its error frames and REST
// error bodies carry (native.md §3.8) and the HTTP status native REST answers with. Kept out of
// core so that core holds no dialect's wire format; other dialects keep their own tables.
// Thread-safe: pure functions.
#pragma once

#include "core/errc.h"

namespace herald {

// The snake_case wire name of a code ("bad_message"), as native.md §3.8 spells it.
const char* errc_name(errc e) noexcept;

// The HTTP status native REST answers a code with.
int errc_http_status(errc e) noexcept;

}  // namespace herald
