// The dialect registry: every dialect this binary serves, made fresh with its defaults (one set
// per configuration load). Their order is the render-slot order. Start-up only.
#pragma once

#include <memory>
#include <vector>

#include "dialect/dialect.h"

namespace herald {

std::vector<std::unique_ptr<dialect>> make_dialects();

}  // namespace herald
