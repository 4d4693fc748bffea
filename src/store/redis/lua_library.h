// The cluster store's Redis Function library `herald` (docs/cluster.md, "The function
// library"), loaded with FUNCTION LOAD REPLACE by redis_store at open and again whenever Redis
// answers that a function is missing (a Redis restarted without persistence). Its text is a
// constant; it holds no state. The key layout it writes is described in docs/cluster.md.
#pragma once

namespace herald::redis {

// herald_append, herald_records, herald_get_record, herald_prune_log, herald_prune_records,
// herald_mark.
extern const char* const store_function_library;

}  // namespace herald::redis
