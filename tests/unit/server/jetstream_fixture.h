// Test helper: a jetstream on a connected nats_client of a real `nats-server -js` (see
// nats_server_fixture.h). The body runs on the shard's loop once the client is connected; done()
// destroys the jetstream (in a later turn, never inside one of its callbacks), then stops the
// client and the loop.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "nats_server_fixture.h"
#include "proto/json_reader.h"
#include "server/jetstream.h"

namespace rc::server::test {

struct js_test {
  nats_loop& run;
  nats_client& nc;
  jetstream& js;
  void done() { run.done(); }
};

inline void run_js(const nats_server_process& srv, const std::function<void(js_test&)>& body,
                   uint32_t limit_ms = 30000, uint32_t api_timeout_ms = 5000) {
  std::unique_ptr<jetstream> js;
  std::unique_ptr<js_test> t;
  run_nats(
      [&](nats_loop& run) {
        nats_client& nc = run.client(nats_loop::options_for(srv));
        js = std::make_unique<jetstream>(nc, api_timeout_ms);
        auto original = run.done;
        run.done = [&run, &js, original] {
          run.later(0, [&js, original] {
            js.reset();
            original();
          });
        };
        t = std::make_unique<js_test>(js_test{run, nc, *js});
        run.poll(5, [&] {
          if (!nc.connected()) return false;
          body(*t);
          return true;
        });
      },
      limit_ms);
  // Never destroyed after its client (the test failed already if it is still here).
  if (js) (void)js.release();
}

// A JetStream-enabled server (file store in the process's temporary directory).
inline nats_server_options js_server() {
  nats_server_options o;
  o.jetstream = true;
  return o;
}

// A stream config for tests: `name` with subjects "<prefix>.>".
inline js_stream_config test_stream(std::string name, std::string prefix,
                                    std::string storage = "file") {
  js_stream_config c;
  c.name = std::move(name);
  c.subjects = {prefix + ".>"};
  c.storage = std::move(storage);
  return c;
}

}  // namespace rc::server::test
