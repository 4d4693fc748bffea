#include "store/redis/subscriber.h"

#include "store/redis/link.h"

namespace herald::redis {

struct subscriber::state {
  // io_thread only:
  std::set<std::string> channels, patterns;
  message_handler on_message;
  link_status status;  // any thread
};

namespace {

std::string subscribe_wire(const char* verb, const std::set<std::string>& names) {
  if (names.empty()) return {};
  command c{verb};
  for (const auto& n : names) c.arg(n);
  return c.wire();
}

// A push: ["message", channel, payload], ["pmessage", pattern, channel, payload],
// ["subscribe" | "psubscribe" | "unsubscribe" | "punsubscribe", name, count], ["pong", token].
void on_push(subscriber::state& s, reply&& r) {
  if (!r.is_array() || r.elements.empty() || !r.elements[0].is_string()) return;
  auto& e = r.elements;
  const std::string& kind = e[0].str;
  if (kind == "message" && e.size() == 3) {
    s.on_message(message{{}, std::move(e[1].str), std::move(e[2].str)});
  } else if (kind == "pmessage" && e.size() == 4) {
    s.on_message(message{std::move(e[1].str), std::move(e[2].str), std::move(e[3].str)});
  } else if (e.size() == 3 && e[2].type == reply::kind::integer &&
             (kind == "subscribe" || kind == "psubscribe" || kind == "unsubscribe" ||
              kind == "punsubscribe")) {
    s.status.set_confirmed(e[2].integer);
  } else if (kind == "pong" && e.size() == 2 && e[1].is_string() && !e[1].str.empty()) {
    message m;  // a barrier's (the liveness PING has no token)
    m.payload = std::move(e[1].str);
    m.barrier = true;
    s.on_message(std::move(m));
  }
}

}  // namespace

subscriber::subscriber(io_thread& io, options opts, message_handler on_message,
                       state_handler on_state)
    : io_(io),
      link_(std::make_shared<link>(io, std::move(opts))),
      state_(std::make_shared<state>()) {
  state_->on_message = std::move(on_message);
  link_->on_push = [s = state_](reply&& r) { on_push(*s, std::move(r)); };
  link_->after_handshake = [s = state_] {
    return subscribe_wire("SUBSCRIBE", s->channels) + subscribe_wire("PSUBSCRIBE", s->patterns);
  };
  link_->on_state = [s = state_, user = std::move(on_state)](bool up, const std::string& why) {
    s->status.set(up, why);
    if (user) user(up, why);
  };
}

subscriber::~subscriber() { close_link(io_, link_); }

void subscriber::start() {
  io_.post([l = link_] { l->start(); });
}

namespace {
// Adds or removes names from the set and, when connected, sends the verb for the change.
void change(io_thread& io, const std::shared_ptr<link>& l,
            const std::shared_ptr<subscriber::state>& s, bool channels, bool add,
            std::vector<std::string> names) {
  io.post([l, s, channels, add, names = std::move(names)] {
    auto& set = channels ? s->channels : s->patterns;
    std::set<std::string> changed;
    for (const auto& n : names) {
      if (add ? set.insert(n).second : set.erase(n) > 0) changed.insert(n);
    }
    const char* verb =
        channels ? (add ? "SUBSCRIBE" : "UNSUBSCRIBE") : (add ? "PSUBSCRIBE" : "PUNSUBSCRIBE");
    if (!changed.empty()) l->send_raw(subscribe_wire(verb, changed));
  });
}
}  // namespace

void subscriber::subscribe(std::vector<std::string> channels) {
  change(io_, link_, state_, true, true, std::move(channels));
}
void subscriber::psubscribe(std::vector<std::string> patterns) {
  change(io_, link_, state_, false, true, std::move(patterns));
}
void subscriber::unsubscribe(std::vector<std::string> channels) {
  change(io_, link_, state_, true, false, std::move(channels));
}
void subscriber::punsubscribe(std::vector<std::string> patterns) {
  change(io_, link_, state_, false, false, std::move(patterns));
}
void subscriber::barrier(std::string token) {
  io_.post([l = link_, token = std::move(token)] { l->send_raw(command{"PING", token}.wire()); });
}

status subscriber::wait_connected(std::int64_t timeout_ms) {
  return state_->status.wait(timeout_ms, "subscriber");
}

bool subscriber::connected() const { return state_->status.up(); }

std::uint64_t subscriber::connects() const { return state_->status.connects(); }

std::int64_t subscriber::confirmed() const { return state_->status.confirmed(); }

}  // namespace herald::redis
