// A deque that allocates nothing until its first element: libstdc++'s std::deque allocates
// ~700 bytes on construction, and every connection and session holds several (queues, rings,
// waiters), most of them empty for most of their life. Same interface as std::deque.
#pragma once

#include <boost/container/deque.hpp>

namespace herald {

template <class T>
using lazy_deque = boost::container::deque<T>;

}  // namespace herald
