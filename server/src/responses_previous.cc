// take_previous / release_previous (responses_cluster.h): a follow-up's previous response, taken
// on its home shard by message and handed back to the shard of the request.
#include "base/assert.h"
#include "server/generation.h"
#include "server/responses_cluster.h"
#include "server/shard.h"

namespace rc::server {

void take_previous(shard_server& s, const std::string& id,
                   unique_function<void(previous_taken&&)> done) {
  int home = response_home(id, s.shard_count());
  RC_ASSERT(home >= 0);
  unsigned me = s.id();
  s.loop().post(static_cast<unsigned>(home), [me, id, done = std::move(done)]() mutable {
    shard_server& at_home = *shard_server::current();
    responses_localize(
        at_home, id, [&at_home, me, id, done = std::move(done)](kv_lookup found) mutable {
          previous_taken taken;
          if (found == kv_lookup::found) {
            switch (at_home.responses().acquire(id, taken.history)) {
              case responses_store::take_status::ok:
                taken.status = previous_status::ok;
                break;
              case responses_store::take_status::busy:
                taken.status = previous_status::busy;
                break;
              case responses_store::take_status::not_found:
                break;
            }
          } else if (found == kv_lookup::unavailable) {
            taken.status = previous_status::unavailable;
            taken.retry_after_ms = responses_retry_after_ms(at_home);
          }
          at_home.loop().post(me, [taken = std::move(taken), done = std::move(done)]() mutable {
            done(std::move(taken));
          });
        });
  });
}

void release_previous(shard_server& s, const std::string& id) {
  int home = response_home(id, s.shard_count());
  if (home < 0) return;
  s.loop().post(static_cast<unsigned>(home),
                [id] { shard_server::current()->responses().release(id); });
}

}  // namespace rc::server
