// Local wall-clock time of an IANA time zone ("Europe/Berlin"), for dialects that show users
// their own time. Reads the system's compiled zone files (/usr/share/zoneinfo, TZif v1-v3) once
// per zone and keeps them; an unknown, malformed or empty name reads as UTC. Instants after a
// zone's last transition keep its last offset (the files carry transitions to 2037).
// Thread-safe: the cache locks; lookups after the first are a shared-lock map read.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace herald {

// The zone's offset from UTC in seconds at `utc_ms`.
std::int64_t utc_offset_s(std::string_view zone, std::int64_t utc_ms);

// "yyyy-MM-dd HH:mm:ss" of `utc_ms` in `zone`.
std::string format_local_time(std::int64_t utc_ms, std::string_view zone);

// Whether `zone` names a zone file Herald can read (UTC and "" included).
bool known_time_zone(std::string_view zone);

}  // namespace herald
